/*
 * test_rows: result rows to exposition text under the series cap, fed the
 * way a target feeds them (one result, or one row per result as libpq's
 * single-row mode delivers them), with results built by libpq itself.
 */
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "check.h"
#include "family.h"
#include "rows.h"

static const char yaml[] = "queries:\n"
                           "  - name: t\n"
                           "    namespace: pg_t\n"
                           "    sql: SELECT 1\n"
                           "    columns:\n"
                           "      db: label\n"
                           "      a: {role: gauge, help: A}\n"
                           "      b: {role: counter, help: B}\n"
                           "  - name: settings\n"
                           "    namespace: pg_settings\n"
                           "    sql: SELECT 1\n"
                           "    columns:\n"
                           "      name: name\n"
                           "      setting: {role: gauge, help: x}\n";

/* A result with the given column names and rows[r][c] text (NULL = SQL NULL). */
static PGresult *result(ExecStatusType st, int ncols, const char *const *names, int nrows,
                        const char *const *cells)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, st);
    PGresAttDesc att[8];
    memset(att, 0, sizeof(att));
    for (int c = 0; c < ncols; c++) {
        att[c].name = (char *)names[c];
        att[c].format = 0;
        att[c].typid = 25;
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

static const char *const names[] = {"db", "a", "b"};
static const char *const cells[] = {"x", "1", "10", "y", "2", NULL, "z", "3", "30"};

static char *text_of(const pp_piece *o)
{
    char *s = pp_piece_strdup(o);
    CHECK(s != NULL);
    return s != NULL ? s : pp_strdup("");
}

static void test_whole_and_row_by_row_agree(pp_catalog *cat, pp_families *fam)
{
    pp_rows *r = pp_rows_new();
    pp_piece *whole = NULL, *streamed = NULL;
    char err[128];

    pp_rows_begin(r, &cat->queries[0], fam, "server=\"h:1\"", 0);
    PGresult *res = result(PGRES_TUPLES_OK, 3, names, 3, cells);
    CHECK(pp_rows_add(r, res, err, sizeof(err)) == 0);
    PQclear(res);
    CHECK(pp_rows_finish(r, NULL, &whole) == 0);

    pp_rows_begin(r, &cat->queries[0], fam, "server=\"h:1\"", 0);
    for (int i = 0; i < 3; i++) {
        res = result(PGRES_SINGLE_TUPLE, 3, names, 1, cells + 3 * i);
        CHECK(pp_rows_add(r, res, err, sizeof(err)) == 0);
        PQclear(res);
    }
    res = result(PGRES_TUPLES_OK, 3, names, 0, NULL);
    CHECK(pp_rows_add(r, res, err, sizeof(err)) == 0);
    PQclear(res);
    CHECK(pp_rows_finish(r, NULL, &streamed) == 0);

    char *a = text_of(whole), *b = text_of(streamed);
    CHECK_STR(a, "pg_t_a{server=\"h:1\",db=\"x\"} 1\n"
                 "pg_t_a{server=\"h:1\",db=\"y\"} 2\n"
                 "pg_t_a{server=\"h:1\",db=\"z\"} 3\n"
                 "pg_t_b{server=\"h:1\",db=\"x\"} 10\n"
                 "pg_t_b{server=\"h:1\",db=\"z\"} 30\n");
    CHECK_STR(b, a);
    /* one span per metric column, each naming its family */
    CHECK(whole->nspans == 2 && streamed->nspans == 2);
    CHECK(whole->spans[0].family == cat->queries[0].columns[1].family);
    CHECK(whole->spans[1].family == cat->queries[0].columns[2].family);
    CHECK(whole->spans[1].off == whole->spans[0].len);
    free(a);
    free(b);
    pp_piece_unref(whole);
    pp_piece_unref(streamed);
    pp_rows_free(r);
}

static void test_cap_applies_while_reading(pp_catalog *cat, pp_families *fam)
{
    pp_rows *r = pp_rows_new();
    pp_piece *out = NULL;
    char err[128];
    pp_rows_begin(r, &cat->queries[0], fam, "", 3);
    for (int i = 0; i < 1000; i++) {
        PGresult *res = result(PGRES_SINGLE_TUPLE, 3, names, 1, cells);
        CHECK(pp_rows_add(r, res, err, sizeof(err)) == 0);
        PQclear(res);
    }
    size_t held = pp_rows_memory(r);
    CHECK(held < 16384); /* three samples' worth, not a thousand */
    CHECK(pp_rows_finish(r, NULL, &out) == 1997);
    char *s = text_of(out);
    /* the cap counts samples in the order rows arrive: a and b of the
     * first row, a of the second */
    CHECK_STR(s, "pg_t_a{db=\"x\"} 1\npg_t_a{db=\"x\"} 1\npg_t_b{db=\"x\"} 10\n");
    free(s);
    pp_piece_unref(out);
    pp_rows_free(r);
}

static void test_missing_column_and_dynamic(pp_catalog *cat, pp_families *fam)
{
    pp_rows *r = pp_rows_new();
    pp_piece *out = NULL;
    char err[128] = "";
    pp_rows_begin(r, &cat->queries[0], fam, "", 0);
    static const char *const two[] = {"db", "a"};
    PGresult *res = result(PGRES_TUPLES_OK, 2, two, 1, cells);
    CHECK(pp_rows_add(r, res, err, sizeof(err)) == -1);
    CHECK_STR(err, "column \"b\" is missing from the result");
    PQclear(res);

    static const char *const dn[] = {"name", "setting"};
    static const char *const dc[] = {"max_connections", "100", "work.mem", "4096", NULL, "1"};
    pp_rows_begin(r, &cat->queries[1], fam, "", 0);
    res = result(PGRES_TUPLES_OK, 2, dn, 3, dc);
    CHECK(pp_rows_add(r, res, err, sizeof(err)) == 0);
    PQclear(res);
    CHECK(pp_rows_finish(r, NULL, &out) == 0);
    char *s = text_of(out);
    CHECK_STR(s, "pg_settings_max_connections 100\npg_settings_work_mem 4096\n");
    CHECK(out->nspans == 2 && out->spans[0].family != out->spans[1].family);
    free(s);
    pp_piece_unref(out);
    pp_rows_free(r);
}

int main(void)
{
    pp_catalog *cat = pp_catalog_new();
    char err[256];
    if (pp_catalog_load_buffer(cat, "t.yaml", yaml, sizeof(yaml) - 1, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    pp_families *fam = pp_families_new(cat, 100);
    test_whole_and_row_by_row_agree(cat, fam);
    test_cap_applies_while_reading(cat, fam);
    test_missing_column_and_dynamic(cat, fam);
    pp_families_free(fam);
    pp_catalog_free(cat);
    return CHECK_RESULT();
}
