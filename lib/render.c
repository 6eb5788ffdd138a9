/*
 * render: the Prometheus text exposition writer. See render.h for the
 * contract.
 *
 * Invariants kept here:
 * - Every escaper reserves the worst case for its input once and then writes
 *   straight into the buffer, so rendering a page is linear in its size.
 * - Label values and HELP text leave this module as valid UTF-8: a byte
 *   sequence that is not UTF-8 becomes one U+FFFD per maximal ill-formed
 *   subpart (the Unicode "best practice", what Python and browsers do).
 * - Numbers are formatted without locale-dependent helpers beyond printf's
 *   "%g", which only differs in the decimal point; pgpulse never calls
 *   setlocale(), so it stays ".".
 */
#include "render.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD in UTF-8 */

const char *pp_metric_type_name(pp_metric_type t)
{
    switch (t) {
    case PP_METRIC_GAUGE:
        return "gauge";
    case PP_METRIC_COUNTER:
        return "counter";
    case PP_METRIC_UNTYPED:
        return "untyped";
    case PP_METRIC_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

int pp_render_utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    int len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return -1;
    }
    if (n < 2 || p[1] < lo || p[1] > hi)
        return -1;
    for (int i = 2; i < len; i++) {
        if ((size_t)i >= n || p[i] < 0x80 || p[i] > 0xBF)
            return -i;
    }
    return len;
}

/* 0: copy as is; 1: needs an escape; 2: start of a multi-byte sequence. */
static unsigned char byte_class(unsigned char c, bool quote_too)
{
    if (c >= 0x80)
        return 2;
    if (c == '\\' || c == '\n' || (quote_too && c == '"'))
        return 1;
    return 0;
}

/*
 * The shared escaper for label values (quote_too) and HELP text. The fast
 * path finds the first byte that needs work and copies the prefix with one
 * memcpy; values with nothing to escape (almost all of them) never reach
 * the byte-by-byte loop.
 */
static void escape(pp_buf *b, const char *s, size_t n, bool quote_too)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < n) {
        unsigned char k = byte_class(p[i], quote_too);
        if (k == 0) {
            i++;
        } else if (k == 2) {
            int len = pp_render_utf8_seq(p + i, n - i);
            if (len < 0)
                break;
            i += (size_t)len;
        } else {
            break;
        }
    }
    pp_buf_append(b, s, i);
    if (i == n)
        return;

    /* Worst case: every remaining byte becomes a 3-byte U+FFFD. */
    size_t rest = n - i;
    if (rest > SIZE_MAX / 3)
        abort(); /* impossible: no such object fits in memory */
    pp_buf_reserve(b, rest * 3);
    char *o = b->data + b->len;
    while (i < n) {
        unsigned char c = p[i];
        unsigned char k = byte_class(c, quote_too);
        if (k == 0) {
            *o++ = (char)c;
            i++;
        } else if (k == 1) {
            *o++ = '\\';
            *o++ = c == '\n' ? 'n' : (char)c;
            i++;
        } else {
            int len = pp_render_utf8_seq(p + i, n - i);
            if (len > 0) {
                memcpy(o, p + i, (size_t)len);
                o += len;
                i += (size_t)len;
            } else {
                memcpy(o, REPLACEMENT, 3);
                o += 3;
                i += (size_t)-len;
            }
        }
    }
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

void pp_render_label_value(pp_buf *b, const char *s, size_t n)
{
    escape(b, s, n, true);
}

/* Invalid UTF-8 is replaced here too: the page must stay valid UTF-8. */
void pp_render_help_text(pp_buf *b, const char *s)
{
    if (s == NULL)
        return;
    escape(b, s, strlen(s), false);
}

