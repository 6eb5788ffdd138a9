/*
 * dsn: data source names. See dsn.h for the contract.
 *
 * libpq's PQconninfoParse does the parsing, so the options accepted are
 * exactly libpq's. This file adds what libpq does not: the server label, a
 * masked form for humans, checks libpq leaves to connection time (ports),
 * and error messages that are safe to print.
 *
 * Invariants kept here:
 * - The password (and sslpassword) only ever lives in the values array.
 *   Masking finds the secret regions of the text ("spans") and replaces
 *   each with "xxxxx". For text that parsed, libpq's own grammar is used;
 *   for text that did not, the search is deliberately generous, so that a
 *   password with an unencoded '@', '/', '?', '&' or ',' stays hidden whole
 *   even where libpq would cut it.
 * - Text that parses but that libpq reads differently from what its author
 *   meant is refused, because pieces of the password would end up in the
 *   host, the port and so the server label: a URI with an unencoded '@' in
 *   the host or path, and a DATA_SOURCE_NAME element that a secret crosses
 *   (the list is split on ',' before anything else).
 * - When the text parsed, every secret libpq found must lie inside a masked
 *   region; if not, the masked form is rebuilt from the options instead.
 * - libpq quotes pieces of the input in its messages (for example
 *   'invalid percent-encoded token: "50%zz"', which may be the whole
 *   password), so its reason is scrubbed of every secret before printing.
 */
#include "dsn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "buf.h"

#define MASK "xxxxx"
#define MASK_LEN 5
#define MAX_FILE_SIZE (1024 * 1024) /* a *_FILE holds one line; refuse /dev/zero */

/* A region [a, b) of a DSN text that holds a secret. */
typedef struct span {
    size_t a, b;
} span;

typedef struct span_list {
    span *v;
    size_t n, cap;
} span_list;

typedef struct str_list {
    char **v;
    size_t n, cap;
} str_list;

static void spans_add(span_list *l, size_t a, size_t b)
{
    if (b <= a)
        return;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        l->v = pp_realloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n].a = a;
    l->v[l->n].b = b;
    l->n++;
}

static void spans_free(span_list *l)
{
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* Sorts by start and merges overlapping or adjacent spans. */
static void spans_merge(span_list *l)
{
    for (size_t i = 1; i < l->n; i++) {
        span s = l->v[i];
        size_t j = i;
        while (j > 0 && l->v[j - 1].a > s.a) {
            l->v[j] = l->v[j - 1];
            j--;
        }
        l->v[j] = s;
    }
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (k > 0 && l->v[i].a <= l->v[k - 1].b) {
            if (l->v[i].b > l->v[k - 1].b)
                l->v[k - 1].b = l->v[i].b;
        } else {
            l->v[k++] = l->v[i];
        }
    }
    l->n = k;
}

/* Returns t[0, len) with every span replaced by MASK; malloc'd. */
static char *spans_apply(const char *t, size_t len, span_list *l)
{
    pp_buf b = PP_BUF_INIT;
    size_t pos = 0;

    spans_merge(l);
    pp_buf_reserve(&b, len + MASK_LEN * l->n);
    for (size_t i = 0; i < l->n; i++) {
        pp_buf_append(&b, t + pos, l->v[i].a - pos);
        pp_buf_append(&b, MASK, MASK_LEN);
        pos = l->v[i].b;
    }
    pp_buf_append(&b, t + pos, len - pos);
    return pp_buf_steal(&b, NULL);
}

