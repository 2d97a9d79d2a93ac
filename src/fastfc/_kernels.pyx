# cython: language_level=3, cdivision=True
"""The Cython boundary: check every argument with the GIL held, then one C call without it."""
import os
import sys
import warnings
from types import MappingProxyType

import numpy as np
cimport numpy as cnp
from libc.math cimport INFINITY
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t

from fastfc._checks import flag, real, slope

cnp.import_array()

cdef extern from *:
    """
    #include <omp.h>
    static int fastfc_openmp_version(void) { return _OPENMP; }
    """
    int fastfc_openmp_version()
    int omp_get_max_threads() nogil

ISA_NAMES = ("generic", "avx2", "avx512")
# Test-only: the AVX-512 kernels' source compiled for AVX2 (needs an AVX2 CPU).
EMULATED_ISA = "avx512-emulated"
# read-only: the codes go to C unchecked
ACTIVATIONS = MappingProxyType({"identity": FASTFC_ACT_IDENTITY, "relu": FASTFC_ACT_RELU,
                                "leaky_relu": FASTFC_ACT_LEAKY_RELU,
                                "sigmoid": FASTFC_ACT_SIGMOID, "tanh": FASTFC_ACT_TANH})


def _warn_at_import(str message):
    """A RuntimeWarning that names the caller's `import fastfc`: the frames between are
    importlib's and fastfc's own."""
    cdef int level = 1
    f = sys._getframe(0)
    while f is not None and f.f_globals.get("__name__", "").startswith(
            ("importlib", "_frozen_importlib", "fastfc")):
        f, level = f.f_back, level + 1
    warnings.warn(message, RuntimeWarning, stacklevel=level)


def _init_isa():
    wanted = os.environ.get("FASTFC_ISA", "").strip().lower()
    best = fastfc_cpu_best_isa()
    if wanted == EMULATED_ISA and best >= ISA_NAMES.index("avx2"):
        fastfc_init(3)
        return EMULATED_ISA
    if not wanted:
        return ISA_NAMES[fastfc_init(best)]
    if wanted not in ISA_NAMES:
        _warn_at_import(f"FASTFC_ISA={wanted!r} is not one of {ISA_NAMES + (EMULATED_ISA,)}; "
                        f"using {ISA_NAMES[best]!r}")
        return ISA_NAMES[fastfc_init(best)]
    if ISA_NAMES.index(wanted) > best:
        _warn_at_import(f"FASTFC_ISA={wanted!r} is not supported by this CPU; using "
                        f"{ISA_NAMES[best]!r}")
    return ISA_NAMES[fastfc_init(ISA_NAMES.index(wanted))]


ISA = _init_isa()
CPU_ISA = ISA_NAMES[fastfc_cpu_best_isa()]


def _default_threads():
    try:
        n = int(os.environ.get("OMP_NUM_THREADS", "").split(",")[0])
    except ValueError:
        n = 0
    return n if n >= 1 else max(1, omp_get_max_threads())


# The only module state: a plain int read once per call (set_num_threads is a setting,
# like OMP_NUM_THREADS; every C call receives its value as an argument).
cdef int _nthreads = _default_threads()


def set_num_threads(n):
    """Set the number of OpenMP threads fastfc kernels may use (>= 1; a call uses at most
    four per processor)."""
    global _nthreads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    if not 1 <= n <= 2**31 - 1:
        raise ValueError(f"set_num_threads: n must be in [1, 2**31 - 1], got {n}")
    _nthreads = int(n)


def get_num_threads():
    """Number of threads fastfc kernels may use."""
    return _nthreads


def get_config():
    """The build and run-time configuration as a dict."""
    cdef int s[5]
    cdef int d[5]
    fastfc_block_sizes(4, s)
    fastfc_block_sizes(8, d)
    names = ("MR", "NR", "MC", "KC", "NC")
    return {
        "isa": ISA,
        "cpu_isa": CPU_ISA,
        "isas_supported": ISA_NAMES[:ISA_NAMES.index(CPU_ISA) + 1],
        "isas_testable": ISA_NAMES[:ISA_NAMES.index(CPU_ISA) + 1] + (
            (EMULATED_ISA,) if CPU_ISA != "generic" else ()),
        "threads": _nthreads,
        "openmp": f"OpenMP {fastfc_openmp_version()}",
        "blocks_float32": dict(zip(names, [s[i] for i in range(5)])),
        "blocks_float64": dict(zip(names, [d[i] for i in range(5)])),
    }


def _wide_regions():
    """Parallel regions that got more than one thread, opened by this Python thread: lets
    the tests see that a team ran."""
    return fastfc_wide_regions()


def fma_peak_gflops(dtype=np.float32):
    """Measured single-thread FMA peak of the path in use, in GFLOP/s."""
    cdef int size = np.dtype(dtype).itemsize
    cdef double r
    with nogil:
        r = fastfc_fma_peak_gflops(size)
    return r


def philox4x32_10(ctr, key):
    """One Philox4x32-10 block: 4 counter words and 2 key words -> 4 words."""
    cdef uint32_t c[4]
    cdef uint32_t k[2]
    cdef uint32_t o[4]
    for i in range(4):
        c[i] = int(ctr[i])
    for i in range(2):
        k[i] = int(key[i])
    fastfc_philox4x32_10(c, k, o)
    return tuple(int(o[i]) for i in range(4))


