import numpy as np
import pytest

import fastfc
from fastfc import _core
from gradcheck import numeric_grad


def mlp(seed=0, dropout=0.0, dtype=np.float32, loss="softmax_cross_entropy", optimizer=None):
    layers = [fastfc.Dense(6, 16, activation="relu")]
    if dropout:
        layers.append(fastfc.Dropout(dropout))
    layers += [fastfc.Dense(16, 8, activation="tanh"), fastfc.Dense(8, 3)]
    return fastfc.Sequential(layers, loss=loss, optimizer=optimizer, seed=seed, dtype=dtype)


def blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[3, 0, 0, 0, 0, 0], [0, 3, 0, 0, 0, 0], [0, 0, 3, 0, 0, 0]], float)
    y = rng.integers(0, 3, n)
    return (centers[y] + rng.standard_normal((n, 6)) * 0.5).astype(np.float32), y


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "hinge", "mse"])
def test_whole_model_gradient(loss):
    model = fastfc.Sequential(
        [fastfc.Dense(4, 5, activation="sigmoid"), fastfc.BatchNorm(5), fastfc.Dense(5, 3)],
        loss=loss, seed=1, dtype=np.float64)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((7, 4))
    y = rng.integers(0, 3, 7) if loss != "mse" else rng.standard_normal((7, 3))
    y = model.loss.check_targets(y, 3, 7)

    def f():
        z = model.forward(x, training=True)
        return model.loss(z, y, np.empty_like(z))

    z = model.forward(x, training=True)
    g = np.empty_like(z)
    model.loss(z, y, g)
    model.backward(g)
    analytic = model._dtheta.copy()
    np.testing.assert_allclose(analytic, numeric_grad(f, model._theta), rtol=1e-5, atol=1e-7)


def test_fit_reduces_loss_and_learns():
    X, y = blobs()
    model = mlp()
    before = model.evaluate(X, y)["loss"]
    hist = model.fit(X, y, epochs=15, batch_size=32, verbose=0)
    assert hist["loss"][-1] < hist["loss"][0]
    after = model.evaluate(X, y)
    assert after["loss"] < before / 3 and after["accuracy"] > 0.95
    assert model.predict(X).shape == (300,)
    p = model.predict_proba(X)
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-5)


def test_validation_and_history_plot(tmp_path):
    X, y = blobs()
    hist = mlp().fit(X, y, epochs=3, validation_split=0.2, verbose=0)
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(hist["val_loss"]) == 3
    path = hist.plot(tmp_path / "curves.png")
    assert path.exists() and path.stat().st_size > 1000


def test_early_stopping_restores_best():
    X, y = blobs(200)
    Xv, yv = blobs(100, seed=1)
    yv = (yv + 1) % 3   # validation labels that training cannot fit: val loss rises
    model = mlp(optimizer=fastfc.optim.SGD(lr=0.05))
    hist = model.fit(X, y, epochs=50, validation_data=(Xv, yv), early_stopping=3, verbose=0)
    assert hist.epochs < 50
    best = int(np.argmin(hist["val_loss"]))
    assert hist.epochs == best + 1 + 3
    assert model.evaluate(Xv, yv)["loss"] == pytest.approx(hist["val_loss"][best], rel=1e-5)


def test_same_seed_same_run():
    X, y = blobs()
    runs = []
    for _ in range(2):
        model = mlp(seed=7, dropout=0.3)
        model.fit(X, y, epochs=3, verbose=0)
        runs.append(model._theta.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    other = mlp(seed=8, dropout=0.3)
    other.fit(X, y, epochs=3, verbose=0)
    assert not np.array_equal(runs[0], other._theta)


def test_fit_goes_on_where_the_last_call_stopped():
    """Two calls of two epochs train as one call of four: the next shuffles, dropout masks,
    Adam moments and epochs of the learning-rate schedule."""
    X, y = blobs()
    runs = []
    for calls in ([4], [2, 2], [1, 3]):
        model = mlp(seed=3, dropout=0.3, optimizer=fastfc.optim.Adam(
            lr=0.01, schedule=fastfc.optim.cosine_schedule(4)))
        seen = []
        for epochs in calls:
            hist = model.fit(X, y, epochs=epochs, batch_size=64, verbose=0)
            seen += hist.epoch
        assert model.epochs_done == hist.stopped_epoch == 4 and seen == [0, 1, 2, 3]
        runs.append(model._theta.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])


