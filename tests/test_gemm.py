"""fastfc.gemm against fastfc.reference.gemm: sizes, layouts, transposes, alpha/beta, out=,
NaN/Inf, zero-size dimensions and a hypothesis property test."""
import itertools

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastfc
from fastfc import reference as ref
from conftest import (DTYPES, LAYOUTS, assert_close, assert_identical, check_layout,
                      gemm_scale, layout, make, product_dims)

ODD = [1, 7, 17, 63, 65]
# A dimension of 1000+ in each position, K past several KC blocks, M past MC, N past NC
# (4080), and a row stride of 8 KiB (x rows packed instead of streamed).
LARGE = [(1001, 33, 65), (63, 1025, 17), (17, 65, 1031), (200, 600, 90), (9, 33, 4100),
         (33, 2048, 17), (12, 1024, 300)]


def past_kc(dtype, extra):
    """A depth `extra` past the running path's KC: two K blocks."""
    return fastfc.get_config()[f"blocks_{np.dtype(dtype).name}"]["KC"] + extra


def op(a, t):
    return a.T if t else a


def operands(rng, m, k, n, dtype, la="C", lb="C", ta=False, tb=False):
    a = make(rng, (k, m) if ta else (m, k), dtype, la)
    b = make(rng, (n, k) if tb else (k, n), dtype, lb)
    return a, b