# ---------------------------------------------------------------- argument checks
# Small layers are called thousands of times per epoch, so the common case (float32 or
# float64 ndarrays) is checked through NumPy's C API; the rest falls to the slow paths.

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
        a = np.asarray(a)
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


cdef inline bint _is_native(cnp.ndarray a, int typenum):
    return cnp.PyArray_TYPE(a) == typenum and not cnp.PyArray_ISBYTESWAPPED(a)


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


cdef inline object _dtype(int typenum):
    return _F32 if typenum == cnp.NPY_FLOAT else _F64


cdef cnp.ndarray _operand(cnp.ndarray a, int typenum):
    """a in the compute dtype, native byte order, strides a whole number of elements."""
    if _is_native(a, typenum) and cnp.PyArray_ISALIGNED(a):
        return a
    if cnp.PyArray_TYPE(a) != typenum or cnp.PyArray_ISBYTESWAPPED(a):
        a = a.astype(_dtype(typenum))
    if not cnp.PyArray_ISALIGNED(a):
        a = np.ascontiguousarray(a)
    return a


cdef inline int64_t _es(cnp.ndarray a, int axis):
    return cnp.PyArray_STRIDES(a)[axis] // cnp.PyArray_ITEMSIZE(a)


cdef cnp.ndarray _empty1(cnp.npy_intp n, int typenum):
    return cnp.PyArray_EMPTY(1, &n, typenum, 0)


cdef cnp.ndarray _empty2(cnp.npy_intp rows, cnp.npy_intp cols, int typenum):
    cdef cnp.npy_intp dims[2]
    dims[0] = rows
    dims[1] = cols
    return cnp.PyArray_EMPTY(2, dims, typenum, 0)