def test_save_load_round_trip(tmp_path):
    X, y = blobs()
    model = fastfc.Sequential([fastfc.Dense(6, 10, activation="relu"), fastfc.BatchNorm(10),
                               fastfc.Dropout(0.1), fastfc.Dense(10, 3)], seed=3)
    model.fit(X, y, epochs=2, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = fastfc.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.summary() == model.summary()


@pytest.mark.parametrize("make_optimizer", [
    lambda: fastfc.optim.Adam(lr=0.01, schedule=fastfc.optim.cosine_schedule(4, 0.1)),
    lambda: fastfc.optim.AdamW(lr=0.01, weight_decay=0.1),
    lambda: fastfc.optim.SGD(lr=0.05, momentum=0.9, nesterov=True,
                             schedule=fastfc.optim.step_schedule(2, 0.5)),
    lambda: fastfc.optim.RMSProp(lr=0.01, alpha=0.9, weight_decay=1e-3),
    lambda: fastfc.optim.AdaGrad(lr=0.05),
    lambda: fastfc.optim.SGD(lr=np.float32(0.05), momentum=np.float64(0.5),
                             schedule=fastfc.optim.step_schedule(np.int64(3), np.float32(0.5))),
], ids=["adam-cosine", "adamw", "sgd-nesterov-step", "rmsprop", "adagrad", "numpy-scalars"])
def test_a_loaded_model_trains_on_as_if_never_saved(tmp_path, make_optimizer):
    """Saved after two epochs and loaded, a model trains its last two epochs exactly as
    the model that never stopped: optimizer state and schedule, shuffles, dropout."""
    X, y = blobs()
    straight = mlp(seed=5, dropout=0.2, optimizer=make_optimizer())
    straight.fit(X, y, epochs=4, batch_size=50, verbose=0)
    first = mlp(seed=5, dropout=0.2, optimizer=make_optimizer())
    first.fit(X, y, epochs=2, batch_size=50, verbose=0)
    first.save(tmp_path / "m.npz")
    resumed = fastfc.load(tmp_path / "m.npz")
    assert type(resumed.optimizer) is type(first.optimizer)
    assert resumed.optimizer.lr == first.optimizer.lr   # scheduled, for train_on_batch
    resumed.fit(X, y, epochs=2, batch_size=50, verbose=0)
    np.testing.assert_array_equal(resumed._theta, straight._theta)


def test_save_warns_about_an_optimizer_it_cannot_rebuild(tmp_path):
    X, y = blobs(40)
    model = mlp(optimizer=fastfc.optim.SGD(lr=0.1, schedule=lambda epoch: 0.5))
    model.fit(X, y, epochs=1, verbose=0)
    with pytest.warns(UserWarning, match=r"the optimizer is not saved \(its schedule <function "
                                         r".*> is not a fastfc.optim schedule\): pass "
                                         r"optimizer= to load\(\) to train on"):
        model.save(tmp_path / "m.npz")
    class MyAdam(fastfc.optim.Adam):
        pass
    with pytest.warns(UserWarning, match=r"not saved \(MyAdam is not a fastfc.optim optimizer"):
        mlp(optimizer=MyAdam()).save(tmp_path / "m2.npz")
    loaded = fastfc.load(tmp_path / "m.npz", optimizer="sgd")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_summary(capsys):
    text = mlp().summary()
    assert "Dense(6 -> 16, relu)" in text and "(None, 16)" in text
    assert f"total parameters: {6 * 16 + 16 + 16 * 8 + 8 + 8 * 3 + 3}" in text
    assert text in capsys.readouterr().out


def test_train_on_batch_float64_and_one_hot():
    X, y = blobs(64)
    model = mlp(dtype=np.float64)
    l1 = model.train_on_batch(X, np.eye(3)[y])
    for _ in range(20):
        l2 = model.train_on_batch(X, y)
    assert l2 < l1


@pytest.mark.parametrize("call,exc,match", [
    (lambda m, X, y: m.fit(X[:, :5], y, verbose=0), ValueError,
     r"X has per-sample shape \(5,\), the model expects \(6,\)"),
    (lambda m, X, y: m.fit(X, y + 5, verbose=0), ValueError, r"labels must be in \[0, 3\)"),
    (lambda m, X, y: m.fit(np.where(X > 2, np.nan, X), y, verbose=0), ValueError, "NaN"),
    (lambda m, X, y: m.fit(X[:0], y[:0], verbose=0), ValueError, "X is empty"),
    (lambda m, X, y: m.fit(X, y[:-1], verbose=0), ValueError, "y has 299 rows but X has 300"),
    (lambda m, X, y: m.train_on_batch(X[:, :4], y), ValueError, "per-sample shape"),
    (lambda m, X, y: m.evaluate(X, -y - 1), ValueError, "labels must be in"),
    (lambda m, X, y: m.predict(X.astype(complex)), TypeError, "complex"),
])
def test_bad_input(call, exc, match):
    X, y = blobs()
    with pytest.raises(exc, match=match):
        call(mlp(), X, y)


def test_bad_names():
    with pytest.raises(ValueError, match="unknown loss 'xent'; valid:"):
        fastfc.Sequential([fastfc.Dense(2, 2)], loss="xent")
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'; valid:"):
        fastfc.Sequential([fastfc.Dense(2, 2)], optimizer="lbfgs")
    with pytest.raises(ValueError, match="unknown initializer"):
        fastfc.Sequential([fastfc.Dense(2, 2, init="ones")])
    with pytest.raises(ValueError, match="input_shape is needed"):
        fastfc.Sequential([fastfc.Flatten(), fastfc.Dense(4, 2)])


def test_conv_head_model():
    rng = np.random.default_rng(0)
    maps = rng.standard_normal((20, 3, 3, 4)).astype(np.float32)
    model = fastfc.Sequential([fastfc.GlobalAvgPool(), fastfc.Dense(4, 2)], input_shape=(3, 3, 4))
    assert model.forward(maps).shape == (20, 2)
    flat = fastfc.Sequential([fastfc.Flatten(), fastfc.Dense(36, 2)], input_shape=(3, 3, 4))
    assert flat.forward(maps).shape == (20, 2)


def test_history_plot_without_matplotlib(monkeypatch, tmp_path):
    import sys
    hist = fastfc.History()
    hist.append(loss=1.0, accuracy=0.5)
    assert hist.epoch == [0]
    for name in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match="History.plot needs matplotlib"):
        hist.plot(tmp_path / "x.png")


