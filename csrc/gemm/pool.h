/* fastfc's own thread pool: parallel regions that never wait for a sleeping thread.
 *
 * fastfc_pool_run(nt, chunks, fn, ctx) runs fn(ctx, c) for every c in [0, chunks) on up
 * to nt threads: the calling thread and nt - 1 of the pool's workers each take the chunks
 * of a home range of their own (the caller the first), then those left in the others', and
 * the call returns once every chunk taken is done. A worker that wakes
 * late finds no chunk left and goes back to waiting, so a small region costs the calling
 * thread its own work plus, when a worker sleeps, one wake-up call (docs/tuning.md). Each
 * chunk runs whole on one thread: results never depend on which thread ran it. */
#ifndef FASTFC_POOL_H
#define FASTFC_POOL_H
#include <stdint.h>

/* One chunk of a region: returns nonzero when it failed (out of memory). */
typedef int (*fastfc_chunk_fn)(void *ctx, int64_t chunk);

/* fn(ctx, c) for c in [0, chunks) on at most nt threads (the caller among them); returns
 * nonzero when a chunk failed. A call made while the pool runs another region (a second
 * Python thread, a call from inside a chunk) runs its chunks alone on its own thread, as
 * does every call of a serial build. */
int fastfc_pool_run(int nt, int64_t chunks, fastfc_chunk_fn fn, void *ctx);
#endif
