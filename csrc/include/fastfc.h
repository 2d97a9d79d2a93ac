/* fastfc public C API: the only header the Cython boundary sees.
 * Strides are in elements and may be negative. Every multithreaded call takes the number
 * of threads to use. The library's own state is the kernel table and thread cap set at
 * import, a fork flag, and the time of the last parallel call, which steers how many
 * threads the next small call wakes (never a result), and a per-thread count of the
 * parallel regions it opened. */
#ifndef FASTFC_H
#define FASTFC_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum fastfc_act {
    FASTFC_ACT_IDENTITY = 0,
    FASTFC_ACT_RELU = 1,
    FASTFC_ACT_LEAKY_RELU = 2,
    FASTFC_ACT_SIGMOID = 3,
    FASTFC_ACT_TANH = 4
};

/* AVX512_EMULATED: the AVX-512 kernels' source compiled for AVX2, for tests only. */
enum fastfc_isa { FASTFC_ISA_GENERIC = 0, FASTFC_ISA_AVX2 = 1, FASTFC_ISA_AVX512 = 2,
                  FASTFC_ISA_AVX512_EMULATED = 3 };

/* Dispatch: pick kernels once at import. Returns the ISA in use (at most `wanted`). */
int fastfc_init(int wanted);
int fastfc_isa_in_use(void);
/* 1 when the test-only AVX512_EMULATED kernels are built in (CMake FASTFC_TEST_KERNELS). */
int fastfc_test_kernels_built(void);
int fastfc_cpu_best_isa(void);
/* MR, NR, MC, KC, NC of the path in use; dtype_size is 4 or 8. */
void fastfc_block_sizes(int dtype_size, int sizes[5]);
/* The tuning table (csrc/tune/) as lines "name<TAB>value<TAB>source": writes at most len
 * bytes and returns the length of the whole text. */
int fastfc_tune_describe(char *buf, int len);
/* The malformed overrides met when the table was derived, one line each ("" if none). */
const char *fastfc_tune_warnings(void);
/* 0: a forked child keeps its threads (fastfc's pool restarts its workers there); the
 * OpenMP build of old ran such a child on one thread. */
int fastfc_forked_single_thread(void);
/* Threads a call may use: `wanted`, at most 4 per processor, OMP_THREAD_LIMIT and the
 * calling thread's cap (fastfc_set_thread_cap). */
int fastfc_threads_allowed(int wanted);
/* At most `cap` threads for this thread's calls (0: no cap); returns the cap before. */
int fastfc_set_thread_cap(int cap);
/* Adds delta (+1, -1) to the holds on the pool's team and returns them: while one is
 * held (a model's training step), idle workers spin through the gaps between its regions
 * instead of sleeping. */
int fastfc_hold_team(int delta);
/* 1: subnormal numbers are flushed to zero (x86's FTZ and DAZ) in the calling thread's
 * arithmetic and in the chunks of the regions it opens; 0: IEEE. Returns the mode before.
 * A model's training step flushes (docs/tuning.md, "Subnormal gradients"). */
int fastfc_flush_subnormals(int on);
/* Parallel regions with more than one thread that the calling thread has opened: lets
 * tests see that a team ran. */
int64_t fastfc_wide_regions(void);
/* Where an update of the flat buffer p (n elements of `elem` bytes) on nt threads cuts it
 * so that each thread takes the rows of W it read in the last K-split training forward
 * (train/row_owners.h; cuts: nt + 1): 1, or 0 when it splits p evenly. */
int fastfc_row_owner_cuts(const void *p, int64_t n, size_t elem, int nt, int64_t *cuts);
#define FASTFC_ROW_OWNERS_MAX_SEATS 64 /* notes of wider teams are not kept */

/* C = alpha*A*B + beta*C, then (bias, activation) on the result.
 * A is m x k at a[i*rsa + p*csa]; B is k x n; C is m x n. C is not read when beta == 0.
 * bias (length n, contiguous) may be NULL. Returns 0, or -1 when out of memory. */
int fastfc_sgemm(int nthreads, int64_t m, int64_t n, int64_t k, float alpha,
                  const float *a, int64_t rsa, int64_t csa,
                  const float *b, int64_t rsb, int64_t csb, float beta,
                  float *c, int64_t rsc, int64_t csc,
                  const float *bias, int act, float slope);