static void strs_add(str_list *l, char *s)
{
    if (s == NULL || s[0] == '\0') {
        free(s);
        return;
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        l->v = pp_realloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = s;
}

static void strs_free(str_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool kw_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Index of the first c in t[from, to), or to. */
static size_t find(const char *t, size_t from, size_t to, char c)
{
    for (size_t i = from; i < to; i++) {
        if (t[i] == c)
            return i;
    }
    return to;
}

/* Index of the last c in t[from, to), or to. */
static size_t rfind(const char *t, size_t from, size_t to, char c)
{
    for (size_t i = to; i > from; i--) {
        if (t[i - 1] == c)
            return i - 1;
    }
    return to;
}

/* Case-insensitive search for word in t[from, to); returns its index or to. */
static size_t find_word(const char *t, size_t from, size_t to, const char *word)
{
    size_t wn = strlen(word);
    for (size_t i = from; i + wn <= to; i++) {
        size_t j = 0;
        while (j < wn && lower(t[i + j]) == word[j])
            j++;
        if (j == wn)
            return i;
    }
    return to;
}

/* "password" and "sslpassword" are the secrets libpq knows; matching any
 * keyword that ends so also covers misspelt or future ones. */
static bool secret_keyword(const char *k, size_t n)
{
    static const char suffix[] = "password";
    size_t sn = sizeof suffix - 1;
    if (n < sn)
        return false;
    for (size_t i = 0; i < sn; i++) {
        if (lower(k[n - sn + i]) != suffix[i])
            return false;
    }
    return true;
}

static size_t uri_prefix_len(const char *t, size_t len)
{
    if (len >= 13 && memcmp(t, "postgresql://", 13) == 0)
        return 13;
    if (len >= 11 && memcmp(t, "postgres://", 11) == 0)
        return 11;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = pp_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* Percent-decodes t[0, n); bad escapes are kept as they are. */
static char *pct_decode(const char *t, size_t n)
{
    char *o = pp_malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (t[i] == '%' && i + 2 < n && (hi = hexval(t[i + 1])) >= 0 &&
            (lo = hexval(t[i + 2])) >= 0) {
            o[k++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            o[k++] = t[i];
        }
    }
    o[k] = '\0';
    return o;
}

/* Removes libpq's key=value backslash escapes from t[0, n). */
static char *unescape(const char *t, size_t n)
{
    char *o = pp_malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '\\' && i + 1 < n)
            i++;
        o[k++] = t[i];
    }
    o[k] = '\0';
    return o;
}

static void put_urlencoded(pp_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        unsigned char c = *p;
        if (kw_char((char)c) || c == '-' || c == '.' || c == '~') {
            pp_buf_putc(b, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 0xF]};
            pp_buf_append(b, e, 3);
        }
    }
}

/*
 * The userinfo of a URI-like text t[start, end) (start is just after
 * "://"). Trusted (the text parsed): libpq's own rule, the userinfo ends at
 * the first '@' unless a '/' comes first. Otherwise the password runs from
 * the first ':' to the last '@' before the first '?' that follows the first
 * '@', which keeps a password with an unencoded '@', '/' or '?' hidden
 * whole. Returns the index just after the userinfo, or start if none.
 */
static size_t userinfo_spans(const char *t, size_t start, size_t end, bool trusted, span_list *out)
{
    size_t at;
    if (trusted) {
        at = start;
        while (at < end && t[at] != '@' && t[at] != '/')
            at++;
        if (at == end || t[at] == '/')
            return start;
    } else {
        size_t first_at = find(t, start, end, '@');
        if (first_at == end)
            return start;
        at = rfind(t, first_at, find(t, first_at, end, '?'), '@');
    }
    size_t colon = find(t, start, at, ':');
    if (colon < at)
        spans_add(out, colon + 1, at);
    return at + 1;
}

/*
 * URI query parameters t[start, end). libpq percent-decodes the keys too,
 * so "pass%77ord" is a password. When the text did not parse (!trusted) a
 * password value may hold an unencoded '&', so it is hidden to the end.
 */
static void query_spans(const char *t, size_t start, size_t end, bool trusted, span_list *out)
{
    size_t p = start;
    while (p < end) {
        size_t amp = find(t, p, end, '&');
        size_t eq = find(t, p, amp, '=');
        if (eq < amp) {
            char *key = pct_decode(t + p, eq - p);
            bool secret = secret_keyword(key, strlen(key));
            free(key);
            if (secret) {
                spans_add(out, eq + 1, trusted ? amp : end);
                if (!trusted)
                    return;
            }
        }
        p = amp + 1;
    }
}

static void uri_spans(const char *t, size_t start, size_t end, bool trusted, span_list *out)
{
    size_t host = userinfo_spans(t, start, end, trusted, out);
    size_t q = find(t, host, end, '?');
    if (q < end)
        query_spans(t, q + 1, end, trusted, out);
}

/*
 * Text that is not a clean key=value pair (a mistyped URI, a value that
 * embeds one): hide anything after a "password=" and a URI-style userinfo.
 */
static void loose_spans(const char *t, size_t a, size_t b, span_list *out)
{
    size_t w = find_word(t, a, b, "password");
    while (w < b) {
        size_t j = w + 8;
        while (j < b && is_ws(t[j]))
            j++;
        if (j < b && t[j] == '=') {
            spans_add(out, j + 1, b);
            break;
        }
        w = find_word(t, w + 1, b, "password");
    }
    size_t s = a;
    for (size_t i = a; i + 3 <= b; i++) {
        if (memcmp(t + i, "://", 3) == 0) {
            s = i + 3;
            break;
        }
    }
    userinfo_spans(t, s, b, false, out);
}

