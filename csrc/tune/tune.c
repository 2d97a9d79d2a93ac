/* The per-CPU tuning tune_table (tune.h): caches from CPUID or sysfs, then Low et al.'s model.
 * Measurements behind the rules: docs/tuning.md. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif
#include "fastfc.h"
#include "tune/tune.h"
#if defined(FASTFC_X86) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif

/* every value of the tune_table is a multiple of what it is clamped by: these keep it so */
_Static_assert(FASTFC_MAX_KC % 8 == 0, "KC blocks are rounded to multiples of 8");
_Static_assert(FASTFC_MAX_MC % 24 == 0 && FASTFC_MAX_NC % 96 == 0,
               "the maxima are multiples of every MR (2..12) and NR (4..32)");
_Static_assert((int64_t)(2 * FASTFC_MAX_MC + FASTFC_MAX_NC) * FASTFC_MAX_KC * 8 < (1LL << 31),
               "a thread's pack buffer stays under 2 GiB");

static fastfc_tune_table tune_table;
static char warnings[2048];

const fastfc_tune_table *fastfc_tune(void) { return &tune_table; }

static const char *names[FASTFC_T_COUNT] = {
    "L1D", "L1_WAYS", "L2", "L2_WAYS", "L3", "LINE",
    "MC", "KC", "NC", "MC", "KC", "NC",
    "MIN_PARALLEL_MNK", "MAX_PAIR_MNK", "NAP_NS", "NAP_SOLO_MNK",
    "B_FROM_MEMORY", "CHUNKS_PER_THREAD", "PACK_COST", "STREAM_MAX_M", "STREAM_ACC_BYTES",
    "STREAM_READ_COST", "STREAM_RUN_BYTES", "POOL_SPIN_NS"};

static int64_t page_bytes(void)
{
#if defined(_SC_PAGESIZE)
    long p = sysconf(_SC_PAGESIZE);
    if (p >= 4096 && p <= (1 << 24)) return p;
#endif
    return 4096;
}

/* The element type of a block size's entry, NULL for the others. */
static const char *block_dtype(int id)
{
    return id >= FASTFC_T_MC_S && id <= FASTFC_T_NC_S ? "float32"
         : id >= FASTFC_T_MC_D && id <= FASTFC_T_NC_D ? "float64" : NULL;
}

/* `what`: "is not an integer in", "is out of the range", ...; `dtype` names the block size's
 * element type: the second dtype's value joins the first's line (one line per variable). */
static void warn(const char *var, const char *text, const char *what, int64_t lo, int64_t hi,
                 int64_t used, const char *dtype)
{
    size_t len = strlen(warnings);
    char head[80];
    snprintf(head, sizeof head, "%s=", var);
    /* a line cut short by a full buffer has no newline: the search stops there */
    for (char *line = warnings, *end; dtype && (end = strchr(line, '\n')); line = end + 1) {
        if (strncmp(line, head, strlen(head))) continue;
        char more[48];
        int n = snprintf(more, sizeof more, ", %lld for %s", (long long)used, dtype);
        if (len + n < sizeof warnings) {
            memmove(end + n, end, len - (size_t)(end - warnings) + 1);
            memcpy(end, more, (size_t)n);
        }
        return;
    }
    snprintf(warnings + len, sizeof warnings - len, "%s=%.64s %s [%lld, %lld]; using %lld%s%s\n",
             var, text, what, (long long)lo, (long long)hi, (long long)used,
             dtype ? " for " : "", dtype ? dtype : "");
}

/* An integer with an optional K/M/G suffix (powers of 1024), blanks around it allowed;
 * 0 when malformed. Too large a value saturates, so the caller's range check refuses it. */
static int parse_size(const char *text, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || (errno && errno != ERANGE)) return 0;
    int64_t scale = 1;
    if (*end == 'k' || *end == 'K') scale = 1 << 10, end++;
    else if (*end == 'm' || *end == 'M') scale = 1 << 20, end++;
    else if (*end == 'g' || *end == 'G') scale = 1 << 30, end++;
    while (isspace((unsigned char)*end)) end++;
    if (*end) return 0;
    *out = v > INT64_MAX / scale ? INT64_MAX : v < INT64_MIN / scale ? INT64_MIN : v * scale;
    return 1;
}

/* The override FASTFC_<name> of entry id, when set: a positive integer within [lo, hi],
 * else a warning naming the variable and the value kept. */
