"""Weights in and out: fastfc models equal their PyTorch, scikit-learn, Keras-spec and ONNX
(run by onnxruntime) sources within rounding; unsupported layers and bad shapes are
ValueErrors naming the layer."""
import numpy as np
import pytest

import fastfc


def _tol(dtype):
    # a few dot products of length <= 64 deep: sqrt(k) eps per layer, several layers
    return 64 * np.finfo(dtype).eps


def _mlp(dtype, seed=0):
    """A model with every layer kind the converters share, BatchNorm statistics not 0/1."""
    model = fastfc.Sequential(
        [fastfc.Dense(7, 16, activation="relu"), fastfc.BatchNorm(16), fastfc.Dropout(0.3),
         fastfc.Dense(16, 12), fastfc.Tanh(), fastfc.Dense(12, 9, activation="leaky_relu",
                                                            negative_slope=0.2),
         fastfc.Sigmoid(), fastfc.Dense(9, 8, activation="sigmoid"), fastfc.LeakyReLU(0.1),
         fastfc.Dense(8, 5, use_bias=False), fastfc.Softmax()],
        loss="mse", seed=seed, dtype=dtype)
    bn = model.layers[1]
    rng = np.random.default_rng(seed)
    bn.running_mean[...] = rng.normal(size=16)
    bn.running_var[...] = rng.uniform(0.5, 2, 16)
    bn.params["gamma"][...] = rng.uniform(0.5, 1.5, 16)
    bn.params["beta"][...] = rng.normal(size=16)
    return model


X7 = np.random.default_rng(1).normal(size=(33, 7))


# ------------------------------------------------------------------ torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_round_trip(dtype):
    torch = pytest.importorskip("torch", reason="the torch extra")
    model = _mlp(dtype)
    net = fastfc.to_torch(model)
    assert not net.training
    x = X7.astype(dtype)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    want = model.forward(x)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=_tol(dtype), atol=_tol(dtype))
    back = fastfc.from_torch(net)
    assert back.dtype == dtype and len(back.layers) == 14   # 3 fused activations split out
    np.testing.assert_allclose(back.forward(x), want, rtol=_tol(dtype), atol=_tol(dtype))


def test_from_torch_trained_net_with_flatten():
    torch = pytest.importorskip("torch", reason="the torch extra")
    nn = torch.nn
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 10), nn.BatchNorm1d(10, affine=False),
                        nn.ReLU(), nn.Dropout(0.5), nn.Linear(10, 3), nn.Softmax(dim=1))
    net.train()
    net(torch.randn(64, 3, 4))          # running statistics away from 0 and 1
    net.eval()
    x = np.random.default_rng(2).normal(size=(20, 3, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="input_shape"):
        fastfc.from_torch(net)
    model = fastfc.from_torch(net, input_shape=(3, 4))
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.forward(x), want, rtol=_tol(np.float32),
                               atol=_tol(np.float32))


def test_from_torch_refuses_what_it_cannot_honour():
    torch = pytest.importorskip("torch", reason="the torch extra")
    nn = torch.nn
    with pytest.raises(ValueError, match=r"torch layer 1 \(Conv1d.*supported: Linear"):
        fastfc.from_torch(nn.Sequential(nn.Linear(4, 4), nn.Conv1d(1, 1, 1)))
    with pytest.raises(ValueError, match=r"torch layer 1 \(LeakyReLU with negative_slope "
                                         r"-0.1: .*supported: Linear"):
        fastfc.from_torch(nn.Sequential(nn.Linear(4, 3), nn.LeakyReLU(-0.1)))
    with pytest.raises(ValueError, match=r"torch layer 1 \(Dropout with p 1.0: .*supported"):
        fastfc.from_torch(nn.Sequential(nn.Linear(4, 3), nn.Dropout(1.0)))
    with pytest.raises(ValueError, match=r"torch layer 2 \(Softmax"):
        fastfc.from_torch(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Softmax(dim=0)))
    with pytest.raises(ValueError, match=r"torch layer 2 \(Dense.*expects 6 input features"):
        fastfc.from_torch(nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(6, 2)))
    with pytest.raises(ValueError, match=r"torch layer 1 \(BatchNorm1d over dim 1 of samples "
                                         r"of shape \(3, 4\)"):
        fastfc.from_torch(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Flatten()),
                          input_shape=(3, 4))
    with pytest.raises(TypeError, match="nn.Sequential"):
        fastfc.from_torch(nn.Linear(2, 2))


