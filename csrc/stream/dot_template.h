/* One output column: c[i*rsc] = sum over p < k of a[i*rsa + p] * w[p] for m rows of A
 * (rows and w contiguous), instantiated once per ISA file (its compile flags: FMA
 * contraction as its other kernels). Define DOT_T (float|double), DOT_VL (lanes) and
 * DOT_NAME before including; the contract is fastfc_?dot_t in dispatch/dispatch.h.
 *
 * A row's sum is split over DOT_ACC * DOT_VL lanes: lane l adds the terms p = l (mod
 * DOT_ACC * DOT_VL) in p order (the last partial step as zeros past k), then the lanes
 * are added in a fixed tree. The operations depend on k alone, never on m, the rows
 * around or the threads: a row's result is the same in any batch. */
#define DOT_CAT2(a, b) a##b
#define DOT_CAT(a, b) DOT_CAT2(a, b)
#define DOT_F(name) DOT_CAT(DOT_CAT(DOT_NAME, _), name)
#define DOT_VEC DOT_F(vec)
/* 4 chains a row hide the FMA latency at batch 1; 2 rows a pass read w once for both */
#define DOT_ACC 4
#define DOT_ROWS 2
#define DOT_STEP (DOT_ACC * DOT_VL)

typedef DOT_T DOT_VEC __attribute__((vector_size(DOT_VL * sizeof(DOT_T)), aligned(sizeof(DOT_T))));

/* Lanes [0, n) at p for n in [0, VL], the others 0 (never read past n). Without a
 * branch: GCC fuses a multiply and an add into an FMA only within a block, and a product
 * that came through a branch stayed unfused in some rows (their bits then differed). */
static inline __attribute__((always_inline)) DOT_VEC DOT_F(loadn)(const DOT_T *p, int n)
{
#ifdef UKR_MASKED_LOAD
    return (DOT_VEC)UKR_MASKED_LOAD(p, n);
#else
    DOT_VEC v = {0};
    for (int l = 0; l < n; l++) v[l] = p[l];
    return v;
#endif
}

/* The lanes added in halves, (l, l + VL/2) first: a tree fixed by VL */
typedef DOT_T DOT_F(v8) __attribute__((vector_size(8 * sizeof(DOT_T)), aligned(sizeof(DOT_T))));
typedef DOT_T DOT_F(v4) __attribute__((vector_size(4 * sizeof(DOT_T)), aligned(sizeof(DOT_T))));
typedef DOT_T DOT_F(v2) __attribute__((vector_size(2 * sizeof(DOT_T)), aligned(sizeof(DOT_T))));
static inline __attribute__((always_inline)) DOT_T DOT_F(lanes_sum)(const DOT_VEC *acc)
{
    const DOT_VEC s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
#if DOT_VL == 16
    const DOT_F(v8) s8 = __builtin_shufflevector(s, s, 0, 1, 2, 3, 4, 5, 6, 7) +
                         __builtin_shufflevector(s, s, 8, 9, 10, 11, 12, 13, 14, 15);
#elif DOT_VL == 8
    const DOT_F(v8) s8 = s;
#endif
#if DOT_VL >= 8
    const DOT_F(v4) s4 = __builtin_shufflevector(s8, s8, 0, 1, 2, 3) +
                         __builtin_shufflevector(s8, s8, 4, 5, 6, 7);
#elif DOT_VL == 4
    const DOT_F(v4) s4 = s;
#endif
#if DOT_VL >= 4
    const DOT_F(v2) s2 = __builtin_shufflevector(s4, s4, 0, 1) +
                         __builtin_shufflevector(s4, s4, 2, 3);
#else
    const DOT_F(v2) s2 = s;
#endif
    return s2[0] + s2[1];
}

static inline __attribute__((always_inline)) void
DOT_F(rows)(const int R, int64_t k, const DOT_T *a, int64_t rsa, const DOT_T *w, DOT_T *c,
            int64_t rsc)
{
    DOT_VEC acc[DOT_ROWS][DOT_ACC];
    for (int r = 0; r < R; r++)
        for (int j = 0; j < DOT_ACC; j++) acc[r][j] = (DOT_VEC){0};
    int64_t p = 0;
    for (; p + DOT_STEP <= k; p += DOT_STEP)
        _Pragma("GCC unroll 4") for (int j = 0; j < DOT_ACC; j++) {
            const DOT_VEC wv = *(const DOT_VEC *)(w + p + j * DOT_VL);
            _Pragma("GCC unroll 2") for (int r = 0; r < R; r++)
                acc[r][j] += *(const DOT_VEC *)(a + r * rsa + p + j * DOT_VL) * wv;
        }
    if (p < k) /* the last partial step: zeros past k */
        _Pragma("GCC unroll 4") for (int j = 0; j < DOT_ACC; j++) {
            const int64_t left = k - p - j * DOT_VL;
            const int n = left >= DOT_VL ? DOT_VL : left > 0 ? (int)left : 0;
            const DOT_VEC wv = DOT_F(loadn)(w + p + j * DOT_VL, n);
            for (int r = 0; r < R; r++)
                acc[r][j] += DOT_F(loadn)(a + r * rsa + p + j * DOT_VL, n) * wv;
        }
    for (int r = 0; r < R; r++) c[r * rsc] = DOT_F(lanes_sum)(acc[r]);
}

void DOT_NAME(int64_t m, int64_t k, const DOT_T *a, int64_t rsa, const DOT_T *w, DOT_T *c,
              int64_t rsc)
{
    int64_t i = 0;
    for (; i + DOT_ROWS <= m; i += DOT_ROWS)
        DOT_F(rows)(DOT_ROWS, k, a + i * rsa, rsa, w, c + i * rsc, rsc);
    for (; i < m; i++) DOT_F(rows)(1, k, a + i * rsa, rsa, w, c + i * rsc, rsc);
}

#undef DOT_CAT2
#undef DOT_CAT
#undef DOT_F
#undef DOT_VEC
#undef DOT_ACC
#undef DOT_ROWS
#undef DOT_STEP
#undef DOT_T
#undef DOT_VL
#undef DOT_NAME