cdef object _check_out(object out, tuple shape, int typenum, str fn):
    if type(out) is not np.ndarray and not isinstance(out, np.ndarray):
        raise TypeError(f"{fn}: out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape:
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


# ---------------------------------------------------------------- the GEMM call

cdef int _gemm_call(cnp.ndarray a, bint ta, cnp.ndarray b, bint tb, double alpha,
                    double beta, cnp.ndarray c, object bias, int act,
                    double slope) except -1:
    """c = act(alpha*op(a)@op(b) + beta*c + bias) for 2-D arrays already checked."""
    cdef int64_t m = cnp.PyArray_DIMS(c)[0], n = cnp.PyArray_DIMS(c)[1]
    cdef int64_t k = cnp.PyArray_DIMS(a)[0] if ta else cnp.PyArray_DIMS(a)[1]
    cdef int64_t rsa = _es(a, 1 if ta else 0), csa = _es(a, 0 if ta else 1)
    cdef int64_t rsb = _es(b, 1 if tb else 0), csb = _es(b, 0 if tb else 1)
    cdef int64_t rsc = _es(c, 0), csc = _es(c, 1)
    cdef void *pa = cnp.PyArray_DATA(a)
    cdef void *pb = cnp.PyArray_DATA(b)
    cdef void *pc = cnp.PyArray_DATA(c)
    cdef void *pbias = NULL if bias is None else cnp.PyArray_DATA(<cnp.ndarray>bias)
    cdef int nt = _nthreads, rc
    if cnp.PyArray_TYPE(c) == cnp.NPY_FLOAT:
        with nogil:
            rc = fastfc_sgemm(nt, m, n, k, <float>alpha, <float *>pa, rsa, csa, <float *>pb,
                              rsb, csb, <float>beta, <float *>pc, rsc, csc, <float *>pbias,
                              act, <float>slope)
    else:
        with nogil:
            rc = fastfc_dgemm(nt, m, n, k, alpha, <double *>pa, rsa, csa, <double *>pb,
                              rsb, csb, beta, <double *>pc, rsc, csc, <double *>pbias,
                              act, slope)
    if rc:
        raise MemoryError("fastfc: out of memory for the GEMM pack buffers")
    return 0


cdef object _gemm_into(cnp.ndarray a, bint ta, cnp.ndarray b, bint tb, double alpha,
                       double beta, cnp.ndarray out, object bias, int act, double slope,
                       list inputs):
    """Run the GEMM into `out`, through a temporary when out overlaps an input."""
    if inputs and _overlaps(out, inputs):
        tmp = out.copy() if beta != 0 else np.empty_like(out)
        _gemm_call(a, ta, b, tb, alpha, beta, tmp, bias, act, slope)
        out[...] = tmp
    else:
        _gemm_call(a, ta, b, tb, alpha, beta, out, bias, act, slope)
    return out


def gemm(a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
    """General matrix product ``alpha * op(a) @ op(b) + beta * out``.

    Parameters
    ----------
    a, b : array_like, 2-D
        Operands; any strides and memory order. ``op(a)`` is ``a.T`` when ``trans_a``.
    alpha, beta : float
        Scalars. ``out`` is not read when ``beta == 0`` (NaN in it does not propagate).
    out : ndarray, optional
        Written in place; needed when ``beta != 0``.

    Returns
    -------
    ndarray of shape ``(m, n)``, the promoted dtype of ``a`` and ``b`` (float32 or float64).

    Examples
    --------
    >>> import numpy as np, fastfc
    >>> fastfc.gemm(np.ones((2, 3)), np.ones((3, 4))).shape
    (2, 4)
    """
    a = _check_kind("a", a)
    b = _check_kind("b", b)
    if a.ndim != 2:
        raise ValueError(f"gemm: a must be 2-D, got shape {a.shape}")
    if b.ndim != 2:
        raise ValueError(f"gemm: b must be 2-D, got shape {b.shape}")
    cdef double al = _real(alpha, "alpha", "gemm"), be = _real(beta, "beta", "gemm")
    cdef bint ta = _flag(trans_a, "trans_a", "gemm"), tb = _flag(trans_b, "trans_b", "gemm")
    cdef cnp.npy_intp *da = cnp.PyArray_DIMS(<cnp.ndarray>a)
    cdef cnp.npy_intp *db = cnp.PyArray_DIMS(<cnp.ndarray>b)
    cdef cnp.npy_intp m = da[1] if ta else da[0], ka = da[0] if ta else da[1]
    cdef cnp.npy_intp kb = db[1] if tb else db[0], n = db[0] if tb else db[1]
    if ka != kb:
        raise ValueError(f"gemm: inner dimensions differ: op(a) is ({m}, {ka}), "
                         f"op(b) is ({kb}, {n}) (a {a.shape}, b {b.shape}, "
                         f"trans_a={ta}, trans_b={tb})")
    cdef int dt = _result_type([a, b])
    if out is None:
        if be != 0:
            raise ValueError(f"gemm: beta={beta} needs out= (the matrix it scales)")
        return _gemm_into(_operand(a, dt), ta, _operand(b, dt), tb, al, 0.0,
                          _empty2(m, n, dt), None, FASTFC_ACT_IDENTITY, 0.0, None)
    _check_out(out, (m, n), dt, "gemm")
    return _gemm_into(_operand(a, dt), ta, _operand(b, dt), tb, al, be, out, None,
                      FASTFC_ACT_IDENTITY, 0.0, [a, b])


cdef int _check_linear_shapes(object x, object w, str fn) except -1:
    if cnp.PyArray_NDIM(<cnp.ndarray>x) < 1:
        raise ValueError(f"{fn}: x must have at least 1 dimension, got a scalar")
    if cnp.PyArray_NDIM(<cnp.ndarray>w) != 2:
        raise ValueError(f"{fn}: w must be 2-D (in_features, out_features), got shape {w.shape}")
    if x.shape[-1] != w.shape[0]:
        raise ValueError(f"{fn}: x has {x.shape[-1]} features (shape {x.shape}) but w "
                         f"expects {w.shape[0]} (shape {w.shape})")
    return 0


cdef int64_t _batch_rows(cnp.ndarray x):
    cdef int64_t rows = 1
    cdef int i
    for i in range(cnp.PyArray_NDIM(x) - 1):
        rows *= cnp.PyArray_DIMS(x)[i]
    return rows


def linear(x, w, b=None, *, activation=None, out=None, negative_slope=0.01):
    """Dense layer forward pass ``act(x @ w + b)`` with bias and activation fused.

    Parameters
    ----------
    x : array_like, shape (..., in_features)
        Leading axes are batch axes.
    w : array_like, shape (in_features, out_features)
    b : array_like, shape (out_features,), optional
    activation : {None, "identity", "relu", "leaky_relu", "sigmoid", "tanh"}
    out : ndarray, shape (..., out_features), optional
    negative_slope : float
        Slope of ``leaky_relu`` for negative inputs.

    Examples
    --------
    >>> import numpy as np, fastfc
    >>> float(fastfc.linear(np.ones((2, 3)), np.ones((3, 4)), np.zeros(4), activation="relu")[0, 0])
    3.0
    """
    x = _check_kind("x", x)
    w = _check_kind("w", w)
    cdef int act = _activation_code(activation, "linear")
    cdef double slope = _slope(negative_slope, "linear")
    _check_linear_shapes(x, w, "linear")
    cdef cnp.npy_intp nin = cnp.PyArray_DIMS(<cnp.ndarray>w)[0]
    cdef cnp.npy_intp nout = cnp.PyArray_DIMS(<cnp.ndarray>w)[1]
    arrays = [x, w]
    if b is not None:
        b = _check_kind("b", b)
        if cnp.PyArray_NDIM(<cnp.ndarray>b) != 1 or cnp.PyArray_DIMS(<cnp.ndarray>b)[0] != nout:
            raise ValueError(f"linear: b must have shape ({nout},) to match w {w.shape}, "
                             f"got {b.shape}")
        arrays.append(b)
    cdef int dt = _result_type(arrays)
    cdef int64_t rows = _batch_rows(x)
    x2 = _as_2d(_operand(x, dt), rows, nin)
    wd = _operand(w, dt)
    bd = None
    if b is not None:
        bd = _operand(b, dt)
        if cnp.PyArray_STRIDES(<cnp.ndarray>bd)[0] != cnp.PyArray_ITEMSIZE(<cnp.ndarray>bd):
            bd = np.ascontiguousarray(bd)
    if out is None:
        if cnp.PyArray_NDIM(<cnp.ndarray>x) == 2:
            return _gemm_into(x2, False, wd, False, 1.0, 0.0, _empty2(rows, nout, dt), bd,
                              act, slope, None)
        res = np.empty(x.shape[:-1] + (nout,), _dtype(dt))
        _gemm_into(x2, False, wd, False, 1.0, 0.0, res.reshape(rows, nout), bd, act, slope,
                   None)
        return res
    shape = x.shape[:-1] + (nout,)
    _check_out(out, shape, dt, "linear")
    out2 = _view_2d(out, rows, nout)
    if out2 is None:  # strides that no 2-D view can express
        tmp = _empty2(rows, nout, dt)
        _gemm_into(x2, False, wd, False, 1.0, 0.0, tmp, bd, act, slope, None)
        out[...] = tmp.reshape(shape)
        return out
    _gemm_into(x2, False, wd, False, 1.0, 0.0, out2, bd, act, slope, arrays)
    return out


def linear_backward(grad_y, x, w, *, y=None, activation=None, negative_slope=0.01,
                    out=None, compute_grad_x=True):
    """Gradients of ``y = act(x @ w + b)``: returns ``(grad_x, grad_w, grad_b)``.

    The activation derivative is computed from the forward output ``y``, which is
    required unless the activation is the identity. ``out=(grad_x, grad_w, grad_b)``
    (each an ndarray or None) writes the gradients in place; with
    ``compute_grad_x=False`` (a first layer) ``grad_x`` is skipped and returned as None.

    Examples
    --------
    >>> import numpy as np, fastfc
    >>> x, w = np.ones((2, 3)), np.ones((3, 4))
    >>> gx, gw, gb = fastfc.linear_backward(np.ones((2, 4)), x, w)
    >>> gx.shape, gw.shape, gb.shape
    ((2, 3), (3, 4), (4,))
    """
    grad_y = _check_kind("grad_y", grad_y)
    x = _check_kind("x", x)
    w = _check_kind("w", w)
    cdef int act = _activation_code(activation, "linear_backward")
    cdef double slope = _slope(negative_slope, "linear_backward")
    cdef bint want_gx = _flag(compute_grad_x, "compute_grad_x", "linear_backward")
    _check_linear_shapes(x, w, "linear_backward")
    cdef cnp.npy_intp nin = cnp.PyArray_DIMS(<cnp.ndarray>w)[0]
    cdef cnp.npy_intp nout = cnp.PyArray_DIMS(<cnp.ndarray>w)[1]
    shape = x.shape[:-1] + (nout,)
    if grad_y.shape != shape:
        raise ValueError(f"linear_backward: grad_y has shape {grad_y.shape}, expected {shape} "
                         f"from x {x.shape} and w {w.shape}")
    arrays = [grad_y, x, w]
    if y is not None:   # checked and promoted even where the activation needs no y
        y = _check_kind("y", y)
        if y.shape != shape:
            raise ValueError(f"linear_backward: y has shape {y.shape}, expected {shape}")
        arrays.append(y)
    elif act != FASTFC_ACT_IDENTITY:
        raise ValueError(f"linear_backward: activation={activation!r} needs y=, the "
                         f"forward output")
    cdef int dt = _result_type(arrays)
    if act == FASTFC_ACT_IDENTITY:
        y = None   # not read: the identity's derivative is 1
    cdef int64_t rows = _batch_rows(x)
    x2 = _as_2d(_operand(x, dt), rows, nin)
    wd = _operand(w, dt)
    gy2 = _as_2d(_operand(grad_y, dt), rows, nout)
    gx_out = gw_out = gb_out = None
    if out is not None:
        if not isinstance(out, tuple) or len(out) != 3:
            raise TypeError("linear_backward: out must be a tuple (grad_x, grad_w, grad_b) "
                            "of ndarrays or None")
        gx_out, gw_out, gb_out = out
        _check_distinct_outs((gx_out if want_gx else None, gw_out, gb_out))
    grad_b = _empty1(nout, dt) if gb_out is None else \
        _check_out(gb_out, (nout,), dt, "linear_backward (grad_b)")
    inputs = [grad_y, x, w, y]
    # db goes straight into grad_b unless grad_b is strided or lies in an input the
    # products below still read; then through a temporary copied back at the end
    db = grad_b if cnp.PyArray_STRIDES(<cnp.ndarray>grad_b)[0] == \
        cnp.PyArray_ITEMSIZE(<cnp.ndarray>grad_b) and (gb_out is None or
                                                      not _overlaps(grad_b, inputs)) \
        else _empty1(nout, dt)
    y2 = gy2 if act == FASTFC_ACT_IDENTITY else _as_2d(_operand(y, dt), rows, nout)
    grad_x = dx2 = None
    cdef bint dx_tmp = False, dw_tmp
    if want_gx:
        if gx_out is None:
            grad_x = np.empty(x.shape[:-1] + (nin,), _dtype(dt))
        else:
            grad_x = _check_out(gx_out, x.shape[:-1] + (nin,), dt, "linear_backward (grad_x)")
        dx2, dx_tmp = _writable_2d(grad_x, rows, nin, inputs)
    grad_w = _empty2(nin, nout, dt) if gw_out is None else \
        _check_out(gw_out, (nin, nout), dt, "linear_backward (grad_w)")
    dw2, dw_tmp = _writable_2d(grad_w, nin, nout, inputs)
    _gemm_pair(gy2, y2, act, slope, db, wd, dx2, x2, dw2)
    if db is not grad_b:
        grad_b[...] = db
    if dx_tmp:
        grad_x[...] = dx2.reshape(grad_x.shape)
    if dw_tmp:
        grad_w[...] = dw2
    return grad_x, grad_w, grad_b


cdef int _check_distinct_outs(tuple outs) except -1:
    """Gradients written over one another would be wrong: reject outs sharing memory."""
    cdef int i, j
    for i in range(3):
        for j in range(i + 1, 3):
            if isinstance(outs[i], np.ndarray) and isinstance(outs[j], np.ndarray):
                if _ranges_meet(outs[i], outs[j]) and np.shares_memory(outs[i], outs[j]):
                    raise ValueError(f"linear_backward: out arrays "
                                     f"{('grad_x', 'grad_w', 'grad_b')[i]} and "
                                     f"{('grad_x', 'grad_w', 'grad_b')[j]} share memory")
    return 0


cdef tuple _writable_2d(object out, int64_t rows, int64_t cols, list inputs):
    """(out as a (rows, cols) array the kernel may write, whether it is a temporary):
    a temporary when no view exists or out overlaps an input."""
    v = _view_2d(out, rows, cols)
    if v is None or _overlaps(out, inputs):
        return _empty2(rows, cols, cnp.PyArray_TYPE(<cnp.ndarray>out)), True
    return v, False


cdef int _gemm_pair(cnp.ndarray dy, cnp.ndarray y, int act, double slope, cnp.ndarray db,
                    cnp.ndarray w, object dx, cnp.ndarray x, cnp.ndarray dw) except -1:
    """dx = dz @ w.T (skipped when dx is None) and dw = x.T @ dz, side by side, where
    dz = act'(y) * dy is made as dy is packed, and db = dz summed over rows with it."""
    cdef fastfc_gemm_spec s0, s1
    s0.m = s0.n = s0.k = 0
    s0.dz_operand, s1.dz_operand = 1, 2
    s0.act = s1.act = act
    s0.slope = s1.slope = slope
    s0.y = s1.y = cnp.PyArray_DATA(y)
    s0.rsy = s1.rsy = _es(y, 0)
    s0.csy = s1.csy = _es(y, 1)
    s0.dz_sum, s1.dz_sum = NULL, cnp.PyArray_DATA(db)
    if dx is not None:
        s0.m, s0.n, s0.k = cnp.PyArray_DIMS(dy)[0], cnp.PyArray_DIMS(w)[0], cnp.PyArray_DIMS(dy)[1]
        s0.a, s0.rsa, s0.csa = cnp.PyArray_DATA(dy), _es(dy, 0), _es(dy, 1)
        s0.b, s0.rsb, s0.csb = cnp.PyArray_DATA(w), _es(w, 1), _es(w, 0)
        s0.c, s0.rsc, s0.csc = cnp.PyArray_DATA(<cnp.ndarray>dx), _es(dx, 0), _es(dx, 1)
    s1.m, s1.n, s1.k = cnp.PyArray_DIMS(x)[1], cnp.PyArray_DIMS(dy)[1], cnp.PyArray_DIMS(x)[0]
    s1.a, s1.rsa, s1.csa = cnp.PyArray_DATA(x), _es(x, 1), _es(x, 0)
    s1.b, s1.rsb, s1.csb = cnp.PyArray_DATA(dy), _es(dy, 0), _es(dy, 1)
    s1.c, s1.rsc, s1.csc = cnp.PyArray_DATA(dw), _es(dw, 0), _es(dw, 1)
    cdef int nt = _nthreads, rc
    if cnp.PyArray_TYPE(dw) == cnp.NPY_FLOAT:
        with nogil:
            rc = fastfc_sgemm_pair(nt, &s0, &s1)
    else:
        with nogil:
            rc = fastfc_dgemm_pair(nt, &s0, &s1)
    if rc:
        raise MemoryError("fastfc: out of memory for the GEMM pack buffers")
    return 0


# ---------------------------------------------------------------- dropout

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


def dropout(x, p, *, seed, stream=0, out=None):
    """Inverted dropout: returns ``(y, mask)`` with ``y = x * mask / (1 - p)``.

    Element ``i`` (in C order) is dropped with probability ``p``; the decision is a pure
    function of ``(seed, stream, i)`` (Philox4x32-10), the same for any thread count and
    any CPU. Dropped elements are multiplied by 0, so NaN and Inf stay NaN as in NumPy.

    Examples
    --------
    >>> import numpy as np, fastfc
    >>> y, mask = fastfc.dropout(np.ones(8, np.float32), 0.5, seed=1)
    >>> bool(np.all(y[mask] == 2.0))
    True
    """
    x = _check_kind("x", x)
    cdef double pv = _check_p(p, "dropout")
    cdef uint64_t sd = _check_seed(seed, "seed", "dropout")
    cdef uint64_t st = _check_seed(stream, "stream", "dropout")
    cdef int dt = _result_type([x])
    cdef cnp.ndarray xc = x
    if not (_is_native(xc, dt) and cnp.PyArray_IS_C_CONTIGUOUS(xc) and cnp.PyArray_ISALIGNED(xc)):
        xc = np.array(x, dtype=_dtype(dt), order="C")   # an aligned copy; 0-d stays 0-d
    cdef bint direct = False
    if out is not None:
        _check_out(out, x.shape, dt, "dropout")
        # elementwise, so writing over x itself (same start, same order) is safe
        direct = cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>out) and (
            cnp.PyArray_DATA(<cnp.ndarray>out) == cnp.PyArray_DATA(xc)
            or not _overlaps(out, [xc]))
    cdef cnp.ndarray res = out if direct else \
        cnp.PyArray_EMPTY(cnp.PyArray_NDIM(xc), cnp.PyArray_DIMS(xc), dt, 0)
    cdef cnp.ndarray mask = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(xc), cnp.PyArray_DIMS(xc),
                                              cnp.NPY_BOOL, 0)
    cdef int64_t n = cnp.PyArray_SIZE(xc)
    cdef void *px = cnp.PyArray_DATA(xc)
    cdef void *py = cnp.PyArray_DATA(res)
    cdef uint8_t *pm = <uint8_t *>cnp.PyArray_DATA(mask)
    cdef int nt = _nthreads
    if dt == cnp.NPY_FLOAT:
        with nogil:
            fastfc_sdropout(nt, n, <float *>px, pv, sd, st, <float *>py, pm)
    else:
        with nogil:
            fastfc_ddropout(nt, n, <double *>px, pv, sd, st, <double *>py, pm)
    if out is not None and not direct:
        out[...] = res
        return out, mask
    return res, mask


