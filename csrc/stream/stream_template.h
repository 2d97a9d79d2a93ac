/* Small-batch kernel: C = act(A.B + bias) for a few rows of A, streaming B (the weights)
 * from memory once, in memory order, unpacked. Instantiated once per ISA file (which sets
 * the compile flags: the same as its GEMM micro-kernels, so FMA contraction matches).
 * Define before including: ST_T (float|double), ST_IT (int32_t|int64_t), ST_VL (lanes),
 * ST_NAME, ST_PNV and ST_PMAX (vectors per packed panel, most rows of A: makes
 * ST_NAME_panels for B in panels; ST_PMAX * ST_PNV sums fit the registers), and
 * ST_BF16 for B stored as bfloat16 (row-major or panels; each weight widened to
 * ST_T exactly, so the arithmetic is that of the widened B); optionally
 * ST_TRANSPOSE_BLOCK(src, lds, dst, ld), the ISA file's VL x VL transpose (else a generic one).
 * The contract is FASTFC_STREAM_ARGS_B in dispatch/dispatch.h.
 *
 * Each element of C gets exactly the GEMM's operations in the GEMM's order, so a row's
 * result does not depend on the batch it came in (batch invariance): per K block of depth
 * kcb, acc = 0, acc += a*b over p in order; C = acc on the first block, acc + C on later
 * ones; + bias after the last block, then relu / leaky relu. */
#include <stddef.h>
#include <stdint.h>

#define ST_CAT2(a, b) a##b
#define ST_CAT(a, b) ST_CAT2(a, b)
#define ST_F(name) ST_CAT(ST_CAT(ST_NAME, _), name)
#define ST_VEC ST_F(vec)
#define ST_IVEC ST_F(ivec)
/* Rows of row-major B per pass over the accumulators, and vectors of each row per step:
 * ST_NV independent chains of multiply-adds per row of A (an element's sum is one chain
 * in p order, whose FMA latency they hide), one row of B 64 bytes at a step or more. */
#define ST_ROWS 4
#define ST_NV (ST_VL * (int)sizeof(ST_T) >= 64 ? 4 : 2)
/* Prefetch distance, in passes of ST_ROWS rows ahead, into L2: rows of B a multiple of
 * 4 KiB apart share an L1 set, and prefetches into L1 evicted each other (1x1024x1024:
 * 2.5x slower than into L2). One pass: 8 passes (512 KiB ahead at 16 KiB rows) read
 * 1x4096x4096 at 28 GB/s against 35 (docs/tuning.md, prefetch distance). */
#define ST_PREFETCH_PASSES 1
#ifdef ST_BF16
#define ST_BT uint16_t
#else
#define ST_BT ST_T
#endif
#define ST_LINE ((int)(64 / sizeof(ST_BT)))
/* Columns of column-major B transposed at a time into a row-major tile (kc x ST_TILE):
 * 64 streams of B in flight at most. */
#define ST_TILE FASTFC_STREAM_TILE
/* Rows of A up to which blocks of column-major B skip the tile (ST_TRANSPOSE_BLOCK) */
#define ST_DIRECT_M 8

typedef ST_T ST_VEC __attribute__((vector_size(ST_VL * sizeof(ST_T)), aligned(sizeof(ST_T))));
typedef ST_IT ST_IVEC __attribute__((vector_size(ST_VL * sizeof(ST_T)), aligned(sizeof(ST_T))));
#ifdef ST_BF16
#define ST_HVEC ST_F(hvec)
#define ST_UVEC ST_F(uvec)
typedef uint16_t ST_HVEC __attribute__((vector_size(ST_VL * 2), aligned(2)));
/* unsigned: bits shifted into the sign bit are no overflow; may_alias: panels of uint16_t
 * are read as words */
typedef uint32_t ST_UVEC __attribute__((vector_size(ST_VL * 4), aligned(4), may_alias));
#endif

/* Lanes [0, n) at p, the others 0 (never read past n). */
static inline __attribute__((always_inline)) ST_VEC ST_F(loadn)(const ST_T *p, int n)
{
    if (n >= ST_VL) return *(const ST_VEC *)p;
#ifdef UKR_MASKED_LOAD
    return (ST_VEC)UKR_MASKED_LOAD(p, n);
#else
    ST_VEC v = {0};
    for (int l = 0; l < n; l++) v[l] = p[l];
    return v;
#endif
}

static inline __attribute__((always_inline)) void ST_F(storen)(ST_T *p, ST_VEC v, int n)
{
    if (n >= ST_VL) { *(ST_VEC *)p = v; return; }
#ifdef UKR_MASKED_STORE
    UKR_MASKED_STORE(p, v, n);
#else
    for (int l = 0; l < n; l++) p[l] = v[l];
#endif
}

/* VL weights of B at p (bf16: the bits shifted into the high half of a float, exact). */
static inline __attribute__((always_inline)) ST_VEC ST_F(loadb)(const ST_BT *p)
{
#ifdef ST_BF16
    return (ST_VEC)(__builtin_convertvector(*(const ST_HVEC *)p, ST_UVEC) << 16);
#else
    return *(const ST_VEC *)p;
#endif
}