# ------------------------------------------------------------------ sklearn
@pytest.mark.parametrize("kind", ["multiclass", "binary", "regressor", "fastfc"])
def test_from_sklearn(kind):
    pytest.importorskip("sklearn", reason="the sklearn extra")
    import warnings

    from sklearn.neural_network import MLPClassifier, MLPRegressor

    from fastfc import sklearn as fsk
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 6))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "regressor":
            est = MLPRegressor(hidden_layer_sizes=(9, 4), activation="tanh",
                               max_iter=20).fit(X, X[:, :2])
        elif kind == "fastfc":
            est = fsk.MLPClassifier((9,), activation="logistic", max_iter=20).fit(X, y)
        else:
            est = MLPClassifier((9, 4), max_iter=20).fit(X.astype(np.float32),
                                                         y > 0 if kind == "binary" else y)
    model = fastfc.from_sklearn(est)
    dtype = np.asarray(est.coefs_[0]).dtype
    assert model.dtype == dtype
    got = model.forward(X.astype(dtype))
    want = est.predict(X).reshape(len(X), -1) if kind == "regressor" else \
        est.predict_proba(X)[:, 1:] if kind == "binary" else est.predict_proba(X)
    np.testing.assert_allclose(got, want, rtol=_tol(dtype), atol=_tol(dtype))


def test_from_sklearn_refuses():
    pytest.importorskip("sklearn", reason="the sklearn extra")
    from sklearn.neural_network import MLPRegressor
    with pytest.raises(ValueError, match="fitted MLPClassifier or MLPRegressor"):
        fastfc.from_sklearn(MLPRegressor())
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPRegressor(loss="poisson", max_iter=2).fit(np.ones((5, 2)), np.ones(5))
    with pytest.raises(ValueError, match=r"sklearn layer 1 \(out_activation_='exp'"):
        fastfc.from_sklearn(est)


# ------------------------------------------------------------------ keras (plain specs)
def _keras_reference(x, specs):
    """The Keras layers' maths in NumPy (float64)."""
    acts = {None: lambda z: z, "linear": lambda z: z, "relu": lambda z: np.maximum(z, 0),
            "tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
            "leaky_relu": lambda z: np.where(z > 0, z, 0.2 * z),   # keras's default slope
            "softmax": lambda z: np.exp(z - z.max(1, keepdims=True)) /
            np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)}
    for s in specs:
        if s["class"] == "Dense":
            x = acts[s.get("activation")](x @ s["weights"][0] + s["weights"][1])
        elif s["class"] == "BatchNormalization":
            g, b, m, v = s["weights"]
            x = g * (x - m) / np.sqrt(v + s["epsilon"]) + b
        elif s["class"] == "LeakyReLU":
            x = np.where(x > 0, x, s["negative_slope"] * x)
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_from_keras(dtype):
    rng = np.random.default_rng(4)
    specs = [
        {"class": "Dense", "units": 10, "activation": "relu",
         "weights": [rng.normal(size=(7, 10)), rng.normal(size=10)]},
        {"class": "BatchNormalization", "epsilon": 1e-3, "momentum": 0.99,
         "weights": [rng.uniform(0.5, 2, 10), rng.normal(size=10), rng.normal(size=10),
                     rng.uniform(0.5, 2, 10)]},
        {"class": "Dropout", "rate": 0.25},
        {"class": "LeakyReLU", "negative_slope": 0.2},
        {"class": "Dense", "units": 10, "activation": "leaky_relu",
         "weights": [rng.normal(size=(10, 10)), rng.normal(size=10)]},
        {"class_name": "Dense", "config": {"units": 4, "activation": "softmax",
                                           "use_bias": True},
         "weights": [rng.normal(size=(10, 4)), rng.normal(size=4)]},
    ]
    for s in specs:
        if "weights" in s:
            s["weights"] = [w.astype(dtype) for w in s["weights"]]
    model = fastfc.from_keras(specs)
    assert model.dtype == dtype and model.layers[2].momentum == pytest.approx(0.01)
    x = X7.astype(dtype)
    want = _keras_reference(X7, [{**s, "class": s.get("class", s.get("class_name")),
                                  "activation": s.get("activation",
                                                      s.get("config", {}).get("activation"))}
                                 for s in specs])
    np.testing.assert_allclose(model.forward(x), want, rtol=_tol(dtype) * 4,
                               atol=_tol(dtype) * 4)


