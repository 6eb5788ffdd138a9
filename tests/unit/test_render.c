/*
 * test_render: the exposition writer. Escaping (including invalid UTF-8),
 * number formatting and its round trip, the value parser's accept/reject
 * table, name validation, sanitizing and label blocks; and buf's comma-list
 * splitter, which the flags' lists go through.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "render.h"

/* Renders with f into a fresh buffer and returns a malloc'd copy. */
static char *label_value(const char *s, size_t n)
{
    pp_buf b = PP_BUF_INIT;
    pp_render_label_value(&b, s, n);
    return pp_buf_steal(&b, NULL);
}

static void check_label_value(const char *in, size_t n, const char *want, int line)
{
    char *got = label_value(in, n);
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "%s:%d: label value\n  got:  \"%s\"\n  want: \"%s\"\n", __FILE__, line, got,
                want);
        check_failures++;
    }
    free(got);
}

#define LV(in, want) check_label_value(in, sizeof(in) - 1, want, __LINE__)

static void test_label_value(void)
{
    LV("", "");
    LV("plain value", "plain value");
    LV("back\\slash", "back\\\\slash");
    LV("say \"hi\"", "say \\\"hi\\\"");
    LV("two\nlines", "two\\nlines");
    LV("\\\"\n", "\\\\\\\"\\n");
    LV("tab\tand\rcr", "tab\tand\rcr"); /* only \\, \" and \n are escaped */
    /* valid UTF-8 passes through: 2, 3 and 4 byte sequences */
    LV("caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80",
       "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80");
    /* invalid: a lone byte, a truncated sequence (one U+FFFD for the
     * maximal subpart), an overlong form, a surrogate, above U+10FFFF */
    LV("a\xFFz", "a\xEF\xBF\xBDz");
    LV("x\xE2\x82", "x\xEF\xBF\xBD");
    LV("x\xE2\x82y", "x\xEF\xBF\xBDy");
    LV("\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD");
    LV("\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    LV("\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    LV("\x80\"", "\xEF\xBF\xBD\\\"");
    /* an escape after valid multi-byte text and invalid bytes mixed in */
    LV("\xC3\xA9\n\xFE\\", "\xC3\xA9\\n\xEF\xBF\xBD\\\\");

    /* appends: what was in the buffer stays, and the length is tracked */
    pp_buf b = PP_BUF_INIT;
    pp_buf_puts(&b, "k=\"");
    pp_render_label_value(&b, "a\"b", 3);
    pp_buf_putc(&b, '"');
    CHECK_STR(b.data, "k=\"a\\\"b\"");
    CHECK(b.len == strlen(b.data));
    /* only n bytes are read, even without a terminator */
    pp_buf_reset(&b);
    pp_render_label_value(&b, "abc\"def", 4);
    CHECK_STR(b.data, "abc\\\"");

    /* long values: a fast-path prefix followed by escapes near the end */
    size_t n = 100000;
    char *big = malloc(n + 1);
    memset(big, 'v', n);
    big[n - 2] = '\n';
    big[n - 1] = '\xFF';
    big[n] = '\0';
    pp_buf_reset(&b);
    pp_render_label_value(&b, big, n);
    CHECK(b.len == n - 2 + 2 + 3);
    CHECK(memcmp(b.data, big, n - 2) == 0);
    CHECK_STR(b.data + n - 2, "\\n\xEF\xBF\xBD");
    free(big);
    pp_buf_deinit(&b);
}

static void test_help_and_header(void)
{
    pp_buf b = PP_BUF_INIT;

    pp_render_help_text(&b, "a \"quoted\" \\ back\nslash");
    CHECK_STR(b.data, "a \"quoted\" \\\\ back\\nslash");
    pp_buf_reset(&b);
    pp_render_help_text(&b, "bad \xFF");
    CHECK_STR(b.data, "bad \xEF\xBF\xBD");

    pp_buf_reset(&b);
    pp_render_header(&b, "pg_up", "Whether the last scrape worked (1 for yes)", PP_METRIC_GAUGE);
    CHECK_STR(b.data, "# HELP pg_up Whether the last scrape worked (1 for yes)\n"
                      "# TYPE pg_up gauge\n");
    pp_buf_reset(&b);
    pp_render_header(&b, "pg_x_total", "line\nbreak", PP_METRIC_COUNTER);
    CHECK_STR(b.data, "# HELP pg_x_total line\\nbreak\n# TYPE pg_x_total counter\n");
    pp_buf_reset(&b);
    pp_render_header(&b, "pg_u", "", PP_METRIC_UNTYPED);
    CHECK_STR(b.data, "# HELP pg_u \n# TYPE pg_u untyped\n");
    pp_buf_deinit(&b);

    CHECK_STR(pp_metric_type_name(PP_METRIC_GAUGE), "gauge");
    CHECK_STR(pp_metric_type_name(PP_METRIC_COUNTER), "counter");
    CHECK_STR(pp_metric_type_name(PP_METRIC_UNTYPED), "untyped");
}

static void check_double(double v, const char *want, int line)
{
    pp_buf b = PP_BUF_INIT;
    pp_render_double(&b, v);
    if (strcmp(b.data, want) != 0) {
        fprintf(stderr, "%s:%d: render_double(%.17g)\n  got:  \"%s\"\n  want: \"%s\"\n", __FILE__,
                line, v, b.data, want);
        check_failures++;
    }
    pp_buf_deinit(&b);
}

#define D(v, want) check_double(v, want, __LINE__)

static void test_double(void)
{
    D(0, "0");
    D(-0.0, "0");
    D(42, "42");
    D(-1, "-1");
    D(1e15, "1000000000000000");
    D(9007199254740991.0, "9007199254740991"); /* 2^53 - 1 */
    D(-9007199254740991.0, "-9007199254740991");
    D(9007199254740992.0, "9007199254740992");           /* 2^53: shortest form */
    D(18446744073709551616.0, "1.8446744073709552e+19"); /* 2^64 */
    D(1e20, "1e+20");
    D(0.1, "0.1");
    D(0.25, "0.25");
    D(-2.5, "-2.5");
    D(1.0 / 3, "0.3333333333333333");
    D(0.1 + 0.2, "0.30000000000000004");
    D(1e300, "1e+300");
    D(1.5e300, "1.5e+300");
    D(1e-7, "1e-07");
    D(123456.789, "123456.789");
    D(DBL_MAX, "1.7976931348623157e+308");
    D(5e-324, "4.94065645841247e-324"); /* denormal: 15 digits suffice */
    D(NAN, "NaN");
    D(INFINITY, "+Inf");
    D(-INFINITY, "-Inf");

    /* Property: every finite double reads back exactly and "-0" never
     * appears; bit patterns cover all exponents. */
    uint64_t x = 0x9E3779B97F4A7C15u;
    int bad = 0;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        memcpy(&v, &x, sizeof v);
        if (!isfinite(v))
            continue;
        pp_buf b = PP_BUF_INIT;
        pp_render_double(&b, v);
        if (strtod(b.data, NULL) != v || strcmp(b.data, "-0") == 0 || b.len > 24)
            bad++;
        pp_buf_deinit(&b);
    }
    CHECK(bad == 0);

    /* Property: values with a short decimal form (most samples: ratios,
     * seconds, sizes) come out as printf writes them with the fewest of
     * 15, 16 or 17 digits that read back. */
    D(0.0001, "0.0001");
    D(0.00012345, "0.00012345");
    D(-0.5, "-0.5");
    D(99999999999999.9, "99999999999999.9");
    D(0.000099, "9.9e-05");
    int differ = 0;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v = (double)(x % 1000000000000000u) / pow(10, (double)(x >> 60)) *
                   ((x >> 59) & 1 ? -1 : 1) / pow(10, (double)((x >> 50) % 8));
        if (!isfinite(v) || v == trunc(v))
            continue;
        char want[32];
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(want, sizeof want, "%.*g", prec, v);
            if (strtod(want, NULL) == v)
                break;
        }
        pp_buf b = PP_BUF_INIT;
        pp_render_double(&b, v);
        if (strcmp(b.data, want) != 0 && differ++ < 5)
            fprintf(stderr, "render_double(%.17g): \"%s\", printf: \"%s\"\n", v, b.data, want);
        pp_buf_deinit(&b);
    }
    CHECK(differ == 0);
}