void pp_render_header(pp_buf *b, const char *name, const char *help, pp_metric_type t)
{
    size_t nlen = strlen(name);
    const char *type = pp_metric_type_name(t);

    pp_buf_reserve(b, 2 * nlen + 32);
    pp_buf_append(b, "# HELP ", 7);
    pp_buf_append(b, name, nlen);
    pp_buf_putc(b, ' ');
    pp_render_help_text(b, help);
    pp_buf_append(b, "\n# TYPE ", 8);
    pp_buf_append(b, name, nlen);
    pp_buf_putc(b, ' ');
    pp_buf_puts(b, type);
    pp_buf_putc(b, '\n');
}

/* Appends an integer of magnitude below 2^63 without printf. */
static void put_int(pp_buf *b, int64_t v)
{
    char tmp[24];
    char *e = tmp + sizeof tmp;
    char *p = e;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    pp_buf_append(b, p, (size_t)(e - p));
}

/* The text of v, a finite non-integer, when its shortest form has at
 * most 15 significant digits and |v| is within [1e-4, 1e15), as "%.15g"
 * writes it (no exponent there), without printf and strtod: the fewest
 * decimals d such that v's digits to d places, read back, are v. That is
 * most values (ratios, seconds, sizes); 0 when v is not such a value.
 * out has room for 24 bytes. */
static size_t fixed_shortest(double v, char *out)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,
                                   1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19};
    double a = fabs(v);
    if (!(a >= 1e-4 && a < 1e15))
        return 0;
    for (size_t d = 1; d < sizeof(pow10) / sizeof(pow10[0]); d++) {
        double m = nearbyint(a * pow10[d]);
        if (m >= 1e15)
            return 0; /* more than 15 significant digits */
        if (m / pow10[d] != a)
            continue; /* exact: m and 10^d are exact doubles, / rounds once */
        char digits[24];
        char *e = digits + sizeof(digits), *p = e;
        for (uint64_t u = (uint64_t)m; u != 0; u /= 10)
            *--p = (char)('0' + u % 10);
        size_t n = (size_t)(e - p), len = 0;
        while (n > 0 && p[n - 1] == '0' && d > 0) { /* not expected: d is the fewest */
            n--;
            d--;
        }
        if (d == 0)
            return 0; /* an integer: not expected either */
        if (v < 0)
            out[len++] = '-';
        if (n <= d) {
            out[len++] = '0';
            out[len++] = '.';
            for (size_t z = n; z < d; z++)
                out[len++] = '0';
            memcpy(out + len, p, n);
            return len + n;
        }
        memcpy(out + len, p, n - d);
        len += n - d;
        out[len++] = '.';
        memcpy(out + len, p + n - d, d);
        return len + d;
    }
    return 0;
}

void pp_render_double(pp_buf *b, double v)
{
    if (isnan(v)) {
        pp_buf_append(b, "NaN", 3);
        return;
    }
    if (isinf(v)) {
        pp_buf_append(b, v > 0 ? "+Inf" : "-Inf", 4);
        return;
    }
    /* 2^53: below it every integer is exact; -0 compares equal to 0 and
     * prints as "0". */
    if (fabs(v) < 9007199254740992.0 && v == trunc(v)) {
        put_int(b, (int64_t)v);
        return;
    }
    char tmp[32];
    size_t fixed = fixed_shortest(v, tmp);
    if (fixed > 0) {
        pp_buf_append(b, tmp, fixed);
        return;
    }
    int len = 0;
    for (int prec = 15; prec <= 17; prec++) {
        len = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (len <= 0 || (size_t)len >= sizeof tmp)
            abort(); /* impossible: %.17g of a finite double is at most 24 bytes */
        if (strtod(tmp, NULL) == v)
            break; /* 17 digits always read back, so the last pass ends here */
    }
    pp_buf_append(b, tmp, (size_t)len);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* ASCII case-insensitive equality; avoids the locale in strcasecmp. */
static bool word_eq(const char *s, const char *lower)
{
    for (; *s != '\0' && *lower != '\0'; s++, lower++) {
        char c = *s;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != *lower)
            return false;
    }
    return *s == '\0' && *lower == '\0';
}