def test_from_keras_refuses():
    w = [np.ones((3, 2)), np.zeros(2)]
    with pytest.raises(ValueError, match=r"keras layer 1 \(Conv2D\) is not supported"):
        fastfc.from_keras([{"class": "Dense", "weights": w}, {"class": "Conv2D"}])
    with pytest.raises(ValueError, match=r"keras layer 1 \(LeakyReLU with negative_slope "
                                         r"-0.2: .*supported: Dense"):
        fastfc.from_keras([{"class": "Dense", "weights": w},
                           {"class": "LeakyReLU", "negative_slope": -0.2}])
    with pytest.raises(ValueError, match=r"keras layer 1 \(Dropout with rate 1.0: .*supported"):
        fastfc.from_keras([{"class": "Dense", "weights": w}, {"class": "Dropout", "rate": 1.0}])
    with pytest.raises(TypeError, match=r"keras layer 0 \(Dense\(3 -> 2\)\): W has dtype <U1"):
        fastfc.from_keras([{"class": "Dense", "weights": [np.full((3, 2), "a"), np.zeros(2)]}])
    with pytest.raises(ValueError, match=r"keras layer 0 \(activation 'gelu'"):
        fastfc.from_keras([{"class": "Dense", "activation": "gelu", "weights": w}])
    with pytest.raises(ValueError, match=r"keras layer 1 \(Dense.*expects 4 input features"):
        fastfc.from_keras([{"class": "Dense", "weights": w},
                           {"class": "Dense", "weights": [np.ones((4, 1)), np.zeros(1)]}])
    with pytest.raises(ValueError, match=r"keras layer 1 \(BatchNormalization\): expected "
                                         r"the four"):
        fastfc.from_keras([{"class": "Dense", "weights": w},
                           {"class": "BatchNormalization", "weights": [np.ones(2)] * 2}])
    with pytest.raises(ValueError, match=r"keras layer 0 \(Dense\(3 -> 2\)\): b has shape \(3,\)"):
        fastfc.from_keras([{"class": "Dense", "weights": [np.ones((3, 2)), np.zeros(3)]}])


# ------------------------------------------------------------------ onnx
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_onnx_round_trip_runs_in_onnxruntime(dtype):
    pytest.importorskip("onnx", reason="the onnx extra")
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra")
    model = _mlp(dtype)
    data = fastfc.to_onnx(model)
    x = X7.astype(dtype)
    got = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0]
    want = model.forward(x)
    assert got.dtype == dtype
    # ONNX float attributes are float32 (LeakyRelu alpha 0.2, BatchNormalization epsilon):
    # a float64 model moves by their rounding (measured: 5e-11)
    tol = max(_tol(dtype), 1e-9)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    back = fastfc.from_onnx(data)
    assert len(back.layers) == 14       # the 3 fused activations are nodes of their own
    np.testing.assert_allclose(back.forward(x), want, rtol=tol, atol=tol)
    assert back.layers[3].p == pytest.approx(0.3) and back.layers[2].momentum == \
        pytest.approx(0.1)


def test_onnx_nd_matmul_add_and_path(tmp_path):
    pytest.importorskip("onnx", reason="the onnx extra")
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra")
    model = fastfc.Sequential([fastfc.Dense(5, 6, activation="tanh"), fastfc.Flatten(),
                               fastfc.Dense(18, 4), fastfc.Softmax()],
                              loss="mse", input_shape=(3, 5), seed=3)
    data = fastfc.to_onnx(model)
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    x = np.random.default_rng(5).normal(size=(9, 3, 5)).astype(np.float32)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0]
    np.testing.assert_allclose(got, model.forward(x), rtol=1e-5, atol=1e-6)
    back = fastfc.from_onnx(path)
    assert back.input_shape == (3, 5)
    np.testing.assert_allclose(back.forward(x), model.forward(x), rtol=1e-6, atol=1e-7)


def _graph(nodes, inits, in_shape=("N", 4), out_shape=("N", 3)):
    from onnx import TensorProto, helper, numpy_helper
    return helper.make_model(helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()]),
        opset_imports=[helper.make_opsetid("", 17)])