/* Lanes [0, n) of B at p, the others 0. */
static inline __attribute__((always_inline)) ST_VEC ST_F(loadbn)(const ST_BT *p, int n)
{
#ifdef ST_BF16
    if (n >= ST_VL) return ST_F(loadb)(p);
    ST_UVEC v = {0};
    for (int l = 0; l < n; l++) v[l] = (uint32_t)p[l] << 16;
    return (ST_VEC)v;
#else
    return ST_F(loadn)(p, n);
#endif
}

/* relu (1) or leaky relu (2) as the micro-kernels do it (v < 0 is false for NaN and -0):
 * masks, not a branch per lane (mispredicted on half the lanes, docs/tuning.md). */
static inline __attribute__((always_inline)) ST_VEC ST_F(activate)(ST_VEC v, int act,
                                                                   ST_T slope)
{
#ifdef ST_LANE_ACT /* lane by lane where GCC 12 fails on the masks (SSE2 doubles) */
    _Pragma("GCC unroll 16") for (int l = 0; l < ST_VL; l++)
        if (v[l] < 0) v[l] = act == 1 ? (ST_T)0 : v[l] * slope;
    return v;
#else
    const ST_VEC zero = (ST_VEC){0};
    const ST_IVEC neg = v < zero;
    const ST_VEC low = act == 1 ? zero : v * slope;
    return (ST_VEC)(((ST_IVEC)low & neg) | ((ST_IVEC)v & ~neg));
#endif
}

/* acc[i] (VL columns at acc + i*ldacc) += sum over r < R of A[i, r] * w[r], in r order,
 * for the m rows of A at a (A[i, r] = a[i*rsa + r*csa]); acc starts at 0 when `zero`. */
static inline __attribute__((always_inline)) void
ST_F(fma_rows)(int64_t m, const ST_T *a, int64_t rsa, int64_t csa, const ST_VEC *w,
               const int R, ST_T *acc, int64_t ldacc, int zero)
{
    for (int64_t i = 0; i < m; i++) {
        const ST_T *ai = a + i * rsa;
        ST_VEC s = zero ? (ST_VEC){0} : *(const ST_VEC *)(acc + i * ldacc);
        _Pragma("GCC unroll 16") for (int r = 0; r < R; r++)
            s += (ai[r * csa] - (ST_VEC){0}) * w[r]; /* x - 0 is x: a broadcast */
        *(ST_VEC *)(acc + i * ldacc) = s;
    }
}

/* acc[i] (ST_NV vectors at acc + i*ldacc) += sum over r < ST_ROWS of A[i, r] * B[r, :]
 * in r order, for the m rows of A (A[i, r] = a[i*rsa + r*csa]; B[r, j] = w[r*rsw + j]). */
static inline __attribute__((always_inline)) void
ST_F(fma_wide)(int64_t m, const ST_T *a, int64_t rsa, int64_t csa, const ST_BT *w, int64_t rsw,
               ST_T *acc, int64_t ldacc, int zero)
{
    ST_VEC wv[ST_ROWS][ST_NV]; /* in registers across the rows of A */
    _Pragma("GCC unroll 8") for (int r = 0; r < ST_ROWS; r++)
        _Pragma("GCC unroll 4") for (int j = 0; j < ST_NV; j++)
            wv[r][j] = ST_F(loadb)(w + r * rsw + j * ST_VL);
    for (int64_t i = 0; i < m; i++) {
        const ST_T *ai = a + i * rsa;
        ST_VEC s[ST_NV];
        _Pragma("GCC unroll 4") for (int j = 0; j < ST_NV; j++)
            s[j] = zero ? (ST_VEC){0} : *(const ST_VEC *)(acc + i * ldacc + j * ST_VL);
        _Pragma("GCC unroll 8") for (int r = 0; r < ST_ROWS; r++) {
            const ST_VEC x = ai[r * csa] - (ST_VEC){0}; /* x - 0 is x: a broadcast */
            _Pragma("GCC unroll 4") for (int j = 0; j < ST_NV; j++) s[j] += x * wv[r][j];
        }
        _Pragma("GCC unroll 4") for (int j = 0; j < ST_NV; j++)
            *(ST_VEC *)(acc + i * ldacc + j * ST_VL) = s[j];
    }
}

/* Prefetch one step (ST_NV vectors) of the ST_ROWS rows of B at w, ST_PREFETCH_PASSES
 * passes ahead; prefetch never faults: rows past B are harmless. */
static inline __attribute__((always_inline)) void ST_F(prefetch_step)(const ST_BT *w,
                                                                      int64_t rsw)
{
    _Pragma("GCC unroll 8") for (int r = 0; r < ST_ROWS; r++)
        _Pragma("GCC unroll 4") for (int l = 0; l < ST_NV * ST_VL; l += ST_LINE)
            __builtin_prefetch(w + (r + ST_ROWS * ST_PREFETCH_PASSES) * rsw + l, 0, 2);
}

