# The argument checks of _args.pyx, cimported by the kernel modules.
cimport numpy as cnp
from libc.stdint cimport int64_t, uint64_t

cdef object _F32, _F64

cdef inline bint _is_native(cnp.ndarray a, int typenum):
    return cnp.PyArray_TYPE(a) == typenum and not cnp.PyArray_ISBYTESWAPPED(a)

cdef inline int64_t _es(cnp.ndarray a, int axis):
    """The stride of an axis in elements."""
    return cnp.PyArray_STRIDES(a)[axis] // cnp.PyArray_ITEMSIZE(a)

cdef object _check_kind(str name, object a)
cdef int _result_type(list arrays) except -1
cdef object _dtype(int typenum)
cdef cnp.ndarray _operand(cnp.ndarray a, int typenum)
cdef cnp.ndarray _empty1(cnp.npy_intp n, int typenum)
cdef cnp.ndarray _empty2(cnp.npy_intp rows, cnp.npy_intp cols, int typenum)
cdef object _check_out(object out, tuple shape, int typenum, str fn)
cdef bint _ranges_meet(cnp.ndarray a, cnp.ndarray b)
cdef bint _overlaps(cnp.ndarray out, list inputs)
cdef int _activation_code(object activation, str fn) except -1
cdef double _real(object v, str name, str fn) except? -1
cdef double _slope(object v, str fn) except? -1
cdef bint _flag(object v, str name, str fn) except -1
cdef object _view_2d(cnp.ndarray a, int64_t rows, int64_t cols)
cdef cnp.ndarray _as_2d(cnp.ndarray a, int64_t rows, int64_t cols)
cdef double _check_p(object p, str fn) except? -1
cdef uint64_t _check_seed(object seed, str name, str fn) except? 0
