/*
 * rows: result rows to exposition text (see rows.h).
 *
 * Static queries render each metric column into a buffer of its own while
 * rows arrive, then concatenate the buffers (one span per column). Dynamic
 * queries render straight into the output, one family per row.
 */
#include "rows.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"

#define SAMPLES_DEFAULT_CAP 500000 /* when the caller gives none */
#define SCRATCH_KEEP 4096          /* column buffers bigger than this are freed after a run */

/* Text and spans as they grow. */
typedef struct pp_rendered {
    pp_buf text;
    pp_span *spans;
    size_t nspans, capspans;
} pp_rendered;

struct pp_rows {
    const pp_catalog_query *q;
    pp_families *families;
    const char *label;
    size_t cap, count;
    uint64_t dropped;
    bool cols_known;
    int *col; /* result column of each catalog column, -1 if absent */
    size_t col_cap;
    int namecol, helpcol;
    size_t nvalues; /* gauge and counter columns: samples per row */
    pp_buf *colbuf; /* static: one buffer per catalog column */
    size_t ncolbuf;
    pp_rendered dyn; /* dynamic: the output as it grows */
    pp_buf labels;   /* one row's label block */
    pp_buf name;     /* one row's metric name (dynamic) */
};

pp_rows *pp_rows_new(void)
{
    return pp_calloc(1, sizeof(pp_rows));
}

static void rendered_deinit(pp_rendered *o)
{
    pp_buf_deinit(&o->text);
    free(o->spans);
    memset(o, 0, sizeof(*o));
}

void pp_rows_free(pp_rows *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->ncolbuf; i++)
        pp_buf_deinit(&r->colbuf[i]);
    free(r->colbuf);
    free(r->col);
    rendered_deinit(&r->dyn);
    pp_buf_deinit(&r->labels);
    pp_buf_deinit(&r->name);
    free(r);
}

static void add_span(pp_rendered *o, uint32_t family, size_t off)
{
    size_t len = o->text.len - off;
    if (len == 0)
        return;
    if (o->nspans > 0) {
        pp_span *last = &o->spans[o->nspans - 1];
        if (last->family == family && last->off + last->len == off) {
            last->len += (uint32_t)len;
            return;
        }
    }
    if (o->nspans == o->capspans) {
        o->capspans = o->capspans ? o->capspans * 2 : 8;
        o->spans = pp_realloc(o->spans, o->capspans * sizeof(pp_span));
    }
    o->spans[o->nspans++] = (pp_span){family, (uint32_t)len, off};
}

void pp_rows_begin(pp_rows *r, const pp_catalog_query *q, pp_families *families, const char *label,
                   size_t cap)
{
    r->q = q;
    r->families = families;
    r->label = label;
    r->cap = cap ? cap : SAMPLES_DEFAULT_CAP;
    r->count = 0;
    r->dropped = 0;
    r->cols_known = false;
    if (q->ncolumns > r->col_cap) {
        r->col_cap = q->ncolumns;
        r->col = pp_realloc(r->col, r->col_cap * sizeof(int));
    }
    if (q->ncolumns > r->ncolbuf) {
        r->colbuf = pp_realloc(r->colbuf, q->ncolumns * sizeof(pp_buf));
        for (size_t i = r->ncolbuf; i < q->ncolumns; i++)
            pp_buf_init(&r->colbuf[i]);
        r->ncolbuf = q->ncolumns;
    }
    for (size_t i = 0; i < q->ncolumns; i++)
        pp_buf_reset(&r->colbuf[i]);
    pp_buf_reset(&r->dyn.text);
    r->dyn.nspans = 0;
}

static int find_column(const PGresult *res, const char *name)
{
    int n = PQnfields(res);
    for (int i = 0; i < n; i++)
        if (strcmp(PQfname(res, i), name) == 0)
            return i;
    return -1;
}

/* The columns are the same in every result of one run: look them up once. */
static int map_columns(pp_rows *r, const PGresult *res, char *err, size_t errlen)
{
    const pp_catalog_query *q = r->q;
    r->namecol = r->helpcol = -1;
    r->nvalues = 0;
    for (size_t j = 0; j < q->ncolumns; j++) {
        if (pp_catalog_is_value_role(q->columns[j].role))
            r->nvalues++;
        r->col[j] = find_column(res, q->columns[j].name);
        if (r->col[j] < 0 && q->columns[j].role != PP_COL_DISCARD) {
            snprintf(err, errlen, "column \"%s\" is missing from the result", q->columns[j].name);
            return -1;
        }
        if (q->columns[j].role == PP_COL_NAME)
            r->namecol = r->col[j];
        if (q->columns[j].role == PP_COL_HELP)
            r->helpcol = r->col[j];
    }
    r->cols_known = true;
    return 0;
}

/* The label block of row row into r->labels: "{label,k=\"v\",...}" or "". */
static void row_labels(pp_rows *r, const PGresult *res, int row)
{
    const pp_catalog_query *q = r->q;
    pp_buf *b = &r->labels;
    pp_buf_reset(b);
    bool first = true;
    if (r->label[0] != '\0') {
        pp_buf_putc(b, '{');
        pp_buf_puts(b, r->label);
        first = false;
    }
    for (size_t j = 0; j < q->ncolumns; j++) {
        const pp_catalog_column *cc = &q->columns[j];
        if (cc->role != PP_COL_LABEL)
            continue;
        pp_buf_putc(b, first ? '{' : ',');
        first = false;
        pp_buf_puts(b, cc->label ? cc->label : cc->name);
        pp_buf_append(b, "=\"", 2);
        if (!PQgetisnull(res, row, r->col[j]))
            pp_render_label_value(b, PQgetvalue(res, row, r->col[j]),
                                  (size_t)PQgetlength(res, row, r->col[j]));
        pp_buf_putc(b, '"');
    }
    if (!first)
        pp_buf_putc(b, '}');
}

