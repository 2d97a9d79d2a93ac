"""Philox4x32-10 known answers, dropout bit-identical to the reference, its statistics,
seeds and streams, thread-count invariance and dropout_backward."""
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastfc
from fastfc import reference as ref
from fastfc._core import philox4x32_10
from conftest import DTYPES, LAYOUTS, assert_identical, check_layout, layout, make

# Random123 known-answer vectors (kat_vectors, philox4x32_10): counter[4], key[2] -> out[4]
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]
SIZES = [1, 7, 31, 32, 33, 63, 64, 65, 1000, 100003]


@pytest.mark.parametrize("ctr,key,out", KAT)
def test_philox_known_answers_c(ctr, key, out):
    assert philox4x32_10(ctr, key) == out


@pytest.mark.parametrize("ctr,key,out", KAT)
def test_philox_known_answers_reference(ctr, key, out):
    assert ref.philox4x32_10(ctr, key) == out


def test_reference_stream_is_the_scalar_philox():
    """Element i of the stream is word i % 4 of the block with counter
    (i // 4 low, i // 4 high, stream low, stream high) and key (seed low, seed high)."""
    seed, stream = 0xDEADBEEF12345678, 0x0000000700000003
    words = ref.philox_words(4 * 6 + 2, seed=seed, stream=stream)
    key = (seed & 0xFFFFFFFF, seed >> 32)
    for blk in range(7):
        ctr = (blk, 0, stream & 0xFFFFFFFF, stream >> 32)
        block = philox4x32_10(ctr, key)
        assert block == ref.philox4x32_10(ctr, key)
        got = tuple(int(v) for v in words[4 * blk:4 * blk + 4])
        assert got == block[:len(got)]


