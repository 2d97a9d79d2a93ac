/* Work split and per-thread pack buffers for the GEMM loops. */
#ifndef FASTFC_THREADS_H
#define FASTFC_THREADS_H
#include "omp_compat.h"
#include <stddef.h>
#include <stdint.h>

/* Below this many multiply-adds a parallel region (~1 us with spinning workers) costs more
 * than the second core saves. Measured on Zen3 with the fused training step, alternated
 * in one process: 100k against 300k gives 256x64x10 20.6 -> 28.7 GF/s, 32x64x128 58 -> 66,
 * the digits fit 0.21-0.24 -> 0.19-0.20 s, the 784-128-64-10 step unchanged. After an
 * idle spell the workers sleep: see fastfc_team_ready. */
#define FASTFC_MIN_PARALLEL_MNK 100000

/* 1 when a team of threads should take `work` multiply-adds now: the team was busy
 * lately or the work is large enough to pay for waking it (stamps the call). */
int fastfc_team_ready(double work);
/* Stamps the end of a parallel region: its workers spin for a while yet. */
void fastfc_team_done(void);
/* Called by every thread at the start of a parallel region: counts, for the thread that
 * opened it, the regions that got more than one thread (fastfc_wide_regions). */
void fastfc_team_count(void);
/* Threads to use and a tm x tn grid over C (tm*tn == result). Each thread owns a block
 * of whole micro-tiles, so no element depends on the thread count. a_streams: the rows of
 * A go to the kernel in place, unpacked. */
int fastfc_thread_grid(int nthreads, int64_t m, int64_t n, int64_t k, int mr, int nr,
                       int a_streams, int *tm, int *tn);
/* [lo, hi) of part `id` of `parts`, split in multiples of `unit`. */
void fastfc_thread_range(int id, int parts, int64_t len, int unit, int64_t *lo, int64_t *hi);
/* A 64-byte aligned scratch buffer owned by the calling thread, grown on demand and
 * freed when the thread exits. NULL when out of memory. */
void *fastfc_thread_buffer(size_t bytes);
/* Threads for an elementwise pass over `work` elements. */
int fastfc_elementwise_threads(int nthreads, int64_t work);
/* STMT over a range [lo, hi) of [0, n) (variables of those names), on `nt` threads (a
 * variable of that name). One thread takes it all and opens no parallel region: libgomp
 * builds a team even for a team of one (0.6 us). A team splits it in parts that start on a
 * multiple of `unit` (64 elements: vector paths see whole blocks). */
#define FASTFC_PARALLEL_RANGES(n, unit, lo, hi, STMT)                                     \
    do {                                                                                   \
        if (nt == 1) {                                                                     \
            const int64_t lo = 0, hi = (n);                                                \
            STMT;                                                                          \
        } else {                                                                           \
            _Pragma("omp parallel num_threads(nt)")                                        \
            {                                                                              \
                int64_t lo, hi;                                                            \
                fastfc_team_count();                                                       \
                fastfc_thread_range(omp_get_thread_num(), omp_get_num_threads(), (n),      \
                                    (unit), &lo, &hi);                                     \
                if (lo < hi) STMT;                                                         \
            }                                                                              \
        }                                                                                  \
    } while (0)
/* for i in [0, n): STMT, on `nt` threads, split as above. */
#define FASTFC_PARALLEL_FOR(n, i, STMT)                                                    \
    FASTFC_PARALLEL_RANGES(n, 64, i##_lo, i##_hi,                                          \
                           for (int64_t i = i##_lo; i < i##_hi; i++) STMT)
#endif