def _layer_by_layer(model):
    """The same model without its fused C plan (every step runs layer by layer)."""
    model._plan = lambda batch: None
    return model


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "mse", "hinge"])
def test_fused_step_is_the_layer_by_layer_step(dtype, loss):
    """The C plan runs the same kernels on the same masks: bit-identical training, with a
    ReLU folded into the Dense before it and a LeakyReLU that stays a layer of its own."""
    def make():
        return fastfc.Sequential(
            [fastfc.Dropout(0.1), fastfc.Dense(6, 17, activation="relu"), fastfc.Dropout(0.3),
             fastfc.Dense(17, 9), fastfc.ReLU(), fastfc.Dense(9, 7, activation="tanh"),
             fastfc.LeakyReLU(0.2), fastfc.Dense(7, 3)],
            loss=loss, optimizer=fastfc.optim.Adam(lr=0.01), seed=5, dtype=dtype,
            input_shape=(6,))
    X, y = blobs(70)
    if loss == "mse":
        y = np.eye(3)[y]
    fused, plain = make(), _layer_by_layer(make())
    steps, fused_step = [], fused._fused_step
    fused._fused_step = lambda *args: steps.append(1) or fused_step(*args)
    for start in range(0, 70, 32):   # batches of 32, 32 and 6: two plans
        xb, yb = X[start:start + 32], y[start:start + 32]
        assert fused.train_on_batch(xb, yb) == plain.train_on_batch(xb, yb)
    assert len(steps) == 3     # the C plan ran: not the layer path against itself
    np.testing.assert_array_equal(fused._theta, plain._theta)
    hist_f = fused.fit(X, y, epochs=2, batch_size=16, verbose=0)
    hist_p = plain.fit(X, y, epochs=2, batch_size=16, verbose=0)
    assert hist_f.history == hist_p.history
    np.testing.assert_array_equal(fused._theta, plain._theta)


