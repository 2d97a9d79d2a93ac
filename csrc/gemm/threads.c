#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include "fastfc.h"
#include "gemm/pool.h"
#include "gemm/threads.h"

#define FASTFC_MIN_PARALLEL_ELEMS (1 << 16)

/* Pool workers that idled for a while sleep, and waking one costs a system call and can
 * take far longer than a small product (on a loaded 2-vCPU VM, milliseconds). So a small call (under
 * NAP_SOLO_MNK) that follows a pause of NAP_NS runs on the calling thread alone; the next
 * call, in a stream, takes the team again and pays the wake-up there. The stamp only steers
 * the thread count, which never changes a result: Python threads racing on it are
 * harmless. Both values come from the tuning table; docs/tuning.md has the measurements. */
static _Atomic int64_t team_stamp_ns;

int64_t fastfc_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int fastfc_team_ready(double work)
{
    int64_t now = fastfc_now_ns(), last = atomic_exchange(&team_stamp_ns, now);
    return now - last < fastfc_tuned(FASTFC_T_NAP_NS) ||
           work >= (double)fastfc_tuned(FASTFC_T_NAP_SOLO_MNK);
}

void fastfc_team_done(void) { atomic_store(&team_stamp_ns, fastfc_now_ns()); }

/* Thread-local: a Python thread counts its own calls and no two threads touch one counter. */
static _Thread_local int64_t wide_regions;

void fastfc_count_wide_region(void) { wide_regions++; }

int64_t fastfc_wide_regions(void) { return wide_regions; }

/* The estimated time, in multiply-adds per step of k, of the slowest of nt threads on an
 * a x b grid: C's m*n, plus B packed again by each row part and A by each column part
 * (an operand read in place, streamed or pre-packed: 0.4 of a copy), shared by the
 * threads; the dynamic split leaves up to a fraction of a chunk behind. 32x784x128 on 2
 * threads: 39 -> 29 us with 1 x 4 chunks, not 2 x 4 (docs/tuning.md, "Row parts pack B
 * again"). */
static double grid_time(int nt, int64_t m, int64_t n, int a, int b, double a_weight,
                        double b_weight)
{
    const double w = (double)m * n + b_weight * n * a + a_weight * m * b;
    return w / nt + 0.25 * w / (a * b);
}

int fastfc_thread_grid(int nthreads, int64_t m, int64_t n, int64_t k, int mr, int nr,
                       int a_streams, int b_packed, double pack_cost, int *cm, int *cn)
{
    int nt = fastfc_threads_allowed(nthreads);
    *cm = *cn = 1;
    double work = (double)m * n * k;
    if (nt == 1 || work < (double)fastfc_tuned(FASTFC_T_MIN_PARALLEL_MNK) ||
        !fastfc_team_ready(work))
        return 1;
    int64_t pm = (m + mr - 1) / mr, pn = (n + nr - 1) / nr;
    if (nt > pm * pn) nt = (int)(pm * pn); /* a thread owns at least one tile */
    /* chunks: a few per thread, none under the work that pays for a thread */
    double most = work / (double)fastfc_tuned(FASTFC_T_MIN_PARALLEL_MNK);
    int64_t parts = nt * fastfc_tuned(FASTFC_T_CHUNKS_PER_THREAD);
    if (parts > most) parts = most > nt ? (int64_t)most : nt;
    if (parts > pm * pn) parts = pm * pn;
    const double aw = (a_streams ? 0.4 : 1.0) * pack_cost;
    const double bw = (b_packed ? 1.0 : 0.4) * pack_cost;
    for (; nt > 1; nt--) { /* fewer threads where no grid of whole tiles fits */
        double best = -1;
        /* `parts` chunks, or fewer in whole rounds of the threads */
        for (int64_t p = parts; p >= nt; p = p % nt ? p / nt * nt : p - nt)
            for (int a = 1; a <= p && a <= pm; a++) {
                if (p % a || pn < p / a) continue;
                const double t = grid_time(nt, m, n, a, (int)(p / a), aw, bw);
                if (best < 0 || t < best) { best = t; *cm = a; *cn = (int)(p / a); }
            }
        if (best >= 0) return nt;
    }
    *cm = *cn = 1;
    return 1;
}

