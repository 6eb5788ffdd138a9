/*
 * fuzz_legacy: postgres_exporter's queries.yaml translated into catalog
 * queries (pp_catalog_load_legacy_buffer, catalog.h).
 *
 * The input is one queries.yaml. A failed load must leave the catalog
 * empty and give a one-line "fuzz.yaml:line:column: message". A successful
 * one must hold static queries named "legacy:<namespace>" of scope
 * database, with one SQL variant, an interval of whole seconds, a timeout
 * no longer than it, valid label names, and value columns whose metric is
 * "<namespace>_<column>" (a DURATION's with "_milliseconds") in a family
 * of their type with that HELP text, none of them reserved for pgpulse's
 * own metrics, and no family named as a histogram's samples. Loading
 * the same text a second time must fail when it defined a query and
 * change nothing.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
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

static void check_query(const pp_catalog *c, size_t qi)
{
    const pp_catalog_query *q = &c->queries[qi];
    for (size_t k = 0; k < qi; k++)
        FUZZ_CHECK(strcmp(c->queries[k].name, q->name) != 0);
    FUZZ_CHECK(strncmp(q->name, "legacy:", 7) == 0 && strcmp(q->name + 7, q->namespace) == 0);
    FUZZ_CHECK(pp_render_valid_metric_name(q->namespace));
    FUZZ_CHECK(q->file != NULL && strcmp(q->file, NAME) == 0);
    FUZZ_CHECK(q->line >= 1 && q->column >= 1);
    FUZZ_CHECK(q->scope == PP_SCOPE_DATABASE && !q->dynamic && q->max_series == 0);
    FUZZ_CHECK(q->runs_on == PP_RUNS_ON_ANY || q->runs_on == PP_RUNS_ON_PRIMARY);
    FUZZ_CHECK(isfinite(q->interval) && q->interval >= 1 && q->interval == floor(q->interval));
    FUZZ_CHECK(q->timeout > 0 && q->timeout <= q->interval);
    FUZZ_CHECK(q->nvariants == 1 && q->variants[0].min_version == 0 &&
               q->variants[0].max_version == 0);
    FUZZ_CHECK(q->variants[0].sql[strspn(q->variants[0].sql, " \t\r\n")] != '\0');

    size_t nvalue = 0;
    for (size_t i = 0; i < q->ncolumns; i++) {
        const pp_catalog_column *col = &q->columns[i];
        for (size_t k = 0; k < i; k++)
            FUZZ_CHECK(strcmp(q->columns[k].name, col->name) != 0);
        switch (col->role) {
        case PP_COL_LABEL:
            FUZZ_CHECK(pp_render_valid_label_name(col->label));
            FUZZ_CHECK(strcmp(col->label, col->name) == 0);
            break;
        case PP_COL_GAUGE:
        case PP_COL_COUNTER:
        case PP_COL_HISTOGRAM: {
            nvalue++;
            FUZZ_CHECK(col->scale == 1 && col->help != NULL && col->metric != NULL);
            bool duration = col->conv == PP_CONV_DURATION;
            FUZZ_CHECK(duration ? col->role == PP_COL_GAUGE
                                : col->conv == PP_CONV_LEGACY || col->role == PP_COL_HISTOGRAM);
            size_t nl = strlen(q->namespace), cl = strlen(col->name);
            FUZZ_CHECK(strncmp(col->metric, q->namespace, nl) == 0 && col->metric[nl] == '_' &&
                       strncmp(col->metric + nl + 1, col->name, cl) == 0 &&
                       strcmp(col->metric + nl + 1 + cl, duration ? "_milliseconds" : "") == 0);
            FUZZ_CHECK(!reserved(col->metric));
            FUZZ_CHECK(col->family < c->nfamilies);
            const pp_catalog_family *f = &c->families[col->family];
            FUZZ_CHECK(strcmp(f->name, col->metric) == 0 && strcmp(f->help, col->help) == 0);
            FUZZ_CHECK(f->type == (col->role == PP_COL_GAUGE     ? PP_METRIC_GAUGE
                                   : col->role == PP_COL_COUNTER ? PP_METRIC_COUNTER
                                                                 : PP_METRIC_HISTOGRAM));
            FUZZ_CHECK(pp_catalog_find_family(c, f->name) == col->family);
            for (size_t k = 0; col->role == PP_COL_HISTOGRAM && k < 3; k++) {
                static const char *const suffix[] = {"_bucket", "_sum", "_count"};
                char sample[512];
                snprintf(sample, sizeof sample, "%s%s", col->metric, suffix[k]);
                FUZZ_CHECK(pp_catalog_find_family(c, sample) == (size_t)-1);
            }
            break;
        }
        case PP_COL_DISCARD:
            break;
        default:
            FUZZ_CHECK(!"a role no usage translates to");
        }
    }
    FUZZ_CHECK(nvalue >= 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pp_catalog *c = pp_catalog_new();
    char err[512];

    err[0] = '\0';
    if (pp_catalog_load_legacy_buffer(c, NAME, (const char *)data, size, err, sizeof err) != 0) {
        check_error(err);
        FUZZ_CHECK(c->nqueries == 0 && c->nfamilies == 0);
        pp_catalog_free(c);
        return 0;
    }
    for (size_t i = 0; i < c->nqueries; i++)
        check_query(c, i);

    size_t nq = c->nqueries, nf = c->nfamilies;
    const pp_catalog_query *queries = c->queries;
    err[0] = '\0';
    int rc = pp_catalog_load_legacy_buffer(c, NAME, (const char *)data, size, err, sizeof err);
    if (nq > 0) {
        FUZZ_CHECK(rc != 0);
        check_error(err);
        FUZZ_CHECK(c->nqueries == nq && c->nfamilies == nf && c->queries == queries);
    } else {
        FUZZ_CHECK(rc == 0 && c->nqueries == 0 && c->nfamilies == 0);
    }
    pp_catalog_free(c);
    return 0;
}
