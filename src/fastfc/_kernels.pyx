# cython: language_level=3, cdivision=True
"""The Cython boundary: check every argument with the GIL held, then one C call without it."""
import os
import warnings

import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t

cnp.import_array()

cdef extern from *:
    """
    #include <omp.h>
    static int fastfc_openmp_version(void) { return _OPENMP; }
    """
    int fastfc_openmp_version()
    int omp_get_max_threads() nogil

ISA_NAMES = ("generic", "avx2", "avx512")
ACTIVATIONS = {"identity": FASTFC_ACT_IDENTITY, "relu": FASTFC_ACT_RELU,
               "leaky_relu": FASTFC_ACT_LEAKY_RELU, "sigmoid": FASTFC_ACT_SIGMOID,
               "tanh": FASTFC_ACT_TANH}


def _init_isa():
    wanted = os.environ.get("FASTFC_ISA", "").strip().lower()
    best = fastfc_cpu_best_isa()
    if not wanted:
        return ISA_NAMES[fastfc_init(best)]
    if wanted not in ISA_NAMES:
        warnings.warn(f"FASTFC_ISA={wanted!r} is not one of {ISA_NAMES}; using "
                      f"{ISA_NAMES[best]!r}", RuntimeWarning, stacklevel=2)
        return ISA_NAMES[fastfc_init(best)]
    if ISA_NAMES.index(wanted) > best:
        warnings.warn(f"FASTFC_ISA={wanted!r} is not supported by this CPU; using "
                      f"{ISA_NAMES[best]!r}", RuntimeWarning, stacklevel=2)
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
    """Set the number of OpenMP threads fastfc kernels may use (>= 1)."""
    global _nthreads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
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
        "threads": _nthreads,
        "openmp": f"OpenMP {fastfc_openmp_version()}",
        "blocks_float32": dict(zip(names, [s[i] for i in range(5)])),
        "blocks_float64": dict(zip(names, [d[i] for i in range(5)])),
    }


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

cdef object _F32 = np.dtype(np.float32)
cdef object _F64 = np.dtype(np.float64)


cdef object _check_kind(str name, object a):
    """a as an ndarray of a real numeric dtype, else TypeError."""
    if not isinstance(a, np.ndarray):
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


cdef object _result_dtype(list arrays):
    """NumPy promotion; integers and bools compute in float64, float16 in float32."""
    cdef bint all32 = True, all64 = True
    for a in arrays:
        all32 = all32 and a.dtype == _F32
        all64 = all64 and a.dtype == _F64
    if all32:
        return _F32
    if all64:
        return _F64
    dt = np.result_type(*arrays)
    if dt.kind != "f":
        return _F64
    return _F32 if dt.itemsize <= 4 else _F64


cdef object _operand(object a, object dtype):
    """a in `dtype`, native byte order, strides a whole number of elements."""
    if a.dtype != dtype or not a.dtype.isnative:
        return a.astype(dtype)
    cdef Py_ssize_t item = a.itemsize
    if <size_t>cnp.PyArray_DATA(a) % item:
        return np.ascontiguousarray(a)
    for s in a.strides:
        if s % item:
            return np.ascontiguousarray(a)
    return a


cdef inline int64_t _es(object a, int axis):
    return a.strides[axis] // a.itemsize


cdef object _check_out(object out, tuple shape, object dtype, str fn):
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{fn}: out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"{fn}: out has shape {out.shape}, expected {shape}")
    if out.dtype != dtype or not out.dtype.isnative:
        raise TypeError(f"{fn}: out has dtype {out.dtype}, expected {dtype} (native byte order)")
    if not out.flags.writeable:
        raise ValueError(f"{fn}: out is read-only")
    if out.size > 1:
        for s, n in zip(out.strides, out.shape):
            if s == 0 and n > 1:
                raise ValueError(f"{fn}: out has a zero stride (a broadcast view); its "
                                 f"elements overlap")
    if <size_t>cnp.PyArray_DATA(out) % out.itemsize or any(s % out.itemsize for s in out.strides):
        raise ValueError(f"{fn}: out is not aligned to its dtype")
    return out


cdef bint _overlaps(object out, list inputs):
    for a in inputs:
        if a is not None and np.may_share_memory(out, a):
            return True
    return False


cdef int _activation_code(object activation, str fn):
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
    if isinstance(v, (complex, np.complexfloating)):
        raise TypeError(f"{fn}: {name} must be a real number, got {v!r}")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{fn}: {name} must be a real number, got {type(v).__name__}") from None


cdef object _view_2d(object a, int64_t rows, int64_t cols):
    """A (rows, cols) view of a, or None when its strides allow none."""
    if a.ndim == 2:
        return a
    try:
        v = a.view()
        v.shape = (rows, cols)
        return v
    except AttributeError:
        return None


cdef object _as_2d(object a, int64_t rows, int64_t cols):
    """A (rows, cols) view of a when its strides allow, else a copy."""
    v = _view_2d(a, rows, cols)
    return a.reshape(rows, cols) if v is None else v


