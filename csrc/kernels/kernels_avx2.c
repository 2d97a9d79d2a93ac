/* AVX2 + FMA micro-kernels (BLIS haswell shapes): s 6x16, d 6x8, with 4- and 2-row kernels
 * for the last rows of a block. Built with -mavx2 -mfma. */
#include <immintrin.h>
#include "dispatch/dispatch.h"

/* Masked moves of the first n lanes: the last vector of an edge column. */
static inline __m256i lanes_below32(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline __m256i lanes_below64(int n)
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
}
#define UKR_MASKED_LOAD(p, n) _Generic((p), \
    const float *: _mm256_maskload_ps((const float *)(p), lanes_below32(n)), \
    const double *: _mm256_maskload_pd((const double *)(p), lanes_below64(n)))
/* The first n < 8 (4) lanes by 16-, 8- and 4-byte stores: vmaskmovps to memory is slow on
 * AMD (docs/tuning.md, driver choices). */
static inline void store_first_ps(float *p, __m256 v, int n)
{
    __m128 h = _mm256_castps256_ps128(v);
    if (n & 4) { _mm_storeu_ps(p, h); p += 4; h = _mm256_extractf128_ps(v, 1); }
    if (n & 2) { _mm_storel_pi((__m64 *)p, h); p += 2; h = _mm_movehl_ps(h, h); }
    if (n & 1) _mm_store_ss(p, h);
}
static inline void store_first_pd(double *p, __m256d v, int n)
{
    __m128d h = _mm256_castpd256_pd128(v);
    if (n & 2) { _mm_storeu_pd(p, h); p += 2; h = _mm256_extractf128_pd(v, 1); }
    if (n & 1) _mm_store_sd(p, h);
}
#define UKR_MASKED_STORE(p, v, n) _Generic((p), \
    float *: store_first_ps((float *)(p), (__m256)(v), n), \
    double *: store_first_pd((double *)(p), (__m256d)(v), n))

/* No NaN/Inf check in the kernels: the 6x16 tile's 12 accumulators and 3 operands leave
 * no register for it; the GEMM scans each block of C it wrote (docs/tuning.md) */
#define UKR_NO_CHECK
#define UKR_T float
#define UKR_IT int32_t
#define UKR_VL 8
#define UKR_MR 6
#define UKR_NV 2
#define UKR_NAME fastfc_sgemm_avx2_6x16
#include "ukr_template.h"

/* The same for the first tile of a micro-panel of pre-packed weights, read from L3 */
#define UKR_T float
#define UKR_IT int32_t
#define UKR_VL 8
#define UKR_MR 6
#define UKR_NV 2
#define UKR_NAME fastfc_sgemm_avx2_6x16_pfb
#define UKR_PREFETCH_B
#include "ukr_template.h"

#define UKR_T float
#define UKR_IT int32_t
#define UKR_VL 8
#define UKR_MR 4
#define UKR_NV 2
#define UKR_NAME fastfc_sgemm_avx2_4x16
#define UKR_EDGE
#include "ukr_template.h"

#define UKR_T float
#define UKR_IT int32_t
#define UKR_VL 8
#define UKR_MR 2
#define UKR_NV 2
#define UKR_NAME fastfc_sgemm_avx2_2x16
#define UKR_EDGE
#include "ukr_template.h"

#define UKR_T double
#define UKR_IT int64_t
#define UKR_VL 4
#define UKR_MR 6
#define UKR_NV 2
#define UKR_NAME fastfc_dgemm_avx2_6x8
#include "ukr_template.h"

#define UKR_T double
#define UKR_IT int64_t
#define UKR_VL 4
#define UKR_MR 4
#define UKR_NV 2
#define UKR_NAME fastfc_dgemm_avx2_4x8
#define UKR_EDGE
#include "ukr_template.h"

#define UKR_T double
#define UKR_IT int64_t
#define UKR_VL 4
#define UKR_MR 2
#define UKR_NV 2
#define UKR_NAME fastfc_dgemm_avx2_2x8
#define UKR_EDGE
#include "ukr_template.h"

/* Narrow kernels: full-height tiles of one vector, for the last column tile. */
#define UKR_T float
#define UKR_IT int32_t
#define UKR_VL 8
#define UKR_MR 6
#define UKR_NV 1
#define UKR_NAME fastfc_sgemm_avx2_6x8
#include "ukr_template.h"

#define UKR_T double
#define UKR_IT int64_t
#define UKR_VL 4
#define UKR_MR 6
#define UKR_NV 1
#define UKR_NAME fastfc_dgemm_avx2_6x4
#include "ukr_template.h"

/* dst[r * ld + l] = src[l * lds + r] for an 8x8 block: rows l and l + 4 meet in one vector
 * by a 128-bit insert from memory, then 4x4 in-lane transposes (docs/tuning.md). */
