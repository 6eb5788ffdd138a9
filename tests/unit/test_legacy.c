/*
 * test_legacy: postgres_exporter's queries.yaml (--extend.query-path)
 * translated into catalog queries.
 *
 * Each usage must map to the role and metric postgres_exporter gives it,
 * the entry keys to interval, runs_on and SQL, the translated queries must
 * sit next to the built-in ones, and every refused input must name the
 * exact "file:line:column:" and leave the catalog as it was. Run from the
 * source directory (ctest does).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <math.h>

#include "catalog.h"
#include "check.h"
#include "family.h"
#include "rows.h"

static char err[1024];

static const pp_catalog_query *query(const pp_catalog *c, const char *name)
{
    for (size_t i = 0; i < c->nqueries; i++)
        if (strcmp(c->queries[i].name, name) == 0)
            return &c->queries[i];
    return NULL;
}

static const pp_catalog_column *column(const pp_catalog_query *q, const char *name)
{
    for (size_t i = 0; q != NULL && i < q->ncolumns; i++)
        if (strcmp(q->columns[i].name, name) == 0)
            return &q->columns[i];
    return NULL;
}

static int load(pp_catalog *c, const char *yaml)
{
    err[0] = '\0';
    return pp_catalog_load_legacy_buffer(c, "q.yaml", yaml, strlen(yaml), err, sizeof err);
}

/* Loading yaml fails with exactly want, on an empty catalog and on one
 * holding the built-in queries, and leaves each as it was. */
static void expect_error(const char *yaml, const char *want, int line)
{
    pp_catalog *c = pp_catalog_new();
    for (int round = 0; round < 2; round++) {
        size_t nq = c->nqueries, nf = c->nfamilies;
        int rc = load(c, yaml);
        if (rc != -1 || strcmp(err, want) != 0) {
            fprintf(stderr, "%s:%d: load returned %d\n  got:  \"%s\"\n  want: \"%s\"\n", __FILE__,
                    line, rc, err, want);
            check_failures++;
        }
        CHECK(c->nqueries == nq && c->nfamilies == nf);
        if (round == 0 && pp_catalog_load_builtin(c, err, sizeof err) != 0)
            CHECK(!"the built-in catalog loads");
    }
    pp_catalog_free(c);
}
#define EXPECT_ERROR(yaml, want) expect_error(yaml, want, __LINE__)

/* Upstream's example, every supported usage and key. */
static const char example[] = "pg_locks_mode:\n"
                              "  query: SELECT datname, mode AS tag_lockmode, count(*) AS count,\n"
                              "    0 AS junk, 1 AS mapped FROM pg_locks GROUP BY 1, 2;\n"
                              "  master: true\n"
                              "  cache_seconds: 30\n"
                              "  runonserver: \">=9.6.0\"\n"
                              "  metrics:\n"
                              "    - datname:\n"
                              "        usage: \"LABEL\"\n"
                              "        description: \"Name of the database\"\n"
                              "    - tag_lockmode:\n"
                              "        usage: \"LABEL\"\n"
                              "        description: \"Lock mode\"\n"
                              "    - count:\n"
                              "        usage: \"GAUGE\"\n"
                              "        description: \"Number of locks\"\n"
                              "    - junk:\n"
                              "        usage: \"DISCARD\"\n"
                              "        description: \"not exported\"\n"
                              "    - mapped:\n"
                              "        usage: \"MAPPEDMETRIC\"\n"
                              "        description: \"never has a value upstream\"\n"
                              "        metric_mapping: {a: 1}\n"
                              "pg_xact:\n"
                              "  metrics:\n"
                              "    - commits: {usage: COUNTER, description: Commits}\n"
                              "    - rollbacks: {usage: COUNTER}\n";

