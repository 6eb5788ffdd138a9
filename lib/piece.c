/*
 * piece: immutable, refcounted query results (see piece.h).
 */
#include "piece.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Pieces are made on the loop thread (and in tests on the main thread):
 * one deflate stream per thread, kept, reset for every chunk (a smaller
 * hash than zlib's default, memLevel 6: it is cleared at every reset, and
 * chunks are a few KiB), and scratch for the packed bytes, given back
 * after a piece over a megabyte. */
#define SCRATCH_KEEP ((size_t)1 << 20)

static _Thread_local z_stream packer;
static _Thread_local bool packer_ready;
static _Thread_local pp_buf scratch;

typedef struct cut {
    size_t off, end;
} cut;

static int cut_cmp(const void *a, const void *b)
{
    const cut *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Where chunks start: offsets from PP_PIECE_CHUNK on, never inside a
 * span. Returns how many chunks; starts[0] is 0. */
static size_t chunk_starts(size_t len, const pp_span *spans, size_t nspans, size_t *starts)
{
    cut *c = pp_malloc((nspans ? nspans : 1) * sizeof(cut));
    for (size_t k = 0; k < nspans; k++)
        c[k] = (cut){spans[k].off, (size_t)spans[k].off + spans[k].len};
    qsort(c, nspans, sizeof(cut), cut_cmp);
    size_t n = 0, covered = 0; /* covered: the end of the spans so far */
    starts[n++] = 0;
    for (size_t k = 0; k < nspans; k++) {
        if (c[k].off >= covered && c[k].off - starts[n - 1] >= PP_PIECE_CHUNK && c[k].off < len)
            starts[n++] = c[k].off;
        if (c[k].end > covered)
            covered = c[k].end;
    }
    free(c);
    return n;
}

/* text packed chunk by chunk into scratch, the chunks malloc'd into
 * *out_chunks; false when packing does not pay (or zlib fails). */
static bool pack(const char *text, size_t len, const pp_span *spans, size_t nspans,
                 pp_chunk **out_chunks, size_t *out_nchunks)
{
    if (!packer_ready) {
        if (deflateInit2(&packer, 1, Z_DEFLATED, -15, 6, Z_DEFAULT_STRATEGY) != Z_OK)
            return false;
        packer_ready = true;
    }
    size_t *starts = pp_malloc((nspans + 1) * sizeof(size_t));
    size_t n = chunk_starts(len, spans, nspans, starts);
    pp_chunk *chunks = pp_malloc(n * sizeof(pp_chunk));
    pp_buf_reset(&scratch);
    pp_buf_reserve(&scratch, deflateBound(&packer, (uLong)len) + n * 16);
    unsigned char *out = (unsigned char *)scratch.data;
    size_t cap = scratch.cap - 1, used = 0;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        size_t from = starts[i], to = i + 1 < n ? starts[i + 1] : len;
        ok = deflateReset(&packer) == Z_OK;
        packer.next_in = (Bytef *)text + from;
        packer.avail_in = (uInt)(to - from);
        packer.next_out = out + used;
        packer.avail_out = (uInt)(cap - used);
        ok = ok && deflate(&packer, Z_FINISH) == Z_STREAM_END;
        size_t made = (size_t)(packer.next_out - (out + used));
        chunks[i] =
            (pp_chunk){(uint32_t)from, (uint32_t)(to - from), (uint32_t)used, (uint32_t)made};
        used += made;
        ok = ok && used < len - len / 8; /* a gain under 1/8 is not worth a read */
    }
    free(starts);
    if (!ok) {
        free(chunks);
        return false;
    }
    scratch.len = used;
    *out_chunks = chunks;
    *out_nchunks = n;
    return true;
}

static _Atomic uint64_t last_id;

/* A 64-bit hash of the text, eight bytes a step (about 2 GB/s): the text
 * of a run is hashed once, a few MB a second at 1,000 targets. */
static uint64_t text_hash(const char *text, size_t len)
{
    const uint64_t m = UINT64_C(0x9E3779B97F4A7C15);
    uint64_t h = UINT64_C(0x243F6A8885A308D3) ^ (len * m);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, text + i, 8);
        h = (h ^ (w * m)) * UINT64_C(0xC2B2AE3D27D4EB4F);
        h ^= h >> 31;
    }
    uint64_t w = 0;
    if (len > i)
        memcpy(&w, text + i, len - i);
    h = (h ^ (w * m)) * UINT64_C(0xC2B2AE3D27D4EB4F);
    /* the final mix of splitmix64 */
    h ^= h >> 30;
    h *= UINT64_C(0xBF58476D1CE4E5B9);
    h ^= h >> 27;
    h *= UINT64_C(0x94D049BB133111EB);
    return h ^ (h >> 31);
}

/* One allocation: the piece, then its spans, chunks and bytes. */
static pp_piece *make(const void *bytes, size_t nbytes, bool packed, size_t len,
                      const pp_span *spans, size_t nspans, const pp_chunk *chunks, size_t nchunks,
                      uint64_t hash)
{
    size_t size =
        sizeof(pp_piece) + nspans * sizeof(pp_span) + nchunks * sizeof(pp_chunk) + nbytes + 1;
    pp_piece *p = pp_malloc(size);
    pp_span *sp = (pp_span *)(p + 1);
    pp_chunk *ch = (pp_chunk *)(sp + nspans);
    char *data = (char *)(ch + nchunks);
    if (nspans > 0)
        memcpy(sp, spans, nspans * sizeof(pp_span));
    if (nchunks > 0)
        memcpy(ch, chunks, nchunks * sizeof(pp_chunk));
    if (nbytes > 0)
        memcpy(data, bytes, nbytes);
    data[nbytes] = '\0';
    *p = (pp_piece){
        .text = packed ? NULL : data,
        .packed = packed ? (const unsigned char *)data : NULL,
        .packed_len = packed ? nbytes : 0,
        .chunks = nchunks > 0 ? ch : NULL,
        .nchunks = nchunks,
        .len = len,
        .spans = nspans > 0 ? sp : NULL,
        .nspans = nspans,
        .size = size,
        .id = atomic_fetch_add_explicit(&last_id, 1, memory_order_relaxed) + 1,
        .hash = hash,
        .refs = 1,
    };
    return p;
}

