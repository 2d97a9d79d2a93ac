/* Internal: the per-ISA table of micro-kernels and block sizes (BLIS's cntx). */
#ifndef FASTFC_DISPATCH_H
#define FASTFC_DISPATCH_H
#include <stdint.h>

/* Micro-kernel contract (one for every ISA and dtype):
 * acc = sum_p A[i, p] * B[p, j] over p < k for an MR x NR tile, where
 *   A[i, p] = a[i*a_rs + p*a_cs]   (packed: a_rs = 1, a_cs = MR; rows of x: a_cs = 1)
 *   B[p, j] = b[p*b_rs + j]        (packed: b_rs = NR; rows of w: b_rs = ldb)
 * then C[:mr, :nr] = act(alpha*acc + beta*C + bias). All MR rows of A and NR columns
 * of B must be readable (zero-padded panels at the edges); only mr x nr of C is touched,
 * and C is not read when beta == 0. `act` is identity, relu or leaky relu here.
 * nonfinite (may be NULL): set to 1 when alpha*acc + beta*C + bias holds a NaN or an Inf in
 * a lane stored, before the activation (relu(-Inf) is 0): the GEMM asks without one. */
#define FASTFC_UKR_ARGS(T) int64_t k, const T *a, int64_t a_rs, int64_t a_cs, \
    const T *b, int64_t b_rs, T *c, int64_t rs_c, int64_t cs_c, int mr, int nr, \
    T alpha, T beta, const T *bias, int act, T slope, int *nonfinite
typedef void (*fastfc_sukr_t)(FASTFC_UKR_ARGS(float));
typedef void (*fastfc_dukr_t)(FASTFC_UKR_ARGS(double));
/* The full-height kernel (packed A or rows of x) that also prefetches pf_lines cache
 * lines from pf into L2, spread over its k steps, at most one a step (pre-packed B's next
 * micro-panel: gemm_template.h). */
typedef void (*fastfc_sukr_ahead_t)(FASTFC_UKR_ARGS(float), const float *pf, int64_t pf_lines);
typedef void (*fastfc_dukr_ahead_t)(FASTFC_UKR_ARGS(double), const double *pf,
                                    int64_t pf_lines);

/* Small-batch kernel contract (stream/stream_template.h): C[:m, n0:n1] = act(A.B + bias)
 * with B read once, unpacked: row-major (csb == 1) or column-major (rsb == 1). Per element
 * the GEMM's operations in its order (K blocks of depth kcb; acc + C between blocks; bias
 * and act after the last), so results match it bit for bit. act: identity, relu or leaky
 * relu. rsc: C row-major. buf: scratch of m*cw + FASTFC_STREAM_TILE*kcb elements (cw a
 * multiple of 64 bytes' elements). pf: prefetch B ahead into L2 (B from memory; from L3
 * the hardware prefetcher keeps up and the instructions cost). */
#define FASTFC_STREAM_TILE 64
#define FASTFC_STREAM_ARGS_B(T, BT) int64_t m, int64_t n0, int64_t n1, int64_t k, \
    int64_t kcb, const T *a, int64_t rsa, int64_t csa, const BT *b, int64_t rsb, int64_t csb, \
    T *c, int64_t rsc, const T *bias, int act, T slope, T *buf, int64_t cw, int pf
#define FASTFC_STREAM_ARGS(T) FASTFC_STREAM_ARGS_B(T, T)
/* The same for m <= pstream_max_m (the ctx's) with B in panels (fastfc_?pack_panels) at
 * bp: columns [n0, n1), n0 a multiple of NR. No scratch. */
#define FASTFC_PSTREAM_ARGS_B(T, BT) int64_t m, int64_t n0, int64_t n1, int64_t k, \
    int64_t kcb, const T *a, int64_t rsa, int64_t csa, const BT *bp, T *c, int64_t rsc, \
    const T *bias, int act, T slope
#define FASTFC_PSTREAM_ARGS(T) FASTFC_PSTREAM_ARGS_B(T, T)
typedef void (*fastfc_spstream_t)(FASTFC_PSTREAM_ARGS(float));
typedef void (*fastfc_dpstream_t)(FASTFC_PSTREAM_ARGS(double));
/* The same with bfloat16 panels (uint16_t bits), widened exactly as they are read. */
typedef void (*fastfc_sbpstream_t)(FASTFC_PSTREAM_ARGS_B(float, uint16_t));
typedef void (*fastfc_dbpstream_t)(FASTFC_PSTREAM_ARGS_B(double, uint16_t));
typedef void (*fastfc_sstream_t)(FASTFC_STREAM_ARGS(float));
typedef void (*fastfc_dstream_t)(FASTFC_STREAM_ARGS(double));
/* The same with B in bfloat16 (uint16_t bits, row-major), widened exactly as it is read:
 * the results are those of the fp32 kernel on the widened B. None for fp64 (NULL). */
typedef void (*fastfc_sbstream_t)(FASTFC_STREAM_ARGS_B(float, uint16_t));
typedef void (*fastfc_dbstream_t)(FASTFC_STREAM_ARGS_B(double, uint16_t));
/* One output column (stream/dot_template.h): c[i*rsc] = the dot product of row i of A
 * (rows rsa apart, contiguous) with w, for i < m; lanes summed in a fixed order that
 * depends on k alone. */
