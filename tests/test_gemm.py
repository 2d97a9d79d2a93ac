import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastfc
from fastfc import reference as ref
from conftest import DTYPES, LAYOUTS, assert_close, make

SIZES = [(1, 1, 1), (7, 17, 63), (65, 63, 7), (17, 1000, 5), (1001, 33, 65), (63, 65, 1025)]


def op(a, t):
    return a.T if t else a


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", SIZES)
def test_gemm_matches_reference(rng, dtype, m, k, n):
    a, b = make(rng, (m, k), dtype), make(rng, (k, n), dtype)
    got = fastfc.gemm(a, b)
    assert got.dtype == dtype and got.shape == (m, n)
    assert_close(got, ref.gemm(a, b), np.abs(a) @ np.abs(b), k, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("la", LAYOUTS)
@pytest.mark.parametrize("lb", LAYOUTS)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_layouts_and_transposes(rng, dtype, la, lb, ta, tb):
    m, k, n = 37, 70, 29
    a = make(rng, (k, m) if ta else (m, k), dtype, la)
    b = make(rng, (n, k) if tb else (k, n), dtype, lb)
    got = fastfc.gemm(a, b, trans_a=ta, trans_b=tb)
    want = op(a, ta) @ op(b, tb)
    assert_close(got, want, np.abs(op(a, ta)) @ np.abs(op(b, tb)), k, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (0.5, 0.0), (-2.0, 1.0), (1.5, -0.25), (0.0, 2.0)])
@pytest.mark.parametrize("out_layout", ["C", "F", "sliced"])
def test_gemm_alpha_beta_out(rng, dtype, alpha, beta, out_layout):
    m, k, n = 65, 300, 33   # k > KC: several K blocks, beta applied once
    a, b = make(rng, (m, k), dtype), make(rng, (k, n), dtype)
    out = make(rng, (m, n), dtype, out_layout)
    want = ref.gemm(a, b, alpha=alpha, beta=beta, out=out.copy())
    got = fastfc.gemm(a, b, alpha=alpha, beta=beta, out=out)
    assert got is out
    scale = abs(alpha) * (np.abs(a) @ np.abs(b)) + abs(beta) * np.abs(want)
    assert_close(out, want, scale, k, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", [(7, 5, 9), (64, 300, 40)])
def test_beta_zero_does_not_read_out(rng, dtype, m, k, n):
    a, b = make(rng, (m, k), dtype), make(rng, (k, n), dtype)
    out = np.full((m, n), np.nan, dtype)
    fastfc.gemm(a, b, beta=0.0, out=out)
    assert np.isfinite(out).all()
    assert_close(out, a @ b, np.abs(a) @ np.abs(b), k, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_inf_propagate(rng, dtype):
    a, b = make(rng, (20, 30), dtype), make(rng, (30, 40), dtype)
    a[3, 7] = np.nan
    a[5, 2] = np.inf
    b[:, 11] = 0.0
    got = fastfc.gemm(a, b)
    with np.errstate(invalid="ignore"):
        want = a @ b
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    assert np.isnan(got[3]).all() and np.isnan(got[5, 11])


@pytest.mark.parametrize("m,k,n", [(0, 5, 4), (3, 0, 4), (3, 5, 0), (0, 0, 0)])
def test_zero_size(rng, m, k, n):
    a, b = np.ones((m, k), np.float32), np.ones((k, n), np.float32)
    got = fastfc.gemm(a, b)
    assert got.shape == (m, n)
    np.testing.assert_array_equal(got, np.zeros((m, n), np.float32))
    out = np.full((m, n), 3.0, np.float32)
    fastfc.gemm(a, b, beta=0.5, out=out)   # k = 0: out = beta * out
    np.testing.assert_array_equal(out, np.full((m, n), 1.5, np.float32))


def test_k_zero_scales_out():
    out = np.full((4, 3), 2.0)
    fastfc.gemm(np.ones((4, 0)), np.ones((0, 3)), beta=3.0, out=out)
    np.testing.assert_array_equal(out, np.full((4, 3), 6.0))


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 80), k=st.integers(1, 300), n=st.integers(1, 80),
       dtype=st.sampled_from(DTYPES), la=st.sampled_from(LAYOUTS), lb=st.sampled_from(LAYOUTS),
       ta=st.booleans(), tb=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_gemm_property(m, k, n, dtype, la, lb, ta, tb, seed):
    rng = np.random.default_rng(seed)
    a = make(rng, (k, m) if ta else (m, k), dtype, la)
    b = make(rng, (n, k) if tb else (k, n), dtype, lb)
    got = fastfc.gemm(a, b, trans_a=ta, trans_b=tb)
    assert_close(got, op(a, ta) @ op(b, tb), np.abs(op(a, ta)) @ np.abs(op(b, tb)), k, dtype)