static pp_piece *piece_new(const char *text, size_t len, const pp_span *spans, size_t nspans,
                           uint64_t hash)
{
    pp_chunk *chunks = NULL;
    size_t nchunks = 0;
    if (len >= PP_PIECE_PACK_MIN && len <= UINT32_MAX &&
        pack(text, len, spans, nspans, &chunks, &nchunks)) {
        pp_piece *p =
            make(scratch.data, scratch.len, true, len, spans, nspans, chunks, nchunks, hash);
        free(chunks);
        if (scratch.cap > SCRATCH_KEEP)
            pp_buf_deinit(&scratch);
        return p;
    }
    if (scratch.cap > SCRATCH_KEEP)
        pp_buf_deinit(&scratch);
    return make(text, len, false, len, spans, nspans, NULL, 0, hash);
}

pp_piece *pp_piece_new(const char *text, size_t len, const pp_span *spans, size_t nspans)
{
    return piece_new(text, len, spans, nspans, text_hash(text, len));
}

pp_piece *pp_piece_new_or_same(pp_piece *prev, const char *text, size_t len, const pp_span *spans,
                               size_t nspans)
{
    uint64_t hash = text_hash(text, len);
    if (prev != NULL && prev->len == len && prev->hash == hash && prev->nspans == nspans &&
        (nspans == 0 || memcmp(prev->spans, spans, nspans * sizeof(pp_span)) == 0))
        return pp_piece_ref(prev);
    return piece_new(text, len, spans, nspans, hash);
}

pp_piece *pp_piece_respan(const pp_piece *p, const pp_span *spans)
{
    if (p->packed != NULL)
        return make(p->packed, p->packed_len, true, p->len, spans, p->nspans, p->chunks, p->nchunks,
                    p->hash);
    return make(p->text, p->len, false, p->len, spans, p->nspans, NULL, 0, p->hash);
}

pp_piece *pp_piece_ref(pp_piece *p)
{
    assert(p->refs > 0);
    p->refs++;
    return p;
}

void pp_piece_unref(pp_piece *p)
{
    if (p == NULL)
        return;
    assert(p->refs > 0);
    if (--p->refs > 0)
        return;
    free(p);
}

size_t pp_piece_memory(const pp_piece *p)
{
    return p->size;
}

bool pp_piece_inflate_open(z_stream *z)
{
    memset(z, 0, sizeof(*z));
    return inflateInit2(z, -15) == Z_OK;
}

void pp_piece_inflate_close(z_stream *z)
{
    inflateEnd(z);
}

bool pp_piece_unpack_chunk(z_stream *z, const pp_piece *p, size_t c, char *out)
{
    const pp_chunk *k = &p->chunks[c];
    if (inflateReset(z) != Z_OK)
        return false;
    z->next_in = (Bytef *)p->packed + k->packed_off;
    z->avail_in = k->packed_len;
    z->next_out = (Bytef *)out;
    z->avail_out = k->len;
    return inflate(z, Z_FINISH) == Z_STREAM_END && z->avail_out == 0;
}

bool pp_piece_unpack(z_stream *z, const pp_piece *p, char *out)
{
    if (p->packed == NULL) {
        if (p->len > 0)
            memcpy(out, p->text, p->len);
        return true;
    }
    for (size_t c = 0; c < p->nchunks; c++)
        if (!pp_piece_unpack_chunk(z, p, c, out + p->chunks[c].off))
            return false;
    return true;
}

size_t pp_piece_chunk_at(const pp_piece *p, size_t off)
{
    size_t lo = 0, hi = p->nchunks; /* the last chunk starting at or before off */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->chunks[mid].off <= off)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

void pp_piece_reader_init(pp_piece_reader *r)
{
    memset(r, 0, sizeof(*r));
}

void pp_piece_reader_deinit(pp_piece_reader *r)
{
    if (r->ready)
        pp_piece_inflate_close(&r->z);
    pp_buf_deinit(&r->buf);
    memset(r, 0, sizeof(*r));
}

const char *pp_piece_read(pp_piece_reader *r, const pp_piece *p)
{
    if (p->packed == NULL)
        return p->text != NULL ? p->text : "";
    if (r->last == p)
        return r->buf.data;
    if (!r->ready) {
        if (!pp_piece_inflate_open(&r->z))
            return NULL;
        r->ready = true;
    }
    pp_buf_reset(&r->buf);
    pp_buf_reserve(&r->buf, p->len);
    r->last = NULL;
    if (!pp_piece_unpack(&r->z, p, r->buf.data))
        return NULL;
    r->buf.len = p->len;
    r->buf.data[p->len] = '\0';
    r->last = p;
    return r->buf.data;
}

char *pp_piece_strdup(const pp_piece *p)
{
    pp_piece_reader r;
    pp_piece_reader_init(&r);
    const char *text = pp_piece_read(&r, p);
    char *copy = NULL;
    if (text != NULL) {
        copy = pp_malloc(p->len + 1);
        memcpy(copy, text, p->len);
        copy[p->len] = '\0';
    }
    pp_piece_reader_deinit(&r);
    return copy;
}