/*
 * A libpq key=value string t[start, end): keyword, optional spaces, '=',
 * optional spaces, then a value that is either single-quoted or runs to the
 * next space, with backslash escapes in both.
 */
static void kv_spans(const char *t, size_t start, size_t end, span_list *out)
{
    size_t i = start;
    while (i < end) {
        while (i < end && is_ws(t[i]))
            i++;
        if (i >= end)
            break;

        size_t k = i;
        bool valid = true;
        while (i < end && !is_ws(t[i]) && t[i] != '=') {
            if (!kw_char(t[i]))
                valid = false;
            i++;
        }
        if (!valid) {
            /* Not a keyword: libpq will reject it and quote it. */
            while (i < end && !is_ws(t[i]))
                i++;
            loose_spans(t, k, i, out);
            continue;
        }
        bool secret = secret_keyword(t + k, i - k);
        while (i < end && is_ws(t[i]))
            i++;
        if (i >= end || t[i] != '=') {
            /* "password secret": libpq stops at the missing '=', but the
             * next word is most likely the password. */
            if (secret) {
                size_t v = i;
                while (i < end && !is_ws(t[i]))
                    i++;
                spans_add(out, v, i);
            }
            continue;
        }
        i++;
        while (i < end && is_ws(t[i]))
            i++;

        size_t v, vend;
        if (i < end && t[i] == '\'') {
            v = ++i;
            while (i < end && t[i] != '\'') {
                if (t[i] == '\\' && i + 1 < end)
                    i++;
                i++;
            }
            if (i >= end) {
                /* Unterminated: nothing after the quote can be trusted. A
                 * secret is hidden to the end; otherwise the rest is read
                 * again as pairs, in case a password follows. */
                if (secret) {
                    spans_add(out, v, end);
                    break;
                }
                i = v;
                continue;
            }
            vend = i++;
        } else {
            v = i;
            while (i < end && !is_ws(t[i])) {
                if (t[i] == '\\' && i + 1 < end)
                    i++;
                i++;
            }
            vend = i;
        }
        if (secret)
            spans_add(out, v, vend);
        else
            loose_spans(t, v, vend, out); /* e.g. dbname=postgresql://u:pw@h */
    }
}

/* The secret regions of one DSN text, as libpq would read it. */
static void mask_spans(const char *t, size_t len, bool trusted, span_list *out)
{
    size_t pl = uri_prefix_len(t, len);
    if (pl > 0)
        uri_spans(t, pl, len, trusted, out);
    else
        kv_spans(t, 0, len, out);
}

char *pp_dsn_mask_text(const char *text)
{
    span_list sp = {0};
    if (text == NULL)
        return NULL;
    size_t len = strlen(text);
    mask_spans(text, len, false, &sp);
    char *m = spans_apply(text, len, &sp);
    spans_free(&sp);
    return m;
}

static void put_kv_value(pp_buf *b, const char *v)
{
    bool quote = v[0] == '\0';
    for (const char *p = v; *p != '\0'; p++) {
        if (is_ws(*p) || *p == '\'' || *p == '\\')
            quote = true;
    }
    if (!quote) {
        pp_buf_puts(b, v);
        return;
    }
    pp_buf_putc(b, '\'');
    for (const char *p = v; *p != '\0'; p++) {
        if (*p == '\'' || *p == '\\')
            pp_buf_putc(b, '\\');
        pp_buf_putc(b, *p);
    }
    pp_buf_putc(b, '\'');
}

/* The options as a key=value string with the secrets masked. */
static char *canonical(const pp_dsn *d)
{
    pp_buf b = PP_BUF_INIT;
    pp_buf_reserve(&b, 64);
    for (size_t i = 0; i < d->n; i++) {
        if (i > 0)
            pp_buf_putc(&b, ' ');
        pp_buf_puts(&b, d->keywords[i]);
        pp_buf_putc(&b, '=');
        if (secret_keyword(d->keywords[i], strlen(d->keywords[i]))) {
            pp_buf_puts(&b, MASK);
        } else {
            /* a dbname may itself be a connection string */
            span_list sp = {0};
            size_t n = strlen(d->values[i]);
            loose_spans(d->values[i], 0, n, &sp);
            char *v = spans_apply(d->values[i], n, &sp);
            put_kv_value(&b, v);
            free(v);
            spans_free(&sp);
        }
    }
    return pp_buf_steal(&b, NULL);
}

