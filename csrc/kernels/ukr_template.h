/* Register-blocked micro-kernel written with GCC vector extensions, instantiated once
 * per ISA file (which sets the compile flags) and tile shape. Define before including:
 *   UKR_T (float|double), UKR_IT (int32_t|int64_t), UKR_VL (lanes), UKR_MR, UKR_NV
 *   (vectors per row, NR = NV*VL), UKR_NAME; UKR_EDGE for a kernel of the last rows of a
 *   block only; UKR_PREFETCH_B for one that prefetches B a page ahead. The contract is in
 *   dispatch/dispatch.h. */
#include <stddef.h>
#include <stdint.h>
#include "debug.h"

#define UKR_NR (UKR_NV * UKR_VL)
_Static_assert(UKR_MR >= 1 && UKR_NV >= 1 && UKR_MR * UKR_NV <= 32,
               "the MR x NV accumulators must fit the 32 vector registers");
_Static_assert(sizeof(UKR_IT) == sizeof(UKR_T), "lane masks are as wide as the lanes");
/* Every loop over the accumulators is unrolled, so they stay in registers: a loop left
 * rolled indexes acc at run time and makes GCC keep it on the stack (36 extra loads and
 * stores per call, which a short k does not hide). */
#ifndef UKR_UNROLLED
#define UKR_UNROLLED _Pragma("GCC unroll 32")
#endif
#define UKR_CAT2(a, b) a##b
#define UKR_CAT(a, b) UKR_CAT2(a, b)
#define UKR_VEC UKR_CAT(UKR_NAME, _vec)
#define UKR_IVEC UKR_CAT(UKR_NAME, _ivec)

/* aligned(sizeof(T)): loads and stores through these types may be unaligned. */
typedef UKR_T UKR_VEC __attribute__((vector_size(UKR_VL * sizeof(UKR_T)), aligned(sizeof(UKR_T))));
typedef UKR_IT UKR_IVEC __attribute__((vector_size(UKR_VL * sizeof(UKR_T)), aligned(sizeof(UKR_T))));

/* relu (act 1) or leaky relu (act 2) of v; v < 0 is false for NaN, so NaN passes through
 * as in np.maximum. */
static inline __attribute__((always_inline)) UKR_VEC
UKR_CAT(UKR_NAME, _activate)(UKR_VEC v, int act, UKR_T slope)
{
    const UKR_VEC zero = (UKR_VEC){0};
    UKR_IVEC neg = v < zero;
    UKR_VEC low = act == 1 ? zero : v * slope;
    return (UKR_VEC)(((UKR_IVEC)low & neg) | ((UKR_IVEC)v & ~neg));
}

/* Lanes [0, n) of the vector at p (the others read as 0, never touched): the last vector
 * of an edge column. ISA files with masked moves define UKR_MASKED_LOAD(p, n) and
 * UKR_MASKED_STORE(p, v, n) for float and double pointers; elsewhere a fixed-count lane
 * loop (a variable-length copy would become a libc call). */
static inline __attribute__((always_inline)) UKR_VEC
UKR_CAT(UKR_NAME, _loadn)(const UKR_T *p, int n)
{
    if (n >= UKR_VL) return *(const UKR_VEC *)p;
#ifdef UKR_MASKED_LOAD
    return (UKR_VEC)UKR_MASKED_LOAD(p, n);
#else
    UKR_T t[UKR_VL];
    UKR_UNROLLED for (int l = 0; l < UKR_VL; l++) t[l] = l < n ? p[l] : (UKR_T)0;
    return *(const UKR_VEC *)t;
#endif
}

static inline __attribute__((always_inline)) void
UKR_CAT(UKR_NAME, _storen)(UKR_T *p, UKR_VEC v, int n)
{
    if (n >= UKR_VL) { *(UKR_VEC *)p = v; return; }
#ifdef UKR_MASKED_STORE
    UKR_MASKED_STORE(p, v, n);
#else
    UKR_UNROLLED for (int l = 0; l < UKR_VL; l++) if (l < n) p[l] = v[l];
#endif
}

