/* Where the small-batch path (stream_template.h) takes a product from the GEMM: values of
 * the per-CPU tuning table (csrc/tune/). */
#ifndef FASTFC_STREAM_H
#define FASTFC_STREAM_H
#include "tune/tune.h"

/* products with at most this many rows stream B, twice as many past twice B_FROM_MEMORY
 * (FASTFC_STREAM_MAX_M overrides) */
#define FASTFC_STREAM_MAX_M fastfc_tuned(FASTFC_T_STREAM_MAX_M)
/* bytes of the m x cw accumulators a pass updates */
#define FASTFC_STREAM_ACC_BYTES fastfc_tuned(FASTFC_T_STREAM_ACC_BYTES)
/* multiply-adds a weight read from memory is worth, for the thread count */
#define FASTFC_STREAM_READ_COST fastfc_tuned(FASTFC_T_STREAM_READ_COST)
#endif
