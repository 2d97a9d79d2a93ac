/* AVX-512 micro-kernels (BLIS skx shapes, row-major): s 12x32, d 8x24, 24 zmm accumulators,
 * with fewer-row kernels for the last rows of a block. */
#include "dispatch/dispatch.h"

/* Masked moves of the first n lanes: the last vector of an edge column. The same source
 * built for AVX2 (the test-only emulated path) has no mask registers: the template's lane
 * loop is used there. */
#ifdef __AVX512F__
#include <immintrin.h>
#define UKR_MASKED_LOAD(p, n) _Generic((p), \
    const float *: _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1), (const float *)(p)), \
    const double *: _mm512_maskz_loadu_pd((__mmask8)((1u << (n)) - 1), (const double *)(p)))
#define UKR_MASKED_STORE(p, v, n) _Generic((p), \
    float *: _mm512_mask_storeu_ps((float *)(p), (__mmask16)((1u << (n)) - 1), (__m512)(v)), \
    double *: _mm512_mask_storeu_pd((double *)(p), (__mmask8)((1u << (n)) - 1), (__m512d)(v)))
#endif

#define UKR_T float
#define UKR_IT int32_t
#define UKR_VL 16
#define UKR_MR 12
#define UKR_NV 2
#define UKR_NAME fastfc_sgemm_avx512_12x32
#define UKR_AHEAD
#include "ukr_template.h"

/* The same for the first tile of a micro-panel of pre-packed weights, read from L3: with B
 * prefetched, and no NaN check (inference only asks none) */
#ifndef UKR_NO_CHECK
#define UKR_NO_CHECK
#define UKR_CHECK_BACK
#endif
#define UKR_T float
#define UKR_IT int32_t
#define UKR_VL 16
#define UKR_MR 12
#define UKR_NV 2
#define UKR_NAME fastfc_sgemm_avx512_12x32_pfb
#define UKR_PREFETCH_B
#include "ukr_template.h"
#ifdef UKR_CHECK_BACK
#undef UKR_NO_CHECK
#undef UKR_CHECK_BACK
#endif

#define UKR_T float
#define UKR_IT int32_t
#define UKR_VL 16
#define UKR_MR 8
#define UKR_NV 2
#define UKR_NAME fastfc_sgemm_avx512_8x32
#define UKR_EDGE
#include "ukr_template.h"

#define UKR_T float
#define UKR_IT int32_t
#define UKR_VL 16
#define UKR_MR 4
#define UKR_NV 2
#define UKR_NAME fastfc_sgemm_avx512_4x32
#define UKR_EDGE
#include "ukr_template.h"

#define UKR_T double
#define UKR_IT int64_t
#define UKR_VL 8
#define UKR_MR 8
#define UKR_NV 3
#define UKR_NAME fastfc_dgemm_avx512_8x24
#define UKR_AHEAD
#include "ukr_template.h"

#define UKR_T double
#define UKR_IT int64_t
#define UKR_VL 8
#define UKR_MR 4
#define UKR_NV 3
#define UKR_NAME fastfc_dgemm_avx512_4x24
#define UKR_EDGE
#include "ukr_template.h"

#define UKR_T double
#define UKR_IT int64_t
#define UKR_VL 8
#define UKR_MR 2
#define UKR_NV 3
#define UKR_NAME fastfc_dgemm_avx512_2x24
#define UKR_EDGE
#include "ukr_template.h"

/* Narrow kernels: full-height tiles of fewer vectors, for the last column tile. */
#define UKR_T float
#define UKR_IT int32_t
#define UKR_VL 16
#define UKR_MR 12
#define UKR_NV 1
#define UKR_NAME fastfc_sgemm_avx512_12x16
#include "ukr_template.h"

#define UKR_T double
#define UKR_IT int64_t
#define UKR_VL 8
#define UKR_MR 8
#define UKR_NV 1
#define UKR_NAME fastfc_dgemm_avx512_8x8
#include "ukr_template.h"

