/* The NaN / Inf check over [lo, hi) with AVX2 (built with -mavx2): integer tests of the bits,
 * exact (no floating-point operation, so no assists on subnormals); the tail by masked loads,
 * whose masked-off lanes read as 0 (finite). */
#include <immintrin.h>
#include <string.h>
#include "dispatch/dispatch.h"

/* lanes [0, left) of a vector of `lanes` 32-bit (or 64-bit) words: all ones */
static inline __m256i tail_mask(int64_t left, int lanes)
{
    const __m256i idx = lanes == 8 ? _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)
                                   : _mm256_setr_epi64x(0, 1, 2, 3);
    const __m256i n = lanes == 8 ? _mm256_set1_epi32((int)left) : _mm256_set1_epi64x(left);
    return lanes == 8 ? _mm256_cmpgt_epi32(n, idx) : _mm256_cmpgt_epi64(n, idx);
}

/* The running unsigned maximum of |x| as bits over [lo, hi): above 0x7f7fffff exactly
 * for Inf and NaN, and as a float the largest |x| (NaN when one is). Four accumulators
 * (64 bytes a step, two loads a cycle). */
static uint32_t max_abs_bits_s(int64_t lo, int64_t hi, const float *x)
{
    const __m256i abs = _mm256_set1_epi32(0x7fffffff);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = lo;
#define BITS(j) _mm256_and_si256(abs, _mm256_loadu_si256((const __m256i *)(x + i + (j))))
    for (; i + 32 <= hi; i += 32) {
        a0 = _mm256_max_epu32(a0, BITS(0));
        a1 = _mm256_max_epu32(a1, BITS(8));
        a2 = _mm256_max_epu32(a2, BITS(16));
        a3 = _mm256_max_epu32(a3, BITS(24));
    }
    for (; i + 8 <= hi; i += 8) a0 = _mm256_max_epu32(a0, BITS(0));
#undef BITS
    if (i < hi) {
        __m256i t = _mm256_maskload_epi32((const int *)(x + i), tail_mask(hi - i, 8));
        a1 = _mm256_max_epu32(a1, _mm256_and_si256(abs, t));
    }
    __m256i a = _mm256_max_epu32(_mm256_max_epu32(a0, a1), _mm256_max_epu32(a2, a3));
    uint32_t lane[8], m = 0;
    _mm256_storeu_si256((__m256i *)lane, a);
    for (int l = 0; l < 8; l++) m = lane[l] > m ? lane[l] : m;
    return m;
}

int fastfc_snonfinite_avx2(int64_t lo, int64_t hi, const float *x)
{
    return max_abs_bits_s(lo, hi, x) > 0x7f7fffffu;
}

float fastfc_smaxabs_avx2(const float *x, int64_t n)
{
    const uint32_t bits = max_abs_bits_s(0, n, x);
    float m;
    memcpy(&m, &bits, sizeof m);
    return m;
}

/* The same for doubles: |x| as bits is below 2^63, so a signed 64-bit compare orders it. */
double fastfc_dmaxabs_avx2(const double *x, int64_t n)
{
    const __m256i abs = _mm256_set1_epi64x(0x7fffffffffffffffLL);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0;
    int64_t i = 0;
#define MAX64(acc, v) _mm256_blendv_epi8(acc, v, _mm256_cmpgt_epi64(v, acc))
#define BITS(j) _mm256_and_si256(abs, _mm256_loadu_si256((const __m256i *)(x + i + (j))))
    for (; i + 8 <= n; i += 8) {
        a0 = MAX64(a0, BITS(0));
        a1 = MAX64(a1, BITS(4));
    }
    for (; i + 4 <= n; i += 4) a0 = MAX64(a0, BITS(0));
#undef BITS
    if (i < n)
        a1 = MAX64(a1, _mm256_and_si256(abs, _mm256_maskload_epi64((const long long *)(x + i),
                                                                    tail_mask(n - i, 4))));
    const __m256i a = MAX64(a0, a1);
#undef MAX64
    int64_t lane[4], m = 0;
    _mm256_storeu_si256((__m256i *)lane, a);
    for (int l = 0; l < 4; l++) m = lane[l] > m ? lane[l] : m;
    double d;
    memcpy(&d, &m, sizeof d);
    return d;
}