def check(got, a, b, ta, tb, dtype, alpha=1.0, beta=0.0, out0=None):
    """got against the reference; the bound covers alpha*a@b plus beta*out."""
    want = ref.gemm(a, b, trans_a=ta, trans_b=tb, alpha=alpha, beta=beta, out=out0)
    assert got.dtype == np.dtype(dtype)
    k = op(a, ta).shape[1]
    scale = abs(alpha) * gemm_scale(op(a, ta), op(b, tb))
    if beta != 0:
        scale = scale + abs(beta) * np.abs(out0.astype(np.float64))
    assert_close(got, want, scale, k + (beta != 0), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", list(itertools.product(ODD, ODD, ODD)))
def test_odd_sizes(rng, dtype, m, k, n):
    a, b = operands(rng, m, k, n, dtype)
    got = fastfc.gemm(a, b)
    assert got.shape == (m, n)
    check(got, a, b, False, False, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", LARGE)
def test_large_sizes(rng, dtype, m, k, n):
    a, b = operands(rng, m, k, n, dtype)
    check(fastfc.gemm(a, b), a, b, False, False, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_rows_a_power_of_two_apart(rng, keep_threads, dtype, threads):
    """Rows of x 4 KiB (float32) or 8 KiB apart, so a panel's rows all fall in one L1 set,
    and more of them than an A block: packed or streamed by the path's rule, the bits of the
    same x at a stride a cache line longer, whose rows never crowd a set."""
    m, k, n = 1100, 1024, 100
    a, b = operands(rng, m, k, n, dtype)
    padded = np.empty((m, k + 16), dtype)[:, :k]
    padded[...] = a
    fastfc.set_num_threads(threads)
    got = fastfc.gemm(a, b)
    check(got, a, b, False, False, dtype)
    assert_identical(got, fastfc.gemm(padded, b))
    bias = make(rng, (n,), dtype)
    assert_identical(fastfc.linear(a, b, bias, activation="relu"),
                     fastfc.linear(padded, b, bias, activation="relu"))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("la", LAYOUTS)
@pytest.mark.parametrize("lb", LAYOUTS)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_layouts_and_transposes(rng, dtype, la, lb, ta, tb):
    # k > KC (two K blocks), m < n (the C^T = B^T A^T path for column-major B), edge tiles
    m, k, n = 23, past_kc(dtype, 3), 41
    a, b = operands(rng, m, k, n, dtype, la, lb, ta, tb)
    check_layout(a, la)
    check_layout(b, lb)
    check(fastfc.gemm(a, b, trans_a=ta, trans_b=tb), a, b, ta, tb, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("la", LAYOUTS)
@pytest.mark.parametrize("lb", LAYOUTS)
def test_layouts_one_dimension_over_1000(rng, dtype, la, lb):
    m, k, n = 7, 1003, 66
    a, b = operands(rng, m, k, n, dtype, la, lb)
    check(fastfc.gemm(a, b), a, b, False, False, dtype)
    a, b = operands(rng, 1003, 17, 9, dtype, la, lb, ta=True)
    check(fastfc.gemm(a, b, trans_a=True), a, b, True, False, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 5, 10, 12, 13])
@pytest.mark.parametrize("out_layout", ["C", "F"])
def test_narrow_dw(rng, dtype, n, out_layout):
    # dW = X^T dZ with few columns (n <= 2*MR runs as dW^T = dZ^T X): x rows past MC,
    # a batch past KC, beta applied once through the transposed tile writes
    m, k = 131, past_kc(dtype, 9)
    a, b = operands(rng, m, k, n, dtype, ta=True)
    check(fastfc.gemm(a, b, trans_a=True), a, b, True, False, dtype)
    out = make(rng, (m, n), dtype, out_layout)
    out0 = out.copy()
    fastfc.gemm(a, b, trans_a=True, alpha=-0.5, beta=2.0, out=out)
    check(out, a, b, True, False, dtype, -0.5, 2.0, out0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (0.5, 0.0), (-2.0, 1.0), (1.5, -0.25),
                                        (0.0, 2.0), (3.0, 1.0)])
@pytest.mark.parametrize("out_layout", LAYOUTS)
def test_alpha_beta_out(rng, dtype, alpha, beta, out_layout):
    m, k, n = 65, past_kc(dtype, 44), 33   # two K blocks: beta must be applied exactly once
    a, b = operands(rng, m, k, n, dtype)
    out = make(rng, (m, n), dtype, out_layout)
    out0 = out.copy()
    got = fastfc.gemm(a, b, alpha=alpha, beta=beta, out=out)
    assert got is out
    check(out, a, b, False, False, dtype, alpha, beta, out0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n", [(1, 1), (3, 2), (40, 70)])
@pytest.mark.parametrize("beta", [0.0, 2.0])
def test_alpha_scales_the_whole_sum(dtype, m, n, beta):
    """alpha multiplies the finished sum, as alpha * (a @ b) in NumPy: over four K blocks
    summing to kc, kc, -kc/2, -kc/2 an infinite alpha gave NaN (inf - inf) and an alpha
    whose product is 0.75 of the largest float overflowed after two blocks."""
    kc = past_kc(dtype, 0)
    a = np.ones((m, 4 * kc), dtype)
    b = np.ones((4 * kc, n), dtype)
    b[2 * kc:] = -0.5
    out0 = np.full((m, n), 3.0, dtype)
    for alpha in (np.inf, -np.inf, 0.75 * float(np.finfo(dtype).max) / kc, 2.5):
        want = dtype(alpha) * (a @ b) + dtype(beta) * out0
        out = out0.copy()
        got = fastfc.gemm(a, b, alpha=alpha, beta=beta, out=out)
        assert np.isfinite(want).all() == np.isfinite(alpha)
        assert_identical(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, True), (False, True)])
def test_alpha_beta_with_transposes(rng, dtype, ta, tb):
    m, k, n = 31, 70, 90
    a, b = operands(rng, m, k, n, dtype, "F", "sliced", ta, tb)
    out = make(rng, (m, n), dtype, "F")
    out0 = out.copy()
    fastfc.gemm(a, b, trans_a=ta, trans_b=tb, alpha=-0.75, beta=0.5, out=out)
    check(out, a, b, ta, tb, dtype, -0.75, 0.5, out0)


def test_scalar_types_accepted(rng):
    a, b = operands(rng, 5, 6, 7, np.float64)
    out = make(rng, (5, 7), np.float64)
    out0 = out.copy()
    fastfc.gemm(a, b, alpha=np.float32(2.0), beta=np.int64(3), out=out)
    check(out, a, b, False, False, np.float64, 2.0, 3.0, out0)
    check(fastfc.gemm(a, b, alpha=2), a, b, False, False, np.float64, 2.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out_layout", LAYOUTS)
@pytest.mark.parametrize("m,k,n", [(7, 5, 9), (64, 300, 40), (130, 20, 300), (1, 1, 1)])
def test_beta_zero_does_not_read_out(rng, dtype, out_layout, m, k, n):
    a, b = operands(rng, m, k, n, dtype)
    out = layout(np.full((m, n), np.nan, dtype), out_layout)
    got = fastfc.gemm(a, b, alpha=1.5, beta=0.0, out=out)
    assert got is out
    assert np.isfinite(out).all(), "beta=0 read the NaN in out"
    check(out, a, b, False, False, dtype, alpha=1.5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_beta_nonzero_reads_out_nan(rng, dtype):
    a, b = operands(rng, 20, 9, 30, dtype)
    out = make(rng, (20, 30), dtype)
    out[4, 6] = np.nan
    out[19, 29] = np.inf
    out0 = out.copy()
    fastfc.gemm(a, b, beta=1.0, out=out)
    check(out, a, b, False, False, dtype, 1.0, 1.0, out0)
    assert np.isnan(out[4, 6]) and out[19, 29] == np.inf


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lb", ["C", "F"])
@pytest.mark.parametrize("m,k,n", [(20, 30, 40), (70, 300, 50)])
def test_nan_inf_propagate(rng, dtype, lb, m, k, n):
    a, b = operands(rng, m, k, n, dtype, "C", lb)
    a[3, 7] = np.nan
    a[5, 2] = np.inf
    a[m - 1, k - 1] = -np.inf            # last row: an edge tile
    b[:, 11] = 0.0                        # inf * 0 = NaN in column 11 of row 5
    b[k - 1, n - 1] = np.inf
    b[2, 13] = -1.0                       # row 5, column 13: inf * -1 = -inf
    with np.errstate(invalid="ignore", over="ignore"):
        want = ref.gemm(a, b)
    got = fastfc.gemm(a, b)
    assert np.isnan(got[3]).all() and np.isnan(got[5, 11])
    assert np.isnan(want[5, 11])
    with np.errstate(invalid="ignore"):
        check(got, a, b, False, False, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_alpha_zero_still_propagates_nan(rng, dtype):
    """The reference computes alpha * (a @ b): 0 * NaN is NaN, as in NumPy."""
    a, b = operands(rng, 9, 8, 20, dtype)
    a[2, 3] = np.nan
    out = make(rng, (9, 20), dtype)
    out0 = out.copy()
    with np.errstate(invalid="ignore"):
        want = ref.gemm(a, b, alpha=0.0, beta=1.0, out=out0)
    fastfc.gemm(a, b, alpha=0.0, beta=1.0, out=out)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(want))
    np.testing.assert_array_equal(out[np.isfinite(want)], want[np.isfinite(want)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", [(0, 5, 4), (3, 0, 4), (3, 5, 0), (0, 0, 0), (0, 0, 3),
                                   (40, 0, 70)])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, True)])