# ---------------------------------------------------------------- the GEMM call

cdef int _gemm_call(object a, bint ta, object b, bint tb, double alpha, double beta,
                    object c, object bias, int act, double slope) except -1:
    """c = act(alpha*op(a)@op(b) + beta*c + bias) for 2-D arrays already checked."""
    cdef int64_t m = c.shape[0], n = c.shape[1]
    cdef int64_t k = a.shape[0] if ta else a.shape[1]
    cdef int64_t rsa = _es(a, 1 if ta else 0), csa = _es(a, 0 if ta else 1)
    cdef int64_t rsb = _es(b, 1 if tb else 0), csb = _es(b, 0 if tb else 1)
    cdef int64_t rsc = _es(c, 0), csc = _es(c, 1)
    cdef void *pa = cnp.PyArray_DATA(a)
    cdef void *pb = cnp.PyArray_DATA(b)
    cdef void *pc = cnp.PyArray_DATA(c)
    cdef void *pbias = NULL if bias is None else cnp.PyArray_DATA(bias)
    cdef int nt = _nthreads, rc
    if c.dtype == _F32:
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


cdef object _gemm_into(object a, bint ta, object b, bint tb, double alpha, double beta,
                       object out, object bias, int act, double slope, list inputs):
    """Run the GEMM into `out`, through a temporary when out overlaps an input."""
    if _overlaps(out, inputs):
        tmp = out.copy() if beta != 0 else np.empty(out.shape, out.dtype)
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
    ta, tb = bool(trans_a), bool(trans_b)
    m, ka = (a.shape[1], a.shape[0]) if ta else a.shape
    kb, n = (b.shape[1], b.shape[0]) if tb else b.shape
    if ka != kb:
        raise ValueError(f"gemm: inner dimensions differ: op(a) is ({m}, {ka}), "
                         f"op(b) is ({kb}, {n}) (a {a.shape}, b {b.shape}, "
                         f"trans_a={ta}, trans_b={tb})")
    dt = _result_dtype([a, b])
    if out is None:
        if be != 0:
            raise ValueError(f"gemm: beta={beta} needs out= (the matrix it scales)")
        out = np.empty((m, n), dt)
        return _gemm_into(_operand(a, dt), ta, _operand(b, dt), tb, al, 0.0, out, None,
                          FASTFC_ACT_IDENTITY, 0.0, [])
    _check_out(out, (m, n), dt, "gemm")
    return _gemm_into(_operand(a, dt), ta, _operand(b, dt), tb, al, be, out, None,
                      FASTFC_ACT_IDENTITY, 0.0, [a, b])


