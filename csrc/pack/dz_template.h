/* The backward of bias + activation, dZ = act'(Y) * dY, made where the GEMM engine packs
 * the operand that holds dY (dZ rows it streams as A come from fastfc_Xact_backward, in
 * epilogue.c). Define DZ_T and DZ_SUFFIX before including. Each step runs one loop per
 * activation (a constant act per loop: each one vectorizes). */
#include <stdint.h>

#define DZ_CAT2(a, b) a##b
#define DZ_CAT(a, b) DZ_CAT2(a, b)
#define DZ_GRAD(dy, y, act, slope) DZ_CAT(act_grad_, DZ_SUFFIX)(dy, y, act, slope)

/* A packed micro-panel d of dY (`lanes` wide, k-major) becomes dZ. Y's value for K step p
 * and lane l is y[p * y_step + l]: Y packed the same way (y_step = lanes), or Y itself when
 * its lanes are contiguous (only the first `width` lanes are real; past them dY is 0, so
 * is dZ). */
static inline __attribute__((always_inline)) void DZ_CAT(dz_apply_, DZ_SUFFIX)(
    DZ_T *restrict d, int lanes, const DZ_T *restrict y, int64_t y_step, int64_t kc, int width,
    const int act, DZ_T slope)
{
    if (act == FASTFC_ACT_IDENTITY) return;
    if (y_step == lanes && width == lanes) /* one flat run */
        for (int64_t i = 0; i < kc * lanes; i++) d[i] = DZ_GRAD(d[i], y[i], act, slope);
    else
        for (int64_t p = 0; p < kc; p++)
            for (int l = 0; l < width; l++)
                d[p * lanes + l] = DZ_GRAD(d[p * lanes + l], y[p * y_step + l], act, slope);
}

/* dz_apply, then sum (NULL: none) gets the first `width` lanes summed over the kc steps in
 * order, that block sum added to what it holds unless `first`. Summed per K block, a
 * float32 db over a million rows errs like eps * (kc + rows / kc), not eps * rows. */
#define DZ_MAX_LANES 32 /* the widest MR or NR of any table */
static void DZ_CAT(dz_panel_, DZ_SUFFIX)(DZ_T *restrict d, int lanes, const DZ_T *restrict y,
                                         int64_t y_step, int64_t kc, int act, DZ_T slope,
                                         DZ_T *sum, int first, int width)
{
#define DZ_CALL(ACT) DZ_CAT(dz_apply_, DZ_SUFFIX)(d, lanes, y, y_step, kc, width, ACT, slope)
    FASTFC_FOR_ACT(act, DZ_CALL)
#undef DZ_CALL
    if (!sum) return;
    DZ_T acc[DZ_MAX_LANES];
    for (int l = 0; l < lanes; l++) acc[l] = 0;
    for (int64_t p = 0; p < kc; p++)
        for (int l = 0; l < lanes; l++) acc[l] += d[p * lanes + l];
    for (int l = 0; l < width; l++) sum[l] = first ? acc[l] : sum[l] + acc[l];
}
#undef DZ_MAX_LANES

/* A packed kc x nc block of B (micro-panels of NR) in row order: row p of Y (at
 * y + p * rsy) is read in one long run, as B read from memory is packed. */
static inline __attribute__((always_inline)) void DZ_CAT(dz_rows_apply_, DZ_SUFFIX)(
    DZ_T *restrict d, int NR, int64_t kc, int64_t nc, const DZ_T *restrict y, int64_t rsy,
    const int act, DZ_T slope)
{
    for (int64_t p = 0; p < kc; p++)
        for (int64_t jr = 0; jr < nc; jr += NR) /* K step p of each panel */
            DZ_CAT(dz_apply_, DZ_SUFFIX)(d + jr * kc + p * NR, NR, y + p * rsy + jr, NR, 1,
                                         nc - jr < NR ? (int)(nc - jr) : NR, act, slope);
}

static void DZ_CAT(dz_rows_, DZ_SUFFIX)(DZ_T *restrict d, int NR, int64_t kc, int64_t nc,
                                        const DZ_T *restrict y, int64_t rsy, int act, DZ_T slope)
{
#define DZ_CALL(ACT) DZ_CAT(dz_rows_apply_, DZ_SUFFIX)(d, NR, kc, nc, y, rsy, ACT, slope)
    FASTFC_FOR_ACT(act, DZ_CALL)
#undef DZ_CALL
}

#undef DZ_GRAD
#undef DZ_T
#undef DZ_SUFFIX