static void check_parse(const char *text, int want_rc, double want, int line)
{
    double got = -12345;
    int rc = pp_render_parse_value(text, &got);
    bool ok = rc == want_rc;
    if (ok && rc == 0)
        ok = isnan(want) ? isnan(got) : got == want && signbit(got) == signbit(want);
    if (!ok) {
        fprintf(stderr, "%s:%d: parse_value(\"%s\") = %d, %.17g; want %d, %.17g\n", __FILE__, line,
                text, rc, got, want_rc, want);
        check_failures++;
    }
}

#define ACCEPT(text, v) check_parse(text, 0, v, __LINE__)
#define REJECT(text) check_parse(text, -1, 0, __LINE__)

static void test_parse_value(void)
{
    /* int2/int4/int8 */
    ACCEPT("0", 0);
    ACCEPT("42", 42);
    ACCEPT("-32768", -32768);
    ACCEPT("2147483647", 2147483647.0);
    ACCEPT("-9223372036854775808", -9223372036854775808.0);
    ACCEPT("9223372036854775807", 9223372036854775807.0);
    ACCEPT("007", 7);
    ACCEPT("+5", 5);
    ACCEPT("-0", -0.0);
    /* numeric */
    ACCEPT("3.14", 3.14);
    ACCEPT("-0.5", -0.5);
    ACCEPT("0.10000000000000000000000001", 0.1);
    ACCEPT("123456789012345678901234567890", 123456789012345678901234567890.0);
    ACCEPT("1.", 1);
    ACCEPT(".5", 0.5);
    /* float4/float8, including extra_float_digits output */
    ACCEPT("1e-05", 1e-05);
    ACCEPT("1.5e+300", 1.5e300);
    ACCEPT("2E10", 2e10);
    ACCEPT("0.30000000000000004", 0.30000000000000004);
    ACCEPT("1e400", INFINITY); /* numeric beyond double: the nearest sample */
    ACCEPT("-1e400", -INFINITY);
    ACCEPT("NaN", NAN);
    ACCEPT("Infinity", INFINITY);
    ACCEPT("-Infinity", -INFINITY);
    ACCEPT("+Infinity", INFINITY);
    /* booleans */
    ACCEPT("t", 1);
    ACCEPT("f", 0);
    ACCEPT("true", 1);
    ACCEPT("false", 0);
    ACCEPT("TRUE", 1);
    ACCEPT("on", 1);
    ACCEPT("off", 0);

    REJECT("");
    REJECT(" 1");
    REJECT("1 ");
    REJECT("1x");
    REJECT("12abc");
    REJECT("0x10");
    REJECT("0X1p3");
    REJECT("inf");
    REJECT("nan");
    REJECT("-NaN");
    REJECT("Infinityx");
    REJECT("-");
    REJECT("+");
    REJECT(".");
    REJECT("e5");
    REJECT("1e");
    REJECT("1e+");
    REJECT("1.2.3");
    REJECT("--1");
    REJECT("yes");
    REJECT("tru");
    REJECT("1,5");
    REJECT("2024-01-01");
    REJECT("\xE2\x88\x9E");
    CHECK(pp_render_parse_value(NULL, &(double){0}) == -1);
}