/* fma_wide for one row of A across [0, width) of the ST_ROWS rows of B at w: its values
 * broadcast once a pass, not once a step (docs/tuning.md, "One row's values broadcast
 * once a pass"); returns the columns done, whole steps of ST_NV vectors. */
static inline int64_t ST_F(row_wide)(const ST_T *a, int64_t csa, const ST_BT *w, int64_t rsw,
                                     int64_t width, ST_T *acc, int zero, int pf)
{
    ST_VEC x[ST_ROWS];
    _Pragma("GCC unroll 8") for (int r = 0; r < ST_ROWS; r++) x[r] = a[r * csa] - (ST_VEC){0};
    int64_t v = 0;
    for (; v + ST_NV * ST_VL <= width; v += ST_NV * ST_VL) {
        if (pf) ST_F(prefetch_step)(w + v, rsw);
        ST_VEC s[ST_NV];
        _Pragma("GCC unroll 4") for (int j = 0; j < ST_NV; j++)
            s[j] = zero ? (ST_VEC){0} : *(const ST_VEC *)(acc + v + j * ST_VL);
        _Pragma("GCC unroll 8") for (int r = 0; r < ST_ROWS; r++)
            _Pragma("GCC unroll 4") for (int j = 0; j < ST_NV; j++)
                s[j] += x[r] * ST_F(loadb)(w + r * rsw + v + j * ST_VL);
        _Pragma("GCC unroll 4") for (int j = 0; j < ST_NV; j++)
            *(ST_VEC *)(acc + v + j * ST_VL) = s[j];
    }
    return v;
}

/* One K block [p0, p0 + kc) of the columns [j0, j0 + width) of row-major B (b[p*rsb + j]):
 * rows in memory order, ST_ROWS per pass over the accumulators; prefetched when pf. */
static inline void ST_F(block_rows)(int64_t m, int64_t p0, int64_t kc, int64_t j0,
                                    int64_t width, const ST_T *a, int64_t rsa, int64_t csa,
                                    const ST_BT *b, int64_t rsb, ST_T *acc, int64_t ldacc,
                                    int pf)
{
    int64_t p = 0;
    for (; p + ST_ROWS <= kc; p += ST_ROWS) {
        const ST_BT *w = b + (p0 + p) * rsb + j0;
        const ST_T *ap = a + (p0 + p) * csa;
        int64_t v = m == 1 ? ST_F(row_wide)(ap, csa, w, rsb, width, acc, p == 0, pf) : 0;
        for (; v + ST_NV * ST_VL <= width; v += ST_NV * ST_VL) {
            if (pf) ST_F(prefetch_step)(w + v, rsb);
            ST_F(fma_wide)(m, ap, rsa, csa, w + v, rsb, acc + v, ldacc, p == 0);
        }
        for (; v < width; v += ST_VL) {
            const int lanes = width - v < ST_VL ? (int)(width - v) : ST_VL;
            ST_VEC wv[ST_ROWS];
            _Pragma("GCC unroll 8") for (int r = 0; r < ST_ROWS; r++)
                wv[r] = ST_F(loadbn)(w + r * rsb + v, lanes);
            ST_F(fma_rows)(m, ap, rsa, csa, wv, ST_ROWS, acc + v, ldacc, p == 0);
        }
    }
    for (; p < kc; p++) {
        const ST_BT *w = b + (p0 + p) * rsb + j0;
        for (int64_t v = 0; v < width; v += ST_VL) {
            ST_VEC wv = ST_F(loadbn)(w + v, width - v < ST_VL ? (int)(width - v) : ST_VL);
            ST_F(fma_rows)(m, a + (p0 + p) * csa, rsa, csa, &wv, 1, acc + v, ldacc, p == 0);
        }
    }
}

#ifndef ST_BF16
/* t[r] = column r of the VL x VL block t (rows in, columns out): log2(VL) rounds of
 * interleaving row i with row i + VL/2 transpose it. */
static inline __attribute__((always_inline)) void ST_F(transpose)(ST_VEC *t)
{
#if ST_VL == 16
#define ST_LO(x, y) __builtin_shufflevector(x, y, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
#define ST_HI(x, y) __builtin_shufflevector(x, y, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)
#elif ST_VL == 8
#define ST_LO(x, y) __builtin_shufflevector(x, y, 0, 8, 1, 9, 2, 10, 3, 11)
#define ST_HI(x, y) __builtin_shufflevector(x, y, 4, 12, 5, 13, 6, 14, 7, 15)
#elif ST_VL == 4
#define ST_LO(x, y) __builtin_shufflevector(x, y, 0, 4, 1, 5)
#define ST_HI(x, y) __builtin_shufflevector(x, y, 2, 6, 3, 7)
#elif ST_VL == 2
#define ST_LO(x, y) __builtin_shufflevector(x, y, 0, 2)
#define ST_HI(x, y) __builtin_shufflevector(x, y, 1, 3)
#else
#error "ST_VL must be 2, 4, 8 or 16"
#endif
    _Pragma("GCC unroll 4") for (int round = 1; round < ST_VL; round *= 2) {
        ST_VEC u[ST_VL];
        _Pragma("GCC unroll 16") for (int i = 0; i < ST_VL / 2; i++) {
            u[2 * i] = ST_LO(t[i], t[i + ST_VL / 2]);
            u[2 * i + 1] = ST_HI(t[i], t[i + ST_VL / 2]);
        }
        _Pragma("GCC unroll 16") for (int i = 0; i < ST_VL; i++) t[i] = u[i];
    }
#undef ST_LO
#undef ST_HI
}

