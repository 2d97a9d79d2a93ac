/* bfloat16 weights widened into the GEMM's float micro-panels, VL lanes at a time (the
 * bits shifted into the high half of a float: exact). Instantiated per ISA file, so the
 * widening runs in that ISA's vectors. Define BF_VL and BF_NAME before including. */
#include <stdint.h>
#include <string.h>

#define BF_CAT2(a, b) a##b
#define BF_CAT(a, b) BF_CAT2(a, b)
#define BF_H BF_CAT(BF_NAME, _h)
#define BF_U BF_CAT(BF_NAME, _u)
typedef uint16_t BF_H __attribute__((vector_size(BF_VL * 2), aligned(2)));
typedef uint32_t BF_U __attribute__((vector_size(BF_VL * 4), aligned(4)));

/* kc x nc block of B (b[p*rsb + j]) -> micro-panels of NR columns, each k-major (row p of
 * panel jr at dst + jr*kc + p*NR), columns past nc zero-filled. */
static void BF_NAME(float *restrict dst, const uint16_t *b, int64_t rsb, int64_t kc,
                    int64_t nc, int NR)
{
    for (int64_t jr = 0; jr < nc; jr += NR) {
        const int nr = nc - jr < NR ? (int)(nc - jr) : NR;
        float *d = dst + jr * kc;
        const uint16_t *s = b + jr;
        if (nr == NR && NR % BF_VL == 0) {
            for (int64_t p = 0; p < kc; p++)
                for (int v = 0; v < NR; v += BF_VL) {
                    BF_U u = __builtin_convertvector(*(const BF_H *)(s + p * rsb + v), BF_U) << 16;
                    memcpy(d + p * NR + v, &u, sizeof u);
                }
            continue;
        }
        for (int64_t p = 0; p < kc; p++)
            for (int c = 0; c < NR; c++) {
                const uint32_t u = c < nr ? (uint32_t)s[p * rsb + c] << 16 : 0;
                memcpy(d + p * NR + c, &u, sizeof u);
            }
    }
}

/* kc rows of one bfloat16 panel (fastfc.packing: word i of a row holds columns i and
 * i + NR/2) -> its float micro-panel, two vectors a word vector when NR is 2 * VL. */
static void BF_CAT(BF_NAME, _pairs)(float *restrict dst, const uint16_t *src, int64_t kc,
                                    int NR)
{
    for (int64_t p = 0; p < kc; p++) {
        if (NR == 2 * BF_VL) {
            BF_U w, lo, hi;
            memcpy(&w, src + p * NR, sizeof w);
            lo = w << 16;
            hi = w & 0xFFFF0000u;
            memcpy(dst + p * NR, &lo, sizeof lo);
            memcpy(dst + p * NR + BF_VL, &hi, sizeof hi);
            continue;
        }
        for (int i = 0; i < NR / 2; i++) {
            uint32_t w, lo, hi;
            memcpy(&w, src + p * NR + 2 * i, sizeof w);
            lo = w << 16;
            hi = w & 0xFFFF0000u;
            memcpy(dst + p * NR + i, &lo, sizeof lo);
            memcpy(dst + p * NR + NR / 2 + i, &hi, sizeof hi);
        }
    }
}
#undef BF_CAT2
#undef BF_CAT
#undef BF_H
#undef BF_U
#undef BF_VL
#undef BF_NAME