/* The bits of v - v in lanes [0, n): +0 for a finite lane, NaN for NaN and +-Inf. ORed over
 * a tile as it is stored, in registers: a scan of the stored tile (loads from L1) cost
 * about as much as a pass over dW from L2 (docs/tuning.md, the non-finite check). */
static inline __attribute__((always_inline)) UKR_IVEC
UKR_CAT(UKR_NAME, _nonfinite_bits)(UKR_VEC v, int n)
{
    UKR_IVEC b = (UKR_IVEC)(v - v);
    /* the lanes' mask loaded from a window of ones then zeros: a vector comparison of
     * int64 lanes is an internal error of GCC 12 on SSE2 */
    static const UKR_IT ones_then_zeros[2 * UKR_VL] = {[0 ... UKR_VL - 1] = -1};
    if (n < UKR_VL) b &= *(const UKR_IVEC *)(ones_then_zeros + UKR_VL - n);
    return b;
}

/* C = relu?(acc + C? + bias?) for all MR rows and columns < nr of a row-major tile; the
 * flags are constants after inlining, and so is nr on a full tile. The bias is loaded once:
 * C may alias it as far as the compiler knows, so a load per row would stay per row. */
static inline __attribute__((always_inline)) UKR_IVEC
UKR_CAT(UKR_NAME, _store)(UKR_VEC acc[UKR_MR][UKR_NV], UKR_T *c, int64_t rs_c, const int add_c,
                          const UKR_T *bias, const int relu, const int nr, const int check)
{
    UKR_IVEC bits = {0};
    UKR_VEC bv[UKR_NV];
    UKR_UNROLLED for (int j = 0; j < UKR_NV; j++)
        bv[j] = bias && nr > j * UKR_VL ? UKR_CAT(UKR_NAME, _loadn)(bias + j * UKR_VL,
                                                                   nr - j * UKR_VL)
                                        : (UKR_VEC){0};
    UKR_UNROLLED for (int i = 0; i < UKR_MR; i++)
        UKR_UNROLLED for (int j = 0; j < UKR_NV; j++) {
            const int lanes = nr - j * UKR_VL;
            if (lanes <= 0) break;
            UKR_T *dst = c + i * rs_c + j * UKR_VL;
            UKR_VEC v = acc[i][j];
            if (add_c) v += UKR_CAT(UKR_NAME, _loadn)(dst, lanes);
            if (bias) v += bv[j];
            if (check) bits |= UKR_CAT(UKR_NAME, _nonfinite_bits)(v, lanes);
            if (relu) v = UKR_CAT(UKR_NAME, _activate)(v, 1, 0);
            UKR_CAT(UKR_NAME, _storen)(dst, v, lanes);
        }
    return bits;
}

/* C = act(alpha*acc + beta*C + bias) for rows < mr and columns < nr of a row-major tile:
 * C is read (only when beta != 0) and written only there. */
static inline __attribute__((always_inline)) UKR_IVEC
UKR_CAT(UKR_NAME, _store_edges)(UKR_VEC acc[UKR_MR][UKR_NV], UKR_T *c, int64_t rs_c, int mr,
                                int nr, UKR_T alpha, UKR_T beta, const UKR_T *bias, int act,
                                UKR_T slope, const int check)
{
    UKR_IVEC bits = {0};
    UKR_UNROLLED for (int i = 0; i < UKR_MR; i++) {
        if (i >= mr) break;
        UKR_UNROLLED for (int j = 0; j < UKR_NV; j++) {
            const int lanes = nr - j * UKR_VL;
            if (lanes <= 0) break;
            UKR_T *dst = c + i * rs_c + j * UKR_VL;
            UKR_VEC v = acc[i][j];
            if (alpha != 1) v *= alpha;
            if (beta != 0) v += beta * UKR_CAT(UKR_NAME, _loadn)(dst, lanes);
            if (bias) v += UKR_CAT(UKR_NAME, _loadn)(bias + j * UKR_VL, lanes);
            if (check) bits |= UKR_CAT(UKR_NAME, _nonfinite_bits)(v, lanes);
            if (act != 0) v = UKR_CAT(UKR_NAME, _activate)(v, act, slope);
            UKR_CAT(UKR_NAME, _storen)(dst, v, lanes);
        }
    }
    return bits;
}