int pp_render_parse_value(const char *text, double *out)
{
    if (text == NULL || text[0] == '\0')
        return -1;

    if (word_eq(text, "t") || word_eq(text, "true") || word_eq(text, "on")) {
        *out = 1;
        return 0;
    }
    if (word_eq(text, "f") || word_eq(text, "false") || word_eq(text, "off")) {
        *out = 0;
        return 0;
    }
    if (strcmp(text, "NaN") == 0) {
        *out = NAN;
        return 0;
    }

    const char *p = text;
    bool neg = false;
    if (*p == '+' || *p == '-') {
        neg = *p == '-';
        p++;
    }
    if (strcmp(p, "Infinity") == 0) {
        *out = neg ? -INFINITY : INFINITY;
        return 0;
    }

    /* Check the grammar ourselves: strtod would also take leading spaces,
     * hex, "inf" and "nan(...)", none of which PostgreSQL prints. */
    size_t int_digits = 0, frac_digits = 0;
    bool simple = true;
    while (is_digit(p[int_digits]))
        int_digits++;
    const char *q = p + int_digits;
    if (*q == '.') {
        simple = false;
        q++;
        while (is_digit(q[frac_digits]))
            frac_digits++;
        q += frac_digits;
    }
    if (int_digits + frac_digits == 0)
        return -1;
    if (*q == 'e' || *q == 'E') {
        simple = false;
        q++;
        if (*q == '+' || *q == '-')
            q++;
        if (!is_digit(*q))
            return -1;
        while (is_digit(*q))
            q++;
    }
    if (*q != '\0')
        return -1;

    /* Most samples are small integers: no need for strtod. */
    if (simple && int_digits <= 15) {
        int64_t v = 0;
        for (size_t i = 0; i < int_digits; i++)
            v = v * 10 + (p[i] - '0');
        *out = neg ? -(double)v : (double)v;
        return 0;
    }

    /* Out of range gives +-HUGE_VAL (infinity) or a denormal/zero, which is
     * the closest sample value there is; accept both. */
    char *end;
    double v = strtod(text, &end);
    if (end != q)
        return -1;
    *out = v;
    return 0;
}

static bool name_char(char c, bool first, bool colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return true;
    if (colon && c == ':')
        return true;
    return !first && is_digit(c);
}

bool pp_render_valid_metric_name(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return false;
    for (size_t i = 0; s[i] != '\0'; i++) {
        if (!name_char(s[i], i == 0, true))
            return false;
    }
    return true;
}

bool pp_render_valid_label_name(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return false;
    if (s[0] == '_' && s[1] == '_')
        return false; /* reserved for Prometheus' internal use */
    for (size_t i = 0; s[i] != '\0'; i++) {
        if (!name_char(s[i], i == 0, false))
            return false;
    }
    return true;
}

void pp_render_sanitize_name(pp_buf *b, const char *s)
{
    size_t n = strlen(s);

    pp_buf_reserve(b, n + 1);
    char *o = b->data + b->len;
    if (is_digit(s[0]))
        *o++ = '_';
    for (size_t i = 0; i < n; i++)
        *o++ = name_char(s[i], false, true) ? s[i] : '_';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

void pp_render_labels(pp_buf *b, const pp_label *labels, size_t n)
{
    if (n == 0)
        return;
    pp_buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        const char *v = labels[i].value != NULL ? labels[i].value : "";
        size_t vlen = strlen(v);
        size_t nlen = strlen(labels[i].name);
        /* name, =", value if nothing to escape, ", comma or brace */
        pp_buf_reserve(b, nlen + vlen + 4);
        if (i > 0)
            pp_buf_putc(b, ',');
        pp_buf_append(b, labels[i].name, nlen);
        pp_buf_append(b, "=\"", 2);
        pp_render_label_value(b, v, vlen);
        pp_buf_putc(b, '"');
    }
    pp_buf_putc(b, '}');
}
