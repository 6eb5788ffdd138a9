/*
 * piece: what one run of one query produced on one target, immutable.
 *
 * The exposition text of its samples and the spans that say which family
 * each run of samples belongs to. A new run makes a new piece; the target
 * drops its reference to the old one, and a page being assembled off the
 * loop keeps its own, so assembly reads pieces without copying them first
 * and without any lock. Refcounts change on the loop thread only; the
 * bytes are never written after pp_piece_new.
 *
 * A piece lives for an interval, and there is one per query and target,
 * so together they are most of what the process holds (about 50 KiB of
 * text per target with the default catalog). Text of PP_PIECE_PACK_MIN
 * bytes or more is kept packed (raw deflate, level 1, about an eighth of
 * its size); readers get it back through pp_piece_unpack or a reader.
 * It is packed in chunks of about PP_PIECE_CHUNK bytes that end where a
 * span ends, each inflatable alone: the page assembly, which needs every
 * target's piece of a query at once, then holds a chunk of each, not the
 * whole piece (at 1,000 targets the settings alone are 16 MB).
 */
#ifndef PGPULSE_PIECE_H
#define PGPULSE_PIECE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "buf.h"

#define PP_PIECE_PACK_MIN 512
#define PP_PIECE_CHUNK 4096

/* A run of samples of one family inside a piece's text (a piece's text
 * is under 4 GiB: the series cap keeps it far below). 700,000 of them at
 * 1,000 targets: 12 bytes each. */
typedef struct pp_span {
    uint32_t family;
    uint32_t len;
    uint32_t off;
} pp_span;

/* One independently inflatable part of a packed piece. */
typedef struct pp_chunk {
    uint32_t off, len;               /* in the text */
    uint32_t packed_off, packed_len; /* in packed */
} pp_chunk;

/* One allocation holds the piece, its spans, its chunks and its bytes
 * (30,000 pieces at 1,000 targets: four allocations each cost 3 MB of
 * malloc headers and rounding). */
typedef struct pp_piece {
    const char *text;            /* NULL when packed */
    const unsigned char *packed; /* raw deflate of the text, or NULL */
    size_t packed_len;
    const pp_chunk *chunks; /* when packed */
    size_t nchunks;
    size_t len; /* of the text */
    const pp_span *spans;
    size_t nspans;
    size_t size;   /* of the allocation */
    uint64_t id;   /* unique in the process: pieces with the same id are one */
    uint64_t hash; /* of the text, to tell a run that changed nothing */
    unsigned refs;
} pp_piece;

/* A piece of text and spans (copied; the caller keeps its own), packed
 * when it is long enough and packing pays. One reference. */
pp_piece *pp_piece_new(const char *text, size_t len, const pp_span *spans, size_t nspans);
/* The same, or prev (NULL or a piece of the query's last run; a new
 * reference) when its text and spans are exactly these: a run that
 * changed nothing keeps its piece, so nothing is packed again and the
 * page build can reuse what it made of it (by id). Equal text is told by
 * length and a 64-bit hash of the bytes. */
pp_piece *pp_piece_new_or_same(pp_piece *prev, const char *text, size_t len, const pp_span *spans,
                               size_t nspans);
/* A piece with p's text (its bytes copied as they are, packed or not) and
 * other spans (copied, as many as p has). */
pp_piece *pp_piece_respan(const pp_piece *p, const pp_span *spans);
pp_piece *pp_piece_ref(pp_piece *p);
void pp_piece_unref(pp_piece *p); /* accepts NULL */

/* Heap bytes the piece holds. */
size_t pp_piece_memory(const pp_piece *p);

/* Writes p's text (p->len bytes) to out. z is a raw inflate stream
 * (inflateInit2 with -15 window bits) the caller keeps between calls, on
 * one thread. Returns false only if the packed bytes do not inflate to
 * exactly p->len bytes, which would be a bug. */
bool pp_piece_unpack(z_stream *z, const pp_piece *p, char *out);
/* The same for chunk c of a packed piece: p->chunks[c].len bytes. */
bool pp_piece_unpack_chunk(z_stream *z, const pp_piece *p, size_t c, char *out);
/* The chunk of a packed piece that holds text offset off. */
size_t pp_piece_chunk_at(const pp_piece *p, size_t off);

/* Reads pieces' text one at a time, inflating into a buffer of its own
 * when packed; asking for the same piece again costs nothing. */
typedef struct pp_piece_reader {
    z_stream z;
    bool ready;
    const pp_piece *last;
    pp_buf buf;
} pp_piece_reader;

void pp_piece_reader_init(pp_piece_reader *r);
void pp_piece_reader_deinit(pp_piece_reader *r);
/* p's text, valid until the next call with r or until p is released;
 * NULL if it cannot be had (see pp_piece_unpack). */
const char *pp_piece_read(pp_piece_reader *r, const pp_piece *p);

/* A malloc'd, NUL-terminated copy of p's text; NULL if it cannot be had. */
char *pp_piece_strdup(const pp_piece *p);

/* Opens and closes a raw inflate stream for pp_piece_unpack; false when
 * zlib cannot (out of memory). */
bool pp_piece_inflate_open(z_stream *z);
void pp_piece_inflate_close(z_stream *z);

#endif