def dropout_backward(grad_y, mask, p):
    """Gradient of :func:`dropout`: ``grad_y * mask / (1 - p)``."""
    grad_y = _check_kind("grad_y", grad_y)
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
        raise TypeError(f"dropout_backward: mask must be a bool ndarray (from dropout), got "
                        f"{getattr(mask, 'dtype', type(mask).__name__)}")
    if mask.shape != grad_y.shape:
        raise ValueError(f"dropout_backward: mask has shape {mask.shape}, grad_y has shape "
                         f"{grad_y.shape}")
    cdef double pv = _check_p(p, "dropout_backward")
    dt = _dtype(_result_type([grad_y]))
    gc = np.ascontiguousarray(grad_y, dtype=dt)
    mc = np.ascontiguousarray(mask)
    res = np.empty(grad_y.shape, dt)
    cdef int64_t n = gc.size
    cdef void *pg = cnp.PyArray_DATA(gc)
    cdef uint8_t *pm = <uint8_t *>cnp.PyArray_DATA(mc)
    cdef void *pr = cnp.PyArray_DATA(res)
    cdef double scale = 1.0 / (1.0 - pv)
    cdef int nt = _nthreads
    if dt == _F32:
        with nogil:
            fastfc_sdropout_backward(nt, n, <float *>pg, pm, <float>scale, <float *>pr)
    else:
        with nogil:
            fastfc_ddropout_backward(nt, n, <double *>pg, pm, scale, <double *>pr)
    return res


