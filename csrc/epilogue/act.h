/* Scalar activations and their derivatives (from the output y), shared by the
 * epilogue of the GEMM and the backward pass. */
#ifndef FASTFC_ACT_H
#define FASTFC_ACT_H
#include <math.h>
#include "fastfc.h"

#define FASTFC_DEFINE_ACT(T, SUF, EXP, TANH)                                          \
    static inline T act_##SUF(T v, int act, T slope)                                   \
    {                                                                                  \
        switch (act) {                                                                 \
        case FASTFC_ACT_RELU: return v < 0 ? (T)0 : v; /* NaN stays NaN */             \
        case FASTFC_ACT_LEAKY_RELU: return v < 0 ? v * slope : v;                      \
        case FASTFC_ACT_SIGMOID:                                                       \
            /* split by sign so exp never overflows */                                 \
            if (v >= 0) return (T)1 / ((T)1 + EXP(-v));                                \
            else { T e = EXP(v); return e / ((T)1 + e); }                              \
        case FASTFC_ACT_TANH: return TANH(v);                                          \
        default: return v;                                                             \
        }                                                                              \
    }                                                                                  \
    static inline T act_grad_##SUF(T dy, T y, int act, T slope)                        \
    {                                                                                  \
        switch (act) {                                                                 \
        case FASTFC_ACT_RELU: return y > 0 ? dy : (T)0;                                \
        case FASTFC_ACT_LEAKY_RELU: return y > 0 ? dy : dy * slope;                    \
        case FASTFC_ACT_SIGMOID: return dy * (y * ((T)1 - y));                         \
        case FASTFC_ACT_TANH: return dy * ((T)1 - y * y);                              \
        default: return dy;                                                            \
        }                                                                              \
    }

/* CALL(ACT) with ACT the constant for `act`: a loop inlined under each case vectorizes
 * for its own activation. */
#define FASTFC_FOR_ACT(act, CALL)                                                     \
    switch (act) {                                                                     \
    case FASTFC_ACT_RELU: CALL(FASTFC_ACT_RELU); break;                                \
    case FASTFC_ACT_LEAKY_RELU: CALL(FASTFC_ACT_LEAKY_RELU); break;                    \
    case FASTFC_ACT_SIGMOID: CALL(FASTFC_ACT_SIGMOID); break;                          \
    case FASTFC_ACT_TANH: CALL(FASTFC_ACT_TANH); break;                                \
    default: CALL(FASTFC_ACT_IDENTITY);                                                \
    }

FASTFC_DEFINE_ACT(float, s, expf, tanhf)
FASTFC_DEFINE_ACT(double, d, exp, tanh)
#endif