static void test_names(void)
{
    CHECK(pp_render_valid_metric_name("pg_up"));
    CHECK(pp_render_valid_metric_name("a:b_c9"));
    CHECK(pp_render_valid_metric_name(":recorded"));
    CHECK(pp_render_valid_metric_name("_x"));
    CHECK(!pp_render_valid_metric_name(""));
    CHECK(!pp_render_valid_metric_name(NULL));
    CHECK(!pp_render_valid_metric_name("9lives"));
    CHECK(!pp_render_valid_metric_name("pg-up"));
    CHECK(!pp_render_valid_metric_name("pg up"));
    CHECK(!pp_render_valid_metric_name("caf\xC3\xA9"));

    CHECK(pp_render_valid_label_name("datname"));
    CHECK(pp_render_valid_label_name("_x"));
    CHECK(pp_render_valid_label_name("a1"));
    CHECK(!pp_render_valid_label_name("__name__"));
    CHECK(!pp_render_valid_label_name("__x"));
    CHECK(!pp_render_valid_label_name("a:b"));
    CHECK(!pp_render_valid_label_name("1a"));
    CHECK(!pp_render_valid_label_name(""));
    CHECK(!pp_render_valid_label_name(NULL));
}

static void check_sanitize(const char *in, const char *want, int line)
{
    pp_buf b = PP_BUF_INIT;
    pp_buf_puts(&b, "pg_settings_");
    size_t before = b.len;
    pp_render_sanitize_name(&b, in);
    if (strcmp(b.data + before, want) != 0 || strncmp(b.data, "pg_settings_", before) != 0) {
        fprintf(stderr, "%s:%d: sanitize(\"%s\") = \"%s\", want \"%s\"\n", __FILE__, line, in,
                b.data + before, want);
        check_failures++;
    }
    pp_buf_deinit(&b);
}

