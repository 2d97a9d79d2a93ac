# cython: language_level=3, cdivision=True
"""Argument checks every kernel module shares: run with the GIL, before any C call.
Small layers are called thousands of times per epoch, so the common case (float32 or
float64 ndarrays) is checked through NumPy's C API; the rest falls to the slow paths."""
import numpy as np
cimport numpy as cnp
from libc.math cimport INFINITY
from libc.stdint cimport int64_t, uint64_t

from fastfc._core.capi cimport *

from fastfc import activations
from fastfc._checks import flag, real, slope

cnp.import_array()

# the one activation table's codes (read-only: they go to C unchecked), checked against the
# C enum once here: a mismatch would run another activation than the one named
ACTIVATIONS = activations.CODES
if dict(ACTIVATIONS) != {"identity": FASTFC_ACT_IDENTITY, "relu": FASTFC_ACT_RELU,
                         "leaky_relu": FASTFC_ACT_LEAKY_RELU, "sigmoid": FASTFC_ACT_SIGMOID,
                         "tanh": FASTFC_ACT_TANH}:
    raise ImportError(f"fastfc.activations.CODES {dict(ACTIVATIONS)} differ from enum "
                      f"fastfc_act in csrc/include/fastfc.h")


cdef object _F32 = np.dtype(np.float32)
cdef object _F64 = np.dtype(np.float64)


cdef object _check_kind(str name, object a):
    """a as an ndarray of a real numeric dtype, else TypeError."""
    cdef int t
    if type(a) is np.ndarray:
        t = cnp.PyArray_TYPE(<cnp.ndarray>a)
        if t == cnp.NPY_FLOAT or t == cnp.NPY_DOUBLE:
            return a
    else:
        try:
            a = np.asarray(a)
        except ValueError as e:   # a ragged list: NumPy's message, with the argument's name
            raise ValueError(f"{name} is not a rectangular array: {e}") from None
    k = a.dtype.kind
    if k == "c":
        raise TypeError(f"{name} has complex dtype {a.dtype}; fastfc computes in float32 "
                        f"or float64 only")
    if k not in "biuf":
        raise TypeError(f"{name} has dtype {a.dtype}; expected a real numeric array")
    if k == "f" and a.dtype.itemsize > 8:
        raise TypeError(f"{name} has dtype {a.dtype}; fastfc computes in float32 or float64 "
                        f"(convert explicitly to accept the loss of precision)")
    return a


cdef int _result_type(list arrays) except -1:
    """NumPy promotion as a type number; integers and bools compute in float64,
    float16 in float32."""
    cdef bint all32 = True, all64 = True
    cdef cnp.ndarray a
    for a in arrays:
        all32 = all32 and _is_native(a, cnp.NPY_FLOAT)
        all64 = all64 and _is_native(a, cnp.NPY_DOUBLE)
    if all32:
        return cnp.NPY_FLOAT
    if all64:
        return cnp.NPY_DOUBLE
    dt = np.result_type(*arrays)
    if dt.kind == "f" and dt.itemsize <= 4:
        return cnp.NPY_FLOAT
    return cnp.NPY_DOUBLE


cdef object _dtype(int typenum):
    return _F32 if typenum == cnp.NPY_FLOAT else _F64


cdef cnp.ndarray _operand(cnp.ndarray a, int typenum):
    """a in the compute dtype, native byte order, strides a whole number of elements."""
    if _is_native(a, typenum) and cnp.PyArray_ISALIGNED(a):
        return a
    if cnp.PyArray_TYPE(a) != typenum or cnp.PyArray_ISBYTESWAPPED(a):
        a = a.astype(_dtype(typenum))
    if not cnp.PyArray_ISALIGNED(a):   # a fresh buffer is aligned; ascontiguousarray
        a = a.copy()                     # keeps an unaligned contiguous array as it is
    return a


cdef cnp.ndarray _empty1(cnp.npy_intp n, int typenum):
    return cnp.PyArray_EMPTY(1, &n, typenum, 0)


cdef cnp.ndarray _empty2(cnp.npy_intp rows, cnp.npy_intp cols, int typenum):
    cdef cnp.npy_intp dims[2]
    dims[0] = rows
    dims[1] = cols
    return cnp.PyArray_EMPTY(2, dims, typenum, 0)