#define UKR_T double
#define UKR_IT int64_t
#define UKR_VL 8
#define UKR_MR 8
#define UKR_NV 2
#define UKR_NAME fastfc_dgemm_avx512_8x16
#include "ukr_template.h"

#ifdef __AVX512F__
/* dst[r * ld + l] = src[l * lds + r] for a 16x16 block. 128-bit pieces of four rows are
 * gathered into each vector by (masked) broadcast loads, which need no shuffle unit, then
 * 4x4 in-lane transposes finish it: 32 shuffles a block instead of 64 two-source permutes
 * (docs/tuning.md, "W^T at small batches"). */
static inline __attribute__((always_inline)) void transpose16_ps(const float *src, int64_t lds,
                                                                 float *dst, int64_t ld)
{
    /* rows addressed from four bases and base + index*scale: GCC otherwise keeps a pointer
     * per row across the caller's loop, spills them and reloads one for each load */
    const char *base[4];
    const int64_t L = lds * (int64_t)sizeof(float), L3 = 3 * L;
    base[0] = (const char *)src;
    __asm__("" : "+r"(base[0]));
    _Pragma("GCC unroll 3") for (int h = 1; h < 4; h++) base[h] = base[h - 1] + 4 * L;
#define T16_ROW(h, a) ((const float *)(base[h] + ((a) == 3 ? L3 : (a) * L)))
    __m512 y[4][4]; /* y[q][a]: piece q of rows a, a + 4, a + 8, a + 12 */
    _Pragma("GCC unroll 4") for (int a = 0; a < 4; a++)
        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
            y[q][a] = _mm512_broadcast_f32x4(_mm_loadu_ps(T16_ROW(0, a) + 4 * q));
    _Pragma("GCC unroll 3") for (int h = 1; h < 4; h++)
        _Pragma("GCC unroll 4") for (int a = 0; a < 4; a++)
            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
                y[q][a] = _mm512_mask_broadcast_f32x4(y[q][a], (__mmask16)(0xF << (4 * h)),
                                                      _mm_loadu_ps(T16_ROW(h, a) + 4 * q));
#undef T16_ROW
    _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) {
        const __m512d t0 = _mm512_castps_pd(_mm512_unpacklo_ps(y[q][0], y[q][1])),
                      t1 = _mm512_castps_pd(_mm512_unpackhi_ps(y[q][0], y[q][1])),
                      t2 = _mm512_castps_pd(_mm512_unpacklo_ps(y[q][2], y[q][3])),
                      t3 = _mm512_castps_pd(_mm512_unpackhi_ps(y[q][2], y[q][3]));
        float *d = dst + 4 * q * ld;
        _mm512_storeu_ps(d, _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2)));
        _mm512_storeu_ps(d + ld, _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2)));
        _mm512_storeu_ps(d + 2 * ld, _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3)));
        _mm512_storeu_ps(d + 3 * ld, _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3)));
    }
}
#define ST_TRANSPOSE_BLOCK transpose16_ps
#endif
#define ST_T float
#define ST_IT int32_t
#define ST_VL 16
#define ST_PNV 2
#define ST_PMAX 8
#define ST_NAME fastfc_sstream_avx512
#include "stream/stream_template.h"

#define ST_T float
#define ST_IT int32_t
#define ST_VL 16
#define ST_PNV 2
#define ST_PMAX 8
#define ST_BF16 1
#define ST_NAME fastfc_sbstream_avx512
#include "stream/stream_template.h"

#define BF_VL 16
#define BF_NAME fastfc_sbf16_panels_avx512
#include "pack/bf16_panels_template.h"

#define ST_T double
#define ST_IT int64_t
#define ST_VL 8
#define ST_PNV 3
#define ST_PMAX 5
#define ST_NAME fastfc_dstream_avx512
#include "stream/stream_template.h"