#ifndef ST_TRANSPOSE_BLOCK
/* dst[r * ld + l] = src[l * lds + r] for a VL x VL block, where the ISA file has no faster
 * one: a row per vector, transposed above. Rows from one opaque base, stepped: GCC
 * otherwise keeps (and spills) a pointer per row. */
static inline __attribute__((always_inline)) void ST_F(transpose_block)(const ST_T *src,
                                                                        int64_t lds, ST_T *dst,
                                                                        int64_t ld)
{
    ST_VEC t[ST_VL];
    const char *row = (const char *)src;
    _Pragma("GCC unroll 16") for (int l = 0; l < ST_VL; l++) {
        __asm__("" : "+r"(row));
        t[l] = *(const ST_VEC *)row;
        row += lds * (int64_t)sizeof(ST_T);
    }
    ST_F(transpose)(t);
    _Pragma("GCC unroll 16") for (int r = 0; r < ST_VL; r++) *(ST_VEC *)(dst + r * ld) = t[r];
}
#define ST_TRANSPOSE_BLOCK ST_F(transpose_block)
#endif

/* Column-major B: each of the block's VL columns 8 lines ahead, once per line. */
static inline __attribute__((always_inline)) void ST_F(prefetch_cols)(const ST_T *col,
                                                                      int64_t csb, int64_t p)
{
    if ((p + ST_VL) % ST_LINE >= ST_VL) return;
    /* from one opaque base: GCC otherwise keeps (and spills) a pointer per column */
    const char *base = (const char *)(col + p + 8 * ST_LINE);
    const int64_t L = csb * (int64_t)sizeof(ST_T);
    _Pragma("GCC unroll 16") for (int l = 0; l < ST_VL; l += 2) {
        __asm__("" : "+r"(base));
        __builtin_prefetch(base, 0, 2);
        __builtin_prefetch(base + L, 0, 2);
        base += 2 * L;
    }
}

/* Up to ST_DIRECT_M rows of A, blocks of column-major B go from the registers into the
 * sums, without the tile: one K block of the columns [j0, j0 + width) (whole vectors, at
 * most ST_DIRECT_COLS) side by side, each block's sums one chain of VL multiply-adds. From
 * two rows of A the ST_DIRECT_G blocks of a step are transposed first and their chains
 * then interleaved (fma_groups); one row of A reads 16 columns at a time (one AVX-512
 * float block): fewer rows of W in flight read faster there, fewer than 16 slower
 * (docs/tuning.md, "W^T blocks transposed first"). */
#define ST_DIRECT_G 2
#define ST_DIRECT_COLS (ST_DIRECT_G * ST_VL)
#define ST_DIRECT_ROW1 16 /* columns a tile at one row of A (VL <= 16) */

/* fma_rows for ST_DIRECT_G blocks of VL columns side by side (t[g]: block g, row r at
 * t[g][r]; its sums at acc + g*VL): per row of A the groups' chains interleaved. */
static inline __attribute__((always_inline)) void
ST_F(fma_groups)(int64_t m, const ST_T *a, int64_t rsa, int64_t csa,
                 ST_VEC (*t)[ST_VL], ST_T *acc, int64_t ldacc, int zero)
{
    for (int64_t i = 0; i < m; i++) {
        const ST_T *ai = a + i * rsa;
        ST_VEC s[ST_DIRECT_G];
        _Pragma("GCC unroll 4") for (int g = 0; g < ST_DIRECT_G; g++)
            s[g] = zero ? (ST_VEC){0} : *(const ST_VEC *)(acc + i * ldacc + g * ST_VL);
        _Pragma("GCC unroll 16") for (int r = 0; r < ST_VL; r++) {
            const ST_VEC x = ai[r * csa] - (ST_VEC){0}; /* x - 0 is x: a broadcast */
            _Pragma("GCC unroll 4") for (int g = 0; g < ST_DIRECT_G; g++) s[g] += x * t[g][r];
        }
        _Pragma("GCC unroll 4") for (int g = 0; g < ST_DIRECT_G; g++)
            *(ST_VEC *)(acc + i * ldacc + g * ST_VL) = s[g];
    }
}