static void test_translation(void)
{
    pp_catalog *c = pp_catalog_new();
    CHECK(load(c, example) == 0);
    CHECK_STR(err, "");
    CHECK(c->nqueries == 2);

    const pp_catalog_query *q = query(c, "legacy:pg_locks_mode");
    CHECK(q != NULL);
    if (q != NULL) {
        CHECK_STR(q->namespace, "pg_locks_mode");
        CHECK_STR(q->file, "q.yaml");
        CHECK(q->line == 1 && q->column == 1);
        CHECK(q->nvariants == 1);
        CHECK_STR(q->variants[0].sql, "SELECT datname, mode AS tag_lockmode, count(*) AS count, 0 "
                                      "AS junk, 1 AS mapped FROM pg_locks GROUP BY 1, 2");
        CHECK(q->interval == 30);
        CHECK(q->timeout == 10);
        CHECK(q->runs_on == PP_RUNS_ON_PRIMARY);
        CHECK(q->scope == PP_SCOPE_DATABASE);
        CHECK(q->datname_label);
        CHECK(q->server_label); /* server="host:port" on every series, as upstream */
        CHECK(!q->dynamic);
        CHECK(q->ncolumns == 5);
        const pp_catalog_column *col = column(q, "datname");
        CHECK(col != NULL && col->role == PP_COL_LABEL);
        CHECK_STR(col ? col->label : NULL, "datname");
        col = column(q, "tag_lockmode");
        CHECK(col != NULL && col->role == PP_COL_LABEL);
        CHECK_STR(col ? col->label : NULL, "tag_lockmode");
        col = column(q, "count");
        CHECK(col != NULL && col->role == PP_COL_GAUGE);
        CHECK_STR(col ? col->metric : NULL, "pg_locks_mode_count");
        CHECK_STR(col ? col->help : NULL, "Number of locks");
        CHECK(col != NULL && col->scale == 1);
        col = column(q, "junk");
        CHECK(col != NULL && col->role == PP_COL_DISCARD);
        col = column(q, "mapped");
        CHECK(col != NULL && col->role == PP_COL_DISCARD);
    }

    q = query(c, "legacy:pg_xact");
    CHECK(q != NULL);
    if (q != NULL) {
        CHECK_STR(q->variants[0].sql, "SELECT * FROM pg_xact");
        CHECK(q->interval == 15);
        CHECK(q->runs_on == PP_RUNS_ON_ANY);
        CHECK(!q->datname_label);
        const pp_catalog_column *col = column(q, "commits");
        CHECK(col != NULL && col->role == PP_COL_COUNTER);
        CHECK_STR(col ? col->metric : NULL, "pg_xact_commits");
        col = column(q, "rollbacks");
        CHECK_STR(col ? col->help : NULL, ""); /* no description: empty HELP, as upstream */
    }

    size_t fi = pp_catalog_find_family(c, "pg_locks_mode_count");
    CHECK(fi != (size_t)-1);
    if (fi != (size_t)-1) {
        CHECK(c->families[fi].type == PP_METRIC_GAUGE);
        CHECK_STR(c->families[fi].header, "# HELP pg_locks_mode_count Number of locks\n"
                                          "# TYPE pg_locks_mode_count gauge\n");
    }
    fi = pp_catalog_find_family(c, "pg_xact_commits");
    CHECK(fi != (size_t)-1 && c->families[fi].type == PP_METRIC_COUNTER);
    CHECK(pp_catalog_find_family(c, "pg_locks_mode_junk") == (size_t)-1);
    CHECK(pp_catalog_find_family(c, "pg_locks_mode_mapped") == (size_t)-1);

    /* the same file again: the names are taken */
    CHECK(load(c, example) == -1);
    CHECK_STR(err, "q.yaml:1:1: query \"legacy:pg_locks_mode\" is already defined at q.yaml:1:1");
    CHECK(c->nqueries == 2);
    pp_catalog_free(c);
}

/* Debian's example (0.11.1's queries.yaml), cut to its histogram, and a
 * DURATION with --metric-prefix. */
static const char process_idle[] = "pg_process_idle:\n"
                                   "  query: SELECT 1\n"
                                   "  metrics:\n"
                                   "    - application_name:\n"
                                   "        usage: \"LABEL\"\n"
                                   "        description: \"Application Name\"\n"
                                   "    - seconds:\n"
                                   "        usage: \"HISTOGRAM\"\n"
                                   "        description: \"Idle time of server processes\"\n"
                                   "pg_vacuum:\n"
                                   "  metrics:\n"
                                   "    - age: {usage: DURATION, description: Oldest vacuum}\n";

