/* Activations outside the micro-kernel: the backward of an activation layer in one pass
 * over dy (dz = act'(y) * dy, and db = sum dz where no product is left to fuse it into: see
 * dz_sums_alone in gemm_template.h), also making the dZ rows the GEMM engine streams, and
 * an activation on its own. */
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
    typedef struct {                                                                       \
        int64_t m, n;                                                                      \
        const T *dy;                                                                       \
        int64_t rs_dy, cs_dy;                                                              \
        const T *y;                                                                        \
        int64_t rs_y, cs_y;                                                                \
        int act;                                                                           \
        T slope, *dz, *db;                                                                 \
    } P##act_backward_job;                                                                 \
    static void P##act_backward_cols(void *ctx, int64_t j0, int64_t j1)                    \
    {                                                                                      \
        const P##act_backward_job *j = ctx;                                                \
        P##cols_any(j->m, j->n, j0, j1, j->dy, j->rs_dy, j->cs_dy, j->y, j->rs_y, j->cs_y, \
                    j->act, j->slope, j->dz, j->db);                                       \
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
        P##act_backward_job j = {m, n, dy, rs_dy, cs_dy, y, rs_y, cs_y, act, slope, dz, db}; \
        fastfc_parallel_ranges(nt, n, (int)unit, P##act_backward_cols, &j);                \
    }

DEFINE_ACT_BACKWARD(float, s)
DEFINE_ACT_BACKWARD(double, d)

#define DEFINE_ACT_FORWARD(T, P)                                                           \
    typedef struct { const T *x; int act; T slope; T *y; } P##act_forward_job;             \
    static void P##act_forward_range(void *ctx, int64_t lo, int64_t hi)                    \
    {                                                                                      \
        const P##act_forward_job *j = ctx;                                                 \
        for (int64_t i = lo; i < hi; i++) j->y[i] = act_##P(j->x[i], j->act, j->slope);   \
    }                                                                                      \
    void fastfc_##P##act_forward(int nthreads, int64_t n, const T *x, int act, T slope,     \
                                 T *y)                                                     \
    {                                                                                      \
        int nt = fastfc_elementwise_threads(nthreads, n);                                  \
        P##act_forward_job j = {x, act, slope, y};                                         \
        fastfc_parallel_ranges(nt, n, 64, P##act_forward_range, &j);                       \
    }

DEFINE_ACT_FORWARD(float, s)
DEFINE_ACT_FORWARD(double, d)