static inline void ST_F(direct_cols)(int64_t m, int64_t p0, int64_t kc, int64_t j0,
                                     int64_t width, const ST_T *a, int64_t rsa, int64_t csa,
                                     const ST_T *b, int64_t csb, ST_T *acc, int64_t ldacc)
{
    const ST_T *cols = b + j0 * csb + p0;
    int64_t p = 0;
    for (; p + ST_VL <= kc; p += ST_VL) {
        ST_VEC t[ST_DIRECT_G][ST_VL];
        if (width == ST_DIRECT_COLS) {
            _Pragma("GCC unroll 4") for (int g = 0; g < ST_DIRECT_G; g++) {
                ST_F(prefetch_cols)(cols + g * ST_VL * csb, csb, p);
                ST_TRANSPOSE_BLOCK(cols + g * ST_VL * csb + p, csb, (ST_T *)t[g], ST_VL);
            }
            ST_F(fma_groups)(m, a + (p0 + p) * csa, rsa, csa, t, acc, ldacc, p == 0);
            continue;
        }
        for (int64_t v = 0; v < width; v += ST_VL) {
            ST_F(prefetch_cols)(cols + v * csb, csb, p);
            ST_TRANSPOSE_BLOCK(cols + v * csb + p, csb, (ST_T *)t[0], ST_VL);
            ST_F(fma_rows)(m, a + (p0 + p) * csa, rsa, csa, t[0], ST_VL, acc + v, ldacc, p == 0);
        }
    }
    for (; p < kc; p++)
        for (int64_t v = 0; v < width; v += ST_VL) {
            ST_VEC w;
            _Pragma("GCC unroll 16") for (int l = 0; l < ST_VL; l++)
                w[l] = cols[(v + l) * csb + p];
            ST_F(fma_rows)(m, a + (p0 + p) * csa, rsa, csa, &w, 1, acc + v, ldacc, p == 0);
        }
}

/* The same for column-major B (b[p + j*csb]: the transposed view of an (out, in) array,
 * each column of B a contiguous row): ST_TILE columns at a time are read along their rows
 * in VL x VL blocks, transposed in registers into a row-major kc x ST_TILE tile, and the
 * tile goes through block_rows: the arithmetic is that of row-major B. */
static inline void ST_F(block_cols)(int64_t m, int64_t p0, int64_t kc, int64_t j0,
                                    int64_t width, const ST_T *a, int64_t rsa, int64_t csa,
                                    const ST_T *b, int64_t csb, ST_T *acc, int64_t ldacc,
                                    ST_T *tile)
{
    for (int64_t t0 = 0; t0 < width; t0 += ST_TILE) {
        const int64_t tw = width - t0 < ST_TILE ? width - t0 : ST_TILE;
        int64_t vt = tw; /* the tile's columns from vt on go through block_rows */
        for (int64_t v = 0; v < tw; v += ST_VL) {
            const int lanes = tw - v < ST_VL ? (int)(tw - v) : ST_VL;
            const ST_T *col = b + (j0 + t0 + v) * csb + p0;
            int64_t p = 0;
            if (lanes == ST_VL)
                for (; p + ST_VL <= kc; p += ST_VL) {
                    ST_F(prefetch_cols)(col, csb, p);
                    ST_TRANSPOSE_BLOCK(col + p, csb, tile + p * ST_TILE + v, ST_TILE);
                }
            if (vt == tw) vt = v;
            for (; p + ST_VL <= kc; p += ST_VL) {
                ST_VEC t[ST_VL];
                _Pragma("GCC unroll 16") for (int l = 0; l < ST_VL; l++) {
                    t[l] = l < lanes ? *(const ST_VEC *)(col + l * csb + p) : (ST_VEC){0};
                    if ((p + ST_VL) % ST_LINE < ST_VL) /* once per cache line of a column */
                        __builtin_prefetch(col + (l < lanes ? l : 0) * csb + p + 8 * ST_LINE,
                                           0, 2);
                }
                ST_F(transpose)(t);
                _Pragma("GCC unroll 16") for (int r = 0; r < ST_VL; r++)
                    *(ST_VEC *)(tile + (p + r) * ST_TILE + v) = t[r];
            }
            for (; p < kc; p++)
                for (int l = 0; l < lanes; l++) tile[p * ST_TILE + v + l] = col[l * csb + p];
        }
        if (vt < tw) /* the tile is in cache */
            ST_F(block_rows)(m, 0, kc, 0, tw - vt, a + p0 * csa, rsa, csa, tile + vt, ST_TILE,
                             acc + t0 + vt, ldacc, 0);
    }
}

#endif

/* C[:, j0:j0+width] = acc (first K block) or acc + C; then + bias and relu/leaky relu
 * (bias non-NULL and act set on the last block only). */
static inline void ST_F(store)(int64_t m, const ST_T *acc, int64_t ldacc, ST_T *c,
                               int64_t rsc, int64_t width, int add_c, const ST_T *bias,
                               int act, ST_T slope)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t v = 0; v < width; v += ST_VL) {
            const int lanes = width - v < ST_VL ? (int)(width - v) : ST_VL;
            ST_T *dst = c + i * rsc + v;
            ST_VEC s = *(const ST_VEC *)(acc + i * ldacc + v);
            if (add_c) s += ST_F(loadn)(dst, lanes);
            if (bias) s += ST_F(loadn)(bias + v, lanes);
            if (act) s = ST_F(activate)(s, act, slope);
            ST_F(storen)(dst, s, lanes);
        }
}

