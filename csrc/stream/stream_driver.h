/* The small-batch path of gemm_run: C = act(A.B + bias) for m <= FASTFC_STREAM_MAX_M (twice
 * that for a B from memory: b_far) with B (the weights) never packed. Each thread owns a
 * range of columns, whole cache lines of C, and streams its part of B once through the
 * ISA's stream kernel (dispatch.h). Included by gemm_template.h, instantiated per dtype
 * (GF, GT, GP). */
#include <stdlib.h>
#include <string.h>
#include "stream/stream.h"

#ifndef FASTFC_STREAM_CALLS
#define FASTFC_STREAM_CALLS
/* Streamed calls so far, of either dtype, and the last one whose rows of x the calling
 * thread copied into its scratch slot 2 (rows_apart). */
static _Atomic int64_t stream_calls;
static _Thread_local int64_t stream_rows_copied = -1;
#endif

/* Bytes of B, the weights the stream reads. */
static double GF(b_bytes)(const GF(gemm_args) *g)
{
    return (double)g->k * g->n * (g->bh ? 2 : (int)sizeof(GT));
}

/* 1 for a B past twice B_FROM_MEMORY (half the L3): read from memory on every call, so
 * the stream prefetches it and takes up to twice STREAM_MAX_M rows. A B the L3 keeps
 * packs from there faster: 24x768x3072 streamed 4.4 GB/s, packed by the GEMM 6.6
 * (docs/tuning.md, "Twice the rows only from memory"). */
static int GF(b_far)(const GF(gemm_args) *g)
{
    return GF(b_bytes)(g) > 2.0 * fastfc_tuned(FASTFC_T_B_FROM_MEMORY);
}

/* 1 when the product goes to the stream kernel: few rows of A, B row- or column-major,
 * C row-major, alpha 1 and beta 0 (what linear and dX = dZ.W^T ask), no sums of dZ. */
static int GF(streams)(const GF(gemm_args) *g)
{
    /* a C at most half a micro-tile wide (a 10-class head) streams at up to 4x the rows,
     * unless x's rows crowd L1 sets; beyond, the narrow kernels' tiles win (docs/tuning.md,
     * narrow kernels) */
    const int narrow = 2 * g->n <= g->ctx->nr && g->m <= 4 * FASTFC_STREAM_MAX_M &&
                       !GF(rows_crowd_l1)(g->rsa * (int64_t)sizeof(GT), g->ctx->mr);
    /* a B packed from memory leaves a core's reads idle while it computes the block it
     * packed; streamed, W is read at the multiply-adds' pace: twice the rows there
     * (24x4096x4096 237 -> 293 GFLOP/s, docs/tuning.md, "Streams up to 32 rows") */
    return !g->bp && !g->bh_panels &&
           (g->bh ? g->ctx->bstream != NULL : g->ctx->stream != NULL) &&
           (g->m <= (GF(b_far)(g) ? 2 : 1) * FASTFC_STREAM_MAX_M || narrow) && g->alpha == 1 &&
           g->beta == 0 && g->csc == 1 && (g->csb == 1 || g->rsb == 1) && g->dz_operand != 2 &&
           !(g->dz_operand == 1 && g->dz_sum);
}

static int GF(stream_threads)(int nthreads, const GF(gemm_args) *g, int64_t unit)
{
    int nt = fastfc_threads_allowed(nthreads);
    double work = (double)g->k * g->n *
                  (g->m > FASTFC_STREAM_READ_COST ? g->m : FASTFC_STREAM_READ_COST);
    /* below READ_COST rows (reading W, not the multiply-adds, takes the time) a W within
     * half of one core's L2 is read from there faster than a second core fetches its share
     * and joins (784x128 at batch 1: 8 us alone; a team waits 10-70 us for a worker whose
     * vCPU is busy); a larger one does not stay there, and each core keeps its share in
     * its own L2 (docs/tuning.md, "One thread while W fits half of L2") */
    if (g->m < FASTFC_STREAM_READ_COST &&
        GF(b_bytes)(g) <= (double)fastfc_tuned(FASTFC_T_L2) / 2)
        return 1;
    if (nt == 1 || work < (double)fastfc_tuned(FASTFC_T_MIN_PARALLEL_MNK) ||
        !fastfc_team_ready(work))
        return 1;
    int64_t units = (g->n + unit - 1) / unit;
    return nt < units ? nt : (int)units;
}