static void test_duration_and_histogram(void)
{
    pp_catalog *c = pp_catalog_new();
    c->legacy_metric_prefix = "acme";
    CHECK(load(c, process_idle) == 0);
    CHECK_STR(err, "");
    const pp_catalog_column *col = column(query(c, "legacy:pg_process_idle"), "seconds");
    CHECK(col != NULL && col->role == PP_COL_HISTOGRAM);
    CHECK_STR(col ? col->metric : NULL, "acme_process_idle_seconds");
    CHECK_STR(col ? col->help : NULL, "Idle time of server processes");
    size_t fi = pp_catalog_find_family(c, "acme_process_idle_seconds");
    CHECK(fi != (size_t)-1);
    if (fi != (size_t)-1)
        CHECK_STR(c->families[fi].header,
                  "# HELP acme_process_idle_seconds Idle time of server processes\n"
                  "# TYPE acme_process_idle_seconds histogram\n");
    /* the companion columns are read by rows, not columns of their own */
    CHECK(column(query(c, "legacy:pg_process_idle"), "seconds_bucket") == NULL);

    col = column(query(c, "legacy:pg_vacuum"), "age");
    CHECK(col != NULL && col->role == PP_COL_GAUGE && col->conv == PP_CONV_DURATION);
    CHECK_STR(col ? col->metric : NULL, "acme_vacuum_age_milliseconds");
    fi = pp_catalog_find_family(c, "acme_vacuum_age_milliseconds");
    CHECK(fi != (size_t)-1 && c->families[fi].type == PP_METRIC_GAUGE);
    CHECK(pp_catalog_find_family(c, "acme_vacuum_age") == (size_t)-1);
    pp_catalog_free(c);

    /* GAUGE and COUNTER read timestamps as upstream; the native format does not */
    c = pp_catalog_new();
    CHECK(load(c, example) == 0);
    col = column(query(c, "legacy:pg_locks_mode"), "count");
    CHECK(col != NULL && col->conv == PP_CONV_LEGACY);
    pp_catalog_free(c);
}

static void duration_is(const char *text, double want, int line)
{
    double got = -12345;
    if (pp_rows_parse_duration(text, &got) != 0 || got != want) {
        fprintf(stderr, "%s:%d: duration \"%s\": got %g, want %g\n", __FILE__, line, text, got,
                want);
        check_failures++;
    }
}

static void duration_bad(const char *text, int line)
{
    double got;
    if (pp_rows_parse_duration(text, &got) != -1) {
        fprintf(stderr, "%s:%d: duration \"%s\" parsed as %g\n", __FILE__, line, text, got);
        check_failures++;
    }
}

/* Go's time.ParseDuration, then float64(d / time.Millisecond). */
static void test_parse_duration(void)
{
    duration_is("1h2m3s", 3723000, __LINE__);
    duration_is("1h2m3.5s", 3723500, __LINE__);
    duration_is("1.5h", 5400000, __LINE__);
    duration_is("250ms", 250, __LINE__);
    duration_is("-5ms", -5, __LINE__);
    duration_is("+5s", 5000, __LINE__);
    duration_is("0", 0, __LINE__);
    duration_is("-0", 0, __LINE__);
    duration_is("0s", 0, __LINE__);
    duration_is(".5s", 500, __LINE__);
    duration_is("5.s", 5000, __LINE__);
    duration_is("1500us", 1, __LINE__); /* whole milliseconds, toward zero */
    duration_is("1999999ns", 1, __LINE__);
    duration_is("-1999999ns", -1, __LINE__);
    duration_is("3\xc2\xb5s", 0, __LINE__);
    duration_is("1ms1000\xce\xbcs", 2, __LINE__);
    duration_is("2562047h", 9223369200000, __LINE__);
    duration_bad("5", __LINE__); /* a number without a unit is not a duration */
    duration_bad("1.5", __LINE__);
    duration_bad("", __LINE__);
    duration_bad("-", __LINE__);
    duration_bad(".s", __LINE__);
    duration_bad("1d", __LINE__);
    duration_bad("1 s", __LINE__);
    duration_bad("s", __LINE__);
    duration_bad("00:00:01", __LINE__); /* PostgreSQL's interval text */
    duration_bad("1 day", __LINE__);
    duration_bad("2562048h", __LINE__); /* past int64 nanoseconds */
    duration_bad("9223372036854775808ns", __LINE__);
    duration_is("-9223372036854775808ns", -9223372036854, __LINE__);
}