int fastfc_dgemm(int nthreads, int64_t m, int64_t n, int64_t k, double alpha,
                  const double *a, int64_t rsa, int64_t csa,
                  const double *b, int64_t rsb, int64_t csb, double beta,
                  double *c, int64_t rsc, int64_t csc,
                  const double *bias, int act, double slope);
/* The same with B in bfloat16 (the uint16_t bits, row-major: B[p, j] = b[p*rsb + j]),
 * each weight widened exactly: the results equal fastfc_?gemm's on the widened B. */
int fastfc_sgemm_bf16(int nthreads, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, int64_t rsa, int64_t csa, const uint16_t *b, int64_t rsb,
                      float beta, float *c, int64_t rsc, int64_t csc,
                      const float *bias, int act, float slope);
int fastfc_dgemm_bf16(int nthreads, int64_t m, int64_t n, int64_t k, double alpha,
                      const double *a, int64_t rsa, int64_t csa, const uint16_t *b,
                      int64_t rsb, double beta, double *c, int64_t rsc, int64_t csc,
                      const double *bias, int act, double slope);

/* The same with B packed once into the micro-kernel's panels (fastfc_?pack_panels): B
 * read in place in long runs, never packed per call; the results equal fastfc_?gemm's.
 * Returns -2 when nr is not this path's panel width. */
int fastfc_sgemm_panels(int nthreads, int64_t m, int64_t n, int64_t k, float alpha,
                        const float *a, int64_t rsa, int64_t csa, const float *panels, int nr,
                        float beta, float *c, int64_t rsc, int64_t csc,
                        const float *bias, int act, float slope);
int fastfc_dgemm_panels(int nthreads, int64_t m, int64_t n, int64_t k, double alpha,
                        const double *a, int64_t rsa, int64_t csa, const double *panels,
                        int nr, double beta, double *c, int64_t rsc, int64_t csc,
                        const double *bias, int act, double slope);
/* w (k x n at w[p*rsw + j*csw]) into panels of NR columns by k rows, panel j/NR at dst +
 * j*k (k * NR * ceil(n/NR) elements; columns past n zero). Returns NR, the path's panel
 * width (fastfc_?panel_width). */
int fastfc_spack_panels(const float *w, int64_t rsw, int64_t csw, int64_t k, int64_t n,
                        float *dst);
int fastfc_dpack_panels(const double *w, int64_t rsw, int64_t csw, int64_t k, int64_t n,
                        double *dst);
int fastfc_spanel_width(void);
int fastfc_dpanel_width(void);
/* The row stride for a buffer of `cols`-element rows that a product reads as its x: cols,
 * or a cache line more where such rows crowd L1 sets (the GEMM would pack them). */
int64_t fastfc_srows_ld(int64_t cols);
int64_t fastfc_drows_ld(int64_t cols);
/* The same with bfloat16 panels: the bits of the rounded weights in fastfc_?pack_panels'
 * panels, except that word i of each panel row holds columns i (low half) and i + nr/2;
 * results equal fastfc_?gemm_bf16's. -2: nr not the path's panel width. */
int fastfc_sgemm_bf16_panels(int nthreads, int64_t m, int64_t n, int64_t k, float alpha,
                             const float *a, int64_t rsa, int64_t csa, const uint16_t *panels,
                             int nr, float beta, float *c, int64_t rsc, int64_t csc,
                             const float *bias, int act, float slope);
int fastfc_dgemm_bf16_panels(int nthreads, int64_t m, int64_t n, int64_t k, double alpha,
                             const double *a, int64_t rsa, int64_t csa,
                             const uint16_t *panels, int nr, double beta, double *c,
                             int64_t rsc, int64_t csc, const double *bias, int act,
                             double slope);

/* A layer's forward product in training, C = act(A.B + bias) (row-major, unit column
 * strides): the bits of fastfc_?gemm's, split by K where the optimizer's row ranges of B
 * make that pay. */
int fastfc_sgemm_trained(int nthreads, int64_t m, int64_t n, int64_t k, const float *a,
                         int64_t rsa, const float *b, int64_t rsb, float *c, int64_t rsc,
                         const float *bias, int act, float slope);
int fastfc_dgemm_trained(int nthreads, int64_t m, int64_t n, int64_t k, const double *a,
                         int64_t rsa, const double *b, int64_t rsb, double *c, int64_t rsc,
                         const double *bias, int act, double slope);