/* Columns [n0, n1) of C after a stream kernel: the activations it leaves (sigmoid, tanh),
 * and the non-finite check where asked. */
static void GF(stream_done)(const GF(gemm_args) *g, int reg_act, int64_t n0, int64_t n1)
{
    if (!reg_act && g->act) GF(post_act)(g->c + n0, g->rsc, 1, (int)g->m, (int)(n1 - n0), g->act);
    if (g->nonfinite && GF(nonfinite_block)(g->c + n0, g->rsc, 1, g->m, n1 - n0))
        __atomic_store_n(g->nonfinite, 1, __ATOMIC_RELAXED);
}

/* Rows of x whose stride crowds L1 sets, read from a copy at a stride one line longer
 * (16x1024x10 13 -> 9 us): `ld`, 0 for none; *rsa becomes the stride read. Each thread
 * copies them once per call (`call`) into its own scratch: one copy shared by the cores lost
 * 20 % at 16x4096x4096 in every other process, as the next call rewrote lines the other
 * core held (docs/tuning.md). */
static const GT *GF(rows_apart)(const GT *a, int64_t *rsa, int64_t m, int64_t k, int64_t ld,
                                int64_t call)
{
    if (!ld) return a;
    GT *x = fastfc_thread_scratch(2, (size_t)(m * ld) * sizeof(GT));
    if (x && stream_rows_copied != call)
        for (int64_t i = 0; i < m; i++) memcpy(x + i * ld, a + i * *rsa, (size_t)k * sizeof(GT));
    stream_rows_copied = x ? call : -1;
    *rsa = ld;
    return x;
}

static void GF(stream_part)(const GF(gemm_args) *g, const GT *a, int64_t rsa, int64_t csa,
                            int64_t n0, int64_t n1, int64_t kcb, int64_t cw, GT *buf, int pf)
{
    const int reg_act = g->act <= FASTFC_ACT_LEAKY_RELU ? g->act : 0;
    if (g->bh)
        g->ctx->bstream(g->m, n0, n1, g->k, kcb, a, rsa, csa, g->bh, g->rsb, 1, g->c, g->rsc,
                        g->bias, reg_act, g->slope, buf, cw, pf);
    else
        g->ctx->stream(g->m, n0, n1, g->k, kcb, a, rsa, csa, g->b, g->rsb, g->csb, g->c,
                       g->rsc, g->bias, reg_act, g->slope, buf, cw, pf);
    GF(stream_done)(g, reg_act, n0, n1);
}

/* A streamed product split in column chunks, for the pool. */
typedef struct {
    const GF(gemm_args) *g;
    const GT *a;
    int64_t rsa, csa, kcb, cw, ld, call;
    size_t bytes;
    int64_t chunks;
    int unit, pf;
} GF(stream_chunks);

static int GF(stream_chunk)(void *ctx, int64_t id)
{
    const GF(stream_chunks) *j = ctx;
    GT *buf = fastfc_thread_buffer(j->bytes);
    if (!buf) return 1;
    int64_t n0, n1;
    fastfc_thread_range((int)id, (int)j->chunks, j->g->n, j->unit, &n0, &n1);
    int64_t rsa = j->rsa;
    const GT *a = GF(rows_apart)(j->a, &rsa, j->g->m, j->g->k, j->ld, j->call);
    if (!a) return 1;
    if (n0 < n1) GF(stream_part)(j->g, a, rsa, j->csa, n0, n1, j->kcb, j->cw, buf, j->pf);
    return 0;
}

/* A streamed product split in K blocks x column groups, for rows of B too short to split
 * by columns alone: each chunk sums one K block of one group, block 0 into C and the others
 * into partial sums; the chunk that ends a group's last block adds them to C in block
 * order, the bias and the activation after: the one-thread kernel's operations, in its
 * order (stream_template.h), so the bits do not depend on the split. */
