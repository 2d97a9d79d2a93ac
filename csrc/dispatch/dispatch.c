/* CPU detection once at import -> the kernel table; fork detection for OpenMP. */
#include "omp_compat.h"
#include <pthread.h>
#include <stdatomic.h>
#include "fastfc.h"
#include "dispatch/dispatch.h"

static const fastfc_isa_table *table = &fastfc_table_generic;
static int isa_in_use = FASTFC_ISA_GENERIC;
static atomic_int forked_child;
static int most_threads = 1; /* set once at import */

static void mark_forked_child(void) { atomic_store(&forked_child, 1); }

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
    static int registered;
    if (!registered) {
        pthread_atfork(NULL, NULL, mark_forked_child);
        registered = 1;
    }
    most_threads = 4 * omp_get_num_procs();
    int best = fastfc_cpu_best_isa();
#if defined(FASTFC_X86) && defined(FASTFC_TEST_KERNELS)
    if (wanted == FASTFC_ISA_AVX512_EMULATED && best >= FASTFC_ISA_AVX2) {
        table = &fastfc_table_avx512_emulated;
        isa_in_use = wanted;
        return wanted;
    }
#endif
    int isa = wanted < best ? wanted : best;
    if (isa < FASTFC_ISA_GENERIC) isa = FASTFC_ISA_GENERIC;
#ifdef FASTFC_X86
    table = isa == FASTFC_ISA_AVX512 ? &fastfc_table_avx512
          : isa == FASTFC_ISA_AVX2   ? &fastfc_table_avx2 : &fastfc_table_generic;
#else
    isa = FASTFC_ISA_GENERIC;
    table = &fastfc_table_generic;
#endif
    isa_in_use = isa;
    return isa;
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

/* libgomp's thread pool does not survive fork(): a child runs on one thread. More than
 * four threads per processor only adds overhead (and thousands would take seconds to
 * start), so that is the most a call uses. */
int fastfc_threads_allowed(int wanted)
{
    if (wanted < 1 || atomic_load(&forked_child)) return 1;
    return wanted < most_threads ? wanted : most_threads;
}

double fastfc_fma_peak_gflops(int dtype_size) { return table->fma_peak(dtype_size); }
