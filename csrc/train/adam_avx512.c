/* Adam with AVX-512, built like adam_avx2.c (no contraction, no errno) with 512-bit
 * vectors: the same roundings, sixteen lanes at a time (docs/tuning.md, "Adam in 512-bit
 * vectors"). */
#include <math.h>
#include "dispatch/dispatch.h"

#define ADAM_T float
#define ADAM_SQRT sqrtf
#define ADAM_NAME fastfc_sadam_avx512
#include "train/adam_template.h"

#define ADAM_T double
#define ADAM_SQRT sqrt
#define ADAM_NAME fastfc_dadam_avx512
#include "train/adam_template.h"