typedef struct {
    const GF(gemm_args) *g;
    const GT *a;
    int64_t rsa, csa, kcb, cw, ld, call, blocks, groups;
    size_t bytes;
    int unit, pf;
    GT *part;              /* blocks - 1 partial sums of m x n, rows n apart */
    _Atomic int64_t *left; /* per group: its K blocks not yet summed */
} GF(stream_split);

static void GF(split_sum)(const GF(stream_split) *j, int64_t n0, int64_t n1)
{
    const GF(gemm_args) *g = j->g;
    const int64_t m = g->m, n = g->n;
    const GT slope = g->slope;
    for (int64_t i = 0; i < m; i++) { /* row by row, each in L1 from its first sum on */
        GT *c = g->c + i * g->rsc;
        for (int64_t blk = 1; blk < j->blocks; blk++) {
            const GT *p = j->part + ((blk - 1) * m + i) * n;
            for (int64_t col = n0; col < n1; col++) c[col] = p[col] + c[col];
        }
        for (int64_t col = n0; g->bias && col < n1; col++) c[col] += g->bias[col];
#define SPLIT_ACT(A) \
    for (int64_t col = n0; col < n1; col++) c[col] = G_CAT(act_, GP)(c[col], A, slope)
        if (g->act) FASTFC_FOR_ACT(g->act, SPLIT_ACT)
#undef SPLIT_ACT
    }
    if (g->nonfinite && GF(nonfinite_block)(g->c + n0, g->rsc, 1, m, n1 - n0))
        __atomic_store_n(g->nonfinite, 1, __ATOMIC_RELAXED);
}

static int GF(split_chunk)(void *ctx, int64_t id)
{
    const GF(stream_split) *j = ctx;
    const GF(gemm_args) *g = j->g;
    GT *buf = fastfc_thread_buffer(j->bytes);
    int64_t rsa = j->rsa;
    const GT *a = GF(rows_apart)(j->a, &rsa, g->m, g->k, j->ld, j->call);
    if (!buf || !a) return 1;
    const int64_t grp = id / j->blocks, blk = id % j->blocks, p0 = blk * j->kcb;
    const int64_t kc = g->k - p0 < j->kcb ? g->k - p0 : j->kcb;
    int64_t n0, n1;
    fastfc_thread_range((int)grp, (int)j->groups, g->n, j->unit, &n0, &n1);
    GT *dst = blk ? j->part + (blk - 1) * g->m * g->n : g->c;
    const int64_t rsd = blk ? g->n : g->rsc;
    /* row p0 of B: b + p0*rsb, row- or column-major (rsb 1) */
    if (g->bh)
        g->ctx->bstream(g->m, n0, n1, kc, kc, a + p0 * j->csa, rsa, j->csa,
                        g->bh + p0 * g->rsb, g->rsb, 1, dst, rsd, NULL, 0, 0, buf, j->cw, j->pf);
    else
        g->ctx->stream(g->m, n0, n1, kc, kc, a + p0 * j->csa, rsa, j->csa,
                       g->b + p0 * g->rsb, g->rsb, g->csb, dst, rsd, NULL, 0, 0, buf, j->cw,
                       j->pf);
    /* acq_rel: the group's other blocks are seen by the chunk that adds them up */
    if (atomic_fetch_sub_explicit(&j->left[grp], 1, memory_order_acq_rel) == 1)
        GF(split_sum)(j, n0, n1);
    return 0;
}

/* The K-split run: 0 done, 1 failed, -1 not taken (no memory for the partial sums). */
static int GF(stream_ksplit)(int nt, const GF(gemm_args) *g, const GT *a, int64_t rsa,
                             int64_t csa, int64_t kcb, int64_t cw, int64_t ld, int64_t call,
                             size_t bytes, int64_t unit, int64_t groups, int pf)
{
    const int64_t blocks = (g->k + kcb - 1) / kcb;
    GT *part = malloc((size_t)((blocks - 1) * g->m * g->n) * sizeof(GT));
    _Atomic int64_t *left = malloc((size_t)groups * sizeof *left);
    int failed = -1;
    if (part && left) {
        for (int64_t i = 0; i < groups; i++) atomic_init(&left[i], blocks);
        GF(stream_split) job = {g, a, rsa, csa, kcb, cw, ld, call, blocks, groups, bytes,
                                (int)unit, pf, part, left};
        failed = fastfc_pool_run(nt, blocks * groups, GF(split_chunk), &job) != 0;
    }
    free(part);
    free((void *)left);
    return failed;
}

