/* CPU detection once at import -> the kernel table. */
#include <assert.h>
#include "omp_compat.h"
#include "fastfc.h"
#include "dispatch/dispatch.h"
#include "gemm/threads.h"
#include "tune/tune.h"
#if defined(FASTFC_X86) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif

/* The kernels of the path in use with the block sizes of the tuning table. */
static fastfc_isa_table active;
static const fastfc_isa_table *table = &fastfc_table_generic;
static int isa_in_use = FASTFC_ISA_GENERIC;
static int most_threads = 1; /* set once at import */

static void use_table(const fastfc_isa_table *t, int isa);

/* 0: fastfc's own pool (gemm/pool.c) starts new workers in a forked child, which
 * libgomp could not; kept for get_config()["forked_single_thread"]. */
int fastfc_forked_single_thread(void) { return 0; }

int fastfc_cpu_best_isa(void)
{
#if defined(FASTFC_X86) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("fma"))
        return FASTFC_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return FASTFC_ISA_AVX2;
#endif
    return FASTFC_ISA_GENERIC;
}

/* Called once, from the module's import (under the import lock). */
int fastfc_init(int wanted)
{
    most_threads = 4 * omp_get_num_procs();
    /* OMP_THREAD_LIMIT bounds fastfc's own pool as it bounds an OpenMP team */
    if (omp_get_thread_limit() < most_threads) most_threads = omp_get_thread_limit();
    int best = fastfc_cpu_best_isa();
#if defined(FASTFC_X86) && defined(FASTFC_TEST_KERNELS)
    if (wanted == FASTFC_ISA_AVX512_EMULATED && best >= FASTFC_ISA_AVX2) {
        use_table(&fastfc_table_avx512_emulated, wanted);
        isa_in_use = wanted;
        return wanted;
    }
#endif
    int isa = wanted < best ? wanted : best;
    if (isa < FASTFC_ISA_GENERIC) isa = FASTFC_ISA_GENERIC;
#ifdef FASTFC_X86
    use_table(isa == FASTFC_ISA_AVX512 ? &fastfc_table_avx512
              : isa == FASTFC_ISA_AVX2 ? &fastfc_table_avx2 : &fastfc_table_generic, isa);
#else
    isa = FASTFC_ISA_GENERIC;
    use_table(&fastfc_table_generic, isa);
#endif
    isa_in_use = isa;
    return isa;
}

/* float32 multiply-adds a core issues a cycle on path `isa`: a fixed rule on the CPUID
 * vendor and family (Zen 4 runs a 512-bit FMA as two 256-bit halves), never a timing. */
static int fma_lanes_per_cycle(int isa)
{
    if (isa == FASTFC_ISA_GENERIC) return 8; /* SSE2: 4 lanes, 2 ports */
    if (isa != FASTFC_ISA_AVX512) return 16; /* 8 lanes, 2 ports (the emulated path too) */
#if defined(FASTFC_X86) && (defined(__GNUC__) || defined(__clang__))
    unsigned a, b, c, d;
    if (__get_cpuid(0, &a, &b, &c, &d) && b == 0x68747541 && __get_cpuid(1, &a, &b, &c, &d)) {
        unsigned family = ((a >> 8) & 15) + (((a >> 8) & 15) == 15 ? (a >> 20) & 255 : 0);
        if (family <= 0x19) return 16; /* AuthenticAMD up to Zen 4: double-pumped */
    }
#endif
    return 32;
}

/* The chosen ISA's kernels with the block sizes derived for this CPU. */
static void use_table(const fastfc_isa_table *t, int isa)
{
    active = *t;
    fastfc_tune_init(t->s.mr, t->s.nr, t->s.b_in_l2, t->d.mr, t->d.nr, t->d.b_in_l2,
                     fma_lanes_per_cycle(isa));
    active.s.mc = (int)fastfc_tuned(FASTFC_T_MC_S);
    active.s.kc = (int)fastfc_tuned(FASTFC_T_KC_S);
    active.s.nc = (int)fastfc_tuned(FASTFC_T_NC_S);
    active.d.mc = (int)fastfc_tuned(FASTFC_T_MC_D);
    active.d.kc = (int)fastfc_tuned(FASTFC_T_KC_D);
    active.d.nc = (int)fastfc_tuned(FASTFC_T_NC_D);
    /* the clamps of tune.c keep these, and the buffers sized from them, in bounds */
    assert(active.s.mc % active.s.mr == 0 && active.s.mc <= FASTFC_MAX_MC);
    assert(active.s.kc % 8 == 0 && active.s.kc <= FASTFC_MAX_KC);
    assert(active.d.nc % active.d.nr == 0 && active.d.nc <= FASTFC_MAX_NC);
    table = &active;
}

int fastfc_isa_in_use(void) { return isa_in_use; }

int fastfc_test_kernels_built(void)
{
#if defined(FASTFC_X86) && defined(FASTFC_TEST_KERNELS)
    return 1;
#else
    return 0;
#endif
}
const fastfc_isa_table *fastfc_table(void) { return table; }

void fastfc_block_sizes(int dtype_size, int sizes[5])
{
    if (dtype_size == 8) {
        const fastfc_dctx *c = &table->d;
        sizes[0] = c->mr; sizes[1] = c->nr; sizes[2] = c->mc; sizes[3] = c->kc; sizes[4] = c->nc;
    } else {
        const fastfc_sctx *c = &table->s;
        sizes[0] = c->mr; sizes[1] = c->nr; sizes[2] = c->mc; sizes[3] = c->kc; sizes[4] = c->nc;
    }
}

/* Per calling thread: a model's training step caps its own calls (model/step_threads.py). */
static _Thread_local int thread_cap;

int fastfc_set_thread_cap(int cap)
{
    const int before = thread_cap;
    thread_cap = cap > 0 ? cap : 0;
    return before;
}

/* More than four threads per processor only adds overhead (and thousands would take seconds to
 * start), so that is the most a call uses. */
int fastfc_threads_allowed(int wanted)
{
    if (wanted < 1) return 1;
    if (thread_cap && wanted > thread_cap) wanted = thread_cap;
    return wanted < most_threads ? wanted : most_threads;
}

double fastfc_fma_peak_gflops(int dtype_size) { return table->fma_peak(dtype_size); }