static void timestamp_is(const char *text, double want, int line)
{
    double got = -12345;
    int rc = pp_rows_parse_timestamp(text, &got);
    if (want != want ? rc != -1 : rc != 0 || got != want) {
        fprintf(stderr, "%s:%d: timestamp \"%s\": rc %d, got %.17g, want %g\n", __FILE__, line,
                text, rc, got, want);
        check_failures++;
    }
}

static void test_parse_timestamp(void)
{
    timestamp_is("1970-01-01 00:00:00+00", 0, __LINE__);
    timestamp_is("1970-01-01", 0, __LINE__);
    timestamp_is("2024-02-29 12:34:56.789+00", 1709210096, __LINE__);
    timestamp_is("2024-02-29 14:34:56.789+02", 1709210096, __LINE__);
    timestamp_is("2024-02-29 07:04:56-05:30", 1709210096, __LINE__);
    timestamp_is("2024-02-29 12:34:56", 1709210096, __LINE__); /* no zone: UTC */
    timestamp_is("1969-12-31 23:59:59.5+00", -1, __LINE__);    /* Unix() rounds down */
    timestamp_is("1900-01-01 00:00:00+00:09:21", -2208989361, __LINE__);
    timestamp_is("infinity", NAN, __LINE__);
    timestamp_is("2024-01-01 BC", NAN, __LINE__);
    timestamp_is("01/02/2024", NAN, __LINE__);
    timestamp_is("2024-13-01", NAN, __LINE__);
}

static void test_parse_array(void)
{
    double *v = NULL;
    size_t n = 99, cap = 0;
    CHECK(pp_rows_parse_array("{1,2,5}", &v, &n, &cap) == 0);
    CHECK(n == 3 && v[0] == 1 && v[1] == 2 && v[2] == 5);
    CHECK(pp_rows_parse_array("{}", &v, &n, &cap) == 0 && n == 0);
    CHECK(pp_rows_parse_array("{0.5,\"7\",Infinity,-3e2}", &v, &n, &cap) == 0);
    CHECK(n == 4 && v[0] == 0.5 && v[1] == 7 && v[2] == INFINITY && v[3] == -300);
    char big[4096] = "{";
    for (int i = 0; i < 500; i++)
        snprintf(big + strlen(big), sizeof big - strlen(big), "%s%d", i ? "," : "", i);
    strcat(big, "}");
    CHECK(pp_rows_parse_array(big, &v, &n, &cap) == 0 && n == 500 && v[499] == 499);
    CHECK(pp_rows_parse_array("{1,NULL}", &v, &n, &cap) == -1);
    CHECK(pp_rows_parse_array("{{1,2},{3,4}}", &v, &n, &cap) == -1);
    CHECK(pp_rows_parse_array("{1,x}", &v, &n, &cap) == -1);
    CHECK(pp_rows_parse_array("{1,2", &v, &n, &cap) == -1);
    CHECK(pp_rows_parse_array("{1,2}x", &v, &n, &cap) == -1);
    CHECK(pp_rows_parse_array("1,2", &v, &n, &cap) == -1);
    CHECK(pp_rows_parse_array("{\"1", &v, &n, &cap) == -1);
    free(v);
}

/* A result with text cells (NULL = SQL NULL) and a type per column. */
static PGresult *result(int ncols, const char *const *names, const Oid *types, int nrows,
                        const char *const *cells)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc att[8];
    memset(att, 0, sizeof(att));
    for (int c = 0; c < ncols; c++) {
        att[c].name = (char *)names[c];
        att[c].typid = types[c];
        att[c].typlen = -1;
        att[c].atttypmod = -1;
    }
    CHECK(PQsetResultAttrs(res, ncols, att) == 1);
    for (int r = 0; r < nrows; r++)
        for (int c = 0; c < ncols; c++) {
            const char *v = cells[r * ncols + c];
            CHECK(PQsetvalue(res, r, c, (char *)v, v ? (int)strlen(v) : -1) == 1);
        }
    return res;
}

