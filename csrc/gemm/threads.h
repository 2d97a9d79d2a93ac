/* Work split and per-thread pack buffers for the GEMM loops. */
#ifndef FASTFC_THREADS_H
#define FASTFC_THREADS_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "tune/tune.h"

/* 1 when a team of threads should take `work` multiply-adds now: the team was busy
 * lately or the work is large enough to pay for waking it (stamps the call). */
int fastfc_team_ready(double work);
/* CLOCK_MONOTONIC in nanoseconds. */
int64_t fastfc_now_ns(void);
/* Stamps the end of a parallel region: its workers spin for a while yet. */
void fastfc_team_done(void);
/* Counts, for the calling thread, a region in which a worker took part (fastfc_wide_regions). */
void fastfc_count_wide_region(void);
/* Threads to use and a cm x cn grid of chunks over C, each a block of whole micro-tiles
 * (so no element depends on which thread computes it), a few per thread: the threads take
 * them from fastfc's pool (pool.h), and one without a core delays only the chunk it holds.
 * a_streams: the rows of A go to the kernel in place, unpacked; b_packed: each chunk packs
 * its columns of B (else reads them in place); pack_cost: the multiply-adds a packed
 * element costs (PACK_COST). */
int fastfc_thread_grid(int nthreads, int64_t m, int64_t n, int64_t k, int mr, int nr,
                       int a_streams, int b_packed, double pack_cost, int *cm, int *cn);
/* [lo, hi) of part `id` of `parts`, split in multiples of `unit`. */
void fastfc_thread_range(int id, int parts, int64_t len, int unit, int64_t *lo, int64_t *hi);
/* A 64-byte aligned scratch buffer owned by the calling thread, grown on demand and
 * freed when the thread exits. NULL when out of memory. */
void *fastfc_thread_buffer(size_t bytes);
/* The same from slot 0 (fastfc_thread_buffer's) or 1 (a second, independent buffer). */
void *fastfc_thread_scratch(int slot, size_t bytes);
/* Threads for an elementwise pass over `work` elements. */
int fastfc_elementwise_threads(int nthreads, int64_t work);
/* Chunks for `nt` threads over `units` units: a few per thread, each at least one unit. */
int64_t fastfc_chunk_count(int nt, int64_t units);
/* fn(ctx, lo, hi) over ranges covering [0, n), on `nt` threads: one thread takes it all in
 * one call; a team takes chunks that start on a multiple of `unit` (64 elements: vector
 * paths see whole blocks) from fastfc's pool (pool.h). */
typedef void (*fastfc_range_fn)(void *ctx, int64_t lo, int64_t hi);
void fastfc_parallel_ranges(int nt, int64_t n, int unit, fastfc_range_fn fn, void *ctx);
/* The same over [0, n) seen as a ring cut at cuts[0..nt] (cuts[nt] == cuts[0]), each in
 * [0, n]: seat s of the pool takes [cuts[s], cuts[s + 1]) modulo n, wrapping past n to 0,
 * as one chunk (one done early would take the end of another's part, which the other had
 * in its cache: Adam 30 -> 38 us at four chunks a seat). cuts NULL: fastfc_parallel_ranges. */
void fastfc_parallel_ring(int nt, int64_t n, int unit, const int64_t *cuts, fastfc_range_fn fn,
                          void *ctx);
#endif