def test_from_onnx_gemm_trans_b_alpha_beta():
    pytest.importorskip("onnx", reason="the onnx extra")
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra")
    from onnx import helper
    rng = np.random.default_rng(6)
    w, b = rng.normal(size=(3, 4)), rng.normal(size=3)     # PyTorch's (out, in)
    proto = _graph([helper.make_node("Gemm", ["x", "w", "b"], ["h"], transB=1, alpha=0.5,
                                     beta=2.0),
                    helper.make_node("LeakyRelu", ["h"], ["y"], alpha=0.3)], {"w": w, "b": b})
    x = rng.normal(size=(8, 4)).astype(np.float32)
    want = ort.InferenceSession(proto.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(fastfc.from_onnx(proto).forward(x), want, rtol=1e-5, atol=1e-6)


def test_from_onnx_refuses_what_it_cannot_honour():
    pytest.importorskip("onnx", reason="the onnx extra")
    from onnx import helper
    w = np.ones((4, 3))
    with pytest.raises(ValueError, match=r"ONNX layer 0 \(Gemm 'g' with transA=1.*supported"):
        fastfc.from_onnx(_graph([helper.make_node("Gemm", ["x", "w"], ["y"], name="g",
                                                  transA=1)], {"w": w}))
    with pytest.raises(ValueError, match=r"ONNX layer 1 \(Conv 'c'.*supported: a chain"):
        fastfc.from_onnx(_graph([helper.make_node("MatMul", ["x", "w"], ["h"]),
                                 helper.make_node("Conv", ["h", "w"], ["y"], name="c")],
                                {"w": w}))
    with pytest.raises(ValueError, match=r"ONNX layer 1 \(Dense.*expects 4 input features"):
        fastfc.from_onnx(_graph([helper.make_node("MatMul", ["x", "w"], ["h"]),
                                 helper.make_node("MatMul", ["h", "w"], ["y"])], {"w": w}))
    with pytest.raises(ValueError, match=r"ONNX layer 0 \(MatMul.*B is not an initializer"):
        fastfc.from_onnx(_graph([helper.make_node("MatMul", ["x", "x"], ["y"])], {}))
    with pytest.raises(ValueError, match=r"ONNX layer 1 \(LeakyReLU with negative_slope "
                                         r"-0.1.*supported: a chain"):
        fastfc.from_onnx(_graph([helper.make_node("MatMul", ["x", "w"], ["h"]),
                                 helper.make_node("LeakyRelu", ["h"], ["y"], alpha=-0.1)],
                                {"w": w}))
    with pytest.raises(TypeError, match="bytes, a path or an onnx.ModelProto"):
        fastfc.from_onnx(42)
    with pytest.raises(ValueError, match="the bytes is not an ONNX model"):
        fastfc.from_onnx(b"not an onnx file \x00\x01\x02")
    with pytest.raises(ValueError, match=r"the bytes is not an ONNX model \(no graph\)"):
        fastfc.from_onnx(b"")


def test_to_onnx_refuses():
    pytest.importorskip("onnx", reason="the onnx extra")
    model = fastfc.Sequential([fastfc.GlobalAvgPool(), fastfc.Dense(3, 2)], loss="mse",
                              input_shape=(2, 2, 3))
    with pytest.raises(ValueError, match=r"fastfc layer 0 \(GlobalAvgPool.*supported"):
        fastfc.to_onnx(model)
    with pytest.raises(ValueError, match="opset must be an int from 13"):
        fastfc.to_onnx(_mlp(np.float32), opset=11)


@pytest.mark.parametrize("module,call", [
    ("torch", lambda: fastfc.from_torch(None)), ("torch", lambda: fastfc.to_torch(None)),
    ("onnx", lambda: fastfc.to_onnx(None)), ("onnx", lambda: fastfc.from_onnx(b""))])
def test_missing_extra_is_named(monkeypatch, module, call):
    monkeypatch.setitem(__import__("sys").modules, module, None)    # import fails
    with pytest.raises(ImportError, match=rf"pip install fastfc\[{module}\]"):
        call()


# ------------------------------------------------------------------ defects of the user test
def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_logit_losses_drop_the_trailing_softmax_or_sigmoid():
    from fastfc import losses
    rng = np.random.default_rng(7)
    w = [rng.normal(size=(7, 4)), rng.normal(size=4)]
    for act, loss, proba in [("softmax", "softmax_cross_entropy", _softmax),
                             ("softmax", losses.SoftmaxCrossEntropy(), _softmax),
                             ("sigmoid", "binary_cross_entropy", lambda z: 1 / (1 + np.exp(-z)))]:
        model = fastfc.from_keras([{"class": "Dense", "activation": act, "weights": w}],
                                  loss=loss)
        assert [type(l) for l in model.layers] == [fastfc.Dense]
        np.testing.assert_allclose(model.predict_proba(X7), proba(X7 @ w[0] + w[1]),
                                   rtol=1e-12, atol=1e-12)
    kept = fastfc.from_keras([{"class": "Dense", "activation": "softmax", "weights": w}])
    assert type(kept.layers[-1]) is fastfc.Softmax      # mse: the output is probabilities
    kept = fastfc.from_keras([{"class": "Dense", "activation": "sigmoid", "weights": w}],
                             loss="softmax_cross_entropy")
    assert type(kept.layers[-1]) is fastfc.Sigmoid


@pytest.mark.parametrize("kind", ["multiclass", "binary"])
def test_from_sklearn_logit_loss_proba_is_the_estimators(kind):
    pytest.importorskip("sklearn", reason="the sklearn extra")
    import warnings

    from sklearn.neural_network import MLPClassifier
    rng = np.random.default_rng(8)
    X = rng.normal(size=(60, 6))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5) * (kind == "multiclass")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPClassifier((9,), max_iter=20, random_state=0).fit(X, y)
    loss = "softmax_cross_entropy" if kind == "multiclass" else "binary_cross_entropy"
    model = fastfc.from_sklearn(est, loss=loss)
    want = est.predict_proba(X)
    np.testing.assert_allclose(model.predict_proba(X), want if kind == "multiclass" else
                               want[:, 1:], rtol=1e-10, atol=1e-12)