/* Does some span, raw, percent-decoded or unescaped, contain value? */
static bool spans_cover(const char *t, const span_list *l, const char *value)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *s = t + l->v[i].a;
        size_t n = l->v[i].b - l->v[i].a;
        char *raw = dup_n(s, n);
        char *dec = pct_decode(s, n);
        char *unesc = unescape(s, n);
        bool found = strstr(raw, value) != NULL || strstr(dec, value) != NULL ||
                     strstr(unesc, value) != NULL;
        free(raw);
        free(dec);
        free(unesc);
        if (found)
            return true;
    }
    return false;
}

/*
 * The masked form of s. extra holds secret regions found by looking at the
 * whole DATA_SOURCE_NAME list (a password with a ',' spans two elements).
 * d, when it holds parsed options, is checked against: a secret libpq read
 * that is not exactly one masked region means the text is ambiguous, and
 * the form rebuilt from the options is used instead.
 */
static char *masked_form(const char *s, bool trusted, const span_list *extra, const pp_dsn *d)
{
    size_t len = strlen(s);
    span_list sp = {0};
    char *m = NULL;

    mask_spans(s, len, trusted, &sp);
    spans_merge(&sp);
    for (size_t i = 0; i < d->n; i++) {
        if (secret_keyword(d->keywords[i], strlen(d->keywords[i])) &&
            !spans_cover(s, &sp, d->values[i])) {
            m = canonical(d);
            goto cleanup;
        }
    }
    for (size_t i = 0; extra != NULL && i < extra->n; i++)
        spans_add(&sp, extra->v[i].a, extra->v[i].b);
    m = spans_apply(s, len, &sp);
cleanup:
    spans_free(&sp);
    return m;
}

/* Does needle[0, n) occur in hay? */
static bool contains(const char *hay, const char *needle, size_t n)
{
    size_t hn = strlen(hay);
    for (size_t i = 0; i + n <= hn; i++) {
        if (memcmp(hay + i, needle, n) == 0)
            return true;
    }
    return false;
}

/*
 * Removes every secret from a libpq message. libpq quotes fragments of the
 * input in double quotes: a fragment that is part of a secret becomes MASK,
 * and secrets inside a fragment are replaced. Outside quotes the text is
 * libpq's own; only secrets of 4 bytes or more are replaced there, so that
 * a password like "in" does not mangle the English.
 */
static char *scrub(const char *reason, const str_list *secrets)
{
    pp_buf b = PP_BUF_INIT;
    size_t n = strlen(reason);
    bool in_quote = false;

    while (n > 0 && is_ws(reason[n - 1]))
        n--;
    pp_buf_reserve(&b, n + 16);
    for (size_t i = 0; i < n;) {
        if (reason[i] == '"') {
            pp_buf_putc(&b, '"');
            i++;
            in_quote = !in_quote;
            if (!in_quote)
                continue;
            size_t close = find(reason, i, n, '"');
            for (size_t k = 0; close > i && k < secrets->n; k++) {
                if (contains(secrets->v[k], reason + i, close - i)) {
                    pp_buf_puts(&b, MASK);
                    i = close;
                    break;
                }
            }
            continue;
        }
        size_t best = 0;
        for (size_t k = 0; k < secrets->n; k++) {
            size_t sn = strlen(secrets->v[k]);
            if (sn > best && (in_quote || sn >= 4) && sn <= n - i &&
                memcmp(reason + i, secrets->v[k], sn) == 0)
                best = sn;
        }
        if (best > 0) {
            pp_buf_puts(&b, MASK);
            i += best;
        } else {
            pp_buf_putc(&b, reason[i] == '\n' ? ' ' : reason[i]);
            i++;
        }
    }
    return pp_buf_steal(&b, NULL);
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/*
 * Writes "<what> "<masked s>": <reason>" with every secret removed. The
 * text is wrong in some way, so it is masked by the generous rules even
 * when libpq parsed it. A reason from_input quotes pieces of s (libpq's do)
 * and is scrubbed; a fixed reason is not, or its own quotes would be.
 */
static void report(const char *s, const span_list *extra, const char *known_secret, const pp_dsn *d,
                   const char *what, const char *reason, bool from_input, char *err, size_t errlen)
{
    size_t len = strlen(s);
    span_list sp = {0};
    str_list secrets = {0};

    mask_spans(s, len, false, &sp);
    for (size_t i = 0; extra != NULL && i < extra->n; i++)
        spans_add(&sp, extra->v[i].a, extra->v[i].b);
    spans_merge(&sp);
    for (size_t i = 0; i < sp.n; i++) {
        const char *p = s + sp.v[i].a;
        size_t n = sp.v[i].b - sp.v[i].a;
        char *raw = pp_malloc(n + 1);
        memcpy(raw, p, n);
        raw[n] = '\0';
        strs_add(&secrets, raw);
        strs_add(&secrets, pct_decode(p, n));
        strs_add(&secrets, unescape(p, n));
    }
    for (size_t i = 0; i < d->n; i++) {
        if (secret_keyword(d->keywords[i], strlen(d->keywords[i])))
            strs_add(&secrets, pp_strdup(d->values[i]));
    }
    if (known_secret != NULL) {
        pp_buf enc = PP_BUF_INIT;
        put_urlencoded(&enc, known_secret);
        strs_add(&secrets, pp_buf_steal(&enc, NULL));
        strs_add(&secrets, pp_strdup(known_secret));
    }

    char *masked = masked_form(s, false, extra, d);
    char *clean = from_input ? scrub(reason, &secrets) : pp_strdup(reason);
    set_err(err, errlen, "%s \"%s\": %s", what, masked, clean);
    free(masked);
    free(clean);
    strs_free(&secrets);
    spans_free(&sp);
}

static void wipe_free(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void pp_dsn_deinit(pp_dsn *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->keywords[i]);
        wipe_free(d->values[i]);
    }
    free(d->keywords);
    free(d->values);
    free(d->host);
    free(d->port);
    free(d->dbname);
    free(d->user);
    free(d->label);
    free(d->masked);
    memset(d, 0, sizeof *d);
}

