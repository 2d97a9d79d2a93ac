/* The five GEMM loops (Goto / BLIS), one function per loop, instantiated per dtype.
 * Define GT (float|double), GP (s|d), GCTX (fastfc_sctx|fastfc_dctx) before including. */
#define G_CAT2(a, b) a##b
#define G_CAT(a, b) G_CAT2(a, b)
#define GF(name) G_CAT(G_CAT(name, _), GP)

typedef struct {
    const GCTX *ctx;
    int64_t m, n, k;
    GT alpha, beta;
    const GT *a; int64_t rsa, csa;
    const GT *b; int64_t rsb, csb;
    GT *c; int64_t rsc, csc;
    const GT *bias; int act; GT slope;
    int pack_a, pack_b;
    int a_held_unpacked; /* A packed for L2's sake only: see gemm_range */
    int b_from_memory; /* B is far larger than the caches: read it in long runs */
    /* operand 1 (A) or 2 (B) holds dY, made dZ as it is packed: see fastfc_gemm_spec */
    int dz_operand, dz_act; GT dz_slope;
    const GT *y; int64_t rsy, csy;
    GT *dz_sum;
    const uint16_t *bh; /* B in bfloat16 (row-major, rsb) instead of b: widened as packed */
    int bh_panels;      /* bh holds bfloat16 panels as bp, columns i, i + NR/2 paired */
    int *nonfinite; /* not NULL: set to 1 when C is left holding a NaN or an Inf */
    /* B packed once (fastfc_?pack_panels): NR-column panels of all k rows, panel j/NR at
     * bp + j*k; read in place, never packed per call */
    const GT *bp;
    /* A packed once for every chunk of a region (the chunks of one row range would each
     * pack it again): K block pc's MR-row panels at ap + pc * (m rounded up to MR), the
     * panel of row i (a multiple of MR) i * kc further */
    GT *ap;
    /* 1: the caller's product run as C^T = B^T.A^T, whose one column is one row of the
     * caller's C: the GEMM's order, never the dot kernel's (a row's bits at m = 1 and 2) */
    int transposed;
    int ksplit; /* split by K where it fits (ksplit_driver.h): the weights change by rows */
    const int64_t *rows; int row_seats; /* see fastfc_gemm_spec */
} GF(gemm_args);

#include <float.h>
#include "debug.h"
#include "gemm/pool.h"
#define PK_T GT
#define PK_SUFFIX GP
#include "pack/pack_template.h"
#define DZ_T GT
#define DZ_SUFFIX GP
#include "pack/dz_template.h"

/* One bfloat16 weight (its bits) widened, exactly. */
static inline GT GF(widen)(uint16_t h)
{
    const uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return (GT)f;
}

/* kc x nc of bf16 B (rows rsb apart) widened (exact) into panels of NR columns. */
static void GF(widen_b)(const GF(gemm_args) *g, GT *restrict dst, const uint16_t *src,
                        int64_t rsb, int64_t kc, int64_t nc, int NR)
{
    if (g->ctx->bpanels) {
        g->ctx->bpanels(dst, src, rsb, kc, nc, NR);
        return;
    }
    for (int64_t jr = 0; jr < nc; jr += NR) {
        const int nr = nc - jr < NR ? (int)(nc - jr) : NR;
        GT *d = dst + jr * kc;
        for (int64_t p = 0; p < kc; p++)
            for (int c = 0; c < NR; c++)
                d[p * NR + c] = c < nr ? GF(widen)(src[p * rsb + jr + c]) : 0;
    }
}

/* The kc x nc block of B at (pc, j) into panels: widened from bf16 B (exact), or packed. */
static void GF(pack_b_at)(const GF(gemm_args) *g, GT *restrict dst, int64_t pc, int64_t j,
                          int64_t kc, int64_t nc, int NR, int by_rows)
{
    if (!g->bh)
        GF(pack_b)(dst, g->b + pc * g->rsb + j * g->csb, g->rsb, g->csb, kc, nc, NR, by_rows,
                   g->ctx->copy_panel);
    else if (!g->bh_panels)
        GF(widen_b)(g, dst, g->bh + pc * g->rsb + j, g->rsb, kc, nc, NR);
    else /* whole zero-padded panels, j a multiple of NR; a row's word i holds columns i
          * (low half) and i + NR/2 (high) */
        for (int64_t jr = 0; jr < nc; jr += NR) {
            const uint16_t *src = g->bh + (j + jr) * g->k + pc * NR;
            GT *d = dst + jr * kc;
            if (g->ctx->bpairs) {
                g->ctx->bpairs(d, src, kc, NR);
                continue;
            }
            for (int64_t p = 0; p < kc; p++)
                for (int i = 0; i < NR / 2; i++) {
                    uint32_t word, lo, hi;
                    float f;
                    memcpy(&word, src + p * NR + 2 * i, sizeof word);
                    lo = word << 16;
                    hi = word & 0xFFFF0000u;
                    memcpy(&f, &lo, sizeof f);
                    d[p * NR + i] = (GT)f;
                    memcpy(&f, &hi, sizeof f);
                    d[p * NR + NR / 2 + i] = (GT)f;
                }
        }
}

/* sigmoid and tanh are applied to the finished tile while it is in L1. */
static void GF(post_act)(GT *c, int64_t rsc, int64_t csc, int mr, int nr, int act)
{
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            GT *v = c + i * rsc + j * csc;
            *v = G_CAT(act_, GP)(*v, act, 0);
        }
}

/* 1 when the rows x cols block of C at c holds a NaN or an Inf, read along its unit stride
 * (C^T is written when the product runs transposed). */
static int GF(nonfinite_block)(const GT *c, int64_t rsc, int64_t csc, int64_t rows,
                               int64_t cols)
{
    int (*scan)(const GT *, int64_t, int64_t, int64_t) = fastfc_table()->G_CAT(GP, nonfinite_rows);
    if (csc == 1) return scan(c, rows, cols, rsc);
    if (rsc == 1) return scan(c, cols, rows, csc);
    for (int64_t i = 0; i < rows; i++)
        if (scan(c + i * rsc, cols, 1, csc)) return 1;
    return 0;
}

/* dY -> dZ on a packed micro-panel d of the dY operand: lanes [l0, l0 + width) (rows of A
 * or columns of B), K steps [pc, pc + kc). sum: this thread owns the sums of these lanes. */