typedef void (*fastfc_sdot_t)(int64_t m, int64_t k, const float *a, int64_t rsa,
                              const float *w, float *c, int64_t rsc);
typedef void (*fastfc_ddot_t)(int64_t m, int64_t k, const double *a, int64_t rsa,
                              const double *w, double *c, int64_t rsc);

/* edge[i] computes a tile of at most edge_mr[i] rows (ascending; 0 ends the list): the
 * last rows of a block, so that 2 rows cost 2 rows of work, not MR, or the last two tiles
 * when they are edge_mr[i] rows each. It reads a packed panel of MR rows, or exactly
 * edge_mr[i] rows of x (a_cs = 1). */
#define FASTFC_EDGE_KERNELS 2
/* narrow[i] computes a full-height tile of at most narrow_nr[i] columns (ascending, fewer
 * vectors than NR; 0 ends the list): the last column tile of C, which would otherwise pay
 * all NR columns' multiply-adds (fp64 n = 128 of 24-wide tiles: 144). */
#define FASTFC_NARROW_KERNELS 2
/* ukr_first: ukr with B prefetched a page ahead (NULL: ukr), for the first row tile of a
 * micro-panel of pre-packed weights, which reads it from L3 (docs/tuning.md) */
typedef struct {
    int mr, nr, mc, kc, nc; fastfc_sukr_t ukr, ukr_first;
    int edge_mr[FASTFC_EDGE_KERNELS]; fastfc_sukr_t edge[FASTFC_EDGE_KERNELS];
    int narrow_nr[FASTFC_NARROW_KERNELS]; fastfc_sukr_t narrow[FASTFC_NARROW_KERNELS];
    fastfc_sstream_t stream;
    fastfc_sbstream_t bstream;
    /* bf16 B widened into float micro-panels (pack/bf16_panels_template.h) */
    void (*bpanels)(float *dst, const uint16_t *b, int64_t rsb, int64_t kc, int64_t nc,
                    int NR);
    /* kc rows of one bf16 panel (columns i, i + NR/2 in a word) widened into a micro-panel */
    void (*bpairs)(float *dst, const uint16_t *src, int64_t kc, int NR);
    int scan_c; /* 1: the kernels have no NaN/Inf check (UKR_NO_CHECK); the GEMM scans C */
    /* 1: a KC x NC block of B packed ahead sits in L2 and each A micro-panel stays in L1
     * while the B micro-panels stream past it (BLIS skx / zen4); 0: each B micro-panel
     * stays in L1 while the A micro-panels stream (BLIS haswell), as pre-packed B always
     * does. Sets the loop order and NC. */
    int b_in_l2;
    /* with scan_c: the largest |x[i]|, i < n (NaN when one is NaN), which bounds C from
     * the packed operands (gemm_template.h, bounds_c) */
    float (*maxabs)(const float *x, int64_t n);
    fastfc_spstream_t pstream; /* a few rows against packed panels */
    int pstream_max_m;
    fastfc_sbpstream_t bpstream; /* the same against bfloat16 panels (pstream_max_m rows) */
    fastfc_sukr_ahead_t ukr_ahead; /* NULL: pre-packed B is not read ahead */
    /* kc rows of NR lanes of row-major B, rows rs apart, into a micro-panel (NULL: the
     * plain copy) */
    void (*copy_panel)(float *dst, const float *src, int64_t rs, int64_t kc);
    fastfc_sdot_t dot; /* one output column */
} fastfc_sctx;
typedef struct {
    int mr, nr, mc, kc, nc; fastfc_dukr_t ukr, ukr_first;
    int edge_mr[FASTFC_EDGE_KERNELS]; fastfc_dukr_t edge[FASTFC_EDGE_KERNELS];
    int narrow_nr[FASTFC_NARROW_KERNELS]; fastfc_dukr_t narrow[FASTFC_NARROW_KERNELS];
    fastfc_dstream_t stream;
    fastfc_dbstream_t bstream;
    void (*bpanels)(double *dst, const uint16_t *b, int64_t rsb, int64_t kc, int64_t nc,
                    int NR); /* NULL: fp64 widens in the plain loop */
    void (*bpairs)(double *dst, const uint16_t *src, int64_t kc, int NR); /* NULL too */
    int scan_c;
    int b_in_l2;
    double (*maxabs)(const double *x, int64_t n);
    fastfc_dpstream_t pstream;
    int pstream_max_m;
    fastfc_dbpstream_t bpstream; /* NULL: bf16 panels for double (C API only) take the GEMM */
    fastfc_dukr_ahead_t ukr_ahead;
    void (*copy_panel)(double *dst, const double *src, int64_t rs, int64_t kc);
    fastfc_ddot_t dot;
} fastfc_dctx;

/* Adam / AdamW: g += l2*p; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
 * p = p*shrink - step_size*m / (sqrt(v)*rbc2 + eps). */