const char *pp_dsn_get(const pp_dsn *d, const char *keyword)
{
    if (d == NULL)
        return NULL;
    for (size_t i = 0; i < d->n; i++) {
        if (strcmp(d->keywords[i], keyword) == 0)
            return d->values[i];
    }
    return NULL;
}

/* The first element of a comma list, or def when it is empty. */
static void put_first(pp_buf *b, const char *list, const char *def)
{
    size_t n = list != NULL ? strcspn(list, ",") : 0;
    if (n == 0)
        pp_buf_puts(b, def);
    else
        pp_buf_append(b, list, n);
}

/* Recomputes host, port, dbname, user and label from the options. */
static void derive(pp_dsn *d)
{
    const char *host = pp_dsn_get(d, "host");
    const char *port = pp_dsn_get(d, "port");
    pp_buf label = PP_BUF_INIT;

    free(d->host);
    free(d->port);
    free(d->dbname);
    free(d->user);
    free(d->label);
    d->host = pp_strdup(host != NULL ? host : "localhost");
    d->port = pp_strdup(port != NULL ? port : "5432");
    d->dbname = pp_strdup(pp_dsn_get(d, "dbname"));
    d->user = pp_strdup(pp_dsn_get(d, "user"));
    /* postgres_exporter's fingerprint: host:port; for a list, the first. */
    put_first(&label, host, "localhost");
    pp_buf_putc(&label, ':');
    put_first(&label, port, "5432");
    d->label = pp_buf_steal(&label, NULL);
}

void pp_dsn_set(pp_dsn *d, const char *keyword, const char *value)
{
    size_t i = 0;
    while (i < d->n && strcmp(d->keywords[i], keyword) != 0)
        i++;

    if (value == NULL || value[0] == '\0') {
        if (i == d->n)
            return;
        free(d->keywords[i]);
        wipe_free(d->values[i]);
        memmove(d->keywords + i, d->keywords + i + 1, (d->n - i) * sizeof(char *));
        memmove(d->values + i, d->values + i + 1, (d->n - i) * sizeof(char *));
        d->n--;
    } else if (i < d->n) {
        wipe_free(d->values[i]);
        d->values[i] = pp_strdup(value);
    } else {
        d->keywords = pp_realloc(d->keywords, (d->n + 2) * sizeof(char *));
        d->values = pp_realloc(d->values, (d->n + 2) * sizeof(char *));
        d->keywords[d->n] = pp_strdup(keyword);
        d->values[d->n] = pp_strdup(value);
        d->n++;
        d->keywords[d->n] = NULL;
        d->values[d->n] = NULL;
    }
    derive(d);
    /* The original text no longer says which server and database this is. */
    if (strcmp(keyword, "host") == 0 || strcmp(keyword, "hostaddr") == 0 ||
        strcmp(keyword, "port") == 0 || strcmp(keyword, "dbname") == 0 ||
        strcmp(keyword, "user") == 0 || d->masked == NULL) {
        free(d->masked);
        d->masked = canonical(d);
    }
}

/* Counts the elements of a comma list. */
static size_t list_len(const char *s)
{
    size_t n = 1;
    for (; *s != '\0'; s++)
        n += *s == ',';
    return n;
}