cdef object _check_out(object out, tuple shape, int typenum, str fn):
    """shape None: the caller has checked it."""
    if type(out) is not np.ndarray and not isinstance(out, np.ndarray):
        raise TypeError(f"{fn}: out must be a numpy.ndarray, got {type(out).__name__}")
    if shape is not None and out.shape != shape:
        raise ValueError(f"{fn}: out has shape {out.shape}, expected {shape}")
    if not _is_native(out, typenum):
        raise TypeError(f"{fn}: out has dtype {out.dtype}, expected {_dtype(typenum)} "
                        f"(native byte order)")
    if not cnp.PyArray_ISWRITEABLE(out):
        raise ValueError(f"{fn}: out is read-only")
    if not cnp.PyArray_ISALIGNED(out):
        raise ValueError(f"{fn}: out is not aligned to its dtype")
    cdef int i
    cdef cnp.ndarray o = out
    if cnp.PyArray_SIZE(o) > 1:
        for i in range(cnp.PyArray_NDIM(o)):
            if cnp.PyArray_STRIDES(o)[i] == 0 and cnp.PyArray_DIMS(o)[i] > 1:
                raise ValueError(f"{fn}: out has a zero stride (a broadcast view); its "
                                 f"elements overlap")
    return out


cdef void _extent(cnp.ndarray a, char **lo, char **hi):
    """The bytes [lo, hi) an array's elements can touch."""
    cdef char *p = <char *>cnp.PyArray_DATA(a)
    cdef char *q = p
    cdef int i
    cdef cnp.npy_intp d, s
    for i in range(cnp.PyArray_NDIM(a)):
        d = cnp.PyArray_DIMS(a)[i]
        s = cnp.PyArray_STRIDES(a)[i]
        if d == 0:
            lo[0] = hi[0] = p
            return
        if s < 0:
            p += s * (d - 1)
        else:
            q += s * (d - 1)
    lo[0] = p
    hi[0] = q + cnp.PyArray_ITEMSIZE(a)


cdef bint _ranges_meet(cnp.ndarray a, cnp.ndarray b):
    """Whether the memory ranges of a and b meet (np.may_share_memory's test)."""
    cdef char *alo
    cdef char *ahi
    cdef char *blo
    cdef char *bhi
    _extent(a, &alo, &ahi)
    _extent(b, &blo, &bhi)
    return alo < bhi and blo < ahi


cdef bint _overlaps(cnp.ndarray out, list inputs):
    """Whether out's memory range meets an input's."""
    for a in inputs:
        if a is not None and _ranges_meet(out, <cnp.ndarray>a):
            return True
    return False


cdef int _activation_code(object activation, str fn) except -1:
    if activation is None:
        return FASTFC_ACT_IDENTITY
    if not isinstance(activation, str):
        raise TypeError(f"{fn}: activation must be a str or None, got "
                        f"{type(activation).__name__}")
    try:
        return ACTIVATIONS[activation]
    except KeyError:
        raise ValueError(f"{fn}: unknown activation {activation!r}; valid: "
                         f"{', '.join(repr(k) for k in ACTIVATIONS)} or None") from None


cdef double _real(object v, str name, str fn) except? -1:
    if type(v) is float:   # the common case, without a Python call
        return <double>v
    return real(v, f"{fn}: {name}")


cdef double _slope(object v, str fn) except? -1:
    if type(v) is float and 0 <= <double>v < INFINITY:
        return <double>v
    return slope(v, f"{fn}: negative_slope")


cdef bint _flag(object v, str name, str fn) except -1:
    if type(v) is bool:   # the common case, without a Python call
        return v
    return flag(v, f"{fn}: {name}")


cdef object _view_2d(cnp.ndarray a, int64_t rows, int64_t cols):
    """A (rows, cols) view of a, or None when its strides allow none."""
    if cnp.PyArray_NDIM(a) == 2:
        return a
    try:
        v = a.view()
        v.shape = (rows, cols)
        return v
    except AttributeError:
        return None


cdef cnp.ndarray _as_2d(cnp.ndarray a, int64_t rows, int64_t cols):
    """A (rows, cols) view of a when its strides allow, else a copy."""
    v = _view_2d(a, rows, cols)
    return a.reshape(rows, cols) if v is None else v



cdef double _check_p(object p, str fn) except? -1:
    cdef double v = _real(p, "p", fn)
    if not (0.0 <= v < 1.0):
        raise ValueError(f"{fn}: p must be in [0, 1), got {p!r}")
    return v


cdef uint64_t _check_seed(object seed, str name, str fn) except? 0:
    if type(seed) is int and 0 <= <object>seed < 0x10000000000000000:
        return <uint64_t>seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{fn}: {name} must be an int, got {type(seed).__name__}")
    if not (0 <= seed < 2 ** 64):
        raise ValueError(f"{fn}: {name} must be in [0, 2**64), got {seed}")
    return <uint64_t>int(seed)

