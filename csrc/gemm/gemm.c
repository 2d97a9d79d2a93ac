#include "fastfc.h"
#include "dispatch/dispatch.h"
#include "epilogue/act.h"
#include "gemm/pool.h"
#include "gemm/threads.h"
#include "train/row_owners.h"

#define GT float
#define GP s
#define GCTX fastfc_sctx
#include "gemm/gemm_template.h"

#define GT double
#define GP d
#define GCTX fastfc_dctx
#include "gemm/gemm_template.h"

/* The two products of a pair, for the pool: chunk c is product c, on one thread. */
typedef struct { const fastfc_gemm_spec *s[2]; int rc[2]; } gemm_pair_job;

/* Side by side pays for small products, which split poorly over threads; larger ones
 * (over the table's MAX_PAIR_MNK) run faster one after the other on all threads. A worker
 * that comes late leaves both to the calling thread. */
#define DEFINE_GEMM_PAIR(P)                                                                \
    static int P##pair_chunk(void *ctx, int64_t c)                                         \
    {                                                                                      \
        gemm_pair_job *j = ctx;                                                            \
        j->rc[c] = P##gemm_spec(1, j->s[c]);                                               \
        return 0;                                                                          \
    }                                                                                      \
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
            gemm_pair_job j = {{s0, s1}, {0, 0}};                                          \
            fastfc_pool_run(2, 2, P##pair_chunk, &j);                                      \
            return j.rc[0] | j.rc[1];                                                      \
        }                                                                                  \
        return P##gemm_spec(nt, s0) | P##gemm_spec(nt, s1);                                \
    }

DEFINE_GEMM_PAIR(s)
DEFINE_GEMM_PAIR(d)
