# cython: language_level=3, cdivision=True
"""gemm, linear and linear_backward: checks with the GIL, then one C call without it."""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memset

from fastfc._core.capi cimport *
from fastfc._core._args cimport (
    _check_kind, _is_native, _result_type, _dtype, _operand, _es, _empty1, _empty2, _check_out, _ranges_meet, _overlaps, _activation_code, _real, _slope, _flag, _view_2d, _as_2d)
from fastfc._core._config cimport num_threads

cnp.import_array()

cdef object _packing = None   # fastfc.packing, imported on first use (it imports fastfc._core)


cdef tuple _packed(object w, str fn, str name):
    """(data, compute type number) when w is PackedWeights or an ml_dtypes.bfloat16 array,
    else None. data: float or bfloat16 (uint16 bits) panels (3-D, pack_panels' layout), or
    the (k, n) floats or bfloat16 bits, row-major."""
    global _packing
    if type(w) is np.ndarray and (cnp.PyArray_TYPE(<cnp.ndarray>w) == cnp.NPY_FLOAT or
                                  cnp.PyArray_TYPE(<cnp.ndarray>w) == cnp.NPY_DOUBLE):
        return None
    if _packing is None:
        from fastfc import packing
        _packing = packing
    dt = getattr(w, "dtype", None)
    if isinstance(dt, np.dtype) and _packing._is_bfloat16(dt):
        if w.ndim != 2:
            raise ValueError(f"{fn}: {name} must be 2-D (in_features, out_features), got "
                             f"shape {w.shape}")
        return np.ascontiguousarray(w).view(np.uint16), cnp.NPY_FLOAT
    if not isinstance(w, _packing.PackedWeights):
        return None
    return w._data, (cnp.NPY_DOUBLE if w.storage == "float64" else cnp.NPY_FLOAT)


cdef int _check_compute_dtype(cnp.ndarray a, int dt, str fn, str name, object w) except -1:
    """Packed weights compute in one dtype: a (x, or a bias that would promote it) must
    have it, in either byte order; nothing is promoted."""
    if cnp.PyArray_TYPE(a) != dt:
        what = w.storage if hasattr(w, "storage") else str(w.dtype)
        raise TypeError(f"{fn}: {name} has dtype {a.dtype} but the {what} weights {w.shape} "
                        f"compute in {_dtype(dt)}; pass {name}.astype(np.{_dtype(dt)})")
    return 0


cdef int _gemm_call(cnp.ndarray a, bint ta, cnp.ndarray b, bint tb, double alpha,
                    double beta, cnp.ndarray c, object bias, int act,
                    double slope) except -1:
    """c = act(alpha*op(a)@op(b) + beta*c + bias) for 2-D arrays already checked."""
    return _gemm_ptrs(cnp.PyArray_DIMS(c)[0], cnp.PyArray_DIMS(c)[1],
                      cnp.PyArray_DIMS(a)[0] if ta else cnp.PyArray_DIMS(a)[1],
                      cnp.PyArray_DATA(a), _es(a, 1 if ta else 0), _es(a, 0 if ta else 1),
                      b, tb, alpha, beta, cnp.PyArray_DATA(c), _es(c, 0), _es(c, 1),
                      cnp.PyArray_TYPE(c), bias, act, slope)


