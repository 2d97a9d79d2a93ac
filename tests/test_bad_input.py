"""Every wrong argument gets a ValueError/TypeError naming it and what was wrong; dtype
promotion like NumPy; inputs never modified; out= aliasing an input still gives the right
answer."""
import re

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

import fastfc
from fastfc import reference as ref
from conftest import DTYPES, LAYOUTS, assert_close, assert_identical, gemm_scale, layout, make

F32, F64 = np.float32, np.float64


def a(*shape, dtype=F32):
    return np.ones(shape, dtype)


def read_only(arr):
    arr.flags.writeable = False
    return arr


def zero_stride(shape, dtype=F32):
    """A writeable view whose first axis has stride 0 (elements overlap)."""
    base = np.zeros(shape[1:], dtype)
    return as_strided(base, shape=shape, strides=(0,) + base.strides, writeable=True)


def unaligned(shape, dtype):
    n = int(np.prod(shape))
    raw = np.zeros(n * np.dtype(dtype).itemsize + 1, np.uint8)
    arr = np.frombuffer(raw[1:].data, dtype=dtype, count=n).reshape(shape)
    assert not arr.flags.aligned
    return arr


def swapped(shape, dtype):
    return np.ones(shape, np.dtype(dtype).newbyteorder())


BAD = [
    # ---- gemm: shapes
    (lambda: fastfc.gemm(a(3), a(3, 6)), ValueError, r"gemm: a must be 2-D, got shape \(3,\)"),
    (lambda: fastfc.gemm(np.float32(2), a(3, 6)), ValueError, r"a must be 2-D, got shape \(\)"),
    (lambda: fastfc.gemm(a(3, 3), a(3, 3, 1)), ValueError, r"b must be 2-D, got shape \(3, 3, 1\)"),
    (lambda: fastfc.gemm(a(3, 4), a(5, 6)), ValueError,
     r"inner dimensions differ: op\(a\) is \(3, 4\), op\(b\) is \(5, 6\)"),
    (lambda: fastfc.gemm(a(3, 4), a(4, 6), trans_a=True), ValueError,
     r"op\(a\) is \(4, 3\), op\(b\) is \(4, 6\) \(a \(3, 4\), b \(4, 6\), trans_a=True"),
    (lambda: fastfc.gemm(a(3, 4), a(4, 6), trans_b=True), ValueError,
     r"op\(b\) is \(6, 4\).*trans_b=True"),
    # ---- gemm: scalars
    (lambda: fastfc.gemm(a(3, 3), a(3, 3), beta=1.0), ValueError, r"beta=1.0 needs out="),
    (lambda: fastfc.gemm(a(3, 3), a(3, 3), alpha="x"), TypeError,
     "gemm: alpha must be a real number, got str"),
    (lambda: fastfc.gemm(a(3, 3), a(3, 3), alpha=1j), TypeError, r"alpha must be a real.*1j"),
    (lambda: fastfc.gemm(a(3, 3), a(3, 3), alpha=None), TypeError, "alpha must be a real"),
    (lambda: fastfc.gemm(a(3, 3), a(3, 3), beta=[1.0], out=a(3, 3)), TypeError,
     "beta must be a real number, got list"),
    # ---- gemm: out
    (lambda: fastfc.gemm(a(3, 4), a(4, 5), out=a(3, 4)), ValueError,
     r"gemm: out has shape \(3, 4\), expected \(3, 5\)"),
    (lambda: fastfc.gemm(a(3, 4), a(4, 5), out=a(5, 3)), ValueError,
     r"out has shape \(5, 3\), expected \(3, 5\)"),
    (lambda: fastfc.gemm(a(3, 4), a(4, 5), out=a(3, 5, dtype=F64)), TypeError,
     "gemm: out has dtype float64, expected float32"),
    (lambda: fastfc.gemm(a(3, 4, dtype=F64), a(4, 5), out=a(3, 5)), TypeError,
     "out has dtype float32, expected float64"),
    (lambda: fastfc.gemm(a(3, 4), a(4, 5), out=np.zeros((3, 5), np.int32)), TypeError,
     "out has dtype int32, expected float32"),
    (lambda: fastfc.gemm(a(3, 4), a(4, 5), out=swapped((3, 5), F32)), TypeError,
     r"out has dtype >f4, expected float32 \(native byte order\)"),
    (lambda: fastfc.gemm(a(3, 4), a(4, 5), out=[[0.0] * 5] * 3), TypeError,
     "gemm: out must be a numpy.ndarray, got list"),
    (lambda: fastfc.gemm(a(3, 4), a(4, 5), out=read_only(a(3, 5))), ValueError,
     "gemm: out is read-only"),
    (lambda: fastfc.gemm(a(3, 4), a(4, 5), out=np.broadcast_to(a(1, 5), (3, 5))), ValueError,
     "gemm: out is read-only"),
    (lambda: fastfc.gemm(a(3, 4), a(4, 5), out=zero_stride((3, 5))), ValueError,
     "gemm: out has a zero stride"),
    (lambda: fastfc.gemm(a(3, 4), a(4, 5), out=unaligned((3, 5), F32)), ValueError,
     "gemm: out is not aligned"),
    # ---- gemm: dtypes
    (lambda: fastfc.gemm(a(2, 2, dtype=np.complex64), a(2, 2)), TypeError,
     "a has complex dtype complex64"),
    (lambda: fastfc.gemm(a(2, 2), a(2, 2, dtype=np.complex128)), TypeError,
     "b has complex dtype complex128"),
    (lambda: fastfc.gemm(np.array([["a"]]), a(1, 1)), TypeError,
     "a has dtype <U1; expected a real numeric array"),
    (lambda: fastfc.gemm(a(2, 2), np.array([[1, None], [2, 3]], dtype=object)), TypeError,
     "b has dtype object; expected a real numeric array"),
    (lambda: fastfc.gemm(np.ones((2, 2), np.longdouble), a(2, 2)), TypeError,
     r"a has dtype (float128|float96|longdouble)"),
    (lambda: fastfc.gemm(np.ones((2, 2), "datetime64[s]"), a(2, 2)), TypeError,
     r"a has dtype datetime64\[s\]"),
    # ---- linear: shapes
    (lambda: fastfc.linear(np.float32(1), a(1, 2)), ValueError,
     "linear: x must have at least 1 dimension, got a scalar"),
    (lambda: fastfc.linear(a(3, 4), a(4)), ValueError,
     r"linear: w must be 2-D \(in_features, out_features\), got shape \(4,\)"),
    (lambda: fastfc.linear(a(3, 4), a(4, 5, 1)), ValueError, r"w must be 2-D.*\(4, 5, 1\)"),
    (lambda: fastfc.linear(a(3, 4), a(5, 6)), ValueError,
     r"linear: x has 4 features \(shape \(3, 4\)\) but w expects 5 \(shape \(5, 6\)\)"),
    (lambda: fastfc.linear(a(2, 3, 4), a(3, 4)), ValueError,
     r"x has 4 features \(shape \(2, 3, 4\)\) but w expects 3"),
    (lambda: fastfc.linear(a(3, 4), a(4, 6), a(5)), ValueError,
     r"linear: b must have shape \(6,\) to match w \(4, 6\), got \(5,\)"),
    (lambda: fastfc.linear(a(3, 4), a(4, 6), a(1, 6)), ValueError,
     r"b must have shape \(6,\).*got \(1, 6\)"),
    (lambda: fastfc.linear(a(3, 4), a(4, 6), np.float32(1)), ValueError,
     r"b must have shape \(6,\).*got \(\)"),
    # ---- linear: activation and slope
    (lambda: fastfc.linear(a(3, 4), a(4, 6), activation="gelu"), ValueError,
     r"linear: unknown activation 'gelu'; valid: 'identity', 'relu', 'leaky_relu', "
     r"'sigmoid', 'tanh' or None"),
    (lambda: fastfc.linear(a(3, 4), a(4, 6), activation="ReLU"), ValueError,
     r"unknown activation 'ReLU'; valid: .*'relu'"),
    (lambda: fastfc.linear(a(3, 4), a(4, 6), activation=""), ValueError,
     r"unknown activation ''"),
    (lambda: fastfc.linear(a(3, 4), a(4, 6), activation=3), TypeError,
     "linear: activation must be a str or None, got int"),
    (lambda: fastfc.linear(a(3, 4), a(4, 6), activation=np.tanh), TypeError,
     "activation must be a str or None, got ufunc"),
    (lambda: fastfc.linear(a(3, 4), a(4, 6), activation="leaky_relu", negative_slope="x"),
     TypeError, "linear: negative_slope must be a real number, got str"),
    # ---- linear: out
    (lambda: fastfc.linear(a(3, 4), a(4, 6), out=a(3, 5)), ValueError,
     r"linear: out has shape \(3, 5\), expected \(3, 6\)"),
    (lambda: fastfc.linear(a(2, 3, 4), a(4, 6), out=a(6, 6)), ValueError,
     r"out has shape \(6, 6\), expected \(2, 3, 6\)"),
    (lambda: fastfc.linear(a(3, 4), a(4, 6), out=a(3, 6, dtype=F64)), TypeError,
     "linear: out has dtype float64, expected float32"),
    (lambda: fastfc.linear(a(3, 4), a(4, 6), a(6, dtype=F64), out=a(3, 6)), TypeError,
     "linear: out has dtype float32, expected float64"),
    (lambda: fastfc.linear(a(3, 4), a(4, 6), out=read_only(a(3, 6))), ValueError,
     "linear: out is read-only"),
    (lambda: fastfc.linear(a(3, 4), a(4, 6), out=zero_stride((3, 6))), ValueError,
     "linear: out has a zero stride"),
    (lambda: fastfc.linear(a(3, 4), a(4, 6), out="out"), TypeError,
     "linear: out must be a numpy.ndarray, got str"),
    # ---- linear: dtypes
    (lambda: fastfc.linear(a(2, 2, dtype=np.complex64), a(2, 2)), TypeError,
     "x has complex dtype complex64"),
    (lambda: fastfc.linear(a(2, 2), a(2, 2), a(2, dtype=np.complex128)), TypeError,
     "b has complex dtype complex128"),
    (lambda: fastfc.linear(a(2, 2), np.array([[1, None], [2, 3]], dtype=object)), TypeError,
     "w has dtype object"),
    # ---- linear_backward
    (lambda: fastfc.linear_backward(a(3, 5), a(3, 4), a(4, 6)), ValueError,
     r"linear_backward: grad_y has shape \(3, 5\), expected \(3, 6\) from x \(3, 4\) and "
     r"w \(4, 6\)"),
    (lambda: fastfc.linear_backward(a(3, 6), a(3, 5), a(4, 6)), ValueError,
     r"linear_backward: x has 5 features \(shape \(3, 5\)\) but w expects 4"),
    (lambda: fastfc.linear_backward(a(3, 6), a(3, 4), a(24)), ValueError,
     r"linear_backward: w must be 2-D"),
    (lambda: fastfc.linear_backward(a(3, 6), a(3, 4), a(4, 6), activation="relu"), ValueError,
     r"linear_backward: activation='relu' needs y=, the forward output"),
    (lambda: fastfc.linear_backward(a(3, 6), a(3, 4), a(4, 6), y=a(2, 6), activation="relu"),
     ValueError, r"linear_backward: y has shape \(2, 6\), expected \(3, 6\)"),
    (lambda: fastfc.linear_backward(a(3, 6), a(3, 4), a(4, 6), y=a(3, 6), activation="elu"),
     ValueError, r"linear_backward: unknown activation 'elu'; valid: 'identity'"),
    (lambda: fastfc.linear_backward(a(3, 6), a(3, 4), a(4, 6), activation=1.0), TypeError,
     "linear_backward: activation must be a str or None, got float"),
    (lambda: fastfc.linear_backward(a(3, 6, dtype=np.complex64), a(3, 4), a(4, 6)), TypeError,
     "grad_y has complex dtype complex64"),
    (lambda: fastfc.linear_backward(a(3, 6), a(3, 4), a(4, 6), activation="tanh",
                                    y=a(3, 6, dtype=np.complex64)), TypeError,
     "y has complex dtype complex64"),
    (lambda: fastfc.linear_backward(a(3, 6, dtype=F64), a(3, 4, dtype=F64),
                                    fastfc.pack(a(4, 6))), TypeError,
     r"linear_backward: grad_y has dtype float64 but the float32 weights \(4, 6\) compute in "
     r"float32"),
    (lambda: fastfc.linear_backward(a(3, 6), a(3, 4, dtype=F64), fastfc.pack(a(4, 6))),
     TypeError, r"linear_backward: x has dtype float64 but the float32 weights"),
    (lambda: fastfc.linear_backward(a(3, 6, dtype=F64), a(3, 4, dtype=F64),
                                    fastfc.pack(a(4, 6, dtype=F64)), activation="relu",
                                    y=a(3, 6)), TypeError,
     r"linear_backward: y has dtype float32 but the float64 weights \(4, 6\) compute in "
     r"float64"),
    (lambda: fastfc.linear([[1.0, 2.0], [3.0]], a(2, 3)), ValueError,
     r"x is not a rectangular array: setting an array element with a sequence"),
    (lambda: fastfc.linear(a(2, 3), a(3, 2), [[1.0], [2.0, 3.0]]), ValueError,
     r"b is not a rectangular array"),
    (lambda: fastfc.gemm(a(2, 3), [[1.0, 2.0], [3.0]]), ValueError,
     r"b is not a rectangular array"),
    (lambda: fastfc.linear_backward(a(3, 6), a(3, 4), a(4, 6), out=(a(3, 4),)), TypeError,
     r"linear_backward: out must be a tuple \(grad_x, grad_w, grad_b\)"),
    (lambda: fastfc.linear_backward(a(3, 6), a(3, 4), a(4, 6), out=[None, None, None]),
     TypeError, "out must be a tuple"),
    (lambda: fastfc.linear_backward(a(3, 6), a(3, 4), a(4, 6), out=(a(3, 5), None, None)),
     ValueError, r"linear_backward \(grad_x\): out has shape \(3, 5\), expected \(3, 4\)"),
    (lambda: fastfc.linear_backward(a(3, 6), a(3, 4), a(4, 6), out=(None, a(4, 5), None)),
     ValueError, r"linear_backward \(grad_w\): out has shape \(4, 5\), expected \(4, 6\)"),
    (lambda: fastfc.linear_backward(a(3, 6), a(3, 4), a(4, 6), out=(None, None, a(5))),
     ValueError, r"linear_backward \(grad_b\): out has shape \(5,\), expected \(6,\)"),
    (lambda: fastfc.linear_backward(a(3, 6), a(3, 4), a(4, 6), out=(None, None, a(6, dtype=F64))),
     TypeError, r"linear_backward \(grad_b\): out has dtype float64, expected float32"),
    (lambda: fastfc.linear_backward(a(3, 6), a(3, 4), a(4, 6),
                                    out=(read_only(a(3, 4)), None, None)),
     ValueError, r"linear_backward \(grad_x\): out is read-only"),
    (lambda: fastfc.linear_backward(a(3, 6), a(3, 4), a(4, 6),
                                    out=(None, zero_stride((4, 6)), None)),
     ValueError, r"linear_backward \(grad_w\): out has a zero stride"),
    # ---- dropout: p
    (lambda: fastfc.dropout(a(10), 1.0, seed=1), ValueError,
     r"dropout: p must be in \[0, 1\), got 1.0"),
    (lambda: fastfc.dropout(a(10), 1.5, seed=1), ValueError, r"p must be in \[0, 1\), got 1.5"),
    (lambda: fastfc.dropout(a(10), -0.1, seed=1), ValueError, r"p must be in \[0, 1\), got -0.1"),
    (lambda: fastfc.dropout(a(10), float("nan"), seed=1), ValueError,
     r"p must be in \[0, 1\), got nan"),
    (lambda: fastfc.dropout(a(10), float("inf"), seed=1), ValueError,
     r"p must be in \[0, 1\), got inf"),
    (lambda: fastfc.dropout(a(10), "half", seed=1), TypeError,
     "dropout: p must be a real number, got str"),
    (lambda: fastfc.dropout(a(10), None, seed=1), TypeError,
     "dropout: p must be a real number, got NoneType"),
    (lambda: fastfc.dropout(a(10), 0.5j, seed=1), TypeError, r"p must be a real number, got 0.5j"),
    # ---- dropout: seed and stream
    (lambda: fastfc.dropout(a(10), 0.5, seed=-1), ValueError,
     r"dropout: seed must be in \[0, 2\*\*64\), got -1"),
    (lambda: fastfc.dropout(a(10), 0.5, seed=2**64), ValueError,
     r"seed must be in \[0, 2\*\*64\), got 18446744073709551616"),
    (lambda: fastfc.dropout(a(10), 0.5, seed=np.int64(-5)), ValueError,
     r"seed must be in \[0, 2\*\*64\), got -5"),
    (lambda: fastfc.dropout(a(10), 0.5, seed=1.5), TypeError,
     "dropout: seed must be an int, got float"),
    (lambda: fastfc.dropout(a(10), 0.5, seed=1.0), TypeError, "seed must be an int, got float"),
    (lambda: fastfc.dropout(a(10), 0.5, seed=True), TypeError, "seed must be an int, got bool"),
    # ---- bools are not numbers, and a flag is a bool, not any truthy object
    (lambda: fastfc.dropout(a(10), False, seed=1), TypeError, "p must be a real number"),
    (lambda: fastfc.gemm(a(2, 2), a(2, 2), alpha=True), TypeError, "alpha must be a real"),
    (lambda: fastfc.linear(a(2, 2), a(2, 2), negative_slope=np.True_), TypeError,
     "negative_slope must be a real number"),
    (lambda: fastfc.gemm(a(2, 3), a(2, 3), trans_b="False"), TypeError,
     "gemm: trans_b must be True or False, got 'False'"),
    (lambda: fastfc.gemm(a(2, 3), a(2, 3), trans_a=2), TypeError, "trans_a must be True or"),
    (lambda: fastfc.linear_backward(a(2, 2), a(2, 2), a(2, 2), compute_grad_x="no"),
     TypeError, "compute_grad_x must be True or False, got 'no'"),
    (lambda: fastfc.dropout(a(10), 0.5, seed="1"), TypeError, "seed must be an int, got str"),
    (lambda: fastfc.dropout(a(10), 0.5, seed=None), TypeError,
     "seed must be an int, got NoneType"),
    (lambda: fastfc.dropout(a(10), 0.5, seed=1, stream=-3), ValueError,
     r"dropout: stream must be in \[0, 2\*\*64\), got -3"),
    (lambda: fastfc.dropout(a(10), 0.5, seed=1, stream=0.5), TypeError,
     "dropout: stream must be an int, got float"),
    # ---- dropout: x and out
    (lambda: fastfc.dropout(a(10, dtype=np.complex64), 0.5, seed=0), TypeError,
     "x has complex dtype complex64"),
    (lambda: fastfc.dropout(np.array(["a", "b"]), 0.5, seed=0), TypeError, "x has dtype <U1"),
    (lambda: fastfc.dropout(a(10), 0.5, seed=1, out=a(11)), ValueError,
     r"dropout: out has shape \(11,\), expected \(10,\)"),
    (lambda: fastfc.dropout(a(2, 5), 0.5, seed=1, out=a(10)), ValueError,
     r"out has shape \(10,\), expected \(2, 5\)"),
    (lambda: fastfc.dropout(a(10), 0.5, seed=1, out=a(10, dtype=F64)), TypeError,
     "dropout: out has dtype float64, expected float32"),
    (lambda: fastfc.dropout(a(10), 0.5, seed=1, out=read_only(a(10))), ValueError,
     "dropout: out is read-only"),
    (lambda: fastfc.dropout(a(4, 3), 0.5, seed=1, out=zero_stride((4, 3))), ValueError,
     "dropout: out has a zero stride"),
    # ---- dropout_backward
    (lambda: fastfc.dropout_backward(a(10), np.ones(10), 0.5), TypeError,
     r"dropout_backward: mask must be a bool ndarray \(from dropout\), got float64"),
    (lambda: fastfc.dropout_backward(a(10), np.ones(10, np.uint8), 0.5), TypeError,
     "mask must be a bool ndarray.*got uint8"),
    (lambda: fastfc.dropout_backward(a(2), [True, False], 0.5), TypeError,
     "mask must be a bool ndarray.*got list"),
    (lambda: fastfc.dropout_backward(a(10), np.ones(9, bool), 0.5), ValueError,
     r"dropout_backward: mask has shape \(9,\), grad_y has shape \(10,\)"),
    (lambda: fastfc.dropout_backward(a(10), np.ones(10, bool), 2), ValueError,
     r"dropout_backward: p must be in \[0, 1\), got 2"),
    (lambda: fastfc.dropout_backward(a(10), np.ones(10, bool), -1e-9), ValueError,
     r"p must be in \[0, 1\), got -1e-09"),
    (lambda: fastfc.dropout_backward(a(10), np.ones(10, bool), float("nan")), ValueError,
     r"p must be in \[0, 1\), got nan"),
    (lambda: fastfc.dropout_backward(a(10, dtype=np.complex128), np.ones(10, bool), 0.5),
     TypeError, "grad_y has complex dtype complex128"),
    (lambda: fastfc.gemm(a(2, 2), a(2, 2), alpha=10**400), ValueError,
     "gemm: alpha is beyond the range of a float"),
    (lambda: fastfc.dropout(a(10), 10**400, seed=1), ValueError,
     "dropout: p is beyond the range of a float"),
    (lambda: fastfc.linear_backward(a(2, 3), a(2, 4), a(4, 3), y=a(9, 9)), ValueError,
     r"linear_backward: y has shape \(9, 9\), expected \(2, 3\)"),
    # ---- set_num_threads
    (lambda: fastfc.set_num_threads(0), ValueError,
     r"set_num_threads: n must be in \[1, 2\*\*31 - 1\], got 0"),
    (lambda: fastfc.set_num_threads(-1), ValueError, r"n must be in \[1, 2\*\*31 - 1\], got -1"),
    (lambda: fastfc.set_num_threads(1.5), TypeError, "set_num_threads: n must be an int, got float"),
    (lambda: fastfc.set_num_threads("2"), TypeError, "n must be an int, got str"),
    (lambda: fastfc.set_num_threads(None), TypeError, "n must be an int, got NoneType"),
    (lambda: fastfc.set_num_threads(True), TypeError, "n must be an int, got bool"),
]