@pytest.mark.parametrize("act", [fastfc.Sigmoid, fastfc.Tanh])
def test_fused_step_with_smooth_activation_layers(act):
    """Sigmoid/Tanh layers run in C with libm's exp/tanh, not NumPy's: equal to rounding."""
    def make():
        return fastfc.Sequential([fastfc.Dense(6, 8), act(), fastfc.Dropout(0.2),
                                  act(), fastfc.Dense(8, 3)], seed=1, dtype=np.float64)
    X, y = blobs(64)
    fused, plain = make(), _layer_by_layer(make())
    for _ in range(3):
        assert fused.train_on_batch(X, y) == pytest.approx(plain.train_on_batch(X, y), rel=1e-12)
    np.testing.assert_allclose(fused._theta, plain._theta, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("act", [fastfc.Sigmoid, fastfc.Tanh, fastfc.LeakyReLU])
@pytest.mark.parametrize("threads", [2, 3])
def test_fused_activation_layers_split_over_threads(keep_threads, act, threads):
    """A wide activation layer (512 x 256 values) runs its C backward on several threads:
    every column block of each thread must be there."""
    fastfc.set_num_threads(threads)
    def make():
        return fastfc.Sequential([fastfc.Dense(6, 256), fastfc.Dropout(0.2), act(),  # not folded
                                  fastfc.Dense(256, 3)], seed=2, dtype=np.float64)
    X, y = blobs(512)
    fused, plain = make(), _layer_by_layer(make())
    teamed = False
    for step in range(50):  # until a step got a team: a woken worker may come after the
        want = plain.train_on_batch(X, y)   # caller took every chunk
        before = _core._wide_regions()
        assert fused.train_on_batch(X, y) == pytest.approx(want, rel=1e-12)
        teamed |= _core._wide_regions() > before
        if teamed and step >= 1:
            break
    assert teamed   # the fused step's regions got a team
    np.testing.assert_allclose(fused._theta, plain._theta, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", [None, "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("front", [0, 2])
def test_a_deep_layer_split_by_k_trains_bit_for_bit(keep_threads, dtype, act, threads, front):
    """A training forward whose weights span several K blocks (two a thread, the last one
    short) is split by K on a team (partial sums added in block order), its dW by the same
    rows, and Adam updates each thread's rows on that thread, the parameters before and
    after them on the first (a ring that wraps when a small layer comes first): the same
    bits as the layer-by-layer step's linear, which splits by columns, its dW by a grid and
    its Adam evenly."""
    fastfc.set_num_threads(threads)
    k = 2 * threads * fastfc.get_config()[f"blocks_{np.dtype(dtype).name}"]["KC"] - 7
    def make():
        layers = [fastfc.Dense(front, k)] if front else []
        return fastfc.Sequential(layers + [fastfc.Dense(k, 65, activation=act),
                                           fastfc.Dense(65, 3)],
                                 optimizer=fastfc.optim.Adam(lr=0.01), seed=3, dtype=dtype)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((33, front or k)), rng.integers(0, 3, 33)
    fused, plain = make(), _layer_by_layer(make())
    cuts = None
    for step in range(50):  # until a step split by K on a team, as above
        want = plain.train_on_batch(X, y)
        assert fused.train_on_batch(X, y) == want
        cuts = _core._row_owner_cuts(fused._theta, threads)
        if cuts is not None and step >= 1:
            break
    w = fused.layers[-2].params["W"]   # its rows, thread by thread, then the rest on the first
    start = (w.ctypes.data - fused._theta.ctypes.data) // w.itemsize
    assert cuts is not None and cuts[0] == cuts[-1] == start + w.size
    assert all(start < c < start + w.size and c % 65 == start % 65 for c in cuts[1:-1])
    np.testing.assert_array_equal(fused._theta, plain._theta)
    fastfc.set_num_threads(1)   # a forward not split by K: Adam splits evenly again
    fused.train_on_batch(X, y)
    assert _core._row_owner_cuts(fused._theta, threads) is None


def test_models_without_a_fused_path_run_layer_by_layer():
    X, y = blobs(40)
    for layers in ([fastfc.Dense(6, 5), fastfc.BatchNorm(5), fastfc.Dense(5, 3)],
                   [fastfc.Dense(6, 3), fastfc.Softmax()]):
        model = fastfc.Sequential(layers, loss="mse" if len(layers) == 2 else
                                  "softmax_cross_entropy", seed=0)
        assert model._plan(40) is None
        target = np.eye(3)[y] if len(layers) == 2 else y
        assert np.isfinite(model.train_on_batch(X, target))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 17, 65, 100_003])