def test_zero_size(dtype, m, k, n, ta, tb):
    a = np.ones((k, m) if ta else (m, k), dtype)
    b = np.ones((n, k) if tb else (k, n), dtype)
    got = fastfc.gemm(a, b, trans_a=ta, trans_b=tb)
    assert got.shape == (m, n) and got.dtype == dtype
    np.testing.assert_array_equal(got, np.zeros((m, n), dtype))
    out = np.full((m, n), 3.0, dtype)
    r = fastfc.gemm(a, b, trans_a=ta, trans_b=tb, alpha=2.0, beta=0.5, out=out)
    assert r is out
    want = ref.gemm(a, b, trans_a=ta, trans_b=tb, alpha=2.0, beta=0.5,
                    out=np.full((m, n), 3.0, dtype))
    np.testing.assert_array_equal(out, want)
    if k == 0:   # k = 0: out = beta * out, exactly
        np.testing.assert_array_equal(out, np.full((m, n), 1.5, dtype))
    out = np.full((m, n), np.nan, dtype)
    fastfc.gemm(a, b, trans_a=ta, trans_b=tb, beta=0.0, out=out)
    np.testing.assert_array_equal(out, np.zeros((m, n), dtype))   # NaN not read


@pytest.mark.parametrize("alpha", [np.nan, np.inf, -np.inf])
def test_k_zero_still_multiplies_by_alpha(alpha):
    """alpha * (a @ b) with an empty sum is alpha * 0: NaN for a NaN or infinite alpha."""
    a, b = np.ones((2, 0)), np.ones((0, 3))
    with np.errstate(invalid="ignore"):
        want = ref.gemm(a, b, alpha=alpha)
    assert np.isnan(want).all()
    np.testing.assert_array_equal(fastfc.gemm(a, b, alpha=alpha), want)