@pytest.mark.parametrize("call,exc,match", BAD, ids=[
    f"{i}-" + re.sub(r"[^A-Za-z0-9_]+", "_", m)[:40].strip("_") for i, (_, _, m) in enumerate(BAD)])
def test_bad_input_messages(call, exc, match, keep_threads):
    before = fastfc.get_num_threads()
    with pytest.raises(exc, match=match):
        call()
    assert fastfc.get_num_threads() == before   # a refused setting changes nothing


@pytest.mark.parametrize("call,name", [
    (lambda: fastfc.dropout(a(10), "0.5", seed=1), "p"),
    (lambda: fastfc.dropout_backward(a(10), np.ones(10, bool), "0.5"), "p"),
    (lambda: fastfc.gemm(a(3, 3), a(3, 3), alpha="2"), "alpha"),
    (lambda: fastfc.gemm(a(3, 3), a(3, 3), beta="1", out=a(3, 3)), "beta"),
    (lambda: fastfc.linear(a(3, 4), a(4, 6), activation="leaky_relu", negative_slope="0.1"),
     "negative_slope"),
], ids=["dropout-p", "dropout_backward-p", "gemm-alpha", "gemm-beta", "linear-negative_slope"])
def test_numeric_strings_refused(call, name):
    """A str is not a real number, even one float() can parse (NumPy refuses str in
    arithmetic too): it must not be silently converted."""
    with pytest.raises(TypeError, match=f"{name} must be a real number, got str"):
        call()