cdef tuple _linear_shapes(object x, object w, str fn):
    if x.ndim < 1:
        raise ValueError(f"{fn}: x must have at least 1 dimension, got a scalar")
    if w.ndim != 2:
        raise ValueError(f"{fn}: w must be 2-D (in_features, out_features), got shape {w.shape}")
    if x.shape[-1] != w.shape[0]:
        raise ValueError(f"{fn}: x has {x.shape[-1]} features (shape {x.shape}) but w "
                         f"expects {w.shape[0]} (shape {w.shape})")
    return x.shape[:-1], w.shape[0], w.shape[1]


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
    >>> fastfc.linear(np.ones((2, 3)), np.ones((3, 4)), np.zeros(4), activation="relu")[0, 0]
    3.0
    """
    x = _check_kind("x", x)
    w = _check_kind("w", w)
    cdef int act = _activation_code(activation, "linear")
    cdef double slope = _real(negative_slope, "negative_slope", "linear")
    batch, nin, nout = _linear_shapes(x, w, "linear")
    arrays = [x, w]
    if b is not None:
        b = _check_kind("b", b)
        if b.shape != (nout,):
            raise ValueError(f"linear: b must have shape ({nout},) to match w {w.shape}, "
                             f"got {b.shape}")
        arrays.append(b)
    dt = _result_dtype(arrays)
    cdef int64_t rows = 1
    for s in batch:
        rows *= s
    x2 = _as_2d(_operand(x, dt), rows, nin)
    wd = _operand(w, dt)
    bd = None if b is None else np.ascontiguousarray(b, dtype=dt)
    shape = batch + (nout,)
    if out is None:
        res = np.empty(shape, dt)
        _gemm_into(x2, False, wd, False, 1.0, 0.0, res.reshape(rows, nout), bd, act, slope, [])
        return res
    _check_out(out, shape, dt, "linear")
    out2 = _view_2d(out, rows, nout)
    if out2 is None:  # strides that no 2-D view can express
        tmp = np.empty((rows, nout), dt)
        _gemm_into(x2, False, wd, False, 1.0, 0.0, tmp, bd, act, slope, [])
        out[...] = tmp.reshape(shape)
        return out
    _gemm_into(x2, False, wd, False, 1.0, 0.0, out2, bd, act, slope, arrays)
    return out


def linear_backward(grad_y, x, w, *, y=None, activation=None, negative_slope=0.01):
    """Gradients of ``y = act(x @ w + b)``: returns ``(grad_x, grad_w, grad_b)``.

    The activation derivative is computed from the forward output ``y``, which is
    required unless the activation is the identity.

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
    cdef double slope = _real(negative_slope, "negative_slope", "linear_backward")
    batch, nin, nout = _linear_shapes(x, w, "linear_backward")
    shape = batch + (nout,)
    if grad_y.shape != shape:
        raise ValueError(f"linear_backward: grad_y has shape {grad_y.shape}, expected {shape} "
                         f"from x {x.shape} and w {w.shape}")
    arrays = [grad_y, x, w]
    if act != FASTFC_ACT_IDENTITY:
        if y is None:
            raise ValueError(f"linear_backward: activation={activation!r} needs y=, the "
                             f"forward output")
        y = _check_kind("y", y)
        if y.shape != shape:
            raise ValueError(f"linear_backward: y has shape {y.shape}, expected {shape}")
        arrays.append(y)
    dt = _result_dtype(arrays)
    cdef int64_t rows = 1
    for s in batch:
        rows *= s
    x2 = _as_2d(_operand(x, dt), rows, nin)
    wd = _operand(w, dt)
    gy2 = _as_2d(_operand(grad_y, dt), rows, nout)
    grad_b = np.empty(nout, dt)
    if act == FASTFC_ACT_IDENTITY:
        dz = gy2
        _act_backward(gy2, gy2, act, slope, None, grad_b)
    else:
        dz = np.empty((rows, nout), dt)
        _act_backward(gy2, _as_2d(_operand(y, dt), rows, nout), act, slope, dz, grad_b)
    grad_x = np.empty(batch + (nin,), dt)
    grad_w = np.empty((nin, nout), dt)
    _gemm_call(dz, False, wd, True, 1.0, 0.0, grad_x.reshape(rows, nin), None,
               FASTFC_ACT_IDENTITY, 0.0)
    _gemm_call(x2, True, dz, False, 1.0, 0.0, grad_w, None, FASTFC_ACT_IDENTITY, 0.0)
    return grad_x, grad_w, grad_b


cdef int _act_backward(object dy, object y, int act, double slope, object dz,
                       object db) except -1:
    cdef int64_t m = dy.shape[0], n = dy.shape[1]
    cdef int64_t rdy = _es(dy, 0), cdy = _es(dy, 1), ry = _es(y, 0), cy = _es(y, 1)
    cdef void *pdy = cnp.PyArray_DATA(dy)
    cdef void *py = cnp.PyArray_DATA(y)
    cdef void *pdz = NULL if dz is None else cnp.PyArray_DATA(dz)
    cdef void *pdb = cnp.PyArray_DATA(db)
    cdef int nt = _nthreads
    if db.dtype == _F32:
        with nogil:
            fastfc_sact_backward(nt, m, n, <float *>pdy, rdy, cdy, <float *>py, ry, cy, act,
                                 <float>slope, <float *>pdz, <float *>pdb)
    else:
        with nogil:
            fastfc_dact_backward(nt, m, n, <double *>pdy, rdy, cdy, <double *>py, ry, cy, act,
                                 slope, <double *>pdz, <double *>pdb)
    return 0


# ---------------------------------------------------------------- dropout

cdef double _check_p(object p, str fn) except? -1:
    cdef double v = _real(p, "p", fn)
    if not (0.0 <= v < 1.0):
        raise ValueError(f"{fn}: p must be in [0, 1), got {p!r}")
    return v


cdef uint64_t _check_seed(object seed, str name, str fn) except? 0:
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
    dt = _result_dtype([x])
    xc = np.ascontiguousarray(x, dtype=dt)
    if out is not None:
        _check_out(out, x.shape, dt, "dropout")
    direct = out is not None and out.flags.c_contiguous and (
        out is xc or not np.may_share_memory(out, xc)
        or (cnp.PyArray_DATA(out) == cnp.PyArray_DATA(xc)))
    res = out if direct else np.empty(x.shape, dt)
    mask = np.empty(x.shape, np.bool_)
    cdef int64_t n = xc.size
    cdef void *px = cnp.PyArray_DATA(xc)
    cdef void *py = cnp.PyArray_DATA(res)
    cdef uint8_t *pm = <uint8_t *>cnp.PyArray_DATA(mask)
    cdef int nt = _nthreads
    if dt == _F32:
        with nogil:
            fastfc_sdropout(nt, n, <float *>px, pv, sd, st, <float *>py, pm)
    else:
        with nogil:
            fastfc_ddropout(nt, n, <double *>px, pv, sd, st, <double *>py, pm)
    if out is not None and not direct:
        out[...] = res
        res = out
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
    dt = _result_dtype([grad_y])
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
