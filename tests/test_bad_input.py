"""Every wrong argument gets a ValueError/TypeError that names it and what was wrong."""
import numpy as np
import pytest

import fastfc
from fastfc import reference as ref

F32 = np.float32


def a(*shape, dtype=F32):
    return np.ones(shape, dtype)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: fastfc.gemm(a(3, 4), a(5, 6)), ValueError, r"inner dimensions.*\(3, 4\).*\(5, 6\)"),
    (lambda: fastfc.gemm(a(3, 4), a(3, 6), trans_a=False), ValueError, "inner dimensions"),
    (lambda: fastfc.gemm(a(3), a(3, 6)), ValueError, r"a must be 2-D, got shape \(3,\)"),
    (lambda: fastfc.gemm(a(3, 3), a(3, 3, 1)), ValueError, r"b must be 2-D"),
    (lambda: fastfc.gemm(a(3, 3), a(3, 3), beta=1.0), ValueError, "beta=1.0 needs out="),
    (lambda: fastfc.gemm(a(3, 3), a(3, 3), alpha="x"), TypeError, "alpha must be a real"),
    (lambda: fastfc.gemm(a(3, 3), a(3, 3), alpha=1j), TypeError, "alpha must be a real"),
    (lambda: fastfc.gemm(a(3, 4), a(4, 5), out=a(3, 4)), ValueError,
     r"out has shape \(3, 4\), expected \(3, 5\)"),
    (lambda: fastfc.gemm(a(3, 4), a(4, 5), out=a(3, 5, dtype=np.float64)), TypeError,
     "out has dtype float64, expected float32"),
    (lambda: fastfc.gemm(a(3, 4), a(4, 5), out=[[0] * 5] * 3), TypeError, "out must be a numpy"),
    (lambda: fastfc.gemm(a(3, 4), a(4, 5), out=np.broadcast_to(a(1, 5), (3, 5))), ValueError,
     "read-only"),
    (lambda: fastfc.linear(a(3, 4), a(5, 6)), ValueError,
     r"x has 4 features \(shape \(3, 4\)\) but w expects 5"),
    (lambda: fastfc.linear(a(3, 4), a(4)), ValueError, r"w must be 2-D.*\(4,\)"),
    (lambda: fastfc.linear(np.float32(1), a(1, 2)), ValueError, "x must have at least 1"),
    (lambda: fastfc.linear(a(3, 4), a(4, 6), a(5)), ValueError,
     r"b must have shape \(6,\).*got \(5,\)"),
    (lambda: fastfc.linear(a(3, 4), a(4, 6), activation="gelu"), ValueError,
     r"unknown activation 'gelu'; valid: 'identity', 'relu', 'leaky_relu', 'sigmoid', 'tanh'"),
    (lambda: fastfc.linear(a(3, 4), a(4, 6), activation=3), TypeError, "activation must be a str"),
    (lambda: fastfc.linear(a(3, 4), a(4, 6), out=a(3, 5)), ValueError,
     r"out has shape \(3, 5\), expected \(3, 6\)"),
    (lambda: fastfc.linear_backward(a(3, 5), a(3, 4), a(4, 6)), ValueError,
     r"grad_y has shape \(3, 5\), expected \(3, 6\)"),
    (lambda: fastfc.linear_backward(a(3, 6), a(3, 4), a(4, 6), activation="relu"), ValueError,
     "needs y="),
    (lambda: fastfc.linear_backward(a(3, 6), a(3, 4), a(4, 6), y=a(2, 6), activation="relu"),
     ValueError, r"y has shape \(2, 6\), expected \(3, 6\)"),
    (lambda: fastfc.linear_backward(a(3, 6), a(3, 4), a(4, 6), out=(a(3, 4),)), TypeError,
     "out must be a tuple"),
    (lambda: fastfc.linear_backward(a(3, 6), a(3, 4), a(4, 6), out=(None, a(4, 5), None)),
     ValueError, r"grad_w\): out has shape \(4, 5\), expected \(4, 6\)"),
    (lambda: fastfc.dropout(a(10), 1.0, seed=1), ValueError, r"p must be in \[0, 1\), got 1.0"),
    (lambda: fastfc.dropout(a(10), -0.1, seed=1), ValueError, r"p must be in \[0, 1\)"),
    (lambda: fastfc.dropout(a(10), float("nan"), seed=1), ValueError, r"p must be in \[0, 1\)"),
    (lambda: fastfc.dropout(a(10), 0.5, seed=-1), ValueError, r"seed must be in \[0, 2\*\*64\)"),
    (lambda: fastfc.dropout(a(10), 0.5, seed=1.5), TypeError, "seed must be an int"),
    (lambda: fastfc.dropout(a(10), 0.5, seed=1, out=a(11)), ValueError, "out has shape"),
    (lambda: fastfc.dropout_backward(a(10), np.ones(10), 0.5), TypeError, "mask must be a bool"),
    (lambda: fastfc.dropout_backward(a(10), np.ones(9, bool), 0.5), ValueError,
     r"mask has shape \(9,\), grad_y has shape \(10,\)"),
    (lambda: fastfc.dropout_backward(a(10), np.ones(10, bool), 2), ValueError, "p must be in"),
    (lambda: fastfc.set_num_threads(0), ValueError, "n must be >= 1, got 0"),
    (lambda: fastfc.set_num_threads(-1), ValueError, "n must be >= 1"),
    (lambda: fastfc.set_num_threads(1.5), TypeError, "n must be an int"),
])
def test_bad_input_messages(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_refused(dtype):
    with pytest.raises(TypeError, match="complex"):
        fastfc.gemm(np.ones((2, 2), dtype), np.ones((2, 2)))
    with pytest.raises(TypeError, match="x has complex dtype"):
        fastfc.linear(np.ones((2, 2), dtype), np.ones((2, 2)))
    with pytest.raises(TypeError, match="complex"):
        fastfc.dropout(np.ones(4, dtype), 0.5, seed=0)


def test_object_and_string_refused():
    with pytest.raises(TypeError, match="w has dtype object"):
        fastfc.linear(np.ones((2, 2)), np.array([[1, None], [2, 3]], dtype=object))
    with pytest.raises(TypeError, match="a has dtype <U1"):
        fastfc.gemm(np.array([["a"]]), np.ones((1, 1)))
    with pytest.raises(TypeError, match="longdouble|float128|float96"):
        fastfc.gemm(np.ones((2, 2), np.longdouble), np.ones((2, 2)))


@pytest.mark.parametrize("da,db,expected", [
    (np.int64, np.int64, np.float64), (np.int32, np.float32, np.float64),
    (np.float32, np.float64, np.float64), (np.float16, np.float16, np.float32),
    (np.float16, np.float32, np.float32), (np.bool_, np.float32, np.float32),
    (np.uint8, np.float32, np.float32),
])
def test_promotion(da, db, expected):
    x = (np.arange(12).reshape(3, 4) % 3).astype(da)
    w = (np.arange(20).reshape(4, 5) % 4).astype(db)
    got = fastfc.linear(x, w)
    assert got.dtype == expected == ref.result_dtype(x, w)
    np.testing.assert_allclose(got, x.astype(np.float64) @ w.astype(np.float64), rtol=1e-6)


def test_lists_accepted():
    np.testing.assert_allclose(fastfc.gemm([[1, 2]], [[3], [4]]), [[11.0]])


def test_byteswapped_inputs():
    x = np.arange(6, dtype=">f4").reshape(2, 3)
    w = np.ones((3, 2), ">f8")
    np.testing.assert_allclose(fastfc.linear(x, w), x.astype(np.float64) @ w.astype(np.float64))


def test_read_only_out_refused():
    out = np.zeros((2, 2), F32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        fastfc.gemm(a(2, 2), a(2, 2), out=out)
    with pytest.raises(ValueError, match="out is read-only"):
        fastfc.linear(a(2, 2), a(2, 2), out=out)


def test_inputs_not_modified(rng):
    x = rng.standard_normal((20, 30)).astype(F32)
    w = rng.standard_normal((30, 10)).astype(F32)
    b = rng.standard_normal(10).astype(F32)
    gy = rng.standard_normal((20, 10)).astype(F32)
    copies = [v.copy() for v in (x, w, b, gy)]
    y = fastfc.linear(x, w, b, activation="relu")
    yc = y.copy()
    fastfc.linear_backward(gy, x, w, y=y, activation="relu")
    fastfc.gemm(x, w, trans_a=False)
    fastfc.dropout(x, 0.5, seed=1)
    for v, c in zip((x, w, b, gy, y), copies + [yc]):
        np.testing.assert_array_equal(v, c)


def test_out_aliasing_inputs(rng):
    a_ = rng.standard_normal((40, 40))
    b_ = rng.standard_normal((40, 40))
    want = a_ @ b_
    a2 = a_.copy()
    fastfc.gemm(a2, b_, out=a2)
    np.testing.assert_allclose(a2, want, rtol=1e-12, atol=1e-12)
    b2 = b_.copy()
    fastfc.gemm(a_, b2, out=b2)
    np.testing.assert_allclose(b2, want, rtol=1e-12, atol=1e-12)
    c = a_.copy()
    fastfc.gemm(a_, b_, alpha=1.0, beta=1.0, out=c)   # reads and writes c
    np.testing.assert_allclose(c, want + a_, rtol=1e-12, atol=1e-12)
    t = a_.copy()
    fastfc.gemm(t.T, b_, out=t)                        # out is the transposed input
    np.testing.assert_allclose(t, a_.T @ b_, rtol=1e-12, atol=1e-12)
    x = rng.standard_normal((30, 30))
    w = rng.standard_normal((30, 30))
    want = np.maximum(x @ w, 0)
    fastfc.linear(x, w, activation="relu", out=x)
    np.testing.assert_allclose(x, want, rtol=1e-12, atol=1e-12)
    gy, xx, ww = (rng.standard_normal((30, 30)) for _ in range(3))
    want = ref.linear_backward(gy, xx, ww)
    got = fastfc.linear_backward(gy, xx, ww, out=(gy, xx, None))
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12)