cdef int _gemm_ptrs(int64_t m, int64_t n, int64_t k, void *pa, int64_t rsa, int64_t csa,
                    cnp.ndarray b, bint tb, double alpha, double beta, void *pc, int64_t rsc,
                    int64_t csc, int ctype, object bias, int act, double slope) except -1:
    """The same from A's and C's pointers and element strides (C of type ctype): a 1-D x
    and its result need no 2-D views."""
    cdef int64_t rsb = _es(b, 1 if tb else 0), csb = _es(b, 0 if tb else 1)
    cdef void *pb = cnp.PyArray_DATA(b)
    cdef void *pbias = NULL if bias is None else cnp.PyArray_DATA(<cnp.ndarray>bias)
    cdef int nt = num_threads(), rc
    cdef int nr
    if cnp.PyArray_NDIM(b) == 3:   # packed panels (P, k, nr): fastfc.pack's weights
        nr = <int>cnp.PyArray_DIMS(b)[2]
        if cnp.PyArray_TYPE(b) == cnp.NPY_UINT16:   # bfloat16 bits
            with nogil:
                rc = fastfc_sgemm_bf16_panels(nt, m, n, k, <float>alpha, <float *>pa, rsa, csa,
                                              <uint16_t *>pb, nr, <float>beta, <float *>pc,
                                              rsc, csc, <float *>pbias, act, <float>slope)
        elif ctype == cnp.NPY_FLOAT:
            with nogil:
                rc = fastfc_sgemm_panels(nt, m, n, k, <float>alpha, <float *>pa, rsa, csa,
                                         <float *>pb, nr, <float>beta, <float *>pc, rsc, csc,
                                         <float *>pbias, act, <float>slope)
        else:
            with nogil:
                rc = fastfc_dgemm_panels(nt, m, n, k, alpha, <double *>pa, rsa, csa,
                                         <double *>pb, nr, beta, <double *>pc, rsc, csc,
                                         <double *>pbias, act, slope)
        if rc == -2:
            raise RuntimeError(f"fastfc: weights packed in panels {nr} wide, this path reads "
                               f"{_panel_width(ctype)}: pack them again")
    elif cnp.PyArray_TYPE(b) == cnp.NPY_UINT16:   # bfloat16 weights, row-major (k, n)
        with nogil:
            rc = fastfc_sgemm_bf16(nt, m, n, k, <float>alpha, <float *>pa, rsa, csa,
                                   <uint16_t *>pb, rsb, <float>beta, <float *>pc, rsc, csc,
                                   <float *>pbias, act, <float>slope)
    elif ctype == cnp.NPY_FLOAT:
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


cdef int _panel_width(int typenum):
    return fastfc_dpanel_width() if typenum == cnp.NPY_DOUBLE else fastfc_spanel_width()


def panel_width(dtype):
    """Columns per panel of packed float weights on this path (for `dtype`)."""
    return _panel_width(cnp.NPY_DOUBLE if np.dtype(dtype) == np.float64 else cnp.NPY_FLOAT)


