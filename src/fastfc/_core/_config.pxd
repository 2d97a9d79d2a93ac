# The thread count every kernel call passes to C (set_num_threads, OMP_NUM_THREADS).
cdef int num_threads() noexcept nogil
