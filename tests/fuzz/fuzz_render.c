/*
 * fuzz_render: the exposition writer's escapers and its number parser and
 * formatter (render.h), checked against independent implementations.
 *
 * One input feeds every function:
 * - the whole input is a label value and, up to its first NUL, a HELP text
 *   and a name to sanitize: the output must be valid UTF-8 without a raw
 *   line feed, a label value without an unescaped double quote, and
 *   unescaping it must give the input back when the input was valid UTF-8;
 * - the input up to its first NUL is a PostgreSQL value for
 *   pp_render_parse_value: a number it accepts must be what strtod reads,
 *   and formatting it must read back to the same double;
 * - the first 8 bytes are the bits of a double for pp_render_double: the
 *   text must be short, use the documented forms and strtod back exactly.
 */
#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "fuzz.h"
#include "render.h"

/* Rendered after something already in the buffer, as on a real page. */
#define PREFIX "pg_up{server=\""
#define PREFIX_LEN (sizeof PREFIX - 1)

/* Length of the well-formed UTF-8 sequence at p (Unicode table 3-7), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F))
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))
            return 0;
        return 4;
    }
    return 0;
}

static bool valid_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len(p + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

/*
 * Checks an escaped text s[0, n) and undoes the escapes into out (which has
 * room for n bytes); returns the unescaped length.
 */
static size_t check_escaped(const char *s, size_t n, bool quote_escaped, char *out)
{
    size_t k = 0;
    FUZZ_CHECK(valid_utf8(s, n));
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(s[i] != '\n');
        FUZZ_CHECK(!(quote_escaped && s[i] == '"'));
        if (s[i] == '\\') {
            FUZZ_CHECK(i + 1 < n);
            char e = s[++i];
            FUZZ_CHECK(e == '\\' || e == 'n' || (quote_escaped && e == '"'));
            out[k++] = e == 'n' ? '\n' : e;
        } else {
            out[k++] = s[i];
        }
    }
    return k;
}

static void check_label_value(const char *s, size_t n)
{
    pp_buf b = PP_BUF_INIT;
    pp_buf_append(&b, PREFIX, PREFIX_LEN);
    pp_render_label_value(&b, s, n);
    FUZZ_CHECK(b.len >= PREFIX_LEN && memcmp(b.data, PREFIX, PREFIX_LEN) == 0);
    FUZZ_CHECK(b.data[b.len] == '\0');
    size_t en = b.len - PREFIX_LEN;
    char *un = malloc(en + 1);
    FUZZ_CHECK(un != NULL);
    size_t un_len = check_escaped(b.data + PREFIX_LEN, en, true, un);
    if (valid_utf8(s, n))
        FUZZ_CHECK(un_len == n && memcmp(un, s, n) == 0);
    else
        FUZZ_CHECK(un_len > 0 && un_len <= 3 * n && memmem(un, un_len, "\xEF\xBF\xBD", 3));
    free(un);
    pp_buf_deinit(&b);
}

static void check_help_text(const char *s)
{
    pp_buf b = PP_BUF_INIT;
    size_t n = strlen(s);
    pp_render_help_text(&b, s);
    if (n == 0) {
        FUZZ_CHECK(b.len == 0);
        pp_buf_deinit(&b);
        return;
    }
    char *un = malloc(b.len + 1);
    FUZZ_CHECK(un != NULL);
    size_t un_len = check_escaped(b.data, b.len, false, un);
    if (valid_utf8(s, n))
        FUZZ_CHECK(un_len == n && memcmp(un, s, n) == 0);
    free(un);
    pp_buf_deinit(&b);
}

static void check_sanitize(const char *s)
{
    pp_buf b = PP_BUF_INIT;
    pp_buf_append(&b, "pg_settings_", 12);
    pp_render_sanitize_name(&b, s);
    FUZZ_CHECK(pp_render_valid_metric_name(b.data));
    FUZZ_CHECK(b.len - 12 == strlen(s) + (s[0] >= '0' && s[0] <= '9'));
    pp_buf_deinit(&b);
}

static bool is_word(const char *s)
{
    static const char *const words[] = {"t",   "true", "on",       "f",         "false",
                                        "off", "NaN",  "Infinity", "+Infinity", "-Infinity"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strcasecmp(s, words[i]) == 0)
            return true;
    }
    return false;
}

/* Formats v and checks the text; returns it in tmp. */
static void check_double(double v, char *tmp, size_t tmplen)
{
    pp_buf b = PP_BUF_INIT;
    pp_buf_append(&b, "x ", 2);
    pp_render_double(&b, v);
    const char *t = b.data + 2;
    size_t n = b.len - 2;
    FUZZ_CHECK(n > 0 && n < tmplen);
    memcpy(tmp, t, n + 1);
    if (isnan(v)) {
        FUZZ_CHECK(strcmp(tmp, "NaN") == 0);
    } else if (isinf(v)) {
        FUZZ_CHECK(strcmp(tmp, v > 0 ? "+Inf" : "-Inf") == 0);
    } else {
        char *end;
        double back = strtod(tmp, &end);
        FUZZ_CHECK(*end == '\0');
        FUZZ_CHECK(back == v);
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(strchr("0123456789-+.e", tmp[i]) != NULL);
        /* integers a double holds exactly are written as integers */
        if (fabs(v) < 9007199254740992.0 && v == trunc(v))
            FUZZ_CHECK(strpbrk(tmp, ".e") == NULL);
        /* what the writer prints, the reader accepts */
        double again;
        FUZZ_CHECK(pp_render_parse_value(tmp, &again) == 0 && again == v);
    }
    pp_buf_deinit(&b);
}

static void check_parse_value(const char *s)
{
    double v;
    char tmp[64];
    if (pp_render_parse_value(s, &v) != 0)
        return;
    if (!is_word(s)) {
        /* the grammar is a subset of strtod's: no spaces, hex, "inf" */
        char *end;
        double ref = strtod(s, &end);
        FUZZ_CHECK(*end == '\0');
        FUZZ_CHECK(ref == v || (isnan(ref) && isnan(v)));
        FUZZ_CHECK(strpbrk(s, " \t\n\r\f\vxXiInN") == NULL);
    }
    check_double(v, tmp, sizeof tmp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char *z = malloc(size + 1);
    FUZZ_CHECK(z != NULL);
    if (size > 0)
        memcpy(z, data, size);
    z[size] = '\0';

    check_label_value(s, size);
    check_help_text(z);
    check_sanitize(z);
    check_parse_value(z);

    unsigned char bits[8] = {0};
    memcpy(bits, data, size < 8 ? size : 8);
    double v;
    memcpy(&v, bits, sizeof v);
    char tmp[64];
    check_double(v, tmp, sizeof tmp);

    free(z);
    return 0;
}