# ---------------------------------------------------------------- training-step kernels
# Private helpers of the model API (fastfc.losses, fastfc.optim): they trust their caller
# for shapes but still refuse what would make C read or write out of bounds.

cdef int _require(object a, str name, int typenum, bint contiguous) except -1:
    if type(a) is not np.ndarray or not _is_native(a, typenum) or not \
            cnp.PyArray_ISWRITEABLE(<cnp.ndarray>a) or (contiguous and not
            cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>a)):
        raise TypeError(f"{name} must be a writeable native {_dtype(typenum)} ndarray"
                        + (" (C-contiguous)" if contiguous else ""))
    return 0


def _softmax_xent(z, labels, grad=None, prob=None, double grad_scale=1.0):
    """Summed softmax cross-entropy of 2-D logits z for int64 labels; writes
    (softmax - onehot) * grad_scale into grad and softmax into prob when given."""
    if type(z) is not np.ndarray or z.ndim != 2:
        raise ValueError("z must be a 2-D ndarray")
    cdef int dt = cnp.PyArray_TYPE(<cnp.ndarray>z)
    if dt != cnp.NPY_FLOAT and dt != cnp.NPY_DOUBLE:
        raise TypeError(f"z must be float32 or float64, got {z.dtype}")
    if z.strides[1] != z.itemsize:
        z = np.ascontiguousarray(z)
    cdef int64_t m = z.shape[0], n = z.shape[1]
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    if labels.shape != (m,):
        raise ValueError(f"labels has shape {labels.shape}, expected ({m},)")
    for name, a in (("grad", grad), ("prob", prob)):
        if a is not None:
            _require(a, name, dt, True)
            if a.shape != (m, n):
                raise ValueError(f"{name} has shape {a.shape}, expected {(m, n)}")
    cdef void *pz = cnp.PyArray_DATA(<cnp.ndarray>z)
    cdef int64_t rs = z.strides[0] // z.itemsize
    cdef int64_t *pl = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>labels)
    cdef void *pg = NULL if grad is None else cnp.PyArray_DATA(<cnp.ndarray>grad)
    cdef void *pp = NULL if prob is None else cnp.PyArray_DATA(<cnp.ndarray>prob)
    cdef double total
    if dt == cnp.NPY_FLOAT:
        with nogil:
            total = fastfc_ssoftmax_xent(m, n, <float *>pz, rs, pl, <float>grad_scale,
                                         <float *>pg, <float *>pp)
    else:
        with nogil:
            total = fastfc_dsoftmax_xent(m, n, <double *>pz, rs, pl, grad_scale,
                                         <double *>pg, <double *>pp)
    if total == -1 and m > 0 and (labels.min() < 0 or labels.max() >= n):
        raise ValueError(f"labels must be in [0, {n}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
    return total


def _labels_in_range(labels, int64_t n):
    """Whether every value of a 1-D C-contiguous int64 array is in [0, n): one pass, where
    min() and max() are two NumPy calls."""
    if type(labels) is not np.ndarray or labels.dtype != np.int64 or labels.ndim != 1 or \
            not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>labels):
        raise TypeError("labels must be a 1-D C-contiguous int64 ndarray")
    cdef const int64_t *p = <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>labels)
    cdef int64_t i, size = labels.shape[0]
    cdef bint ok = True
    with nogil:
        for i in range(size):
            ok &= (<uint64_t>p[i]) < (<uint64_t>n)   # a negative label wraps past n
    return ok