def test_scalars_are_one_check_across_the_api():
    """The functional API and the model modules share one real-number check: NumPy
    scalars, 0-d arrays and fractions pass, arrays with elements along an axis do not."""
    from fractions import Fraction
    for p in (np.float32(0.25), np.array(0.25), Fraction(1, 4)):
        assert np.array_equal(fastfc.dropout(np.ones(64), p, seed=3)[1],
                              fastfc.dropout(np.ones(64), 0.25, seed=3)[1])
        assert fastfc.optim.SGD(lr=p).lr == 0.25
    for call in (lambda: fastfc.dropout(a(4), np.array([0.5]), seed=1),
                 lambda: fastfc.gemm(a(2, 2), a(2, 2), alpha=np.ones((1, 1))),
                 lambda: fastfc.optim.Adam(lr=np.array([1e-3])),
                 lambda: fastfc.Dropout(np.array([0.5]))):
        with pytest.raises(TypeError, match=r"must be a real number, got an array of shape"):
            call()
    for bad in (np.array(True), np.bool_(False), np.array("0.5"), np.timedelta64(3),
                np.complex64(0.5)):
        for call in (lambda: fastfc.dropout(a(4), bad, seed=1),
                     lambda: fastfc.optim.SGD(lr=0.1, momentum=bad),
                     lambda: fastfc.optim.Adam(betas=(bad, 0.9))):
            with pytest.raises(TypeError, match=r"must be a real number, got "):
                call()


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_refused_everywhere(dtype):
    z = np.ones((2, 2), dtype)
    calls = [lambda: fastfc.gemm(z, a(2, 2)), lambda: fastfc.linear(z, a(2, 2)),
             lambda: fastfc.linear(a(2, 2), z), lambda: fastfc.linear_backward(z, a(2, 2), a(2, 2)),
             lambda: fastfc.linear_backward(a(2, 2), a(2, 2), z),
             lambda: fastfc.dropout(z, 0.5, seed=0),
             lambda: fastfc.dropout_backward(z, np.ones((2, 2), bool), 0.5)]
    for call in calls:
        with pytest.raises(TypeError, match="complex dtype"):
            call()


