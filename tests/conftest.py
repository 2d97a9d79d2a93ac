"""Shared helpers: memory layouts of the same values and tolerances derived from dtype eps.

Tolerances follow the error of a dot product of length k, which grows like
``sqrt(k) * eps * (|x| . |y|)`` (k in the worst case), so a check is ``|got - ref| <=
c * eps * (sqrt(k) * scale + |ref|) + tiny`` with ``scale`` the same sum over absolute
values (``|a| @ |b|`` for a GEMM). Both the kernel and NumPy's reference round, hence the
constant ``c`` (4 by default); nothing looser is used anywhere.
"""
import os

# before scipy is imported: check_estimator runs its array-API check (else it skips it)
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np
import pytest
from hypothesis import settings, strategies as st

DTYPES = [np.float32, np.float64]
# C order, Fortran order, every other element of a bigger array (step 2 on every axis),
# negative strides on every axis, and a transposed view (.T of a C array).
LAYOUTS = ["C", "F", "sliced", "negative", "transposed"]


def layout(base, name):
    """The values of `base` in a new array with the memory layout `name`."""
    base = np.asarray(base)
    dtype, shape = base.dtype, base.shape
    if name == "C":
        return np.array(base, order="C", copy=True)
    if name == "F":
        return np.array(base, order="F", copy=True)
    if name == "sliced":  # step 2 on every axis of a bigger buffer
        big = np.full(tuple(2 * s + 1 for s in shape), -7777.0, dtype)
        view = big[tuple(slice(1, None, 2) for _ in shape)]
        view[...] = base
        return view
    if name == "negative":  # negative stride on every axis
        rev = tuple(slice(None, None, -1) for _ in shape)
        return np.ascontiguousarray(base[rev])[rev]
    if name == "transposed":  # .T of a C array of the reversed shape
        return np.ascontiguousarray(base.T).T
    raise ValueError(name)


def make(rng, shape, dtype, layout_name="C"):
    """A random standard-normal array of `shape` and `dtype` in the layout named."""
    return layout(rng.standard_normal(shape).astype(dtype), layout_name)


def check_layout(arr, name):
    """Assert that `make(..., name)` really produced that kind of array (guards the
    factories: a test over layouts must not silently test C order five times)."""
    if arr.ndim < 2 or min(arr.shape) < 2:
        return
    if name == "C":
        assert arr.flags.c_contiguous
    elif name in ("F", "transposed"):
        assert arr.flags.f_contiguous and not arr.flags.c_contiguous
    elif name == "sliced":
        assert not arr.flags.c_contiguous and not arr.flags.f_contiguous
        assert all(s > 0 for s in arr.strides)
    elif name == "negative":
        assert all(s < 0 for s in arr.strides)


def tolerance(scale, k, dtype, factor=4.0, want=0.0):
    """factor * eps * (sqrt(k) * scale + |want|) + tiny, elementwise (k >= 1)."""
    eps = np.finfo(dtype).eps
    want = np.nan_to_num(np.abs(np.asarray(want, np.float64)), nan=0.0, posinf=0.0)
    return (factor * eps * (np.sqrt(max(int(k), 1)) * np.asarray(scale, np.float64) + want)
            + np.finfo(dtype).tiny)


def assert_close(got, want, scale, k, dtype, factor=4.0):
    """|got - want| <= factor * eps * (sqrt(k) * scale + |want|) + tiny, elementwise; NaN
    must match NaN and an infinity the same infinity.

    `scale` bounds the magnitude of the terms summed (e.g. |a| @ |b|) and `k` is the
    reduction length. sqrt(k), not the worst case k: rounding errors of a sum of k terms
    grow like sqrt(k) (both sides round; measured at most 0.6 eps * sqrt(k) * scale over
    the suite), and the worst-case bound let a sum of bf16-rounded products through at
    k = 3000. The |want| term covers the rounding of the result itself (an activation
    like sigmoid rounds relative to its output, not to z)."""
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    g = got.astype(np.float64)
    w = want.astype(np.float64)
    nan_g, nan_w = np.isnan(g), np.isnan(w)
    assert np.array_equal(nan_g, nan_w), (
        f"NaN pattern differs: {np.argwhere(nan_g != nan_w)[:5].tolist()}")
    inf_g, inf_w = np.isinf(g), np.isinf(w)
    assert np.array_equal(inf_g, inf_w) and np.array_equal(g[inf_g], w[inf_w]), (
        f"Inf pattern differs: {np.argwhere(inf_g != inf_w)[:5].tolist()}")
    fin = np.isfinite(w)
    with np.errstate(invalid="ignore"):
        tol = np.broadcast_to(tolerance(scale, k, dtype, factor, w), w.shape)
        err = np.abs(g - w)
    bad = fin & ~(err <= tol)
    assert not bad.any(), (
        f"{bad.sum()} of {bad.size} elements off; worst error {err[bad].max()!r} vs tol "
        f"{tol[bad].max()!r} at {np.argwhere(bad)[0].tolist()}")


def assert_identical(got, want):
    """Bit-identical arrays (dtype, shape and every byte, NaN included)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (
        got.dtype, got.shape, want.dtype, want.shape)
    assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(want).tobytes()


def gemm_scale(a, b):
    """|a| @ |b| in float64: the magnitude of the terms summed in a @ b."""
    return np.abs(np.asarray(a, np.float64)) @ np.abs(np.asarray(b, np.float64))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def keep_threads():
    """Restore fastfc's thread count after a test that changes it."""
    import fastfc
    old = fastfc.get_num_threads()
    yield
    fastfc.set_num_threads(old)


# The same hypothesis examples run every time (derandomized); HYPOTHESIS_PROFILE=explore
# searches afresh with more examples. The tests leave the count to the profile.
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=50)
settings.register_profile("explore", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def product_dims(most=300):
    """(m, k, n) of a product: small ones, and ones whose M, K or N crosses a cache block
    (MC, KC, NC) of every kernel path while the product stays cheap. `most` caps K in the
    small ones."""
    return st.one_of(
        st.tuples(st.integers(0, 80), st.integers(0, most), st.integers(0, 80)),
        st.tuples(st.integers(90, 600), st.integers(0, 48), st.integers(0, 40)),     # MC
        st.tuples(st.integers(0, 12), st.integers(500, 1200), st.integers(0, 40)),   # KC
        st.tuples(st.integers(0, 5), st.integers(0, 20), st.integers(3000, 4300)))   # NC
