/* Training-step kernels: the fused softmax cross-entropy and the Adam update, each one
 * pass over its data so a model step stays a few calls into C. */
#include <math.h>
#include <string.h>
#include "fastfc.h"
#include "dispatch/dispatch.h"
#include "gemm/threads.h"
#include "train/row_owners.h"

/* The check reads ~16 elements a cycle (AVX-512; 8 with SSE2): it takes a team only past
 * ~0.5 M elements, where halving it pays for the region (a 784-128-64-10 MLP's 109 k
 * gradients stay on one thread: 2 x 3 us gained against a region's wake-up and a straggler). */
#define FINITE_ELEMS_PER_MADD 8

/* Per row: e = exp(z - max), s = sum e, lse = max + log(s); loss = lse - z[label];
 * softmax = e / s (each exp computed once, kept in grad or prob);
 * grad = (softmax - onehot) * grad_scale. Returns the summed loss (in double),
 * or -1 when a label is out of range (nothing is written past the bad row). */
#define DEFINE_SOFTMAX_XENT(T, P, EXP, LOG)                                                \
    double fastfc_##P##softmax_xent(int64_t m, int64_t n, const T *z, int64_t rs_z,        \
                                    const int64_t *labels, T grad_scale, T *grad,          \
                                    T *prob)                                               \
    {                                                                                      \
        double total = 0;                                                                  \
        for (int64_t i = 0; i < m; i++) {                                                  \
            const T *zr = z + i * rs_z;                                                    \
            int64_t y = labels[i];                                                         \
            if (y < 0 || y >= n) return -1;                                                \
            T mx = zr[0];                                                                  \
            for (int64_t j = 1; j < n; j++) mx = zr[j] > mx || zr[j] != zr[j] ? zr[j] : mx; \
            T *e = grad ? grad + i * n : prob ? prob + i * n : NULL, s = 0;                \
            for (int64_t j = 0; j < n; j++) {                                              \
                T ej = EXP(zr[j] - mx);                                                    \
                if (e) e[j] = ej;                                                          \
                s += ej;                                                                   \
            }                                                                              \
            total += (double)(mx + LOG(s) - zr[y]);                                        \
            if (!e) continue;                                                              \
            const T inv = (T)1 / s;                                                        \
            for (int64_t j = 0; j < n; j++) {                                              \
                T pj = e[j] * inv;                                                         \
                if (prob) prob[i * n + j] = pj;                                            \
                if (grad) grad[i * n + j] = (pj - (j == y ? (T)1 : (T)0)) * grad_scale;    \
            }                                                                              \
        }                                                                                  \
        return total;                                                                      \
    }

DEFINE_SOFTMAX_XENT(float, s, expf, logf)
DEFINE_SOFTMAX_XENT(double, d, exp, log)

/* The plain build's check: x * 0 is +-0 for finite x and NaN otherwise: OR the bits of those
 * products (an integer reduction, which vectorizes; a float sum would not without
 * reassociation flags). Sixteen accumulators: with one, the loop ran at a third of the speed
 * (Zen3, SSE2 build). The AVX2 / AVX-512 paths are in train/finite_*.c. */
#define DEFINE_NONFINITE(T, P, U)                                                          \
    static inline U P##times_zero_bits(T v)                                                \
    {                                                                                      \
        T z = v * (T)0;                                                                    \
        U u;                                                                               \
        memcpy(&u, &z, sizeof u);                                                          \
        return u;                                                                          \
    }                                                                                      \
    int fastfc_##P##nonfinite_generic(int64_t lo, int64_t hi, const T *x)                  \
    {                                                                                      \
        U acc[16] = {0}, bad = 0;                                                          \
        int64_t i = lo;                                                                    \
        for (; i + 16 <= hi; i += 16)                                                      \
            for (int j = 0; j < 16; j++) acc[j] |= P##times_zero_bits(x[i + j]);           \
        for (; i < hi; i++) bad |= P##times_zero_bits(x[i]);                               \
        for (int j = 0; j < 16; j++) bad |= acc[j];                                        \
        return (bad << 1) != 0; /* more than sign bits: some product was not +-0 */        \
    }                                                                                      \
    int fastfc_##P##nonfinite_rows_generic(const T *x, int64_t rows, int64_t cols,         \
                                           int64_t rs)                                     \
    {                                                                                      \
        U bad = 0;                                                                         \
        for (int64_t r = 0; r < rows; r++)                                                 \
            for (int64_t j = 0; j < cols; j++) bad |= P##times_zero_bits(x[r * rs + j]);   \
        return (bad << 1) != 0;                                                            \
    }

