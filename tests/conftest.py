"""Shared helpers: layouts of the same matrix and tolerances derived from dtype eps."""
import numpy as np
import pytest

DTYPES = [np.float32, np.float64]
LAYOUTS = ["C", "F", "sliced", "negative", "transposed"]


def make(rng, shape, dtype, layout="C"):
    """A random array of `shape` with the memory layout named by `layout`."""
    base = rng.standard_normal(shape).astype(dtype)
    if layout == "C":
        return base
    if layout == "F":
        return np.asfortranarray(base)
    if layout == "sliced":  # every other row and column of a bigger array
        big = np.zeros(tuple(2 * s for s in shape), dtype)
        view = big[tuple(slice(None, None, 2) for _ in shape)]
        view[...] = base
        return view
    if layout == "negative":
        flipped = np.ascontiguousarray(base[tuple(slice(None, None, -1) for _ in shape)])
        return flipped[tuple(slice(None, None, -1) for _ in shape)]
    if layout == "transposed":  # a .T view of a C array
        return np.ascontiguousarray(base.T).T
    raise ValueError(layout)


def assert_close(got, want, scale, k, dtype, factor=4.0):
    """|got - want| <= factor * eps * (k * scale + |want|), elementwise.

    `scale` bounds the magnitude of the terms summed (e.g. |a| @ |b|) and `k` is the
    reduction length: the standard forward error bound of a dot product."""
    eps = np.finfo(dtype).eps
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    # the dot-product bound, plus the rounding of the result itself (activations like
    # sigmoid round relative to their output, which need not be small when z is)
    with np.errstate(invalid="ignore"):
        tol = factor * eps * (max(k, 1) * np.asarray(scale, np.float64)
                              + np.nan_to_num(np.abs(want), posinf=0)) + np.finfo(dtype).tiny
    assert got.shape == want.shape, (got.shape, want.shape)
    both_nan = np.isnan(got) & np.isnan(want)
    same = (got == want) | both_nan
    err = np.where(same, 0.0, np.abs(got - want))
    bad = ~(err <= tol)
    assert not bad.any(), (
        f"{bad.sum()} of {bad.size} elements off; worst error {err[bad].max()!r} vs tol "
        f"{np.broadcast_to(tol, err.shape)[bad].max()!r}")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


# CI runs the same hypothesis examples every time (set HYPOTHESIS_PROFILE=explore to search
# afresh with more examples).
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("explore", max_examples=300, deadline=None)
import os  # noqa: E402

settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