static void GF(dz)(const GF(gemm_args) *g, GT *d, GT *ys, int64_t pc, int64_t kc, int64_t l0,
                   int width, int sum)
{
    const int in_a = g->dz_operand == 1, lanes = in_a ? g->ctx->mr : g->ctx->nr;
    /* a lane runs along K in a row of A, across K in B */
    const int64_t lane_y = in_a ? g->rsy : g->csy, step_y = in_a ? g->csy : g->rsy;
    const GT *y = g->y + l0 * lane_y + pc * step_y;
    int64_t y_step = step_y;
    if (g->dz_act != FASTFC_ACT_IDENTITY && lane_y != 1) { /* pack Y like the panel */
        if (in_a) GF(pack_a)(ys, y, g->rsy, g->csy, width, kc, lanes);
        else GF(pack_b)(ys, y, g->rsy, g->csy, kc, width, lanes, 0, NULL);
        y = ys; y_step = lanes;
    }
    GF(dz_panel)(d, lanes, y, y_step, kc, g->dz_act, g->dz_slope,
                 sum && g->dz_sum ? g->dz_sum + l0 : NULL, pc == 0, width);
}

/* dY -> dZ for a whole packed kc x nc block of B read from memory, Y row-major: row by row,
 * so Y is read in long runs, not a cache line per K step (docs/tuning.md, driver choices). */
static void GF(dz_block)(const GF(gemm_args) *g, GT *bbuf, int64_t pc, int64_t kc, int64_t jc,
                         int64_t nc, int sum)
{
    const int NR = g->ctx->nr;
    if (g->dz_act != FASTFC_ACT_IDENTITY)
        GF(dz_rows)(bbuf, NR, kc, nc, g->y + pc * g->rsy + jc, g->rsy, g->dz_act, g->dz_slope);
    for (int64_t jr = 0; sum && g->dz_sum && jr < nc; jr += NR)
        GF(dz_panel)(bbuf + jr * kc, NR, NULL, NR, kc, FASTFC_ACT_IDENTITY, 0,
                     g->dz_sum + jc + jr, pc == 0, nc - jr < NR ? (int)(nc - jr) : NR);
}

/* The kernel for a tile of mr x nr: the smallest edge kernel that fits the rows, else a
 * full-height one, the narrowest that fits the columns; *height: the rows it computes. */
static inline __typeof__(((GCTX *)0)->ukr) GF(ukr_for_tile)(const GCTX *x, int mr, int nr,
                                                           int *height)
{
    if (mr < x->mr)
        for (int i = 0; i < FASTFC_EDGE_KERNELS && x->edge_mr[i]; i++)
            if (mr <= x->edge_mr[i]) { *height = x->edge_mr[i]; return x->edge[i]; }
    *height = x->mr;
    for (int i = 0; i < FASTFC_NARROW_KERNELS && x->narrow_nr[i]; i++)
        if (nr <= x->narrow_nr[i]) return x->narrow[i];
    return x->ukr;
}

/* Rows of the next tile when `rest` are left: MR, and the rest at the end. Streamed rows
 * end in two tiles of an edge kernel's height where the last MR + r rows are just two of
 * them (AVX2, 32 rows: 6,6,6,6,4,4, not 6,6,6,6,6,2): a 2-row tile runs at about half the
 * speed of a 4-row one, as 4 accumulators cannot hide the FMA latency. */
static inline int GF(tile_rows)(const GCTX *x, int64_t rest, int streamed)
{
    if (rest >= 2 * x->mr) return x->mr;
    for (int i = 0; streamed && i < FASTFC_EDGE_KERNELS && x->edge_mr[i]; i++)
        if (rest > x->mr && rest == 2 * x->edge_mr[i]) return x->edge_mr[i];
    return rest < x->mr ? (int)rest : x->mr;
}

/* 1 when the block's finiteness may be read from its packed operands instead of C: one
 * K block, alpha 1, beta 0, nothing added, so a sum of kc products is at most
 * kc max|A| max|B| (1 + u)^kc, in any order; and those operands are smaller than C
 * (dW = X^T.dZ at a small batch: 784x128 at batch 32 reads 3x fewer; docs/tuning.md).
 * C is scanned only when that bound passes half the largest finite value. */
static int GF(bounds_c)(const GF(gemm_args) *g, int64_t kc, int64_t ma, int64_t nb,
                       int64_t mc, int64_t nc)
{
    return g->ctx->maxabs && kc == g->k && g->alpha == 1 && g->beta == 0 && !g->bias &&
           g->act == FASTFC_ACT_IDENTITY && g->pack_a && g->pack_b && (ma + nb) * kc < mc * nc;
}

/* What the tiles of one mc x nc block of C share. */
typedef struct {
    const GF(gemm_args) *g;
    int64_t ic, jc, kc;
    const GT *abuf, *arows; int64_t rs_arows;
    GT beta; const GT *bias; /* bias: at column jc, NULL before the last K block */
    int reg_act, post_act; int *ukr_check;
} GF(block);

/* The micro-kernel on the mr x nr tile at (ir, jr) of the block, B's micro-panel at bp
 * (rows brs apart); first: the first tile of a pre-packed micro-panel (read from L3);
 * pf: pf_lines cache lines that a full-height tile reads into L2 as it computes. */
static inline void GF(tile)(const GF(block) *k, int64_t ir, int mr, int64_t jr, int nr,
                            const GT *bp, int64_t brs, int first, const GT *pf,
                            int64_t pf_lines)
{
    const GF(gemm_args) *g = k->g;
    const GCTX *x = g->ctx;
    int height;
    __typeof__(x->ukr) tile_ukr = GF(ukr_for_tile)(x, mr, nr, &height);
    __typeof__(x->ukr) ukr = first && tile_ukr == x->ukr && x->ukr_first && !k->ukr_check
                                 ? x->ukr_first : tile_ukr;
    FASTFC_ASSERT(mr >= 1 && mr <= height && height <= x->mr);
    const GT *ap = k->abuf + ir * k->kc;
    int64_t ars = 1, acs = x->mr;
    if (!g->pack_a && mr == height) {
        ap = k->arows + ir * k->rs_arows; ars = k->rs_arows; acs = 1;
    }
    GT *cp = g->c + (k->ic + ir) * g->rsc + (k->jc + jr) * g->csc;
    if (pf && ukr == x->ukr && !k->ukr_check && x->ukr_ahead) {
        x->ukr_ahead(k->kc, ap, ars, acs, bp, brs, cp, g->rsc, g->csc, mr, nr, g->alpha,
                     k->beta, k->bias ? k->bias + jr : NULL, k->reg_act, g->slope, NULL, pf,
                     pf_lines);
        if (k->post_act) GF(post_act)(cp, g->rsc, g->csc, mr, nr, k->post_act);
        return;
    }
    ukr(k->kc, ap, ars, acs, bp, brs, cp, g->rsc, g->csc, mr, nr, g->alpha, k->beta,
        k->bias ? k->bias + jr : NULL, k->reg_act, g->slope, k->ukr_check);
    if (k->post_act) GF(post_act)(cp, g->rsc, g->csc, mr, nr, k->post_act);
}