/* Two independent products C = A*B (alpha 1, beta 0, no epilogue): the backward pass's
 * dX and dW. Small ones on two threads run side by side, each whole on its own core (no
 * split, no duplicated packing); otherwise one after the other with all threads. Pointers are
 * float* or double* to match the function. A spec with m or n = 0 makes no product (its
 * dz_sum is still written); with k = 0, C is set to zero.
 * The backward of bias + activation is fused into the packing (or the streamed rows) of dY:
 * with dz_operand 1 (A) or 2 (B), that operand holds dY and the product uses
 * dZ = act'(Y) * dY, Y being the forward output laid out like the operand (strides rsy,
 * csy); dz_sum (may be NULL) receives dZ summed over K in order, one sum per row of A or
 * column of B (db, when K is the batch). nonfinite (may be NULL): set to 1 when C is left
 * holding a NaN or an Inf (never cleared), checked as C is written, while it is in cache.
 * rows (a hint; NULL: the GEMM's own split): dW's rows on the seats that read those rows of
 * W in the forward (row_owners.h), taken when row_seats is the GEMM's thread count and each
 * part starts on its row unit. Zero the fields a caller does not set. */
typedef struct {
    int64_t m, n, k;
    const void *a; int64_t rsa, csa;
    const void *b; int64_t rsb, csb;
    void *c; int64_t rsc, csc;
    int dz_operand, act; double slope;
    const void *y; int64_t rsy, csy;
    void *dz_sum;
    int *nonfinite;
    /* not NULL: on row_seats seats, rows [rows[s], rows[s + 1]) of C on seat s, one chunk */
    const int64_t *rows; int row_seats;
} fastfc_gemm_spec;
int fastfc_sgemm_pair(int nthreads, const fastfc_gemm_spec *s0, const fastfc_gemm_spec *s1);
int fastfc_dgemm_pair(int nthreads, const fastfc_gemm_spec *s0, const fastfc_gemm_spec *s1);

/* Backward of the activation, in one pass: dz = act'(y) * dy (row-major m x n, may be
 * NULL for the identity) and db[j] = sum_i dz[i, j] (may be NULL), summed in row order.
 * The GEMM engine makes the dZ rows it streams with it (one thread, a block of rows). */
void fastfc_sact_backward(int nthreads, int64_t m, int64_t n,
                          const float *dy, int64_t rs_dy, int64_t cs_dy,
                          const float *y, int64_t rs_y, int64_t cs_y,
                          int act, float slope, float *dz, float *db);
void fastfc_dact_backward(int nthreads, int64_t m, int64_t n,
                          const double *dy, int64_t rs_dy, int64_t cs_dy,
                          const double *y, int64_t rs_y, int64_t cs_y,
                          int act, double slope, double *dz, double *db);

/* y = act(x) over n contiguous elements (y may be x). */
void fastfc_sact_forward(int nthreads, int64_t n, const float *x, int act, float slope,
                         float *y);
void fastfc_dact_forward(int nthreads, int64_t n, const double *x, int act, double slope,
                         double *y);

/* Inverted dropout over n contiguous elements: element i is kept when word i of the
 * Philox4x32-10 stream (key = seed, counter = (i/4, stream)) is >= round(p * 2^32).
 * y[i] = x[i] * (kept ? 1/(1-p) : 0); mask[i] = kept (may be NULL). */
void fastfc_sdropout(int nthreads, int64_t n, const float *x, double p, uint64_t seed,
                     uint64_t stream, float *y, uint8_t *mask);
void fastfc_ddropout(int nthreads, int64_t n, const double *x, double p, uint64_t seed,
                     uint64_t stream, double *y, uint8_t *mask);
/* dx[i] = dy[i] * (mask[i] ? scale : 0) */
void fastfc_sdropout_backward(int nthreads, int64_t n, const float *dy, const uint8_t *mask,
                              float scale, float *dx);
void fastfc_ddropout_backward(int nthreads, int64_t n, const double *dy, const uint8_t *mask,
                              double scale, double *dx);

void fastfc_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Softmax cross-entropy over the rows of z (m x n, row stride rs_z), fused and stable.
 * grad (m x n, may be NULL) = (softmax - onehot) * grad_scale; prob (may be NULL) =
 * softmax. Returns the summed loss, or -1 when a label is outside [0, n). */
double fastfc_ssoftmax_xent(int64_t m, int64_t n, const float *z, int64_t rs_z,
                            const int64_t *labels, float grad_scale, float *grad, float *prob);