#define SAN(in, want) check_sanitize(in, want, __LINE__)

static void test_sanitize(void)
{
    SAN("shared_buffers", "shared_buffers");
    SAN("pg_stat.track-io", "pg_stat_track_io");
    SAN("a b/c", "a_b_c");
    SAN("9th", "_9th");
    SAN("x:y", "x:y");
    SAN("caf\xC3\xA9", "caf__");
    SAN("", "");

    pp_buf b = PP_BUF_INIT;
    pp_render_sanitize_name(&b, "0-weird.name");
    CHECK_STR(b.data, "_0_weird_name");
    CHECK(pp_render_valid_metric_name(b.data));
    pp_buf_deinit(&b);
}

static void test_labels(void)
{
    pp_buf b = PP_BUF_INIT;

    pp_render_labels(&b, NULL, 0);
    CHECK(b.len == 0);

    pp_label one[] = {{"datname", "postgres"}};
    pp_render_labels(&b, one, 1);
    CHECK_STR(b.data, "{datname=\"postgres\"}");

    pp_buf_reset(&b);
    pp_label three[] = {{"a", "x"}, {"b", "say \"hi\"\n"}, {"c", NULL}};
    pp_buf_puts(&b, "pg_x");
    pp_render_labels(&b, three, 3);
    pp_buf_putc(&b, ' ');
    pp_render_double(&b, 1.5);
    CHECK_STR(b.data, "pg_x{a=\"x\",b=\"say \\\"hi\\\"\\n\",c=\"\"} 1.5");
    pp_buf_deinit(&b);
}

/* pp_split_list's items as "[a][b]", and whether out and n agree. */
static char *split(const char *text, unsigned flags)
{
    static char *stale[1];
    char **items = stale; /* must be overwritten, with NULL for no items */
    size_t n = 99;
    pp_split_list(text, flags, &items, &n);
    CHECK((items == NULL) == (n == 0));
    pp_buf b = PP_BUF_INIT;
    for (size_t i = 0; i < n; i++)
        pp_buf_printf(&b, "[%s]", items[i]);
    pp_strv_free(items, n);
    return pp_buf_steal(&b, NULL);
}

static void check_split(const char *text, unsigned flags, const char *want, int line)
{
    char *got = split(text, flags);
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "%s:%d: split \"%s\" (flags %u)\n  got:  %s\n  want: %s\n", __FILE__, line,
                text != NULL ? text : "(null)", flags, got, want);
        check_failures++;
    }
    free(got);
}

#define SPLIT(text, flags, want) check_split(text, flags, want, __LINE__)

static void test_split_list(void)
{
    const unsigned names = PP_SPLIT_TRIM | PP_SPLIT_SKIP_EMPTY;
    /* no text, no items, whatever the flags */
    SPLIT(NULL, 0, "");
    SPLIT("", 0, "");
    SPLIT(NULL, names, "");
    SPLIT("", names, "");

    /* as written (--constantLabels): spaces kept, empty items kept, but a
     * comma that ends the text adds none */
    SPLIT("a", 0, "[a]");
    SPLIT("a, b ,,c", 0, "[a][ b ][][c]");
    SPLIT("a,", 0, "[a]");
    SPLIT("a,,", 0, "[a][]");
    SPLIT(",", 0, "[]");
    SPLIT(",a", 0, "[][a]");
    SPLIT(" ", 0, "[ ]");
    SPLIT("k= v ,x=\ty", 0, "[k= v ][x=\ty]");

    /* trimmed: spaces and tabs only, around the item, not inside it */
    SPLIT(" a\t,\tb c ", PP_SPLIT_TRIM, "[a][b c]");
    SPLIT("a,  ,b", PP_SPLIT_TRIM, "[a][][b]");
    SPLIT(" \n a", PP_SPLIT_TRIM, "[\n a]");

    /* empty items skipped: with trimming (database names, the probe
     * allow-list) a blank one is empty too; without, it is not */
    SPLIT(" db1 , ,\t,db2,", names, "[db1][db2]");
    SPLIT(" , ,", names, "");
    SPLIT(",,x,,", names, "[x]");
    SPLIT("a, ,,b", PP_SPLIT_SKIP_EMPTY, "[a][ ][b]");

    pp_strv_free(NULL, 0);
}

int main(void)
{
    test_label_value();
    test_help_and_header();
    test_double();
    test_parse_value();
    test_names();
    test_sanitize();
    test_labels();
    test_split_list();
    return CHECK_RESULT();
}
