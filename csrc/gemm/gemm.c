#include <omp.h>
#include "fastfc.h"
#include "dispatch/dispatch.h"
#include "epilogue/act.h"
#include "gemm/threads.h"

#define GT float
#define GP s
#define GCTX fastfc_sctx
#include "gemm/gemm_template.h"

#define GT double
#define GP d
#define GCTX fastfc_dctx
#include "gemm/gemm_template.h"