/*
 * libpq validates ports only when it connects; checking here turns a typo
 * into a start-up error instead of a failed scrape. Returns a malloc'd
 * reason, or NULL.
 */
static char *check_ports(const pp_dsn *d)
{
    const char *port = pp_dsn_get(d, "port");
    const char *host = pp_dsn_get(d, "host");
    pp_buf b = PP_BUF_INIT;

    if (port == NULL)
        return NULL;
    if (host == NULL)
        host = pp_dsn_get(d, "hostaddr");
    for (const char *p = port;;) {
        size_t n = strcspn(p, ",");
        long v = 0;
        bool ok = n <= 5;
        for (size_t i = 0; ok && i < n; i++) {
            ok = p[i] >= '0' && p[i] <= '9';
            v = v * 10 + (p[i] - '0');
        }
        if (!ok || (n > 0 && (v < 1 || v > 65535))) {
            pp_buf_printf(&b, "invalid port number \"%.*s\"", (int)n, p);
            return pp_buf_steal(&b, NULL);
        }
        if (p[n] == '\0')
            break;
        p += n + 1;
    }
    size_t np = list_len(port);
    size_t nh = host != NULL ? list_len(host) : 1;
    if (np > 1 && np != nh) {
        pp_buf_printf(&b, "could not match %zu port numbers to %zu hosts", np, nh);
        return pp_buf_steal(&b, NULL);
    }
    return NULL;
}

/*
 * A URI that libpq reads differently from what its author meant: an
 * unencoded '@' in the host (a password or user name holding '@') or in
 * the path (a password holding '/' then '@'). Accepting it would put
 * pieces of the password into the server label and the logs.
 */
static bool uri_ambiguous(const char *t, const pp_dsn *d)
{
    size_t len = strlen(t);
    size_t pl = uri_prefix_len(t, len);
    span_list ignored = {0};

    if (pl == 0)
        return false;
    const char *host = pp_dsn_get(d, "host");
    if (host != NULL && strchr(host, '@') != NULL)
        return true;
    size_t p = userinfo_spans(t, pl, len, true, &ignored);
    spans_free(&ignored);
    while (p < len && t[p] != '/' && t[p] != '?')
        p++;
    if (p < len && t[p] == '/') {
        size_t q = find(t, p, len, '?');
        if (find(t, p, q, '@') < q)
            return true;
    }
    return false;
}

/*
 * Parses s (NUL-terminated, already trimmed). extra, for an element of a
 * list, holds secret regions that cross into it from its neighbours: such
 * an element is a piece of a DSN cut at a ',' and is refused. On error, out
 * is left empty and err gets "<what> "<masked>": <reason>".
 */
static int parse_one(const char *s, const span_list *extra, const char *known_secret,
                     const char *what, pp_dsn *out, char *err, size_t errlen)
{
    PQconninfoOption *opts = NULL;
    char *pqerr = NULL;
    char *reason = NULL;
    bool from_input = true;
    int rc = -1;

    memset(out, 0, sizeof *out);
    if (extra != NULL && extra->n > 0) {
        reason = pp_strdup("the list is split on \",\" and this DSN continues in the next "
                           "element (write \",\" as %2C in a URI)");
        from_input = false;
        goto cleanup;
    }
    opts = PQconninfoParse(s, &pqerr);
    if (opts == NULL) {
        reason = pp_strdup(pqerr != NULL ? pqerr : "out of memory");
        goto cleanup;
    }

    size_t n = 0;
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
        n += o->val != NULL && o->val[0] != '\0';
    out->keywords = pp_calloc(n + 1, sizeof(char *));
    out->values = pp_calloc(n + 1, sizeof(char *));
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL || o->val[0] == '\0')
            continue;
        out->keywords[out->n] = pp_strdup(o->keyword);
        out->values[out->n] = pp_strdup(o->val);
        out->n++;
    }
    if (uri_ambiguous(s, out)) {
        reason = pp_strdup("ambiguous URI: percent-encode \"@\", \"/\" and \":\" in the user "
                           "name, password and database name (as %40, %2F and %3A)");
        from_input = false;
        goto cleanup;
    }
    reason = check_ports(out);
    if (reason != NULL)
        goto cleanup;
    derive(out);
    out->masked = masked_form(s, true, extra, out);
    rc = 0;

cleanup:
    if (rc != 0) {
        report(s, extra, known_secret, out, what, reason, from_input, err, errlen);
        pp_dsn_deinit(out);
    }
    free(reason);
    if (pqerr != NULL)
        PQfreemem(pqerr);
    if (opts != NULL) {
        /* libpq does not clear the copies it made */
        for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
            if (o->val != NULL && secret_keyword(o->keyword, strlen(o->keyword)))
                explicit_bzero(o->val, strlen(o->val));
        }
        PQconninfoFree(opts);
    }
    return rc;
}