static void override(int id, const char *name, int64_t lo, int64_t hi)
{
    char var[64];
    snprintf(var, sizeof var, "FASTFC_%s", name);
    const char *text = getenv(var);
    if (!text || !*text) return;
    int64_t v;
    int parsed = parse_size(text, &v);
    if (!parsed || v < lo || v > hi) {
        warn(var, text, parsed ? "is out of the range" : "is not an integer in", lo, hi,
             tune_table.value[id], block_dtype(id));
        return;
    }
    tune_table.value[id] = v;
    tune_table.source[id] = id == FASTFC_T_MC_S || id == FASTFC_T_MC_D ? "env FASTFC_MC"
                     : id == FASTFC_T_KC_S || id == FASTFC_T_KC_D ? "env FASTFC_KC"
                     : id == FASTFC_T_NC_S || id == FASTFC_T_NC_D ? "env FASTFC_NC" : "env";
}

/* Cache geometry of level `level` (1: data) from CPUID's deterministic cache leaf (4 on
 * Intel, 0x8000001D on AMD); 0 when the CPU does not report it. */
static int cpuid_cache(int level, int64_t *size, int64_t *ways, int64_t *line)
{
#if defined(FASTFC_X86) && (defined(__GNUC__) || defined(__clang__))
    unsigned a, b, c, d, leaf = 4;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return 0;
    if (b == 0x68747541) { /* "Auth"enticAMD: topology extensions */
        if (!__get_cpuid(0x80000001, &a, &b, &c, &d) || !(c & (1u << 22))) return 0;
        leaf = 0x8000001D;
    } else if (a < 4) return 0;
    for (unsigned i = 0; i < 16; i++) {
        __cpuid_count(leaf, i, a, b, c, d);
        unsigned type = a & 31, lvl = (a >> 5) & 7;
        if (type == 0) break;
        if (lvl != (unsigned)level || type == 2) continue; /* 2: instruction cache */
        *ways = ((b >> 22) & 1023) + 1;
        *line = (b & 4095) + 1;
        *size = *ways * (((b >> 12) & 1023) + 1) * *line * ((int64_t)c + 1);
        return 1;
    }
#endif
    (void)level; (void)size; (void)ways; (void)line;
    return 0;
}

static int64_t sysfs_value(int index, const char *file)
{
    char path[128], text[64];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/%s", index, file);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int64_t v = 0;
    if (fgets(text, sizeof text, f) && (!parse_size(text, &v) || v > (1LL << 40))) v = 0;
    fclose(f);
    return v;
}

/* Cache geometry of level `level` from Linux's sysfs; 0 when absent. */
static int sysfs_cache(int level, int64_t *size, int64_t *ways, int64_t *line)
{
    for (int i = 0; i < 8; i++) {
        char path[96], type[32] = "";
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        FILE *f = fopen(path, "r");
        if (!f) break;
        int ok = fgets(type, sizeof type, f) != NULL;
        fclose(f);
        if (!ok || sysfs_value(i, "level") != level || !strncmp(type, "Instruction", 11))
            continue;
        *size = sysfs_value(i, "size");
        *ways = sysfs_value(i, "ways_of_associativity");
        *line = sysfs_value(i, "coherency_line_size");
        return *size > 0 && *ways > 0 && *line > 0;
    }
    return 0;
}

