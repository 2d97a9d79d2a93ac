"""fastfc.linear and fastfc.linear_backward against fastfc.reference: every activation, both
dtypes, N-d x, b=None, out=, NaN/Inf, leaky slope, large K and M, hypothesis shapes, and
central-difference gradients in float64."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastfc
from fastfc import reference as ref
from conftest import (DTYPES, LAYOUTS, assert_close, assert_identical, check_layout, layout, make,
                      product_dims)

ACTS = [None, "identity", "relu", "leaky_relu", "sigmoid", "tanh"]
# odd sizes, M > 1000, K > 1000, N > 1000, K across KC blocks, M across MC blocks
SIZES = [(1, 1, 1), (7, 17, 63), (63, 65, 17), (65, 7, 1), (1100, 7, 65), (17, 1025, 63),
         (65, 129, 1001), (200, 300, 33)]


def bound(x, w, b):
    """Bound on the terms summed in x @ w + b (every activation is 1-Lipschitz)."""
    s = np.abs(np.asarray(x, np.float64).reshape(-1, w.shape[0])) @ np.abs(
        np.asarray(w, np.float64))
    s = s + (0 if b is None else np.abs(np.asarray(b, np.float64)))
    return s.reshape(np.shape(x)[:-1] + (w.shape[1],))


def check_forward(got, x, w, b, act, dtype, slope=0.01):
    want = ref.linear(x, w, b, activation=act, negative_slope=slope)
    assert got.dtype == np.dtype(dtype) and got.shape == want.shape
    assert_close(got, want, max(1.0, abs(slope)) * bound(x, w, b), w.shape[0] + 1, dtype)


def backward_bounds(gy, x, w, act, slope=0.01):
    """Bounds on the terms summed in grad_x, grad_w, grad_b (|act'| <= max(1, slope))."""
    rows = int(np.prod(np.shape(x)[:-1]))
    dz = max(1.0, abs(slope)) * np.abs(np.asarray(gy, np.float64)).reshape(rows, w.shape[1])
    x2 = np.abs(np.asarray(x, np.float64)).reshape(rows, w.shape[0])
    return (dz @ np.abs(np.asarray(w, np.float64)).T).reshape(np.shape(x)), x2.T @ dz, \
        dz.sum(0)


def check_backward(got, gy, x, w, y, act, dtype, slope=0.01):
    want = ref.linear_backward(gy, x, w, y=y, activation=act, negative_slope=slope)
    rows = int(np.prod(np.shape(x)[:-1]))
    # +2: the activation derivative itself rounds (y * (1 - y), 1 - y * y)
    for name, g, r, s, k in zip(("grad_x", "grad_w", "grad_b"), got, want,
                                backward_bounds(gy, x, w, act, slope),
                                (w.shape[1] + 2, rows + 2, rows + 2)):
        assert g.dtype == np.dtype(dtype), name
        assert_close(g, r, s, k, dtype)


# ------------------------------------------------------------------ forward

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("m,k,n", SIZES)
def test_linear_matches_reference(rng, dtype, act, m, k, n):
    x, w, b = make(rng, (m, k), dtype), make(rng, (k, n), dtype), make(rng, (n,), dtype)
    check_forward(fastfc.linear(x, w, b, activation=act), x, w, b, act, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lx", LAYOUTS)
@pytest.mark.parametrize("lw", LAYOUTS)
def test_linear_layouts(rng, dtype, lx, lw):
    act = ACTS[(LAYOUTS.index(lx) + LAYOUTS.index(lw)) % len(ACTS)]
    x, w = make(rng, (33, 270), dtype, lx), make(rng, (270, 41), dtype, lw)
    check_layout(x, lx)
    check_layout(w, lw)
    for lb in ("C", "sliced", "negative"):
        b = make(rng, (41,), dtype, lb)
        check_forward(fastfc.linear(x, w, b, activation=act), x, w, b, act, dtype)
    check_forward(fastfc.linear(x, w, activation=act), x, w, None, act, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("shape", [(5,), (2, 3, 5), (2, 3, 4, 5), (4, 1, 3, 5), (2, 0, 5)])
def test_nd_input(rng, dtype, act, shape):
    x, w, b = make(rng, shape, dtype), make(rng, (5, 9), dtype), make(rng, (9,), dtype)
    got = fastfc.linear(x, w, b, activation=act)
    assert got.shape == shape[:-1] + (9,)
    check_forward(got, x, w, b, act, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lx", ["F", "sliced", "negative", "transposed"])
def test_nd_input_non_contiguous(rng, dtype, lx):
    x = make(rng, (4, 6, 3, 10), dtype, lx)   # no 2-D view of these strides exists
    w, b = make(rng, (10, 7), dtype), make(rng, (7,), dtype)
    check_forward(fastfc.linear(x, w, b, activation="tanh"), x, w, b, "tanh", dtype)
    x = make(rng, (4, 12, 10), dtype)[:, ::2, :]
    check_forward(fastfc.linear(x, w, b), x, w, b, None, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_no_bias(rng, dtype, act):
    x, w = make(rng, (29, 80), dtype), make(rng, (80, 37), dtype)
    check_forward(fastfc.linear(x, w, None, activation=act), x, w, None, act, dtype)
    wf = layout(w, "F")   # column-major w without a bias may compute C^T = W^T X^T
    check_forward(fastfc.linear(x[:5], wf, activation=act), x[:5], wf, None, act, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out_layout", LAYOUTS)
@pytest.mark.parametrize("act", ["sigmoid", "relu", None])
def test_out(rng, dtype, out_layout, act):
    x, w, b = make(rng, (30, 20), dtype), make(rng, (20, 10), dtype), make(rng, (10,), dtype)
    out = layout(np.full((30, 10), np.nan, dtype), out_layout)   # must not be read
    got = fastfc.linear(x, w, b, activation=act, out=out)
    assert got is out
    check_forward(out, x, w, b, act, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_nd(rng, dtype):
    x, w, b = make(rng, (3, 4, 5), dtype), make(rng, (5, 6), dtype), make(rng, (6,), dtype)
    for out in (np.full((3, 4, 6), np.nan, dtype),                  # viewable as 2-D
                np.full((3, 8, 6), np.nan, dtype)[:, ::2, :],       # no 2-D view
                layout(np.full((3, 4, 6), np.nan, dtype), "F"),
                layout(np.full((3, 4, 6), np.nan, dtype), "negative")):
        got = fastfc.linear(x, w, b, activation="leaky_relu", out=out)
        assert got is out
        check_forward(out, x, w, b, "leaky_relu", dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_nan_propagates(act, dtype):
    x = np.array([[np.nan, 1.0], [1.0, 2.0], [0.5, np.nan]], dtype)
    w = np.array([[1.0, -2.0, 0.5], [0.25, 1.0, -1.0]], dtype)
    got = fastfc.linear(x, w, activation=act)
    assert np.isnan(got[0]).all() and np.isnan(got[2]).all()
    assert np.isfinite(got[1]).all()
    check_forward(got, x, w, None, act, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout_name", ["C", "wide", "F"])
def test_every_batch_up_to_40(layout_name, dtype, rng):
    """Every tile schedule of the rows: full tiles, a short last tile (read from a padded
    copy) and the last rows as two edge-kernel tiles (AVX2: 8, 14, ..., 38 rows; AVX-512:
    16, 28, 40). The rows of x stream in place (C), through a row stride (wide: the first
    37 columns of a wider array), or are packed (F)."""
    w, b = make(rng, (37, 21), dtype), make(rng, (21,), dtype)
    for m in range(1, 41):
        if layout_name == "wide":
            x = make(rng, (m, 50), dtype)[:, :37]
        else:
            x = make(rng, (m, 37), dtype, layout_name)
        check_forward(fastfc.linear(x, w, b, activation="relu"), x, w, b, "relu", dtype)


def test_relu_of_nan_is_nan():
    """np.maximum(NaN, 0) is NaN: the fused ReLU must not turn NaN into 0."""
    for dtype in DTYPES:
        for m in (1, 7, 40):   # edge tiles and full tiles
            x = np.full((m, 1), np.nan, dtype)
            w = np.ones((1, 37), dtype)
            for act in ("relu", "leaky_relu"):
                assert np.isnan(fastfc.linear(x, w, activation=act)).all()
                assert np.isnan(fastfc.linear(x, w, np.zeros(37, dtype), activation=act)).all()


SPECIAL = [np.inf, -np.inf, np.nan, 1000.0, -1000.0, 90.0, -90.0, 20.0, -20.0, 0.0, -0.0,
           1e-30, -1e-30, 0.5, -3.0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_special_values(act, dtype):
    """z = x exactly (w = ones of shape (1, n)); Inf, overflow of exp, signed zeros."""
    x = np.array(SPECIAL, dtype).reshape(-1, 1)
    w = np.ones((1, 23), dtype)
    got = fastfc.linear(x, w, activation=act)
    with np.errstate(over="ignore", invalid="ignore"):
        want = ref.linear(x, w, activation=act)
    assert_close(got, want, 0.0, 1, dtype)
    # the activations at the infinities, spelt out
    expect = {None: (np.inf, -np.inf), "identity": (np.inf, -np.inf), "relu": (np.inf, 0.0),
              "leaky_relu": (np.inf, -np.inf), "sigmoid": (1.0, 0.0), "tanh": (1.0, -1.0)}[act]
    np.testing.assert_array_equal(got[0], expect[0])
    np.testing.assert_array_equal(got[1], expect[1])
    if act in ("sigmoid", "tanh"):   # bounded, never NaN for finite z
        fin = got[np.isfinite(x[:, 0])]
        assert np.isfinite(fin).all() and (np.abs(fin) <= 1).all()


@pytest.mark.parametrize("act", ACTS)
def test_infinite_bias(act):
    x, w = np.ones((4, 3)), np.ones((3, 5))
    b = np.array([np.inf, -np.inf, 0.0, 1.0, np.nan])
    got = fastfc.linear(x, w, b, activation=act)
    with np.errstate(over="ignore", invalid="ignore"):
        want = ref.linear(x, w, b, activation=act)
    assert_close(got, want, bound(x, w, np.nan_to_num(b, posinf=0, neginf=0)), 4, np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("slope", [0.0, 0.01, 0.2, 1.0, 2.5])
def test_leaky_slope(rng, dtype, slope):
    x, w, b = make(rng, (70, 36), dtype), make(rng, (36, 50), dtype), make(rng, (50,), dtype)
    got = fastfc.linear(x, w, b, activation="leaky_relu", negative_slope=slope)
    check_forward(got, x, w, b, "leaky_relu", dtype, slope)
    z = fastfc.linear(x, w, b)
    neg = z < 0
    assert neg.any() and (~neg).any()
    # negative outputs are scaled by the slope, the others pass unchanged
    assert_close(got[neg], z[neg] * dtype(slope), 0.0, 1, dtype)
    np.testing.assert_array_equal(got[~neg], z[~neg])


@pytest.mark.parametrize("dtype", DTYPES)
def test_slope_ignored_by_other_activations(rng, dtype):
    x, w = make(rng, (10, 8), dtype), make(rng, (8, 6), dtype)
    for act in ("relu", "sigmoid", "tanh", None):
        np.testing.assert_array_equal(fastfc.linear(x, w, activation=act, negative_slope=0.7),
                                      fastfc.linear(x, w, activation=act))


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_in_features(dtype):
    """k = 0: y = act(b) in every row (x @ w is a zero matrix)."""
    x, w = np.ones((4, 0), dtype), np.ones((0, 3), dtype)
    b = np.array([-1.0, 0.0, 2.0], dtype)
    for act in ACTS:
        got = fastfc.linear(x, w, b, activation=act)
        assert_close(got, ref.linear(x, w, b, activation=act), 1.0, 1, dtype)
    np.testing.assert_array_equal(fastfc.linear(x, w), np.zeros((4, 3), dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_weights_larger_than_the_caches(rng, dtype):
    """w of 12-24 MB is packed from memory along its rows (a different packing order)."""
    x, w = make(rng, (37, 3000), dtype), make(rng, (3000, 1001), dtype)
    b = make(rng, (1001,), dtype)
    y = fastfc.linear(x, w, b, activation="relu")
    check_forward(y, x, w, b, "relu", dtype)
    gy = make(rng, y.shape, dtype)
    check_backward(fastfc.linear_backward(gy, x, w, y=y, activation="relu"), gy, x, w, y,
                   "relu", dtype)


def _x_shape(vector, batch, m, k):
    """A single vector of k features, or (*batch, m, k)."""
    return (k,) if vector else tuple(batch) + (m, k)


@given(vector=st.booleans(), batch=st.lists(st.integers(0, 5), max_size=2), dims=product_dims(),
       dtype=st.sampled_from(DTYPES), act=st.sampled_from(ACTS),
       bias=st.booleans(), lx=st.sampled_from(LAYOUTS), lw=st.sampled_from(LAYOUTS),
       seed=st.integers(0, 2**32 - 1))
def test_linear_property(vector, batch, dims, dtype, act, bias, lx, lw, seed):
    rng = np.random.default_rng(seed)
    m, k, n = dims[0], max(dims[1], 1), max(dims[2], 1)
    batch = _x_shape(vector, batch, m, k)[:-1]
    x = make(rng, batch + (k,), dtype, lx)
    w, b = make(rng, (k, n), dtype, lw), (make(rng, (n,), dtype) if bias else None)
    got = fastfc.linear(x, w, b, activation=act)
    assert got.shape == batch + (n,)
    check_forward(got, x, w, b, act, dtype)


# ------------------------------------------------------------------ backward

def _case(rng, dtype, shape, n, act, lx="C", lw="C", slope=0.01):
    k = shape[-1]
    x, w, b = make(rng, shape, dtype, lx), make(rng, (k, n), dtype, lw), make(rng, (n,), dtype)
    y = fastfc.linear(x, w, b, activation=act, negative_slope=slope)
    gy = make(rng, y.shape, dtype)
    return x, w, y, gy


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("m,k,n", SIZES)
def test_backward_matches_reference(rng, dtype, act, m, k, n):
    x, w, y, gy = _case(rng, dtype, (m, k), n, act)
    got = fastfc.linear_backward(gy, x, w, y=y, activation=act)
    assert [g.shape for g in got] == [x.shape, w.shape, (n,)]
    check_backward(got, gy, x, w, y, act, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lx", LAYOUTS)
@pytest.mark.parametrize("lw", LAYOUTS)
def test_backward_layouts(rng, dtype, lx, lw):
    act = ACTS[(LAYOUTS.index(lx) + 2 * LAYOUTS.index(lw)) % len(ACTS)]
    x, w, y, gy = _case(rng, dtype, (40, 50), 30, act, lx, lw)
    for lg in ("F", "sliced", "negative"):
        g = layout(gy, lg)
        yl = layout(y, lg)
        check_backward(fastfc.linear_backward(g, x, w, y=yl, activation=act), g, x, w, yl,
                       act, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (3, 1, 7), (7,), (0, 7)])
def test_backward_nd(rng, dtype, act, shape):
    x, w, y, gy = _case(rng, dtype, shape, 4, act)
    got = fastfc.linear_backward(gy, x, w, y=y, activation=act)
    assert got[0].shape == x.shape
    check_backward(got, gy, x, w, y, act, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["relu", None])
@pytest.mark.parametrize("m,k,n", [(5, 0, 3), (5, 4, 0), (0, 4, 3), (0, 0, 0)])
def test_backward_empty_dims(rng, dtype, act, m, k, n):
    x, w, y, gy = _case(rng, dtype, (m, k), n, act)
    got = fastfc.linear_backward(gy, x, w, y=y, activation=act)
    assert [g.shape for g in got] == [x.shape, w.shape, (n,)]
    check_backward(got, gy, x, w, y, act, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_nd_non_contiguous(rng, dtype):
    x, w, y, gy = _case(rng, dtype, (4, 6, 3, 10), 5, "tanh", lx="negative")
    g = layout(gy, "sliced")
    check_backward(fastfc.linear_backward(g, x, w, y=layout(y, "F"), activation="tanh"),
                   g, x, w, y, "tanh", dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("slope", [0.0, 0.2, 1.5])
def test_backward_leaky_slope(rng, dtype, slope):
    x, w, y, gy = _case(rng, dtype, (30, 20), 25, "leaky_relu", slope=slope)
    got = fastfc.linear_backward(gy, x, w, y=y, activation="leaky_relu", negative_slope=slope)
    check_backward(got, gy, x, w, y, "leaky_relu", dtype, slope)


@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_identity_ignores_y(rng, dtype):
    x, w, y, gy = _case(rng, dtype, (20, 9), 7, None)
    a = fastfc.linear_backward(gy, x, w)
    b = fastfc.linear_backward(gy, x, w, y=np.full_like(y, np.nan), activation="identity")
    for g1, g2 in zip(a, b):
        np.testing.assert_array_equal(g1, g2)
    check_backward(a, gy, x, w, None, None, dtype)


@pytest.mark.parametrize("y", [np.float64(1.0), 1.0, [[0.0] * 7] * 3, (1, 2)])
def test_backward_identity_checks_y_but_does_not_read_it(rng, y):
    # a y of the wrong shape is a caller's mistake even where the identity needs none
    # (a scalar or a short list once read stray memory)
    x, w, _, gy = _case(rng, np.float64, (20, 9), 7, None)
    with pytest.raises(ValueError, match=r"y has shape .*, expected \(20, 7\)"):
        fastfc.linear_backward(gy, x, w, y=y)
    y = np.full((20, 7), np.nan)
    for g1, g2 in zip(fastfc.linear_backward(gy, x, w, y=y), fastfc.linear_backward(gy, x, w)):
        assert_identical(g1, g2)
    with pytest.raises(TypeError, match="y has dtype"):
        fastfc.linear_backward(gy, x, w, y="abc")


@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_out_and_skip_grad_x(rng, dtype):
    x, w, y, gy = _case(rng, dtype, (20, 8), 6, "tanh")
    outs = (np.full((20, 8), np.nan, dtype), layout(np.full((8, 6), np.nan, dtype), "F"),
            np.full(12, np.nan, dtype)[::2])
    got = fastfc.linear_backward(gy, x, w, y=y, activation="tanh", out=outs)
    assert all(g is o for g, o in zip(got, outs))
    check_backward(got, gy, x, w, y, "tanh", dtype)
    outs2 = (None, layout(np.full((8, 6), np.nan, dtype), "negative"), None)
    got2 = fastfc.linear_backward(gy, x, w, y=y, activation="tanh", out=outs2)
    assert got2[1] is outs2[1]
    check_backward(got2, gy, x, w, y, "tanh", dtype)
    gx, gw, gb = fastfc.linear_backward(gy, x, w, y=y, activation="tanh", compute_grad_x=False)
    assert gx is None
    np.testing.assert_array_equal(gw, got[1])
    np.testing.assert_array_equal(gb, got[2])


def _explicit_dz(gy, y, act, slope):
    """act'(y) * gy in NumPy, operation for operation as the kernels compute it."""
    one = gy.dtype.type(1)
    if act in (None, "identity"):
        return gy
    if act == "relu":
        return np.where(y > 0, gy, gy.dtype.type(0))
    if act == "leaky_relu":
        return np.where(y > 0, gy, gy * gy.dtype.type(slope))
    if act == "sigmoid":
        return gy * (y * (one - y))
    return gy * (one - y * y)


# paths of the fused packing: one row block per thread, blocks of B packed ahead, more
# than one K block (sums carried over), B read from memory, more than one NC block, a
# narrow layer (dW^T, dZ in A), a narrow batch (dX^T, dZ in B), no features, no rows
FUSED_SIZES = [(7, 17, 63), (200, 250, 70), (600, 40, 30), (40, 300, 10), (700, 20, 5),
               (12, 200, 50), (2100, 3, 1001), (3, 5, 4100), (5, 0, 7), (0, 4, 6)]


def _k_blocks(k, dtype):
    """The engine's K blocks: equal depths, rounded up to a multiple of 8, at most KC."""
    kc_max = fastfc.get_config()[f"blocks_{np.dtype(dtype).name}"]["KC"]
    blocks = -(-k // kc_max)
    kc = (-(-k // max(blocks, 1)) + 7) // 8 * 8
    return [slice(p, p + kc) for p in range(0, k, max(kc, 1))]


def test_bias_gradient_error_does_not_grow_with_rows():
    # one float32 sum down two million rows would err by ~1e-2 here; per K block, ~1e-4
    m = 2_000_000
    gy = np.full((m, 16), 0.1, np.float32)
    gb = fastfc.linear_backward(gy, np.ones((m, 3), np.float32), np.ones((3, 16), np.float32))[2]
    want = m * np.float64(np.float32(0.1))
    assert np.abs(gb / want - 1).max() < 30 * np.finfo(np.float32).eps * np.sqrt(m / 512 + 512)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("m,k,n", FUSED_SIZES)
@pytest.mark.parametrize("lg", ["C", "F", "negative"])
def test_fused_dz_is_exact(rng, keep_threads, dtype, act, m, k, n, lg):
    # dZ = act'(y) * dY and db are made as dY is packed for the two products: the results
    # are, bit for bit, the products of an explicit dZ and its sums row by row over each
    # K block of the engine, the block sums added in order
    x, w, y, gy = _case(rng, dtype, (m, k), n, act)
    gy, y = layout(gy, lg), layout(y, lg)
    dz = _explicit_dz(gy, y, act, 0.3)
    db = np.zeros(n, dtype)
    for rows in _k_blocks(m, dtype):
        part = np.zeros(n, dtype)
        for row in dz[rows]:
            part += row
        db += part
    want = (fastfc.gemm(dz, w, trans_b=True), fastfc.gemm(x, dz, trans_a=True), db)
    for nt in (1, 2, 3):
        fastfc.set_num_threads(nt)
        got = fastfc.linear_backward(gy, x, w, y=y, activation=act, negative_slope=0.3)
        for g, r in zip(got, want):
            assert_identical(g, r)


def test_backward_outs_sharing_memory(rng):
    x, w, y, gy = _case(rng, np.float64, (20, 8), 6, "relu")
    buf = np.zeros(20 * 8 + 8 * 6 + 6)
    gx, gw, gb = buf[:160].reshape(20, 8), buf[160:208].reshape(8, 6), buf[208:]
    for outs, names in [((gx, buf[100:148].reshape(8, 6), gb), "grad_x and grad_w"),
                        ((gx, gw, buf[40:46]), "grad_x and grad_b"),
                        ((None, gw, buf[200:206]), "grad_w and grad_b")]:
        with pytest.raises(ValueError, match=f"out arrays {names} share memory"):
            fastfc.linear_backward(gy, x, w, y=y, activation="relu", out=outs)
    # interleaved but disjoint views of one buffer are fine
    pair = np.zeros((8, 12))
    got = fastfc.linear_backward(gy, x, w, y=y, activation="relu",
                                 out=(None, pair[:, ::2], pair[0, 1::2]))
    check_backward((fastfc.linear_backward(gy, x, w, y=y, activation="relu")[0],) + got[1:],
                   gy, x, w, y, "relu", np.float64)
    # grad_x is not written when compute_grad_x=False: it may alias anything
    fastfc.linear_backward(gy, x, w, y=y, activation="relu", out=(buf[:160].reshape(20, 8), gw,
                           gb), compute_grad_x=False)


@given(vector=st.booleans(), batch=st.lists(st.integers(0, 5), max_size=2),
       dims=product_dims(70), dtype=st.sampled_from(DTYPES), act=st.sampled_from(ACTS),
       lx=st.sampled_from(LAYOUTS), lg=st.sampled_from(LAYOUTS), seed=st.integers(0, 2**32 - 1))
def test_backward_property(vector, batch, dims, dtype, act, lx, lg, seed):
    rng = np.random.default_rng(seed)
    m, k, n = dims[0], max(dims[1], 1), max(dims[2], 1)
    x, w, y, gy = _case(rng, dtype, _x_shape(vector, batch, m, k), n, act, lx)
    gy = layout(gy, lg)
    check_backward(fastfc.linear_backward(gy, x, w, y=y, activation=act), gy, x, w, y, act,
                   dtype)


# ------------------------------------------------------------------ central differences

def numeric_grad(f, arr, h=1e-6):
    """d f() / d arr by central differences, perturbing arr in place."""
    g = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + h
        up = f()
        arr[idx] = old - h
        down = f()
        arr[idx] = old
        g[idx] = (up - down) / (2 * h)
    return g


@pytest.mark.parametrize("act,slope", [(None, 0.01), ("identity", 0.01), ("relu", 0.01),
                                       ("leaky_relu", 0.01), ("leaky_relu", 0.3),
                                       ("sigmoid", 0.01), ("tanh", 0.01)])
@pytest.mark.parametrize("xshape", [(4, 5), (2, 3, 5)])
def test_gradient_central_difference(act, slope, xshape):
    """linear_backward against central differences of loss = sum(linear(x, w, b) * R)."""
    rng = np.random.default_rng(7)
    n = 3
    while True:   # keep every z away from the kinks of relu / leaky_relu
        x, w, b = rng.standard_normal(xshape), rng.standard_normal((5, n)), rng.standard_normal(n)
        if np.abs(x @ w + b).min() > 1e-3:
            break
    r = rng.standard_normal(xshape[:-1] + (n,))

    def loss():
        return float(np.sum(fastfc.linear(x, w, b, activation=act, negative_slope=slope) * r))

    y = fastfc.linear(x, w, b, activation=act, negative_slope=slope)
    gx, gw, gb = fastfc.linear_backward(r, x, w, y=y, activation=act, negative_slope=slope)
    for name, arr, grad in (("grad_x", x, gx), ("grad_w", w, gw), ("grad_b", b, gb)):
        assert grad.shape == arr.shape, name
        np.testing.assert_allclose(grad, numeric_grad(loss, arr), rtol=1e-5, atol=1e-7,
                                   err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["relu", "sigmoid", None])
def test_backward_out_without_2d_view(rng, dtype, act):
    """grad_x of an N-d x written into an out whose strides allow no 2-D view, grad_w and
    grad_b into strided outs (sliced, negative)."""
    x, w, y, gy = _case(rng, dtype, (3, 4, 7), 5, act)
    outs = (np.full((3, 8, 7), np.nan, dtype)[:, ::2, :],
            layout(np.full((7, 5), np.nan, dtype), "sliced"),
            layout(np.full((5,), np.nan, dtype), "negative"))
    got = fastfc.linear_backward(gy, x, w, y=y, activation=act, out=outs)
    assert all(g is o for g, o in zip(got, outs))
    check_backward(got, gy, x, w, y, act, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_dimensional_x(rng, dtype):
    x, w, b = make(rng, (70,), dtype), make(rng, (70, 9), dtype), make(rng, (9,), dtype)
    out = np.full(9, np.nan, dtype)
    assert fastfc.linear(x, w, b, activation="tanh", out=out) is out
    check_forward(out, x, w, b, "tanh", dtype)
    y = out.copy()
    gy = make(rng, (9,), dtype)
    got = fastfc.linear_backward(gy, x, w, y=y, activation="tanh")
    assert got[0].shape == (70,)
    check_backward(got, gy, x, w, y, "tanh", dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lx", ["C", "sliced", "negative"])
@pytest.mark.parametrize("wl", ["C", "F", "packed"])
def test_one_sample_is_the_row_of_a_batch(rng, dtype, lx, wl):
    """A 1-D x (no 2-D views made) gives the bits of the same row as a batch of one."""
    x = layout(make(rng, (1100,), dtype), lx)
    w = layout(make(rng, (1100, 65), dtype), "F" if wl == "F" else "C")
    w = fastfc.pack(w) if wl == "packed" else w
    b = make(rng, (65,), dtype)
    for bias in (b, None):
        got = fastfc.linear(x, w, bias, activation="relu")
        assert got.shape == (65,) and got.dtype == np.dtype(dtype)
        assert_identical(got, fastfc.linear(x[None, :], w, bias, activation="relu")[0])
    check_forward(got, x, np.asarray(w) if wl != "packed" else w.unpack(), None, "relu", dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 63, 64, 65, 100, 200, 1000])
def test_one_output_column(rng, dtype, k):
    """w of shape (k, 1): contiguous rows of x from k = 64 are dot products, their lanes
    summed in a tree (stream/dot_template.h); others stream as C^T = w^T.x^T. Either way
    within the reference's bound, and the same bits for w given, strided and packed, and
    for every row alone or in any order (the kernel takes rows in pairs: a product left
    unfused in one of them once moved a row's result by an ulp in one row of 20)."""
    for m in (1, 7, 65, 300):
        for lx in ("C", "F", "sliced"):
            x, w = make(rng, (m, k), dtype, lx), make(rng, (k, 1), dtype)
            b = make(rng, (1,), dtype)
            for act in (None, "relu", "tanh"):
                got = fastfc.linear(x, w, b, activation=act)
                check_forward(got, x, w, b, act, dtype)
                for w2 in (layout(w, "sliced"), layout(w, "negative"), fastfc.pack(w)):
                    assert_identical(fastfc.linear(x, w2, b, activation=act), got)
                rows = range(m) if m < 100 else sorted({0, m // 2, m - 1})
                for i in rows:
                    assert_identical(fastfc.linear(x[i:i + 1], w, b, activation=act), got[i:i + 1])
                for i in sorted({0, m // 2, m - 1}):
                    assert_identical(fastfc.linear(x[i], w, b, activation=act), got[i])
                    assert_identical(fastfc.linear(x[:i + 1], w, b, activation=act),
                                     got[:i + 1])
                rev = fastfc.linear(layout(x[::-1], lx), w, b, activation=act)   # re-paired
                assert_identical(rev[::-1], got)
            if dtype == np.float32:   # bfloat16 weights: the bits of the widened ones
                pw = fastfc.pack(w, "bfloat16")
                got = fastfc.linear(x, pw, b)
                assert_identical(got, fastfc.linear(x, pw.unpack(), b))
                assert_identical(fastfc.linear(x[m - 1:], pw, b), got[m - 1:])


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_output_column_on_threads(rng, dtype, keep_threads):
    x, w, b = make(rng, (1000, 700), dtype), make(rng, (700, 1), dtype), make(rng, (1,), dtype)
    outs = []
    for threads in (1, 2, 3):
        fastfc.set_num_threads(threads)
        outs.append(fastfc.linear(x, w, b, activation="relu"))
        assert_identical(fastfc.linear(x[333:334], w, b, activation="relu"), outs[-1][333:334])
    check_forward(outs[0], x, w, b, "relu", dtype)
    for got in outs[1:]:
        assert_identical(got, outs[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_row_with_a_strided_out_is_the_row_of_a_batch(rng, dtype):
    """A column-strided out= keeps W^T at one row off the stream: the product runs as
    C^T = W.x^T, one column, in the GEMM's order (not the one-column dot kernel's)."""
    x, wt = make(rng, (2, 100), dtype), make(rng, (65, 100), dtype)
    for gemm in (False, True):
        rows = []
        for m in (1, 2):
            out = np.empty((m, 130), dtype)[:, ::2]
            if gemm:
                fastfc.gemm(x[:m], wt, trans_b=True, out=out)
            else:
                fastfc.linear(x[:m], wt.T, out=out)
            rows.append(out[0].copy())
        assert_identical(rows[0], rows[1])
        assert_identical(rows[0], fastfc.linear(x[0], wt.T))
