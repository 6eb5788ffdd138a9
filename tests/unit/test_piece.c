/*
 * test_piece: pieces keep long text packed and give back exactly what
 * they were given, through every way of reading it; short or
 * incompressible text stays as it is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "piece.h"

/* n bytes of exposition-like text: repetitive, as a page is */
static char *sample_text(size_t n)
{
    pp_buf b = PP_BUF_INIT;
    for (unsigned i = 0; b.len < n; i++)
        pp_buf_printf(&b,
                      "pg_stat_user_tables_n_live_tup{server=\"127.0.1.%u:5432\","
                      "datname=\"postgres\",schemaname=\"public\",relname=\"t%u\"} %u\n",
                      i % 7, i, i * 37);
    b.len = n;
    b.data[n] = '\0';
    return pp_buf_steal(&b, NULL);
}

/* n bytes deflate cannot shrink */
static char *noise(size_t n)
{
    char *s = pp_malloc(n + 1);
    unsigned x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        s[i] = (char)(x >> 16);
    }
    s[n] = '\0';
    return s;
}

static pp_span one_span(size_t len)
{
    return (pp_span){.family = 3, .len = (uint32_t)len, .off = 0};
}

/* every reader gives back want */
static void check_reads(const pp_piece *p, const char *want, size_t len)
{
    CHECK(p->len == len);
    char *copy = pp_piece_strdup(p);
    CHECK(copy != NULL && memcmp(copy, want, len) == 0 && copy[len] == '\0');
    free(copy);

    pp_piece_reader r;
    pp_piece_reader_init(&r);
    const char *a = pp_piece_read(&r, p);
    CHECK(a != NULL && memcmp(a, want, len) == 0);
    CHECK(pp_piece_read(&r, p) == a); /* the same piece again: no work */
    pp_piece_reader_deinit(&r);

    z_stream z;
    CHECK(pp_piece_inflate_open(&z));
    char *out = pp_malloc(len + 1);
    CHECK(pp_piece_unpack(&z, p, out) && memcmp(out, want, len) == 0);
    CHECK(pp_piece_unpack(&z, p, out) && memcmp(out, want, len) == 0); /* the stream is reused */
    free(out);
    pp_piece_inflate_close(&z);
}