double fastfc_dsoftmax_xent(int64_t m, int64_t n, const double *z, int64_t rs_z,
                            const int64_t *labels, double grad_scale, double *grad, double *prob);

/* 1 when all n contiguous elements are finite (no NaN, no Inf), else 0. */
int fastfc_sall_finite(int nthreads, int64_t n, const float *x);
int fastfc_dall_finite(int nthreads, int64_t n, const double *x);

/* One Adam (decoupled = 0) or AdamW (decoupled = 1) step over n contiguous parameters;
 * step counts from 1. */
void fastfc_sadam(int nthreads, int64_t n, float *p, const float *g, float *m, float *v,
                  double lr, double b1, double b2, double eps, double wd, int decoupled,
                  int64_t step);
void fastfc_dadam(int nthreads, int64_t n, double *p, const double *g, double *m, double *v,
                  double lr, double b1, double b2, double eps, double wd, int decoupled,
                  int64_t step);

/* One layer of an MLP for the fused training step. Arrays are C-contiguous, float* or
 * double* to match the function, batch rows each.
 * DENSE:   y = act(x.w + b); w (in, out), b (out) or NULL; gw, gb its gradients (gb NULL
 *          without b); gx (batch, in) the gradient of its input, NULL when not needed.
 * DROPOUT: y = inverted dropout of x as fastfc_sdropout(seed, stream), keep mask in mask.
 * ACT:     y = act(x). in == out for DROPOUT and ACT.
 * An inference plan leaves gw, gb, gx NULL and may give bfloat16 weights in wh (row-major,
 * or panels wnr wide when wnr > 0), or float panels (fastfc_?pack_panels) in wp. */
enum fastfc_layer_kind { FASTFC_LAYER_DENSE = 0, FASTFC_LAYER_DROPOUT = 1, FASTFC_LAYER_ACT = 2 };
typedef struct {
    int kind, act;
    int64_t in, out;
    double slope, p;
    uint64_t seed, stream;
    const void *w, *b;
    void *gw, *gb, *y, *gx;
    uint8_t *mask;
    const uint16_t *wh; /* DENSE for inference: w in bfloat16 instead of w (forward only) */
    const void *wp; int wnr; /* DENSE for inference: w (or wh) in panels wnr wide */
    /* DENSE, training: not NULL: the backward sets it to 1 when gw or gb holds a NaN or an
     * Inf (never cleared: layers may share one flag), gw checked as the GEMM writes it */
    int *nonfinite;
    /* y's row stride, out when 0; an inference plan pads the rows that the next Dense
     * reads (fastfc_?rows_ld) */
    int64_t ldy;
} fastfc_layer;

/* Forward through n layers from x (batch, L[0].in); the result is L[n-1].y. */
int fastfc_smlp_forward(int nthreads, int64_t batch, const float *x, int n, fastfc_layer *L);
int fastfc_dmlp_forward(int nthreads, int64_t batch, const double *x, int n, fastfc_layer *L);
/* Backward from g = dloss/dy of the last layer (batch, L[n-1].out), which may be
 * overwritten (DROPOUT and ACT gradients are transformed in place); fills gw, gb and gx. Layers
 * below the lowest one with parameters are skipped. Returns 0, or -1 when out of memory. */
int fastfc_smlp_backward(int nthreads, int64_t batch, const float *x, float *g, int n,
                         fastfc_layer *L);
int fastfc_dmlp_backward(int nthreads, int64_t batch, const double *x, double *g, int n,
                         fastfc_layer *L);
/* Forward, mean softmax cross-entropy against labels (batch) into *loss, its gradient into
 * g (batch, classes), backward: a whole training step but the optimizer update. Returns 0,
 * -1 when out of memory, -2 when a label is outside [0, classes). */
int fastfc_smlp_xent_step(int nthreads, int64_t batch, const float *x, const int64_t *labels,
                          float *g, int n, fastfc_layer *L, double *loss);
int fastfc_dmlp_xent_step(int nthreads, int64_t batch, const double *x, const int64_t *labels,
                          double *g, int n, fastfc_layer *L, double *loss);

/* Peak of the path in use, in GFLOP/s for one thread: a loop of independent FMAs. */
double fastfc_fma_peak_gflops(int dtype_size);

#ifdef __cplusplus
}
#endif
#endif
