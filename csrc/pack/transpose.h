/* Rows of A (contiguous along k) into a k-major micro-panel: d[p*MR + i] = row_i[p].
 * A scalar copy of this transpose costs ~4 cycles an element (every store lands MR
 * elements away from the last); 4x4 (float) and 2x2 (double) SSE2 blocks, which every
 * x86-64 CPU has, move a block per handful of shuffles. Measured: dX = dY.W^T at
 * 64x4096x4096, where W is packed this way, spent a third of its time here. */
#ifndef FASTFC_PACK_TRANSPOSE_H
#define FASTFC_PACK_TRANSPOSE_H
#include <stdint.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

static inline void pack_rows_s(float *restrict d, int MR, const float *a, int64_t rsa, int mr,
                               int64_t kc)
{
    int i = 0;
#ifdef __SSE2__
    const int64_t k4 = kc - kc % 4;
    for (; i + 4 <= mr; i += 4) {
        const float *r0 = a + i * rsa, *r1 = r0 + rsa, *r2 = r1 + rsa, *r3 = r2 + rsa;
        for (int64_t p = 0; p < k4; p += 4) {
            __m128 v0 = _mm_loadu_ps(r0 + p), v1 = _mm_loadu_ps(r1 + p);
            __m128 v2 = _mm_loadu_ps(r2 + p), v3 = _mm_loadu_ps(r3 + p);
            _MM_TRANSPOSE4_PS(v0, v1, v2, v3);
            _mm_storeu_ps(d + p * MR + i, v0);
            _mm_storeu_ps(d + (p + 1) * MR + i, v1);
            _mm_storeu_ps(d + (p + 2) * MR + i, v2);
            _mm_storeu_ps(d + (p + 3) * MR + i, v3);
        }
        for (int64_t p = k4; p < kc; p++)
            for (int q = 0; q < 4; q++) d[p * MR + i + q] = a[(i + q) * rsa + p];
    }
#endif
    for (; i < mr; i++)
        for (int64_t p = 0; p < kc; p++) d[p * MR + i] = a[i * rsa + p];
}

static inline void pack_rows_d(double *restrict d, int MR, const double *a, int64_t rsa,
                               int mr, int64_t kc)
{
    int i = 0;
#ifdef __SSE2__
    const int64_t k2 = kc - kc % 2;
    for (; i + 2 <= mr; i += 2) {
        const double *r0 = a + i * rsa, *r1 = r0 + rsa;
        for (int64_t p = 0; p < k2; p += 2) {
            __m128d v0 = _mm_loadu_pd(r0 + p), v1 = _mm_loadu_pd(r1 + p);
            _mm_storeu_pd(d + p * MR + i, _mm_unpacklo_pd(v0, v1));
            _mm_storeu_pd(d + (p + 1) * MR + i, _mm_unpackhi_pd(v0, v1));
        }
        if (k2 < kc) {
            d[k2 * MR + i] = r0[k2];
            d[k2 * MR + i + 1] = r1[k2];
        }
    }
#endif
    for (; i < mr; i++)
        for (int64_t p = 0; p < kc; p++) d[p * MR + i] = a[i * rsa + p];
}
#endif
