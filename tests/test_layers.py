import copy
import pickle
import re
import numpy as np
import pytest

import fastfc
from fastfc import initializers, layers
from gradcheck import check_layer


@pytest.fixture
def rng():
    return np.random.default_rng(3)


@pytest.mark.parametrize("act", [None, "relu", "leaky_relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_gradients(rng, act, use_bias):
    layer = fastfc.Dense(5, 4, activation=act, use_bias=use_bias)
    layer.init_params(rng, np.float64)
    check_layer(layer, rng.standard_normal((3, 5)), rng)


def test_dense_nd_input(rng):
    layer = fastfc.Dense(4, 3, activation="tanh")
    layer.init_params(rng, np.float64)
    x = rng.standard_normal((2, 3, 4))
    np.testing.assert_allclose(layer.forward(x), np.tanh(x @ layer.params["W"] + layer.params["b"]))
    check_layer(layer, x, rng)


@pytest.mark.parametrize("cls", [fastfc.ReLU, fastfc.Sigmoid, fastfc.Tanh, fastfc.Softmax,
                                 lambda: fastfc.LeakyReLU(0.1)])
def test_activation_layer_gradients(rng, cls):
    check_layer(cls(), rng.standard_normal((4, 6)), rng)


def test_activation_values(rng):
    x = rng.standard_normal((3, 5))
    np.testing.assert_allclose(fastfc.ReLU().forward(x), np.maximum(x, 0))
    np.testing.assert_allclose(fastfc.Sigmoid().forward(x), 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(fastfc.LeakyReLU(0.2).forward(x), np.where(x < 0, 0.2 * x, x))
    s = fastfc.Softmax().forward(x)
    np.testing.assert_allclose(s, np.exp(x) / np.exp(x).sum(1, keepdims=True))
    big = np.array([[1000.0, 0.0]])
    assert np.isfinite(fastfc.Softmax().forward(big)).all()
    assert np.isfinite(fastfc.Sigmoid().forward(-big)).all()


def test_batchnorm_gradients_and_modes(rng):
    bn = fastfc.BatchNorm(4)
    bn.init_params(rng, np.float64)
    bn.params["gamma"][...] = rng.uniform(0.5, 2, 4)
    bn.params["beta"][...] = rng.standard_normal(4)
    x = rng.standard_normal((6, 4)) * 3 + 1
    y = bn.forward(x, training=True)
    np.testing.assert_allclose(y.mean(0), bn.params["beta"], atol=1e-12)
    check_layer(bn, x, rng, training=True, rtol=1e-4, atol=1e-6)
    bn2 = fastfc.BatchNorm(4, momentum=1.0)
    bn2.init_params(rng, np.float64)
    bn2.forward(x, training=True)
    np.testing.assert_allclose(bn2.running_mean, x.mean(0))
    np.testing.assert_allclose(bn2.running_var, x.var(0, ddof=1))
    ev = bn2.forward(x[:2], training=False)   # running statistics in evaluation
    np.testing.assert_allclose(ev, (x[:2] - x.mean(0)) / np.sqrt(x.var(0, ddof=1) + 1e-5))
    bn2.params["gamma"][...] = rng.uniform(0.5, 2, 4)
    check_layer(bn2, x, rng, training=False)   # fixed statistics: an affine map of x


def test_dropout_layer(rng):
    d = fastfc.Dropout(0.5, seed=7)
    x = rng.standard_normal((50, 40))
    np.testing.assert_array_equal(d.forward(x, training=False), x)
    y1 = d.forward(x, training=True).copy()
    mask = d._mask.copy()
    np.testing.assert_array_equal(y1, np.where(mask, 2 * x, 0))
    g = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(d.backward(g), np.where(mask, 2 * g, 0))
    y2 = d.forward(x, training=True)
    assert (d._mask != mask).any()   # a new mask every call
    with pytest.raises(ValueError, match="p must be in"):
        fastfc.Dropout(1.0)


def test_dropout_gradient_with_fixed_mask(rng):
    class FixedDropout(fastfc.Dropout):
        def forward(self, x, training=False):
            self.calls = 0   # same stream: the same mask on every call
            return super().forward(x, training)
    check_layer(FixedDropout(0.3, seed=1), rng.standard_normal((5, 7)), rng)


def test_flatten_and_global_avg_pool(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    f = fastfc.Flatten()
    np.testing.assert_array_equal(f.forward(x), x.reshape(2, -1))
    check_layer(f, x, rng)
    p = fastfc.GlobalAvgPool()
    np.testing.assert_allclose(p.forward(x), x.mean(axis=(1, 2)))
    check_layer(p, x, rng)
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        p.forward(x[0])


def test_dense_conv_round_trip(rng):
    h, w, c, out = 3, 4, 2, 5
    dense = fastfc.Dense(h * w * c, out)
    dense.init_params(rng, np.float64)
    dense.params["b"][...] = rng.standard_normal(out)
    kernel = dense.to_conv_kernel(h, w, c)
    maps = rng.standard_normal((6, h, w, c))
    # valid h x w convolution of an h x w map: one output pixel per map
    conv = np.einsum("nijc,ijco->no", maps, kernel) + dense.params["b"]
    np.testing.assert_allclose(dense.forward(maps.reshape(6, -1)), conv)
    back = fastfc.Dense.from_conv_kernel(kernel, dense.params["b"])
    np.testing.assert_array_equal(back.params["W"], dense.params["W"])
    np.testing.assert_allclose(back.forward(maps.reshape(6, -1)), conv)
    with pytest.raises(ValueError, match="in_features"):
        dense.to_conv_kernel(2, 2, 2)


@pytest.mark.parametrize("name", sorted(initializers.INITIALIZERS))
def test_initializers(rng, name):
    init = initializers.get(name)
    if name == "zeros":
        w = init(rng, (400, 300), 400, 300, np.float32)
        assert not w.any()
        with pytest.warns(RuntimeWarning, match="identical") as caught:
            fastfc.Dense(3, 2, init="zeros")
        assert caught[0].filename == __file__   # the warning points at the user's line
        return
    w = init(rng, (400, 300), 400, 300, np.float32)
    assert w.shape == (400, 300) and w.dtype == np.float32
    expected_std = {"normal": 0.01, "uniform": 0.05 / np.sqrt(3),
                    "xavier_normal": np.sqrt(2 / 700), "glorot_normal": np.sqrt(2 / 700),
                    "xavier_uniform": np.sqrt(2 / 700), "glorot_uniform": np.sqrt(2 / 700),
                    "he_normal": np.sqrt(2 / 400), "kaiming_normal": np.sqrt(2 / 400),
                    "he_uniform": np.sqrt(2 / 400), "kaiming_uniform": np.sqrt(2 / 400)}[name]
    assert abs(w.std() / expected_std - 1) < 0.02
    assert abs(w.mean()) < 0.01 * expected_std * 10


def test_default_init_by_activation():
    assert fastfc.Dense(3, 2, activation="relu").init == "he_normal"
    assert fastfc.Dense(3, 2, activation="leaky_relu").init == "he_normal"
    assert fastfc.Dense(3, 2, activation="tanh").init == "xavier_uniform"
    assert fastfc.Dense(3, 2).init == "xavier_uniform"


def test_layer_bad_arguments():
    with pytest.raises(ValueError, match="unknown initializer 'bogus'; valid: zeros"):
        fastfc.Dense(3, 2, init="bogus")
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        fastfc.Dense(3, 2, activation="gelu")
    with pytest.raises(ValueError, match="in_features must be a positive int"):
        fastfc.Dense(0, 2)
    d = fastfc.Dense(3, 2)
    d.init_params(np.random.default_rng(0), np.float32)
    with pytest.raises(ValueError, match=r"expects 3 input features, got input shape \(4, 5\)"):
        d.forward(np.ones((4, 5), np.float32))
    assert layers.LAYERS["Dense"] is fastfc.Dense


@pytest.mark.parametrize("cls", [fastfc.ReLU, fastfc.Sigmoid, fastfc.Tanh, fastfc.Softmax,
                                 fastfc.LeakyReLU])
@pytest.mark.parametrize("x", [np.array([[0, 1], [-2, 3]]), np.array([[True, False]])])
def test_activation_promotes_integer_input(cls, x):
    """Ints and bools compute in float64 as in NumPy, or in the dtype a model set."""
    want = cls().forward(x.astype(np.float64))
    got = cls().forward(x)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want)
    layer = cls()
    fastfc.Sequential([fastfc.Dense(2, 2), layer], loss="mse", dtype=np.float32)
    assert layer.forward(x).dtype == np.float32


def test_dropout_promotes_integer_input():
    x = np.ones((4, 50), int)
    for training in (True, False):
        y = fastfc.Dropout(0.5, seed=1).forward(x, training=training)
        assert y.dtype == np.float64 and set(np.unique(y)) <= {0.0, 1.0, 2.0}
    np.testing.assert_array_equal(fastfc.Dropout(0.5, seed=1).forward(x, training=True),
                                  fastfc.Dropout(0.5, seed=1).forward(x * 1.0, training=True))


@pytest.mark.parametrize("x", [np.ones((4, 3)), np.ones((4, 3), int), [[1, 1, 1]]])
def test_dense_converts_input_to_its_dtype(x):
    layer = fastfc.Dense(3, 2)
    layer.init_params(np.random.default_rng(0), np.float32)
    got = layer.forward(x)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, layer.forward(np.ones((len(x), 3), np.float32)))


def test_layer_bad_hyperparameters():
    for n in (0, -3, 2.0, True):
        with pytest.raises(ValueError, match=f"BatchNorm: num_features must be a positive int, "
                                             f"got {n!r}"):
            fastfc.BatchNorm(n)
    with pytest.raises(ValueError, match=r"BatchNorm: momentum must be in \[0, 1\], got 1.5"):
        fastfc.BatchNorm(3, momentum=1.5)
    with pytest.raises(ValueError, match="BatchNorm: eps must be > 0 and finite, got 0.0"):
        fastfc.BatchNorm(3, eps=0)
    with pytest.raises(TypeError, match="Dropout: p must be a real number, got str"):
        fastfc.Dropout("0.5")
    with pytest.raises(ValueError, match=r"Dropout: p must be in \[0, 1\), got nan"):
        fastfc.Dropout(float("nan"))


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_checks_the_width_before_changing_its_statistics(rng, training):
    bn = fastfc.BatchNorm(3)
    bn.init_params(rng, np.float64)
    bn.running_mean[:] = 1.0
    for bad in (np.ones((4, 2)), np.zeros((4, 1)), np.float64(2.0)):
        with pytest.raises(ValueError, match=r"BatchNorm expects 3 features, got input "
                                             rf"shape {re.escape(str(np.shape(bad)))}"):
            bn.forward(bad, training=training)
    np.testing.assert_array_equal(bn.running_mean, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(bn.running_var, [1.0, 1.0, 1.0])


def test_dense_backward_before_forward():
    dense = fastfc.Dense(3, 4)
    dense.init_params(np.random.default_rng(0), np.float32)
    for layer in (dense, copy.deepcopy(dense), pickle.loads(pickle.dumps(dense))):
        with pytest.raises(RuntimeError, match=r"Dense\(3 -> 4\).backward needs a forward"):
            layer.backward(np.ones((2, 4), np.float32))
