/* Inverted dropout whose mask is a pure function of (seed, stream, element index). */
#include "fastfc.h"
#include "dispatch/dispatch.h"
#include "dropout/philox.h"
#include "gemm/threads.h"

void fastfc_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    philox4x32_10(ctr, key, out);
}

/* Element i uses word i%4 of the block with counter (i/4 low, i/4 high, stream low, high). */
#define DEFINE_DROPOUT_SCALAR(T, P)                                                       \
    void fastfc_##P##dropout_scalar(int64_t lo, int64_t hi, const T *x, uint64_t thr,     \
                                    T scale, const uint32_t key[2],                       \
                                    const uint32_t stream[2], T *y, uint8_t *mask)        \
    {                                                                                     \
        for (int64_t blk = lo >> 2; blk <= (hi - 1) >> 2 && lo < hi; blk++) {            \
            uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)((uint64_t)blk >> 32),            \
                               stream[0], stream[1]}, r[4];                               \
            philox4x32_10(ctr, key, r);                                                   \
            for (int w = 0; w < 4; w++) {                                                 \
                int64_t i = blk * 4 + w;                                                  \
                if (i < lo || i >= hi) continue;                                          \
                int keep = r[w] >= thr;                                                   \
                y[i] = x[i] * (keep ? scale : (T)0);                                      \
                if (mask) mask[i] = (uint8_t)keep;                                        \
            }                                                                             \
        }                                                                                 \
    }

DEFINE_DROPOUT_SCALAR(float, s)
DEFINE_DROPOUT_SCALAR(double, d)

#define DEFINE_DROPOUT(T, P)                                                              \
    typedef struct {                                                                      \
        const T *x;                                                                       \
        uint64_t thr;                                                                     \
        T scale;                                                                          \
        const uint32_t *key, *str;                                                        \
        T *y;                                                                             \
        uint8_t *mask;                                                                    \
    } P##dropout_job;                                                                     \
    static void P##dropout_range(void *ctx, int64_t lo, int64_t hi)                       \
    {                                                                                     \
        const P##dropout_job *j = ctx;                                                    \
        fastfc_table()->P##dropout(lo, hi, j->x, j->thr, j->scale, j->key, j->str, j->y,  \
                                   j->mask);                                              \
    }                                                                                     \
    typedef struct { const T *dy; const uint8_t *mask; T scale; T *dx; } P##dropout_bw_job; \
    static void P##dropout_bw_range(void *ctx, int64_t lo, int64_t hi)                    \
    {                                                                                     \
        const P##dropout_bw_job *j = ctx;                                                 \
        /* the factor from the mask's 0/1 (scale or 0, exactly): a branch on a random mask \
         * mispredicted every other element, 8x NumPy's time at 4M elements */           \
        for (int64_t i = lo; i < hi; i++) j->dx[i] = j->dy[i] * ((T)j->mask[i] * j->scale); \
    }                                                                                     \
    void fastfc_##P##dropout(int nthreads, int64_t n, const T *x, double p, uint64_t seed, \
                             uint64_t stream, T *y, uint8_t *mask)                        \
    {                                                                                     \
        if (n <= 0) return;                                                               \
        double t = p * 4294967296.0 + 0.5;                                                \
        uint64_t thr = t >= 4294967296.0 ? (uint64_t)1 << 32 : (uint64_t)t;               \
        T scale = p < 1 ? (T)(1.0 / (1.0 - p)) : (T)0;                                    \
        uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};                       \
        uint32_t str[2] = {(uint32_t)stream, (uint32_t)(stream >> 32)};                   \
        /* a Philox word costs several plain elementwise ops: weigh it so */              \
        int nt = fastfc_elementwise_threads(nthreads, n * 8);                             \
        P##dropout_job j = {x, thr, scale, key, str, y, mask};                            \
        fastfc_parallel_ranges(nt, n, 64, P##dropout_range, &j);                          \
    }                                                                                     \
    void fastfc_##P##dropout_backward(int nthreads, int64_t n, const T *dy,               \
                                      const uint8_t *mask, T scale, T *dx)                \
    {                                                                                     \
        int nt = fastfc_elementwise_threads(nthreads, n);                                 \
        P##dropout_bw_job j = {dy, mask, scale, dx};                                      \
        fastfc_parallel_ranges(nt, n, 64, P##dropout_bw_range, &j);                       \
    }

DEFINE_DROPOUT(float, s)
DEFINE_DROPOUT(double, d)