def test_object_arrays_refused():
    o = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=object)   # numeric values, object dtype
    for call in (lambda: fastfc.gemm(o, a(2, 2)), lambda: fastfc.linear(a(2, 2), o),
                 lambda: fastfc.dropout(o, 0.5, seed=0),
                 lambda: fastfc.linear_backward(a(2, 2), o, a(2, 2))):
        with pytest.raises(TypeError, match="dtype object"):
            call()


# ------------------------------------------------------------------ promotion

PROMOTIONS = [
    (np.int64, np.int64, F64), (np.int32, F32, F64), (np.int8, F32, F32), (np.uint8, F32, F32),
    (np.bool_, F32, F32), (np.bool_, np.bool_, F64), (F32, F64, F64), (F64, F32, F64),
    (np.float16, np.float16, F32), (np.float16, F32, F32), (np.float16, F64, F64),
    (np.int16, np.float16, F32), (np.int64, np.float16, F64), (F32, F32, F32), (F64, F64, F64),
]


@pytest.mark.parametrize("da,db,expected", PROMOTIONS)
def test_promotion(da, db, expected):
    x = (np.arange(12).reshape(3, 4) % 3).astype(da)
    w = (np.arange(20).reshape(4, 5) % 4 - 1).astype(db)
    assert ref.result_dtype(x, w) == expected
    want = x.astype(F64) @ w.astype(F64)   # small integers: exact in either dtype
    for got in (fastfc.linear(x, w), fastfc.gemm(x, w), fastfc.gemm(w, x, trans_a=True,
                                                                    trans_b=True).T):
        assert got.dtype == expected
        np.testing.assert_array_equal(got, want)
    gy = np.ones((3, 5), da)
    gx, gw, gb = fastfc.linear_backward(gy, x, w)
    assert gx.dtype == gw.dtype == gb.dtype == ref.result_dtype(gy, x, w)
    np.testing.assert_array_equal(gw, x.astype(F64).T @ np.ones((3, 5)))
    y = np.ones((3, 5), F64)   # promoted with the rest even where the identity ignores it
    for act in (None, "relu"):
        got = fastfc.linear_backward(gy, x, w, y=y, activation=act)
        want = ref.linear_backward(gy, x, w, y=y, activation=act)
        assert [g.dtype for g in got] == [g.dtype for g in want] == [ref.result_dtype(gy, x, w, y)] * 3


