"""fastfc.pack / PackedWeights: packed float weights give the unpacked results bit for bit;
bfloat16 weights round as ml_dtypes does and stay within PackedWeights' documented bound;
the objects are immutable, independent of their source and picklable; bad input is named."""
import copy
import pickle

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastfc
from fastfc import reference as ref
from fastfc.packing import from_bfloat16_bits, to_bfloat16_bits
from conftest import LAYOUTS, assert_close, assert_identical, gemm_scale, make

ACTS = [None, "relu", "leaky_relu", "sigmoid", "tanh"]
SIZES = [(0, 7, 5), (1, 1, 1), (7, 17, 63), (17, 65, 7), (63, 300, 65), (65, 1030, 17),
         (16, 1030, 130)]


# ------------------------------------------------------------------ rounding
SPECIALS32 = np.array([0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00008000,
                       0x3F808000, 0x3F818000, 0x3F80C000, 0x3F807FFF, 0x7F7FFFFF,
                       0x7F7F7FFF, 0x7F7F8000, 0xFF7F8000, 0x7F800000, 0xFF800000,
                       0x7F800001, 0xFF800001, 0x7FC00000, 0xFFC00000, 0x7FFFFFFF,
                       0x7FA00000, 0x3FFFFFFF], np.uint32).view(np.float32)


def test_bfloat16_rounding_matches_ml_dtypes_float32():
    ml = pytest.importorskip("ml_dtypes", reason="ml_dtypes defines the expected bits")
    rng = np.random.default_rng(0)
    bits = np.concatenate([rng.integers(0, 2 ** 32, 200_000, dtype=np.uint64),
                           np.arange(0x3F800000, 0x3F820000, dtype=np.uint64)])
    x = np.concatenate([bits.astype(np.uint32).view(np.float32), SPECIALS32])
    with np.errstate(invalid="ignore", over="ignore"):
        want = x.astype(ml.bfloat16).view(np.uint16)
    assert_identical(to_bfloat16_bits(x), want)


def test_bfloat16_rounding_matches_ml_dtypes_float64():
    ml = pytest.importorskip("ml_dtypes", reason="ml_dtypes defines the expected bits")
    rng = np.random.default_rng(1)
    d = rng.standard_normal(100_000) * np.exp(rng.uniform(-95, 95, 100_000))
    # exact bf16 midpoints and a hair either side: double rounding through float32 fails here
    mid = from_bfloat16_bits(rng.integers(0, 0x7F7F, 20_000).astype(np.uint16))
    mid = mid.astype(np.float64) * (1 + 2.0 ** -9)
    near = np.concatenate([mid, np.nextafter(mid, 0), np.nextafter(mid, np.inf), -mid])
    extra = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-300, -1e-300, 1e-45,
                      3.3961e38, 3.3963e38, 3.5e38, 1e300, -1e300,
                      float(np.finfo(np.float32).max)])
    d = np.concatenate([d, near, extra])
    with np.errstate(invalid="ignore", over="ignore"):
        want = d.astype(ml.bfloat16).view(np.uint16)
    assert_identical(to_bfloat16_bits(d), want)


def test_bfloat16_widening_is_exact():
    h = np.arange(2 ** 16, dtype=np.uint64).astype(np.uint16)
    f = from_bfloat16_bits(h)
    fin = ~np.isnan(f)
    assert_identical(to_bfloat16_bits(f[fin]), h[fin])


