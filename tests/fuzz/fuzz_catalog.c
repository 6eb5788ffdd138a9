/*
 * fuzz_catalog: the YAML query catalog loader (catalog.h).
 *
 * The input is one catalog file. A failed load must leave the catalog
 * empty and give a one-line "fuzz.yaml:line:column: message". A successful
 * one must hold what queries/README.md promises: unique query names, valid
 * names, positive durations, non-overlapping version ranges, families
 * with one type and a pre-rendered header, and the rules for static and
 * dynamic queries. Loading the same text a second time must fail when it
 * defined a query (the names are taken) and leave the catalog as it was.
 */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "catalog.h"
#include "fuzz.h"

#define NAME "fuzz.yaml"

static void check_error(const char *err)
{
    fuzz_check_positioned(err, NAME);
}

static bool reserved(const char *name)
{
    return fuzz_reserved_name(name);
}

static void check_family(const pp_catalog *c, size_t i)
{
    const pp_catalog_family *f = &c->families[i];
    FUZZ_CHECK(pp_render_valid_metric_name(f->name));
    FUZZ_CHECK(!reserved(f->name));
    FUZZ_CHECK(f->help != NULL);
    FUZZ_CHECK(f->type == PP_METRIC_GAUGE || f->type == PP_METRIC_COUNTER);
    FUZZ_CHECK(pp_catalog_find_family(c, f->name) == i);
    FUZZ_CHECK(f->header != NULL && strlen(f->header) == f->header_len);

    pp_buf b = PP_BUF_INIT;
    pp_render_header(&b, f->name, f->help, f->type);
    FUZZ_CHECK(b.len == f->header_len && memcmp(b.data, f->header, b.len) == 0);
    pp_buf_deinit(&b);
    FUZZ_CHECK(strncmp(f->header, "# HELP ", 7) == 0);
    FUZZ_CHECK(f->header[f->header_len - 1] == '\n');
    /* exactly two lines: HELP text with its line feeds escaped, then TYPE */
    const char *nl = strchr(f->header, '\n');
    FUZZ_CHECK(nl != NULL && strncmp(nl + 1, "# TYPE ", 7) == 0);
    FUZZ_CHECK(strchr(nl + 1, '\n') == f->header + f->header_len - 1);
}