/* What a run of query name renders from res. */
static char *render(const pp_catalog *c, const char *name, const PGresult *res, size_t cap,
                    uint64_t *dropped)
{
    pp_families *fam = pp_families_new(c, 100);
    pp_rows *r = pp_rows_new();
    pp_piece *p = NULL;
    char msg[256] = "";
    pp_rows_begin(r, query(c, name), fam, "server=\"h:1\"", cap);
    if (pp_rows_add(r, res, msg, sizeof msg) != 0) {
        pp_rows_free(r);
        pp_families_free(fam);
        return pp_strdup(msg);
    }
    *dropped = pp_rows_finish(r, NULL, &p);
    char *s = pp_piece_strdup(p);
    pp_piece_unref(p);
    pp_rows_free(r);
    pp_families_free(fam);
    return s;
}

/* The values as upstream gives them: timestamps, durations, histograms. */
static void test_rows(void)
{
    pp_catalog *c = pp_catalog_new();
    CHECK(load(c, "pg_h:\n"
                  "  metrics:\n"
                  "    - app: {usage: LABEL}\n"
                  "    - s: {usage: HISTOGRAM, description: h}\n"
                  "    - age: {usage: DURATION, description: d}\n"
                  "    - at: {usage: GAUGE, description: t}\n"
                  "    - n: {usage: COUNTER, description: n}\n") == 0);
    static const char *const names[] = {"app",     "s",   "s_bucket", "s_sum",
                                        "s_count", "age", "at",       "n"};
    static const Oid types[] = {25, 1007, 1016, 701, 20, 25, 1184, 25};
    static const char *const cells[] = {
        /* unsorted bounds, a repeated bound keeps its last count, more
         * counts than bounds */
        "a", "{5,1,2,1}", "{3,9,2,1,7}", "4.5", "3", "1m30s", "2024-02-29 12:34:56.5+00", "7",
        /* +Inf given: no second one; NULL sum NaN, NULL count 0; "-1" and
         * interval text give no duration, a NULL GAUGE NaN */
        "b", "{1,Infinity}", "{1,2}", NULL, NULL, "-1", NULL, "f",
        /* a bound that is not a number drops that row's histogram only */
        "c", "{1,x}", "{1,2}", "1", "2", "00:00:01", "1970-01-02", "t",
        /* NULL arrays are empty: only +Inf */
        "d", NULL, NULL, "0", "0", "2h", NULL, NULL};
    PGresult *res = result(8, names, types, 4, cells);
    uint64_t dropped = 99;
    char *got = render(c, "legacy:pg_h", res, 0, &dropped);
    CHECK_STR(got, "pg_h_s_bucket{server=\"h:1\",app=\"a\",le=\"1\"} 1\n"
                   "pg_h_s_bucket{server=\"h:1\",app=\"a\",le=\"2\"} 2\n"
                   "pg_h_s_bucket{server=\"h:1\",app=\"a\",le=\"5\"} 3\n"
                   "pg_h_s_bucket{server=\"h:1\",app=\"a\",le=\"+Inf\"} 3\n"
                   "pg_h_s_sum{server=\"h:1\",app=\"a\"} 4.5\n"
                   "pg_h_s_count{server=\"h:1\",app=\"a\"} 3\n"
                   "pg_h_s_bucket{server=\"h:1\",app=\"b\",le=\"1\"} 1\n"
                   "pg_h_s_bucket{server=\"h:1\",app=\"b\",le=\"+Inf\"} 2\n"
                   "pg_h_s_sum{server=\"h:1\",app=\"b\"} NaN\n"
                   "pg_h_s_count{server=\"h:1\",app=\"b\"} 0\n"
                   "pg_h_s_bucket{server=\"h:1\",app=\"d\",le=\"+Inf\"} 0\n"
                   "pg_h_s_sum{server=\"h:1\",app=\"d\"} 0\n"
                   "pg_h_s_count{server=\"h:1\",app=\"d\"} 0\n"
                   "pg_h_age_milliseconds{server=\"h:1\",app=\"a\"} 90000\n"
                   "pg_h_age_milliseconds{server=\"h:1\",app=\"d\"} 7200000\n"
                   "pg_h_at{server=\"h:1\",app=\"a\"} 1709210096\n"
                   "pg_h_at{server=\"h:1\",app=\"b\"} NaN\n"
                   "pg_h_at{server=\"h:1\",app=\"c\"} 86400\n"
                   "pg_h_at{server=\"h:1\",app=\"d\"} NaN\n"
                   "pg_h_n{server=\"h:1\",app=\"a\"} 7\n"
                   "pg_h_n{server=\"h:1\",app=\"b\"} 0\n"
                   "pg_h_n{server=\"h:1\",app=\"c\"} 1\n"
                   "pg_h_n{server=\"h:1\",app=\"d\"} NaN\n");
    CHECK(dropped == 1); /* c's histogram */
    free(got);

    /* the cap counts every line of a histogram */
    got = render(c, "legacy:pg_h", res, 5, &dropped);
    CHECK_CONTAINS(got, "pg_h_age_milliseconds{server=\"h:1\",app=\"a\"} 90000\n");
    CHECK(strstr(got, "pg_h_s_") == NULL);
    free(got);
    PQclear(res);

    /* a missing companion column fails the run, naming it */
    static const char *const short_names[] = {"app", "s", "s_bucket", "s_count", "age", "at", "n"};
    res = result(7, short_names, types, 0, cells);
    got = render(c, "legacy:pg_h", res, 0, &dropped);
    CHECK_STR(got, "column \"s_sum\" of histogram \"s\" is missing from the result");
    free(got);
    PQclear(res);
    pp_catalog_free(c);
}

