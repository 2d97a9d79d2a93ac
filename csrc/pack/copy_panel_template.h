/* kc rows of a micro-panel's lanes (NR of them, whole vectors), rows rs apart in row-major
 * B, into the k-major panel at d, in the vector moves of the ISA file that includes it: the
 * plain build copies a 128-byte row in eight 16-byte moves, and that copy took a sixth of a
 * forward's time at 64 rows (docs/tuning.md, "B's rows copied in the path's vectors").
 * Define CP_T, CP_NR, CP_VEC (bytes of a vector register), CP_NAME before including. */
#include <stdint.h>

static void CP_NAME(CP_T *restrict d, const CP_T *s, int64_t rs, int64_t kc)
{
    typedef CP_T vec __attribute__((vector_size(CP_VEC), aligned(sizeof(CP_T))));
    enum { VECS = CP_NR * sizeof(CP_T) / CP_VEC };
    _Static_assert(CP_NR * sizeof(CP_T) % CP_VEC == 0, "a panel row is whole vectors");
    for (int64_t p = 0; p < kc; p++)
        for (int v = 0; v < VECS; v++)
            ((vec *)(d + p * CP_NR))[v] = ((const vec *)(s + p * rs))[v];
}
#undef CP_T
#undef CP_NR
#undef CP_VEC
#undef CP_NAME