/* Loops jr and ir around the micro-kernel for one mc x nc block of C; 1 when the check
 * (g->nonfinite) found a NaN or an Inf in it. */
static int GF(macro_kernel)(const GF(gemm_args) *g, int64_t ic, int64_t jc, int64_t pc,
                             int64_t mc, int64_t nc, int64_t kc, GT *abuf,
                             const GT *arows, int64_t rs_arows, const GT *bbuf, GT *edge_b,
                             int pack_b_here)
{
    const GCTX *x = g->ctx;
    const int MR = x->mr, NR = x->nr;
    const int last = pc + kc >= g->k;
    const int reg_act = last && g->act <= FASTFC_ACT_LEAKY_RELU ? g->act : 0;
    const int post_act = last && g->act > FASTFC_ACT_LEAKY_RELU ? g->act : 0;
    /* the check in the kernel's registers as it stores, or a scan of the block of C just
     * written (in L2): after an activation, or for kernels without the check */
    int *ukr_check = last && !post_act && !reg_act && !x->scan_c ? g->nonfinite : NULL;
    const int scan_c = last && g->nonfinite && !ukr_check;
    const int64_t ma = (mc + MR - 1) / MR * MR, nb = (nc + NR - 1) / NR * NR; /* packed */
    const int bound = scan_c && GF(bounds_c)(g, kc, ma, nb, mc, nc);
    const GF(block) k = {g, ic, jc, kc, abuf, arows, rs_arows, pc == 0 ? g->beta : (GT)1,
                         last && g->bias ? g->bias + jc : NULL, reg_act, post_act, ukr_check};
    GT bmax = 0; /* max |B| of the panels packed here */
    /* Streamed rows: a tile shorter than its kernel (which reads all its rows) reads a
     * zero-padded copy. Only the last tile can be one; the last two start here. */
    for (int64_t ir = mc > 2 * MR ? (mc / MR - 1) * MR : 0, mr; !g->pack_a && ir < mc;
         ir += mr) {
        int height;
        mr = GF(tile_rows)(x, mc - ir, 1);
        GF(ukr_for_tile)(x, (int)mr, MR, &height);
        if (mr < height)
            GF(pack_a)(abuf + ir * kc, arows + ir * rs_arows, rs_arows, 1, mr, kc, MR);
    }
    if (x->b_in_l2 && g->pack_b && !pack_b_here) {
        /* B's block is packed (in L2): each A micro-panel stays in L1 across it */
        for (int64_t ir = 0, mr; ir < mc; ir += mr) {
            mr = GF(tile_rows)(x, mc - ir, !g->pack_a);
            for (int64_t jr = 0; jr < nc; jr += NR)
                GF(tile)(&k, ir, (int)mr, jr, nc - jr < NR ? (int)(nc - jr) : NR,
                         bbuf + jr * kc, NR, 0, NULL, 0);
        }
    } else
    for (int64_t jr = 0; jr < nc; jr += NR) {
        int nr = nc - jr < NR ? (int)(nc - jr) : NR;
        const GT *bp = bbuf + jr * kc;
        int64_t brs = NR;
        if (g->bp) {
            bp = g->bp + (jc + jr) * g->k + pc * NR; /* jc + jr: a multiple of NR */
        } else if (pack_b_here || !g->pack_b) {
            if (nr == NR && !pack_b_here) {
                bp = g->b + pc * g->rsb + (jc + jr) * g->csb; brs = g->rsb;
            } else {
                GF(pack_b_at)(g, edge_b, pc, jc + jr, kc, nr, NR, 0);
                if (g->dz_operand == 2) /* one row block (pack_b_here): sums when it is 0 */
                    GF(dz)(g, edge_b, edge_b + NR * kc, pc, kc, jc + jr, nr, ic == 0);
                if (bound) { /* NaN stays */
                    const GT b = x->maxabs(edge_b, NR * kc);
                    bmax = b > bmax || b != b ? b : bmax;
                }
                bp = edge_b;
            }
        }
        /* Pre-packed B, or bfloat16 panels from memory: the full-height tiles read the
         * next micro-panel into L2, a share each, so its first tile (or its widening) does
         * not wait on memory alone (docs/tuning.md, "Pre-packed weights read a micro-panel
         * ahead"). */
        const int64_t per = 64 / (int64_t)sizeof(GT);
        const GT *next = g->bp ? bp + g->k * NR : NULL;
        int64_t lines = kc * NR / per;
        if (g->bh_panels && pack_b_here && g->b_from_memory) {
            next = (const GT *)(g->bh + (jc + jr + NR) * g->k + pc * NR);
            lines = kc * NR * (int64_t)sizeof(uint16_t) / 64;
        }
        const int ahead = next && x->ukr_ahead && jr + NR < nc;
        int64_t rows = 0;
        for (int64_t ir = 0, mr; ahead && ir < mc; ir += mr)
            rows += (mr = GF(tile_rows)(x, mc - ir, !g->pack_a)) == MR;
        for (int64_t ir = 0, mr, r = 0; ir < mc; ir += mr) {
            mr = GF(tile_rows)(x, mc - ir, !g->pack_a);
            const int64_t l0 = rows ? lines * r / rows : 0;
            const int64_t l1 = rows ? lines * (r + 1) / rows : 0;
            r += mr == MR;
            GF(tile)(&k, ir, (int)mr, jr, nr, bp, brs, g->bp && ir == 0 && (!ahead || jr == 0),
                     l1 > l0 ? next + l0 * per : NULL, l1 - l0);
        }
    }
    /* the block's rows are nc long: one call, not one per column panel (nr long) */
    if (!scan_c) return 0;
    if (bound) {
        if (!pack_b_here) bmax = x->maxabs(bbuf, nb * kc);
        const double finite_max = sizeof(GT) == 4 ? FLT_MAX : DBL_MAX;
        if ((double)kc * x->maxabs(abuf, ma * kc) * bmax <= finite_max / 2)
            return 0; /* false for NaN */
    }
    return GF(nonfinite_block)(g->c + ic * g->rsc + jc * g->csc, g->rsc, g->csc, mc, nc);
}

