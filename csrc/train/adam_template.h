/* The Adam / AdamW update over parameters [lo, hi), instantiated per ISA file (the plain
 * build and -mavx2 -mfma: 8 sqrt and divisions per instruction). Define ADAM_T (float|double)
 * and ADAM_NAME before including. Coefficients as in fastfc_sadam (train/train.c). */
#include <float.h>
void ADAM_NAME(int64_t lo, int64_t hi, ADAM_T *p, const ADAM_T *g, ADAM_T *m, ADAM_T *v,
               const fastfc_adam_coef *k)
{
    const ADAM_T b1 = (ADAM_T)k->b1, b2 = (ADAM_T)k->b2, c1 = (ADAM_T)(1 - k->b1),
                 c2 = (ADAM_T)(1 - k->b2), step = (ADAM_T)k->step_size, rbc2 = (ADAM_T)k->rbc2,
                 eps = (ADAM_T)k->eps, l2 = (ADAM_T)k->l2, shrink = (ADAM_T)k->shrink;
    /* a moment under the smallest normal number is stored as 0: once its gradients are 0
     * (a dead relu) it decays there (m by b1 a step), and each operation on a subnormal
     * took ~100 cycles: Adam's pass ran 2x slower (docs/tuning.md, "Adam's subnormal
     * moments"); NaN compares false and stays */
    const ADAM_T tiny = _Generic((ADAM_T)0, float: FLT_MIN, default: DBL_MIN);
    for (int64_t i = lo; i < hi; i++) {
        ADAM_T gi = g[i] + l2 * p[i];
        ADAM_T mi = b1 * m[i] + c1 * gi;
        ADAM_T vi = b2 * v[i] + c2 * gi * gi;
        mi = mi < tiny && mi > -tiny ? 0 : mi;
        vi = vi < tiny ? 0 : vi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * shrink - step * mi / (ADAM_SQRT(vi) * rbc2 + eps);
    }
}
#undef ADAM_T
#undef ADAM_NAME
#undef ADAM_SQRT