def pack_panels(w, out):
    """w (k, n), float32 or float64, any strides, into `out`: a writeable, C-contiguous,
    aligned native float32 or float64 array of shape (ceil(n / nr), k, nr), nr the path's
    panel width for its dtype, which ``fastfc_?gemm_panels`` reads (columns past n 0)."""
    if type(out) is not np.ndarray or not _is_native(out, cnp.NPY_FLOAT) and \
            not _is_native(out, cnp.NPY_DOUBLE):
        raise TypeError(f"pack_panels: out must be a native float32 or float64 ndarray, got "
                        f"{type(out).__name__} {getattr(out, 'dtype', '')}")
    cdef cnp.ndarray o = out
    cdef int dt = cnp.PyArray_TYPE(o)
    if not (cnp.PyArray_IS_C_CONTIGUOUS(o) and cnp.PyArray_ISALIGNED(o) and
            cnp.PyArray_ISWRITEABLE(o)):
        raise ValueError("pack_panels: out must be writeable, aligned and C-contiguous")
    w = _check_kind("w", w)
    if w.ndim != 2:
        raise ValueError(f"pack_panels: w must be 2-D, got shape {w.shape}")
    cdef cnp.ndarray a = _operand(w, dt)
    cdef int64_t k = cnp.PyArray_DIMS(a)[0], n = cnp.PyArray_DIMS(a)[1]
    cdef int nr = _panel_width(dt)
    if tuple(out.shape) != ((n + nr - 1) // nr, k, nr):
        raise ValueError(f"pack_panels: out must have shape {((n + nr - 1) // nr, k, nr)} "
                         f"for w {w.shape}, got {out.shape}")
    cdef int64_t rsa = _es(a, 0), csa = _es(a, 1)
    cdef void *pa = cnp.PyArray_DATA(a)
    cdef void *po = cnp.PyArray_DATA(o)
    if dt == cnp.NPY_FLOAT:
        with nogil:
            fastfc_spack_panels(<float *>pa, rsa, csa, k, n, <float *>po)
    else:
        with nogil:
            fastfc_dpack_panels(<double *>pa, rsa, csa, k, n, <double *>po)
    return out


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
        Operands; any strides and memory order; integers promote to float64. `b` may be
        ``fastfc.pack``'s PackedWeights or an ``ml_dtypes.bfloat16`` array (then `a` must
        have its compute dtype, float32 for bfloat16, and `trans_b` be False).
    trans_a, trans_b : bool, default False
        ``op(a)`` is ``a.T`` when `trans_a` (``op(b)`` likewise), read in place.
    alpha, beta : float
        Scalars. ``out`` is not read when ``beta == 0`` (NaN in it does not propagate).
    out : ndarray, optional
        Written in place, shape ``(m, n)`` and the result dtype; needed when ``beta != 0``.

    Returns
    -------
    ndarray of shape (m, n)
        The product in the promoted dtype of `a` and `b` (float32 or float64); `out`
        when given.

    Raises
    ------
    ValueError
        Operands not 2-D, inner dimensions that differ, ``beta != 0`` without `out`, or
        an `out` of the wrong shape.
    TypeError
        A non-numeric dtype, or an `out` of another dtype.

    Examples
    --------
    >>> import numpy as np, fastfc
    >>> fastfc.gemm(np.ones((2, 3)), np.ones((3, 4))).shape
    (2, 4)
    """
    a = _check_kind("a", a)
    pb = _packed(b, "gemm", "b")
    b_in = b
    b = _check_kind("b", b) if pb is None else pb[0]
    if a.ndim != 2:
        raise ValueError(f"gemm: a must be 2-D, got shape {a.shape}")
    panels = pb is not None and b.ndim == 3
    bshape = b_in.shape if panels else b.shape   # packed panels: the weights' shape
    if not panels and b.ndim != 2:
        raise ValueError(f"gemm: b must be 2-D, got shape {b.shape}")
    cdef double al = _real(alpha, "alpha", "gemm"), be = _real(beta, "beta", "gemm")
    cdef bint ta = _flag(trans_a, "trans_a", "gemm"), tb = _flag(trans_b, "trans_b", "gemm")
    if pb is not None and tb:
        what = "packed b" if hasattr(b_in, "storage") else "a bfloat16 b"
        raise ValueError(f"gemm: {what} (shape {bshape}) is taken as (k, n): trans_b must "
                         f"be False (transpose the array before packing or passing it)")
    cdef cnp.npy_intp *da = cnp.PyArray_DIMS(<cnp.ndarray>a)
    cdef cnp.npy_intp m = da[1] if ta else da[0], ka = da[0] if ta else da[1]
    cdef cnp.npy_intp kb = bshape[1] if tb else bshape[0], n = bshape[0] if tb else bshape[1]
    if ka != kb:
        raise ValueError(f"gemm: inner dimensions differ: op(a) is ({m}, {ka}), "
                         f"op(b) is ({kb}, {n}) (a {a.shape}, b {bshape}, "
                         f"trans_a={ta}, trans_b={tb})")
    cdef int dt
    if pb is None:
        dt = _result_type([a, b])
    else:
        dt = pb[1]
        _check_compute_dtype(a, dt, "gemm", "a", b_in)
    if out is None:
        if be != 0:
            raise ValueError(f"gemm: beta={beta} needs out= (the matrix it scales)")
        return _gemm_into(_operand(a, dt), ta, b if pb else _operand(b, dt), tb, al, 0.0,
                          _empty2(m, n, dt), None, FASTFC_ACT_IDENTITY, 0.0, None)
    _check_out(out, (m, n), dt, "gemm")
    return _gemm_into(_operand(a, dt), ta, b if pb else _operand(b, dt), tb, al, be, out, None,
                      FASTFC_ACT_IDENTITY, 0.0, [a, b])


cdef int _check_linear_shapes(object x, object w, str fn) except -1:
    if cnp.PyArray_NDIM(<cnp.ndarray>x) < 1:
        raise ValueError(f"{fn}: x must have at least 1 dimension, got a scalar")
    if w.ndim != 2:   # an ndarray or PackedWeights
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
        Leading axes are batch axes (a Dense over the channels of an ``(N, H, W, C)`` map
        is a 1x1 convolution).
    w : array_like or PackedWeights, shape (in_features, out_features)
        ``fastfc.pack(w)`` packs once what each call would otherwise convert; bfloat16
        weights (packed, or an ``ml_dtypes.bfloat16`` array) compute in float32 within
        the bound in ``PackedWeights``' docstring. With packed weights, `x` must have
        their compute dtype, and a float array `b` no wider a dtype (``TypeError``
        otherwise: the result would not be promoted); other biases are cast to it.
        A PyTorch (out, in) weight passed as ``w.T`` is transposed on every call, which
        at batch 1 reads W slower than NumPy's gemv: pack it once, ``fastfc.pack(w.T)``.
    b : array_like, shape (out_features,), optional
    activation : {None, "identity", "relu", "leaky_relu", "sigmoid", "tanh"}
        Applied to ``x @ w + b`` while the output tile is in registers.
    out : ndarray, shape (..., out_features), optional
        Written in place (any strides), in the result dtype.
    negative_slope : float, default 0.01
        Slope of ``leaky_relu`` for negative inputs.

    Returns
    -------
    ndarray, shape (..., out_features)
        In the promoted dtype of the inputs (float32 or float64); `out` when given.

    Raises
    ------
    ValueError
        Shapes that do not match (naming both), or an unknown activation.
    TypeError
        A non-numeric dtype, or an `out` of another dtype.

    Examples
    --------
    >>> import numpy as np, fastfc
    >>> float(fastfc.linear(np.ones((2, 3)), np.ones((3, 4)), np.zeros(4), activation="relu")[0, 0])
    3.0
    """
    x = _check_kind("x", x)
    pw = _packed(w, "linear", "w")
    w_in = w
    w = _check_kind("w", w) if pw is None else pw[0]
    cdef int act = _activation_code(activation, "linear")
    cdef double slope = _slope(negative_slope, "linear")
    cdef bint panels = pw is not None and cnp.PyArray_NDIM(<cnp.ndarray>w) == 3
    _check_linear_shapes(x, w_in if panels else w, "linear")
    cdef cnp.npy_intp nin, nout
    if panels:
        nin, nout = w_in.shape
    else:
        nin = cnp.PyArray_DIMS(<cnp.ndarray>w)[0]
        nout = cnp.PyArray_DIMS(<cnp.ndarray>w)[1]
    arrays = [x, w]
    cdef bint b_float_array = isinstance(b, np.ndarray) and b.dtype.kind == "f"
    if b is not None:
        b = _check_kind("b", b)
        if cnp.PyArray_NDIM(<cnp.ndarray>b) != 1 or cnp.PyArray_DIMS(<cnp.ndarray>b)[0] != nout:
            raise ValueError(f"linear: b must have shape ({nout},) to match w "
                             f"{w_in.shape if panels else w.shape}, "
                             f"got {b.shape}")
        arrays.append(b)
    cdef int dt
    if pw is None:
        dt = _result_type(arrays)
    else:   # the packed weights' dtype; a list, ints or a narrower float bias is cast
        dt = pw[1]
        _check_compute_dtype(x, dt, "linear", "x", w_in)
        if b_float_array and b.itemsize > cnp.PyArray_ITEMSIZE(<cnp.ndarray>x):
            _check_compute_dtype(b, dt, "linear", "b", w_in)
    cdef int64_t rows = _batch_rows(x)
    xo = _operand(x, dt)
    wd = _operand(w, dt) if pw is None else w
    bd = None
    if b is not None:
        bd = _operand(b, dt)
        if cnp.PyArray_STRIDES(<cnp.ndarray>bd)[0] != cnp.PyArray_ITEMSIZE(<cnp.ndarray>bd):
            bd = np.ascontiguousarray(bd)
    cdef cnp.ndarray res
    if out is None and cnp.PyArray_NDIM(<cnp.ndarray>x) == 1:   # one sample: no 2-D views
        res = _empty1(nout, dt)
        _gemm_ptrs(1, nout, nin, cnp.PyArray_DATA(<cnp.ndarray>xo), nin,
                   _es(<cnp.ndarray>xo, 0), wd, False, 1.0, 0.0, cnp.PyArray_DATA(res), nout,
                   1, dt, bd, act, slope)
        return res
    x2 = _as_2d(xo, rows, nin)
    if out is None:
        if cnp.PyArray_NDIM(<cnp.ndarray>x) == 2:
            return _gemm_into(x2, False, wd, False, 1.0, 0.0, _empty2(rows, nout, dt), bd,
                              act, slope, None)
        res = np.empty(x.shape[:-1] + (nout,), _dtype(dt))
        _gemm_into(x2, False, wd, False, 1.0, 0.0, res.reshape(rows, nout), bd, act, slope,
                   None)
        return res
    if not (type(out) is np.ndarray and cnp.PyArray_NDIM(<cnp.ndarray>out) == 2 and
            cnp.PyArray_NDIM(<cnp.ndarray>x) == 2 and
            cnp.PyArray_DIMS(<cnp.ndarray>out)[0] == rows and
            cnp.PyArray_DIMS(<cnp.ndarray>out)[1] == nout):   # else the shapes' tuples
        _check_out(out, x.shape[:-1] + (nout,), dt, "linear")
    else:
        _check_out(out, None, dt, "linear")
    out2 = _view_2d(out, rows, nout)
    if out2 is None:  # strides that no 2-D view can express
        tmp = _empty2(rows, nout, dt)
        _gemm_into(x2, False, wd, False, 1.0, 0.0, tmp, bd, act, slope, None)
        out[...] = tmp.reshape(out.shape)
        return out
    _gemm_into(x2, False, wd, False, 1.0, 0.0, out2, bd, act, slope, arrays)
    return out