/* The size of `len` cut into the fewest blocks of at most `most`, all of one size (a
 * multiple of `unit`, which divides `most`): a short last block would cost a whole pass. */
static inline int64_t GF(even_block)(int64_t len, int64_t most, int64_t unit)
{
    int64_t blocks = len > 0 ? (len + most - 1) / most : 1, size = (len + blocks - 1) / blocks;
    return (size + unit - 1) / unit * unit;
}

static inline int64_t GF(k_block)(int64_t k, int64_t KC) { return GF(even_block)(k, KC, 8); }

/* The most of `rows` rows `stride` bytes apart that fall into one L1 set (a multiple of
 * the way size, L1d / ways: all of them). */
static int64_t GF(rows_per_l1_set)(int64_t stride, int rows)
{
    const int64_t way = fastfc_tuned(FASTFC_T_L1D) / fastfc_tuned(FASTFC_T_L1_WAYS);
    int64_t a = stride, b = way;
    while (b) { int64_t t = a % b; a = b; b = t; } /* a = gcd(stride, way) */
    return (rows * a + way - 1) / way;
}

/* 1 when MR rows `stride` bytes apart fall into one L1 set more often than the ways
 * left beside B's panel and C allow, or the stride is a multiple of 8 KiB (measured on
 * Zen 3's 6-row AVX2 panels). */
static int GF(rows_crowd_l1)(int64_t stride, int mr)
{
    return stride % 8192 == 0 ||
           GF(rows_per_l1_set)(stride, mr) > fastfc_tuned(FASTFC_T_L1_WAYS) - 2;
}

#include "stream/stream_driver.h"

/* Loops jc (NC), pc (KC, pack B), ic (MC, pack A) over rows [m0, m1) and columns [n0, n1). */
static void GF(gemm_range)(const GF(gemm_args) *g, int64_t m0, int64_t m1, int64_t n0,
                           int64_t n1, GT *buf)
{
    const GCTX *x = g->ctx;
    const int64_t KC = x->kc, MC = x->mc, NC = x->nc;
    /* K blocks of equal depth (a short one: a pass over C for little work) and row blocks
     * of equal height (a short one: a sweep over all of B's block for a few rows) */
    const int64_t kcb = GF(k_block)(g->k, KC), kmax = g->k < kcb ? g->k : kcb;
    const int64_t mcb = GF(even_block)(m1 - m0, MC, x->mr);
    const int64_t ma = (g->m + x->mr - 1) / x->mr * x->mr;
    GT *abuf = buf, *bbuf = buf + MC * kmax, *edge_b = bbuf + NC * kmax;
    GT *ys = edge_b + x->nr * kmax; /* Y packed like a panel of dY */
    GT *zrows = ys + (x->mr > x->nr ? x->mr : x->nr) * kmax; /* dZ rows streamed as A */
    /* the buffer (buffer_elems) holds panels of K steps up to the table's KC */
    FASTFC_ASSERT(kcb <= KC && mcb <= MC && MC % x->mr == 0 && NC % x->nr == 0);
    /* When all rows fit one MC block, each B micro-panel is used by one sweep of the
     * micro-kernel: pack it right before, so it goes from memory to L1 only once. B from
     * memory is packed a block ahead, but bfloat16 panels for up to half of MC rows are
     * widened a micro-panel at a time, the next one read ahead (docs/tuning.md, "bfloat16
     * panels widened a micro-panel at a time"). */
    const int pack_b_here = g->pack_b && m1 - m0 <= MC &&
                            (!g->b_from_memory || (g->bh_panels && 2 * (m1 - m0) <= MC));
    /* NC bounds a block of B packed ahead that the AVX-512 order holds in L2; B
     * micro-panels packed right before use or read in place need no block */
    const int64_t ncb = x->b_in_l2 && !g->bp && (pack_b_here || !g->pack_b) ? n1 - n0 : NC;
    /* Crowded rows of A are packed for a block of A that stays in L2 while B's micro-panels
     * pass. In the order where one micro-panel of A stays in L1 across B's block from L2
     * (macro_kernel), its rows only need an L1 set's ways (a_held_unpacked): streamed, the
     * copy is saved (2048^3 float64 on 2 threads +15 %, docs/tuning.md). */
    GF(gemm_args) held;
    if (g->a_held_unpacked && x->b_in_l2 && g->pack_b && !pack_b_here && !g->ap) {
        held = *g;
        held.pack_a = 0;
        g = &held;
    }
    int bad = 0;
    for (int64_t jc = n0; jc < n1; jc += ncb) {
        int64_t nc = n1 - jc < ncb ? n1 - jc : ncb;
        for (int64_t pc = 0; pc < g->k; pc += kcb) {
            int64_t kc = g->k - pc < kcb ? g->k - pc : kcb;
            FASTFC_ASSERT(kc >= 1 && kc <= kmax && (nc <= NC || !(g->pack_b && !pack_b_here)));
            if (g->pack_b && !pack_b_here) {
                GF(pack_b_at)(g, bbuf, pc, jc, kc, nc, x->nr, g->b_from_memory);
                if (g->dz_operand == 2 && g->b_from_memory && g->csy == 1)
                    GF(dz_block)(g, bbuf, pc, kc, jc, nc, m0 == 0);
                else
                    for (int64_t jr = 0; g->dz_operand == 2 && jr < nc; jr += x->nr)
                        GF(dz)(g, bbuf + jr * kc, ys, pc, kc, jc + jr,
                               nc - jr < x->nr ? (int)(nc - jr) : x->nr, m0 == 0);
            }
            for (int64_t ic = m0; ic < m1; ic += mcb) {
                int64_t mc = m1 - ic < mcb ? m1 - ic : mcb;
                FASTFC_ASSERT(mc >= 1 && mc <= MC);
                const GT *asrc = g->a + ic * g->rsa + pc * g->csa;
                int64_t rs_asrc = g->rsa;
                if (g->dz_operand == 1 && !g->pack_a) { /* dY rows -> dZ rows, streamed */
                    G_CAT(G_CAT(fastfc_, GP), act_backward)(1, mc, kc, asrc, g->rsa, 1,
                                                            g->y + ic * g->rsy + pc, g->rsy, 1,
                                                            g->dz_act, g->dz_slope, zrows, NULL);
                    asrc = zrows; rs_asrc = kc;
                }
                GT *ab = abuf;
                if (g->ap) {
                    ab = g->ap + pc * ma + ic * kc;
                } else if (g->pack_a) {
                    GF(pack_a)(abuf, asrc, g->rsa, g->csa, mc, kc, x->mr);
                    for (int64_t ir = 0; g->dz_operand == 1 && ir < mc; ir += x->mr)
                        GF(dz)(g, abuf + ir * kc, ys, pc, kc, ic + ir,
                                 mc - ir < x->mr ? (int)(mc - ir) : x->mr, jc == 0);
                }
                bad |= GF(macro_kernel)(g, ic, jc, pc, mc, nc, kc, ab, asrc, rs_asrc, bbuf,
                                        edge_b, pack_b_here);
            }
        }
    }
    /* written only when bad: no cache line shared by the threads is written per range */
    if (bad) __atomic_store_n(g->nonfinite, 1, __ATOMIC_RELAXED);
}

