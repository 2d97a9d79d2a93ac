/* A layer's forward product in training split by K blocks (each chunk one K block of all
 * of C, through the one-thread GEMM): the optimizer updates the weights in row ranges, so
 * a thread then reads the rows of W it wrote, where column chunks read every row of W, half
 * of them from the other core's cache (docs/tuning.md, "The forward split by K"). Block 0
 * goes into C, the others into partial sums that the last chunk to finish adds to C in
 * block order, then the bias and the activation (split_sum): the unsplit GEMM's operations
 * in its order, so the bits do not depend on the split. Included by gemm_template.h. */

/* Chunk `id`: K block id (a thread's home range, pool.h, is a range of rows of W). */
static int GF(gemm_kchunk)(void *ctx, int64_t id)
{
    const GF(stream_split) *j = ctx;
    const GF(gemm_args) *g = j->g;
    GT *buf = fastfc_thread_buffer(j->bytes);
    if (!buf) return 1;
    const int64_t p0 = id * j->kcb;
    GF(gemm_args) s = *g;
    s.k = g->k - p0 < j->kcb ? g->k - p0 : j->kcb;
    s.a = g->a + p0 * g->csa;
    s.b = g->b + p0 * g->rsb;
    s.bias = NULL; s.act = FASTFC_ACT_IDENTITY; s.nonfinite = NULL;
    if (id) { s.c = j->part + (id - 1) * g->m * g->n; s.rsc = g->n; }
    GF(gemm_range)(&s, 0, g->m, 0, g->n, buf);
    /* acq_rel: the other blocks are seen by the chunk that adds them up */
    if (atomic_fetch_sub_explicit(j->left, 1, memory_order_acq_rel) == 1)
        GF(split_sum)(j, 0, g->n);
    return 0;
}

/* 1 when a training forward (gemm_args.ksplit) is split by K: a plain row-major C, alpha 1,
 * beta 0, B as given, a K block per thread at least, and partial sums (written, then read:
 * twice (blocks - 1) * m * n) fewer than the weights they keep on their core (k * n),
 * within a quarter of L2: 784-128 at batch 32 and 64, not 256 (docs/tuning.md). */
static int GF(ksplit_fits)(const GF(gemm_args) *g, int nt)
{
    const int64_t kcb = GF(k_block)(g->k, g->ctx->kc), blocks = (g->k + kcb - 1) / kcb;
    return g->ksplit && nt > 1 && blocks >= nt && !g->dz_operand && !g->bh && !g->bp &&
           !g->ap && g->alpha == 1 && g->beta == 0 && g->csc == 1 &&
           2 * (blocks - 1) * g->m <= g->k &&
           (double)(blocks - 1) * g->m * g->n * sizeof(GT) <=
               (double)fastfc_tuned(FASTFC_T_L2) / 4;
}

/* The K-split run (ksplit_fits): 0 done, 1 failed. Which seat reads which rows of W is
 * noted for the optimizer (train/row_owners.h). The sum on one core: two column groups,
 * each summed by its last chunk, measured no faster. */
static int GF(gemm_ksplit)(int nt, const GF(gemm_args) *g, size_t elems)
{
    const int64_t kcb = GF(k_block)(g->k, g->ctx->kc), blocks = (g->k + kcb - 1) / kcb;
    GT *part = malloc((size_t)((blocks - 1) * g->m * g->n) * sizeof(GT));
    if (!part) return 1;
    _Atomic int64_t left;
    atomic_init(&left, blocks);
    GF(stream_split) job = {.g = g, .a = g->a, .rsa = g->rsa, .csa = g->csa, .kcb = kcb,
                            .blocks = blocks, .groups = 1, .bytes = elems * sizeof(GT),
                            .unit = g->ctx->nr, .part = part, .left = &left};
    if (g->rsb == g->n && nt <= FASTFC_ROW_OWNERS_MAX_SEATS) { /* seat s: home range s */
        int64_t first[FASTFC_ROW_OWNERS_MAX_SEATS + 1], b1;
        for (int s = 0; s < nt; s++) {
            fastfc_thread_range(s, nt, blocks, 1, &first[s], &b1);
            first[s] *= kcb;
        }
        first[nt] = g->k;
        fastfc_note_row_owners(g->b, g->n, sizeof(GT), nt, first);
    }
    const int failed = fastfc_pool_run(nt, blocks, GF(gemm_kchunk), &job) != 0;
    free(part);
    return failed;
}