/* Sums in flight for columns that fit one vector: one chain per row waits on the FMA
 * latency (1x4096x16: 4096 dependent multiply-adds, 0.46x NumPy), so K blocks run side by
 * side, each (row, block) sum its own chain in p order; they go to C in block order, the
 * bits of one block at a time. */
#define ST_CHAINS 8

/* The sums of G K blocks of kc rows from p0 for the M rows of A and columns
 * [j0, j0 + width) (width <= VL) of row-major B: block g, row i at acc + (g*M + i)*VL.
 * M, G: constants, so that the sums stay in registers and the loop has no branch. */
static inline __attribute__((always_inline)) void
ST_F(narrow_blocks)(const int M, const int G, int64_t p0, int64_t kc, int64_t j0, int width,
                    const ST_T *a, int64_t rsa, int64_t csa, const ST_BT *b, int64_t rsb,
                    ST_T *acc)
{
    ST_VEC s[ST_CHAINS];
    _Pragma("GCC unroll 8") for (int c = 0; c < G * M; c++) s[c] = (ST_VEC){0};
    for (int64_t p = 0; p < kc; p++)
        _Pragma("GCC unroll 8") for (int g = 0; g < G; g++) {
            const int64_t q = p0 + g * kc + p;
            const ST_VEC w = ST_F(loadbn)(b + q * rsb + j0, width);
            _Pragma("GCC unroll 4") for (int i = 0; i < M; i++)
                s[g * M + i] += (a[i * rsa + q * csa] - (ST_VEC){0}) * w;
        }
    _Pragma("GCC unroll 8") for (int c = 0; c < G * M; c++) *(ST_VEC *)(acc + c * ST_VL) = s[c];
}

#define ST_NARROW_CASE(M)                                                                  \
    case M:                                                                                \
        if (nblk > 1)                                                                      \
            ST_F(narrow_blocks)(M, ST_CHAINS / M, p0, kc, j0, width, a, rsa, csa, b, rsb,  \
                                buf);                                                      \
        else                                                                               \
            ST_F(narrow_blocks)(M, 1, p0, kc, j0, width, a, rsa, csa, b, rsb, buf);        \
        break;

/* C[:, j0:j0+width] for m <= 4 rows and width <= VL over all of K: ST_CHAINS / m whole
 * K blocks at a time, then the rest one block at a time. */
static void ST_F(narrow)(int64_t m, int64_t j0, int width, int64_t k, int64_t kcb,
                         const ST_T *a, int64_t rsa, int64_t csa, const ST_BT *b, int64_t rsb,
                         ST_T *c, int64_t rsc, const ST_T *bias, int act, ST_T slope,
                         ST_T *buf)
{
    const int G = ST_CHAINS / (int)m;
    for (int64_t p0 = 0; p0 < k;) {
        const int nblk = (k - p0) / kcb >= G ? G : 1;
        const int64_t kc = k - p0 < kcb ? k - p0 : kcb;
        switch ((int)m) {
            ST_NARROW_CASE(1)
            ST_NARROW_CASE(2)
            ST_NARROW_CASE(3)
            ST_NARROW_CASE(4)
        }
        for (int g = 0; g < nblk; g++, p0 += kc) {
            const int last = p0 + kc >= k;
            ST_F(store)(m, buf + g * m * ST_VL, ST_VL, c + j0, rsc, width, p0 > 0,
                        last && bias ? bias + j0 : NULL, last ? act : 0, slope);
        }
    }
}
#undef ST_NARROW_CASE