@pytest.mark.parametrize("out_layout", ["F", "sliced", "negative"])
def test_k_zero_scales_strided_out(rng, out_layout):
    out = make(rng, (9, 13), np.float64, out_layout)
    want = -2.0 * out
    fastfc.gemm(np.ones((9, 0)), np.ones((0, 13)), beta=-2.0, out=out)
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_broadcast_zero_stride_inputs(rng, dtype):
    """Inputs may have any strides, zero (broadcast views) included."""
    row = rng.standard_normal(300).astype(dtype)
    col = rng.standard_normal((300, 1)).astype(dtype)
    a = np.broadcast_to(row, (40, 300))
    b = np.broadcast_to(col, (300, 70))
    check(fastfc.gemm(a, b), a, b, False, False, dtype)
    check(fastfc.gemm(b, a, trans_a=True, trans_b=True), b, a, True, True, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_result_is_a_fresh_array(rng, dtype):
    a, b = operands(rng, 5, 4, 3, dtype)
    c1, c2 = fastfc.gemm(a, b), fastfc.gemm(a, b)
    assert c1 is not c2 and not np.shares_memory(c1, c2)
    assert not np.shares_memory(c1, a) and not np.shares_memory(c1, b)
    assert_identical(c1, c2)   # the same call twice gives the same bits


@given(dims=product_dims(), dtype=st.sampled_from(DTYPES), la=st.sampled_from(LAYOUTS), lb=st.sampled_from(LAYOUTS),
       lo=st.sampled_from(LAYOUTS), ta=st.booleans(), tb=st.booleans(),
       alpha=st.sampled_from([1.0, -1.0, 0.5, 2.0, 0.0]),
       beta=st.sampled_from([0.0, 1.0, -0.5, None]), seed=st.integers(0, 2**32 - 1))
def test_gemm_property(dims, dtype, la, lb, lo, ta, tb, alpha, beta, seed):
    m, k, n = dims
    rng = np.random.default_rng(seed)
    a, b = operands(rng, m, k, n, dtype, la, lb, ta, tb)
    if beta is None:   # no out=
        got = fastfc.gemm(a, b, trans_a=ta, trans_b=tb, alpha=alpha)
        assert got.shape == (m, n)
        check(got, a, b, ta, tb, dtype, alpha)
    else:
        out = make(rng, (m, n), dtype, lo)
        out0 = out.copy()
        got = fastfc.gemm(a, b, trans_a=ta, trans_b=tb, alpha=alpha, beta=beta, out=out)
        assert got is out
        check(out, a, b, ta, tb, dtype, alpha, beta, out0)