static void test_with_builtin(void)
{
    pp_catalog *c = pp_catalog_new();
    CHECK(pp_catalog_load_builtin(c, err, sizeof err) == 0);
    size_t n = c->nqueries;
    /* a namespace that is also a built-in query's name is no conflict */
    CHECK(load(c, "pg_replication:\n"
                  "  query: SELECT 0 AS lag\n"
                  "  metrics:\n"
                  "    - lag: {usage: GAUGE, description: Replication lag behind master in "
                  "seconds}\n") == 0);
    CHECK_STR(err, "");
    CHECK(c->nqueries == n + 1);
    CHECK(query(c, "pg_replication") != NULL && query(c, "legacy:pg_replication") != NULL);
    /* a built-in metric with another HELP text is one family with two texts */
    CHECK(load(c, "pg_mine:\n"
                  "  query: SELECT 1 AS x\n"
                  "  metrics:\n"
                  "    - x: {usage: GAUGE, description: mine}\n"
                  "pg_locks:\n"
                  "  query: SELECT 1 AS count\n"
                  "  metrics:\n"
                  "    - count: {usage: COUNTER, description: Number of locks}\n") == -1);
    CHECK_STR(err, "q.yaml:8:22: metric \"pg_locks_count\" is a counter in query "
                   "\"legacy:pg_locks\" but a gauge in query \"pg_locks\"");
    CHECK(c->nqueries == n + 1);
    CHECK(query(c, "legacy:pg_mine") == NULL);
    pp_catalog_free(c);
}

static void test_empty(void)
{
    pp_catalog *c = pp_catalog_new();
    /* upstream's current queries.yaml: two comment lines */
    CHECK(load(c, "# Adding queries to this file is deprecated\n# Example queries have been "
                  "transformed into collectors.\n") == 0);
    CHECK(c->nqueries == 0);
    CHECK(load(c, "") == 0);
    CHECK(c->nqueries == 0);
    pp_catalog_free(c);
}