def test_all_finite_finds_every_nan_and_inf(dtype, n):
    """The C check train_on_batch runs on X: each non-finite value, anywhere, is found."""
    x = np.random.default_rng(n).standard_normal(n).astype(dtype)
    x[0] = np.finfo(dtype).max
    assert _core._all_finite(x) and _core._all_finite(x[:0].copy())
    for bad in (np.nan, np.inf, -np.inf):
        for pos in {0, n // 2, n - 1}:
            y = x.copy()
            y[pos] = bad
            assert not _core._all_finite(y), (bad, pos)


# ---------------------------------------------------------------- regressions

def test_accuracy_of_a_single_output_binary_model():
    """predict gives (n,) labels and y is (n, 1): compared row by row, not broadcast to
    (n, n)."""
    X = np.random.default_rng(0).standard_normal((200, 2)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    model = fastfc.Sequential([fastfc.Dense(2, 1)], loss="binary_cross_entropy",
                              optimizer=fastfc.optim.Adam(0.1), seed=0)
    hist = model.fit(X, y, epochs=20, validation_split=0.25, verbose=0)
    want = (model.predict(X) == y).mean()
    assert want > 0.95
    assert model.evaluate(X, y)["accuracy"] == pytest.approx(want)
    assert hist["accuracy"][-1] > 0.9 and hist["val_accuracy"][-1] > 0.9


def test_non_contiguous_labels_on_the_fused_path():
    X, y = blobs(64)
    Y = np.stack([y, y], axis=1).astype(np.int64)   # Y[:, 0]: int64 with a stride of 2
    a, b = mlp(), mlp()
    assert a._plan(64) is not None and not Y[:, 0].flags.c_contiguous
    assert a.train_on_batch(X, Y[:, 0]) == b.train_on_batch(X, y.copy())
    assert a.train_on_batch(X[::2], y[::2]) == b.train_on_batch(X[::2], y[::2].copy())
    ha = a.fit(X, Y[:, 0], epochs=2, batch_size=16, shuffle=False, verbose=0)
    hb = b.fit(X, y.copy(), epochs=2, batch_size=16, shuffle=False, verbose=0)
    assert ha.history == hb.history


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_converts_the_input_to_the_model_dtype(dtype):
    model = fastfc.Sequential([fastfc.Dense(2, 3, activation="tanh"), fastfc.Dense(3, 2)],
                              seed=0, dtype=dtype)
    x = np.arange(8).reshape(4, 2)
    want = model(x.astype(dtype))
    for given in (x, x.astype(np.float64), x.astype(np.float32), x.tolist()):
        got = model(given)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(model.forward(given), want)


def test_forward_returns_an_array_the_caller_owns():
    model = mlp()
    x1, x2 = blobs(5)[0], blobs(5, seed=1)[0]
    a = model(x1)
    kept = a.copy()
    model(x2)
    model.forward(x2, training=True)
    np.testing.assert_array_equal(a, kept)


def test_preset_weights_are_kept():
    conv = fastfc.Dense.from_conv_kernel(np.ones((1, 1, 2, 3), np.float32))
    hand = fastfc.Dense(3, 2)
    hand.init_params(np.random.default_rng(9), np.float64)
    w_hand = hand.params["W"].copy()
    model = fastfc.Sequential([conv, hand], loss="mse", seed=0)
    np.testing.assert_array_equal(model.layers[0].params["W"], np.ones((2, 3)))
    np.testing.assert_array_equal(model.layers[1].params["W"], w_hand.astype(np.float32))
    assert all(v.dtype == np.float32 and np.shares_memory(v, model._theta)
               for v in model.parameters())
    # still trained through the flat buffer
    model.train_on_batch(np.ones((4, 2), np.float32), np.zeros((4, 2)))
    assert not np.array_equal(model.layers[0].params["W"], np.ones((2, 3)))


def test_one_layer_object_at_two_positions_is_refused():
    r = fastfc.ReLU()
    with pytest.raises(ValueError, match=r"the same ReLU\(\) object is at positions \[1, 4\]; "
                                         r"create one layer instance per position"):
        fastfc.Sequential([fastfc.Dense(5, 8), r, fastfc.BatchNorm(8), fastfc.Dense(8, 8), r,
                           fastfc.Dense(8, 3)])


def test_early_stopping_restores_batchnorm_statistics():
    X, y = blobs(200)
    Xv, yv = blobs(100, seed=1)
    yv = (yv + 1) % 3
    model = fastfc.Sequential([fastfc.Dense(6, 16, activation="relu"), fastfc.BatchNorm(16),
                               fastfc.Dense(16, 3)], optimizer=fastfc.optim.SGD(lr=0.05),
                              seed=0)
    hist = model.fit(X, y, epochs=50, validation_data=(Xv, yv), early_stopping=3, verbose=0)
    best = int(np.argmin(hist["val_loss"]))
    assert hist.epochs == best + 1 + 3
    assert model.evaluate(Xv, yv)["loss"] == hist["val_loss"][best]


def test_validation_split_that_leaves_no_training_data():
    X, y = blobs(10)
    with pytest.raises(ValueError, match=r"validation_split=0.5 of 1 samples leaves 0 for "
                                         r"training and 1 for validation"):
        mlp().fit(X[:1], y[:1], validation_split=0.5, verbose=0)
    with pytest.raises(ValueError, match=r"leaves 10 for training and 0 for validation"):
        mlp().fit(X, y, validation_split=0.01, verbose=0)


def test_save_refuses_a_custom_loss(tmp_path):
    class MyMSE(fastfc.losses.MeanSquaredError):
        pass
    model = fastfc.Sequential([fastfc.Dense(2, 1)], loss=MyMSE())
    with pytest.raises(TypeError, match=r"only models with a built-in loss \(softmax_cross_"
                                        r"entropy, .*\) can be saved, got MyMSE"):
        model.save(tmp_path / "m.npz")


@pytest.mark.parametrize("seed", [2**63, 2**64 - 1, 2**64, 2**100])
def test_any_non_negative_seed_trains(seed):
    X, y = blobs(40)
    model = mlp(seed=seed, dropout=0.5)
    assert all(0 <= l.seed < 2**64 for l in model.layers if isinstance(l, fastfc.Dropout))
    assert np.isfinite(model.fit(X, y, epochs=1, verbose=0)["loss"][0])


def test_load_of_a_file_without_config(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="is not a fastfc model file"):
        fastfc.load(tmp_path / "other.npz")


@pytest.mark.parametrize("call,exc,match", [
    (lambda m, X, y: m.predict(X, batch_size=0), ValueError, "batch_size must be >= 1, got 0"),
    (lambda m, X, y: m.predict_proba(X, batch_size=-2), ValueError, "batch_size must be >= 1"),
    (lambda m, X, y: m.evaluate(X, y, batch_size=0), ValueError, "batch_size must be >= 1"),
    (lambda m, X, y: m.fit(X, y, batch_size=0, verbose=0), ValueError,
     "batch_size must be >= 1, got 0"),
    (lambda m, X, y: m.fit(X, y, batch_size=8.5, verbose=0), TypeError,
     "batch_size must be an int, got float"),
    (lambda m, X, y: m.fit(X, y, early_stopping=-1, verbose=0), ValueError,
     "early_stopping must be >= 0, got -1"),
    (lambda m, X, y: m.fit(X, y, early_stopping="3", verbose=0), TypeError,
     "early_stopping must be an int, got str"),
    (lambda m, X, y: m.fit(X, y, validation_data=X, verbose=0), TypeError,
     r"validation_data must be a pair \(X_val, y_val\), got ndarray"),
    (lambda m, X, y: m.fit(X, y, validation_data=(X, y, y), verbose=0), ValueError,
     r"validation_data must be a pair \(X_val, y_val\), got 3 items"),
    (lambda m, X, y: m.fit(X, y, validation_split=1.0, verbose=0), ValueError,
     r"validation_split must be in \[0, 1\), got 1.0"),
    (lambda m, X, y: m.fit(X, y, validation_split=float("nan"), verbose=0), ValueError,
     r"validation_split must be in \[0, 1\), got nan"),
    (lambda m, X, y: m.fit(X, y, validation_data=(X, y), validation_split=-0.1, verbose=0),
     ValueError, r"validation_split must be in \[0, 1\), got -0.1"),
    (lambda m, X, y: m.train_on_batch(X[:1], 1), ValueError,
     "y must have one row per sample, got the scalar 1"),
    (lambda m, X, y: fastfc.Sequential([fastfc.Dense(6, 3)], seed=-1), ValueError,
     "seed must be >= 0, got -1"),
    (lambda m, X, y: fastfc.Sequential([fastfc.Dense(6, 3)], seed=1.5), TypeError,
     "seed must be an int, got float"),
    (lambda m, X, y: fastfc.Sequential([fastfc.Dense(6, 3)], seed="3"), TypeError,
     "seed must be an int, got str"),
])
def test_bad_arguments(call, exc, match):
    X, y = blobs(20)
    with pytest.raises(exc, match=match):
        call(mlp(), X, y)


@pytest.mark.parametrize("loss,target", [
    ("mse", lambda y: np.where(np.eye(3)[y] > 0, np.nan, 0)),
    ("mse", lambda y: np.full((len(y), 3), np.inf)),
    ("softmax_cross_entropy", lambda y: np.where(np.eye(3)[y] > 0, np.nan, 0)),
    ("binary_cross_entropy", lambda y: np.where(np.eye(3)[y] > 0, np.nan, 0)),
])
def test_non_finite_targets_are_refused(loss, target):
    X, y = blobs(20)
    model = mlp(loss=loss)
    with pytest.raises(ValueError, match="y contains NaN or Inf"):
        model.train_on_batch(X, target(y))
    with pytest.raises(ValueError, match="y contains NaN or Inf"):
        model.fit(X, target(y), verbose=0)
