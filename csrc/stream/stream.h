/* Where the small-batch path (stream_template.h) takes a product from the GEMM: the named
 * values the per-CPU tuning table is to own. */
#ifndef FASTFC_STREAM_H
#define FASTFC_STREAM_H

/* A product with at most this many rows of A makes 2*m flops per weight read: bound by
 * reading B for m up to ~8 (fp32) and still better unpacked at 16, where a packed B panel
 * would serve one or two micro-tiles only (MR is 4 to 12). */
#define FASTFC_STREAM_MAX_M 16
/* Accumulators of the m x cw slice of C a pass updates: half of a 32 KiB L1d (the smallest
 * on x86-64 CPUs with AVX2), the rest for the rows of B in flight and A. */
#define FASTFC_STREAM_ACC_BYTES (16 << 10)
/* Reading one weight from memory costs about this many multiply-adds of compute: the
 * work that decides whether a streamed product wakes a team (FASTFC_MIN_PARALLEL_MNK). */
#define FASTFC_STREAM_READ_COST 8
#endif