/* Trims ASCII white space: returns the start, sets *n to the length. */
static const char *trim(const char *s, size_t len, size_t *n)
{
    while (len > 0 && is_ws(*s)) {
        s++;
        len--;
    }
    while (len > 0 && is_ws(s[len - 1]))
        len--;
    *n = len;
    return s;
}

int pp_dsn_parse(const char *text, pp_dsn *out, char *err, size_t errlen)
{
    size_t n;
    const char *t = trim(text, strlen(text), &n);
    char *s = dup_n(t, n);
    int rc = parse_one(s, NULL, NULL, "invalid DSN", out, err, errlen);
    wipe_free(s);
    return rc;
}

void pp_dsn_list_free(pp_dsn *list, size_t n)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        pp_dsn_deinit(&list[i]);
    free(list);
}

/* Does t[0, n) (trimmed) begin a DSN of its own: a URI or "keyword ="? */
static bool starts_dsn(const char *t, size_t n)
{
    size_t i = 0;
    if (uri_prefix_len(t, n) > 0)
        return true;
    while (i < n && kw_char(t[i]))
        i++;
    if (i == 0)
        return false;
    while (i < n && is_ws(t[i]))
        i++;
    return i < n && t[i] == '=';
}

typedef struct element {
    size_t ra, rb; /* as split on ',' */
    size_t a, b;   /* trimmed */
    size_t group;  /* index of the element that starts its group */
} element;

int pp_dsn_parse_list(const char *text, pp_dsn **out, size_t *n, char *err, size_t errlen)
{
    size_t len = strlen(text);
    size_t count = list_len(text);
    element *el = pp_calloc(count, sizeof *el);
    pp_dsn *list = pp_calloc(count, sizeof *list);
    span_list gspans = {0}, extra = {0};
    size_t parsed = 0, cur_group = (size_t)-1;
    int rc = -1;

    *out = NULL;
    *n = 0;
    for (size_t i = 0, p = 0; i < count; i++) {
        size_t c = find(text, p, len, ',');
        size_t tn;
        const char *t = trim(text + p, c - p, &tn);
        el[i].ra = p;
        el[i].rb = c;
        el[i].a = (size_t)(t - text);
        el[i].b = el[i].a + tn;
        el[i].group = i == 0 || starts_dsn(t, tn) ? i : el[i - 1].group;
        p = c + 1;
    }

    for (size_t i = 0; i < count; i++) {
        if (el[i].a == el[i].b) {
            set_err(err, errlen, "DSN %zu is empty", i + 1);
            goto cleanup;
        }
        /* A password holding ',' is split over several elements; mask each
         * piece by looking at the whole group it belongs to. */
        if (el[i].group != cur_group) {
            size_t g = el[i].group, last = g;
            cur_group = g;
            while (last + 1 < count && el[last + 1].group == g)
                last++;
            gspans.n = 0;
            if (last > g)
                mask_spans(text + el[g].ra, el[last].rb - el[g].ra, false, &gspans);
            for (size_t k = 0; k < gspans.n; k++) {
                gspans.v[k].a += el[g].ra;
                gspans.v[k].b += el[g].ra;
            }
        }
        extra.n = 0;
        for (size_t k = 0; k < gspans.n; k++) {
            size_t a = gspans.v[k].a > el[i].a ? gspans.v[k].a : el[i].a;
            size_t b = gspans.v[k].b < el[i].b ? gspans.v[k].b : el[i].b;
            if (a < b)
                spans_add(&extra, a - el[i].a, b - el[i].a);
        }

        char what[48];
        snprintf(what, sizeof what, "invalid DSN %zu", i + 1);
        char *s = dup_n(text + el[i].a, el[i].b - el[i].a);
        int prc = parse_one(s, &extra, NULL, what, &list[i], err, errlen);
        wipe_free(s);
        if (prc != 0)
            goto cleanup;
        parsed++;
    }
    *out = list;
    *n = count;
    list = NULL;
    rc = 0;

cleanup:
    pp_dsn_list_free(list, parsed);
    spans_free(&gspans);
    spans_free(&extra);
    free(el);
    return rc;
}

static const char *std_getenv(const char *name)
{
    return getenv(name);
}

/* Reads a whole small file and trims it; on error returns -1 with errno
 * set (EFBIG for a file over MAX_FILE_SIZE). */