def test_from_torch_and_onnx_logit_loss():
    torch = pytest.importorskip("torch", reason="the torch extra")
    net = torch.nn.Sequential(torch.nn.Linear(7, 4), torch.nn.Softmax(dim=1)).double()
    with torch.no_grad():
        want = net(torch.from_numpy(X7)).numpy()
    model = fastfc.from_torch(net, loss="cross_entropy")
    assert [type(l) for l in model.layers] == [fastfc.Dense]
    np.testing.assert_allclose(model.predict_proba(X7), want, rtol=1e-12, atol=1e-12)
    pytest.importorskip("onnx", reason="the onnx extra")
    back = fastfc.from_onnx(fastfc.to_onnx(fastfc.from_torch(net)), loss="cross_entropy")
    assert [type(l) for l in back.layers] == [fastfc.Dense]
    np.testing.assert_allclose(back.predict_proba(X7), want, rtol=1e-12, atol=1e-12)


def test_from_onnx_identity_and_constant_nodes():
    pytest.importorskip("onnx", reason="the onnx extra")
    from onnx import helper, numpy_helper
    rng = np.random.default_rng(9)
    w, b = rng.normal(size=(4, 3)), rng.normal(size=3)
    proto = _graph([helper.make_node("Identity", ["w"], ["w2"]),
                    helper.make_node("Constant", [], ["b2"], value=numpy_helper.from_array(
                        b.astype(np.float32))),
                    helper.make_node("Identity", ["x"], ["x2"]),
                    helper.make_node("Gemm", ["x2", "w2", "b2"], ["h"]),
                    helper.make_node("Identity", ["h"], ["y"])], {"w": w})
    x = rng.normal(size=(5, 4)).astype(np.float32)
    model = fastfc.from_onnx(proto)
    assert [type(l) for l in model.layers] == [fastfc.Dense]
    np.testing.assert_allclose(model.forward(x), x @ w + b, rtol=1e-5, atol=1e-5)
    # a Constant between a MatMul and the Add of its bias
    proto = _graph([helper.make_node("MatMul", ["x", "w"], ["h"]),
                    helper.make_node("Constant", [], ["b2"], value=numpy_helper.from_array(
                        b.astype(np.float32))),
                    helper.make_node("Add", ["h", "b2"], ["y"])], {"w": w})
    model = fastfc.from_onnx(proto)
    assert [type(l) for l in model.layers] == [fastfc.Dense]
    np.testing.assert_allclose(model.forward(x), x @ w + b, rtol=1e-5, atol=1e-5)