static inline __attribute__((always_inline)) void transpose8_ps(const float *src, int64_t lds,
                                                                float *dst, int64_t ld)
{
    _Pragma("GCC unroll 2") for (int q = 0; q < 2; q++) {
        __m256 y[4];
        _Pragma("GCC unroll 4") for (int a = 0; a < 4; a++) {
            const float *s = src + a * lds + 4 * q;
            y[a] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(s)),
                                        _mm_loadu_ps(s + 4 * lds), 1);
        }
        const __m256d t0 = _mm256_castps_pd(_mm256_unpacklo_ps(y[0], y[1])),
                      t1 = _mm256_castps_pd(_mm256_unpackhi_ps(y[0], y[1])),
                      t2 = _mm256_castps_pd(_mm256_unpacklo_ps(y[2], y[3])),
                      t3 = _mm256_castps_pd(_mm256_unpackhi_ps(y[2], y[3]));
        float *d = dst + 4 * q * ld;
        _mm256_storeu_ps(d, _mm256_castpd_ps(_mm256_unpacklo_pd(t0, t2)));
        _mm256_storeu_ps(d + ld, _mm256_castpd_ps(_mm256_unpackhi_pd(t0, t2)));
        _mm256_storeu_ps(d + 2 * ld, _mm256_castpd_ps(_mm256_unpacklo_pd(t1, t3)));
        _mm256_storeu_ps(d + 3 * ld, _mm256_castpd_ps(_mm256_unpackhi_pd(t1, t3)));
    }
}
#define ST_TRANSPOSE_BLOCK transpose8_ps
#define ST_T float
#define ST_IT int32_t
#define ST_VL 8
#define ST_PNV 2
#define ST_PMAX 6
#define ST_NAME fastfc_sstream_avx2
#include "stream/stream_template.h"

#define ST_T float
#define ST_IT int32_t
#define ST_VL 8
#define ST_PNV 2
#define ST_PMAX 6
#define ST_BF16 1
#define ST_NAME fastfc_sbstream_avx2
#include "stream/stream_template.h"

#define BF_VL 8
#define BF_NAME fastfc_sbf16_panels_avx2
#include "pack/bf16_panels_template.h"

#define ST_T double
#define ST_IT int64_t
#define ST_VL 4
#define ST_PNV 2
#define ST_PMAX 6
#define ST_NAME fastfc_dstream_avx2
#include "stream/stream_template.h"

#define DOT_T float
#define DOT_VL 8
#define DOT_NAME fastfc_sdot_avx2
#include "stream/dot_template.h"

#define DOT_T double
#define DOT_VL 4
#define DOT_NAME fastfc_ddot_avx2
#include "stream/dot_template.h"

#define PEAK_VL_F 8
#define PEAK_NAME fma_peak_avx2
#include "peak_template.h"

void fastfc_sdropout_avx2(int64_t lo, int64_t hi, const float *x, uint64_t thr, float scale,
                          const uint32_t key[2], const uint32_t stream[2], float *y, uint8_t *mask);
void fastfc_ddropout_avx2(int64_t lo, int64_t hi, const double *x, uint64_t thr, double scale,
                          const uint32_t key[2], const uint32_t stream[2], double *y, uint8_t *mask);

#define CP_T float
#define CP_NR 16
#define CP_VEC 32
#define CP_NAME fastfc_scopy_panel_avx2
#include "pack/copy_panel_template.h"
#define CP_T double
#define CP_NR 8
#define CP_VEC 32
#define CP_NAME fastfc_dcopy_panel_avx2
#include "pack/copy_panel_template.h"

/* MC, KC, NC (0 here) come from the tuning table (csrc/tune/) at import */
const fastfc_isa_table fastfc_table_avx2 = {
    .s = {6, 16, 0, 0, 0, fastfc_sgemm_avx2_6x16, fastfc_sgemm_avx2_6x16_pfb,
          {2, 4}, {fastfc_sgemm_avx2_2x16, fastfc_sgemm_avx2_4x16},
          {8}, {fastfc_sgemm_avx2_6x8},
          fastfc_sstream_avx2, fastfc_sbstream_avx2,
          fastfc_sbf16_panels_avx2, .scan_c = 1, .maxabs = fastfc_smaxabs_avx2,
          .pstream = fastfc_sstream_avx2_panels, .pstream_max_m = 6,
          .bpstream = fastfc_sbstream_avx2_panels,
          .bpairs = fastfc_sbf16_panels_avx2_pairs, .copy_panel = fastfc_scopy_panel_avx2,
          .dot = fastfc_sdot_avx2},
    .d = {6, 8, 0, 0, 0, fastfc_dgemm_avx2_6x8, NULL,
          {2, 4}, {fastfc_dgemm_avx2_2x8, fastfc_dgemm_avx2_4x8},
          {4}, {fastfc_dgemm_avx2_6x4},
          fastfc_dstream_avx2, .scan_c = 1, .maxabs = fastfc_dmaxabs_avx2,
          .pstream = fastfc_dstream_avx2_panels, .pstream_max_m = 6,
          .copy_panel = fastfc_dcopy_panel_avx2, .dot = fastfc_ddot_avx2},
    .fma_peak = fma_peak_avx2,
    .sdropout = fastfc_sdropout_avx2,
    .ddropout = fastfc_ddropout_avx2,
    .sadam = fastfc_sadam_avx2,
    .dadam = fastfc_dadam_avx2,    .snonfinite = fastfc_snonfinite_avx2,
    .dnonfinite = fastfc_dnonfinite_avx2,
    .snonfinite_rows = fastfc_snonfinite_rows_avx2,
    .dnonfinite_rows = fastfc_dnonfinite_rows_avx2,
};