static void test_errors(void)
{
    /* a histogram's samples are taken: listed again in its query, or
     * produced by another namespace */
    EXPECT_ERROR("pg_foo:\n"
                 "  query: SELECT 1\n"
                 "  metrics:\n"
                 "    - seconds:\n"
                 "        usage: HISTOGRAM\n"
                 "    - seconds_sum: {usage: GAUGE, description: x}\n",
                 "q.yaml:6:7: metric \"pg_foo_seconds_sum\" is produced twice in query "
                 "\"legacy:pg_foo\"");
    EXPECT_ERROR("pg_foo:\n"
                 "  metrics:\n"
                 "    - seconds: {usage: HISTOGRAM, description: x}\n"
                 "pg_foo_seconds:\n"
                 "  metrics:\n"
                 "    - count: {usage: GAUGE, description: x}\n",
                 "q.yaml:6:7: metric \"pg_foo_seconds_count\" of query \"legacy:pg_foo_seconds\" "
                 "would mix with the samples of histogram \"pg_foo_seconds\" of query "
                 "\"legacy:pg_foo\"");
    EXPECT_ERROR("pg_foo_seconds:\n"
                 "  metrics:\n"
                 "    - bucket: {usage: COUNTER, description: x}\n"
                 "pg_foo:\n"
                 "  metrics:\n"
                 "    - seconds: {usage: HISTOGRAM, description: x}\n",
                 "q.yaml:6:7: metric \"pg_foo_seconds\" of query \"legacy:pg_foo\" would mix "
                 "with the samples of counter \"pg_foo_seconds_bucket\" of query "
                 "\"legacy:pg_foo_seconds\"");
    EXPECT_ERROR("pg_foo:\n"
                 "  metrics:\n"
                 "    - age-max: {usage: DURATION, description: x}\n",
                 "q.yaml:3:7: invalid metric name \"pg_foo_age-max_milliseconds\" in column "
                 "\"age-max\" of \"pg_foo\"");
    /* DURATION's name is its own: a GAUGE of that name is another type */
    EXPECT_ERROR("pg_foo:\n"
                 "  metrics:\n"
                 "    - age: {usage: DURATION, description: x}\n"
                 "    - age_milliseconds: {usage: COUNTER, description: x}\n",
                 "q.yaml:4:7: metric \"pg_foo_age_milliseconds\" is produced twice in query "
                 "\"legacy:pg_foo\"");
    EXPECT_ERROR("pg_foo:\n"
                 "  query: SELECT 1\n"
                 "  metrics:\n"
                 "    - n: {usage: gauge}\n",
                 "q.yaml:4:18: bad usage \"gauge\" in column \"n\" of \"pg_foo\": expected LABEL, "
                 "COUNTER, GAUGE, DISCARD, MAPPEDMETRIC, DURATION or HISTOGRAM (upper case)");
    EXPECT_ERROR("pg_foo:\n"
                 "  query: SELECT 1\n"
                 "  metrics:\n"
                 "    - n: {description: x}\n",
                 "q.yaml:4:10: missing key \"usage\" in column \"n\" of \"pg_foo\"");
    EXPECT_ERROR("pg_foo:\n"
                 "  query: SELECT 1\n"
                 "  mertics: []\n",
                 "q.yaml:3:3: unknown key \"mertics\" in \"pg_foo\"");
    EXPECT_ERROR("pg_foo:\n"
                 "  query: SELECT 1\n",
                 "q.yaml:1:1: missing key \"metrics\" in \"pg_foo\"");
    EXPECT_ERROR("pg_foo:\n"
                 "  query: SELECT 1\n"
                 "  metrics:\n"
                 "    - n: {usage: GAUGE, colour: red}\n",
                 "q.yaml:4:25: unknown key \"colour\" in column \"n\" of \"pg_foo\"");
    EXPECT_ERROR("pg_foo:\n"
                 "  query: SELECT 1\n"
                 "  master: maybe\n"
                 "  metrics:\n"
                 "    - n: {usage: GAUGE}\n",
                 "q.yaml:3:11: bad boolean \"maybe\" for \"master\" in \"pg_foo\": expected true "
                 "or false");
    EXPECT_ERROR("pg_foo:\n"
                 "  query: SELECT 1\n"
                 "  cache_seconds: 15s\n"
                 "  metrics:\n"
                 "    - n: {usage: GAUGE}\n",
                 "q.yaml:3:18: bad cache_seconds \"15s\" in \"pg_foo\": expected a whole number "
                 "of seconds, at most a year");
    EXPECT_ERROR("pg_foo:\n"
                 "  query: \"  \"\n"
                 "  metrics:\n"
                 "    - n: {usage: GAUGE}\n",
                 "q.yaml:2:10: empty \"query\" in \"pg_foo\"");
    EXPECT_ERROR("pg-foo:\n"
                 "  metrics:\n"
                 "    - n: {usage: GAUGE}\n",
                 "q.yaml:1:1: invalid namespace \"pg-foo\": expected a metric name prefix");
    EXPECT_ERROR("pg_foo:\n"
                 "  metrics:\n"
                 "    - n: {usage: GAUGE}\n"
                 "    - n: {usage: LABEL}\n",
                 "q.yaml:4:7: column \"n\" is listed twice in \"pg_foo\" (first at line 3)");
    EXPECT_ERROR("pg_foo:\n"
                 "  metrics:\n"
                 "    - n: {usage: LABEL}\n"
                 "    - d: {usage: DISCARD}\n",
                 "q.yaml:3:5: query \"legacy:pg_foo\" has no gauge or counter column");
    EXPECT_ERROR("pg_foo:\n"
                 "  metrics:\n"
                 "    - n: GAUGE\n",
                 "q.yaml:3:10: expected a mapping for \"n\" in column \"n\" of \"pg_foo\", found "
                 "a scalar");
    EXPECT_ERROR("pg_foo:\n"
                 "  metrics:\n"
                 "    n: {usage: GAUGE}\n",
                 "q.yaml:3:5: expected a sequence for \"metrics\" in \"pg_foo\", found a mapping");
    EXPECT_ERROR("pg_foo: SELECT 1\n",
                 "q.yaml:1:9: expected a mapping for \"pg_foo\", found a scalar");
    EXPECT_ERROR("- pg_foo\n",
                 "q.yaml:1:1: expected a mapping of namespaces at top level, found a sequence");
    EXPECT_ERROR("pg_exporter:\n"
                 "  metrics:\n"
                 "    - up: {usage: GAUGE}\n",
                 "q.yaml:3:7: metric \"pg_exporter_up\" is reserved for pgpulse's own metrics "
                 "(names starting with \"pg_exporter_\") in column \"up\" of query "
                 "\"legacy:pg_exporter\"");
    EXPECT_ERROR("pg_foo:\n"
                 "  metrics:\n"
                 "    - n: {usage: GAUGE}\n"
                 "pg_foo:\n"
                 "  metrics: []\n",
                 "q.yaml:4:1: duplicate key \"pg_foo\" (first at line 1)");
    /* a later entry's error drops the earlier ones too */
    EXPECT_ERROR("pg_ok:\n"
                 "  metrics:\n"
                 "    - n: {usage: GAUGE}\n"
                 "pg_bad:\n"
                 "  metrics:\n"
                 "    - n: {usage: GAGE}\n",
                 "q.yaml:6:18: bad usage \"GAGE\" in column \"n\" of \"pg_bad\": expected LABEL, "
                 "COUNTER, GAUGE, DISCARD, MAPPEDMETRIC, DURATION or HISTOGRAM (upper case)");
}

