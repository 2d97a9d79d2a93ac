/* Activations outside the micro-kernel: the backward of an activation layer in one pass
 * over dy (dz = act'(y) * dy, and db = sum dz where no product is left to fuse it into: see
 * dz_sums_alone in gemm_template.h), also making the dZ rows the GEMM engine streams, and
 * an activation on its own. */
#include "omp_compat.h"
#include "fastfc.h"
#include "epilogue/act.h"
#include "gemm/threads.h"

#define sCOLS(ACT) scols(m, n, j0, j1, dy, rs_dy, cs_dy, y, rs_y, cs_y, ACT, slope, dz, db)
#define dCOLS(ACT) dcols(m, n, j0, j1, dy, rs_dy, cs_dy, y, rs_y, cs_y, ACT, slope, dz, db)

/* Columns [j0, j1) of all rows. `act` is a constant after inlining (FASTFC_FOR_ACT), so
 * each activation gets its own vectorized loop. Every db[j] is summed over rows in order:
 * the result does not depend on how columns are split. */
#define DEFINE_ACT_BACKWARD(T, P)                                                          \
    static inline __attribute__((always_inline)) void P##cols(                             \
        int64_t m, int64_t n, int64_t j0, int64_t j1, const T *dy, int64_t rs_dy,          \
        int64_t cs_dy, const T *y, int64_t rs_y, int64_t cs_y, const int act, T slope,     \
        T *dz, T *db)                                                                      \
    {                                                                                      \
        if (db) for (int64_t j = j0; j < j1; j++) db[j] = 0;                               \
        for (int64_t i = 0; i < m; i++) {                                                  \
            const T *dyr = dy + i * rs_dy, *yr = y + i * rs_y;                             \
            T *dzr = dz ? dz + i * n : NULL;                                               \
            if (cs_dy != 1 || cs_y != 1) {                                                 \
                for (int64_t j = j0; j < j1; j++) {                                        \
                    T g = act_grad_##P(dyr[j * cs_dy], yr[j * cs_y], act, slope);          \
                    if (dzr) dzr[j] = g;                                                   \
                    if (db) db[j] += g;                                                    \
                }                                                                          \
            } else if (dzr && db) { /* contiguous rows: a loop per case vectorizes */      \
                for (int64_t j = j0; j < j1; j++) {                                        \
                    T g = act_grad_##P(dyr[j], yr[j], act, slope);                         \
                    dzr[j] = g;                                                            \
                    db[j] += g;                                                            \
                }                                                                          \
            } else if (dzr) {                                                              \
                for (int64_t j = j0; j < j1; j++)                                          \
                    dzr[j] = act_grad_##P(dyr[j], yr[j], act, slope);                      \
            } else if (db) { /* identity: the bias sum alone */                            \
                for (int64_t j = j0; j < j1; j++)                                          \
                    db[j] += act_grad_##P(dyr[j], yr[j], act, slope);                      \
            }                                                                              \
        }                                                                                  \
    }                                                                                      \
    static void P##cols_any(int64_t m, int64_t n, int64_t j0, int64_t j1, const T *dy,     \
                            int64_t rs_dy, int64_t cs_dy, const T *y, int64_t rs_y,        \
                            int64_t cs_y, int act, T slope, T *dz, T *db)                  \
    {                                                                                      \
        FASTFC_FOR_ACT(act, P##COLS)                                                       \
    }                                                                                      \
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
        /* one thread (the engine's dZ rows, per block) opens no parallel region */        \
        FASTFC_PARALLEL_RANGES(n, unit, j0, j1,                                            \
                               P##cols_any(m, n, j0, j1, dy, rs_dy, cs_dy, y, rs_y, cs_y,  \
                                           act, slope, dz, db));                           \
    }

DEFINE_ACT_BACKWARD(float, s)
DEFINE_ACT_BACKWARD(double, d)

#define DEFINE_ACT_FORWARD(T, P)                                                           \
    void fastfc_##P##act_forward(int nthreads, int64_t n, const T *x, int act, T slope,     \
                                 T *y)                                                     \
    {                                                                                      \
        int nt = fastfc_elementwise_threads(nthreads, n);                                  \
        FASTFC_PARALLEL_FOR(n, i, y[i] = act_##P(x[i], act, slope));                       \
    }

DEFINE_ACT_FORWARD(float, s)
DEFINE_ACT_FORWARD(double, d)
