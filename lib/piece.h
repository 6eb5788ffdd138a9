/*
 * piece: what one run of one query produced on one target, immutable.
 *
 * The exposition text of its samples and the spans that say which family
 * each run of samples belongs to. A new run makes a new piece; the target
 * drops its reference to the old one, and a page being assembled off the
 * loop keeps its own, so assembly reads pieces without copying them first
 * and without any lock. Refcounts change on the loop thread only; the
 * bytes are never written after pp_piece_new.
 */
#ifndef PGPULSE_PIECE_H
#define PGPULSE_PIECE_H

#include <stddef.h>
#include <stdint.h>

/* A run of samples of one family inside a piece's text. */
typedef struct pp_span {
    uint32_t family;
    uint32_t len;
    size_t off;
} pp_span;

typedef struct pp_piece {
    const char *text; /* owned */
    size_t len;
    const pp_span *spans; /* owned */
    size_t nspans;
    unsigned refs;
} pp_piece;

/* Takes ownership of text (malloc'd, may be NULL when len is 0) and spans
 * (malloc'd, may be NULL when nspans is 0). One reference. */
pp_piece *pp_piece_new(char *text, size_t len, pp_span *spans, size_t nspans);
pp_piece *pp_piece_ref(pp_piece *p);
void pp_piece_unref(pp_piece *p); /* accepts NULL */

/* Heap bytes the piece holds. */
size_t pp_piece_memory(const pp_piece *p);

#endif