static void read_caches(void)
{
    /* a common x86 core (32 KiB 8-way L1d, 1 MiB 16-way L2, 8 MiB L3) when nothing says */
    static const int64_t fallback[3][2] = {{32 << 10, 8}, {1 << 20, 16}, {8 << 20, 16}};
    static const int ids[3][2] = {{FASTFC_T_L1D, FASTFC_T_L1_WAYS},
                                  {FASTFC_T_L2, FASTFC_T_L2_WAYS}, {FASTFC_T_L3, -1}};
    tune_table.value[FASTFC_T_LINE] = 64;
    tune_table.source[FASTFC_T_LINE] = "default";
    for (int level = 1; level <= 3; level++) {
        int64_t size = fallback[level - 1][0], ways = fallback[level - 1][1], line = 64;
        const char *src = "default";
        if (cpuid_cache(level, &size, &ways, &line)) src = "cpuid";
        else if (sysfs_cache(level, &size, &ways, &line)) src = "sysfs";
        int id = ids[level - 1][0], wid = ids[level - 1][1];
        tune_table.value[id] = size;
        tune_table.source[id] = src;
        if (wid >= 0) { tune_table.value[wid] = ways; tune_table.source[wid] = src; }
        if (level == 1 && line >= 16) {
            tune_table.value[FASTFC_T_LINE] = line;
            tune_table.source[FASTFC_T_LINE] = src;
        }
    }
    /* the caches of another CPU, to derive its tune_table (tests, experiments) */
    override(FASTFC_T_L1D, "L1D", 4 << 10, 1 << 30);
    override(FASTFC_T_L1_WAYS, "L1_WAYS", 2, 64);
    override(FASTFC_T_L2, "L2", 64 << 10, 1LL << 32);
    override(FASTFC_T_L2_WAYS, "L2_WAYS", 2, 64);
    /* the L2's minimum: derive_blocks takes an L3 not above the L2 as 2 x L2 */
    override(FASTFC_T_L3, "L3", 64 << 10, 1LL << 36);
    /* only shown, never sized by: any power of two a CPU might have */
    const char *line = getenv("FASTFC_LINE");
    int64_t v;
    if (line && parse_size(line, &v) && v >= 16 && v <= 1024 && (v & (v - 1)))
        warn("FASTFC_LINE", line, "is not a power of two in", 16, 1024,
             tune_table.value[FASTFC_T_LINE], NULL);
    else
        override(FASTFC_T_LINE, "LINE", 16, 1024);
}

static int64_t round_down(int64_t v, int64_t unit, int64_t lo, int64_t hi)
{
    v = v / unit * unit;
    return v < lo ? lo : v > hi ? hi : v;
}

/* MC, KC, NC for an MR x NR kernel on elements of `size` bytes (ids: MC, KC, NC);
 * b_in_l2: the kernel's loop order keeps B's block in L2 (dispatch.h). */
static void derive_blocks(int mr, int nr, int size, int id_mc, int b_in_l2)
{
    const int64_t *v = tune_table.value;
    const int64_t l1 = v[FASTFC_T_L1D], w1 = v[FASTFC_T_L1_WAYS], l2 = v[FASTFC_T_L2];
    const int64_t way1 = l1 / w1;
    /* L1: one way for C, the rest shared by the KC x NR micro-panel of B (reused by every
     * row tile) and the MR x KC micro-panels of A (streamed) in proportion to NR : MR;
     * with b_in_l2 the roles swap and the shares stay */
    int64_t ways_b = (w1 - 1) * nr / (mr + nr);
    if (ways_b < 1) ways_b = 1;
    int64_t kc = round_down(ways_b * way1 / (nr * size), 8, 8, FASTFC_MAX_KC);
    /* Past L1 the micro-panels run from L2, which feeds these kernels at a fraction of its
     * rate on every x86 core since Haswell (docs/tuning.md): depth then only amortizes each
     * block's pass over C and packing restarts, so 512 steps (256 where the L2 is too small
     * for it), for every kernel: the Xeon's AVX-512 256 lost 2-5 %, Zen 3's AVX2 320 1-4 %. */
    const char *kc_src = "model: B micro-panel in L1 ways";
    for (int64_t floor = 512; floor >= 256 && kc < floor; floor /= 2)
        if (floor * (int64_t)(mr + nr) * size <= l2 / 4) {
            kc = floor;
            kc_src = floor == 512 ? "model: panel past L1, 512 steps" : "model: panel past L1, 256 steps";
            break;
        }
    /* L2: the MC x KC block of A in a quarter of it; B's block streams through beside it
     * (half of L2 lost 10-20 % on an Intel L2: docs/tuning.md) */
    int64_t mc = round_down(l2 / 4 / (kc * size), mr, mr, FASTFC_MAX_MC / mr * mr);
    /* the KC x NC block of B in half of L2 when the B micro-panels stream from there past
     * an A micro-panel in L1 (docs/tuning.md, "B's block in L2"), else in a quarter of L3
     * (it is shared with the other cores) */
    int64_t l3 = v[FASTFC_T_L3] > l2 ? v[FASTFC_T_L3] : 2 * l2;
    int64_t nc = round_down((b_in_l2 ? l2 / 2 : l3 / 4) / (kc * size), nr, nr,
                            FASTFC_MAX_NC / nr * nr);
    const char *nc_src = b_in_l2 ? "model: B block in half of L2"
                                 : "model: B block in a quarter of L3";
    tune_table.value[id_mc] = mc;
    tune_table.source[id_mc] = "model: A block in a quarter of L2";
    tune_table.value[id_mc + 1] = kc;
    tune_table.source[id_mc + 1] = kc_src;
    tune_table.value[id_mc + 2] = nc;
    tune_table.source[id_mc + 2] = nc_src;
    /* overrides: multiples of the tile, within the maxima and the caches */
    override(id_mc, "MC", mr, FASTFC_MAX_MC);
    override(id_mc + 1, "KC", 8, FASTFC_MAX_KC);
    override(id_mc + 2, "NC", nr, FASTFC_MAX_NC);
    int64_t *b = tune_table.value + id_mc;
    if (b[0] * b[1] * size > l2 || b[1] * b[2] * size > 2 * l3) {
        size_t at = strlen(warnings);
        snprintf(warnings + at, sizeof warnings - at,
                 "FASTFC_MC/FASTFC_KC/FASTFC_NC: MC=%lld KC=%lld NC=%lld (%d-byte elements) "
                 "exceed the caches (L2 %lld, L3 %lld bytes); using MC=%lld KC=%lld NC=%lld\n",
                 (long long)b[0], (long long)b[1], (long long)b[2], size, (long long)l2,
                 (long long)l3, (long long)mc, (long long)kc, (long long)nc);
        b[0] = mc; b[1] = kc; b[2] = nc;
        /* "refused" on the rows whose variable was set */
        const char *set[3] = {getenv("FASTFC_MC"), getenv("FASTFC_KC"), getenv("FASTFC_NC")};
        const char *refused[3] = {"model: A block in a quarter of L2 (override refused)",
                                  "model (override refused)",
                                  b_in_l2 ? "model: B block in half of L2 (override refused)"
                                          : "model: B block in a quarter of L3 (override refused)"};
        const char *kept[3] = {"model: A block in a quarter of L2", kc_src, nc_src};
        for (int i = 0; i < 3; i++)
            tune_table.source[id_mc + i] = set[i] && *set[i] ? refused[i] : kept[i];
    }
    b[0] = round_down(b[0], mr, mr, FASTFC_MAX_MC);
    b[1] = round_down(b[1], 8, 8, FASTFC_MAX_KC);
    b[2] = round_down(b[2], nr, nr, FASTFC_MAX_NC);
}

