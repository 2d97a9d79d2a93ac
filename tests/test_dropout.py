import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

import fastfc
from fastfc import reference as ref
from fastfc._kernels import philox4x32_10
from conftest import DTYPES, make

# Random123 known-answer vectors (kat_vectors): counter[4], key[2] -> out[4]
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("ctr,key,out", KAT)
def test_philox_known_answers(ctr, key, out):
    assert philox4x32_10(ctr, key) == out
    assert ref.philox4x32_10(ctr, key) == out


def test_reference_stream_matches_scalar_philox():
    words = ref.philox_words(4 * 5, seed=0xDEADBEEF12345678, stream=7)
    for blk in range(5):
        ctr = (blk, 0, 7, 0)
        key = (0x12345678, 0xDEADBEEF)
        assert tuple(int(v) for v in words[4 * blk:4 * blk + 4]) == ref.philox4x32_10(ctr, key)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 7, 31, 32, 33, 63, 64, 65, 1000, 100003])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9])
def test_dropout_bit_identical_to_reference(rng, dtype, n, p):
    x = make(rng, (n,), dtype)
    y, mask = fastfc.dropout(x, p, seed=2024, stream=3)
    ry, rmask = ref.dropout(x, p, seed=2024, stream=3)
    assert mask.dtype == np.bool_ and y.dtype == dtype
    np.testing.assert_array_equal(mask, rmask)
    np.testing.assert_array_equal(y, ry)


@pytest.mark.parametrize("layout", ["C", "F", "sliced", "negative"])
def test_dropout_nd_and_layouts(rng, layout):
    x = make(rng, (6, 7, 9), np.float32, layout)
    y, mask = fastfc.dropout(x, 0.4, seed=5)
    ry, rmask = ref.dropout(x, 0.4, seed=5)   # element index = C order of x
    np.testing.assert_array_equal(mask, rmask)
    np.testing.assert_array_equal(y, ry)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_statistics(p):
    n = 1 << 20
    x = np.ones(n, np.float32)
    y, mask = fastfc.dropout(x, p, seed=77)
    kept = mask.mean()
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(kept - (1 - p)) < 5 * sigma
    np.testing.assert_array_equal(y[mask], np.float32(1 / (1 - p)))
    np.testing.assert_array_equal(y[~mask], 0)
    m = mask.astype(np.float64)
    for lag in (1, 2, 3, 4, 8):   # neighbours share Philox blocks: no correlation
        c = np.corrcoef(m[:-lag], m[lag:])[0, 1]
        assert abs(c) < 5 / np.sqrt(n)


def test_seed_and_stream_change_mask():
    x = np.ones(4096)
    _, a = fastfc.dropout(x, 0.5, seed=1)
    _, b = fastfc.dropout(x, 0.5, seed=1)
    _, c = fastfc.dropout(x, 0.5, seed=2)
    _, d = fastfc.dropout(x, 0.5, seed=1, stream=1)
    np.testing.assert_array_equal(a, b)
    assert (a != c).mean() > 0.4 and (a != d).mean() > 0.4


def test_p_zero_keeps_everything(rng):
    x = make(rng, (100,), np.float64)
    y, mask = fastfc.dropout(x, 0.0, seed=3)
    assert mask.all()
    np.testing.assert_array_equal(y, x)


def test_nan_stays_nan():
    x = np.full(256, np.nan, np.float32)
    y, mask = fastfc.dropout(x, 0.5, seed=9)
    assert np.isnan(y).all()   # x * 0 is NaN, as in NumPy


def test_out_and_in_place(rng):
    x = make(rng, (1000,), np.float32)
    want, _ = ref.dropout(x, 0.3, seed=4)
    out = np.empty_like(x)
    y, _ = fastfc.dropout(x, 0.3, seed=4, out=out)
    assert y is out
    np.testing.assert_array_equal(out, want)
    xc = x.copy()
    fastfc.dropout(xc, 0.3, seed=4, out=xc)
    np.testing.assert_array_equal(xc, want)
    strided = np.empty(2000, np.float32)[::2]
    fastfc.dropout(x, 0.3, seed=4, out=strided)
    np.testing.assert_array_equal(strided, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_backward(rng, dtype):
    x = make(rng, (50, 33), dtype)
    _, mask = fastfc.dropout(x, 0.25, seed=11)
    g = make(rng, (50, 33), dtype, "F")
    np.testing.assert_array_equal(fastfc.dropout_backward(g, mask, 0.25),
                                  ref.dropout_backward(g, mask, 0.25))


def test_same_mask_any_thread_count():
    x = np.ones(3_000_001, np.float32)
    old = fastfc.get_num_threads()
    try:
        fastfc.set_num_threads(1)
        y1, m1 = fastfc.dropout(x, 0.5, seed=123)
        fastfc.set_num_threads(2)
        y2, m2 = fastfc.dropout(x, 0.5, seed=123)
    finally:
        fastfc.set_num_threads(old)
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(y1, y2)


_HASH_SCRIPT = """
import hashlib, numpy as np, fastfc
y, m = fastfc.dropout(np.arange(2_000_003, dtype=np.float32), 0.3, seed=99)
print(hashlib.sha256(m.tobytes() + y.tobytes()).hexdigest())
"""


def test_same_mask_for_omp_num_threads_1_and_2():
    digests = []
    for n in ("1", "2"):
        env = dict(os.environ, OMP_NUM_THREADS=n)
        out = subprocess.run([sys.executable, "-c", _HASH_SCRIPT], env=env, capture_output=True,
                             text=True, timeout=120, check=True)
        digests.append(out.stdout.strip())
    y, m = fastfc.dropout(np.arange(2_000_003, dtype=np.float32), 0.3, seed=99)
    assert digests[0] == digests[1] == hashlib.sha256(m.tobytes() + y.tobytes()).hexdigest()
