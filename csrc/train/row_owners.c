/* The rows each seat read in the last K-split forward (row_owners.h), behind a seqlock:
 * a reader that races a writer sees no note, never half of one. */
#include <stdatomic.h>
#include <stdint.h>
#include "train/row_owners.h"

#define MAX_SEATS FASTFC_ROW_OWNERS_MAX_SEATS

static struct {
    _Atomic uint64_t seq; /* odd while a writer fills the note; 64 bits never wrap */
    _Atomic uintptr_t w;
    _Atomic int64_t row_elems, elem;
    _Atomic int nt;
    _Atomic int64_t first[MAX_SEATS + 1];
} note;

/* 1 with the note held (*done: the sequence number that closes the write), 0 when another
 * writer holds it (that one leaves its note). */
static int begin_write(uint64_t *done)
{
    uint64_t s = atomic_load_explicit(&note.seq, memory_order_relaxed);
    if ((s & 1) || !atomic_compare_exchange_strong_explicit(&note.seq, &s, s + 1,
                                                           memory_order_acquire,
                                                           memory_order_relaxed))
        return 0;
    atomic_thread_fence(memory_order_release);
    *done = s + 2;
    return 1;
}

void fastfc_forget_row_owners(const void *w)
{
    uint64_t done;
    if (atomic_load_explicit(&note.w, memory_order_relaxed) != (uintptr_t)w ||
        !atomic_load_explicit(&note.nt, memory_order_relaxed) || !begin_write(&done))
        return;
    if (atomic_load_explicit(&note.w, memory_order_relaxed) == (uintptr_t)w)
        atomic_store_explicit(&note.nt, 0, memory_order_relaxed);
    atomic_store_explicit(&note.seq, done, memory_order_release);
}

void fastfc_note_row_owners(const void *w, int64_t row_elems, size_t elem, int nt,
                            const int64_t *first)
{
    uint64_t done;
    if (nt < 2 || nt > MAX_SEATS || !begin_write(&done)) return;
    atomic_store_explicit(&note.w, (uintptr_t)w, memory_order_relaxed);
    atomic_store_explicit(&note.row_elems, row_elems, memory_order_relaxed);
    atomic_store_explicit(&note.elem, (int64_t)elem, memory_order_relaxed);
    atomic_store_explicit(&note.nt, nt, memory_order_relaxed);
    for (int i = 0; i <= nt; i++)
        atomic_store_explicit(&note.first[i], first[i], memory_order_relaxed);
    atomic_store_explicit(&note.seq, done, memory_order_release);
}

/* The note (seats, or 0 when there is none or a writer raced us), its weights and rows. */
static int read_note(uintptr_t *w, int64_t *re, int64_t *elem, int64_t *first)
{
    const uint64_t s = atomic_load_explicit(&note.seq, memory_order_acquire);
    const int nt = atomic_load_explicit(&note.nt, memory_order_relaxed);
    if ((s & 1) || nt < 2 || nt > MAX_SEATS) return 0;
    *w = atomic_load_explicit(&note.w, memory_order_relaxed);
    *re = atomic_load_explicit(&note.row_elems, memory_order_relaxed);
    *elem = atomic_load_explicit(&note.elem, memory_order_relaxed);
    for (int i = 0; i <= nt; i++)
        first[i] = atomic_load_explicit(&note.first[i], memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&note.seq, memory_order_relaxed) == s ? nt : 0;
}

int fastfc_row_owner_rows(const void *w, int64_t *first)
{
    uintptr_t noted;
    int64_t re, elem;
    const int nt = read_note(&noted, &re, &elem, first);
    return nt && noted == (uintptr_t)w ? nt : 0;
}

int fastfc_row_owner_cuts(const void *p, int64_t n, size_t elem, int nt, int64_t *cuts)
{
    uintptr_t w;
    int64_t re, size, first[MAX_SEATS + 1];
    if (nt < 2 || n <= 0 || read_note(&w, &re, &size, first) != nt) return 0;
    const uintptr_t base = (uintptr_t)p, bytes = (uintptr_t)n * elem;
    if (size != (int64_t)elem || w < base || w - base >= bytes || (w - base) % elem ||
        re <= 0 || first[0] != 0)
        return 0;
    const int64_t off = (int64_t)((w - base) / elem);
    for (int i = 0; i < nt; i++)
        if (first[i + 1] < first[i]) return 0;
    if (first[nt] > (n - off) / re) return 0; /* the rows run past the buffer */
    cuts[0] = cuts[nt] = (off + first[nt] * re) % n;
    for (int i = 1; i < nt; i++) cuts[i] = off + first[i] * re;
    int64_t total = 0;
    for (int i = 0; i < nt; i++) { /* modular lengths: seat 0 wraps around */
        const int64_t len = ((cuts[i + 1] - cuts[i]) % n + n) % n;
        if (4 * len * nt > 5 * n) return 0;
        total += len;
    }
    return total == n; /* not so when one seat would take the whole ring */
}