def _all_finite(x):
    """Whether a C-contiguous float32/float64 ndarray holds no NaN and no Inf."""
    if type(x) is not np.ndarray or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>x):
        raise TypeError("x must be a C-contiguous ndarray")
    cdef int dt = cnp.PyArray_TYPE(<cnp.ndarray>x)
    if (dt != cnp.NPY_FLOAT and dt != cnp.NPY_DOUBLE) or cnp.PyArray_ISBYTESWAPPED(x):
        raise TypeError(f"x must be native float32 or float64, got {x.dtype}")
    cdef int64_t n = x.size
    cdef const void *p = cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef int nt = _nthreads, ok
    with nogil:
        if dt == cnp.NPY_FLOAT:
            ok = fastfc_sall_finite(nt, n, <const float *>p)
        else:
            ok = fastfc_dall_finite(nt, n, <const double *>p)
    return bool(ok)


def _adam_update(p, g, m, v, double lr, double beta1, double beta2, double eps,
                 double weight_decay, bint decoupled, int64_t step):
    """One in-place Adam/AdamW step over flat, C-contiguous buffers of one dtype."""
    cdef int dt = cnp.PyArray_TYPE(<cnp.ndarray>p) if type(p) is np.ndarray else -1
    if dt != cnp.NPY_FLOAT and dt != cnp.NPY_DOUBLE:
        raise TypeError("p must be a float32 or float64 ndarray")
    for name, a in (("p", p), ("g", g), ("m", m), ("v", v)):
        _require(a, name, dt, True)
        if a.size != p.size:
            raise ValueError(f"{name} has {a.size} elements, p has {p.size}")
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    cdef int64_t n = p.size
    cdef void *pp = cnp.PyArray_DATA(<cnp.ndarray>p)
    cdef void *pg = cnp.PyArray_DATA(<cnp.ndarray>g)
    cdef void *pm = cnp.PyArray_DATA(<cnp.ndarray>m)
    cdef void *pv = cnp.PyArray_DATA(<cnp.ndarray>v)
    cdef int nt = _nthreads
    if dt == cnp.NPY_FLOAT:
        with nogil:
            fastfc_sadam(nt, n, <float *>pp, <float *>pg, <float *>pm, <float *>pv, lr, beta1,
                         beta2, eps, weight_decay, decoupled, step)
    else:
        with nogil:
            fastfc_dadam(nt, n, <double *>pp, <double *>pg, <double *>pm, <double *>pv, lr,
                         beta1, beta2, eps, weight_decay, decoupled, step)


