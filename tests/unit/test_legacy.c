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

#include "catalog.h"
#include "check.h"

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
    EXPECT_ERROR("pg_foo:\n"
                 "  query: SELECT 1\n"
                 "  metrics:\n"
                 "    - seconds:\n"
                 "        usage: HISTOGRAM\n",
                 "q.yaml:5:16: usage HISTOGRAM in \"pg_foo\" is not supported yet (column "
                 "\"seconds\"): it reads arrays of bucket bounds and counts; return one row per "
                 "bucket and use GAUGE");
    EXPECT_ERROR("pg_foo:\n"
                 "  query: SELECT 1\n"
                 "  metrics:\n"
                 "    - age: {usage: DURATION, description: x}\n",
                 "q.yaml:4:20: usage DURATION in \"pg_foo\" is not supported yet (column \"age\"): "
                 "it parses text such as \"1h2m3s\" into milliseconds; return a number and use "
                 "GAUGE");
    EXPECT_ERROR("pg_foo:\n"
                 "  query: SELECT 1\n"
                 "  metrics:\n"
                 "    - n: {usage: gauge}\n",
                 "q.yaml:4:18: bad usage \"gauge\" in column \"n\" of \"pg_foo\": expected LABEL, "
                 "COUNTER, GAUGE, DISCARD or MAPPEDMETRIC (upper case)");
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
                 "COUNTER, GAUGE, DISCARD or MAPPEDMETRIC (upper case)");
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
    test_with_builtin();
    test_empty();
    test_errors();
    test_path();
    return CHECK_RESULT();
}