static void ST_NAME(FASTFC_STREAM_ARGS_B(ST_T, ST_BT))
{
#ifdef ST_BF16
    const int row_major = 1; /* bf16 weights are row-major */
    (void)csb;
#else
    const int row_major = csb == 1;
#endif
    if (row_major && n1 - n0 <= ST_VL && m <= 4 && k > kcb) {
        ST_F(narrow)(m, n0, (int)(n1 - n0), k, kcb, a, rsa, csa, b, rsb, c, rsc, bias, act,
                     slope, buf);
        return;
    }
#ifndef ST_BF16
    if (!row_major) {
        /* a tile of columns through every K block before the next: each column of B (a row
         * of W) read in one run, which the prefetches 8 lines ahead keep up with. Up to
         * ST_DIRECT_M rows a tile's whole vectors skip the transposed tile */
        const int direct = m <= ST_DIRECT_M;
        const int64_t most = !direct ? ST_TILE : m == 1 ? ST_DIRECT_ROW1 : ST_DIRECT_COLS,
                      tile = cw < most ? cw : most;
        for (int64_t j0 = n0; j0 < n1; j0 += tile) {
            const int64_t width = n1 - j0 < tile ? n1 - j0 : tile,
                          whole = direct ? width / ST_VL * ST_VL : 0;
            for (int64_t p0 = 0; p0 < k; p0 += kcb) {
                const int64_t kc = k - p0 < kcb ? k - p0 : kcb;
                const int last = p0 + kc >= k;
                if (whole)
                    ST_F(direct_cols)(m, p0, kc, j0, whole, a, rsa, csa, b, csb, buf, cw);
                if (whole < width)
                    ST_F(block_cols)(m, p0, kc, j0 + whole, width - whole, a, rsa, csa, b,
                                     csb, buf + whole, cw, buf + m * cw);
                ST_F(store)(m, buf, cw, c + j0, rsc, width, p0 > 0,
                            last && bias ? bias + j0 : NULL, last ? act : 0, slope);
            }
        }
        return;
    }
#endif
    for (int64_t p0 = 0; p0 < k; p0 += kcb) { /* row-major B */
        const int64_t kc = k - p0 < kcb ? k - p0 : kcb;
        const int last = p0 + kc >= k;
        for (int64_t j0 = n0; j0 < n1; j0 += cw) {
            const int64_t width = n1 - j0 < cw ? n1 - j0 : cw;
            ST_F(block_rows)(m, p0, kc, j0, width, a, rsa, csa, b, rsb, buf, cw, pf);
            ST_F(store)(m, buf, cw, c + j0, rsc, width, p0 > 0, last && bias ? bias + j0 : NULL,
                        last ? act : 0, slope);
        }
    }
}

#ifdef ST_PNV
#if defined(ST_BF16) && ST_PNV != 2
#error "bfloat16 panels hold columns i and i + NR/2 in one word: ST_PNV must be 2"
#endif
/* B packed in panels (fastfc_?pack_panels): NR = ST_PNV*VL columns by k rows, each panel
 * contiguous (bfloat16: each row's columns i and i + NR/2 side by side, fastfc.packing).
 * For a few rows of A the micro-kernel (MR rows) would do MR rows' work: here
 * G panels go side by side instead, M*G*ST_PNV sums in registers (enough chains to hide
 * the FMA latency), each panel read once in a long run. Per element the GEMM's operations
 * in its order, as the row-major kernel above. */
#define ST_PACC (ST_VL * (int)sizeof(ST_T) >= 64 ? 16 : 12) /* sums kept in registers */
#define ST_PNR (ST_PNV * ST_VL)
#define ST_PF_STEPS (4096 / (ST_PNR * (int)sizeof(ST_BT))) /* a page ahead */

static inline __attribute__((always_inline)) void
ST_F(panel_tile)(const int M, const int G, int64_t kc, const ST_T *a, int64_t rsa,
                 int64_t csa, const ST_BT *bp, int64_t pstride, ST_T *c, int64_t rsc,
                 int64_t cols, int add_c, const ST_T *bias, int act, ST_T slope)
{
    ST_VEC acc[8][4 * ST_PNV];
    _Pragma("GCC unroll 8") for (int i = 0; i < M; i++)
        _Pragma("GCC unroll 16") for (int j = 0; j < G * ST_PNV; j++) acc[i][j] = (ST_VEC){0};
    for (int64_t p = 0; p < kc; p++) {
        /* one panel at a time (G = 1, many rows) is one slow stream, which the hardware
         * keeps too few lines ahead of from L3: fetch a page ahead (docs/tuning.md) */
        if (G == 1)
            _Pragma("GCC unroll 4") for (int l = 0; l < ST_PNR; l += ST_LINE)
                __builtin_prefetch(bp + (p + ST_PF_STEPS) * ST_PNR + l, 0, 2);
        ST_VEC w[4 * ST_PNV];
#ifdef ST_BF16 /* word i of a row: columns i (low half) and i + VL (high), one op each */
        _Pragma("GCC unroll 4") for (int g = 0; g < G; g++) {
            const ST_UVEC pair = *(const ST_UVEC *)(bp + g * pstride + p * ST_PNR);
            w[2 * g] = (ST_VEC)(pair << 16);
            w[2 * g + 1] = (ST_VEC)(pair & 0xFFFF0000u);
        }
#else
        _Pragma("GCC unroll 4") for (int g = 0; g < G; g++)
            _Pragma("GCC unroll 4") for (int v = 0; v < ST_PNV; v++)
                w[g * ST_PNV + v] = *(const ST_VEC *)(bp + g * pstride + p * ST_PNR + v * ST_VL);
#endif
        _Pragma("GCC unroll 8") for (int i = 0; i < M; i++) {
            const ST_VEC x = a[i * rsa + p * csa] - (ST_VEC){0}; /* x - 0 is x: a broadcast */
            _Pragma("GCC unroll 16") for (int j = 0; j < G * ST_PNV; j++) acc[i][j] += x * w[j];
        }
    }
    _Pragma("GCC unroll 8") for (int i = 0; i < M; i++)
        _Pragma("GCC unroll 16") for (int j = 0; j < G * ST_PNV; j++) {
            const int64_t col = (int64_t)j * ST_VL;
            if (col >= cols) break;
            const int lanes = cols - col < ST_VL ? (int)(cols - col) : ST_VL;
            ST_T *dst = c + i * rsc + col;
            ST_VEC s = acc[i][j];
            if (add_c) s += ST_F(loadn)(dst, lanes);
            if (bias) s += ST_F(loadn)(bias + col, lanes);
            if (act) s = ST_F(activate)(s, act, slope);
            ST_F(storen)(dst, s, lanes);
        }
}

