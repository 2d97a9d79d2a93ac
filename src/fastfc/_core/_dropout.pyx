# cython: language_level=3, cdivision=True
"""Inverted dropout and its gradient over Philox4x32-10 masks."""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t

from fastfc._core.capi cimport *
from fastfc._core._args cimport (
    _F32, _check_kind, _is_native, _result_type, _dtype, _check_out, _overlaps, _check_p, _check_seed)
from fastfc._core._config cimport num_threads

cnp.import_array()

def dropout(x, p, *, seed, stream=0, out=None):
    """Inverted dropout: ``y = x * mask / (1 - p)`` and the mask.

    Element ``i`` (in C order) is dropped with probability `p`; the decision is a pure
    function of ``(seed, stream, i)`` (Philox4x32-10), the same for any thread count and
    any CPU. Dropped elements are multiplied by 0, so NaN and Inf stay NaN as in NumPy.

    Parameters
    ----------
    x : array_like
        Any shape, strides and memory order.
    p : float
        Probability of dropping an element, in ``[0, 1)``.
    seed : int
        Key of the generator, in ``[0, 2**64)``.
    stream : int, default 0
        Another sequence for the same seed (e.g. a layer's index), in ``[0, 2**64)``.
    out : ndarray, optional
        Written in place with ``y`` (may be `x` itself).

    Returns
    -------
    y : ndarray
        Of `x`'s shape in the promoted dtype (float32 or float64); `out` when given.
    mask : ndarray of bool
        Of `x`'s shape: True where an element is kept.

    Raises
    ------
    ValueError
        `p` outside ``[0, 1)``, a seed or stream out of range, or `out` of the wrong shape.
    TypeError
        A non-numeric dtype, a seed or stream that is not an int.

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
    cdef int nt = num_threads()
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
    """Gradient of ``dropout``: ``grad_y * mask / (1 - p)``.

    Parameters
    ----------
    grad_y : array_like
        Gradient of the loss with respect to the dropout output.
    mask : ndarray of bool
        The mask ``dropout`` returned, of `grad_y`'s shape.
    p : float
        The dropout probability, in ``[0, 1)``.

    Returns
    -------
    ndarray
        Of `grad_y`'s shape, in its promoted dtype (float32 or float64).

    Raises
    ------
    TypeError
        A mask that is not a bool ndarray.
    ValueError
        Shapes that differ, or `p` outside ``[0, 1)``.

    Examples
    --------
    >>> import numpy as np, fastfc
    >>> y, mask = fastfc.dropout(np.ones(4), 0.5, seed=1)
    >>> bool(np.array_equal(fastfc.dropout_backward(np.ones(4), mask, 0.5), y))
    True
    """
    grad_y = _check_kind("grad_y", grad_y)
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
        raise TypeError(f"dropout_backward: mask must be a bool ndarray (from dropout), got "
                        f"{getattr(mask, 'dtype', type(mask).__name__)}")
    if mask.shape != grad_y.shape:
        raise ValueError(f"dropout_backward: mask has shape {mask.shape}, grad_y has shape "
                         f"{grad_y.shape}")
    cdef double pv = _check_p(p, "dropout_backward")
    dt = _dtype(_result_type([grad_y]))
    gc = np.require(grad_y, dt, ["C_CONTIGUOUS", "ALIGNED"])
    mc = np.ascontiguousarray(mask)
    res = np.empty(grad_y.shape, dt)
    cdef int64_t n = gc.size
    cdef void *pg = cnp.PyArray_DATA(gc)
    cdef uint8_t *pm = <uint8_t *>cnp.PyArray_DATA(mc)
    cdef void *pr = cnp.PyArray_DATA(res)
    cdef double scale = 1.0 / (1.0 - pv)
    cdef int nt = num_threads()
    if dt == _F32:
        with nogil:
            fastfc_sdropout_backward(nt, n, <float *>pg, pm, <float>scale, <float *>pr)
    else:
        with nogil:
            fastfc_ddropout_backward(nt, n, <double *>pg, pm, scale, <double *>pr)
    return res