/* No unsigned 64-bit maximum in AVX2: OR the lanes whose exponent bits are all ones. */
int fastfc_dnonfinite_avx2(int64_t lo, int64_t hi, const double *x)
{
    const __m256i ex = _mm256_set1_epi64x(0x7ff0000000000000LL);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = lo;
#define BAD(v) _mm256_cmpeq_epi64(ex, _mm256_and_si256(ex, v))
#define LOAD(j) _mm256_loadu_si256((const __m256i *)(x + i + (j)))
    for (; i + 16 <= hi; i += 16) {
        a0 = _mm256_or_si256(a0, BAD(LOAD(0)));
        a1 = _mm256_or_si256(a1, BAD(LOAD(4)));
        a2 = _mm256_or_si256(a2, BAD(LOAD(8)));
        a3 = _mm256_or_si256(a3, BAD(LOAD(12)));
    }
    for (; i + 4 <= hi; i += 4) a0 = _mm256_or_si256(a0, BAD(LOAD(0)));
    if (i < hi)
        a1 = _mm256_or_si256(a1, BAD(_mm256_maskload_epi64((const long long *)(x + i),
                                                           tail_mask(hi - i, 4))));
#undef LOAD
#undef BAD
    __m256i a = _mm256_or_si256(_mm256_or_si256(a0, a1), _mm256_or_si256(a2, a3));
    return !_mm256_testz_si256(a, a);
}

/* The same over rows x cols at row stride rs (a block of C the GEMM wrote: every block on
 * the AVX2 path, whose kernels do not check): two accumulators, each row's tail by a
 * masked load. */
int fastfc_snonfinite_rows_avx2(const float *x, int64_t rows, int64_t cols, int64_t rs)
{
    const __m256i abs = _mm256_set1_epi32(0x7fffffff), tail = tail_mask(cols % 8, 8);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0;
    for (int64_t r = 0; r < rows; r++, x += rs) {
        int64_t j = 0;
#define BITS(j) _mm256_and_si256(abs, _mm256_loadu_si256((const __m256i *)(x + (j))))
        for (; j + 16 <= cols; j += 16) {
            a0 = _mm256_max_epu32(a0, BITS(j));
            a1 = _mm256_max_epu32(a1, BITS(j + 8));
        }
        if (j + 8 <= cols) { a0 = _mm256_max_epu32(a0, BITS(j)); j += 8; }
#undef BITS
        if (j < cols)
            a1 = _mm256_max_epu32(a1, _mm256_and_si256(abs, _mm256_maskload_epi32(
                                                               (const int *)(x + j), tail)));
    }
    __m256i a = _mm256_max_epu32(a0, a1);
    return !_mm256_testz_si256(_mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7f7fffff)),
                               _mm256_set1_epi32(-1));
}

int fastfc_dnonfinite_rows_avx2(const double *x, int64_t rows, int64_t cols, int64_t rs)
{
    const __m256i ex = _mm256_set1_epi64x(0x7ff0000000000000LL), tail = tail_mask(cols % 4, 4);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0;
    for (int64_t r = 0; r < rows; r++, x += rs) {
        int64_t j = 0;
#define BAD(v) _mm256_cmpeq_epi64(ex, _mm256_and_si256(ex, v))
#define LOAD(j) _mm256_loadu_si256((const __m256i *)(x + (j)))
        for (; j + 8 <= cols; j += 8) {
            a0 = _mm256_or_si256(a0, BAD(LOAD(j)));
            a1 = _mm256_or_si256(a1, BAD(LOAD(j + 4)));
        }
        if (j + 4 <= cols) { a0 = _mm256_or_si256(a0, BAD(LOAD(j))); j += 4; }
        if (j < cols)
            a1 = _mm256_or_si256(a1, BAD(_mm256_maskload_epi64((const long long *)(x + j), tail)));
#undef LOAD
#undef BAD
    }
    __m256i a = _mm256_or_si256(a0, a1);
    return !_mm256_testz_si256(a, a);
}
