import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastfc
from fastfc import reference as ref
from conftest import DTYPES, LAYOUTS, assert_close, make

ACTS = [None, "identity", "relu", "leaky_relu", "sigmoid", "tanh"]
SIZES = [(1, 1, 1), (7, 17, 63), (63, 65, 17), (1000, 7, 65), (17, 1000, 63), (65, 129, 1001)]


def bound(x, w, b):
    """Bound on the terms summed in x @ w + b (activations are 1-Lipschitz)."""
    s = np.abs(x.reshape(-1, w.shape[0])) @ np.abs(w)
    return s + (0 if b is None else np.abs(b))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("m,k,n", SIZES)
def test_linear_matches_reference(rng, dtype, act, m, k, n):
    x, w, b = make(rng, (m, k), dtype), make(rng, (k, n), dtype), make(rng, (n,), dtype)
    got = fastfc.linear(x, w, b, activation=act)
    assert got.dtype == dtype
    assert_close(got, ref.linear(x, w, b, activation=act), bound(x, w, b), k + 1, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lx", LAYOUTS)
@pytest.mark.parametrize("lw", LAYOUTS)
def test_linear_layouts(rng, dtype, lx, lw):
    x, w = make(rng, (33, 70), dtype, lx), make(rng, (70, 41), dtype, lw)
    b = make(rng, (41,), dtype, "sliced")
    got = fastfc.linear(x, w, b, activation="relu")
    assert_close(got, ref.linear(x, w, b, activation="relu"), bound(x, w, b), 71, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5,), (2, 3, 5), (2, 3, 4, 5)])
def test_nd_input(rng, dtype, shape):
    x, w, b = make(rng, shape, dtype), make(rng, (5, 9), dtype), make(rng, (9,), dtype)
    got = fastfc.linear(x, w, b, activation="tanh")
    assert got.shape == shape[:-1] + (9,)
    assert_close(got, ref.linear(x, w, b, activation="tanh"),
                 bound(x, w, b).reshape(got.shape), 6, dtype)


def test_nd_input_non_contiguous(rng):
    x = make(rng, (4, 6, 10), np.float64)[:, ::2, :]   # no 2-D view possible
    w, b = make(rng, (10, 3), np.float64), make(rng, (3,), np.float64)
    assert_close(fastfc.linear(x, w, b), ref.linear(x, w, b),
                 bound(x, w, b).reshape(4, 3, 3), 11, np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["C", "F", "sliced"])
def test_out(rng, dtype, layout):
    x, w, b = make(rng, (30, 20), dtype), make(rng, (20, 10), dtype), make(rng, (10,), dtype)
    out = make(rng, (30, 10), dtype, layout)
    got = fastfc.linear(x, w, b, activation="sigmoid", out=out)
    assert got is out
    assert_close(out, ref.linear(x, w, b, activation="sigmoid"), bound(x, w, b), 21, dtype)


def test_out_nd_non_viewable(rng):
    x, w = make(rng, (3, 4, 5), np.float32), make(rng, (5, 6), np.float32)
    out = np.zeros((3, 8, 6), np.float32)[:, ::2, :]
    fastfc.linear(x, w, out=out)
    assert_close(out, x @ w, bound(x, w, None).reshape(3, 4, 6), 5, np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
def test_no_bias(rng, dtype):
    x, w = make(rng, (9, 8), dtype), make(rng, (8, 7), dtype)
    assert_close(fastfc.linear(x, w), x @ w, bound(x, w, None), 8, dtype)


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "sigmoid", "tanh", None])
def test_nan_and_inf(act):
    x = np.array([[np.nan, 1.0], [np.inf, 0.0], [-np.inf, 0.0], [1.0, 2.0]])
    w = np.eye(2)
    got = fastfc.linear(x, w, activation=act)
    with np.errstate(invalid="ignore", over="ignore"):
        want = ref.linear(x, w, activation=act)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=1e-15)
    assert np.isnan(got[0, 0])   # relu(NaN) is NaN, as np.maximum


def test_leaky_slope(rng):
    x, w = make(rng, (20, 6), np.float64), make(rng, (6, 5), np.float64)
    for slope in (0.01, 0.2, 0.0):
        got = fastfc.linear(x, w, activation="leaky_relu", negative_slope=slope)
        want = ref.linear(x, w, activation="leaky_relu", negative_slope=slope)
        assert_close(got, want, bound(x, w, None), 6, np.float64)


