/* fastfc's thread pool (pool.h): C11 atomics for the job, a condition variable for sleep. */
#ifdef __linux__
#define _GNU_SOURCE /* sched_getcpu, cpu_set_t */
#endif
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include "gemm/pool.h"
#include "gemm/threads.h"
#include "tune/tune.h"

/* While a caller holds the team (fastfc_hold_team), and for POOL_HELD_SPIN_NS after, idle
 * workers spin up to that long after a region: a training step's regions come tens of us
 * apart with Python between, as do the steps, and a worker woken from sleep on the
 * 2-vCPU VM took part in half as many of them (784-128-64-10 at batch 256: 0.92 ms a
 * step, 0.60 ms held; docs/tuning.md). */
#define POOL_HELD_SPIN_NS 1000000
static _Atomic int team_holds;
static _Atomic int64_t hold_ended_ns;

int fastfc_hold_team(int delta)
{
    const int holds = atomic_fetch_add(&team_holds, delta) + delta;
    if (delta < 0 && holds <= 0)
        atomic_store_explicit(&hold_ended_ns, fastfc_now_ns(), memory_order_relaxed);
    return holds;
}

/* The FTZ and DAZ bits of MXCSR: a region's workers take the caller's, so a chunk rounds
 * alike on every thread and the bits never depend on the thread count. */
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define FLUSH_BITS 0x8040u
static unsigned flush_mode(void) { return _mm_getcsr() & FLUSH_BITS; }
static void set_flush_mode(unsigned mode)
{
    const unsigned csr = _mm_getcsr();
    if ((csr & FLUSH_BITS) != mode) _mm_setcsr((csr & ~FLUSH_BITS) | mode);
}
#else /* other CPUs compute with subnormals (IEEE) */
#define FLUSH_BITS 0u
static unsigned flush_mode(void) { return 0; }
static void set_flush_mode(unsigned mode) { (void)mode; }
#endif

int fastfc_flush_subnormals(int on)
{
    const int before = flush_mode() != 0;
    set_flush_mode(on ? FLUSH_BITS : 0);
    return before;
}

static int run_alone(int64_t chunks, fastfc_chunk_fn fn, void *ctx)
{
    int failed = 0;
    for (int64_t c = 0; c < chunks; c++) failed |= fn(ctx, c);
    return failed;
}

#ifndef _OPENMP /* a serial build (FASTFC_OPENMP=OFF, or no OpenMP): no threads at all */
int fastfc_pool_run(int nt, int64_t chunks, fastfc_chunk_fn fn, void *ctx)
{
    (void)nt;
    return run_alone(chunks, fn, ctx);
}
#else

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* 1 while a hold is on or ended under POOL_HELD_SPIN_NS ago. */
static int team_held(int64_t now)
{
    return atomic_load_explicit(&team_holds, memory_order_relaxed) > 0 ||
           now - atomic_load_explicit(&hold_ended_ns, memory_order_relaxed) < POOL_HELD_SPIN_NS;
}

/* The caller waiting for a worker's last chunk: a pause, and now and then the core. */
static inline void pause_or_yield(int i)
{
    if (i % 1024) cpu_relax();
    else sched_yield();
}

/* Seats with a home range of chunks of their own: the caller is seat 0, the workers seats
 * 1, 2, ... in the order they join (a lone worker always seat 1). Seats past the last home
 * share the homes (seat % POOL_HOMES). */
#define POOL_HOMES 256

/* The pool: one job at a time (`busy`), its fields written by the caller that holds it. */
static struct {
    pthread_mutex_t busy;       /* held by the thread running a job; others run alone */
    pthread_mutex_t nap;        /* guards sleeping on `wake` */
    pthread_cond_t wake;
    int workers;                /* started so far (under `busy`) */
    /* job number * 2, + 1 while the job is open: workers wait for a new odd value */
    _Atomic uint64_t state;
    _Atomic int sleepers;       /* workers waiting on `wake`: the caller wakes only them */
    _Atomic int active;         /* workers inside the job: its fields stay until 0 */
    /* the job's fields, written before `state` turns odd */
    fastfc_chunk_fn fn;
    void *ctx;
    int64_t chunks;
    int seats;                  /* threads the job takes, the caller among them */
    int caller_cpu;             /* where the caller opened it (-1: unknown) */
    unsigned flush;             /* the caller's flush_mode() */
    _Atomic int seats_left;     /* workers the job still takes (seats - 1 at the start) */
    int homes;                  /* home ranges: min(seats, POOL_HOMES) */
    /* home h: part h of `homes` of the chunks (fastfc_thread_range), next[h] the next one */
    _Atomic int64_t next[POOL_HOMES];
    _Atomic int64_t done;       /* chunks finished */
    _Atomic int failed;
    _Atomic int helped;         /* 1 once a worker ran a chunk of the job */
} pool = {.busy = PTHREAD_MUTEX_INITIALIZER, .nap = PTHREAD_MUTEX_INITIALIZER,
           .wake = PTHREAD_COND_INITIALIZER};