# ---------------------------------------------------------------- fused MLP passes

from libc.stdlib cimport calloc, free

_LAYER_KINDS = {"dense": FASTFC_LAYER_DENSE, "dropout": FASTFC_LAYER_DROPOUT,
                "act": FASTFC_LAYER_ACT}


cdef void *_data_of(object a, str name, int typenum, tuple shape) except NULL:
    """The data of a C-contiguous writable native ndarray of this dtype and shape."""
    _require(a, name, typenum, True)
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}, expected {shape}")
    return cnp.PyArray_DATA(<cnp.ndarray>a)


cdef class MLPPlan:
    """The layers of a model as C structs over buffers allocated once, for the fused
    forward/backward passes of a training step (private to fastfc.model).

    ``specs`` lists the layers in order: ``{"kind": "dense", "w", "b", "gw", "gb", "act",
    "slope"}`` (b and gb may be None), ``{"kind": "dropout", "features", "p", "seed"}`` or
    ``{"kind": "act", "features", "act", "slope"}``. The plan owns every activation, mask
    and input-gradient buffer; ``output`` is the last layer's and ``grad_output`` the
    buffer for the gradient of the loss with respect to it."""
    cdef fastfc_layer *L
    cdef int n
    cdef int typenum
    cdef readonly int64_t batch, n_in, n_out
    cdef readonly object output, grad_output
    cdef list _keep

    def __cinit__(self, list specs, int64_t batch, dtype):
        self.n = len(specs)
        if self.n == 0 or batch < 1:
            raise ValueError("MLPPlan needs layers and batch >= 1")
        self.typenum = cnp.NPY_FLOAT if np.dtype(dtype) == _F32 else cnp.NPY_DOUBLE
        self.batch = batch
        self.L = <fastfc_layer *>calloc(self.n, sizeof(fastfc_layer))
        if self.L == NULL:
            raise MemoryError()
        self._keep = []
        cdef int i, t = self.typenum
        cdef fastfc_layer *l
        cdef int64_t features = -1
        for i, spec in enumerate(specs):
            l = &self.L[i]
            l.kind = _LAYER_KINDS[spec["kind"]]
            if l.kind == FASTFC_LAYER_DENSE:
                w = spec["w"]
                l.in_, l.out = w.shape
                l.w = _data_of(w, "w", t, (l.in_, l.out))
                l.gw = _data_of(spec["gw"], "gw", t, (l.in_, l.out))
                if spec["b"] is not None:
                    l.b = _data_of(spec["b"], "b", t, (l.out,))
                    l.gb = _data_of(spec["gb"], "gb", t, (l.out,))
                self._keep += [w, spec["gw"], spec["b"], spec["gb"]]
            else:
                l.in_ = l.out = spec["features"]
                if l.kind == FASTFC_LAYER_DROPOUT:
                    l.p = _check_p(spec["p"], "MLPPlan")
                    l.seed = _check_seed(spec["seed"], "seed", "MLPPlan")
            if features >= 0 and l.in_ != features:
                raise ValueError(f"layer {i} takes {l.in_} features, the one before gives "
                                 f"{features}")
            features = l.out
            if l.kind != FASTFC_LAYER_DROPOUT:
                l.act = _activation_code(spec["act"], "MLPPlan")
                l.slope = _slope(spec.get("slope", 0.01), "MLPPlan")
            y = _empty2(batch, l.out, t)
            l.y = cnp.PyArray_DATA(y)
            self._keep.append(y)
            if l.kind == FASTFC_LAYER_DROPOUT:
                mask = np.empty((batch, l.in_), np.uint8)
                l.mask = <uint8_t *>cnp.PyArray_DATA(<cnp.ndarray>mask)
                self._keep.append(mask)
            if l.kind == FASTFC_LAYER_DENSE and i > 0:
                gx = _empty2(batch, l.in_, t)
                l.gx = cnp.PyArray_DATA(gx)
                self._keep.append(gx)
            self.output = y
        self.n_in, self.n_out = self.L[0].in_, features
        self.grad_output = _empty2(batch, features, t)

    def __dealloc__(self):
        free(self.L)

    def set_stream(self, int i, stream):
        """The counter word of dropout layer i's masks for the next forward pass."""
        self.L[i].stream = _check_seed(stream, "stream", "MLPPlan.set_stream")

    cdef const void *_input(self, x) except NULL:
        if type(x) is not np.ndarray or not _is_native(x, self.typenum) or \
                not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>x):
            raise TypeError(f"x must be a C-contiguous native {_dtype(self.typenum)} ndarray")
        if x.shape != (self.batch, self.n_in):
            raise ValueError(f"x has shape {x.shape}, expected {(self.batch, self.n_in)}")
        return cnp.PyArray_DATA(<cnp.ndarray>x)

    def forward(self, x):
        """Training-mode forward pass; returns ``output``."""
        cdef const void *px = self._input(x)
        cdef int nt = _nthreads, rc
        with nogil:
            if self.typenum == cnp.NPY_FLOAT:
                rc = fastfc_smlp_forward(nt, self.batch, <const float *>px, self.n, self.L)
            else:
                rc = fastfc_dmlp_forward(nt, self.batch, <const double *>px, self.n, self.L)
        if rc:
            raise MemoryError("fastfc: out of memory for the GEMM pack buffers")
        return self.output

    def backward(self, x):
        """Gradients of every parameter from ``grad_output`` (consumed) after ``forward(x)``."""
        cdef const void *px = self._input(x)
        cdef void *pg = cnp.PyArray_DATA(<cnp.ndarray>self.grad_output)
        cdef int nt = _nthreads, rc
        with nogil:
            if self.typenum == cnp.NPY_FLOAT:
                rc = fastfc_smlp_backward(nt, self.batch, <const float *>px, <float *>pg,
                                          self.n, self.L)
            else:
                rc = fastfc_dmlp_backward(nt, self.batch, <const double *>px, <double *>pg,
                                          self.n, self.L)
        if rc:
            raise MemoryError("fastfc: out of memory for the GEMM pack buffers")

    def xent_step(self, x, labels):
        """forward, mean softmax cross-entropy against int64 labels, backward; the loss."""
        cdef const void *px = self._input(x)
        if type(labels) is not np.ndarray or labels.dtype != np.int64 or \
                labels.shape != (self.batch,) or not labels.flags.c_contiguous:
            raise TypeError(f"labels must be a C-contiguous int64 array of shape "
                            f"({self.batch},)")
        cdef const int64_t *pl = <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>labels)
        cdef void *pg = cnp.PyArray_DATA(<cnp.ndarray>self.grad_output)
        cdef int nt = _nthreads, rc
        cdef double loss = 0
        with nogil:
            if self.typenum == cnp.NPY_FLOAT:
                rc = fastfc_smlp_xent_step(nt, self.batch, <const float *>px, pl, <float *>pg,
                                           self.n, self.L, &loss)
            else:
                rc = fastfc_dmlp_xent_step(nt, self.batch, <const double *>px, pl,
                                           <double *>pg, self.n, self.L, &loss)
        if rc == -2:
            raise ValueError(f"labels must be in [0, {self.n_out}), got values in "
                             f"[{labels.min()}, {labels.max()}]")
        if rc:
            raise MemoryError("fastfc: out of memory for the GEMM pack buffers")
        return loss
