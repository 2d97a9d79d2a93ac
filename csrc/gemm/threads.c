#include <pthread.h>
#include <stdlib.h>
#include "fastfc.h"
#include "gemm/threads.h"

#define FASTFC_MIN_PARALLEL_ELEMS (1 << 16)

int fastfc_thread_grid(int nthreads, int64_t m, int64_t n, int64_t k, int mr, int nr,
                       int *tm, int *tn)
{
    int nt = fastfc_threads_allowed(nthreads);
    *tm = *tn = 1;
    if (nt == 1 || (double)m * n * k < FASTFC_MIN_PARALLEL_MNK) return 1;
    int64_t pm = (m + mr - 1) / mr, pn = (n + nr - 1) / nr;
    while (nt > 1) {
        double best = -1;
        for (int a = 1; a <= nt; a++) {
            if (nt % a || pm < a || pn < nt / a) continue;
            /* each thread packs its rows of A and columns of B: keep the block square */
            double cost = (double)m / a + (double)n / (nt / a);
            if (best < 0 || cost < best) { best = cost; *tm = a; *tn = nt / a; }
        }
        if (best >= 0) return nt;
        nt--;
    }
    *tm = *tn = 1;
    return 1;
}

void fastfc_thread_range(int id, int parts, int64_t len, int unit, int64_t *lo, int64_t *hi)
{
    int64_t units = (len + unit - 1) / unit;
    int64_t u0 = units * id / parts, u1 = units * (id + 1) / parts;
    *lo = u0 * unit;
    *hi = u1 * unit < len ? u1 * unit : len;
}

int fastfc_elementwise_threads(int nthreads, int64_t work)
{
    int nt = fastfc_threads_allowed(nthreads);
    if (work < FASTFC_MIN_PARALLEL_ELEMS) return 1;
    int64_t most = work / (FASTFC_MIN_PARALLEL_ELEMS / 2);
    return nt < most ? nt : (int)most;
}

typedef struct { void *p; size_t bytes; } thread_buf;
static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;

static void free_buf(void *v)
{
    thread_buf *t = v;
    free(t->p);
    free(t);
}
static void make_key(void) { pthread_key_create(&buf_key, free_buf); }

void *fastfc_thread_buffer(size_t bytes)
{
    pthread_once(&buf_once, make_key);
    thread_buf *t = pthread_getspecific(buf_key);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t || pthread_setspecific(buf_key, t)) { free(t); return NULL; }
    }
    if (t->bytes < bytes) {
        size_t want = (bytes + 4095) & ~(size_t)4095;
        void *p = aligned_alloc(64, want);
        if (!p) return NULL;
        free(t->p);
        t->p = p;
        t->bytes = want;
    }
    return t->p;
}