def test_activation_table_is_read_only():
    """Its codes go to C unchecked."""
    with pytest.raises(TypeError):
        fastfc.ACTIVATIONS["gelu"] = 99
    assert list(fastfc.ACTIVATIONS) == ["identity", "relu", "leaky_relu", "sigmoid", "tanh"]


@pytest.mark.parametrize("db", [np.int64, F64, np.float16])
def test_bias_takes_part_in_promotion(db):
    x, w = np.ones((2, 3), F32), np.ones((3, 4), F32)
    b = np.arange(4).astype(db)
    got = fastfc.linear(x, w, b)
    assert got.dtype == ref.result_dtype(x, w, b)
    np.testing.assert_array_equal(got, 3 + np.arange(4.0)[None].repeat(2, 0))


@pytest.mark.parametrize("dt,expected", [(np.int64, F64), (np.int8, F64), (np.bool_, F64),
                                         (np.float16, F32), (F32, F32), (F64, F64)])
def test_dropout_promotion(dt, expected):
    x = (np.arange(100) % 5).astype(dt)
    y, mask = fastfc.dropout(x, 0.5, seed=3)
    ry, rmask = ref.dropout(x, 0.5, seed=3)
    assert y.dtype == expected == ry.dtype
    assert_identical(y, ry)
    g = fastfc.dropout_backward(x, mask, 0.5)
    assert g.dtype == expected
    assert_identical(g, ref.dropout_backward(x, mask, 0.5))