static void test_path(void)
{
    char path[] = "/tmp/test_legacy_XXXXXX";
    char hash[PP_CATALOG_HASHSUM_SIZE];
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char text[] = "pg_one:\n  query: SELECT 1 AS n\n  metrics:\n    - n: {usage: GAUGE}\n";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    pp_catalog *c = pp_catalog_new();
    CHECK(pp_catalog_load_legacy_path(c, path, hash, err, sizeof err) == 0);
    /* sha256sum of the text above */
    CHECK_STR(hash, "37f5ac4d81bb682b1c41463725125543394daf43bebbf9634c301af2758844eb");
    const pp_catalog_query *q = query(c, "legacy:pg_one");
    CHECK(q != NULL && strcmp(q->file, path) == 0);
    unlink(path);
    CHECK(pp_catalog_load_legacy_path(c, path, hash, err, sizeof err) == -1);
    CHECK_STR(hash, "");
    CHECK_CONTAINS(err, "No such file or directory");
    pp_catalog_free(c);
}

int main(void)
{
    test_translation();
    test_duration_and_histogram();
    test_parse_duration();
    test_parse_timestamp();
    test_parse_array();
    test_rows();
    test_with_builtin();
    test_empty();
    test_errors();
    test_path();
    return CHECK_RESULT();
}