/* Runs chunks of the open job until none is left: those of home range `home` first, then
 * those left in the others'. A seat keeps the same part of the operands from one call to
 * the next, so what fits the cores' L2s together can stay in them (a single counter gave
 * each call's chunks to whichever thread came first). A late thread's range is taken by
 * the others, from its front. */
static void take_chunks(int home, int is_worker)
{
    for (int i = 0; i < pool.homes; i++) {
        int64_t start, end;
        const int h = (home + i) % pool.homes;
        fastfc_thread_range(h, pool.homes, pool.chunks, 1, &start, &end);
        for (int64_t c; (c = atomic_fetch_add_explicit(&pool.next[h], 1,
                                                       memory_order_relaxed)) < end;) {
            if (pool.fn(pool.ctx, c))
                atomic_store_explicit(&pool.failed, 1, memory_order_relaxed);
            if (is_worker) atomic_store_explicit(&pool.helped, 1, memory_order_relaxed);
            /* release: the chunk's writes are seen by the caller that reads done */
            atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
        }
    }
}

/* A new open job other than `seen`: its state, or 0. */
static uint64_t open_job(uint64_t seen)
{
    uint64_t s = atomic_load_explicit(&pool.state, memory_order_acquire);
    return (s & 1) && s != seen ? s : 0;
}

/* Waits for a job after `seen`: spins for POOL_SPIN_NS (POOL_HELD_SPIN_NS while the team
 * is held), then sleeps on `wake`. */
static void wait_for_job(uint64_t seen)
{
    const int64_t spin_ns = fastfc_tuned(FASTFC_T_POOL_SPIN_NS), t0 = fastfc_now_ns();
    for (int i = 1; !open_job(seen); i++) {
        cpu_relax();
        if (i % 64 == 0) {
            const int64_t now = fastfc_now_ns();
            if (now - t0 <= spin_ns) continue;
            if (!team_held(now)) break;
            sched_yield(); /* held: spin, but let a thread that wants this core have it */
        }
    }
    if (open_job(seen)) return;
    pthread_mutex_lock(&pool.nap);
    /* seq_cst with the caller's store of state: it sees us asleep or we see its job */
    atomic_fetch_add(&pool.sleepers, 1);
    while (!open_job(seen)) pthread_cond_wait(&pool.wake, &pool.nap);
    atomic_fetch_sub(&pool.sleepers, 1);
    pthread_mutex_unlock(&pool.nap);
}

/* A worker woken onto the caller's CPU while the other cores look busy (another
 * library's threads spinning, NumPy's OpenBLAS for 0.1 s after each call) waits there
 * behind the caller, and the region runs at one thread's rate: it moves itself off that
 * CPU, keeping its affinity mask (docs/tuning.md, "Woken onto the caller's CPU"). */
static void step_off(int cpu)
{
#ifdef __linux__
    cpu_set_t mask, others;
    if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getcpu() != cpu ||
        sched_getaffinity(0, sizeof mask, &mask))
        return;
    others = mask;
    CPU_CLR(cpu, &others);
    if (CPU_COUNT(&others) && !sched_setaffinity(0, sizeof others, &others))
        sched_setaffinity(0, sizeof mask, &mask); /* moved; back to the mask it had */
#else
    (void)cpu;
#endif
}

