/* Which seat of the pool (pool.h) read which rows of a layer's weights in the last training
 * forward split by K (gemm/ksplit_driver.h), so that the optimizer updates those rows on the
 * same seats: an update on the other core paid for every line that crossed (784-128-64-10 at batch 32:
 * Adam after the gradients 22 -> 34 us; docs/tuning.md, "Adam on the forward's threads"). */
#ifndef FASTFC_ROW_OWNERS_H
#define FASTFC_ROW_OWNERS_H
#include <stddef.h>
#include <stdint.h>
#include "fastfc.h" /* FASTFC_ROW_OWNERS_MAX_SEATS, fastfc_row_owner_cuts */

/* The last K-split forward read rows [first[s], first[s + 1]) of w (rows of `row_elems`
 * elements of `elem` bytes, contiguous) on seat s of nt, first[nt] the end of the rows.
 * Seat 0 is the caller and a lone worker seat 1; wider teams' workers take seats in the
 * order they join a region, so past two threads a seat is the same thread only by luck. */
void fastfc_note_row_owners(const void *w, int64_t row_elems, size_t elem, int nt,
                            const int64_t *first);
/* Drops the note of w: its forward ran another way (not split by K, another team). */
void fastfc_forget_row_owners(const void *w);
/* Seats (nt) when the noted rows are those of w, copied to first[0..nt]; else 0. */
int fastfc_row_owner_rows(const void *w, int64_t *first);
/* Cuts on the ring of a flat buffer for an update (declared in fastfc.h): seat s takes
 * [cuts[s], cuts[s + 1]) modulo n, its rows of the noted weights, and seat 0 (the caller,
 * which ran the small layers) the parameters outside them too. 0 when no noted weights lie
 * in p for nt seats, or when a seat would take over 5/4 of an even share. */
#endif
