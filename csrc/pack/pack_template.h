/* Packing of A and B panels for the micro-kernel: transposes and strides end here.
 * Define PK_T and PK_SUFFIX before including; MR / NR are run-time values. */
#include <stdint.h>
#include <string.h>
#include "pack/transpose.h"

#define PK_CAT2(a, b) a##b
#define PK_CAT(a, b) PK_CAT2(a, b)

/* One row of a micro-panel: a constant-size copy for the MR and NR the tables use. */
static inline void PK_CAT(copy_row_, PK_SUFFIX)(PK_T *restrict d, const PK_T *restrict s, int n)
{
    switch (n) {
    case 4: memcpy(d, s, 4 * sizeof(PK_T)); break;
    case 6: memcpy(d, s, 6 * sizeof(PK_T)); break;
    case 8: memcpy(d, s, 8 * sizeof(PK_T)); break;
    case 12: memcpy(d, s, 12 * sizeof(PK_T)); break;
    case 16: memcpy(d, s, 16 * sizeof(PK_T)); break;
    case 24: memcpy(d, s, 24 * sizeof(PK_T)); break;
    case 32: memcpy(d, s, 32 * sizeof(PK_T)); break;
    default: for (int j = 0; j < n; j++) d[j] = s[j];
    }
}

/* Whole micro-panels of W lanes, panel l from src + l with K steps `step` apart (lanes
 * contiguous in memory): 8 K steps per panel visit, so 8 reads run along memory at once and
 * each visit writes 8 steps of a panel in a run. */
static inline void PK_CAT(copy_panels_, PK_SUFFIX)(PK_T *restrict dst, const PK_T *src,
                                                   int64_t step, int64_t kc, int64_t lanes,
                                                   int W,
                                                   void (*copy)(PK_T *, const PK_T *,
                                                                int64_t, int64_t))
{
    for (int64_t p0 = 0; p0 < kc; p0 += 8)
        for (int64_t l = 0; l < lanes; l += W)
            if (copy)
                copy(dst + l * kc + p0 * W, src + l + p0 * step, step,
                     kc - p0 < 8 ? kc - p0 : 8);
            else
                for (int64_t p = p0; p < p0 + 8 && p < kc; p++)
                    PK_CAT(copy_row_, PK_SUFFIX)(dst + l * kc + p * W, src + l + p * step, W);
}

/* mc x kc block of A -> micro-panels of MR rows, each k-major (a_rs = 1, a_cs = MR),
 * rows past mc zero-filled. */
static void PK_CAT(pack_a_, PK_SUFFIX)(PK_T *restrict dst, const PK_T *a, int64_t rsa,
                                       int64_t csa, int64_t mc, int64_t kc, int MR)
{
    /* Column-major A (X^T of dW): long reads along columns, 8 at a time (one column at a
     * time writes to every panel in turn) */
    const int64_t by_columns = rsa == 1 && csa != 1 ? mc - mc % MR : 0;
    PK_CAT(copy_panels_, PK_SUFFIX)(dst, a, csa, kc, by_columns, MR, NULL);
    for (int64_t ir = by_columns; ir < mc; ir += MR) {
        int mr = mc - ir < MR ? (int)(mc - ir) : MR;
        PK_T *d = dst + ir * kc;
        if (csa == 1) {
            PK_CAT(pack_rows_, PK_SUFFIX)(d, MR, a + ir * rsa, rsa, mr, kc);
        } else {
            for (int64_t p = 0; p < kc; p++)
                for (int i = 0; i < mr; i++) d[p * MR + i] = a[(ir + i) * rsa + p * csa];
        }
        for (int i = mr; i < MR; i++)
            for (int64_t p = 0; p < kc; p++) d[p * MR + i] = 0;
    }
}

/* kc x nc block of B -> micro-panels of NR columns, each k-major (b_rs = NR),
 * columns past nc zero-filled. by_rows: read row-major B along its rows (long runs)
 * rather than panel by panel, 8 rows at a time. copy: the path's copy of a whole panel
 * of row-major B (NULL: row by row here). */
static void PK_CAT(pack_b_, PK_SUFFIX)(PK_T *restrict dst, const PK_T *b, int64_t rsb,
                                       int64_t csb, int64_t kc, int64_t nc, int NR,
                                       int by_rows,
                                       void (*copy)(PK_T *, const PK_T *, int64_t, int64_t))
{
    const int64_t full = nc - nc % NR;
    if (csb == 1 && by_rows)
        PK_CAT(copy_panels_, PK_SUFFIX)(dst, b, rsb, kc, full, NR, copy);
    else if (csb == 1 && copy)
        for (int64_t jr = 0; jr < full; jr += NR) copy(dst + jr * kc, b + jr, rsb, kc);
    else if (csb == 1)
        for (int64_t jr = 0; jr < full; jr += NR)
            for (int64_t p = 0; p < kc; p++)
                PK_CAT(copy_row_, PK_SUFFIX)(dst + jr * kc + p * NR, b + p * rsb + jr, NR);
    for (int64_t jr = csb == 1 ? full : 0; jr < nc; jr += NR) {
        int nr = nc - jr < NR ? (int)(nc - jr) : NR;
        PK_T *d = dst + jr * kc;
        const PK_T *src = b + jr * csb;
        /* one memset: per row, the few padding lanes were a libc call each (64x10: 0.5 us) */
        if (nr < NR) memset(d, 0, (size_t)(kc * NR) * sizeof(PK_T));
        if (rsb == 1) /* column-major B (W^T): its columns are rows to transpose */
            PK_CAT(pack_rows_, PK_SUFFIX)(d, NR, src, csb, nr, kc);
        else
            for (int64_t p = 0; p < kc; p++)
                for (int j = 0; j < nr; j++) d[p * NR + j] = src[p * rsb + j * csb];
    }
}
#undef PK_T
#undef PK_SUFFIX
