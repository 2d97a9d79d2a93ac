"""What users of the model API get wrong, and the clear error (or the right result) each
gets: layers or optimizers shared between models, hyperparameters out of range, layers
used before they have weights, files saved without a suffix."""
import copy
import gc
import re
import warnings

import numpy as np
import pytest

import fastfc
from fastfc import initializers, optim
from gradcheck import check_layer


def blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)


def test_a_live_models_layer_is_refused_and_a_copy_trains_on_its_own():
    X, y = blobs()
    base = fastfc.Sequential([fastfc.Dense(4, 16, activation="relu"), fastfc.Dense(16, 3)])
    base.fit(X, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"Dense\(4 -> 16, relu\) at position 0 already "
                                         r"belongs to another Sequential"):
        fastfc.Sequential(base.layers[:1] + [fastfc.Dense(16, 2)])
    free = copy.deepcopy(base.layers[0])
    assert free.needs_input_grad    # as any layer that is in no model
    head = fastfc.Sequential([free, fastfc.Dense(16, 2)])
    np.testing.assert_array_equal(head.layers[0].params["W"], base.layers[0].params["W"])
    before = base._theta.copy()
    head.fit(X, y % 2, epochs=2, verbose=0)
    np.testing.assert_array_equal(base._theta, before)     # the copy trains its own weights
    losses = base.fit(X, y, epochs=5, verbose=0)["loss"]   # and base still trains its own
    assert losses[-1] < losses[0] and not np.array_equal(base._theta, before)


def test_a_layer_of_a_deleted_model_moves_to_another_position():
    """Once its model is gone a layer may join another, where it computes its input
    gradient again (the first layer of a model skips it)."""
    X, y = blobs(16)
    dense = fastfc.Dense(4, 4, activation="tanh")
    fastfc.Sequential([dense, fastfc.Dense(4, 3)])
    gc.collect()
    model = fastfc.Sequential([fastfc.BatchNorm(4), dense, fastfc.Dense(4, 3)],
                              input_shape=(4,), dtype=np.float64)
    assert dense.needs_input_grad
    check_layer(dense, X.astype(np.float64), np.random.default_rng(1))


def test_a_live_models_optimizer_is_refused_copies_too():
    """Its state (moments, step count) fits the other model: only a new one will do."""
    first = fastfc.Sequential([fastfc.Dense(4, 3)])
    for opt in (first.optimizer, copy.deepcopy(first.optimizer)):
        with pytest.raises(ValueError, match=r"the optimizer Adam\(lr=0.001\) already "
                                             r"belongs to another Sequential .*pass a new one"):
            fastfc.Sequential([fastfc.Dense(4, 3)], optimizer=opt)


def test_a_failed_model_owns_nothing():
    dense, opt = fastfc.Dense(4, 8), optim.SGD()
    with pytest.raises(ValueError, match="Dense expects 5 input features") as caught:
        fastfc.Sequential([dense, fastfc.Dense(5, 2)], optimizer=opt)
    assert caught.value.__traceback__ is not None    # the failed model is still referenced
    fastfc.Sequential([dense, fastfc.Dense(8, 2)], optimizer=opt)


