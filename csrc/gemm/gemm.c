#include "omp_compat.h"
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

/* Side by side pays for small products, which split poorly over threads; larger ones
 * (over the table's MAX_PAIR_MNK) run faster one after the other on all threads. */
#define DEFINE_GEMM_PAIR(P)                                                                \
    int fastfc_##P##gemm_pair(int nthreads, const fastfc_gemm_spec *s0,                    \
                              const fastfc_gemm_spec *s1)                                  \
    {                                                                                      \
        int nt = fastfc_threads_allowed(nthreads);                                         \
        double w0 = (double)s0->m * s0->n * s0->k, w1 = (double)s1->m * s1->n * s1->k;     \
        if (nt == 2 && w0 > 0 && w1 > 0 &&                                                 \
            w0 + w1 >= (double)fastfc_tuned(FASTFC_T_MIN_PARALLEL_MNK) &&                  \
            w0 + w1 <= (double)fastfc_tuned(FASTFC_T_MAX_PAIR_MNK)) {                      \
            if (!fastfc_team_ready(w0 + w1))                                               \
                return P##gemm_spec(1, s0) | P##gemm_spec(1, s1);                          \
            int rc0 = 0, rc1 = 0;                                                          \
            _Pragma("omp parallel num_threads(2)")                                         \
            { /* a team of one (OMP_THREAD_LIMIT, nesting) runs both */                    \
                int id = omp_get_thread_num(), team = omp_get_num_threads();               \
                fastfc_team_count();                                                       \
                if (id == 0) rc0 = P##gemm_spec(1, s0);                                    \
                if (id == 1 || team == 1) rc1 = P##gemm_spec(1, s1);                       \
            }                                                                              \
            fastfc_team_done();                                                            \
            return rc0 | rc1;                                                              \
        }                                                                                  \
        return P##gemm_spec(nt, s0) | P##gemm_spec(nt, s1);                                \
    }

DEFINE_GEMM_PAIR(s)
DEFINE_GEMM_PAIR(d)