typedef struct { double b1, b2, step_size, rbc2, eps, l2, shrink; } fastfc_adam_coef;
typedef void (*fastfc_sadam_t)(int64_t lo, int64_t hi, float *p, const float *g, float *m,
                               float *v, const fastfc_adam_coef *k);
typedef void (*fastfc_dadam_t)(int64_t lo, int64_t hi, double *p, const double *g, double *m,
                               double *v, const fastfc_adam_coef *k);

typedef struct {
    fastfc_sctx s;
    fastfc_dctx d;
    double (*fma_peak)(int dtype_size);
    void (*sdropout)(int64_t lo, int64_t hi, const float *x, uint64_t thr, float scale,
                     const uint32_t key[2], const uint32_t stream[2], float *y, uint8_t *mask);
    void (*ddropout)(int64_t lo, int64_t hi, const double *x, uint64_t thr, double scale,
                     const uint32_t key[2], const uint32_t stream[2], double *y, uint8_t *mask);
    fastfc_sadam_t sadam;
    fastfc_dadam_t dadam;
    /* 1 when x[lo, hi) holds a NaN or an Inf, else 0; exact for every bit pattern */
    int (*snonfinite)(int64_t lo, int64_t hi, const float *x);
    int (*dnonfinite)(int64_t lo, int64_t hi, const double *x);
    /* 1 when x[i*rs + j], i < rows, j < cols, holds a NaN or an Inf: a block of C just
     * written, scanned in cache by the GEMM (short rows: one call per block, not per row) */
    int (*snonfinite_rows)(const float *x, int64_t rows, int64_t cols, int64_t rs);
    int (*dnonfinite_rows)(const double *x, int64_t rows, int64_t cols, int64_t rs);
} fastfc_isa_table;

extern const fastfc_isa_table fastfc_table_generic;
#ifdef FASTFC_X86
extern const fastfc_isa_table fastfc_table_avx2;
extern const fastfc_isa_table fastfc_table_avx512;
extern const fastfc_isa_table fastfc_table_avx512_emulated;
#endif

const fastfc_isa_table *fastfc_table(void);

/* Adam for the plain build, AVX2 and AVX-512 (train/adam_template.h). */
void fastfc_sadam_generic(int64_t lo, int64_t hi, float *p, const float *g, float *m, float *v,
                          const fastfc_adam_coef *k);
void fastfc_dadam_generic(int64_t lo, int64_t hi, double *p, const double *g, double *m,
                          double *v, const fastfc_adam_coef *k);
#ifdef FASTFC_X86
void fastfc_sadam_avx2(int64_t lo, int64_t hi, float *p, const float *g, float *m, float *v,
                       const fastfc_adam_coef *k);
void fastfc_dadam_avx2(int64_t lo, int64_t hi, double *p, const double *g, double *m,
                       double *v, const fastfc_adam_coef *k);
void fastfc_sadam_avx512(int64_t lo, int64_t hi, float *p, const float *g, float *m, float *v,
                         const fastfc_adam_coef *k);
void fastfc_dadam_avx512(int64_t lo, int64_t hi, double *p, const double *g, double *m,
                         double *v, const fastfc_adam_coef *k);
#endif

/* Scalar dropout over elements [lo, hi): the reference every vector path must match. */
void fastfc_sdropout_scalar(int64_t lo, int64_t hi, const float *x, uint64_t thr, float scale,
                            const uint32_t key[2], const uint32_t stream[2], float *y, uint8_t *mask);
void fastfc_ddropout_scalar(int64_t lo, int64_t hi, const double *x, uint64_t thr, double scale,
                            const uint32_t key[2], const uint32_t stream[2], double *y, uint8_t *mask);

/* The NaN / Inf check per path (train/train.c, train/finite_avx2.c, train/finite_avx512.c). */
int fastfc_snonfinite_generic(int64_t lo, int64_t hi, const float *x);
int fastfc_dnonfinite_generic(int64_t lo, int64_t hi, const double *x);
int fastfc_snonfinite_rows_generic(const float *x, int64_t rows, int64_t cols, int64_t rs);
int fastfc_dnonfinite_rows_generic(const double *x, int64_t rows, int64_t cols, int64_t rs);
#ifdef FASTFC_X86
int fastfc_snonfinite_avx2(int64_t lo, int64_t hi, const float *x);
int fastfc_dnonfinite_avx2(int64_t lo, int64_t hi, const double *x);
int fastfc_snonfinite_avx512(int64_t lo, int64_t hi, const float *x);
int fastfc_dnonfinite_avx512(int64_t lo, int64_t hi, const double *x);
int fastfc_snonfinite_rows_avx2(const float *x, int64_t rows, int64_t cols, int64_t rs);
int fastfc_dnonfinite_rows_avx2(const double *x, int64_t rows, int64_t cols, int64_t rs);
float fastfc_smaxabs_avx2(const float *x, int64_t n);
double fastfc_dmaxabs_avx2(const double *x, int64_t n);
int fastfc_snonfinite_rows_avx512(const float *x, int64_t rows, int64_t cols, int64_t rs);
int fastfc_dnonfinite_rows_avx512(const double *x, int64_t rows, int64_t cols, int64_t rs);
#endif
#endif