def test_a_deep_copy_of_a_model_owns_its_layers_and_trains_on_its_own():
    """Deep-copying a model was refused (its layers are views into its buffer); now the
    copy gets buffers, layers and an optimizer of its own (tests/test_pickle.py compares
    the training of both bit for bit)."""
    X, y = blobs()
    model = fastfc.Sequential([fastfc.Dense(4, 8, activation="relu"), fastfc.Dense(8, 3)])
    model.fit(X, y, epochs=1, verbose=0)
    twin = copy.deepcopy(model)
    assert all(np.shares_memory(v, twin._theta) and not np.shares_memory(v, model._theta)
               for v in twin.parameters())
    assert twin.optimizer is not model.optimizer and twin.layers[0] is not model.layers[0]
    with pytest.raises(ValueError, match="already belongs to another Sequential"):
        fastfc.Sequential(twin.layers[:1] + [fastfc.Dense(8, 3)])
    before = model._theta.copy()
    twin.fit(X, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(model._theta, before)


def test_custom_layers_with_parameters_move_between_models():
    class Scale(fastfc.layers.Layer):
        def init_params(self, rng, dtype):
            self.params = {"s": np.full(4, 2.0, dtype)}
            self.grads = {"s": np.zeros(4, dtype)}

        def forward(self, x, training=False):
            self._x = x
            return x * self.params["s"]

        def backward(self, grad):
            self.grads["s"][...] = (grad * self._x).sum(axis=0)
            return grad * self.params["s"]

    X, y = blobs()
    first = fastfc.Sequential([Scale(), fastfc.Dense(4, 3)], input_shape=(4,))
    first.fit(X, y, epochs=1, verbose=0)
    moved = fastfc.Sequential([copy.deepcopy(first.layers[0]), fastfc.Dense(4, 3)],
                              input_shape=(4,))
    np.testing.assert_array_equal(moved.layers[0].params["s"], first.layers[0].params["s"])


@pytest.mark.parametrize("make", [
    lambda s: fastfc.Dense(4, 6, activation="leaky_relu", negative_slope=s),
    lambda s: fastfc.LeakyReLU(s),
    lambda s: fastfc.linear(np.ones((2, 4)), np.ones((4, 6)), activation="leaky_relu",
                            negative_slope=s),
    lambda s: fastfc.linear_backward(np.ones((2, 6)), np.ones((2, 4)), np.ones((4, 6)),
                                     y=np.ones((2, 6)), activation="leaky_relu",
                                     negative_slope=s),
], ids=["Dense", "LeakyReLU", "linear", "linear_backward"])
@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf")])
def test_negative_slope_must_keep_the_sign(make, bad):
    """The derivative is taken from the output's sign, which a negative slope flips."""
    with pytest.raises(ValueError, match=f"negative_slope must be >= 0 and finite, got {bad}"):
        make(bad)
    make(0.0), make(1.5)


def test_save_without_the_suffix_loads(tmp_path):
    X, _ = blobs(8)
    model = fastfc.Sequential([fastfc.Dense(4, 3)])
    for name in ("m", "m.bin"):
        model.save(tmp_path / name)     # np.savez appends .npz
        for path in (tmp_path / name, str(tmp_path / name)):
            np.testing.assert_array_equal(fastfc.load(path).predict(X), model.predict(X))
    with pytest.raises(FileNotFoundError):
        fastfc.load(tmp_path / "missing")


def test_load_sets_the_saved_weights_without_running_the_initializer(tmp_path):
    with pytest.warns(RuntimeWarning, match="identical"):
        model = fastfc.Sequential([fastfc.Dense(4, 3, init="zeros")])
    model.layers[0].params["W"][...] = 2
    model.save(tmp_path / "m.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = fastfc.load(tmp_path / "m.npz")
    assert loaded.layers[0].init == "zeros" and (loaded.layers[0].params["W"] == 2).all()
    loaded.layers[0].init_params(np.random.default_rng(0), np.float32)   # the saved init
    assert not loaded.layers[0].params["W"].any()


def test_load_warns_when_the_file_holds_no_optimizer(tmp_path):
    model = fastfc.Sequential([fastfc.Dense(4, 3)],
                              optimizer=optim.SGD(schedule=lambda epoch: 1.0))
    with pytest.warns(UserWarning, match="optimizer is not saved"):
        model.save(tmp_path / "m.npz")
    with pytest.warns(UserWarning, match=r"holds no optimizer .*: the model trains on with a "
                                         r"new Adam\(\); pass optimizer= to load\(\)"):
        fastfc.load(tmp_path / "m.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fastfc.load(tmp_path / "m.npz", optimizer="sgd")


def test_parameters_set_by_hand_in_another_order_save_and_load(tmp_path):
    X, _ = blobs(8)
    bn = fastfc.BatchNorm(4)
    bn.params = {"beta": np.full(4, 5.0, np.float32), "gamma": np.full(4, 2.0, np.float32)}
    model = fastfc.Sequential([bn, fastfc.Dense(4, 3)], input_shape=(4,))
    assert list(bn.params) == ["gamma", "beta"]
    model.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(fastfc.load(tmp_path / "m.npz").predict_proba(X),
                                  model.predict_proba(X))


def test_load_refuses_weights_of_the_wrong_shape(tmp_path):
    model = fastfc.Sequential([fastfc.Dense(4, 3)])
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as data:
        arrays = dict(data)
    arrays["p0"] = np.ones((3, 4), np.float32)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=r"Dense\(4 -> 3\) at position 0 has parameters of "
                                         r"shapes \{'W': \(3, 4\), 'b': \(3,\)\}, expected"):
        fastfc.load(tmp_path / "bad.npz")


def test_batch_norm_needs_two_values_per_feature_in_training():
    X, y = blobs(33)
    model = fastfc.Sequential([fastfc.Dense(4, 5), fastfc.BatchNorm(5), fastfc.Dense(5, 3)])
    with pytest.raises(ValueError, match=r"BatchNorm in training needs more than one value "
                                         r"per feature .*input shape \(1, 5\)"):
        model.train_on_batch(X[:1], y[:1])
    before = model._theta.copy()
    with pytest.raises(ValueError, match=r"fit: 33 samples in batches of 32 leave a batch of "
                                         r"1, and BatchNorm needs two values per feature"):
        model.fit(X, y, batch_size=32, verbose=0)
    np.testing.assert_array_equal(model._theta, before)    # refused before any step
    model.fit(X, y, batch_size=11, verbose=0)
    with pytest.raises(ValueError, match="leave a batch of 1, .*: train on more samples"):
        model.fit(X[:1], y[:1], verbose=0)
    assert model.fit(X[:1], y[:1], epochs=0, verbose=0).epoch == []   # nothing to train
    model.predict(X[:1])                                    # evaluation: running statistics
    seq = fastfc.Sequential([fastfc.BatchNorm(4), fastfc.Flatten(), fastfc.Dense(8, 3)],
                            input_shape=(2, 4))
    seq.train_on_batch(np.ones((1, 2, 4)) + np.arange(2)[:, None], [1])   # 2 values each


def test_backward_takes_the_gradient_in_any_float_dtype():
    X, _ = blobs(5)
    model = fastfc.Sequential([fastfc.ReLU(), fastfc.Dense(4, 3)], input_shape=(4,))
    model(X, training=True)
    g64 = model.backward(np.ones((5, 3)))
    model(X, training=True)
    np.testing.assert_array_equal(g64, model.backward(np.ones((5, 3), np.float32)))
    with pytest.raises(ValueError, match=r"grad has per-sample shape \(2,\), the model "
                                         r"expects \(3,\)"):
        model.backward(np.ones((5, 2)))


def test_initializer_factories_and_results_are_checked():
    w = fastfc.Sequential([fastfc.Dense(40, 30, init=initializers.normal)]).layers[0]
    assert 0.005 < w.params["W"].std() < 0.02      # the factory with its default std
    with pytest.raises(ValueError, match=r"init <function .*> returned shape \(3, 2\), "
                                         r"expected \(2, 3\)"):
        fastfc.Sequential([fastfc.Dense(2, 3, init=lambda rng, shape, *_: np.ones((3, 2)))])


def test_history_plot_keeps_the_users_backend_and_needs_epochs(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    X, y = blobs()
    model = fastfc.Sequential([fastfc.Dense(4, 3)])
    with pytest.raises(ValueError, match="nothing to plot"):
        model.fit(X, y, epochs=0, verbose=0).plot(tmp_path / "a.png")
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        model.fit(X, y, epochs=2, verbose=0).plot(tmp_path / "b.png")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    assert (tmp_path / "b.png").stat().st_size > 1000


def test_label_columns_train_as_labels():
    X, y = blobs(40)
    for loss in ("softmax_cross_entropy", "hinge"):
        runs = []
        for labels in (y, y[:, None]):
            model = fastfc.Sequential([fastfc.Dense(4, 3)], loss=loss, seed=1)
            runs.append(model.train_on_batch(X, labels))
        assert runs[0] == runs[1]


def test_float64_input_beyond_float32_range_is_named():
    model = fastfc.Sequential([fastfc.Dense(4, 3)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # no NumPy overflow warning either
        with pytest.raises(ValueError, match="X holds values beyond the range of float32"):
            model.predict(np.full((2, 4), 1e300))
    with pytest.raises(ValueError, match="X contains NaN or Inf"):
        model.predict(np.full((2, 4), np.inf))


@pytest.mark.parametrize("loss", ["mse", "binary_cross_entropy"])
def test_real_valued_targets_of_another_kind_are_named(loss):
    X = blobs(6)[0]
    model = fastfc.Sequential([fastfc.Dense(4, 1)], loss=loss)
    before = [p.copy() for p in model.parameters()]
    for y in (np.ones(6) + 0.5j, np.ones(6).astype("datetime64[D]"),
              np.ones(6).astype("timedelta64[s]"), np.array(["1"] * 6), np.array([None] * 6)):
        with pytest.raises(TypeError, match=rf"y has dtype {re.escape(str(y.dtype))}; "
                                            "expected real-valued targets"):
            model.fit(X, y, epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(model.parameters(), before))


def test_backward_needs_a_training_forward_of_the_same_rows():
    X, y = blobs(8)
    model = fastfc.Sequential([fastfc.Dense(4, 5, activation="relu"), fastfc.Dense(5, 3)])
    g = np.ones((8, 3), np.float32)
    with pytest.raises(ValueError, match=r"backward needs the activations of a forward"):
        model.backward(g)                  # a fresh model
    model.forward(X, training=True)
    with pytest.raises(ValueError, match=r"grad has 7 rows; the last forward\(x, "
                                         r"training=True\) had 8"):
        model.backward(g[:7])
    model.backward(g)
    for run in (lambda: model.fit(X, y, epochs=1, verbose=0), lambda: model.forward(X),
                lambda: model.evaluate(X, y)):
        model.forward(X, training=True)
        run()                              # the layers no longer hold that forward
        with pytest.raises(ValueError, match=r"backward needs the activations"):
            model.backward(g)
    model.forward(X, training=True)
    model.predict(X)                       # its own C plan: the layers keep the forward
    model.backward(g)


def test_validation_data_errors_say_so():
    X, y = blobs(50)
    model = fastfc.Sequential([fastfc.Dense(4, 3)])
    with pytest.raises(ValueError, match="validation_data: y has 3 rows but X has 50"):
        model.fit(X, y, validation_data=(X, y[:3]), verbose=0)
    with pytest.raises(TypeError, match="validation_data: y has dtype <U1"):
        model.fit(X, y, validation_data=(X, np.array(["a"] * 50)), verbose=0)


def test_layers_before_they_have_weights():
    for layer, call in ((fastfc.Dense(3, 2), lambda l: l.forward(np.ones((2, 3)))),
                        (fastfc.Dense(3, 2), lambda l: l.to_conv_kernel(1, 1, 3)),
                        (fastfc.BatchNorm(3), lambda l: l.forward(np.ones((2, 3)), True))):
        with pytest.raises(RuntimeError, match=r"has no parameters yet: put it in a "
                                               r"Sequential or call init_params"):
            call(layer)


@pytest.mark.parametrize("dtype", [np.int64, np.float16, np.float32])
def test_from_conv_kernel_takes_any_real_kernel_and_the_slope(dtype):
    kernel = (np.arange(24).reshape(1, 2, 3, 4) - 12).astype(dtype)
    dense = fastfc.Dense.from_conv_kernel(kernel, activation="leaky_relu", negative_slope=0.5)
    x = np.ones((2, 6))
    z = x @ kernel.reshape(6, 4).astype(np.float64)
    np.testing.assert_allclose(dense.forward(x), np.where(z < 0, 0.5 * z, z))


@pytest.mark.parametrize("call,exc,match", [
    (lambda: optim.step_schedule(1, gamma=float("nan")), ValueError,
     "gamma must be > 0 and finite, got nan"),
    (lambda: optim.step_schedule(1, gamma=-1), ValueError, "gamma must be > 0 and finite"),
    (lambda: optim.cosine_schedule(3, min_factor=5), ValueError,
     r"min_factor must be in \[0, 1\], got 5"),
    (lambda: optim.SGD(schedule=0.5), TypeError,
     r"schedule must map the epoch to a factor of lr .*got 0.5"),
    (lambda: optim.Adam(betas=0.9), TypeError, r"betas must be a pair \(beta1, beta2\)"),
    (lambda: optim.Adam(betas=(0.9, 0.9, 0.9)), TypeError, "betas must be a pair"),
    (lambda: optim.Adam(betas=np.array([0.9, 2.0])), ValueError, r"betas must be in \[0, 1\)"),
    (lambda: optim.SGD(momentum=0.9, nesterov="false"), TypeError,
     "nesterov must be True or False, got 'false'"),
    (lambda: fastfc.Dense(3, 2, use_bias="no"), TypeError,
     "Dense: use_bias must be True or False, got 'no'"),
    (lambda: fastfc.LeakyReLU("a"), TypeError,
     "LeakyReLU: negative_slope must be a real number, got str"),
    (lambda: fastfc.Dropout(0.5, seed="a"), TypeError, "Dropout: seed must be an int, got str"),
    (lambda: fastfc.Dropout(0.5, seed=2**64), ValueError,
     r"Dropout: seed must be in \[0, 2\*\*64\), got 18446744073709551616"),
    (lambda: initializers.normal(-1), ValueError, "normal: std must be > 0 and finite, got -1"),
    (lambda: initializers.uniform(float("nan")), ValueError,
     "uniform: limit must be > 0 and finite, got nan"),
    (lambda: initializers.normal("a"), TypeError, "normal: std must be a real number"),
    (lambda: fastfc.Sequential([fastfc.ReLU(), fastfc.Dense(4, 3)], input_shape=4), TypeError,
     "input_shape must be a tuple of ints"),
    (lambda: fastfc.Sequential([fastfc.ReLU(), fastfc.Dense(4, 3)], input_shape=(-3,)),
     ValueError, "input_shape must be >= 1, got -3"),
    (lambda: fastfc.Sequential([fastfc.ReLU(), fastfc.Dense(4, 3)], input_shape=(2.5,)),
     TypeError, "input_shape must be an int, got float"),
], ids=lambda v: None if callable(v) or isinstance(v, type) else v[:30])
def test_bad_hyperparameters(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_a_schedule_that_gives_nan_stops_fit():
    X, y = blobs()
    model = fastfc.Sequential([fastfc.Dense(4, 3)],
                              optimizer=optim.SGD(schedule=lambda epoch: float("nan")))
    with pytest.raises(ValueError, match=r"schedule\(0\) must be >= 0 and finite, got nan"):
        model.fit(X, y, verbose=0)


def test_paths_no_other_test_reaches(tmp_path):
    """A LeakyReLU layer saved and loaded; Flatten at the head of a fused plan; more batch
    sizes than the plan cache keeps (the oldest plan is dropped and rebuilt)."""
    X, y = blobs(40)
    model = fastfc.Sequential([fastfc.Dense(4, 8), fastfc.LeakyReLU(0.3), fastfc.Dense(8, 3)])
    model.fit(X, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = fastfc.load(tmp_path / "m.npz")
    assert loaded.layers[1].negative_slope == 0.3
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    maps = X.reshape(40, 2, 2)
    flat = fastfc.Sequential([fastfc.Flatten(), fastfc.Dense(4, 3)], input_shape=(2, 2), seed=4)
    plain = fastfc.Sequential([fastfc.Flatten(), fastfc.Dense(4, 3)], input_shape=(2, 2), seed=4)
    plain._plan = lambda batch: None
    for batch in (5, 6, 7, 8, 9, 5):    # six batch sizes through a cache of four plans
        assert flat._plan(batch) is not None
        assert flat.train_on_batch(maps[:batch], y[:batch]) == \
            plain.train_on_batch(maps[:batch], y[:batch])
    assert len(flat._plans) == 4
    np.testing.assert_array_equal(flat._theta, plain._theta)


def test_a_failed_model_leaves_its_layers_uninitialised():
    """The shapes are checked before any layer is given weights: a later model of the
    same layers draws them from its own seed."""
    dense = fastfc.Dense(4, 8)
    with pytest.raises(ValueError, match="Dense expects 5 input features"):
        fastfc.Sequential([dense, fastfc.Dense(5, 2)], seed=0)
    assert not dense.params
    model = fastfc.Sequential([dense, fastfc.Dense(8, 2)], seed=7)
    fresh = fastfc.Sequential([fastfc.Dense(4, 8), fastfc.Dense(8, 2)], seed=7)
    np.testing.assert_array_equal(model._theta, fresh._theta)


@pytest.mark.parametrize("tail,loss", [
    (lambda: [fastfc.Softmax()], "softmax_cross_entropy"),
    (lambda: [fastfc.Sigmoid()], "binary_cross_entropy"),
    (lambda: [fastfc.ReLU(), fastfc.Dense(3, 1, activation="sigmoid")], "binary_cross_entropy"),
])
def test_a_last_layer_that_the_loss_applies_again_is_refused(tail, loss):
    """predict_proba would apply the softmax (sigmoid) twice, training would see it twice."""
    with pytest.raises(ValueError, match=r"the last layer, .* applies the (softmax|sigmoid) "
                                         r"that the loss \w+ applies to the logits itself"):
        fastfc.Sequential([fastfc.Dense(4, 3)] + tail(), loss=loss)
    fastfc.Sequential([fastfc.Dense(4, 3)] + tail(), loss="mse")   # probabilities as outputs


def test_a_failed_initializer_leaves_the_layers_as_they_came():
    """Layers are given weights one by one: when a later one's initializer fails, the
    earlier ones go back to no weights, and a later model draws them from its own seed
    and dtype."""
    def bad_init(rng, shape, fan_in, fan_out, dtype):
        return np.zeros((1, 1))
    first, bn = fastfc.Dense(3, 4), fastfc.BatchNorm(4)
    with pytest.raises(ValueError, match=r"init .* returned shape \(1, 1\), expected \(4, 2\)"):
        fastfc.Sequential([first, bn, fastfc.Dense(4, 2, init=bad_init)], seed=0)
    assert not first.params and not bn.params and bn.running_mean is None
    model = fastfc.Sequential([first, bn, fastfc.Dense(4, 2)], seed=7, dtype=np.float64)
    fresh = fastfc.Sequential([fastfc.Dense(3, 4), fastfc.BatchNorm(4), fastfc.Dense(4, 2)],
                              seed=7, dtype=np.float64)
    np.testing.assert_array_equal(model._theta, fresh._theta)
    assert model._theta.dtype == np.float64
