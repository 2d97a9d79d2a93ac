/* Philox4x32-10 dropout, 8 blocks (32 elements) per step with AVX2. Bit-identical to the
 * scalar path: the same words decide the same elements. Built with -mavx2 -mfma. */
#include <immintrin.h>
#include "dispatch/dispatch.h"
#include "dropout/philox.h"

/* hi and lo 32-bit halves of a*m for 8 lanes */
static inline void mulhilo8(__m256i a, __m256i m, __m256i *hi, __m256i *lo)
{
    __m256i even = _mm256_mul_epu32(a, m);
    __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

/* Words of blocks blk..blk+7, returned in element order: out[q] holds elements 8q..8q+7. */
static inline void philox8(int64_t blk, const uint32_t key[2], const uint32_t stream[2],
                           __m256i out[4])
{
    __m256i idx = _mm256_add_epi64(_mm256_set1_epi64x(blk), _mm256_setr_epi64x(0, 1, 2, 3));
    __m256i idx2 = _mm256_add_epi64(idx, _mm256_set1_epi64x(4));
    /* low and high 32-bit words of the 8 block numbers */
    __m256i perm = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    __m256i a = _mm256_permutevar8x32_epi32(idx, perm), b = _mm256_permutevar8x32_epi32(idx2, perm);
    __m256i c0 = _mm256_permute2x128_si256(a, b, 0x20), c1 = _mm256_permute2x128_si256(a, b, 0x31);
    __m256i c2 = _mm256_set1_epi32((int)stream[0]), c3 = _mm256_set1_epi32((int)stream[1]);
    __m256i m0 = _mm256_set1_epi32((int)PHILOX_M0), m1 = _mm256_set1_epi32((int)PHILOX_M1);
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        __m256i hi0, lo0, hi1, lo1;
        mulhilo8(c0, m0, &hi0, &lo0);
        mulhilo8(c2, m1, &hi1, &lo1);
        c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
        c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
        c1 = lo1; c3 = lo0;
        k0 += PHILOX_W0; k1 += PHILOX_W1;
    }
    /* c0..c3 hold word w of blocks 0..7; transpose to blocks in order */
    __m256i t0 = _mm256_unpacklo_epi32(c0, c1), t1 = _mm256_unpackhi_epi32(c0, c1);
    __m256i t2 = _mm256_unpacklo_epi32(c2, c3), t3 = _mm256_unpackhi_epi32(c2, c3);
    __m256i b04 = _mm256_unpacklo_epi64(t0, t2), b15 = _mm256_unpackhi_epi64(t0, t2);
    __m256i b26 = _mm256_unpacklo_epi64(t1, t3), b37 = _mm256_unpackhi_epi64(t1, t3);
    out[0] = _mm256_permute2x128_si256(b04, b15, 0x20);
    out[1] = _mm256_permute2x128_si256(b26, b37, 0x20);
    out[2] = _mm256_permute2x128_si256(b04, b15, 0x31);
    out[3] = _mm256_permute2x128_si256(b26, b37, 0x31);
}

/* keep = word >= thr (unsigned), as all-ones lanes; thr in [1, 2^32]. */
static inline __m256i keep8(__m256i w, uint64_t thr)
{
    const __m256i flip = _mm256_set1_epi32((int)0x80000000u);
    if (thr == 0) return _mm256_set1_epi32(-1);
    if (thr > 0xFFFFFFFFu) return _mm256_setzero_si256();
    __m256i t = _mm256_set1_epi32((int)((uint32_t)(thr - 1) ^ 0x80000000u));
    return _mm256_cmpgt_epi32(_mm256_xor_si256(w, flip), t);
}

static inline void store_mask32(uint8_t *mask, const __m256i k[4])
{
    __m256i ab = _mm256_packs_epi32(k[0], k[1]), cd = _mm256_packs_epi32(k[2], k[3]);
    __m256i bytes = _mm256_packs_epi16(ab, cd);
    bytes = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)mask, _mm256_and_si256(bytes, _mm256_set1_epi8(1)));
}

void fastfc_sdropout_avx2(int64_t lo, int64_t hi, const float *x, uint64_t thr, float scale,
                          const uint32_t key[2], const uint32_t stream[2], float *y, uint8_t *mask)
{
    int64_t i = lo;
    const __m256 s = _mm256_set1_ps(scale);
    for (; (i & 31) == 0 && i + 32 <= hi; i += 32) {
        __m256i w[4], k[4];
        philox8(i >> 2, key, stream, w);
        for (int q = 0; q < 4; q++) {
            k[q] = keep8(w[q], thr);
            __m256 f = _mm256_and_ps(s, _mm256_castsi256_ps(k[q]));
            _mm256_storeu_ps(y + i + 8 * q, _mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * q), f));
        }
        if (mask) store_mask32(mask + i, k);
    }
    if (i < hi) fastfc_sdropout_scalar(i, hi, x, thr, scale, key, stream, y, mask);
}

void fastfc_ddropout_avx2(int64_t lo, int64_t hi, const double *x, uint64_t thr, double scale,
                          const uint32_t key[2], const uint32_t stream[2], double *y, uint8_t *mask)
{
    int64_t i = lo;
    const __m256d s = _mm256_set1_pd(scale);
    for (; (i & 31) == 0 && i + 32 <= hi; i += 32) {
        __m256i w[4], k[4];
        philox8(i >> 2, key, stream, w);
        for (int q = 0; q < 4; q++) {
            k[q] = keep8(w[q], thr);
            for (int h = 0; h < 2; h++) {
                __m128i k4 = h ? _mm256_extracti128_si256(k[q], 1) : _mm256_castsi256_si128(k[q]);
                __m256d f = _mm256_and_pd(s, _mm256_castsi256_pd(_mm256_cvtepi32_epi64(k4)));
                double *yp = y + i + 8 * q + 4 * h;
                _mm256_storeu_pd(yp, _mm256_mul_pd(_mm256_loadu_pd(x + i + 8 * q + 4 * h), f));
            }
        }
        if (mask) store_mask32(mask + i, k);
    }
    if (i < hi) fastfc_ddropout_scalar(i, hi, x, thr, scale, key, stream, y, mask);
}