static size_t GF(buffer_elems)(const GCTX *x, int64_t k)
{
    int64_t kmax = k < x->kc ? k : x->kc;
    return (size_t)((2 * x->mc + x->nc + 2 * (x->mr > x->nr ? x->mr : x->nr)) * kmax);
}

/* k == 0: C = alpha*0 + beta*C (C not read when beta == 0; alpha*0 is NaN for a NaN or
 * infinite alpha, as in NumPy), then bias and activation. */
static void GF(gemm_no_k)(const GF(gemm_args) *g)
{
    for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->n; j++) {
            GT *v = g->c + i * g->rsc + j * g->csc;
            GT r = g->alpha * 0 + (g->beta == 0 ? 0 : g->beta * *v);
            if (g->bias) r += g->bias[j];
            *v = G_CAT(act_, GP)(r, g->act, g->slope);
        }
    if (g->nonfinite && GF(nonfinite_block)(g->c, g->rsc, g->csc, g->m, g->n))
        *g->nonfinite = 1;
}

/* The product as C^T = B^T.A^T. */
static void GF(transpose)(GF(gemm_args) *g)
{
    GF(gemm_args) t = *g;
    g->m = t.n; g->n = t.m;
    g->a = t.b; g->rsa = t.csb; g->csa = t.rsb;
    g->b = t.a; g->rsb = t.csa; g->csb = t.rsa;
    g->rsc = t.csc; g->csc = t.rsc;
    g->dz_operand = t.dz_operand ? 3 - t.dz_operand : 0;
    g->rsy = t.csy; g->csy = t.rsy;
}

/* C = act(A.b + bias) for one column b (a regression head), forward, rows of A contiguous
 * and at least FASTFC_DOT_MIN_K long: each row's dot product on the ctx's dot kernel, its
 * sum split over lanes in an order set by k alone (stream/dot_template.h), so a row's bits
 * depend on neither the batch nor the threads. The GEMM's one chain per element had to
 * transpose such rows into lanes (128x4096x1: 0.40x NumPy); other rows keep it (an F-order
 * A streams its columns; lanes would cost 2-3x: docs/tuning.md, "One output column"), and
 * below FASTFC_DOT_MIN_K a row's lanes cost more to add up than the transposes. */
#define FASTFC_DOT_MIN_K 64
#define DOT_ROWS_UNIT 8
typedef struct { const GF(gemm_args) *g; const GT *w; int64_t chunks; } GF(dot_job);

static int GF(dot_chunk)(void *ctx, int64_t id)
{
    const GF(dot_job) *j = ctx;
    const GF(gemm_args) *g = j->g;
    int64_t r0, r1;
    fastfc_thread_range((int)id, (int)j->chunks, g->m, DOT_ROWS_UNIT, &r0, &r1);
    g->ctx->dot(r1 - r0, g->k, g->a + r0 * g->rsa, g->rsa, j->w, g->c + r0 * g->rsc, g->rsc);
    for (int64_t i = r0; i < r1; i++) {
        GT *v = g->c + i * g->rsc;
        if (g->bias) *v += g->bias[0];
        *v = G_CAT(act_, GP)(*v, g->act, g->slope);
    }
    if (g->nonfinite && GF(nonfinite_block)(g->c + r0 * g->rsc, g->rsc, g->csc, r1 - r0, 1))
        __atomic_store_n(g->nonfinite, 1, __ATOMIC_RELAXED);
    return 0;
}

static int GF(dot_column)(int nthreads, const GF(gemm_args) *g)
{
    const int64_t k = g->k;
    const GT *w = g->b;
    GT *copy = NULL;
    if (g->bp || g->bh || g->rsb != 1) { /* a panel's column (NR apart), bf16, strided */
        const int64_t step = g->bp || g->bh_panels ? g->ctx->nr : g->rsb;
        if (!(copy = malloc((size_t)k * sizeof(GT)))) return -1;
        for (int64_t p = 0; p < k; p++)
            copy[p] = g->bh ? GF(widen)(g->bh[p * step]) : (g->bp ? g->bp : g->b)[p * step];
        w = copy;
    }
    int nt = fastfc_threads_allowed(nthreads);
    const double work = (double)g->m * k;
    if (nt > 1 && (work < (double)fastfc_tuned(FASTFC_T_MIN_PARALLEL_MNK) ||
                   !fastfc_team_ready(work)))
        nt = 1;
    GF(dot_job) job = {g, w, 1};
    int failed;
    if (nt == 1) {
        failed = GF(dot_chunk)(&job, 0);
    } else {
        job.chunks = fastfc_chunk_count(nt, (g->m + DOT_ROWS_UNIT - 1) / DOT_ROWS_UNIT);
        failed = fastfc_pool_run(nt, job.chunks, GF(dot_chunk), &job);
    }
    free(copy);
    return failed ? -1 : 0;
}
#undef DOT_ROWS_UNIT

/* C = act(A.b + bias) for one column b and many rows, rows of A not contiguous or short:
 * the micro-kernel would fill one lane of NR (4096x4096x1: 2.4x NumPy's time). As C^T =
 * b^T.A^T it is the stream kernel's one row against the rows of A read once, with the
 * GEMM's operations in its order (the bits of any batch); the bias, one number, becomes a
 * row of copies. Returns 1 when the stream does not take it. */
static int GF(single_column)(int nthreads, const GF(gemm_args) *g)
{
    GF(gemm_args) t = *g;
    GF(transpose)(&t);
    t.bias = NULL;
    if (!GF(streams)(&t)) return 1;
    GT *row = NULL;
    if (g->bias) {
        if (!(row = malloc((size_t)g->m * sizeof(GT)))) return -1;
        for (int64_t i = 0; i < g->m; i++) row[i] = g->bias[0];
        t.bias = row;
    }
    const int failed = GF(stream)(nthreads, &t);
    free(row);
    return failed ? -1 : 0;
}