DEFINE_NONFINITE(float, s, uint32_t)
DEFINE_NONFINITE(double, d, uint64_t)

/* 1 when x[0, n) holds no NaN and no Inf: the path's check over parts on threads. */
#define DEFINE_ALL_FINITE(T, P)                                                            \
    typedef struct { const T *x; int bad; } P##finite_job;                                 \
    static void P##finite_range(void *ctx, int64_t lo, int64_t hi)                         \
    {                                                                                      \
        P##finite_job *j = ctx;                                                            \
        if (fastfc_table()->P##nonfinite(lo, hi, j->x))                                    \
            __atomic_store_n(&j->bad, 1, __ATOMIC_RELAXED);                                \
    }                                                                                      \
    int fastfc_##P##all_finite(int nthreads, int64_t n, const T *x)                        \
    {                                                                                      \
        int nt = fastfc_elementwise_threads(nthreads, n / FINITE_ELEMS_PER_MADD);          \
        /* the parts' answers OR together in any order: the answer is the same */          \
        P##finite_job j = {x, 0};                                                          \
        fastfc_parallel_ranges(nt, n, 64, P##finite_range, &j);                            \
        return !j.bad;                                                                     \
    }

DEFINE_ALL_FINITE(float, s)
DEFINE_ALL_FINITE(double, d)

#define ADAM_T float
#define ADAM_SQRT sqrtf
#define ADAM_NAME fastfc_sadam_generic
#include "train/adam_template.h"

#define ADAM_T double
#define ADAM_SQRT sqrt
#define ADAM_NAME fastfc_dadam_generic
#include "train/adam_template.h"

/* Adam / AdamW (PyTorch's formulation), in place over flat parameter buffers, the loop
 * split over threads in the path's ISA: g += wd*p (L2, when !decoupled);
 * m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; p *= 1 - lr*wd (when decoupled);
 * p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps). Each seat of the pool takes the rows of the
 * weights it read in the last training forward where they lie in p (row_owners.h). */
#define DEFINE_ADAM(T, P)                                                                  \
    typedef struct { T *p; const T *g; T *m, *v; const fastfc_adam_coef *k; } P##adam_job; \
    static void P##adam_range(void *ctx, int64_t lo, int64_t hi)                           \
    {                                                                                      \
        const P##adam_job *j = ctx;                                                        \
        fastfc_table()->P##adam(lo, hi, j->p, j->g, j->m, j->v, j->k);                     \
    }                                                                                      \
    void fastfc_##P##adam(int nthreads, int64_t n, T *p, const T *g, T *m, T *v, double lr, \
                          double b1, double b2, double eps, double wd, int decoupled,      \
                          int64_t step)                                                    \
    {                                                                                      \
        const fastfc_adam_coef k = {b1, b2, lr / (1 - pow(b1, (double)step)),              \
                                    1 / sqrt(1 - pow(b2, (double)step)), eps,              \
                                    decoupled ? 0 : wd, decoupled ? 1 - lr * wd : 1};      \
        int nt = fastfc_elementwise_threads(nthreads, n);                                  \
        P##adam_job j = {p, g, m, v, &k};                                                  \
        int64_t cuts[FASTFC_ROW_OWNERS_MAX_SEATS + 1];                                     \
        const int owned = fastfc_row_owner_cuts(p, n, sizeof(T), nt, cuts);                \
        fastfc_parallel_ring(nt, n, 64, owned ? cuts : NULL, P##adam_range, &j);           \
    }

DEFINE_ADAM(float, s)
DEFINE_ADAM(double, d)
