/* FMA peak: 12 independent accumulator chains, enough to cover FMA latency x ports.
 * Define PEAK_VL_F (float lanes of the ISA's vector) and PEAK_NAME before including. */
#include "omp_compat.h"
#define PEAK_CAT2(a, b) a##b
#define PEAK_CAT(a, b) PEAK_CAT2(a, b)
#define PEAK_VEC PEAK_CAT(PEAK_NAME, _vec)
typedef float PEAK_VEC __attribute__((vector_size(PEAK_VL_F * 4)));

static double PEAK_NAME(int dtype_size)
{
    PEAK_VEC acc[12], x = (PEAK_VEC){0} + 1.0000001f, y = (PEAK_VEC){0} + 0.9999999f;
    for (int i = 0; i < 12; i++) acc[i] = (PEAK_VEC){0} + (float)i;
    const long iters = 8000000; /* ~50 ms: long enough to run at the sustained clock */
    double t0 = omp_get_wtime();
    for (long it = 0; it < iters; it++) {
        for (int i = 0; i < 12; i++) acc[i] = acc[i] * x + y;
    }
    double t = omp_get_wtime() - t0;
    volatile float sink = 0;
    for (int i = 0; i < 12; i++) sink += acc[i][0];
    double flops = 2.0 * 12 * PEAK_VL_F * (double)iters;
    /* float64 vectors hold half the lanes at the same instruction rate. */
    return flops / t * 1e-9 / (dtype_size == 8 ? 2.0 : 1.0);
}
#undef PEAK_VEC
