/* Work split and per-thread pack buffers for the GEMM loops. */
#ifndef FASTFC_THREADS_H
#define FASTFC_THREADS_H
#include <stdatomic.h>
#include "omp_compat.h"
#include <stddef.h>
#include <stdint.h>
#include "tune/tune.h"

/* 1 when a team of threads should take `work` multiply-adds now: the team was busy
 * lately or the work is large enough to pay for waking it (stamps the call). */
int fastfc_team_ready(double work);
/* Stamps the end of a parallel region: its workers spin for a while yet. */
void fastfc_team_done(void);
/* Stamps the end of a region of fastfc's own pool (which survives a fork). */
void fastfc_team_stamp(void);
/* Counts, for the calling thread, a region that ran on more than one thread. */
void fastfc_count_wide_region(void);
/* 1 when a parallel region has run in this process (or in the parent before a fork). */
int fastfc_team_ever_started(void);
/* Called by every thread at the start of a parallel region: counts, for the thread that
 * opened it, the regions that got more than one thread (fastfc_wide_regions). */
void fastfc_team_count(void);
/* Threads to use and a cm x cn grid of chunks over C, each a block of whole micro-tiles
 * (so no element depends on which thread computes it), a few per thread: the threads take
 * them from a shared counter, and one without a core delays only the chunk it holds.
 * a_streams: the rows of A go to the kernel in place, unpacked. */
int fastfc_thread_grid(int nthreads, int64_t m, int64_t n, int64_t k, int mr, int nr,
                       int a_streams, int *cm, int *cn);
/* The next chunk for the calling thread from `next` (shared by the team), or -1 when all
 * `chunks` are taken. */
static inline int64_t fastfc_next_chunk(_Atomic int64_t *next, int64_t chunks)
{
    int64_t c = atomic_fetch_add_explicit(next, 1, memory_order_relaxed);
    return c < chunks ? c : -1;
}
/* [lo, hi) of part `id` of `parts`, split in multiples of `unit`. */
void fastfc_thread_range(int id, int parts, int64_t len, int unit, int64_t *lo, int64_t *hi);
/* A 64-byte aligned scratch buffer owned by the calling thread, grown on demand and
 * freed when the thread exits. NULL when out of memory. */
void *fastfc_thread_buffer(size_t bytes);
/* Threads for an elementwise pass over `work` elements. */
int fastfc_elementwise_threads(int nthreads, int64_t work);
/* Chunks for `nt` threads over `units` units: a few per thread, each at least one unit. */
int64_t fastfc_chunk_count(int nt, int64_t units);
/* STMT over a range [lo, hi) of [0, n) (variables of those names), on `nt` threads (a
 * variable of that name). One thread takes it all and opens no parallel region: libgomp
 * builds a team even for a team of one (0.6 us). A team takes chunks that start on a
 * multiple of `unit` (64 elements: vector paths see whole blocks) from a shared counter. */
#define FASTFC_PARALLEL_RANGES(n, unit, lo, hi, STMT)                                     \
    do {                                                                                   \
        if (nt == 1) {                                                                     \
            const int64_t lo = 0, hi = (n);                                                \
            STMT;                                                                          \
        } else {                                                                           \
            const int64_t chunks_ = fastfc_chunk_count(nt, ((n) + (unit) - 1) / (unit));   \
            _Atomic int64_t next_ = 0;                                                     \
            _Pragma("omp parallel num_threads(nt)")                                        \
            {                                                                              \
                fastfc_team_count();                                                       \
                for (int64_t c_; (c_ = fastfc_next_chunk(&next_, chunks_)) >= 0;) {       \
                    int64_t lo, hi;                                                        \
                    fastfc_thread_range((int)c_, (int)chunks_, (n), (unit), &lo, &hi);     \
                    if (lo < hi) STMT;                                                     \
                }                                                                          \
            }                                                                              \
            fastfc_team_done();                                                            \
        }                                                                                  \
    } while (0)
/* for i in [0, n): STMT, on `nt` threads, split as above. */
#define FASTFC_PARALLEL_FOR(n, i, STMT)                                                    \
    FASTFC_PARALLEL_RANGES(n, 64, i##_lo, i##_hi,                                          \
                           for (int64_t i = i##_lo; i < i##_hi; i++) STMT)
#endif