/* _store with its case (beta == 1, bias, relu) fixed at compile time. */
static inline __attribute__((always_inline)) UKR_IVEC
UKR_CAT(UKR_NAME, _store_case)(UKR_VEC acc[UKR_MR][UKR_NV], UKR_T *c, int64_t rs_c,
                               const UKR_T *bias, int add_c, int relu, const int nr,
                               const int check)
{
    switch (add_c | (bias != NULL) << 1 | relu << 2) {
    case 0: return UKR_CAT(UKR_NAME, _store)(acc, c, rs_c, 0, NULL, 0, nr, check);
    case 1: return UKR_CAT(UKR_NAME, _store)(acc, c, rs_c, 1, NULL, 0, nr, check);
    case 2: return UKR_CAT(UKR_NAME, _store)(acc, c, rs_c, 0, bias, 0, nr, check);
    case 3: return UKR_CAT(UKR_NAME, _store)(acc, c, rs_c, 1, bias, 0, nr, check);
    case 4: return UKR_CAT(UKR_NAME, _store)(acc, c, rs_c, 0, NULL, 1, nr, check);
    case 5: return UKR_CAT(UKR_NAME, _store)(acc, c, rs_c, 1, NULL, 1, nr, check);
    case 6: return UKR_CAT(UKR_NAME, _store)(acc, c, rs_c, 0, bias, 1, nr, check);
    default: return UKR_CAT(UKR_NAME, _store)(acc, c, rs_c, 1, bias, 1, nr, check);
    }
}

/* The tile into C (row-major in place, strided through a stack tile); with check, the OR
 * of the check's bits of every value stored. */
static inline __attribute__((always_inline)) UKR_IVEC
UKR_CAT(UKR_NAME, _store_tile)(UKR_VEC acc[UKR_MR][UKR_NV], UKR_T *c, int64_t rs_c,
                               int64_t cs_c, int mr, int nr, UKR_T alpha, UKR_T beta,
                               const UKR_T *bias, int act, UKR_T slope, const int check)
{
    /* Row-major C is written in place: the usual full tiles by straight-line code with
     * their case fixed at compile time, the others with edge rows skipped and the last
     * vector of an edge column masked. */
    if (cs_c == 1) {
        if (mr == UKR_MR && alpha == 1 && (beta == 0 || beta == 1) && act <= 1) {
            /* full tiles, and the last column tile of every block row (n = 10: all) */
            if (nr == UKR_NR)
                return UKR_CAT(UKR_NAME, _store_case)(acc, c, rs_c, bias, beta == 1, act,
                                                      UKR_NR, check);
            return UKR_CAT(UKR_NAME, _store_case)(acc, c, rs_c, bias, beta == 1, act, nr,
                                                  check);
        }
        return UKR_CAT(UKR_NAME, _store_edges)(acc, c, rs_c, mr, nr, alpha, beta, bias, act,
                                               slope, check);
    }
    /* Strided C (C^T of a swapped product) goes through a row-major stack tile. */
    UKR_T tile[UKR_MR * UKR_NR];
    if (beta != 0)
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++) tile[i * UKR_NR + j] = c[i * rs_c + j * cs_c];
    UKR_IVEC bits = UKR_CAT(UKR_NAME, _store_edges)(acc, tile, UKR_NR, mr, nr, alpha, beta,
                                                    bias, act, slope, check);
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) c[i * rs_c + j * cs_c] = tile[i * UKR_NR + j];
    return bits;
}

