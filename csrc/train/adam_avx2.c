/* Adam with AVX2 + FMA. Built with -mavx2 -mfma -ffp-contract=off -fno-math-errno: the same
 * roundings as the plain build, eight lanes at a time. */
#include <math.h>
#include "dispatch/dispatch.h"

#define ADAM_T float
#define ADAM_SQRT sqrtf
#define ADAM_NAME fastfc_sadam_avx2
#include "train/adam_template.h"

#define ADAM_T double
#define ADAM_SQRT sqrt
#define ADAM_NAME fastfc_dadam_avx2
#include "train/adam_template.h"