/* Without a product (m, n or k is 0), the sums of dZ are made in a pass of their own
 * (over B's rows: dY in A is B of the transposed product). */
static void GF(dz_sums_alone)(GF(gemm_args) g)
{
    if (g.dz_operand == 1) GF(transpose)(&g);
    G_CAT(G_CAT(fastfc_, GP), act_backward)(1, g.k, g.n, g.b, g.rsb, g.csb, g.y, g.rsy, g.csy,
                                            g.dz_act, g.dz_slope, NULL, g.dz_sum);
}

/* Rows of a chunk's part come in multiples of the tallest edge kernel of at least 4 rows
 * that divides MR (AVX-512 float 12x32: 4), so 64 rows on two threads are 32 + 32 (tiles
 * 12, 12, 8), not 36 + 28 (one core idle a ninth of the call; docs/tuning.md, "Row parts
 * in edge-kernel units"). A region's A packed once is in MR-row panels: MR. */
static int GF(row_unit)(const GF(gemm_args) *g)
{
    const GCTX *x = g->ctx;
    int unit = x->mr;
    for (int i = 0; !g->ap && i < FASTFC_EDGE_KERNELS && x->edge_mr[i]; i++)
        if (x->edge_mr[i] >= 4 && x->mr % x->edge_mr[i] == 0) unit = x->edge_mr[i];
    return unit;
}

/* A product split in a cm x cn grid of chunks, for the pool. */
typedef struct { const GF(gemm_args) *g; int cm, cn; size_t elems; } GF(gemm_chunks);

static int GF(gemm_chunk)(void *ctx, int64_t id)
{
    const GF(gemm_chunks) *j = ctx;
    GT *buf = fastfc_thread_buffer(j->elems * sizeof(GT));
    if (!buf) return 1;
    int64_t m0, m1, n0, n1;
    fastfc_thread_range((int)(id / j->cn), j->cm, j->g->m, GF(row_unit)(j->g), &m0, &m1);
    fastfc_thread_range((int)(id % j->cn), j->cn, j->g->n, j->g->ctx->nr, &n0, &n1);
    if (m0 < m1 && n0 < n1) GF(gemm_range)(j->g, m0, m1, n0, n1, buf);
    return 0;
}

static int GF(gemm_run)(int nthreads, GF(gemm_args) g);

/* Seat s's rows of C (gemm_args.rows), whole. */
static int GF(gemm_seat_rows)(void *ctx, int64_t s)
{
    const GF(gemm_chunks) *j = ctx;
    GT *buf = fastfc_thread_buffer(j->elems * sizeof(GT));
    if (!buf) return 1;
    if (j->g->rows[s] < j->g->rows[s + 1])
        GF(gemm_range)(j->g, j->g->rows[s], j->g->rows[s + 1], 0, j->g->n, buf);
    return 0;
}

/* 1 when C's rows go to the seats given (gemm_args.rows): nt of them, covering C, each
 * starting on a row part's unit (the tiles of the grid's row parts). */
static int GF(seat_rows_fit)(const GF(gemm_args) *g, int nt)
{
    if (!g->rows || g->row_seats != nt || g->transposed || g->ap || g->rows[0] != 0 ||
        g->rows[nt] != g->m)
        return 0;
    for (int s = 0; s < nt; s++)
        if (g->rows[s + 1] < g->rows[s] || g->rows[s] % GF(row_unit)(g)) return 0;
    return 1;
}

/* A region's A packed once (gemm_args.ap), in parts: K block c / parts, rows part c % parts. */
typedef struct { const GF(gemm_args) *g; GT *ap; int64_t kcb, ma; int parts; } GF(a_once);

static int GF(pack_a_part)(void *ctx, int64_t c)
{
    const GF(a_once) *j = ctx;
    const GF(gemm_args) *g = j->g;
    const int64_t pc = c / j->parts * j->kcb, kc = g->k - pc < j->kcb ? g->k - pc : j->kcb;
    int64_t r0, r1;
    fastfc_thread_range((int)(c % j->parts), j->parts, g->m, g->ctx->mr, &r0, &r1);
    if (r0 < r1)
        GF(pack_a)(j->ap + pc * j->ma + r0 * kc, g->a + r0 * g->rsa + pc * g->csa, g->rsa,
                   g->csa, r1 - r0, kc, g->ctx->mr);
    return 0;
}

/* Rows of A that the column chunks of a region would each pack again, for chunks at most
 * 8 micro-panels wide (a packed A block used by few column tiles), packed once, first, in a
 * region of their own, when they fit a quarter of L3. Wider chunks pack their own: reading
 * panels that the other core wrote cost more than the copy (docs/tuning.md, "A packed
 * once"). The bits do not change. */
static int GF(pack_a_once)(GF(gemm_args) *g, int nt, int cn)
{
    const GCTX *x = g->ctx;
    const int64_t m = g->m, k = g->k, fits = fastfc_tuned(FASTFC_T_L3) / 4;
    const int64_t kcb = GF(k_block)(k, x->kc), ma = (m + x->mr - 1) / x->mr * x->mr;
    if (cn > 1 && g->n <= (int64_t)cn * 8 * x->nr && g->pack_a && g->dz_operand != 1 &&
        ma * k * (int64_t)sizeof(GT) <= fits) {
        GT *ap = fastfc_thread_scratch(1, (size_t)(ma * k) * sizeof(GT));
        if (!ap) return -1;
        GF(a_once) once = {g, ap, kcb, ma, nt};
        if (fastfc_pool_run(nt, (k + kcb - 1) / kcb * nt, GF(pack_a_part), &once)) return -1;
        g->ap = ap;
    }
    return 0;
}

/* C = act(alpha*T + beta*C + bias) with T = A.B made at alpha 1: alpha scales the whole
 * sum once, as alpha*(a@b) in NumPy, where scaling each K block's sum (the kernels add
 * block after block into C) gives NaN for an infinite alpha and overflows early. */