/* Appends one sample to out; false when the value is NULL or not a number. */
static bool sample(pp_rows *r, pp_buf *out, const char *name, size_t name_len, const PGresult *res,
                   int row, int c, double scale)
{
    if (PQgetisnull(res, row, c))
        return false;
    double v;
    if (pp_render_parse_value(PQgetvalue(res, row, c), &v) != 0)
        return false;
    pp_buf_append(out, name, name_len);
    pp_buf_append(out, r->labels.data ? r->labels.data : "", r->labels.len);
    pp_buf_putc(out, ' ');
    pp_render_double(out, v * scale);
    pp_buf_putc(out, '\n');
    return true;
}

static void static_row(pp_rows *r, const PGresult *res, int row)
{
    const pp_catalog_query *q = r->q;
    for (size_t j = 0; j < q->ncolumns; j++) {
        const pp_catalog_column *cc = &q->columns[j];
        if (!pp_catalog_is_value_role(cc->role))
            continue;
        if (r->count >= r->cap) {
            r->dropped++;
            continue;
        }
        if (sample(r, &r->colbuf[j], cc->metric, strlen(cc->metric), res, row, r->col[j],
                   cc->scale))
            r->count++;
    }
}

static void dynamic_row(pp_rows *r, const PGresult *res, int row)
{
    const pp_catalog_query *q = r->q;
    if (PQgetisnull(res, row, r->namecol))
        return;
    for (size_t j = 0; j < q->ncolumns; j++) {
        const pp_catalog_column *cc = &q->columns[j];
        if (cc->role != PP_COL_GAUGE && cc->role != PP_COL_COUNTER)
            continue;
        if (r->count >= r->cap) {
            r->dropped++;
            continue;
        }
        pp_metric_type type = cc->role == PP_COL_GAUGE ? PP_METRIC_GAUGE : PP_METRIC_COUNTER;
        pp_buf_reset(&r->name);
        pp_buf_puts(&r->name, q->namespace);
        pp_buf_putc(&r->name, '_');
        pp_render_sanitize_name(&r->name, PQgetvalue(res, row, r->namecol));
        const char *help = r->helpcol >= 0 && !PQgetisnull(res, row, r->helpcol)
                               ? PQgetvalue(res, row, r->helpcol)
                               : "";
        uint32_t fam = pp_families_intern(r->families, r->name.data, r->name.len, help, type);
        if (fam == PP_FAMILY_NONE) {
            r->dropped++;
            continue;
        }
        size_t off = r->dyn.text.len;
        if (sample(r, &r->dyn.text, r->name.data, r->name.len, res, row, r->col[j], cc->scale))
            r->count++;
        add_span(&r->dyn, fam, off);
    }
}

int pp_rows_add(pp_rows *r, const PGresult *res, char *err, size_t errlen)
{
    if (!r->cols_known && map_columns(r, res, err, errlen) != 0)
        return -1;
    int nrows = PQntuples(res);
    for (int row = 0; row < nrows; row++) {
        if (r->count >= r->cap) {
            /* nothing more is kept: count what is dropped, render nothing */
            if (!r->q->dynamic || !PQgetisnull(res, row, r->namecol))
                r->dropped += r->nvalues;
            continue;
        }
        row_labels(r, res, row);
        if (r->q->dynamic)
            dynamic_row(r, res, row);
        else
            static_row(r, res, row);
    }
    return 0;
}

uint64_t pp_rows_finish(pp_rows *r, pp_piece **out)
{
    pp_rendered o = {PP_BUF_INIT, NULL, 0, 0};
    if (r->q->dynamic) {
        o = r->dyn; /* hand the grown buffers over */
        memset(&r->dyn, 0, sizeof(r->dyn));
    } else {
        size_t total = 0;
        for (size_t j = 0; j < r->q->ncolumns; j++)
            total += r->colbuf[j].len;
        pp_buf_reserve(&o.text, total);
        for (size_t j = 0; j < r->q->ncolumns; j++) {
            const pp_catalog_column *cc = &r->q->columns[j];
            if (!pp_catalog_is_value_role(cc->role))
                continue;
            if (r->colbuf[j].len == 0)
                continue;
            size_t off = o.text.len;
            pp_buf_append(&o.text, r->colbuf[j].data, r->colbuf[j].len);
            add_span(&o, (uint32_t)cc->family, off);
        }
    }
    /* A piece lives for an interval and there is one per query and target
     * (30,000 at 1,000 targets): it keeps exactly its bytes, and the
     * scratch space that grew for a big run goes back. */
    size_t len;
    char *text = pp_buf_steal(&o.text, &len);
    if (len > 0)
        text = pp_realloc(text, len + 1);
    if (o.nspans > 0 && o.nspans < o.capspans)
        o.spans = pp_realloc(o.spans, o.nspans * sizeof(pp_span));
    *out = pp_piece_new(text, len, o.spans, o.nspans);
    for (size_t j = 0; j < r->ncolbuf; j++)
        if (r->colbuf[j].cap > SCRATCH_KEEP)
            pp_buf_deinit(&r->colbuf[j]);
    uint64_t dropped = r->dropped;
    r->q = NULL;
    return dropped;
}

size_t pp_rows_memory(const pp_rows *r)
{
    size_t n = sizeof(*r) + r->col_cap * sizeof(int) + r->labels.cap + r->name.cap +
               r->dyn.text.cap + r->dyn.capspans * sizeof(pp_span);
    for (size_t i = 0; i < r->ncolbuf; i++)
        n += sizeof(pp_buf) + r->colbuf[i].cap;
    return n;
}