static int GF(stream)(int nthreads, const GF(gemm_args) *g)
{
    const int64_t m = g->m, k = g->k, unit = 64 / sizeof(GT);
    const int64_t units = (g->n + unit - 1) / unit; /* cache lines of a row of C */
    const int64_t kcb = GF(k_block)(k, g->ctx->kc); /* the GEMM's K blocks */
    /* B that the L3 holds from call to call is not prefetched, where prefetches only cost
     * (1x768x3072: 40 -> 56 GB/s, docs/tuning.md, "Prefetching W past half the L3") */
    const int pf = GF(b_far)(g);
    /* where reading B from memory takes the time, the sums may spill to L2 so that each
     * row of B is read in longer runs (8x4096x4096: 25 -> 34 GB/s, docs/tuning.md) */
    int64_t acc_bytes = FASTFC_STREAM_ACC_BYTES;
    if (pf && m < 2 * FASTFC_STREAM_READ_COST &&
        acc_bytes < fastfc_tuned(FASTFC_T_STREAM_RUN_BYTES))
        acc_bytes = fastfc_tuned(FASTFC_T_STREAM_RUN_BYTES);
    int64_t cw = acc_bytes / (m * (int64_t)sizeof(GT)) / unit * unit;
    if (cw < unit) cw = unit;
    if (cw > units * unit) cw = units * unit;
    const GT *a = g->a;
    int64_t rsa = g->rsa, csa = g->csa;
    GT *dz = NULL;
    if (g->dz_operand == 1) { /* dX = dZ.W^T: dZ rows made first, as the GEMM makes them */
        dz = malloc((size_t)(m * k) * sizeof(GT));
        if (!dz) return -1;
        G_CAT(G_CAT(fastfc_, GP), act_backward)(1, m, k, a, rsa, csa, g->y, g->rsy, g->csy,
                                                g->dz_act, g->dz_slope, dz, NULL);
        a = dz; rsa = k; csa = 1;
    }
    /* rows of x that share L1 sets (a stride a multiple of the way size): rows_apart */
    int64_t ld = 0;
    if (!dz && csa == 1 && m > 1 && GF(rows_crowd_l1)(rsa * (int64_t)sizeof(GT), (int)m))
        ld = k + unit;
    const int64_t call = ld ? atomic_fetch_add(&stream_calls, 1) : 0;
    const int nt = GF(stream_threads)(nthreads, g, unit);
    const size_t bytes = (size_t)(m * cw + FASTFC_STREAM_TILE * kcb) * sizeof(GT);
    int failed = 0;
    if (nt == 1) {
        GT *buf = fastfc_thread_buffer(bytes);
        int64_t rsx = rsa;
        const GT *x = GF(rows_apart)(a, &rsx, m, k, ld, call);
        if (buf && x) GF(stream_part)(g, x, rsx, csa, 0, g->n, kcb, cw, buf, pf);
        failed = !buf || !x;
    } else {
        /* chunks from the pool (whole cache lines of C): a thread without a core
         * holds up one chunk, not a share. Column chunks read runs of each row of B, which
         * lose bandwidth when short (docs/tuning.md): below STREAM_RUN_BYTES K is split too */
        const int64_t unit_bytes = unit * (g->bh ? 2 : (int64_t)sizeof(GT)); /* of a row of B */
        const int64_t pages = units / (4096 / unit_bytes); /* parts a page of each row wide */
        /* a column of column-major B is one run whatever the chunks: K is split only
         * where there are too few columns to share (1x4096x4096 W^T: 27 -> 31 GB/s) */
        const int col_major = g->csb != 1;
        const int64_t run_units =
            col_major ? 1 : fastfc_tuned(FASTFC_T_STREAM_RUN_BYTES) / unit_bytes;
        int64_t chunks = nt * fastfc_tuned(FASTFC_T_CHUNKS_PER_THREAD);
        failed = -1;
        /* few rows read W at its pace, so short runs lose bandwidth; from twice READ_COST
         * rows the multiply-adds take the time even from memory, and column chunks balance
         * better than K blocks (docs/tuning.md, "Column chunks from 16 rows") */
        const int read_bound = m < 2 * FASTFC_STREAM_READ_COST;
        if (read_bound && k > kcb && units < chunks * run_units) { /* split K as well */
            const int64_t blocks = (k + kcb - 1) / kcb;
            int64_t groups = (units + run_units - 1) / run_units;
            if (m <= FASTFC_STREAM_READ_COST / 2) {
                /* up to READ_COST / 2 rows the partial sums are a few rows of C, and whole
                 * rows of B read faster than parts: K blocks alone where they give each
                 * thread CHUNKS_PER_THREAD, else the fewest groups that share them evenly
                 * (1x4096x4096: 22 -> 24 GB/s, docs/tuning.md, "Whole rows at a few rows") */
                while (blocks < fastfc_tuned(FASTFC_T_CHUNKS_PER_THREAD) * nt &&
                       groups * blocks % nt)
                    groups++;
            } else {
                /* few K blocks split in column groups too, runs of a page at least: 3
                 * chunks on 2 threads left one idle a third of 1x768x3072; and a group per
                 * thread, as the last chunk of a group adds up its partial sums while the
                 * others wait: 8x4096x11008 38-40 -> 41-44 GB/s (docs/tuning.md) */
                const int64_t balanced = (chunks + blocks - 1) / blocks,
                              spread = balanced > nt ? balanced : nt;
                const int64_t want = spread < pages ? spread : pages;
                if (groups < want) groups = want;
                /* whole rounds of chunks: 3 K blocks in 3 groups were 9 chunks on 2 threads
                 * (6x1536x4096: 15-16 -> 17-18 GB/s, docs/tuning.md, "Whole rounds of
                 * K-split chunks") */
                while (groups * blocks % nt && groups < pages) groups++;
            }
            if (groups * blocks < nt) groups = (nt + blocks - 1) / blocks;
            failed = GF(stream_ksplit)(nt, g, a, rsa, csa, kcb, cw, ld, call, bytes, unit,
                                       groups < units ? groups : units, pf);
        }
        if (failed < 0) {
            /* a chunk reads at least a page of each row of B, at any rows: 32x25088x4096
             * 238 -> 260 GFLOP/s with 4 KiB runs, not 2 (docs/tuning.md); as many chunks
             * for each thread: 3 pages on 2 threads left one idle a third of 16x768x3072
             * (5.6 -> 6.9-8.2 GB/s, docs/tuning.md, "Pages shared evenly") */
            if (!col_major && chunks > pages) chunks = pages > nt ? pages / nt * nt : nt;
            GF(stream_chunks) job = {g, a, rsa, csa, kcb, cw,
                                     ld, call, bytes, chunks, (int)unit, pf};
            failed = fastfc_pool_run(nt, chunks, GF(stream_chunk), &job);
        }
    }
    free(dz);
    return failed ? -1 : 0;
}

