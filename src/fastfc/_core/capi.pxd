# Declarations of the C core (csrc/include/fastfc.h), cimported by every module of fastfc._core.
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from "fastfc.h" nogil:
    enum:
        FASTFC_ACT_IDENTITY
        FASTFC_ACT_RELU
        FASTFC_ACT_LEAKY_RELU
        FASTFC_ACT_SIGMOID
        FASTFC_ACT_TANH
    int fastfc_init(int wanted)
    int fastfc_isa_in_use()
    int fastfc_test_kernels_built()
    int fastfc_cpu_best_isa()
    void fastfc_block_sizes(int dtype_size, int *sizes)
    int fastfc_threads_allowed(int wanted)
    int fastfc_set_thread_cap(int cap)
    int fastfc_hold_team(int delta)
    int fastfc_flush_subnormals(int on)
    int fastfc_tune_describe(char *buf, int len)
    const char *fastfc_tune_warnings()
    int fastfc_forked_single_thread()
    int64_t fastfc_wide_regions()
    int fastfc_row_owner_cuts(const void *p, int64_t n, size_t elem, int nt, int64_t *cuts)
    enum: FASTFC_ROW_OWNERS_MAX_SEATS
    int fastfc_sgemm(int nthreads, int64_t m, int64_t n, int64_t k, float alpha,
                     const float *a, int64_t rsa, int64_t csa,
                     const float *b, int64_t rsb, int64_t csb, float beta,
                     float *c, int64_t rsc, int64_t csc,
                     const float *bias, int act, float slope)
    int fastfc_dgemm(int nthreads, int64_t m, int64_t n, int64_t k, double alpha,
                     const double *a, int64_t rsa, int64_t csa,
                     const double *b, int64_t rsb, int64_t csb, double beta,
                     double *c, int64_t rsc, int64_t csc,
                     const double *bias, int act, double slope)
    int fastfc_sgemm_panels(int nthreads, int64_t m, int64_t n, int64_t k, float alpha,
                            const float *a, int64_t rsa, int64_t csa, const float *panels,
                            int nr, float beta, float *c, int64_t rsc, int64_t csc,
                            const float *bias, int act, float slope)
    int fastfc_dgemm_panels(int nthreads, int64_t m, int64_t n, int64_t k, double alpha,
                            const double *a, int64_t rsa, int64_t csa, const double *panels,
                            int nr, double beta, double *c, int64_t rsc, int64_t csc,
                            const double *bias, int act, double slope)
    int fastfc_spack_panels(const float *w, int64_t rsw, int64_t csw, int64_t k, int64_t n,
                            float *dst)
    int fastfc_dpack_panels(const double *w, int64_t rsw, int64_t csw, int64_t k, int64_t n,
                            double *dst)
    int fastfc_spanel_width()
    int fastfc_dpanel_width()
    int64_t fastfc_srows_ld(int64_t cols)
    int64_t fastfc_drows_ld(int64_t cols)
    int fastfc_sgemm_bf16_panels(int nthreads, int64_t m, int64_t n, int64_t k, float alpha,
                                 const float *a, int64_t rsa, int64_t csa,
                                 const uint16_t *panels, int nr, float beta, float *c,
                                 int64_t rsc, int64_t csc, const float *bias, int act,
                                 float slope)
    int fastfc_sgemm_bf16(int nthreads, int64_t m, int64_t n, int64_t k, float alpha,
                          const float *a, int64_t rsa, int64_t csa, const uint16_t *b,
                          int64_t rsb, float beta, float *c, int64_t rsc, int64_t csc,
                          const float *bias, int act, float slope)
    ctypedef struct fastfc_gemm_spec:
        int64_t m, n, k
        const void *a
        int64_t rsa, csa
        const void *b
        int64_t rsb, csb
        void *c
        int64_t rsc, csc
        int dz_operand, act
        double slope
        const void *y
        int64_t rsy, csy
        void *dz_sum
        int *nonfinite
        const int64_t *rows
        int row_seats
    int fastfc_sgemm_pair(int nthreads, const fastfc_gemm_spec *s0, const fastfc_gemm_spec *s1)
    int fastfc_dgemm_pair(int nthreads, const fastfc_gemm_spec *s0, const fastfc_gemm_spec *s1)
    void fastfc_sdropout(int nthreads, int64_t n, const float *x, double p, uint64_t seed,
                         uint64_t stream, float *y, uint8_t *mask)
    void fastfc_ddropout(int nthreads, int64_t n, const double *x, double p, uint64_t seed,
                         uint64_t stream, double *y, uint8_t *mask)
    void fastfc_sdropout_backward(int nthreads, int64_t n, const float *dy,
                                  const uint8_t *mask, float scale, float *dx)
    void fastfc_ddropout_backward(int nthreads, int64_t n, const double *dy,
                                  const uint8_t *mask, double scale, double *dx)
    void fastfc_philox4x32_10(const uint32_t *ctr, const uint32_t *key, uint32_t *out)
    double fastfc_fma_peak_gflops(int dtype_size)
    double fastfc_ssoftmax_xent(int64_t m, int64_t n, const float *z, int64_t rs_z,
                                const int64_t *labels, float grad_scale, float *grad,
                                float *prob)
    double fastfc_dsoftmax_xent(int64_t m, int64_t n, const double *z, int64_t rs_z,
                                const int64_t *labels, double grad_scale, double *grad,
                                double *prob)
    int fastfc_sall_finite(int nthreads, int64_t n, const float *x)
    int fastfc_dall_finite(int nthreads, int64_t n, const double *x)
    void fastfc_sadam(int nthreads, int64_t n, float *p, const float *g, float *m, float *v,
                      double lr, double b1, double b2, double eps, double wd, int decoupled,
                      int64_t step)
    void fastfc_dadam(int nthreads, int64_t n, double *p, const double *g, double *m,
                      double *v, double lr, double b1, double b2, double eps, double wd,
                      int decoupled, int64_t step)
    void fastfc_sact_forward(int nthreads, int64_t n, const float *x, int act, float slope,
                             float *y)
    void fastfc_dact_forward(int nthreads, int64_t n, const double *x, int act, double slope,
                             double *y)
    enum:
        FASTFC_LAYER_DENSE
        FASTFC_LAYER_DROPOUT
        FASTFC_LAYER_ACT
    ctypedef struct fastfc_layer:
        int kind, act
        int64_t in_ "in"
        int64_t out
        double slope, p
        uint64_t seed, stream
        const void *w
        const void *b
        void *gw
        void *gb
        void *y
        void *gx
        uint8_t *mask
        const uint16_t *wh
        const void *wp
        int wnr
        int *nonfinite
        int64_t ldy
    int fastfc_smlp_forward(int nthreads, int64_t batch, const float *x, int n, fastfc_layer *L)
    int fastfc_dmlp_forward(int nthreads, int64_t batch, const double *x, int n,
                            fastfc_layer *L)
    int fastfc_smlp_backward(int nthreads, int64_t batch, const float *x, float *g, int n,
                             fastfc_layer *L)
    int fastfc_dmlp_backward(int nthreads, int64_t batch, const double *x, double *g, int n,
                             fastfc_layer *L)
    int fastfc_smlp_xent_step(int nthreads, int64_t batch, const float *x,
                              const int64_t *labels, float *g, int n, fastfc_layer *L,
                              double *loss)
    int fastfc_dmlp_xent_step(int nthreads, int64_t batch, const double *x,
                              const int64_t *labels, double *g, int n, fastfc_layer *L,
                              double *loss)