def test_gemm_out_dtype_must_be_the_promoted_one():
    out = np.zeros((3, 5), F32)
    with pytest.raises(TypeError, match="out has dtype float32, expected float64"):
        fastfc.gemm(np.ones((3, 4), np.int64), np.ones((4, 5), F32), out=out)
    out = np.zeros((3, 5), F32)
    fastfc.gemm(np.ones((3, 4), np.float16), np.ones((4, 5), F32), out=out)
    np.testing.assert_array_equal(out, np.full((3, 5), 4.0, F32))


def test_lists_and_scalars_accepted():
    np.testing.assert_array_equal(fastfc.gemm([[1, 2]], [[3], [4]]), [[11.0]])
    np.testing.assert_array_equal(ref.gemm([[1, 2]], [[3], [4]]), [[11.0]])   # the oracle too
    np.testing.assert_array_equal(fastfc.linear([1.0, 2.0], [[1.0], [1.0]], [0.5]), [3.5])
    y, m = fastfc.dropout([1.0, 2.0, 3.0], 0.0, seed=0)
    np.testing.assert_array_equal(y, [1.0, 2.0, 3.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_byteswapped_and_unaligned_inputs(rng, dtype):
    x = make(rng, (20, 30), dtype)
    w = make(rng, (30, 10), dtype)
    xs = x.astype(x.dtype.newbyteorder())
    wu = unaligned(w.shape, dtype)
    wu[...] = w
    want = ref.linear(x, w)
    for xi, wi in ((xs, w), (x, wu), (xs, wu)):
        got = fastfc.linear(xi, wi)
        assert got.dtype == dtype and got.dtype.isnative
        assert_close(got, want, gemm_scale(x, w), 30, dtype)
    xu = unaligned(x.shape, dtype)
    xu[...] = x
    assert_identical(fastfc.dropout(xu, 0.3, seed=1)[0], ref.dropout(x, 0.3, seed=1)[0])
    assert_identical(fastfc.dropout(xs, 0.3, seed=1)[0], ref.dropout(x, 0.3, seed=1)[0])


# ------------------------------------------------------------------ inputs never modified

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lay", LAYOUTS)
def test_inputs_not_modified(rng, dtype, lay):
    x = make(rng, (70, 90), dtype, lay)
    w = make(rng, (90, 40), dtype, lay)
    b = make(rng, (40,), dtype, lay)
    gy = make(rng, (70, 40), dtype, lay)
    x[0, 0] = np.nan   # NaN must survive untouched too
    y = layout(fastfc.linear(x, w, b, activation="tanh"), lay)
    mask = fastfc.dropout(x, 0.5, seed=1)[1]
    ins = (x, w, b, gy, y, mask)
    copies = [v.copy() for v in ins]
    strides = [v.strides for v in ins]
    out = make(rng, (70, 40), dtype)
    fastfc.linear(x, w, b, activation="relu")
    fastfc.linear(x, w, b, activation="sigmoid", out=out)
    fastfc.linear_backward(gy, x, w, y=y, activation="tanh")
    fastfc.linear_backward(gy, x, w)
    fastfc.linear_backward(gy, x, w, y=y, activation="tanh", compute_grad_x=False)
    fastfc.gemm(x, w)
    fastfc.gemm(w, x, trans_a=True, trans_b=True)
    fastfc.gemm(x, w, alpha=2.0, beta=1.0, out=out)
    fastfc.dropout(x, 0.5, seed=1)
    fastfc.dropout(x, 0.5, seed=1, out=np.empty_like(x))
    fastfc.dropout_backward(gy, mask[:, :40].copy(), 0.5)
    for v, c, s in zip(ins, copies, strides):
        assert v.strides == s
        assert_identical(v, c)


# ------------------------------------------------------------------ out aliasing an input

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [8, 40, 130])
def test_gemm_out_is_an_input(rng, dtype, n):
    a_, b_ = make(rng, (n, n), dtype), make(rng, (n, n), dtype)
    scale = gemm_scale(a_, b_)

    def run(out, want, extra=0.0, **kw):
        r = fastfc.gemm(**kw, out=out)
        assert r is out
        assert_close(out, want, scale + extra, n + 1, dtype)

    a2 = a_.copy()
    run(a2, ref.gemm(a_, b_), a=a2, b=b_)                       # out is a
    b2 = b_.copy()
    run(b2, ref.gemm(a_, b_), a=a_, b=b2)                       # out is b
    c = a_.copy()
    run(c, ref.gemm(a_, b_, beta=1.0, out=a_), np.abs(a_), a=c, b=b_, beta=1.0)  # c = c@b + c
    c = a_.copy()
    run(c, ref.gemm(a_, a_, alpha=0.5, beta=-1.0, out=a_), np.abs(a_) + gemm_scale(a_, a_)
        - scale, a=c, b=c, alpha=0.5, beta=-1.0)                # c = 0.5 c@c - c
    t = a_.copy()
    run(t, ref.gemm(a_.T, b_), gemm_scale(a_.T, b_) - scale, a=t.T, b=b_)   # out is a.T view
    t = a_.copy()
    run(t, ref.gemm(a_, b_, trans_a=True), gemm_scale(a_.T, b_) - scale, a=t, b=b_,
        trans_a=True)
    buf = np.concatenate([a_, np.zeros((1, n), dtype)])        # out overlaps a, one row down
    run(buf[1:], ref.gemm(a_, b_), a=buf[:-1], b=b_)


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_out_is_an_input(rng, dtype):
    n = 48
    x, w, b = make(rng, (n, n), dtype), make(rng, (n, n), dtype), make(rng, (n,), dtype)
    want = ref.linear(x, w, b, activation="relu")
    bnd = gemm_scale(x, w) + np.abs(b)
    x2 = x.copy()
    assert fastfc.linear(x2, w, b, activation="relu", out=x2) is x2
    assert_close(x2, want, bnd, n + 1, dtype)
    w2 = w.copy()
    fastfc.linear(x, w2, b, activation="relu", out=w2)
    assert_close(w2, want, bnd, n + 1, dtype)
    out = np.empty((n, n), dtype)
    out[0] = b                                                  # b is a row of out
    fastfc.linear(x, w, out[0], activation="relu", out=out)
    assert_close(out, want, bnd, n + 1, dtype)
    x3 = make(rng, (2, 5, n), dtype)                            # N-d, out is x
    want3 = ref.linear(x3, w, b, activation="tanh")
    x3c = x3.copy()
    fastfc.linear(x3c, w, b, activation="tanh", out=x3c)
    assert_close(x3c, want3, (np.abs(x3) @ np.abs(w) + np.abs(b)), n + 1, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", [None, "relu", "tanh"])
def test_linear_backward_out_is_an_input(rng, dtype, act):
    n = 24
    x, w = make(rng, (n, n), dtype), make(rng, (n, n), dtype)
    y = fastfc.linear(x, w, activation=act)
    gy = make(rng, (n, n), dtype)
    want = ref.linear_backward(gy, x, w, y=y, activation=act)
    bounds = (np.abs(gy) @ np.abs(w).T, np.abs(x).T @ np.abs(gy), np.abs(gy).sum(0))

    def check(got):
        for g, r, s in zip(got, want, bounds):
            assert_close(g, r, s, n + 2, dtype)

    for which in ("grad_x=grad_y", "grad_x=x", "grad_x=w", "grad_w=x", "grad_w=w",
                  "grad_w=grad_y", "both"):
        gy2, x2, w2, y2 = gy.copy(), x.copy(), w.copy(), y.copy()
        outs = {"grad_x=grad_y": (gy2, None, None), "grad_x=x": (x2, None, None),
                "grad_x=w": (w2, None, None), "grad_w=x": (None, x2, None),
                "grad_w=w": (None, w2, None), "grad_w=grad_y": (None, gy2, None),
                "both": (w2, x2, None)}[which]
        got = fastfc.linear_backward(gy2, x2, w2, y=y2, activation=act, out=outs)
        check(got)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", [None, "relu", "tanh"])
@pytest.mark.parametrize("target", ["grad_y", "x", "w", "y"])
def test_linear_backward_grad_b_out_is_an_input(rng, dtype, act, target):
    """grad_b written into a row of an input: the gradients must still be right."""
    n = 24
    x, w = make(rng, (n, n), dtype), make(rng, (n, n), dtype)
    y = fastfc.linear(x, w, activation=act)
    gy = make(rng, (n, n), dtype)
    want = ref.linear_backward(gy, x, w, y=y, activation=act)
    arrs = {"grad_y": gy.copy(), "x": x.copy(), "w": w.copy(), "y": y.copy()}
    got = fastfc.linear_backward(arrs["grad_y"], arrs["x"], arrs["w"], y=arrs["y"],
                                 activation=act, out=(None, None, arrs[target][0]))
    bounds = (np.abs(gy) @ np.abs(w).T, np.abs(x).T @ np.abs(gy), np.abs(gy).sum(0))
    for name, g, r, s in zip(("grad_x", "grad_w", "grad_b"), got, want, bounds):
        assert_close(g, r, s, n + 2, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_out_is_the_input(rng, dtype):
    x = make(rng, (33, 65), dtype)
    want = ref.dropout(x, 0.3, seed=2)[0]
    for lay in ("C", "F", "sliced", "negative"):
        xc = layout(x, lay)
        y, _ = fastfc.dropout(xc, 0.3, seed=2, out=xc)
        assert y is xc
        assert_identical(np.ascontiguousarray(xc), want)


# ------------------------------------------------------------------ unaligned data, C entry points

@pytest.mark.parametrize("dtype", DTYPES)
def test_unaligned_data_reaches_c_only_as_an_aligned_copy(rng, dtype):
    """Contiguous arrays one byte off their alignment (UB to load in C, a crash where the
    compiler vectorizes): every kernel copies them, the private ones refuse them."""
    from fastfc import _core
    g = make(rng, (7, 9), dtype)
    gu = unaligned(g.shape, dtype)
    gu[...] = g
    mask = fastfc.dropout(g, 0.5, seed=3)[1]
    assert_identical(fastfc.dropout_backward(gu, mask, 0.5), ref.dropout_backward(g, mask, 0.5))
    assert_identical(fastfc.gemm(gu, gu, trans_b=True), fastfc.gemm(g, g, trans_b=True))
    labels = unaligned((7,), np.int64)
    labels[...] = np.arange(7) % 9
    want = _core._softmax_xent(g, np.arange(7) % 9)
    assert _core._softmax_xent(gu, labels) == want
    with pytest.raises(TypeError, match="aligned"):
        _core._all_finite(gu)
    with pytest.raises(TypeError, match="aligned"):
        _core._labels_in_range(labels, 9)
    model = fastfc.Sequential([fastfc.Dense(9, 3)], dtype=dtype, seed=0)
    X = unaligned((7, 9), dtype)
    X[...] = g
    labels[...] = np.arange(7) % 3
    assert np.isfinite(model.train_on_batch(X, labels))


def _plan(dtype=np.float32):
    from fastfc._core import MLPPlan
    w, gw = np.ones((4, 3), dtype), np.zeros((4, 3), dtype)
    specs = [{"kind": "dense", "w": w, "b": None, "gw": gw, "gb": None, "act": "relu"},
             {"kind": "dropout", "features": 3, "p": 0.5, "seed": 1}]
    return MLPPlan(specs, 5, dtype)


@pytest.mark.parametrize("i", [-1, 2, 100, 2**31 - 1])
def test_plan_set_stream_refuses_an_index_out_of_range(i):
    with pytest.raises(IndexError, match=f"layer {i} out of range for a plan of 2 layers"):
        _plan().set_stream(i, 7)


def test_plan_set_stream_only_on_dropout_layers():
    plan = _plan()
    with pytest.raises(ValueError, match="layer 0 is not a dropout layer"):
        plan.set_stream(0, 7)
    plan.set_stream(1, 7)   # the dropout layer
    with pytest.raises(OverflowError):
        plan.set_stream(2**40, 7)


def test_plan_refuses_unaligned_inputs():
    plan = _plan()
    x = unaligned((5, 4), np.float32)
    with pytest.raises(TypeError, match="aligned"):
        plan.forward(x)
    labels = unaligned((5,), np.int64)
    with pytest.raises(TypeError, match="aligned"):
        plan.xent_step(np.ones((5, 4), np.float32), labels)