static inline __attribute__((always_inline)) void
UKR_CAT(UKR_NAME, _body)(FASTFC_UKR_ARGS(UKR_T), const UKR_T *pf, int64_t pf_lines)
{
    UKR_VEC acc[UKR_MR][UKR_NV];
    UKR_UNROLLED for (int i = 0; i < UKR_MR; i++)
        UKR_UNROLLED for (int j = 0; j < UKR_NV; j++) acc[i][j] = (UKR_VEC){0};
    /* The C tile is usually cold (L3 or memory): fetch it while the k loop runs. A fixed
     * count of prefetches (rows past mr repeat the last), as a loop GCC sinks below the
     * k loop and spills the accumulators around it. */
    if (cs_c == 1)
        UKR_UNROLLED for (int i = 0; i < UKR_MR; i++) {
            const UKR_T *row = c + (i < mr ? i : mr - 1) * rs_c;
            __builtin_prefetch(row, 1);
            __builtin_prefetch(row + nr - 1, 1);
        }

    /* pf_lines lines from pf into L2, one every `every` steps, at most k (UKR_AHEAD) */
    const int64_t every = pf_lines > 0 && pf_lines < k ? k / pf_lines : 1;
    const UKR_T *pf_end = pf ? pf + pf_lines * (64 / (int64_t)sizeof(UKR_T)) : NULL;
    for (int64_t p = 0, due = every; p < k; p++) {
        if (pf && --due == 0) {
            due = every;
            if (pf < pf_end) {
                __builtin_prefetch(pf, 0, 2);
                pf += 64 / sizeof(UKR_T);
            }
        }
#ifdef UKR_PREFETCH_B
        /* B a page ahead: the first tile of a micro-panel read in place from L3 */
        UKR_UNROLLED for (int l = 0; l < UKR_NR; l += 64 / (int)sizeof(UKR_T))
            __builtin_prefetch(b + (p + 4096 / (UKR_NR * sizeof(UKR_T))) * b_rs + l, 0, 3);
#endif
        UKR_VEC bv[UKR_NV];
        UKR_UNROLLED for (int j = 0; j < UKR_NV; j++)
            bv[j] = *(const UKR_VEC *)(b + p * b_rs + j * UKR_VL);
        UKR_UNROLLED for (int i = 0; i < UKR_MR; i++) {
            /* x - 0 folds to x exactly, so this is a plain broadcast load */
            UKR_VEC av = a[i * a_rs + p * a_cs] - (UKR_VEC){0};
            UKR_UNROLLED for (int j = 0; j < UKR_NV; j++) acc[i][j] += av * bv[j];
        }
    }

    if (!nonfinite) {
        (void)UKR_CAT(UKR_NAME, _store_tile)(acc, c, rs_c, cs_c, mr, nr, alpha, beta, bias,
                                             act, slope, 0);
        return;
    }
    UKR_IVEC chk = UKR_CAT(UKR_NAME, _store_tile)(acc, c, rs_c, cs_c, mr, nr, alpha, beta,
                                                  bias, act, slope, 1);
    UKR_IT any = 0;
    UKR_UNROLLED for (int l = 0; l < UKR_VL; l++) any |= chk[l];
    /* some stored v - v was NaN. Written only then: no cache line shared by the threads
     * is written per tile. */
    if (any)
        __atomic_store_n(nonfinite, 1, __ATOMIC_RELAXED);
}

/* The kernel with the check (nonfinite not NULL), a function of its own: the kernels
 * without it compile as before (with the check in the same function, GCC merged the
 * paths and the AVX2 6x16 kernel spilled: a 784-128-64-10 step went 170 -> 355 us).
 * UKR_NO_CHECK: no such twin; the driver scans C after these kernels (ctx scan_c). */
#ifndef UKR_NO_CHECK
static __attribute__((noinline)) void UKR_CAT(UKR_NAME, _checked)(FASTFC_UKR_ARGS(UKR_T))
{
#ifdef UKR_EDGE
    if (a_cs == 1)
#else
    if (a_rs != 1 || a_cs != UKR_MR)
#endif
        UKR_CAT(UKR_NAME, _body)(k, a, a_rs, 1, b, b_rs, c, rs_c, cs_c, mr, nr, alpha, beta,
                                 bias, act, slope, nonfinite, NULL, 0);
    else
        UKR_CAT(UKR_NAME, _body)(k, a, 1, a_cs, b, b_rs, c, rs_c, cs_c, mr, nr, alpha, beta,
                                 bias, act, slope, nonfinite, NULL, 0);
}
#define UKR_CHECKED(...) if (nonfinite) { UKR_CAT(UKR_NAME, _checked)(__VA_ARGS__); return; }
#else
#define UKR_CHECKED(...) do { (void)nonfinite; FASTFC_ASSERT(!nonfinite); } while (0)
#endif

