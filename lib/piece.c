/*
 * piece: immutable, refcounted query results (see piece.h).
 */
#include "piece.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* Pieces are made on the loop thread (and in tests on the main thread):
 * one deflate stream per thread, kept, reset for every piece. Its ~270 KiB
 * would cost more than they save if set up for each piece. */
static _Thread_local z_stream packer;
static _Thread_local bool packer_ready;

/* text packed, or NULL when packing does not pay (or zlib fails). */
static unsigned char *pack(const char *text, size_t len, size_t *out_len)
{
    if (!packer_ready) {
        if (deflateInit2(&packer, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return NULL;
        packer_ready = true;
    } else if (deflateReset(&packer) != Z_OK) {
        return NULL;
    }
    size_t cap = deflateBound(&packer, (uLong)len);
    unsigned char *out = pp_malloc(cap);
    packer.next_in = (Bytef *)text;
    packer.avail_in = (uInt)len;
    packer.next_out = out;
    packer.avail_out = (uInt)cap;
    int rc = deflate(&packer, Z_FINISH);
    size_t n = cap - packer.avail_out;
    if (rc != Z_STREAM_END || n >= len - len / 8) { /* a gain under 1/8 is not worth a read */
        free(out);
        return NULL;
    }
    *out_len = n;
    return pp_realloc(out, n);
}

static pp_piece *make(char *text, unsigned char *packed, size_t packed_len, size_t len,
                      pp_span *spans, size_t nspans)
{
    pp_piece *p = pp_calloc(1, sizeof(*p));
    p->text = text;
    p->packed = packed;
    p->packed_len = packed_len;
    p->len = len;
    p->spans = spans;
    p->nspans = nspans;
    p->refs = 1;
    return p;
}

pp_piece *pp_piece_new(char *text, size_t len, pp_span *spans, size_t nspans)
{
    size_t packed_len = 0;
    unsigned char *packed = NULL;
    if (len >= PP_PIECE_PACK_MIN && len <= UINT32_MAX)
        packed = pack(text, len, &packed_len);
    if (packed != NULL) {
        free(text);
        text = NULL;
    }
    return make(text, packed, packed_len, len, spans, nspans);
}

pp_piece *pp_piece_respan(const pp_piece *p, pp_span *spans)
{
    char *text = NULL;
    unsigned char *packed = NULL;
    if (p->packed != NULL) {
        packed = pp_malloc(p->packed_len);
        memcpy(packed, p->packed, p->packed_len);
    } else if (p->text != NULL) {
        text = pp_malloc(p->len + 1);
        memcpy(text, p->text, p->len);
        text[p->len] = '\0';
    }
    return make(text, packed, p->packed_len, p->len, spans, p->nspans);
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
    free((void *)p->text);
    free((void *)p->packed);
    free((void *)p->spans);
    free(p);
}

size_t pp_piece_memory(const pp_piece *p)
{
    return sizeof(*p) + (p->packed != NULL ? p->packed_len : p->len) + p->nspans * sizeof(pp_span);
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

bool pp_piece_unpack(z_stream *z, const pp_piece *p, char *out)
{
    if (p->packed == NULL) {
        if (p->len > 0)
            memcpy(out, p->text, p->len);
        return true;
    }
    if (inflateReset(z) != Z_OK)
        return false;
    z->next_in = (Bytef *)p->packed;
    z->avail_in = (uInt)p->packed_len;
    z->next_out = (Bytef *)out;
    z->avail_out = (uInt)p->len;
    return inflate(z, Z_FINISH) == Z_STREAM_END && z->avail_out == 0;
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