/* A few rows against packed panels (g->bp, or bfloat16 ones), for m <= the ctx's
 * pstream_max_m, alpha 1, beta 0 and C row-major: the panels kernel (stream_template.h),
 * chunks of whole panels. Twice the rows, in two passes, for bfloat16 panels (the GEMM
 * would widen each micro-panel into memory first: 16x4096x4096 190 GF/s against fp32's
 * 275) and where the micro-kernel is no taller (AVX2: 7 rows were a 6-row tile and a
 * 1-row one, as slow; the frozen FFN at batch 8 1.02 -> 0.81 ms). Where both hold, passes
 * are the GEMM's tiles without its widening copy: bfloat16 panels up to two row blocks
 * (2 MC; AVX2, 16-32x25088x4096 1.0x -> 1.2-1.3x fp32 packed, 64-100 rows 0.81-1.0x ->
 * 1.0-1.17x; docs/tuning.md, "bfloat16 panels up to two row blocks"). */
static int GF(panel_streams)(const GF(gemm_args) *g)
{
    const int tall = g->ctx->pstream_max_m >= g->ctx->mr; /* as tall as the micro-kernel */
    const int64_t most = g->bh_panels && tall ? 2 * g->ctx->mc
                         : g->ctx->pstream_max_m * (g->bh_panels || tall ? 2 : 1);
    return (g->bh_panels ? g->ctx->bpstream != NULL : g->bp && g->ctx->pstream) &&
           g->m <= most && g->alpha == 1 && g->beta == 0 && g->csc == 1 && !g->dz_operand;
}

