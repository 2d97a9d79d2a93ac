/* The per-CPU tuning table: block sizes and path thresholds, derived once at import from
 * the CPU's caches and ISA (Low et al., "Analytical modeling is enough for
 * high-performance BLIS", TOMS 2016), each overridable from the environment. */
#ifndef FASTFC_TUNE_H
#define FASTFC_TUNE_H
#include <stdint.h>

/* Compile-time maxima: run-time sizes are clamped to them. */
#define FASTFC_MAX_MC 4080
#define FASTFC_MAX_KC 2048
#define FASTFC_MAX_NC 16320
#define FASTFC_MAX_CHUNKS_PER_THREAD 64
#define FASTFC_MAX_STREAM_M 64

/* One entry per tuned value: what it is, its value, and where it came from. */
enum fastfc_tune_id {
    FASTFC_T_L1D, FASTFC_T_L1_WAYS, FASTFC_T_L2, FASTFC_T_L2_WAYS, FASTFC_T_L3, FASTFC_T_LINE,
    FASTFC_T_MC_S, FASTFC_T_KC_S, FASTFC_T_NC_S, FASTFC_T_MC_D, FASTFC_T_KC_D, FASTFC_T_NC_D,
    FASTFC_T_MIN_PARALLEL_MNK, FASTFC_T_MAX_PAIR_MNK, FASTFC_T_NAP_NS, FASTFC_T_NAP_SOLO_MNK,
    FASTFC_T_B_FROM_MEMORY, FASTFC_T_CHUNKS_PER_THREAD, FASTFC_T_PACK_COST,
    FASTFC_T_STREAM_MAX_M, FASTFC_T_STREAM_ACC_BYTES, FASTFC_T_STREAM_READ_COST,
    FASTFC_T_STREAM_RUN_BYTES,
    FASTFC_T_POOL_SPIN_NS, FASTFC_T_COUNT
};

typedef struct {
    int64_t value[FASTFC_T_COUNT];
    const char *source[FASTFC_T_COUNT]; /* "cpuid", "sysfs", "model: ...", "env FASTFC_KC" */
} fastfc_tune_table;

/* The table in force (filled by fastfc_tune_init). */
const fastfc_tune_table *fastfc_tune(void);
static inline int64_t fastfc_tuned(enum fastfc_tune_id id) { return fastfc_tune()->value[id]; }

/* Derives the table for kernels of MR x NR (float32: smr x snr, float64: dmr x dnr) with
 * `fma_lanes_per_cycle` float32 multiply-adds a cycle a core, from the caches (the
 * environment's FASTFC_L1D/L2/L3 first) and the overrides in the environment. */
void fastfc_tune_init(int smr, int snr, int sb_in_l2, int dmr, int dnr, int db_in_l2,
                      int fma_lanes_per_cycle);
#endif