#define DOT_T float
#define DOT_VL 16
#define DOT_NAME fastfc_sdot_avx512
#include "stream/dot_template.h"

#define DOT_T double
#define DOT_VL 8
#define DOT_NAME fastfc_ddot_avx512
#include "stream/dot_template.h"

#define PEAK_VL_F 16
#define PEAK_NAME fma_peak_avx512
#include "peak_template.h"

void fastfc_sdropout_avx2(int64_t lo, int64_t hi, const float *x, uint64_t thr, float scale,
                          const uint32_t key[2], const uint32_t stream[2], float *y, uint8_t *mask);
void fastfc_ddropout_avx2(int64_t lo, int64_t hi, const double *x, uint64_t thr, double scale,
                          const uint32_t key[2], const uint32_t stream[2], double *y, uint8_t *mask);

/* MC, KC, NC (0 here) come from the tuning table (csrc/tune/) at import */
#ifdef UKR_NO_CHECK
#define SCAN_C 1
#define SMAXABS fastfc_smaxabs_avx2
#define DMAXABS fastfc_dmaxabs_avx2
#else
#define SCAN_C 0
#define SMAXABS NULL
#define DMAXABS NULL
#endif
#define CP_T float
#define CP_NR 32
#define CP_VEC 64
#define CP_NAME fastfc_scopy_panel_avx512
#include "pack/copy_panel_template.h"
#define CP_T double
#define CP_NR 24
#define CP_VEC 64
#define CP_NAME fastfc_dcopy_panel_avx512
#include "pack/copy_panel_template.h"

const fastfc_isa_table fastfc_table_avx512 = {
    .s = {12, 32, 0, 0, 0, fastfc_sgemm_avx512_12x32, fastfc_sgemm_avx512_12x32_pfb,
          {4, 8}, {fastfc_sgemm_avx512_4x32, fastfc_sgemm_avx512_8x32},
          {16}, {fastfc_sgemm_avx512_12x16},
          fastfc_sstream_avx512, fastfc_sbstream_avx512,
          fastfc_sbf16_panels_avx512, .scan_c = SCAN_C, .b_in_l2 = 1, .maxabs = SMAXABS,
          .pstream = fastfc_sstream_avx512_panels, .pstream_max_m = 8,
          .bpstream = fastfc_sbstream_avx512_panels,
          .bpairs = fastfc_sbf16_panels_avx512_pairs,
          .ukr_ahead = fastfc_sgemm_avx512_12x32_ahead,
          .copy_panel = fastfc_scopy_panel_avx512, .dot = fastfc_sdot_avx512},
    .d = {8, 24, 0, 0, 0, fastfc_dgemm_avx512_8x24, NULL,
          {2, 4}, {fastfc_dgemm_avx512_2x24, fastfc_dgemm_avx512_4x24},
          {8, 16}, {fastfc_dgemm_avx512_8x8, fastfc_dgemm_avx512_8x16},
          fastfc_dstream_avx512, .scan_c = SCAN_C, .b_in_l2 = 1, .maxabs = DMAXABS,
          .pstream = fastfc_dstream_avx512_panels, .pstream_max_m = 5,
          .ukr_ahead = fastfc_dgemm_avx512_8x24_ahead,
          .copy_panel = fastfc_dcopy_panel_avx512, .dot = fastfc_ddot_avx512},
    .fma_peak = fma_peak_avx512,
    .sdropout = fastfc_sdropout_avx2,
    .ddropout = fastfc_ddropout_avx2,
    .sadam = fastfc_sadam_avx512,
    .dadam = fastfc_dadam_avx512,
    .snonfinite = fastfc_snonfinite_avx512,
    .dnonfinite = fastfc_dnonfinite_avx512,
    .snonfinite_rows = fastfc_snonfinite_rows_avx512,
    .dnonfinite_rows = fastfc_dnonfinite_rows_avx512,
};