void fastfc_tune_init(int smr, int snr, int sb_in_l2, int dmr, int dnr, int db_in_l2,
                      int fma_lanes_per_cycle)
{
    memset(&tune_table, 0, sizeof tune_table);
    warnings[0] = 0;
    read_caches();
    derive_blocks(smr, snr, 4, FASTFC_T_MC_S, sb_in_l2);
    derive_blocks(dmr, dnr, 8, FASTFC_T_MC_D, db_in_l2);
    int64_t *v = tune_table.value;
    const char **s = tune_table.source;
    const int64_t lanes = fma_lanes_per_cycle;
    /* Thresholds in cycles of one core's multiply-adds (docs/tuning.md): */
    v[FASTFC_T_MIN_PARALLEL_MNK] = 6250 * lanes; /* ~2 us: what a parallel region costs */
    s[FASTFC_T_MIN_PARALLEL_MNK] = "model: 6250 cycles of FMAs";
    v[FASTFC_T_MAX_PAIR_MNK] = 512 * 1024 * lanes; /* larger products split well */
    s[FASTFC_T_MAX_PAIR_MNK] = "model: 512k cycles of FMAs";
    /* an idle worker of the pool spins this long, then sleeps: long enough for the next
     * call of a loop, short enough to leave the core to NumPy's BLAS (docs/tuning.md) */
    v[FASTFC_T_POOL_SPIN_NS] = 30000;
    s[FASTFC_T_POOL_SPIN_NS] = "default";
    override(FASTFC_T_POOL_SPIN_NS, "POOL_SPIN_NS", 0, 1000000000);
    /* after an idle spell small work runs alone; the next call of a loop takes the team */
    v[FASTFC_T_NAP_NS] = 15000000;
    s[FASTFC_T_NAP_NS] = "default";
    v[FASTFC_T_NAP_SOLO_MNK] = 4 * 1024 * 1024 * lanes; /* ~1.3 ms: worth a sleeping team */
    s[FASTFC_T_NAP_SOLO_MNK] = "model: 4M cycles of FMAs";
    /* a B far larger than the caches is packed in long runs from memory; a server's L3 is
     * shared by dozens of cores (1.5-4 MiB each), so at most 16 L2s count as cache */
    v[FASTFC_T_B_FROM_MEMORY] = (v[FASTFC_T_L3] > v[FASTFC_T_L2] ? v[FASTFC_T_L3] : 8 << 20) / 4;
    s[FASTFC_T_B_FROM_MEMORY] = v[FASTFC_T_L3] > v[FASTFC_T_L2] ? "model: a quarter of L3"
                                : "model: 8 MiB / 4 (L3 not above L2)";
    if (v[FASTFC_T_B_FROM_MEMORY] > 16 * v[FASTFC_T_L2]) {
        v[FASTFC_T_B_FROM_MEMORY] = 16 * v[FASTFC_T_L2];
        s[FASTFC_T_B_FROM_MEMORY] = "model: 16 x L2 (a quarter of L3 is more)";
    }
    v[FASTFC_T_CHUNKS_PER_THREAD] = 4; /* a late thread delays a quarter of its share */
    s[FASTFC_T_CHUNKS_PER_THREAD] = "default";
    /* copying an element into a packed panel takes about half a cycle: a row part that
     * packs all of B again costs that many multiply-adds an element (docs/tuning.md) */
    v[FASTFC_T_PACK_COST] = lanes / 2 > 1 ? lanes / 2 : 1;
    s[FASTFC_T_PACK_COST] = "model: half a cycle of FMAs";
    /* The small-batch path (stream/): 2*m flops per weight read keep a product with few
     * rows bound by reading W; a packed B panel would serve one or two micro-tiles. */
    v[FASTFC_T_STREAM_MAX_M] = 16;
    s[FASTFC_T_STREAM_MAX_M] = "default (0: never stream; twice past 2 x B_FROM_MEMORY)";
    /* the m x cw accumulators of a pass in half of L1d, rows of B and A in the rest */
    v[FASTFC_T_STREAM_ACC_BYTES] = v[FASTFC_T_L1D] / 2;
    s[FASTFC_T_STREAM_ACC_BYTES] = "model: half of L1d";
    /* a weight read from memory costs about this many multiply-adds: the work that decides
     * whether a streamed product wakes a team */
    v[FASTFC_T_STREAM_READ_COST] = 8;
    s[FASTFC_T_STREAM_READ_COST] = "default";
    /* a thread's contiguous run of each row of W: shorter runs split K instead, as the
     * hardware's stream prefetch stops at each page; rows up to 16 pages are read whole
     * (a K block of W in one run: docs/tuning.md) */
    v[FASTFC_T_STREAM_RUN_BYTES] = 16 * page_bytes();
    s[FASTFC_T_STREAM_RUN_BYTES] = "model: 16 pages";
    override(FASTFC_T_STREAM_MAX_M, "STREAM_MAX_M", 0, FASTFC_MAX_STREAM_M);
    override(FASTFC_T_STREAM_ACC_BYTES, "STREAM_ACC_BYTES", 1024, 1 << 20);
    override(FASTFC_T_STREAM_READ_COST, "STREAM_READ_COST", 1, 1 << 20);
    override(FASTFC_T_STREAM_RUN_BYTES, "STREAM_RUN_BYTES", 0, 1LL << 40);
    override(FASTFC_T_MIN_PARALLEL_MNK, "MIN_PARALLEL_MNK", 0, 1LL << 50);
    override(FASTFC_T_MAX_PAIR_MNK, "MAX_PAIR_MNK", 0, 1LL << 50);
    override(FASTFC_T_NAP_SOLO_MNK, "NAP_SOLO_MNK", 0, 1LL << 50);
    override(FASTFC_T_NAP_NS, "NAP_NS", 0, 1LL << 40);
    override(FASTFC_T_B_FROM_MEMORY, "B_FROM_MEMORY", 0, 1LL << 50);
    override(FASTFC_T_CHUNKS_PER_THREAD, "CHUNKS_PER_THREAD", 1, FASTFC_MAX_CHUNKS_PER_THREAD);
    override(FASTFC_T_PACK_COST, "PACK_COST", 0, 1 << 20);
}

int fastfc_tune_describe(char *buf, int len)
{
    int used = 0;
    for (int i = 0; i < FASTFC_T_COUNT; i++) {
        const char *dt = block_dtype(i);
        int n = snprintf(buf + used, used < len ? (size_t)(len - used) : 0, "%s%s%s\t%lld\t%s\n",
                         dt ? dt : "", dt ? " " : "", names[i], (long long)tune_table.value[i],
                         tune_table.source[i]);
        used += n;
    }
    return used;
}

const char *fastfc_tune_warnings(void) { return warnings; }