# ------------------------------------------------------------------ packed float weights
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("wl", ["C", "F", "sliced", "negative"])
def test_packed_float_weights_give_the_unpacked_results(dtype, wl, keep_threads):
    rng = np.random.default_rng(2)
    for i, (m, k, n) in enumerate(SIZES):
        w = make(rng, (k, n), dtype, wl)
        pw = fastfc.pack(w)
        assert pw.shape == (k, n) and pw.dtype == dtype and pw.storage == np.dtype(dtype).name
        x = make(rng, (m, k), dtype, LAYOUTS[i % 5])
        b = make(rng, (n,), dtype)
        for threads in (1, 2, 3):
            fastfc.set_num_threads(threads)
            act = ACTS[(i + threads) % 5]
            assert_identical(fastfc.linear(x, pw, b, activation=act),
                             fastfc.linear(x, np.ascontiguousarray(w), b, activation=act))
        assert_identical(fastfc.gemm(x, pw), fastfc.gemm(x, np.ascontiguousarray(w)))
        gy = make(rng, (m, n), dtype)
        for got, want in zip(fastfc.linear_backward(gy, x, pw), fastfc.linear_backward(gy, x, w)):
            assert_identical(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_weights_are_stored_once_in_panels(dtype):
    """Panels of the path's width hold the weights once (padding to a whole panel only,
    and only where it adds at most a quarter: narrower layers stay row-major); no copy
    beside them; unpack gives the values back, for empty shapes too."""
    nr = fastfc._core.panel_width(dtype)
    rng = np.random.default_rng(12)
    for k, n in [(0, 5), (5, 0), (1, 1), (33, nr - 1), (33, nr), (33, nr + 1), (70, 3 * nr + 5),
                 (9, 4 * nr + 1), (9, 10)]:
        w = rng.standard_normal((k, n)).astype(dtype)
        pw = fastfc.pack(w)
        padded = -(-n // nr) * nr
        if 4 * padded <= 5 * n:
            assert pw.nbytes == k * padded * np.dtype(dtype).itemsize
            assert pw.layout.startswith(f"panels of {nr} columns")
        else:
            assert pw.nbytes == k * n * np.dtype(dtype).itemsize
            assert pw.layout == "(in, out) row-major"
        assert pw.shape == (k, n)
        assert_identical(pw.unpack(), w)
        assert_identical(pickle.loads(pickle.dumps(pw)).unpack(), w)
        for m in (0, 1, 5, 9, 40):
            x = rng.standard_normal((m, k)).astype(dtype)
            b = rng.standard_normal(n).astype(dtype)
            assert_identical(fastfc.linear(x, pw, b, activation="tanh"),
                             fastfc.linear(x, w, b, activation="tanh"))
            assert_close(fastfc.linear(x, pw, b), ref.linear(x, w, b),
                         gemm_scale(x, w) + np.abs(b), k, dtype)
    assert fastfc.pack(np.ones((3, 4), np.float32), "bfloat16").layout == "(in, out) row-major"


def test_bfloat16_weights_are_stored_in_panels():
    """bfloat16 weights go into the float32 path's panels on the same rule (2 bytes a
    weight), give the bits of the row-major bfloat16 weights and of float32 on the rounded
    weights at every batch (panels kernel, stream and GEMM), and unpack and pickle back."""
    nr = fastfc._core.panel_width(np.float32)
    rng = np.random.default_rng(13)
    for k, n in [(0, 2 * nr), (5, 0), (1, 1), (33, nr - 1), (33, nr), (70, 3 * nr + 5),
                 (530, 2 * nr + 3), (9, 10)]:
        w = rng.standard_normal((k, n)).astype(np.float32)
        pw = fastfc.pack(w, "bfloat16")
        bits = to_bfloat16_bits(w)
        rounded = from_bfloat16_bits(bits)
        rowmajor = fastfc.PackedWeights._make(bits.copy(), "bfloat16", pw.isa, (k, n))
        padded = -(-n // nr) * nr
        if 4 * padded <= 5 * n:
            assert pw.nbytes == k * padded * 2 and pw.layout.startswith(f"panels of {nr}")
        else:
            assert pw.nbytes == k * n * 2 and pw.layout == "(in, out) row-major"
        assert_identical(pw.unpack(), rounded)
        assert_identical(pickle.loads(pickle.dumps(pw))._data, pw._data)
        for m in (0, 1, 2, 5, 8, 9, 16, 17, 40):
            x = rng.standard_normal((m, k)).astype(np.float32)
            b = rng.standard_normal(n).astype(np.float32)
            want = fastfc.linear(x, rounded, b, activation="leaky_relu")
            assert_identical(fastfc.linear(x, pw, b, activation="leaky_relu"), want)
            assert_identical(fastfc.linear(x, rowmajor, b, activation="leaky_relu"), want)
            assert_identical(fastfc.gemm(x, pw, alpha=0.5), fastfc.gemm(x, rounded, alpha=0.5))


def test_pack_panels_checks_what_it_writes_into():
    """The _core helper behind pack: a wrong out or w is named, never written past."""
    nr = fastfc._core.panel_width(np.float32)
    w = np.ones((5, nr), np.float32)
    good = np.zeros((1, 5, nr), np.float32)
    fastfc._core.pack_panels(w, good)
    assert_identical(good[0], w)
    for out, exc in [(np.zeros((1, 5, nr), np.int32), TypeError),
                     (np.zeros((1, 5, nr), ">f8"), TypeError),
                     (np.zeros((1, 5, nr), np.float64), ValueError),   # fp64 panels differ
                     (np.zeros((1, 5, nr + 1), np.float32), ValueError),
                     (np.zeros((1, nr, 5), np.float32).transpose(0, 2, 1), ValueError),
                     ([[0.0]], TypeError)]:
        if isinstance(out, np.ndarray) and out.dtype == np.float64 and \
                fastfc._core.panel_width(np.float64) == nr:
            continue   # portable C: fp64 panels as wide as fp32 ones
        with pytest.raises(exc):
            fastfc._core.pack_panels(w, out)
    frozen = np.zeros((1, 5, nr), np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        fastfc._core.pack_panels(w, frozen)
    with pytest.raises(ValueError, match="2-D"):
        fastfc._core.pack_panels(np.ones(5, np.float32), np.zeros((1, 5, nr), np.float32))


def test_a_bias_mismatch_names_the_weights_shape():
    pw = fastfc.pack(np.ones((7, 64), np.float32))
    with pytest.raises(ValueError, match=r"match w \(7, 64\), got \(4,\)"):
        fastfc.linear(np.ones((2, 7), np.float32), pw, np.ones(4, np.float32))


def test_gemm_with_packed_float_b_alpha_beta_out():
    """alpha and beta on packed panels: alpha scales the whole sum, beta reads out."""
    rng = np.random.default_rng(13)
    for m, k, n in [(1, 40, 70), (3, 1100, 33), (9, 600, 45), (40, 300, 17)]:
        a = rng.standard_normal((m, k)).astype(np.float32)
        w = rng.standard_normal((k, n)).astype(np.float32)
        c0 = rng.standard_normal((m, n)).astype(np.float32)
        pw = fastfc.pack(w)
        for alpha, beta in [(1.0, 0.0), (2.5, 0.0), (1.0, 1.0), (-0.5, 2.0)]:
            want, got = c0.copy(), c0.copy()
            fastfc.gemm(a, w, alpha=alpha, beta=beta, out=want)
            fastfc.gemm(a, pw, alpha=alpha, beta=beta, out=got)
            assert_identical(got, want)


def test_packing_copies_and_is_immutable():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((40, 30)).astype(np.float32)
    x = rng.standard_normal((5, 40)).astype(np.float32)
    for storage in ("float32", "bfloat16"):
        pw = fastfc.pack(w, storage)
        before = fastfc.linear(x, pw)
        w0 = w.copy()
        w[:] = 7.0
        assert_identical(fastfc.linear(x, pw), before)
        w[:] = w0
        with pytest.raises(AttributeError, match="immutable"):
            pw.storage = "float64"
        with pytest.raises(ValueError):
            pw._data[0, 0] = 1
        assert copy.deepcopy(pw) is pw and fastfc.pack(pw) is pw
        assert pw._data.ctypes.data % 64 == 0
    assert_identical(fastfc.PackedWeights(w, "bfloat16")._data, fastfc.pack(w, "bfloat16")._data)


@pytest.mark.parametrize("storage", ["float32", "float64", "bfloat16"])
def test_packed_weights_pickle(storage):
    rng = np.random.default_rng(4)
    w = rng.standard_normal((70, 33))
    pw = fastfc.pack(w, storage)
    back = pickle.loads(pickle.dumps(pw))
    assert back.shape == pw.shape and back.storage == storage and back.isa == fastfc.get_config()["isa"]
    assert back._data.ctypes.data % 64 == 0
    x = rng.standard_normal((9, 70)).astype(pw.dtype)
    assert_identical(fastfc.linear(x, back, activation="relu"), fastfc.linear(x, pw, activation="relu"))
    assert_identical(back.unpack(), pw.unpack())


def test_a_newer_pickle_format_is_refused():
    from fastfc import packing
    with pytest.raises(ValueError, match="format 99 is newer"):
        packing._restore(99, "float32", "avx2", np.zeros((2, 2), np.float32))


# ------------------------------------------------------------------ bfloat16 weights
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_bfloat16_weights_within_the_bound(threads, keep_threads):
    fastfc.set_num_threads(threads)
    rng = np.random.default_rng(5)
    for i, (m, k, n) in enumerate(SIZES):
        x = make(rng, (m, k), np.float32, LAYOUTS[(i + threads) % 5])
        w = make(rng, (k, n), np.float32, LAYOUTS[i % 5])
        b = make(rng, (n,), np.float32)
        pw = fastfc.pack(w, "bfloat16")
        exact = x.astype(np.float64) @ w.astype(np.float64) + b
        got = fastfc.linear(x, pw, b)
        assert got.dtype == np.float32
        assert (np.abs(got - exact) <= ref.bf16_bound(x, w, b)).all()
        # the kernels widen bf16 exactly: the same as float32 weights holding the bf16 values
        wb = pw.unpack()
        for act in ACTS:
            assert_identical(fastfc.linear(x, pw, b, activation=act),
                             fastfc.linear(x, wb, b, activation=act))


def test_bfloat16_bound_is_not_vacuous():
    """Rounding w to bf16 does move results by about the bound's first term."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 500)).astype(np.float32)
    w = rng.standard_normal((500, 50)).astype(np.float32)
    err = np.abs(fastfc.linear(x, fastfc.pack(w, "bfloat16")) - x.astype(np.float64) @ w)
    assert err.max() > 2.0 ** -14 * gemm_scale(x, w).max()


def test_ml_dtypes_bfloat16_arrays_are_weights():
    ml = pytest.importorskip("ml_dtypes", reason="the bfloat16 array type")
    rng = np.random.default_rng(7)
    w = rng.standard_normal((130, 45)).astype(np.float32)
    x = rng.standard_normal((20, 130)).astype(np.float32)
    wb = w.astype(ml.bfloat16)
    want = fastfc.linear(x, fastfc.pack(w, "bfloat16"), activation="tanh")
    assert_identical(fastfc.linear(x, wb, activation="tanh"), want)
    assert_identical(fastfc.linear(x, np.ascontiguousarray(wb.T).T, activation="tanh"), want)
    assert fastfc.pack(wb).storage == "bfloat16"
    assert_identical(fastfc.pack(wb, "float32").unpack(), wb.astype(np.float32))
    assert_identical(fastfc.gemm(x, wb), fastfc.linear(x, wb))


def test_gemm_with_bfloat16_b_alpha_beta_out():
    rng = np.random.default_rng(8)
    for m in (3, 40):
        a = rng.standard_normal((m, 90)).astype(np.float32)
        w = rng.standard_normal((90, 33)).astype(np.float32)
        pw = fastfc.pack(w, "bfloat16")
        out = rng.standard_normal((m, 33)).astype(np.float32)
        c0 = out.copy()
        got = fastfc.gemm(a, pw, alpha=0.5, beta=2.0, out=out)
        assert got is out
        want = 0.5 * (a.astype(np.float64) @ pw.unpack()) + 2.0 * c0
        assert np.allclose(out, want, rtol=1e-5, atol=1e-5 * gemm_scale(a, w).max())
        at = np.asfortranarray(a)
        assert_identical(fastfc.gemm(at.T, pw, trans_a=True), fastfc.gemm(a, pw))


def test_nan_and_inf_propagate_through_bfloat16_weights():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((5, 64)).astype(np.float32)
    w = rng.standard_normal((64, 40)).astype(np.float32)
    x[1, 3] = np.nan
    w[7, 2] = np.inf
    pw = fastfc.pack(w, "bfloat16")
    got = fastfc.linear(x, pw)
    want = ref.linear(x, pw.unpack())
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.array_equal(np.isinf(got), np.isinf(want))


def test_bfloat16_denormal_weights_are_kept():
    w = from_bfloat16_bits(np.array([[1], [0x0040]], np.uint16))  # 1 and a denormal
    x = np.array([[0.0, 2.0 ** 100]], np.float32)
    got = fastfc.linear(x, fastfc.pack(w, "bfloat16"))
    assert got[0, 0] == np.float32(w[1, 0] * 2.0 ** 100) and got[0, 0] > 0


@given(m=st.integers(0, 40), k=st.integers(1, 300), n=st.integers(1, 80),
       act=st.sampled_from(ACTS))
def test_bfloat16_linear_hypothesis(m, k, n, act):
    rng = np.random.default_rng(m * 7919 + k * 31 + n)
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((k, n)).astype(np.float32)
    pw = fastfc.pack(w, "bfloat16")
    got = fastfc.linear(x, pw)
    assert (np.abs(got - x.astype(np.float64) @ w) <= ref.bf16_bound(x, w)).all()
    assert_identical(fastfc.linear(x, pw, activation=act),
                     fastfc.linear(x, pw.unpack(), activation=act))


# ------------------------------------------------------------------ bad input
def test_pack_rejects_bad_arrays_and_dtypes():
    with pytest.raises(ValueError, match=r"2-D .*shape \(3,\)"):
        fastfc.pack(np.ones(3))
    with pytest.raises(ValueError, match=r"shape \(2, 2, 2\)"):
        fastfc.pack(np.ones((2, 2, 2)))
    for bad, what in [(np.ones((2, 2), complex), "complex"), (np.ones((2, 2), int), "integer"),
                      (np.ones((2, 2), bool), "boolean"), (np.ones((2, 2), object), "object")]:
        with pytest.raises(TypeError, match=what):
            fastfc.pack(bad)
    for dtype in ("float16", "int8", "bf16", np.int32):
        with pytest.raises(ValueError, match="dtype must be"):
            fastfc.pack(np.ones((2, 2)), dtype)


def test_pack_of_what_is_not_an_array_is_a_type_error():
    for bad in (None, "abc", {"w": 1}):
        with pytest.raises(TypeError, match=rf"w must be a 2-D float array, got "
                                            rf"{type(bad).__name__}"):
            fastfc.pack(bad)


def test_packed_weights_take_either_byte_order_and_never_promote_the_bias():
    """pack(w) in place of w: x in the other byte order computes as x; a bias that would
    promote the result (float64 for float32 weights) is refused as x would be, a narrower
    one is cast."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((3, 5)).astype(np.float32), rng.standard_normal((5, 4))
    w = w.astype(np.float32)
    pw = fastfc.pack(w)
    want = fastfc.linear(x, pw, w[0], activation="relu")
    assert_identical(fastfc.linear(x.astype(">f4"), pw, w[0], activation="relu"), want)
    assert_identical(fastfc.linear(x, pw, w[0].astype(">f4"), activation="relu"), want)
    assert_identical(fastfc.linear(x, pw, w[0].astype(np.float16)),
                     fastfc.linear(x, w, w[0].astype(np.float16)))
    for other in ([0.5, -1.5, 2.0, 0.0], np.array([1, -2, 3, 0])):   # no float array: cast
        assert_identical(fastfc.linear(x, pw, other),
                         fastfc.linear(x, w, np.asarray(other, np.float32)))
    for storage in ("float32", "bfloat16"):
        with pytest.raises(TypeError, match=rf"b has dtype float64 but the {storage} weights "
                                            r"\(5, 4\) compute in float32"):
            fastfc.linear(x, fastfc.pack(w, storage), np.zeros(4))


def test_a_bfloat16_b_is_named_as_such():
    ml = pytest.importorskip("ml_dtypes", reason="the bfloat16 dtype")
    with pytest.raises(ValueError, match=r"gemm: a bfloat16 b \(shape \(4, 3\)\) is taken as "
                                         r"\(k, n\): trans_b must be False"):
        fastfc.gemm(np.ones((2, 3), np.float32), np.ones((4, 3), ml.bfloat16), trans_b=True)


def test_packed_weights_name_dtype_and_shape_mismatches():
    pw = fastfc.pack(np.ones((4, 3), np.float32), "bfloat16")
    with pytest.raises(TypeError, match=r"x has dtype float64 .*bfloat16 .*float32"):
        fastfc.linear(np.ones((2, 4)), pw)
    with pytest.raises(ValueError, match=r"x has 5 features .*expects 4"):
        fastfc.linear(np.ones((2, 5), np.float32), pw)
    with pytest.raises(TypeError, match="for inference"):
        fastfc.linear_backward(np.ones((2, 3), np.float32), np.ones((2, 4), np.float32), pw)
    with pytest.raises(ValueError, match=r"gemm: packed b \(shape \(4, 3\)\) is taken as "
                                         r"\(k, n\): trans_b must be False"):
        fastfc.gemm(np.ones((2, 3), np.float32), pw, trans_b=True)
    with pytest.raises(ValueError, match="inner dimensions differ"):
        fastfc.gemm(np.ones((2, 5), np.float32), pw)
    p64 = fastfc.pack(np.ones((4, 3)))
    with pytest.raises(TypeError, match=r"x has dtype float32 .*float64"):
        fastfc.linear(np.ones((2, 4), np.float32), p64)


@pytest.mark.parametrize("order", [">", "<"])
def test_byte_order_does_not_change_the_storage_or_the_rounding(order):
    """A big-endian float64 array is float64 (it fell through to float32), and its
    bfloat16 rounding is ml_dtypes' (it was rounded twice, through float32)."""
    w = np.array([[1 / 3, 1 + 2.0 ** -8 + 2.0 ** -40]])
    swapped = w.astype(w.dtype.newbyteorder(order))
    pw = fastfc.pack(swapped)
    assert pw.storage == "float64"
    np.testing.assert_array_equal(pw.unpack(), w)
    want = to_bfloat16_bits(w)
    assert want[0, 1] == 0x3F81   # 1 + 2**-7: the 2**-40 decides the tie upwards
    np.testing.assert_array_equal(fastfc.pack(swapped, "bfloat16")._data, want)
    np.testing.assert_array_equal(to_bfloat16_bits(swapped), want)
    np.testing.assert_array_equal(to_bfloat16_bits(w.astype(order + "f4")),
                                  to_bfloat16_bits(w.astype(np.float32)))
