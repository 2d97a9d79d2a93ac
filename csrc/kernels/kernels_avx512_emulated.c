/* The AVX-512 kernels' source built for AVX2 (GCC splits each 512-bit vector in two), so
 * the 12x32 / 8x24 tiles, their block sizes and edges are tested on CPUs without AVX-512.
 * Test-only path: FASTFC_ISA=avx512-emulated. Slow (the accumulators spill). */
#define fastfc_sgemm_avx512_12x32 fastfc_sgemm_avx512emu_12x32
#define fastfc_sgemm_avx512_12x32_pfb fastfc_sgemm_avx512emu_12x32_pfb
#define fastfc_sgemm_avx512_12x32_ahead fastfc_sgemm_avx512emu_12x32_ahead
#define fastfc_dgemm_avx512_8x24_ahead fastfc_dgemm_avx512emu_8x24_ahead
#define fastfc_dgemm_avx512_8x24 fastfc_dgemm_avx512emu_8x24
#define fastfc_sgemm_avx512_8x32 fastfc_sgemm_avx512emu_8x32
#define fastfc_sgemm_avx512_4x32 fastfc_sgemm_avx512emu_4x32
#define fastfc_dgemm_avx512_4x24 fastfc_dgemm_avx512emu_4x24
#define fastfc_dgemm_avx512_2x24 fastfc_dgemm_avx512emu_2x24
#define fastfc_sgemm_avx512_12x16 fastfc_sgemm_avx512emu_12x16
#define fastfc_dgemm_avx512_8x8 fastfc_dgemm_avx512emu_8x8
#define fastfc_dgemm_avx512_8x16 fastfc_dgemm_avx512emu_8x16
#define fma_peak_avx512 fma_peak_avx512emu
#define fastfc_sstream_avx512 fastfc_sstream_avx512emu
#define fastfc_dstream_avx512 fastfc_dstream_avx512emu
#define fastfc_sstream_avx512_panels fastfc_sstream_avx512emu_panels
#define fastfc_dstream_avx512_panels fastfc_dstream_avx512emu_panels
#define fastfc_sbstream_avx512 fastfc_sbstream_avx512emu
#define fastfc_sbstream_avx512_panels fastfc_sbstream_avx512emu_panels
#define fastfc_sbf16_panels_avx512 fastfc_sbf16_panels_avx512emu
#define fastfc_sbf16_panels_avx512_pairs fastfc_sbf16_panels_avx512emu_pairs
#define fastfc_scopy_panel_avx512 fastfc_scopy_panel_avx512emu
#define fastfc_dcopy_panel_avx512 fastfc_dcopy_panel_avx512emu
#define fastfc_sdot_avx512 fastfc_sdot_avx512emu
#define fastfc_ddot_avx512 fastfc_ddot_avx512emu
#define fastfc_table_avx512 fastfc_table_avx512_emulated
/* the check's and Adam's AVX-512 files are not built for AVX2: this path uses AVX2's */
#define fastfc_snonfinite_avx512 fastfc_snonfinite_avx2
#define fastfc_dnonfinite_avx512 fastfc_dnonfinite_avx2
#define fastfc_snonfinite_rows_avx512 fastfc_snonfinite_rows_avx2
#define fastfc_dnonfinite_rows_avx512 fastfc_dnonfinite_rows_avx2
#define fastfc_sadam_avx512 fastfc_sadam_avx2
#define fastfc_dadam_avx512 fastfc_dadam_avx2
#define UKR_NO_CHECK /* the register check takes GCC minutes on emulated vectors */
#include "kernels_avx512.c"
