/* Portable micro-kernels (GCC/Clang vector extensions at 16 bytes: SSE2 on x86-64,
 * NEON on aarch64, scalar code elsewhere): s 4x8, d 4x4. */
#include "dispatch/dispatch.h"

#define UKR_T float
#define UKR_IT int32_t
#define UKR_VL 4
#define UKR_MR 4
#define UKR_NV 2
#define UKR_NAME fastfc_sgemm_generic_4x8
#include "ukr_template.h"

#define UKR_T float
#define UKR_IT int32_t
#define UKR_VL 4
#define UKR_MR 2
#define UKR_NV 2
#define UKR_NAME fastfc_sgemm_generic_2x8
#define UKR_EDGE
#include "ukr_template.h"

#define UKR_T double
#define UKR_IT int64_t
#define UKR_VL 2
#define UKR_MR 4
#define UKR_NV 2
#define UKR_NAME fastfc_dgemm_generic_4x4
#include "ukr_template.h"

#define UKR_T double
#define UKR_IT int64_t
#define UKR_VL 2
#define UKR_MR 2
#define UKR_NV 2
#define UKR_NAME fastfc_dgemm_generic_2x4
#define UKR_EDGE
#include "ukr_template.h"

/* Narrow kernels: full-height tiles of one vector, for the last column tile. */
#define UKR_T float
#define UKR_IT int32_t
#define UKR_VL 4
#define UKR_MR 4
#define UKR_NV 1
#define UKR_NAME fastfc_sgemm_generic_4x4
#include "ukr_template.h"

#define UKR_T double
#define UKR_IT int64_t
#define UKR_VL 2
#define UKR_MR 4
#define UKR_NV 1
#define UKR_NAME fastfc_dgemm_generic_4x2
#include "ukr_template.h"

#define ST_T float
#define ST_IT int32_t
#define ST_VL 4
#define ST_PNV 2
#define ST_PMAX 6
#define ST_NAME fastfc_sstream_generic
#include "stream/stream_template.h"

#define ST_T float
#define ST_IT int32_t
#define ST_VL 4
#define ST_PNV 2
#define ST_PMAX 6
#define ST_BF16 1
#define ST_NAME fastfc_sbstream_generic
#include "stream/stream_template.h"

#define BF_VL 4
#define BF_NAME fastfc_sbf16_panels_generic
#include "pack/bf16_panels_template.h"

#define ST_T double
#define ST_IT int64_t
#define ST_VL 2
#define ST_PNV 2
#define ST_PMAX 6
#define ST_LANE_ACT
#define ST_NAME fastfc_dstream_generic
#include "stream/stream_template.h"

#define DOT_T float
#define DOT_VL 4
#define DOT_NAME fastfc_sdot_generic
#include "stream/dot_template.h"

#define DOT_T double
#define DOT_VL 2
#define DOT_NAME fastfc_ddot_generic
#include "stream/dot_template.h"

#define PEAK_VL_F 4
#define PEAK_NAME fma_peak_generic
#include "peak_template.h"

/* MC, KC, NC (0 here) come from the tuning table (csrc/tune/) at import */
const fastfc_isa_table fastfc_table_generic = {
    .s = {4, 8, 0, 0, 0, fastfc_sgemm_generic_4x8, NULL, {2}, {fastfc_sgemm_generic_2x8},
          {4}, {fastfc_sgemm_generic_4x4},
          fastfc_sstream_generic, fastfc_sbstream_generic,
          fastfc_sbf16_panels_generic, .pstream = fastfc_sstream_generic_panels, .pstream_max_m = 6,
          .bpstream = fastfc_sbstream_generic_panels,
          .bpairs = fastfc_sbf16_panels_generic_pairs, .dot = fastfc_sdot_generic},
    .d = {4, 4, 0, 0, 0, fastfc_dgemm_generic_4x4, NULL, {2}, {fastfc_dgemm_generic_2x4},
          {2}, {fastfc_dgemm_generic_4x2},
          fastfc_dstream_generic, .pstream = fastfc_dstream_generic_panels, .pstream_max_m = 6,
          .dot = fastfc_ddot_generic},
    .fma_peak = fma_peak_generic,
    .sdropout = fastfc_sdropout_scalar,
    .ddropout = fastfc_ddropout_scalar,
    .sadam = fastfc_sadam_generic,
    .dadam = fastfc_dadam_generic,    .snonfinite = fastfc_snonfinite_generic,
    .dnonfinite = fastfc_dnonfinite_generic,
    .snonfinite_rows = fastfc_snonfinite_rows_generic,
    .dnonfinite_rows = fastfc_dnonfinite_rows_generic,
};