static void check_query(const pp_catalog *c, size_t qi)
{
    const pp_catalog_query *q = &c->queries[qi];
    FUZZ_CHECK(q->name != NULL && q->name[0] != '\0');
    for (size_t k = 0; k < qi; k++)
        FUZZ_CHECK(strcmp(c->queries[k].name, q->name) != 0);
    FUZZ_CHECK(q->file != NULL && strcmp(q->file, NAME) == 0);
    FUZZ_CHECK(q->line >= 1 && q->column >= 1);
    FUZZ_CHECK(q->namespace != NULL);
    FUZZ_CHECK(isfinite(q->interval) && q->interval > 0);
    FUZZ_CHECK(isfinite(q->timeout) && q->timeout > 0);
    FUZZ_CHECK(q->runs_on == PP_RUNS_ON_ANY || q->runs_on == PP_RUNS_ON_PRIMARY ||
               q->runs_on == PP_RUNS_ON_STANDBY);

    FUZZ_CHECK(q->nvariants >= 1 && q->variants != NULL);
    for (size_t i = 0; i < q->nvariants; i++) {
        const pp_catalog_variant *v = &q->variants[i];
        FUZZ_CHECK(v->sql != NULL && v->sql[strspn(v->sql, " \t\r\n")] != '\0');
        FUZZ_CHECK(v->min_version >= 0 && v->max_version >= 0);
        FUZZ_CHECK(v->min_version == 0 || v->max_version == 0 || v->min_version < v->max_version);
        /* the variant picked at its own bounds is itself: ranges do not overlap */
        FUZZ_CHECK(pp_catalog_pick(q, v->min_version) == v || v->min_version == 0);
        if (v->max_version > 0)
            FUZZ_CHECK(pp_catalog_pick(q, v->max_version - 1) == v);
    }
    const int probes[] = {0, 1, 90600, 100000, 140000, 170000, 2147483647};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        const pp_catalog_variant *v = pp_catalog_pick(q, probes[i]);
        if (v != NULL)
            FUZZ_CHECK((v->min_version == 0 || probes[i] >= v->min_version) &&
                       (v->max_version == 0 || probes[i] < v->max_version));
    }

    FUZZ_CHECK(q->ncolumns >= 1 && q->columns != NULL);
    size_t nname = 0, nvalue = 0, nhelp = 0;
    for (size_t i = 0; i < q->ncolumns; i++) {
        const pp_catalog_column *col = &q->columns[i];
        FUZZ_CHECK(col->name != NULL);
        for (size_t k = 0; k < i; k++)
            FUZZ_CHECK(strcmp(q->columns[k].name, col->name) != 0);
        switch (col->role) {
        case PP_COL_LABEL:
            FUZZ_CHECK(pp_render_valid_label_name(col->label));
            for (size_t k = 0; k < i; k++)
                FUZZ_CHECK(q->columns[k].role != PP_COL_LABEL ||
                           strcmp(q->columns[k].label, col->label) != 0);
            break;
        case PP_COL_GAUGE:
        case PP_COL_COUNTER:
            nvalue++;
            FUZZ_CHECK(isfinite(col->scale) && col->scale != 0);
            if (q->dynamic)
                break;
            FUZZ_CHECK(col->help != NULL && col->metric != NULL);
            FUZZ_CHECK(col->family < c->nfamilies);
            const pp_catalog_family *f = &c->families[col->family];
            FUZZ_CHECK(strcmp(f->name, col->metric) == 0 && strcmp(f->help, col->help) == 0);
            FUZZ_CHECK(f->type ==
                       (col->role == PP_COL_GAUGE ? PP_METRIC_GAUGE : PP_METRIC_COUNTER));
            break;
        case PP_COL_NAME:
            nname++;
            break;
        case PP_COL_HELP:
            nhelp++;
            break;
        case PP_COL_DISCARD:
            break;
        default:
            FUZZ_CHECK(!"unknown column role");
        }
    }
    FUZZ_CHECK(q->dynamic == (nname > 0));
    if (q->dynamic) {
        FUZZ_CHECK(nname == 1 && nvalue == 1 && nhelp <= 1);
        FUZZ_CHECK(pp_render_valid_metric_name(q->namespace));
        /* no value of the name column makes a reserved name */
        const char *rows[] = {"up", "exporter_x", "x"};
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
            pp_buf b = PP_BUF_INIT;
            pp_buf_printf(&b, "%s_%s", q->namespace, rows[i]);
            FUZZ_CHECK(!reserved(b.data));
            pp_buf_deinit(&b);
        }
    } else {
        FUZZ_CHECK(nvalue >= 1 && nhelp == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pp_catalog *c = pp_catalog_new();
    char err[512];

    err[0] = '\0';
    if (pp_catalog_load_buffer(c, NAME, (const char *)data, size, err, sizeof err) != 0) {
        check_error(err);
        FUZZ_CHECK(c->nqueries == 0 && c->nfamilies == 0);
        pp_catalog_free(c);
        return 0;
    }
    for (size_t i = 0; i < c->nfamilies; i++)
        check_family(c, i);
    for (size_t i = 0; i < c->nqueries; i++)
        check_query(c, i);

    /* the second time every query name is taken */
    size_t nq = c->nqueries, nf = c->nfamilies;
    const pp_catalog_query *queries = c->queries;
    err[0] = '\0';
    int rc = pp_catalog_load_buffer(c, NAME, (const char *)data, size, err, sizeof err);
    if (nq > 0) {
        FUZZ_CHECK(rc != 0);
        check_error(err);
        if (strlen(c->queries[0].name) < 256) /* else the message is cut short */
            FUZZ_CHECK(strstr(err, "is already defined at " NAME ":") != NULL);
        FUZZ_CHECK(c->nqueries == nq && c->nfamilies == nf && c->queries == queries);
    } else {
        FUZZ_CHECK(rc == 0 && c->nqueries == 0 && c->nfamilies == 0);
    }

    pp_catalog_free(c);
    return 0;
}