/* Panels of columns [n0, n1) (n0 a multiple of NR), G at a time, then one at a time. */
static inline __attribute__((always_inline)) void
ST_F(panel_rows)(const int M, const int G, int64_t n0, int64_t n1, int64_t k, int64_t kcb,
                 const ST_T *a, int64_t rsa, int64_t csa, const ST_BT *bp, ST_T *c,
                 int64_t rsc, const ST_T *bias, int act, ST_T slope)
{
    for (int64_t j = n0; j < n1;) {
        const int g = n1 - j >= (int64_t)G * ST_PNR ? G : 1;
        const int64_t cols = n1 - j < (int64_t)g * ST_PNR ? n1 - j : (int64_t)g * ST_PNR;
        for (int64_t p0 = 0; p0 < k; p0 += kcb) {
            const int64_t kc = k - p0 < kcb ? k - p0 : kcb;
            const int last = p0 + kc >= k;
            const ST_BT *pb = bp + j * k + p0 * ST_PNR;
            if (g == G) /* two calls: G a constant in each, so the sums stay in registers */
                ST_F(panel_tile)(M, G, kc, a + p0 * csa, rsa, csa, pb, k * ST_PNR, c + j, rsc,
                                 cols, p0 > 0, last && bias ? bias + j : NULL, last ? act : 0,
                                 slope);
            else
                ST_F(panel_tile)(M, 1, kc, a + p0 * csa, rsa, csa, pb, k * ST_PNR, c + j, rsc,
                                 cols, p0 > 0, last && bias ? bias + j : NULL, last ? act : 0,
                                 slope);
        }
        j += cols;
    }
}

#define ST_PG_SUMS(M) (ST_PACC / ((M) * ST_PNV) > 4 ? 4 : ST_PACC / ((M) * ST_PNV) < 1 ? 1 : \
                       ST_PACC / ((M) * ST_PNV))
#ifdef ST_BF16
/* widened weights take registers beside the sums, x and the mask: with 16 (AVX2, SSE) the
 * inner loops of 1-3 rows spilled to the stack (docs/tuning.md, "bfloat16 panels without
 * spills"); 32 (AVX-512) hold every G the sums allow */
#define ST_PREGS (ST_VL * (int)sizeof(ST_T) >= 64 ? 32 : 16)
#define ST_PG_REGS(M) ((ST_PREGS - 2) / (((M) + 1) * ST_PNV) < 1 ? 1 \
                       : (ST_PREGS - 2) / (((M) + 1) * ST_PNV))
#define ST_PG(M) (ST_PG_SUMS(M) < ST_PG_REGS(M) ? ST_PG_SUMS(M) : ST_PG_REGS(M))
#else
#define ST_PG(M) ST_PG_SUMS(M)
#endif
static void ST_CAT(ST_NAME, _panels)(FASTFC_PSTREAM_ARGS_B(ST_T, ST_BT))
{
#define ST_PCASE(M) \
    case M: ST_F(panel_rows)(M, ST_PG(M), n0, n1, k, kcb, a, rsa, csa, bp, c, rsc, bias, act, \
                             slope); break;
    switch (m) { /* M rows in registers: at most ST_PMAX (fastfc_?ctx.pstream_max_m) */
    ST_PCASE(1) ST_PCASE(2) ST_PCASE(3) ST_PCASE(4)
#if ST_PMAX >= 5
    ST_PCASE(5)
#endif
#if ST_PMAX >= 6
    ST_PCASE(6)
#endif
#if ST_PMAX >= 8
    ST_PCASE(7) ST_PCASE(8)
#endif
    default: break;
    }
#undef ST_PCASE
}
#undef ST_PG
#undef ST_PG_SUMS
#ifdef ST_BF16
#undef ST_PG_REGS
#undef ST_PREGS
#endif
#undef ST_PMAX
#undef ST_PACC
#undef ST_PNR
#undef ST_PF_STEPS
#undef ST_PNV
#endif

#undef ST_CAT2
#undef ST_CAT
#undef ST_F
#undef ST_VEC
#undef ST_IVEC
#undef ST_HVEC
#undef ST_UVEC
#undef ST_BT
#undef ST_BF16
#undef ST_LANE_ACT
#undef ST_ROWS
#undef ST_NV
#undef ST_PREFETCH_PASSES
#undef ST_TILE
#undef ST_TRANSPOSE_BLOCK
#undef ST_DIRECT_M
#undef ST_DIRECT_COLS
#undef ST_DIRECT_ROW1
#undef ST_DIRECT_G
#undef ST_LINE
#undef ST_T
#undef ST_IT
#undef ST_VL
#undef ST_NAME