def linear_backward(grad_y, x, w, *, y=None, activation=None, negative_slope=0.01,
                    out=None, compute_grad_x=True):
    """Gradients of ``y = act(x @ w + b)`` with respect to `x`, `w` and `b`.

    The activation derivative is computed from the forward output `y` (``dz = act'(y) *
    grad_y``, made while `grad_y` is packed), so nothing else of the forward pass is kept.

    Parameters
    ----------
    grad_y : array_like, shape (..., out_features)
        Gradient of the loss with respect to the layer's output.
    x : array_like, shape (..., in_features)
        The forward pass's input.
    w : array_like or float PackedWeights, shape (in_features, out_features)
        bfloat16 weights are for inference only (``TypeError``); with packed float weights,
        `grad_y`, `x` and `y` must have their compute dtype (``TypeError``), as in `linear`.
    y : array_like, shape (..., out_features), optional
        The forward output; required unless the activation is the identity.
    activation : {None, "identity", "relu", "leaky_relu", "sigmoid", "tanh"}
        The forward pass's activation.
    negative_slope : float, default 0.01
        Slope of ``leaky_relu`` for negative inputs.
    out : tuple (grad_x, grad_w, grad_b), optional
        Arrays (or None) to write the gradients into, in place.
    compute_grad_x : bool, default True
        False skips ``grad_x`` (a first layer needs none).

    Returns
    -------
    grad_x : ndarray, shape (..., in_features), or None
        None when `compute_grad_x` is False.
    grad_w : ndarray, shape (in_features, out_features)
    grad_b : ndarray, shape (out_features,)
        ``dz`` summed over the batch axes.

    Raises
    ------
    ValueError
        Shapes that do not match, a non-identity activation without `y`, or `out` arrays
        that share memory.
    TypeError
        A non-numeric dtype, an array of another dtype than packed weights compute in,
        or `out` that is not a 3-tuple of ndarrays or None.

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
    pw = _packed(w, "linear_backward", "w")
    if pw is not None and cnp.PyArray_TYPE(<cnp.ndarray>pw[0]) == cnp.NPY_UINT16:
        raise TypeError(f"linear_backward: bfloat16 weights (w {w.shape}) are for inference; "
                        f"train with float32 weights and pack them to bfloat16 afterwards")
    w_in = w
    if pw is not None:   # one compute dtype, as in linear
        _check_compute_dtype(<cnp.ndarray>grad_y, pw[1], "linear_backward", "grad_y", w)
        _check_compute_dtype(<cnp.ndarray>x, pw[1], "linear_backward", "x", w)
        # panels are read forward only: dX reads W's rows as columns
        w = w.unpack() if cnp.PyArray_NDIM(<cnp.ndarray>pw[0]) == 3 else pw[0]
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
        if pw is not None:
            _check_compute_dtype(<cnp.ndarray>y, pw[1], "linear_backward", "y", w_in)
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
    memset(&s0, 0, sizeof(s0))   # all zero first: what is not set below (rows) stays so
    memset(&s1, 0, sizeof(s1))
    s0.dz_operand, s1.dz_operand = 1, 2
    s0.act = s1.act = act
    s0.slope = s1.slope = slope
    s0.y = s1.y = cnp.PyArray_DATA(y)
    s0.rsy = s1.rsy = _es(y, 0)
    s0.csy = s1.csy = _es(y, 1)
    s0.dz_sum, s1.dz_sum = NULL, cnp.PyArray_DATA(db)
    s0.nonfinite = s1.nonfinite = NULL
    if dx is not None:
        s0.m, s0.n, s0.k = cnp.PyArray_DIMS(dy)[0], cnp.PyArray_DIMS(w)[0], cnp.PyArray_DIMS(dy)[1]
        s0.a, s0.rsa, s0.csa = cnp.PyArray_DATA(dy), _es(dy, 0), _es(dy, 1)
        s0.b, s0.rsb, s0.csb = cnp.PyArray_DATA(w), _es(w, 1), _es(w, 0)
        s0.c, s0.rsc, s0.csc = cnp.PyArray_DATA(<cnp.ndarray>dx), _es(dx, 0), _es(dx, 1)
    s1.m, s1.n, s1.k = cnp.PyArray_DIMS(x)[1], cnp.PyArray_DIMS(dy)[1], cnp.PyArray_DIMS(x)[0]
    s1.a, s1.rsa, s1.csa = cnp.PyArray_DATA(x), _es(x, 1), _es(x, 0)
    s1.b, s1.rsb, s1.csb = cnp.PyArray_DATA(dy), _es(dy, 0), _es(dy, 1)
    s1.c, s1.rsc, s1.csc = cnp.PyArray_DATA(dw), _es(dw, 0), _es(dw, 1)
    cdef int nt = num_threads(), rc
    if cnp.PyArray_TYPE(dw) == cnp.NPY_FLOAT:
        with nogil:
            rc = fastfc_sgemm_pair(nt, &s0, &s1)
    else:
        with nogil:
            rc = fastfc_dgemm_pair(nt, &s0, &s1)
    if rc:
        raise MemoryError("fastfc: out of memory for the GEMM pack buffers")
    return 0