def test_from_onnx_of_torch_export_with_shared_initializers():
    torch = pytest.importorskip("torch", reason="the torch extra")
    pytest.importorskip("onnx", reason="the onnx extra")
    import io
    import warnings
    torch.manual_seed(0)
    nn = torch.nn
    # an untrained BatchNorm: weight == running_var, bias == running_mean, shared by Identity
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.BatchNorm1d(8), nn.Linear(8, 3)).eval()
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, torch.randn(5, 4), f, dynamo=False, opset_version=17)
    import onnx
    ops = [n.op_type for n in onnx.load_from_string(f.getvalue()).graph.node]
    assert "Identity" in ops, ops   # what this test is about: shared through Identity
    x = np.random.default_rng(10).normal(size=(6, 4)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(fastfc.from_onnx(f.getvalue()).forward(x), want,
                               rtol=1e-5, atol=1e-5)


def test_export_of_what_is_not_a_sequential():
    model = _mlp(np.float32)
    calls = []
    if __import__("importlib").util.find_spec("onnx"):
        calls.append(("to_onnx", fastfc.to_onnx))
    if __import__("importlib").util.find_spec("torch"):
        calls.append(("to_torch", fastfc.to_torch))
    for name, export in calls:
        with pytest.raises(TypeError, match=rf"{name}: model must be a fastfc Sequential.*"
                                            r"FrozenModel; export the Sequential it was"):
            export(model.freeze())
        with pytest.raises(TypeError, match=rf"{name}: model must be .*got NoneType"):
            export(None)
    with pytest.raises(TypeError, match="from_keras takes a list of layer specs"):
        fastfc.from_keras({"class": "Dense", "units": 3})


def test_export_of_a_fitted_fastfc_estimator():
    pytest.importorskip("sklearn", reason="the sklearn extra")
    torch = pytest.importorskip("torch", reason="the torch extra")
    import warnings

    from fastfc import sklearn as fsk
    rng = np.random.default_rng(11)
    X = rng.normal(size=(50, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = fsk.MLPClassifier((6,), max_iter=10).fit(X, (X[:, 0] > 0) + (X[:, 1] > 0.0) * 1)
    with torch.no_grad():
        got = fastfc.to_torch(est)(torch.from_numpy(X.astype(est.coefs_[0].dtype))).numpy()
    np.testing.assert_allclose(got, est.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_from_torch_bfloat16_becomes_float32():
    torch = pytest.importorskip("torch", reason="the torch extra")
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6),
                              torch.nn.Linear(6, 2)).to(torch.bfloat16).eval()
    model = fastfc.from_torch(net)
    assert model.dtype == np.float32
    x = np.random.default_rng(12).normal(size=(5, 4)).astype(np.float32)
    with torch.no_grad():
        want = net.float()(torch.from_numpy(x)).numpy()    # bfloat16 weights are exact floats
    np.testing.assert_allclose(model.forward(x), want, rtol=1e-5, atol=1e-5)


def test_to_onnx_opset_range_and_integral_types():
    onnx = pytest.importorskip("onnx", reason="the onnx extra")
    model = fastfc.Sequential([fastfc.Dense(4, 3)], loss="mse")
    proto = onnx.load_from_string(fastfc.to_onnx(model, opset=np.int64(17)))
    assert proto.opset_import[0].version == 17
    newest = onnx.defs.onnx_opset_version()
    for bad in (newest + 1, 99, True, 17.0, "17"):
        with pytest.raises(ValueError, match=rf"opset must be an int from 13 .* to {newest}"):
            fastfc.to_onnx(model, opset=bad)


@pytest.mark.parametrize("loss,proba", [("softmax_cross_entropy", _softmax),
                                        ("binary_cross_entropy",
                                         lambda z: 1 / (1 + np.exp(-z)))])
def test_exports_end_with_what_predict_proba_applies(loss, proba):
    """A loss that applies the Softmax/Sigmoid keeps it out of the layers: the exported
    network appends it (its output is predict_proba), or leaves it off with logits=True."""
    model = fastfc.Sequential([fastfc.Dense(7, 6, activation="tanh"), fastfc.Dense(6, 3)],
                              loss=loss, dtype=np.float64, seed=3)
    logits = model.layers[1].forward(model.layers[0].forward(X7)).copy()
    np.testing.assert_allclose(model.predict_proba(X7), proba(logits), rtol=1e-12)
    torch = pytest.importorskip("torch", reason="the torch extra")
    for flag, want in ((False, proba(logits)), (True, logits)):
        with torch.no_grad():
            got = fastfc.to_torch(model, logits=flag)(torch.from_numpy(X7)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    with pytest.raises(TypeError, match="logits must be True or False, got 'yes'"):
        fastfc.to_torch(model, logits="yes")
    pytest.importorskip("onnx", reason="the onnx extra")
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra")
    for flag, want in ((False, proba(logits)), (True, logits)):
        data = fastfc.to_onnx(model, logits=flag)
        got = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(
            None, {"input": X7})[0]
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
        back = fastfc.from_onnx(data, loss=loss)   # the appended layer is dropped again
        assert type(back.layers[-1]) is fastfc.Dense
        np.testing.assert_allclose(back.predict_proba(X7), proba(logits), rtol=1e-12)