void fastfc_thread_range(int id, int parts, int64_t len, int unit, int64_t *lo, int64_t *hi)
{
    int64_t units = (len + unit - 1) / unit;
    int64_t u0 = units * id / parts, u1 = units * (id + 1) / parts;
    *lo = u0 * unit;
    *hi = u1 * unit < len ? u1 * unit : len;
}

int64_t fastfc_chunk_count(int nt, int64_t units)
{
    int64_t chunks = nt * fastfc_tuned(FASTFC_T_CHUNKS_PER_THREAD);
    return chunks < units ? chunks : units;
}

/* A range pass split in chunks, for the pool. */
typedef struct { fastfc_range_fn fn; void *ctx; int64_t n, chunks; int unit; } ranges_job;

static int range_chunk(void *ctx, int64_t c)
{
    const ranges_job *j = ctx;
    int64_t lo, hi;
    fastfc_thread_range((int)c, (int)j->chunks, j->n, j->unit, &lo, &hi);
    if (lo < hi) j->fn(j->ctx, lo, hi);
    return 0;
}

void fastfc_parallel_ranges(int nt, int64_t n, int unit, fastfc_range_fn fn, void *ctx)
{
    if (nt <= 1) { /* no region: the pass in one call */
        fn(ctx, 0, n);
        return;
    }
    ranges_job j = {fn, ctx, n, fastfc_chunk_count(nt, (n + unit - 1) / unit), unit};
    fastfc_pool_run(nt, j.chunks, range_chunk, &j);
}

/* A ring pass: chunk s is seat s's interval, whole. */
typedef struct { fastfc_range_fn fn; void *ctx; int64_t n; const int64_t *cuts; } ring_job;

static int ring_chunk(void *ctx, int64_t s)
{
    const ring_job *j = ctx;
    const int64_t lo = j->cuts[s], hi = j->cuts[s + 1];
    if (lo < hi) {
        j->fn(j->ctx, lo, hi);
    } else if (lo > hi) { /* past the end, on from the start */
        if (lo < j->n) j->fn(j->ctx, lo, j->n);
        if (hi > 0) j->fn(j->ctx, 0, hi);
    }
    return 0;
}

void fastfc_parallel_ring(int nt, int64_t n, int unit, const int64_t *cuts, fastfc_range_fn fn,
                          void *ctx)
{
    if (!cuts || nt <= 1) {
        fastfc_parallel_ranges(nt, n, unit, fn, ctx);
        return;
    }
    ring_job j = {fn, ctx, n, cuts};
    fastfc_pool_run(nt, nt, ring_chunk, &j);
}

int fastfc_elementwise_threads(int nthreads, int64_t work)
{
    int nt = fastfc_threads_allowed(nthreads);
    /* an element costs a few multiply-adds' time (Philox for dropout: more) */
    if (nt == 1 || work < FASTFC_MIN_PARALLEL_ELEMS || !fastfc_team_ready(8.0 * work)) return 1;
    int64_t most = work / (FASTFC_MIN_PARALLEL_ELEMS / 2);
    return nt < most ? nt : (int)most;
}

/* Slot 0: each thread's pack buffers; slot 1: a region's A packed once, held by the
 * thread that runs the region (so a chunk's slot 0 never moves under it); slot 2: a
 * thread's copy of the rows of x that a stream reads (stream_driver.h). */
typedef struct { void *p[3]; size_t bytes[3]; } thread_buf;
static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;

static void free_buf(void *v)
{
    thread_buf *t = v;
    for (int i = 0; i < 3; i++) free(t->p[i]);
    free(t);
}
static void make_key(void) { pthread_key_create(&buf_key, free_buf); }

void *fastfc_thread_scratch(int slot, size_t bytes)
{
    pthread_once(&buf_once, make_key);
    thread_buf *t = pthread_getspecific(buf_key);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t || pthread_setspecific(buf_key, t)) { free(t); return NULL; }
    }
    if (t->bytes[slot] < bytes) {
        size_t want = (bytes + 4095) & ~(size_t)4095;
        void *p = aligned_alloc(64, want);
        if (!p) return NULL;
        free(t->p[slot]);
        t->p[slot] = p;
        t->bytes[slot] = want;
    }
    return t->p[slot];
}

void *fastfc_thread_buffer(size_t bytes) { return fastfc_thread_scratch(0, bytes); }
