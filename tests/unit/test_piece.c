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

static pp_span *one_span(size_t len)
{
    pp_span *sp = pp_malloc(sizeof(pp_span));
    *sp = (pp_span){.family = 3, .len = (uint32_t)len, .off = 0};
    return sp;
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
    char *text = pp_malloc(n + 1);
    memcpy(text, want, n + 1);
    pp_piece *p = pp_piece_new(text, n, one_span(n), 1);
    CHECK(p->packed != NULL && p->text == NULL);
    CHECK(p->packed_len * 5 < n);
    CHECK(pp_piece_memory(p) < n / 5);
    check_reads(p, want, n);

    /* new spans, same text: the packed bytes are copied as they are */
    pp_span *sp = one_span(n);
    sp->family = 9;
    pp_piece *q = pp_piece_respan(p, sp);
    CHECK(q->packed != NULL && q->packed_len == p->packed_len && q->spans[0].family == 9);
    pp_piece_unref(p);
    check_reads(q, want, n);
    pp_piece_unref(q);

    /* two pieces through one reader: the second is not the first's text */
    char *other = sample_text(n / 2);
    other[0] = 'x';
    char *t1 = pp_strdup(want), *t2 = pp_strdup(other);
    pp_piece *a = pp_piece_new(t1, n, NULL, 0), *b = pp_piece_new(t2, n / 2, NULL, 0);
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
    char *s = pp_strdup("pg_up 1\n");
    pp_piece *small = pp_piece_new(s, 8, one_span(8), 1);
    CHECK(small->packed == NULL && small->text != NULL);
    check_reads(small, "pg_up 1\n", 8);
    pp_piece *small2 = pp_piece_respan(small, one_span(8));
    check_reads(small2, "pg_up 1\n", 8);
    pp_piece_unref(small);
    pp_piece_unref(small2);

    /* incompressible: packing would not pay, kept as it is */
    char *rnd = noise(4096);
    char *rcopy = pp_malloc(4097);
    memcpy(rcopy, rnd, 4097);
    pp_piece *hard = pp_piece_new(rcopy, 4096, one_span(4096), 1);
    CHECK(hard->packed == NULL);
    check_reads(hard, rnd, 4096);
    pp_piece_unref(hard);

    /* empty */
    pp_piece *empty = pp_piece_new(NULL, 0, NULL, 0);
    char *e = pp_piece_strdup(empty);
    CHECK(e != NULL && e[0] == '\0');
    free(e);
    pp_piece_unref(empty);

    free(want);
    free(other);
    free(rnd);
    return CHECK_RESULT();
}
