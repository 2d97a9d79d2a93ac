/* Backward of bias + activation in one pass over dy: dz = act'(y) * dy and db = sum dz. */
#include <omp.h>
#include "fastfc.h"
#include "epilogue/act.h"
#include "gemm/threads.h"

/* Threads split the columns; every db[j] is summed over rows in order, so the result
 * does not depend on the thread count. */
#define DEFINE_ACT_BACKWARD(T, P)                                                          \
    void fastfc_##P##act_backward(int nthreads, int64_t m, int64_t n,                      \
                                  const T *dy, int64_t rs_dy, int64_t cs_dy,               \
                                  const T *y, int64_t rs_y, int64_t cs_y,                  \
                                  int act, T slope, T *dz, T *db)                          \
    {                                                                                      \
        if (m <= 0 || n <= 0) {                                                            \
            if (db) for (int64_t j = 0; j < n; j++) db[j] = 0;                             \
            return;                                                                        \
        }                                                                                  \
        int nt = fastfc_elementwise_threads(nthreads, m * n);                              \
        const int64_t unit = 16;                                                           \
        if (nt > (n + unit - 1) / unit) nt = (int)((n + unit - 1) / unit);                 \
        _Pragma("omp parallel num_threads(nt) if (nt > 1)")                                \
        {                                                                                  \
            int64_t j0, j1;                                                                \
            fastfc_thread_range(omp_get_thread_num(), omp_get_num_threads(), n, unit,      \
                                &j0, &j1);                                                 \
            if (db) for (int64_t j = j0; j < j1; j++) db[j] = 0;                           \
            for (int64_t i = 0; i < m; i++) {                                              \
                const T *dyr = dy + i * rs_dy, *yr = y + i * rs_y;                         \
                T *dzr = dz ? dz + i * n : NULL;                                           \
                for (int64_t j = j0; j < j1; j++) {                                        \
                    T g = act == FASTFC_ACT_IDENTITY                                       \
                        ? dyr[j * cs_dy] : act_grad_##P(dyr[j * cs_dy], yr[j * cs_y], act, slope); \
                    if (dzr) dzr[j] = g;                                                   \
                    if (db) db[j] += g;                                                    \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
    }

DEFINE_ACT_BACKWARD(float, s)
DEFINE_ACT_BACKWARD(double, d)