static int read_trimmed(const char *path, char **out)
{
    pp_buf b = PP_BUF_INIT;
    char chunk[4096];
    size_t got;
    int rc = -1, saved = 0;
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        saved = errno;
        goto cleanup;
    }
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + got > MAX_FILE_SIZE) {
            saved = EFBIG;
            goto cleanup;
        }
        pp_buf_append(&b, chunk, got);
    }
    if (ferror(f)) {
        saved = errno != 0 ? errno : EIO;
        goto cleanup;
    }
    size_t n;
    const char *t = trim(b.data != NULL ? b.data : "", b.len, &n);
    *out = dup_n(t, n);
    rc = 0;

cleanup:
    if (f != NULL)
        fclose(f);
    if (b.data != NULL)
        explicit_bzero(b.data, b.len);
    pp_buf_deinit(&b);
    explicit_bzero(chunk, sizeof chunk);
    errno = saved;
    return rc;
}

typedef struct env_source {
    const char *var;      /* e.g. DATA_SOURCE_USER */
    const char *file_var; /* e.g. DATA_SOURCE_USER_FILE */
} env_source;

/* NAME_FILE (its contents, trimmed) wins over NAME, as in postgres_exporter.
 * Sets *used to the variable the value came from. */
static int read_source(const char *(*get)(const char *), const env_source *src, char **value,
                       const char **used, char *err, size_t errlen)
{
    const char *path = get(src->file_var);
    if (path != NULL && path[0] != '\0') {
        *used = src->file_var;
        if (read_trimmed(path, value) != 0) {
            set_err(err, errlen, "%s: could not read file \"%s\": %s", src->file_var, path,
                    strerror(errno));
            return -1;
        }
        return 0;
    }
    const char *v = get(src->var);
    *used = src->var;
    *value = pp_strdup(v != NULL ? v : "");
    return 0;
}

int pp_dsn_from_env(const char *(*getenv_fn)(const char *), pp_dsn **out, size_t *n, char *err,
                    size_t errlen)
{
    static const env_source user_src = {"DATA_SOURCE_USER", "DATA_SOURCE_USER_FILE"};
    static const env_source pass_src = {"DATA_SOURCE_PASS", "DATA_SOURCE_PASS_FILE"};
    static const env_source uri_src = {"DATA_SOURCE_URI", "DATA_SOURCE_URI_FILE"};
    char *user = NULL, *pass = NULL, *uri = NULL, *tmp = NULL;
    const char *user_var, *pass_var, *uri_var = uri_src.var;
    pp_buf dsn = PP_BUF_INIT;
    int rc = -1;

    *out = NULL;
    *n = 0;
    if (getenv_fn == NULL)
        getenv_fn = std_getenv;
    tmp = pp_malloc(errlen > 0 ? errlen : 1);
    tmp[0] = '\0';

    const char *name = getenv_fn("DATA_SOURCE_NAME");
    if (name != NULL && name[0] != '\0') {
        rc = pp_dsn_parse_list(name, out, n, tmp, errlen);
        if (rc != 0)
            set_err(err, errlen, "DATA_SOURCE_NAME: %s", tmp);
        goto cleanup;
    }

    if (read_source(getenv_fn, &user_src, &user, &user_var, err, errlen) != 0 ||
        read_source(getenv_fn, &pass_src, &pass, &pass_var, err, errlen) != 0 ||
        read_source(getenv_fn, &uri_src, &uri, &uri_var, err, errlen) != 0)
        goto cleanup;
    size_t un;
    const char *u = trim(uri, strlen(uri), &un);
    if (un == 0) {
        rc = 0; /* nothing configured: the caller decides what that means */
        goto cleanup;
    }

    pp_buf_puts(&dsn, "postgresql://");
    put_urlencoded(&dsn, user);
    pp_buf_putc(&dsn, ':');
    put_urlencoded(&dsn, pass);
    pp_buf_putc(&dsn, '@');
    pp_buf_append(&dsn, u, un);

    pp_dsn *list = pp_calloc(1, sizeof *list);
    if (parse_one(dsn.data, NULL, pass, "invalid DSN", list, tmp, errlen) != 0) {
        set_err(err, errlen, "%s (with %s and %s): %s", uri_var, user_var, pass_var, tmp);
        free(list);
        goto cleanup;
    }
    *out = list;
    *n = 1;
    rc = 0;

cleanup:
    wipe_free(user);
    wipe_free(pass);
    wipe_free(uri);
    if (dsn.data != NULL)
        explicit_bzero(dsn.data, dsn.len);
    pp_buf_deinit(&dsn);
    free(tmp);
    return rc;
}
