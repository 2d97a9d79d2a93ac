"""A training step computes with subnormal numbers flushed to zero (x86's FTZ and DAZ) on
every thread of its regions, then gives the caller its mode back: predictions and
fastfc.linear stay IEEE, as NumPy (fastfc/model/subnormals.py)."""
import platform

import numpy as np

import fastfc
from fastfc import _core

FLUSHES = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
TINY = np.finfo(np.float32).tiny


def _subnormals(a):
    return int(np.count_nonzero((a != 0) & (np.abs(a) < TINY)))


def _tiny_gradients(threads):
    """dW of one MSE step of a 784-128 layer whose products straddle FLT_MIN (W and b 0:
    dZ = -2 y / 4096), on `threads` threads; and the IEEE float32 dW from NumPy."""
    fastfc.set_num_threads(threads)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((32, 784)) * 1e-14).astype(np.float32)
    y = (rng.standard_normal((32, 128)) * 1e-20).astype(np.float32)
    model = fastfc.Sequential([fastfc.Dense(784, 128)], loss="mse",
                              optimizer=fastfc.optim.SGD(lr=0.1), seed=0)
    for v in model.layers[0].params.values():
        v[...] = 0
    regions = _core._wide_regions()
    model.train_on_batch(x, y)
    dz = (-2 * y / y.size).astype(np.float32)
    return (model.layers[0].grads["W"].copy(), _core._wide_regions() > regions,
            x.T @ dz)


def test_a_step_stores_no_subnormal_gradient_on_any_thread_count(keep_threads):
    got = {t: _tiny_gradients(t) for t in (1, 2, 3)}
    ieee = got[1][2]
    assert _subnormals(ieee) > 1000 and np.count_nonzero(np.abs(ieee) >= TINY) > 1000
    for t, (dw, _, _) in got.items():
        assert np.array_equal(dw, got[1][0]), f"{t} threads round otherwise"
        if FLUSHES:
            assert _subnormals(dw) == 0, t
        # each of the 32 multiply-adds of an element may lose under FLT_MIN to a flush
        np.testing.assert_allclose(dw, ieee, rtol=32 * np.finfo(np.float32).eps,
                                   atol=32 * TINY)
    if not fastfc.get_config()["openmp"].startswith("none"):
        # the 3.2 M multiply-adds of dW ran on a team: the workers flushed too
        assert any(wide for t, (_, wide, _) in got.items() if t > 1)


def test_the_callers_mode_comes_back(keep_threads):
    for before in (0, 1):
        _core._flush_subnormals(before)
        _tiny_gradients(2)
        assert _core._flush_subnormals(0) == (before and FLUSHES)


def test_linear_stays_ieee_after_a_step_on_every_thread(keep_threads):
    _tiny_gradients(3)
    a = np.full((256, 256), TINY / 8, np.float32)   # subnormal, times the identity
    eye = np.eye(256, dtype=np.float32)
    for t in (1, 2, 3):
        fastfc.set_num_threads(t)
        for _ in range(5):    # back to back: the workers that ran the step's regions join
            assert np.array_equal(fastfc.gemm(a, eye), a), t