static void *worker_main(void *arg)
{
    (void)arg;
    uint64_t seen = atomic_load(&pool.state);
    for (;;) {
        wait_for_job(seen);
        /* join first, then re-check the job is open: the caller closing it waits for us */
        atomic_fetch_add(&pool.active, 1);
        uint64_t s = atomic_load(&pool.state);
        seen = s;
        int left;
        if ((s & 1) && (left = atomic_fetch_sub_explicit(&pool.seats_left, 1,
                                                         memory_order_relaxed)) > 0) {
            step_off(pool.caller_cpu);
            set_flush_mode(pool.flush);
            take_chunks((pool.seats - left) % pool.homes, 1);
        }
        /* release: our chunks' writes and reads of the fields end before the caller's reuse */
        atomic_fetch_sub_explicit(&pool.active, 1, memory_order_release);
    }
    return NULL;
}

/* Starts workers up to `want` (caller holds `busy`); fewer if the system refuses. */
static void start_workers(int want)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* workers take no signals: Python's thread does */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (pthread_t t; pool.workers < want && !pthread_create(&t, &attr, worker_main, NULL);)
        pool.workers++;
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* fork: the child has none of the workers; it starts its own at its first region. */
static void before_fork(void)
{
    pthread_mutex_lock(&pool.busy); /* no job half done in the child's copy */
    pthread_mutex_lock(&pool.nap);
}
static void after_fork_parent(void)
{
    pthread_mutex_unlock(&pool.nap);
    pthread_mutex_unlock(&pool.busy);
}
static void after_fork_child(void)
{
    pthread_mutex_init(&pool.nap, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pool.workers = 0;
    atomic_store(&pool.sleepers, 0);
    atomic_store(&pool.active, 0);
    atomic_store(&team_holds, 0); /* the child's steps hold it anew */
    pthread_mutex_unlock(&pool.busy);
}
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static void register_fork(void) { pthread_atfork(before_fork, after_fork_parent, after_fork_child); }

int fastfc_pool_run(int nt, int64_t chunks, fastfc_chunk_fn fn, void *ctx)
{
    if (nt < 2 || chunks < 2) return run_alone(chunks, fn, ctx);
    pthread_once(&fork_once, register_fork);
    /* a region already running (another Python thread, or us from inside a chunk) */
    if (pthread_mutex_trylock(&pool.busy)) return run_alone(chunks, fn, ctx);
    if (pool.workers < nt - 1) start_workers(nt - 1);
    if (pool.workers == 0) {
        pthread_mutex_unlock(&pool.busy);
        return run_alone(chunks, fn, ctx);
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.chunks = chunks;
    pool.seats = nt;
#ifdef __linux__
    pool.caller_cpu = sched_getcpu();
#else
    pool.caller_cpu = -1;
#endif
    pool.flush = flush_mode();
    atomic_store_explicit(&pool.seats_left, nt - 1, memory_order_relaxed);
    pool.homes = nt < POOL_HOMES ? nt : POOL_HOMES;
    for (int h = 0; h < pool.homes; h++) {
        int64_t start, end;
        fastfc_thread_range(h, pool.homes, chunks, 1, &start, &end);
        atomic_store_explicit(&pool.next[h], start, memory_order_relaxed);
    }
    atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
    atomic_store_explicit(&pool.failed, 0, memory_order_relaxed);
    atomic_store_explicit(&pool.helped, 0, memory_order_relaxed);
    const uint64_t job = atomic_load_explicit(&pool.state, memory_order_relaxed) + 1;
    /* seq_cst (a release too): the fields above are published before the job opens */
    atomic_store(&pool.state, job);
    int sleeping = atomic_load(&pool.sleepers);
    if (sleeping > 0) { /* the only syscall: wake as many as the job can seat */
        pthread_mutex_lock(&pool.nap);
        for (int i = 0; i < sleeping && i < nt - 1; i++) pthread_cond_signal(&pool.wake);
        pthread_mutex_unlock(&pool.nap);
    }
    take_chunks(0, 0);
    /* close: a worker joining from now on leaves without reading the fields */
    atomic_store(&pool.state, job + 1);
    /* every chunk taken is done, then no worker still reads the fields */
    for (int i = 1; atomic_load_explicit(&pool.done, memory_order_acquire) < chunks; i++)
        pause_or_yield(i);
    for (int i = 1; atomic_load(&pool.active) != 0; i++) pause_or_yield(i);
    const int failed = atomic_load_explicit(&pool.failed, memory_order_relaxed);
    if (atomic_load_explicit(&pool.helped, memory_order_relaxed)) fastfc_count_wide_region();
    pthread_mutex_unlock(&pool.busy);
    fastfc_team_done();
    return failed;
}
#endif