static int GF(scale_after)(int nthreads, GF(gemm_args) g)
{
    const int64_t m = g.m, n = g.n;
    GT *t = g.beta == 0 ? NULL : malloc((size_t)(m * n) * sizeof(GT));
    if (g.beta != 0 && !t) return -1;
    GF(gemm_args) p = g;
    p.alpha = 1; p.beta = 0; p.bias = NULL; p.act = FASTFC_ACT_IDENTITY;
    if (t) { p.c = t; p.rsc = n; p.csc = 1; }
    int failed = GF(gemm_run)(nthreads, p);
    for (int64_t i = 0; !failed && i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            GT *v = g.c + i * g.rsc + j * g.csc;
            GT r = g.alpha * (t ? t[i * n + j] : *v) + (t ? g.beta * *v : 0);
            if (g.bias) r += g.bias[j];
            *v = G_CAT(act_, GP)(r, g.act, g.slope);
        }
    free(t);
    return failed;
}

#include "gemm/ksplit_driver.h"

static int GF(gemm_run)(int nthreads, GF(gemm_args) g)
{
    const int64_t m = g.m, n = g.n, k = g.k;
    if (g.dz_operand && g.dz_sum && (m <= 0 || n <= 0 || k <= 0)) GF(dz_sums_alone)(g);
    if (m <= 0 || n <= 0) return 0;
    if (k <= 0) { GF(gemm_no_k)(&g); return 0; }
    if (g.alpha != 1 && k > GF(k_block)(k, g.ctx->kc) && !g.dz_operand && !g.nonfinite)
        return GF(scale_after)(nthreads, g); /* several K blocks: scaled once at the end */
    const int forward_column = n == 1 && !g.dz_operand; /* one output column */
    if (forward_column && !g.transposed && g.alpha == 1 && g.beta == 0 && g.csa == 1 &&
        k >= FASTFC_DOT_MIN_K)
        return GF(dot_column)(nthreads, &g);
    if (GF(streams)(&g)) return GF(stream)(nthreads, &g); /* small batches: B unpacked */
    if (GF(panel_streams)(&g)) return GF(panel_stream)(nthreads, &g); /* or packed */
    if (forward_column && !g.bp && !g.bh) {
        const int r = GF(single_column)(nthreads, &g);
        if (r <= 0) return r;
    }
    const fastfc_isa_table *t = fastfc_table();
    /* Bias-free products (the bias is per column of C) may run as C^T = B^T.A^T, which
     * packs the small operand and streams the rows of the big one on full-width tiles:
     * dX = dY.W^T for a batch of at most 32, and dW = X^T.dZ of a narrow layer (a
     * classifier head, n <= 2*MR). Figures: docs/tuning.md, driver choices. */
    const int narrow_batch = g.csb != 1 && g.rsb == 1 && m <= 32 && m < n;
    const int narrow_out = g.csa != 1 && g.rsa == 1 && g.csb == 1 && n <= 2 * t->GP.mr && n < m;
    if (!g.bias && !g.bh && !g.bp && (narrow_batch || narrow_out)) {
        GF(transpose)(&g);
        g.transposed = 1;
        return GF(gemm_run)(nthreads, g);
    }
    /* Rows of x stream into the kernel unpacked, unless their stride crowds a panel's
     * rows into a few L1 sets and more than two column tiles read it again. B is packed
     * unless at most two row tiles reuse it (a streamed row of w straddles cache lines and
     * its rows share L1 sets) and it fits half of L2; a larger one is packed, since read in
     * place its rows came from memory at strides the prefetchers do not follow
     * (24x4096x4096 0.90x NumPy in place, 1.47x packed). Figures: docs/tuning.md. */
    g.b_from_memory = k * n * (int64_t)sizeof(GT) > fastfc_tuned(FASTFC_T_B_FROM_MEMORY);
    const int crowd = g.csa == 1 && n > 2 * g.ctx->nr &&
                      GF(rows_crowd_l1)(g.rsa * (int64_t)sizeof(GT), g.ctx->mr);
    g.pack_a = g.csa != 1 || crowd
               || (g.dz_operand == 1 && (g.csy != 1 || g.dz_sum)); /* else dZ rows */
    g.a_held_unpacked = crowd && g.dz_operand != 1 &&
                        GF(rows_per_l1_set)(g.rsa * (int64_t)sizeof(GT), g.ctx->mr) <=
                            fastfc_tuned(FASTFC_T_L1_WAYS);
    g.pack_b = !g.bp && (!(g.csb == 1 && m <= 2 * g.ctx->mr) || g.dz_operand == 2 || g.bh ||
                         k * n * (int64_t)sizeof(GT) > fastfc_tuned(FASTFC_T_L2) / 2);

    int cm, cn;
    /* PACK_COST is in float32 multiply-adds: a float64 one takes twice as long */
    const double pack_cost = (double)fastfc_tuned(FASTFC_T_PACK_COST) * 4 / sizeof(GT);
    int nt = fastfc_thread_grid(nthreads, m, n, k, g.ctx->mr, g.ctx->nr,
                                !g.pack_a && g.dz_operand != 1, g.pack_b, pack_cost, &cm, &cn);
    size_t elems = GF(buffer_elems)(g.ctx, k);
    if (nt == 1) {
        GT *buf = fastfc_thread_buffer(elems * sizeof(GT));
        if (!buf) return -1;
        GF(gemm_range)(&g, 0, m, 0, n, buf);
        return 0;
    }
    if (GF(ksplit_fits)(&g, nt)) return GF(gemm_ksplit)(nt, &g, elems) ? -1 : 0;
    if (GF(seat_rows_fit)(&g, nt)) {
        GF(gemm_chunks) seats = {&g, nt, 1, elems};
        return fastfc_pool_run(nt, nt, GF(gemm_seat_rows), &seats) ? -1 : 0;
    }
    if (GF(pack_a_once)(&g, nt, cn)) return -1;
    /* Chunks of whole micro-tiles, each thread's home range first, then what is left of
     * the others': a thread without a core (NumPy's BLAS spinning beside) holds up one
     * chunk, not a static share, and a worker that wakes late holds up nothing (pool.h). */
    GF(gemm_chunks) job = {&g, cm, cn, elems};
    return fastfc_pool_run(nt, (int64_t)cm * cn, GF(gemm_chunk), &job) ? -1 : 0;
}

int G_CAT(G_CAT(fastfc_, GP), gemm)(int nthreads, int64_t m, int64_t n, int64_t k, GT alpha,
                                    const GT *a, int64_t rsa, int64_t csa,
                                    const GT *b, int64_t rsb, int64_t csb, GT beta,
                                    GT *c, int64_t rsc, int64_t csc,
                                    const GT *bias, int act, GT slope)
{
    GF(gemm_args) g = {&fastfc_table()->GP, m, n, k, alpha, beta, a, rsa, csa, b, rsb, csb,
                       c, rsc, csc, bias, act, slope};
    return GF(gemm_run)(nthreads, g);
}