#ifdef UKR_EDGE
/* A tile of at most UKR_MR rows at the end of a block: A is a packed panel of the
 * full-height kernel (a_rs = 1, a_cs = that kernel's MR), of which this kernel reads its
 * fewer rows, or UKR_MR rows of x (a_cs = 1). */
static void UKR_NAME(FASTFC_UKR_ARGS(UKR_T))
{
    UKR_CHECKED(k, a, a_rs, a_cs, b, b_rs, c, rs_c, cs_c, mr, nr, alpha, beta, bias, act,
                slope, nonfinite);
    if (a_cs == 1)
        UKR_CAT(UKR_NAME, _body)(k, a, a_rs, 1, b, b_rs, c, rs_c, cs_c, mr, nr, alpha, beta,
                                 bias, act, slope, NULL, NULL, 0);
    else
        UKR_CAT(UKR_NAME, _body)(k, a, 1, a_cs, b, b_rs, c, rs_c, cs_c, mr, nr, alpha, beta,
                                 bias, act, slope, NULL, NULL, 0);
}
#else
/* Packed A (a_rs = 1, a_cs = MR) with constant strides, and rows of x (a_cs = 1). */
static __attribute__((noinline)) void UKR_CAT(UKR_NAME, _packed)(FASTFC_UKR_ARGS(UKR_T))
{
    (void)a_rs; (void)a_cs; (void)nonfinite;
    UKR_CAT(UKR_NAME, _body)(k, a, 1, UKR_MR, b, b_rs, c, rs_c, cs_c, mr, nr, alpha, beta,
                             bias, act, slope, NULL, NULL, 0);
}

static void UKR_NAME(FASTFC_UKR_ARGS(UKR_T))
{
    UKR_CHECKED(k, a, a_rs, a_cs, b, b_rs, c, rs_c, cs_c, mr, nr, alpha, beta, bias, act,
                slope, nonfinite);
    if (a_rs == 1 && a_cs == UKR_MR)
        UKR_CAT(UKR_NAME, _packed)(k, a, 1, UKR_MR, b, b_rs, c, rs_c, cs_c, mr, nr, alpha,
                                   beta, bias, act, slope, NULL);
    else
        UKR_CAT(UKR_NAME, _body)(k, a, a_rs, 1, b, b_rs, c, rs_c, cs_c, mr, nr, alpha, beta,
                                 bias, act, slope, NULL, NULL, 0);
}
#endif

#ifdef UKR_AHEAD
/* The full-height kernel that also reads pf_lines lines at pf into L2 (no check). */
static void UKR_CAT(UKR_NAME, _ahead)(FASTFC_UKR_ARGS(UKR_T), const UKR_T *pf,
                                      int64_t pf_lines)
{
    (void)nonfinite;
    if (a_rs == 1 && a_cs == UKR_MR)
        UKR_CAT(UKR_NAME, _body)(k, a, 1, UKR_MR, b, b_rs, c, rs_c, cs_c, mr, nr, alpha,
                                 beta, bias, act, slope, NULL, pf, pf_lines);
    else
        UKR_CAT(UKR_NAME, _body)(k, a, a_rs, 1, b, b_rs, c, rs_c, cs_c, mr, nr, alpha, beta,
                                 bias, act, slope, NULL, pf, pf_lines);
}
#endif

#undef UKR_CHECKED
#undef UKR_AHEAD
#undef UKR_NR
#undef UKR_VEC
#undef UKR_IVEC
#undef UKR_T
#undef UKR_IT
#undef UKR_VL
#undef UKR_MR
#undef UKR_NV
#undef UKR_NAME
#undef UKR_EDGE
#undef UKR_PREFETCH_B