static void GF(panel_part)(const GF(gemm_args) *g, int64_t kcb, int64_t n0, int64_t n1)
{
    const int reg_act = g->act <= FASTFC_ACT_LEAKY_RELU ? g->act : 0;
    const int64_t most = g->ctx->pstream_max_m, nr = g->ctx->nr;
    /* a second pass of rows reads the panels again, a step of them at a time: as many as
     * fit half of L2, or up to the 4 that a pass of few rows reads side by side where a
     * sixteenth of L3 holds them; never from memory twice (docs/tuning.md) */
    int64_t step = n1 - n0;
    if (g->m > most) {
        const int64_t panel = g->k * nr * (g->bh_panels ? 2 : (int64_t)sizeof(GT));
        int64_t fit = fastfc_tuned(FASTFC_T_L2) / 2 / panel;
        const int64_t in_l3 = fastfc_tuned(FASTFC_T_B_FROM_MEMORY) / 4 / panel;
        if (fit < 4 && fit < in_l3) fit = in_l3 < 4 ? in_l3 : 4;
        step = (fit > 1 ? fit : 1) * nr;
    }
    for (int64_t j0 = n0; j0 < n1; j0 += step) {
        const int64_t j1 = n1 - j0 < step ? n1 : j0 + step;
        for (int64_t r = 0; r < g->m; r += most) { /* the same operations per row, any pass */
            const int64_t rows = g->m - r < most ? g->m - r : most;
            if (g->bh_panels)
                g->ctx->bpstream(rows, j0, j1, g->k, kcb, g->a + r * g->rsa, g->rsa, g->csa,
                                 g->bh, g->c + r * g->rsc, g->rsc, g->bias, reg_act, g->slope);
            else
                g->ctx->pstream(rows, j0, j1, g->k, kcb, g->a + r * g->rsa, g->rsa, g->csa,
                                g->bp, g->c + r * g->rsc, g->rsc, g->bias, reg_act, g->slope);
        }
    }
    GF(stream_done)(g, reg_act, n0, n1);
}

typedef struct { const GF(gemm_args) *g; int64_t kcb, chunks; } GF(panel_chunks);

static int GF(panel_chunk)(void *ctx, int64_t id)
{
    const GF(panel_chunks) *j = ctx;
    int64_t n0, n1;
    fastfc_thread_range((int)id, (int)j->chunks, j->g->n, j->g->ctx->nr, &n0, &n1);
    if (n0 < n1) GF(panel_part)(j->g, j->kcb, n0, n1);
    return 0;
}

static int GF(panel_stream)(int nthreads, const GF(gemm_args) *g)
{
    const int64_t kcb = GF(k_block)(g->k, g->ctx->kc); /* the GEMM's K blocks */
    const int nt = GF(stream_threads)(nthreads, g, g->ctx->nr);
    if (nt == 1) {
        GF(panel_part)(g, kcb, 0, g->n);
        return 0;
    }
    const int64_t panels = (g->n + g->ctx->nr - 1) / g->ctx->nr;
    int64_t chunks = nt * fastfc_tuned(FASTFC_T_CHUNKS_PER_THREAD);
    if (chunks > panels) chunks = panels;
    GF(panel_chunks) job = {g, kcb, chunks};
    return fastfc_pool_run(nt, chunks, GF(panel_chunk), &job) ? -1 : 0;
}