/* A layer's forward product in training (alpha 1, beta 0): as fastfc_?gemm, split by K
 * where it fits, since the optimizer updates the weights in row ranges (ksplit_driver.h). */
int G_CAT(G_CAT(fastfc_, GP), gemm_trained)(int nthreads, int64_t m, int64_t n, int64_t k,
                                            const GT *a, int64_t rsa, const GT *b,
                                            int64_t rsb, GT *c, int64_t rsc, const GT *bias,
                                            int act, GT slope)
{
    GF(gemm_args) g = {&fastfc_table()->GP, m, n, k, 1, 0, a, rsa, 1, b, rsb, 1,
                       c, rsc, 1, bias, act, slope};
    g.ksplit = 1;
    fastfc_forget_row_owners(b); /* noted again when split by K (ksplit_driver.h) */
    return GF(gemm_run)(nthreads, g);
}

/* C = act(alpha*A.B + beta*C + bias) with B in bfloat16 (row-major): the products of B
 * widened to GT, so the results are those of the GEMM on the widened B, on every path. */
int G_CAT(G_CAT(fastfc_, GP), gemm_bf16)(int nthreads, int64_t m, int64_t n, int64_t k,
                                         GT alpha, const GT *a, int64_t rsa, int64_t csa,
                                         const uint16_t *b, int64_t rsb, GT beta,
                                         GT *c, int64_t rsc, int64_t csc,
                                         const GT *bias, int act, GT slope)
{
    GF(gemm_args) g = {&fastfc_table()->GP, m, n, k, alpha, beta, a, rsa, csa, NULL, rsb, 1,
                       c, rsc, csc, bias, act, slope};
    g.bh = b;
    return GF(gemm_run)(nthreads, g);
}

/* C = act(alpha*A.B + beta*C + bias) with B packed once into the micro-kernel's panels
 * (fastfc_?pack_panels, nr columns wide): no packing per call, and B read in long runs at
 * any batch. The operations are the GEMM's, so the results equal fastfc_?gemm's. Returns
 * -2 when nr is not this path's panel width (packed for another path). */
int G_CAT(G_CAT(fastfc_, GP), gemm_panels)(int nthreads, int64_t m, int64_t n, int64_t k,
                                           GT alpha, const GT *a, int64_t rsa, int64_t csa,
                                           const GT *panels, int nr, GT beta, GT *c,
                                           int64_t rsc, int64_t csc, const GT *bias, int act,
                                           GT slope)
{
    if (nr != fastfc_table()->GP.nr) return -2;
    GF(gemm_args) g = {&fastfc_table()->GP, m, n, k, alpha, beta, a, rsa, csa, panels, nr, 1,
                       c, rsc, csc, bias, act, slope};
    g.bp = panels;
    return GF(gemm_run)(nthreads, g);
}

/* The same with bfloat16 panels: the bits of the rounded weights in fastfc_?pack_panels'
 * panels, except that word i of each panel row holds columns i (low half) and i + nr/2
 * (fastfc.packing): the results equal fastfc_?gemm_bf16's on the same weights. Returns -2
 * when nr is not this path's panel width. */
int G_CAT(G_CAT(fastfc_, GP), gemm_bf16_panels)(int nthreads, int64_t m, int64_t n, int64_t k,
                                                GT alpha, const GT *a, int64_t rsa,
                                                int64_t csa, const uint16_t *panels, int nr,
                                                GT beta, GT *c, int64_t rsc, int64_t csc,
                                                const GT *bias, int act, GT slope)
{
    if (nr != fastfc_table()->GP.nr) return -2;
    GF(gemm_args) g = {&fastfc_table()->GP, m, n, k, alpha, beta, a, rsa, csa, NULL, nr, 1,
                       c, rsc, csc, bias, act, slope};
    g.bh = panels;
    g.bh_panels = 1;
    return GF(gemm_run)(nthreads, g);
}

/* w (k x n at w[p*rsw + j*csw]) into NR-column panels of k rows at dst (k * NR * ceil(n /
 * NR) elements, columns past n zero): the layout fastfc_?gemm_panels reads. Returns NR. */
int G_CAT(G_CAT(fastfc_, GP), pack_panels)(const GT *w, int64_t rsw, int64_t csw, int64_t k,
                                           int64_t n, GT *dst)
{
    const int NR = fastfc_table()->GP.nr;
    if (k > 0 && n > 0) GF(pack_b)(dst, w, rsw, csw, k, n, NR, 1, NULL);
    return NR;
}

/* Rows of `cols` elements a line further apart where they crowd L1 sets for this path's
 * tiles: 64x3072x768 on packed weights 390 -> 434 GFLOP/s (docs/tuning.md). */
int64_t G_CAT(G_CAT(fastfc_, GP), rows_ld)(int64_t cols)
{
    const GCTX *x = &fastfc_table()->GP;
    return GF(rows_crowd_l1)(cols * (int64_t)sizeof(GT), x->mr) ? cols + 64 / (int64_t)sizeof(GT)
                                                                : cols;
}

/* The panel width of this path (what fastfc_?pack_panels packs for). */
int G_CAT(G_CAT(fastfc_, GP), panel_width)(void) { return fastfc_table()->GP.nr; }

/* One product of a pair: C = A.B, dZ made from dY in the packing where asked. */
static int G_CAT(GP, gemm_spec)(int nthreads, const fastfc_gemm_spec *s)
{
    GF(gemm_args) g = {&fastfc_table()->GP, s->m, s->n, s->k, 1, 0, s->a, s->rsa, s->csa,
                       s->b, s->rsb, s->csb, s->c, s->rsc, s->csc, NULL, FASTFC_ACT_IDENTITY, 0};
    g.dz_operand = s->dz_operand;
    g.dz_act = s->act;
    g.dz_slope = (GT)s->slope;
    g.y = s->y; g.rsy = s->rsy; g.csy = s->csy;
    g.dz_sum = s->dz_sum;
    g.nonfinite = s->nonfinite;
    g.rows = s->rows; g.row_seats = s->row_seats;
    if (g.dz_act == FASTFC_ACT_IDENTITY && !g.dz_sum) g.dz_operand = 0; /* dZ is dY */
    return GF(gemm_run)(nthreads, g);
}

#undef GF
#undef GT
#undef GP
#undef GCTX
