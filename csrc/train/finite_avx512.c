/* The NaN / Inf check over [lo, hi) with AVX-512 (built with -mavx512f -mavx512dq): vfpclass
 * flags the IEEE classes themselves (exact, no arithmetic); the tail by a masked load. */
#include <immintrin.h>
#include "dispatch/dispatch.h"

/* QNaN 0x01, +Inf 0x08, -Inf 0x10, SNaN 0x80 */
#define NONFINITE_CLASSES 0x99

/* Four vectors (256 bytes) a step: the OR of four masks, tested once per step. */
int fastfc_snonfinite_avx512(int64_t lo, int64_t hi, const float *x)
{
    int64_t i = lo;
#define BAD(j) _mm512_fpclass_ps_mask(_mm512_loadu_ps(x + i + (j)), NONFINITE_CLASSES)
    for (; i + 64 <= hi; i += 64)
        if (BAD(0) | BAD(16) | BAD(32) | BAD(48)) return 1;
    for (; i + 16 <= hi; i += 16)
        if (BAD(0)) return 1;
#undef BAD
    if (i == hi) return 0;
    __mmask16 k = (__mmask16)((1u << (hi - i)) - 1);
    return _mm512_mask_fpclass_ps_mask(k, _mm512_maskz_loadu_ps(k, x + i), NONFINITE_CLASSES) != 0;
}

int fastfc_dnonfinite_avx512(int64_t lo, int64_t hi, const double *x)
{
    int64_t i = lo;
#define BAD(j) _mm512_fpclass_pd_mask(_mm512_loadu_pd(x + i + (j)), NONFINITE_CLASSES)
    for (; i + 32 <= hi; i += 32)
        if (BAD(0) | BAD(8) | BAD(16) | BAD(24)) return 1;
    for (; i + 8 <= hi; i += 8)
        if (BAD(0)) return 1;
#undef BAD
    if (i == hi) return 0;
    __mmask8 k = (__mmask8)((1u << (hi - i)) - 1);
    return _mm512_mask_fpclass_pd_mask(k, _mm512_maskz_loadu_pd(k, x + i), NONFINITE_CLASSES) != 0;
}

/* The same over rows x cols at row stride rs (a block of C the GEMM wrote: the stream
 * path, k == 0, after an activation; the GEMM's kernels check their registers instead):
 * the running unsigned maximum of |x| as bits, above the largest finite exactly for Inf
 * and NaN; each row's tail by a masked load. */
#define DEFINE_NONFINITE_ROWS(T, P, W, LANES, ABS, BIG, MASK)                              \
    int fastfc_##P##nonfinite_rows_avx512(const T *x, int64_t rows, int64_t cols,          \
                                          int64_t rs)                                      \
    {                                                                                      \
        const __m512i abs = _mm512_set1_epi##W(ABS);                                       \
        const MASK k = (MASK)((1u << (cols % LANES)) - 1);                                 \
        __m512i a0 = _mm512_setzero_si512(), a1 = a0;                                      \
        for (int64_t r = 0; r < rows; r++, x += rs) {                                      \
            int64_t j = 0;                                                                 \
            for (; j + 2 * LANES <= cols; j += 2 * LANES) {                                \
                a0 = _mm512_max_epu##W(a0, _mm512_and_si512(abs, _mm512_loadu_si512(x + j))); \
                a1 = _mm512_max_epu##W(a1, _mm512_and_si512(                               \
                                               abs, _mm512_loadu_si512(x + j + LANES)));   \
            }                                                                              \
            if (j + LANES <= cols) {                                                       \
                a0 = _mm512_max_epu##W(a0, _mm512_and_si512(abs, _mm512_loadu_si512(x + j))); \
                j += LANES;                                                                \
            }                                                                              \
            if (j < cols)                                                                  \
                a1 = _mm512_max_epu##W(a1, _mm512_maskz_and_epi##W(                        \
                                               k, abs, _mm512_maskz_loadu_epi##W(k, x + j))); \
        }                                                                                  \
        return _mm512_cmpgt_epu##W##_mask(_mm512_max_epu##W(a0, a1),                       \
                                          _mm512_set1_epi##W(BIG)) != 0;                   \
    }

DEFINE_NONFINITE_ROWS(float, s, 32, 16, 0x7fffffff, 0x7f7fffff, __mmask16)
DEFINE_NONFINITE_ROWS(double, d, 64, 8, 0x7fffffffffffffffLL, 0x7fefffffffffffffLL, __mmask8)