@settings(max_examples=40, deadline=None)
@given(batch=st.lists(st.integers(0, 6), min_size=0, max_size=3), k=st.integers(1, 90),
       n=st.integers(1, 70), dtype=st.sampled_from(DTYPES), act=st.sampled_from(ACTS),
       bias=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_linear_property(batch, k, n, dtype, act, bias, seed):
    rng = np.random.default_rng(seed)
    x = make(rng, tuple(batch) + (k,), dtype)
    w, b = make(rng, (k, n), dtype), (make(rng, (n,), dtype) if bias else None)
    got = fastfc.linear(x, w, b, activation=act)
    assert got.shape == tuple(batch) + (n,)
    assert_close(got, ref.linear(x, w, b, activation=act),
                 bound(x, w, b).reshape(got.shape), k + 1, dtype)


# ------------------------------------------------------------------ backward

def _grads(rng, dtype, m, k, n, act, lx="C", lw="C"):
    x, w, b = make(rng, (m, k), dtype, lx), make(rng, (k, n), dtype, lw), make(rng, (n,), dtype)
    y = fastfc.linear(x, w, b, activation=act)
    gy = make(rng, (m, n), dtype)
    return x, w, y, gy


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("m,k,n", SIZES)
def test_backward_matches_reference(rng, dtype, act, m, k, n):
    x, w, y, gy = _grads(rng, dtype, m, k, n, act)
    gx, gw, gb = fastfc.linear_backward(gy, x, w, y=y, activation=act)
    rx, rw, rb = ref.linear_backward(gy, x, w, y=y, activation=act)
    dz = np.abs(gy)  # |act'| <= 1 for every activation here
    assert_close(gx, rx, dz @ np.abs(w).T, n, dtype)
    assert_close(gw, rw, np.abs(x).T @ dz, m, dtype)
    assert_close(gb, rb, dz.sum(0), m, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lx", LAYOUTS)
@pytest.mark.parametrize("lw", ["C", "F", "negative"])
def test_backward_layouts(rng, dtype, lx, lw):
    x, w, y, gy = _grads(rng, dtype, 40, 50, 30, "relu", lx, lw)
    gy = make(rng, gy.shape, dtype, "F")
    got = fastfc.linear_backward(gy, x, w, y=y, activation="relu")
    want = ref.linear_backward(gy, x, w, y=y, activation="relu")
    dz = np.abs(gy)
    for g, r, s, kk in zip(got, want, (dz @ np.abs(w).T, np.abs(x).T @ dz, dz.sum(0)), (30, 40, 40)):
        assert_close(g, r, s, kk, dtype)


def test_backward_out_and_skip_grad_x(rng):
    x, w, y, gy = _grads(rng, np.float64, 20, 8, 6, "tanh")
    outs = (np.empty((20, 8)), np.empty((8, 6), order="F"), np.empty(12)[::2])
    got = fastfc.linear_backward(gy, x, w, y=y, activation="tanh", out=outs)
    assert all(g is o for g, o in zip(got, outs))
    want = ref.linear_backward(gy, x, w, y=y, activation="tanh")
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12)
    gx, gw, gb = fastfc.linear_backward(gy, x, w, y=y, activation="tanh", compute_grad_x=False)
    assert gx is None
    np.testing.assert_allclose(gw, want[1], rtol=1e-12, atol=1e-12)


def test_backward_nd(rng):
    x = make(rng, (3, 4, 7), np.float64)
    w = make(rng, (7, 5), np.float64)
    y = fastfc.linear(x, w, activation="sigmoid")
    gy = make(rng, y.shape, np.float64)
    got = fastfc.linear_backward(gy, x, w, y=y, activation="sigmoid")
    want = ref.linear_backward(gy, x, w, y=y, activation="sigmoid")
    assert got[0].shape == x.shape
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("act", ACTS + ["leaky_relu_big"])
def test_gradient_central_difference(rng, act):
    """Check linear_backward against central differences of sum(linear(...) * R)."""
    slope = 0.3 if act == "leaky_relu_big" else 0.01
    act = "leaky_relu" if act == "leaky_relu_big" else act
    m, k, n = 4, 5, 3
    x, w, b = rng.standard_normal((m, k)), rng.standard_normal((k, n)), rng.standard_normal(n)
    r = rng.standard_normal((m, n))

    def loss(x_, w_, b_):
        return float(np.sum(fastfc.linear(x_, w_, b_, activation=act, negative_slope=slope) * r))

    y = fastfc.linear(x, w, b, activation=act, negative_slope=slope)
    gx, gw, gb = fastfc.linear_backward(r, x, w, y=y, activation=act, negative_slope=slope)
    eps = 1e-6
    for arr, grad in ((x, gx), (w, gw), (b, gb)):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + eps
            up = loss(x, w, b)
            arr[idx] = old - eps
            down = loss(x, w, b)
            arr[idx] = old
            num[idx] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-7)


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 70), k=st.integers(1, 70), n=st.integers(1, 70),
       dtype=st.sampled_from(DTYPES), act=st.sampled_from(ACTS), seed=st.integers(0, 2**32 - 1))
def test_backward_property(m, k, n, dtype, act, seed):
    rng = np.random.default_rng(seed)
    x, w, y, gy = _grads(rng, dtype, m, k, n, act)
    got = fastfc.linear_backward(gy, x, w, y=y, activation=act)
    want = ref.linear_backward(gy, x, w, y=y, activation=act)
    dz = np.abs(gy)
    for g, r, s, kk in zip(got, want, (dz @ np.abs(w).T, np.abs(x).T @ dz, dz.sum(0)), (n, m, m)):
        assert_close(g, r, s, kk, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_weights_larger_than_the_caches(rng, dtype):
    """w of 12-24 MB is packed row by row from memory (a different packing order)."""
    x, w, b = make(rng, (37, 3000), dtype), make(rng, (3000, 1001), dtype), make(rng, (1001,), dtype)
    got = fastfc.linear(x, w, b, activation="relu")
    assert_close(got, ref.linear(x, w, b, activation="relu"), bound(x, w, b), 3001, dtype)
    gy = make(rng, got.shape, dtype)
    gx, gw, gb = fastfc.linear_backward(gy, x, w, y=got, activation="relu")
    rx, rw, rb = ref.linear_backward(gy, x, w, y=got, activation="relu")
    assert_close(gx, rx, np.abs(gy) @ np.abs(w).T, 1001, dtype)
    assert_close(gw, rw, np.abs(x).T @ np.abs(gy), 37, dtype)