@pytest.mark.parametrize("p", [0.3, 0.5])
def test_mask_is_the_c_philox_word_against_the_threshold(p):
    """The mask, derived independently of the reference from the C Philox block."""
    seed, stream, n = 2**40 + 17, 2**33 + 5, 203
    _, mask = fastfc.dropout(np.ones(n), p, seed=seed, stream=stream)
    thr = int(np.floor(p * 2.0**32 + 0.5))
    key = (seed & 0xFFFFFFFF, seed >> 32)
    want = []
    for blk in range((n + 3) // 4):
        want += [w >= thr for w in philox4x32_10((blk, 0, stream & 0xFFFFFFFF, stream >> 32),
                                                 key)]
    np.testing.assert_array_equal(mask, np.array(want[:n]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("p", [0.0, 0.1, 1 / 3, 0.5, 0.9, 0.999])
def test_dropout_bit_identical_to_reference(rng, dtype, n, p):
    x = make(rng, (n,), dtype)
    x0 = x.copy()
    y, mask = fastfc.dropout(x, p, seed=2024, stream=3)
    ry, rmask = ref.dropout(x, p, seed=2024, stream=3)
    assert mask.dtype == np.bool_ and mask.shape == x.shape
    assert_identical(mask, rmask)
    assert_identical(y, ry)
    assert_identical(x, x0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(6, 7, 9), (3, 1, 33), (2, 3, 4, 5), (0, 4), (1,)])
@pytest.mark.parametrize("lay", LAYOUTS)
def test_dropout_nd_and_layouts(rng, dtype, shape, lay):
    x = make(rng, shape, dtype, lay)
    check_layout(x, lay)
    y, mask = fastfc.dropout(x, 0.4, seed=5)
    ry, rmask = ref.dropout(x, 0.4, seed=5)   # element index = C order of x
    assert y.shape == mask.shape == shape
    assert_identical(mask, rmask)
    assert_identical(y, ry)


@pytest.mark.parametrize("seed,stream", [(0, 0), (1, 2**32), (2**32 + 1, 0), (2**32, 1),
                                         (2**64 - 1, 2**64 - 1), (np.uint64(12345), 7),
                                         (np.int32(9), np.uint8(3))])
def test_seed_and_stream_range(seed, stream):
    x = np.arange(1, 300, dtype=np.float64)
    y, mask = fastfc.dropout(x, 0.5, seed=seed, stream=stream)
    ry, rmask = ref.dropout(x, 0.5, seed=int(seed), stream=int(stream))
    assert_identical(mask, rmask)
    assert_identical(y, ry)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_statistics(rng, dtype, p):
    n = 1 << 20
    x = rng.standard_normal(n).astype(dtype)
    y, mask = fastfc.dropout(x, p, seed=77)
    kept = mask.mean()
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(kept - (1 - p)) < 5 * sigma, (kept, 1 - p, sigma)
    # kept values scaled by exactly 1/(1-p) (rounded once to the dtype), the rest are 0
    scale = dtype(1.0 / (1.0 - p))
    assert_identical(y[mask], x[mask] * scale)
    assert (y[~mask] == 0).all()
    m = mask.astype(np.float64)
    for lag in (1, 2, 3, 4, 5, 8, 32):   # neighbours (same and next Philox block)
        c = np.corrcoef(m[:-lag], m[lag:])[0, 1]
        assert abs(c) < 5 / np.sqrt(n), (lag, c)
    for j in range(4):   # each word position of a block is kept as often
        assert abs(mask[j::4].mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / (n // 4))


@pytest.mark.parametrize("x", [np.array(2, np.int32), np.array(2, np.float16), 3,
                               np.array(2.0, ">f8"), np.array(2.0, np.float32)])
def test_zero_d_input_keeps_its_shape(x):
    y, mask = fastfc.dropout(x, 0.0, seed=0)
    assert y.shape == mask.shape == () and y == 2 + (x == 3)
    assert fastfc.dropout_backward(np.array(1.0), mask, 0.0).shape == ()


def test_p_zero_keeps_everything(rng):
    for dtype in DTYPES:
        x = make(rng, (1000,), dtype)
        y, mask = fastfc.dropout(x, 0.0, seed=3)
        assert mask.all()
        assert_identical(y, x)


def test_tiny_p_drops_almost_nothing_and_large_p_almost_everything():
    x = np.ones(1 << 16, np.float32)
    _, m = fastfc.dropout(x, 1e-12, seed=1)     # threshold rounds to 0: keep all
    assert m.all()
    _, m = fastfc.dropout(x, 0.9999, seed=1)
    assert 0 < m.sum() < 30


def test_seeds_and_streams_change_the_mask():
    x = np.ones(1 << 14)
    _, a = fastfc.dropout(x, 0.5, seed=1)
    _, b = fastfc.dropout(x, 0.5, seed=1)
    np.testing.assert_array_equal(a, b)
    others = [fastfc.dropout(x, 0.5, seed=s, stream=t)[1]
              for s, t in ((2, 0), (1, 1), (1 + 2**32, 0), (1, 2**32), (0, 0))]
    masks = [a] + others
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            differ = (masks[i] != masks[j]).mean()
            assert 0.45 < differ < 0.55, (i, j, differ)   # independent halves


def test_same_seed_same_mask_across_dtypes_and_shapes(rng):
    x = make(rng, (12, 35), np.float64)
    _, m64 = fastfc.dropout(x, 0.3, seed=8)
    _, m32 = fastfc.dropout(x.astype(np.float32), 0.3, seed=8)
    _, mflat = fastfc.dropout(x.ravel(), 0.3, seed=8)
    np.testing.assert_array_equal(m64, m32)
    np.testing.assert_array_equal(m64.ravel(), mflat)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [7, 100, 1000, 100003])
def test_nan_and_inf(dtype, n):
    """Dropped elements are multiplied by 0: NaN stays NaN and a dropped Inf is NaN, as
    x * 0 in NumPy; a kept Inf stays Inf."""
    x = np.full(n, np.nan, dtype)
    y, mask = fastfc.dropout(x, 0.5, seed=9)
    assert np.isnan(y).all()
    x = np.full(n, np.inf, dtype)
    y, mask = fastfc.dropout(x, 0.5, seed=9)
    with np.errstate(invalid="ignore"):
        ry, _ = ref.dropout(x, 0.5, seed=9)
    assert_identical(y, ry)
    assert (y[mask] == np.inf).all() and np.isnan(y[~mask]).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_and_in_place(rng, dtype):
    x = make(rng, (1000,), dtype)
    want, wmask = ref.dropout(x, 0.3, seed=4)
    out = np.full_like(x, np.nan)
    y, mask = fastfc.dropout(x, 0.3, seed=4, out=out)
    assert y is out
    assert_identical(out, want)
    assert_identical(mask, wmask)
    xc = x.copy()
    y, _ = fastfc.dropout(xc, 0.3, seed=4, out=xc)      # in place
    assert y is xc
    assert_identical(xc, want)
    for lay in ("sliced", "negative"):
        strided = layout(np.full(1000, np.nan, dtype), lay)
        fastfc.dropout(x, 0.3, seed=4, out=strided)
        assert_identical(strided, want)
    buf = np.concatenate([x, [0]]).astype(dtype)          # out overlaps x, shifted by one
    fastfc.dropout(buf[:-1], 0.3, seed=4, out=buf[1:])
    assert_identical(buf[1:], want)
    xs = layout(x, "sliced")                              # in place on a strided array
    fastfc.dropout(xs, 0.3, seed=4, out=xs)
    assert_identical(xs, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lay", ["C", "F", "sliced"])
@pytest.mark.parametrize("p", [0.0, 0.25, 0.9])
def test_dropout_backward(rng, dtype, lay, p):
    x = make(rng, (50, 33), dtype)
    _, mask = fastfc.dropout(x, p, seed=11)
    g = make(rng, (50, 33), dtype, lay)
    g0 = g.copy()
    got = fastfc.dropout_backward(g, mask, p)
    assert_identical(got, ref.dropout_backward(g, mask, p))
    assert_identical(g, g0)
    # the gradient of dropout is the same map applied to grad_y
    y, _ = fastfc.dropout(g, p, seed=11)
    assert_identical(got, y)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_backward_large_and_non_contiguous_mask(rng, dtype):
    n = 300_007
    g = make(rng, (n,), dtype)
    _, mask = fastfc.dropout(g, 0.5, seed=12)
    assert_identical(fastfc.dropout_backward(g, mask, 0.5), ref.dropout_backward(g, mask, 0.5))
    g2, m2 = make(rng, (40, 30), dtype).T, mask[:1200].reshape(40, 30).T
    assert_identical(fastfc.dropout_backward(g2, m2, 0.5), ref.dropout_backward(g2, m2, 0.5))


@pytest.mark.parametrize("dtype", DTYPES)
def test_same_mask_any_thread_count(keep_threads, dtype):
    x = np.arange(3_000_001, dtype=dtype) - 1.5e6
    results = []
    for nt in (1, 2, 3):
        fastfc.set_num_threads(nt)
        results.append(fastfc.dropout(x, 0.5, seed=123, stream=4))
        results.append((fastfc.dropout_backward(x, results[-1][1], 0.5), None))
    for y, m in results[2::2]:
        assert_identical(m, results[0][1])
        assert_identical(y, results[0][0])
    for gy, _ in results[3::2]:
        assert_identical(gy, results[1][0])
    ry, rmask = ref.dropout(x, 0.5, seed=123, stream=4)
    assert_identical(results[0][1], rmask)
    assert_identical(results[0][0], ry)


_HASH_SCRIPT = """
import hashlib, os, numpy as np, fastfc
assert fastfc.get_num_threads() == int(os.environ["OMP_NUM_THREADS"]), fastfc.get_num_threads()
h = hashlib.sha256()
for dt in (np.float32, np.float64):
    y, m = fastfc.dropout(np.arange(2_000_003, dtype=dt), 0.3, seed=99, stream=5)
    h.update(m.tobytes() + y.tobytes())
print(h.hexdigest())
"""


def test_same_mask_for_omp_num_threads_1_and_2():
    digests = []
    for n in ("1", "2"):
        env = dict(os.environ, OMP_NUM_THREADS=n)
        r = subprocess.run([sys.executable, "-c", _HASH_SCRIPT], env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        digests.append(r.stdout.strip())
    h = hashlib.sha256()
    for dt in (np.float32, np.float64):
        y, m = ref.dropout(np.arange(2_000_003, dtype=dt), 0.3, seed=99, stream=5)
        h.update(m.tobytes() + y.tobytes())
    assert digests[0] == digests[1] == h.hexdigest()


@given(shape=st.one_of(st.lists(st.integers(0, 40), min_size=1, max_size=3),
                      st.tuples(st.integers(60_000, 300_000))),  # split over threads
       p=st.floats(0.0, 0.999), seed=st.integers(0, 2**64 - 1), stream=st.integers(0, 2**64 - 1),
       dtype=st.sampled_from(DTYPES), lay=st.sampled_from(LAYOUTS))
def test_dropout_property(shape, p, seed, stream, dtype, lay):
    x = make(np.random.default_rng(seed % 1000), tuple(shape), dtype, lay)
    y, mask = fastfc.dropout(x, p, seed=seed, stream=stream)
    ry, rmask = ref.dropout(x, p, seed=seed, stream=stream)
    assert_identical(mask, rmask)
    assert_identical(y, ry)
    assert_identical(fastfc.dropout_backward(x, mask, p), ref.dropout_backward(x, mask, p))