int main(void)
{
    /* long, repetitive: packed, far smaller, read back whole */
    size_t n = 60000;
    char *want = sample_text(n);
    pp_span whole = one_span(n);
    pp_piece *p = pp_piece_new(want, n, &whole, 1);
    CHECK(p->packed != NULL && p->text == NULL);
    CHECK(p->nchunks == 1); /* one span: one chunk */
    CHECK(p->packed_len * 5 < n);
    CHECK(pp_piece_memory(p) < n / 5);
    check_reads(p, want, n);

    /* new spans, same text: the packed bytes are copied as they are */
    pp_span sp = one_span(n);
    sp.family = 9;
    pp_piece *q = pp_piece_respan(p, &sp);
    CHECK(q->packed != NULL && q->packed_len == p->packed_len && q->spans[0].family == 9);
    pp_piece_unref(p);
    check_reads(q, want, n);
    pp_piece_unref(q);

    /* two pieces through one reader: the second is not the first's text */
    char *other = sample_text(n / 2);
    other[0] = 'x';
    pp_piece *a = pp_piece_new(want, n, NULL, 0), *b = pp_piece_new(other, n / 2, NULL, 0);
    pp_piece_reader r;
    pp_piece_reader_init(&r);
    const char *ra = pp_piece_read(&r, a);
    CHECK(ra != NULL && memcmp(ra, want, n) == 0);
    const char *rb = pp_piece_read(&r, b);
    CHECK(rb != NULL && memcmp(rb, other, n / 2) == 0);
    pp_piece_reader_deinit(&r);
    pp_piece_unref(a);
    pp_piece_unref(b);

    /* short: kept as it is */
    pp_span eight = one_span(8);
    pp_piece *small = pp_piece_new("pg_up 1\n", 8, &eight, 1);
    CHECK(small->packed == NULL && small->text != NULL);
    check_reads(small, "pg_up 1\n", 8);
    pp_piece *small2 = pp_piece_respan(small, &eight);
    check_reads(small2, "pg_up 1\n", 8);
    pp_piece_unref(small);
    pp_piece_unref(small2);

    /* incompressible: packing would not pay, kept as it is */
    char *rnd = noise(4096);
    pp_span all = one_span(4096);
    pp_piece *hard = pp_piece_new(rnd, 4096, &all, 1);
    CHECK(hard->packed == NULL);
    check_reads(hard, rnd, 4096);
    pp_piece_unref(hard);

    /* empty */
    pp_piece *empty = pp_piece_new(NULL, 0, NULL, 0);
    char *e = pp_piece_strdup(empty);
    CHECK(e != NULL && e[0] == '\0');
    free(e);
    pp_piece_unref(empty);

    /* many spans: chunks of about PP_PIECE_CHUNK bytes that end where a
     * span ends, each inflating alone to its own part of the text */
    size_t nsp = 300, each = 97; /* spans of 97 bytes, a few thousand per chunk */
    pp_span *spans = pp_malloc(nsp * sizeof(pp_span));
    for (size_t k = 0; k < nsp; k++) /* out of order: chunking sorts them */
        spans[k] = (pp_span){
            .family = (uint32_t)k, .len = (uint32_t)each, .off = (uint32_t)((nsp - 1 - k) * each)};
    pp_piece *many = pp_piece_new(want, nsp * each, spans, nsp);
    CHECK(many->packed != NULL && many->nchunks > 2 && many->nchunks < nsp);
    check_reads(many, want, nsp * each);
    z_stream z;
    CHECK(pp_piece_inflate_open(&z));
    size_t at = 0;
    for (size_t c = 0; c < many->nchunks; c++) {
        const pp_chunk *ch = &many->chunks[c];
        CHECK(ch->off == at && ch->off % each == 0); /* contiguous, on span ends */
        CHECK(c + 1 == many->nchunks || ch->len >= PP_PIECE_CHUNK);
        char *part = pp_malloc(ch->len);
        CHECK(pp_piece_unpack_chunk(&z, many, c, part) &&
              memcmp(part, want + ch->off, ch->len) == 0);
        free(part);
        CHECK(pp_piece_chunk_at(many, ch->off) == c);
        CHECK(pp_piece_chunk_at(many, ch->off + ch->len - 1) == c);
        at += ch->len;
    }
    CHECK(at == nsp * each);
    pp_piece_inflate_close(&z);
    for (size_t k = 0; k < nsp; k++) /* every span inside one chunk */
        CHECK(pp_piece_chunk_at(many, spans[k].off) ==
              pp_piece_chunk_at(many, spans[k].off + spans[k].len - 1));
    pp_piece_unref(many);
    free(spans);

    /* a run that changed nothing keeps its piece (same id: the page build
     * reuses it); a changed byte, a changed span or no previous piece
     * make a new one, with its own id */
    pp_span two[2] = {{.family = 1, .len = 100, .off = 0}, {.family = 2, .len = 900, .off = 100}};
    pp_piece *run1 = pp_piece_new_or_same(NULL, want, 1000, two, 2);
    pp_piece *run2 = pp_piece_new_or_same(run1, want, 1000, two, 2);
    CHECK(run2 == run1 && run1->refs == 2);
    char *edited = pp_malloc(1000);
    memcpy(edited, want, 1000);
    edited[999] ^= 1; /* in the last, partial word of the hash */
    pp_piece *run3 = pp_piece_new_or_same(run2, edited, 1000, two, 2);
    CHECK(run3 != run2 && run3->id != run2->id);
    check_reads(run3, edited, 1000);
    edited[999] ^= 1;
    edited[8] ^= 1; /* in a whole word */
    pp_piece *run4 = pp_piece_new_or_same(run1, edited, 1000, two, 2);
    CHECK(run4 != run1);
    two[1].family = 7;
    pp_piece *run5 = pp_piece_new_or_same(run1, want, 1000, two, 2);
    CHECK(run5 != run1 && run5->spans[1].family == 7);
    pp_piece *shorter = pp_piece_new_or_same(run1, want, 999, two, 1);
    CHECK(shorter != run1);
    pp_piece *none = pp_piece_new_or_same(NULL, NULL, 0, NULL, 0);
    pp_piece *none2 = pp_piece_new_or_same(none, NULL, 0, NULL, 0);
    CHECK(none2 == none);
    pp_piece *list[] = {run1, run2, run3, run4, run5, shorter, none, none2};
    for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++)
        pp_piece_unref(list[i]);
    free(edited);

    free(want);
    free(other);
    free(rnd);
    return CHECK_RESULT();
}
