/* OpenMP, or serial stand-ins for the few omp_* calls the core makes when the compiler has no
 * OpenMP (or -DFASTFC_OPENMP=OFF): the pragmas are then ignored and every call runs on the
 * calling thread. */
#ifndef FASTFC_OMP_COMPAT_H
#define FASTFC_OMP_COMPAT_H
#ifdef _OPENMP
#include <omp.h>
#else
#include <time.h>
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_threads(void) { return 1; }
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_num_procs(void) { return 1; }
static inline int omp_get_thread_limit(void) { return 1; }
static inline double omp_get_wtime(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
#endif
#endif
