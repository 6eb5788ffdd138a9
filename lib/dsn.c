/*
 * dsn: data source names. See dsn.h for the contract.
 *
 * libpq's PQconninfoParse does the parsing, so the options accepted are
 * exactly libpq's. This file adds what libpq does not: the server label, a
 * masked form for humans, checks libpq leaves to connection time (hosts and
 * ports), and error messages that are safe to print.
 *
 * Invariants kept here:
 * - The password (and sslpassword) only ever lives in the values array.
 * - A DSN text reaches a human only through scan(), which reads it with
 *   libpq's grammar and lists the regions to hide ("spans", each shown as
 *   "xxxxx"). Two readings:
 *   exact, for a text that libpq parsed and that pgpulse accepts: the
 *   secrets are hidden, and the values that may hold a connection string
 *   of their own ('=', or in key=value text '@'), with all that follows
 *   them if they name a password or hold "://";
 *   conservative, for any other text: also everything from the first value
 *   that cannot be vouched for (a secret, an unknown keyword, a host or
 *   port that is not a name or a number, the point where the syntax
 *   breaks) to the end; in key=value text every value, as nobody knows
 *   where a password in it begins; and a URI that cannot be split for
 *   certain shows only its scheme.
 * - pgpulse accepts a DSN only if libpq reads it the way its author
 *   evidently meant: a URI has no white space and at most one '@', which
 *   ends the user name and password before any '/', '?' or '#'; no
 *   key=value pair is "keyword= other=..." (libpq skips the blank and takes
 *   "other=..." as the value); every host is a name, an IP address or a
 *   socket directory and every port a number. Otherwise pieces of a
 *   password could end up in the host, the port and so the server label.
 * - libpq quotes pieces of the input in its messages. A message is matched
 *   against those libpq is known to write, and a quoted piece is kept only
 *   if it is visible in the DSN as printed with it (else it becomes
 *   "xxxxx"); a message not recognised is replaced by a fixed text.
 * - DATA_SOURCE_NAME is split on ',' before anything else. An element that
 *   does not begin a DSN continues the one before: that DSN was cut in two
 *   and is refused where it begins, masked as read alone and as read whole
 *   (a password holding ',' is cut too).
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

/* pgpulse's own reasons for refusing a DSN */
#define MSG_NOT_DSN "neither a URI (postgresql://...) nor key=value pairs"
#define MSG_URI_SPACE "white space in a URI must be percent-encoded (as %20)"
#define MSG_URI_AT                                                                                 \
    "ambiguous URI: percent-encode \"@\", \"/\", \"?\" and \"#\" in the user name and password, "  \
    "and \"@\" anywhere else (as %40, %2F, %3F and %23)"
#define MSG_KV_EQ                                                                                  \
    "ambiguous key=value pair: a value after \"= \" holds \"=\" (quote such a value, and write "   \
    "an empty one as '')"
#define MSG_SPLIT                                                                                  \
    "the list is split on \",\" and this DSN is cut in two (write \",\" as %2C in a URI)"
#define MSG_HOST "invalid host name (a host is a name, an IP address or a socket directory)"
#define MSG_PORT "invalid port number (not a number)"
#define MSG_LIBPQ "not a valid connection string"

/* A region [a, b) of a DSN text that holds a secret. */
typedef struct span {
    size_t a, b;
} span;

typedef struct span_list {
    span *v;
    size_t n, cap;
} span_list;

/* Adds [a, b); an empty one only if keep_empty (a secret's place, shown as
 * MASK so that an empty password reads as any other). */
static void spans_put(span_list *l, size_t a, size_t b, bool keep_empty)
{
    if (b < a || (b == a && !keep_empty))
        return;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        l->v = pp_realloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n].a = a;
    l->v[l->n].b = b;
    l->n++;
}

static void spans_add(span_list *l, size_t a, size_t b)
{
    spans_put(l, a, b, false);
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

static bool is_ws(char c);

/*
 * Returns t[0, len) with every span (merged) replaced by MASK; malloc'd. A
 * span that ends in blanks (which may be part of a secret) keeps one
 * space, so that what follows stays readable.
 */
static char *spans_apply(const char *t, size_t len, const span_list *l)
{
    pp_buf b = PP_BUF_INIT;
    size_t pos = 0;

    pp_buf_reserve(&b, len + (MASK_LEN + 1) * l->n);
    for (size_t i = 0; i < l->n; i++) {
        pp_buf_append(&b, t + pos, l->v[i].a - pos);
        pp_buf_append(&b, MASK, MASK_LEN);
        pos = l->v[i].b;
        if (pos < len && is_ws(t[pos - 1]))
            pp_buf_putc(&b, ' ');
    }
    pp_buf_append(&b, t + pos, len - pos);
    return pp_buf_steal(&b, NULL);
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c);
}

static bool kw_char(char c)
{
    return is_alnum(c) || c == '_';
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

/* Does needle[0, n) occur in hay[0, hn)? */
static bool contains(const char *hay, size_t hn, const char *needle, size_t n)
{
    for (size_t i = 0; i + n <= hn; i++) {
        if (memcmp(hay + i, needle, n) == 0)
            return true;
    }
    return false;
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

static void wipe_free(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* libpq's percent-decoding of t[0, n): NULL for a bad escape or %00. */
static char *uri_decode(const char *t, size_t n)
{
    char *o = pp_malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] != '%') {
            o[k++] = t[i];
            continue;
        }
        int hi = i + 1 < n ? hexval(t[i + 1]) : -1;
        int lo = i + 2 < n ? hexval(t[i + 2]) : -1;
        if (hi < 0 || lo < 0 || hi + lo == 0) {
            explicit_bzero(o, n + 1);
            free(o);
            return NULL;
        }
        o[k++] = (char)(hi * 16 + lo);
        i += 2;
    }
    o[k] = '\0';
    return o;
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
        else if (t[i] == '\\')
            break; /* a trailing backslash escapes nothing */
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
 * One host of a host list: empty (libpq's default), a name or an IP
 * address, a socket directory ("/...") or an abstract socket ("@...").
 * Anything else (white space, '=', '@', '/', '?', quotes) is a sign that
 * the text was misread, and may be a piece of a password.
 */
static bool host_ok(const char *h, size_t n)
{
    bool path = n > 0 && (h[0] == '/' || h[0] == '@');
    for (size_t i = path; i < n; i++) {
        char c = h[i];
        bool ok = is_alnum(c) || c == '.' || c == '-' || c == '_' ||
                  (path ? c == '/' || c == '~' || c == '+'
                        : c == ':' || c == '%' || c == '[' || c == ']');
        if (!ok)
            return false;
    }
    return true;
}

/* One port of a port list: empty (libpq's default) or digits. */
static bool port_ok(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return false;
    }
    return true;
}

/* Does every element of the comma list v pass ok? */
static bool list_ok(const char *v, bool (*ok)(const char *, size_t))
{
    for (;;) {
        size_t n = strcspn(v, ",");
        if (!ok(v, n))
            return false;
        if (v[n] == '\0')
            return true;
        v += n + 1;
    }
}

/* Is the percent-encoded t[0, n) valid, and does ok accept it decoded? */
static bool decoded_ok(const char *t, size_t n, bool (*ok)(const char *, size_t))
{
    char *d = uri_decode(t, n);
    bool r = d != NULL && ok(d, strlen(d));
    free(d);
    return r;
}

/*
 * A value that may hold a connection string of its own, and so a password:
 * it holds '=' (dbname='host=h password=pw') or "://". libpq takes such a
 * dbname literally, but its author may not have.
 */
static bool embeds_dsn(const char *v)
{
    return strchr(v, '=') != NULL || strstr(v, "://") != NULL;
}

/* Does v hold "password", in any case? */
static bool names_password(const char *v)
{
    size_t n = strlen(v);
    for (size_t i = 0; i + 8 <= n; i++) {
        if (secret_keyword(v + i, 8))
            return true;
    }
    return false;
}

/* Why a text cannot be read as written, as scan() finds it. */
enum problem {
    PROBLEM_NONE,
    PROBLEM_SYNTAX, /* libpq rejects the text too, and says why */
    PROBLEM_NOT_DSN,
    PROBLEM_URI_SPACE,
    PROBLEM_URI_AT,
    PROBLEM_KV_EQ,
};

typedef struct scan {
    const char *t;
    size_t len;
    bool exact;             /* hide secrets alone rather than all after them */
    PQconninfoOption *opts; /* every option libpq knows, no values */
    span_list spans;        /* the regions to hide, merged when done */
    enum problem problem;   /* the first problem found */
} scan;

static void set_problem(scan *sc, enum problem p)
{
    if (sc->problem == PROBLEM_NONE)
        sc->problem = p;
}

/* Nothing from t[at] on is vouched for. */
static void hide_rest(scan *sc, size_t at)
{
    spans_add(&sc->spans, at, sc->len);
}

static bool known_keyword(const scan *sc, const char *kw)
{
    /* libpq maps these two onto sslmode */
    if (strcmp(kw, "requiressl") == 0 || strcmp(kw, "ssl") == 0)
        return true;
    for (const PQconninfoOption *o = sc->opts; o != NULL && o->keyword != NULL; o++) {
        if (strcmp(o->keyword, kw) == 0)
            return true;
    }
    return false;
}

enum verdict {
    SHOW,
    HIDE,      /* the value */
    HIDE_REST, /* the value and everything after it */
};

/* What to show of the value val (decoded) of keyword kw. */
static enum verdict judge(const scan *sc, const char *kw, const char *val, bool kv)
{
    /* an unknown keyword may be a misspelt "password" */
    if (!known_keyword(sc, kw))
        return HIDE_REST;
    if (((strcmp(kw, "host") == 0 || strcmp(kw, "hostaddr") == 0) && !list_ok(val, host_ok)) ||
        (strcmp(kw, "port") == 0 && !list_ok(val, port_ok)))
        return HIDE_REST;
    /* A value that is a connection string of its own may be one that lost
     * its quotes ("user='a password='pw'") or that a blank in its password
     * cut (a URI cannot hold one): what follows may be the password. */
    if (strstr(val, "://") != NULL || names_password(val))
        return HIDE_REST;
    if (secret_keyword(kw, strlen(kw)))
        return sc->exact ? HIDE : HIDE_REST;
    /* In key=value text an '@' may end a "user:password@" that libpq cut
     * at blanks; in a URI it is percent-encoded, on purpose. */
    return embeds_dsn(val) || (kv && strchr(val, '@') != NULL) ? HIDE : SHOW;
}

/* judge() for the percent-encoded value t[a, b) of a URI; false when
 * nothing after it is shown. */
static bool judge_encoded(scan *sc, const char *kw, size_t a, size_t b)
{
    char *val = uri_decode(sc->t + a, b - a);
    if (val == NULL) {
        hide_rest(sc, a);
        return false;
    }
    enum verdict v = judge(sc, kw, val, false);
    wipe_free(val);
    if (v == HIDE_REST)
        hide_rest(sc, a);
    else if (v == HIDE)
        spans_put(&sc->spans, a, b, true);
    return v != HIDE_REST;
}

/*
 * A URI, t[pl] being just after "://", read with libpq's grammar:
 * [user[:password]@][host[:port]][,...][/dbname][?key=value&...].
 */
static void scan_uri(scan *sc, size_t pl)
{
    const char *t = sc->t;
    size_t len = sc->len;

    for (size_t i = pl; i < len; i++) {
        if ((unsigned char)t[i] <= ' ' || t[i] == 0x7f) {
            set_problem(sc, PROBLEM_URI_SPACE);
            hide_rest(sc, pl);
            return;
        }
    }
    /* Where a password holding '@', '/', '?' or '#' ends is anybody's
     * guess: libpq cuts at the first '@' before a '/', others elsewhere. */
    size_t auth_end = pl;
    while (auth_end < len && t[auth_end] != '/' && t[auth_end] != '?' && t[auth_end] != '#')
        auth_end++;
    size_t at = find(t, pl, len, '@');
    if (at < len && (at > auth_end || find(t, at + 1, len, '@') < len)) {
        set_problem(sc, PROBLEM_URI_AT);
        hide_rest(sc, pl);
        return;
    }

    size_t p = pl;
    if (at < len) {
        size_t colon = find(t, pl, at, ':');
        if (colon < at)
            spans_put(&sc->spans, colon + 1, at, true);
        p = at + 1;
    }
    size_t hosts = p;
    for (;;) {
        size_t h = p, he;
        if (p < len && t[p] == '[') {
            h = ++p;
            p = he = find(t, p, len, ']');
            if (p == len || he == h) {
                hide_rest(sc, hosts);
                return;
            }
            p++;
        } else {
            while (p < len && t[p] != ':' && t[p] != '/' && t[p] != '?' && t[p] != ',')
                p++;
            he = p;
        }
        if (!decoded_ok(t + h, he - h, host_ok)) {
            hide_rest(sc, hosts);
            return;
        }
        if (p < len && t[p] == ':') {
            size_t ps = ++p;
            while (p < len && t[p] != '/' && t[p] != '?' && t[p] != ',')
                p++;
            if (!decoded_ok(t + ps, p - ps, port_ok)) {
                hide_rest(sc, hosts);
                return;
            }
        }
        if (p < len && t[p] != ',' && t[p] != '/' && t[p] != '?') {
            hide_rest(sc, hosts); /* e.g. "[::1]x" */
            return;
        }
        if (p == len || t[p] != ',')
            break;
        p++;
    }

    if (p < len && t[p] == '/') {
        size_t d = ++p;
        while (p < len && t[p] != '?')
            p++;
        if (!judge_encoded(sc, "dbname", d, p))
            return;
    }
    if (p < len && t[p] == '?')
        p++;
    while (p < len) {
        size_t e = find(t, p, len, '&');
        size_t eq = find(t, p, e, '=');
        char *kw = eq < e && find(t, eq + 1, e, '=') == e ? uri_decode(t + p, eq - p) : NULL;
        bool word = kw != NULL && kw[0] != '\0';
        for (const char *c = kw; word && *c != '\0'; c++)
            word = kw_char(*c);
        if (!word) {
            free(kw);
            hide_rest(sc, p);
            return;
        }
        bool go_on = judge_encoded(sc, kw, eq + 1, e);
        free(kw);
        if (!go_on)
            return;
        p = e < len ? e + 1 : len;
    }
}

/*
 * A key=value string, read as libpq does: a keyword, optional blanks, '=',
 * optional blanks, then a value that is either single-quoted or runs to
 * the next blank, with backslash escapes in both.
 */
static void scan_kv(scan *sc)
{
    const char *t = sc->t;
    size_t len = sc->len, i = 0;
    bool first = true;

    while (i < len) {
        if (is_ws(t[i])) {
            i++;
            continue;
        }
        size_t k = i;
        while (i < len && t[i] != '=' && !is_ws(t[i]))
            i++;
        size_t kend = i;
        while (i < len && is_ws(t[i]))
            i++;
        bool word = kend > k;
        for (size_t j = k; j < kend; j++)
            word = word && kw_char(t[j]);
        if (i == len || t[i] != '=' || !word) {
            /* no keyword: perhaps a mistyped URI, the password in it */
            if (first)
                set_problem(sc, PROBLEM_NOT_DSN);
            else if (i == len || t[i] != '=')
                set_problem(sc, PROBLEM_SYNTAX);
            hide_rest(sc, k);
            return;
        }
        size_t eq = i++;
        while (i < len && is_ws(t[i]))
            i++;
        bool blank = i > eq + 1;

        size_t v, vend;
        bool quoted = i < len && t[i] == '\'';
        if (quoted) {
            v = ++i;
            while (i < len && t[i] != '\'')
                i += t[i] == '\\' ? 2 : 1;
            if (i >= len) {
                set_problem(sc, PROBLEM_SYNTAX); /* unterminated */
                hide_rest(sc, eq + 1);
                return;
            }
            vend = i++;
        } else {
            v = i;
            while (i < len && !is_ws(t[i]))
                i += t[i] == '\\' && i + 1 < len ? 2 : 1;
            vend = i;
        }
        while (i < len && is_ws(t[i]))
            i++;

        char *kw = dup_n(t + k, kend - k);
        char *val = unescape(t + v, vend - v);
        enum verdict verdict = judge(sc, kw, val, true);
        if (blank && !quoted && strchr(val, '=') != NULL) {
            /* "user= password=pw": libpq's user is "password=pw" */
            set_problem(sc, PROBLEM_KV_EQ);
            verdict = HIDE_REST;
        }
        free(kw);
        wipe_free(val);
        /* Hidden with the blanks around it, which may be part of it, unless
         * libpq read the text so. */
        if (verdict == HIDE_REST) {
            hide_rest(sc, eq + 1);
            return;
        }
        if (!sc->exact)
            spans_add(&sc->spans, eq + 1, i); /* in a text libpq rejects, any value */
        else if (verdict == HIDE)
            spans_put(&sc->spans, v, vend, true);
        first = false;
    }
}

/*
 * Reads t[0, len) (trimmed) and finds what to hide: exactly the secrets
 * when exact (for a text libpq parsed), conservatively otherwise. Free
 * with scan_free().
 */
static void scan_text(scan *sc, const char *t, size_t len, bool exact)
{
    memset(sc, 0, sizeof *sc);
    sc->t = t;
    sc->len = len;
    sc->exact = exact;
    sc->opts = PQconninfoParse("", NULL); /* NULL (no memory): no keyword is known */
    size_t pl = uri_prefix_len(t, len);
    if (pl > 0)
        scan_uri(sc, pl);
    else
        scan_kv(sc);
    PQconninfoFree(sc->opts);
    sc->opts = NULL;
    spans_merge(&sc->spans);
}

static void scan_free(scan *sc)
{
    spans_free(&sc->spans);
}

static const char *problem_reason(enum problem p)
{
    switch (p) {
    case PROBLEM_NOT_DSN:
        return MSG_NOT_DSN;
    case PROBLEM_URI_SPACE:
        return MSG_URI_SPACE;
    case PROBLEM_URI_AT:
        return MSG_URI_AT;
    case PROBLEM_KV_EQ:
        return MSG_KV_EQ;
    case PROBLEM_NONE:
    case PROBLEM_SYNTAX:
        break;
    }
    return NULL;
}

/* Is f[0, n) shown in t[0, len) masked by l: inside a stretch between spans? */
static bool visible(const char *t, size_t len, const span_list *l, const char *f, size_t n)
{
    size_t a = 0;
    for (size_t i = 0; i <= l->n; i++) {
        size_t b = i < l->n ? l->v[i].a : len;
        if (contains(t + a, b - a, f, n))
            return true;
        if (i < l->n)
            a = l->v[i].b;
    }
    return false;
}

/*
 * The messages PQconninfoParse writes (PostgreSQL 12 to 17). %s is a piece
 * of the input, %c one byte of it, %d a number.
 */
static const char *const libpq_messages[] = {
    "missing \"=\" after \"%s\" in connection info string",
    "unterminated quoted string in connection info string",
    "invalid connection option \"%s\"",
    "invalid URI propagated to internal parser routine: \"%s\"",
    "end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"%s\"",
    "IPv6 host address may not be empty in URI: \"%s\"",
    "unexpected character \"%c\" at position %d in URI (expected \":\" or \"/\"): \"%s\"",
    "extra key/value separator \"=\" in URI query parameter: \"%s\"",
    "missing key/value separator \"=\" in URI query parameter: \"%s\"",
    "invalid URI query parameter: \"%s\"",
    "invalid percent-encoded token: \"%s\"",
    "forbidden value %%00 in percent-encoded value: \"%s\"",
    "out of memory",
};

typedef struct hole {
    const char *p;
    size_t n;
} hole;

/* Matches s[0, n) against a message template; h receives the pieces. */
static bool match_message(const char *tpl, const char *s, size_t n, hole *h)
{
    for (;;) {
        if (*tpl == '\0')
            return n == 0;
        if (tpl[0] == '%' && tpl[1] != '%') {
            char kind = tpl[1];
            size_t max = kind == 'c' ? 1 : n;
            for (size_t k = kind == 's' ? 0 : 1; k <= max && k <= n; k++) {
                if (kind == 'd' && !is_digit(s[k - 1]))
                    break;
                h->p = s;
                h->n = k;
                if (match_message(tpl + 2, s + k, n - k, h + 1))
                    return true;
            }
            return false;
        }
        size_t lit = tpl[0] == '%' ? 2 : 1; /* "%%" stands for '%' */
        if (n == 0 || *s != tpl[lit - 1])
            return false;
        tpl += lit;
        s++;
        n--;
    }
}

/*
 * libpq's message about s, safe to print next to s shown masked by l: each
 * piece of s it quotes is kept only if that masked form shows it anyway and
 * it holds no known secret (raw or percent-encoded), else it becomes MASK.
 */
static char *libpq_reason(const char *msg, const char *s, const span_list *l, const char *secret)
{
    size_t n = strlen(msg), len = strlen(s);
    pp_buf enc = PP_BUF_INIT;

    while (n > 0 && is_ws(msg[n - 1]))
        n--;
    if (secret != NULL)
        put_urlencoded(&enc, secret);
    for (size_t i = 0; i < sizeof libpq_messages / sizeof libpq_messages[0]; i++) {
        hole h[4];
        if (!match_message(libpq_messages[i], msg, n, h))
            continue;
        pp_buf b = PP_BUF_INIT;
        size_t k = 0;
        pp_buf_reserve(&b, n);
        for (const char *p = libpq_messages[i]; *p != '\0'; p++) {
            if (p[0] != '%' || p[1] == '%') {
                pp_buf_putc(&b, *p);
                p += p[0] == '%';
                continue;
            }
            p++;
            bool keep = *p == 'd' || (visible(s, len, l, h[k].p, h[k].n) &&
                                      (secret == NULL || secret[0] == '\0' ||
                                       (!contains(h[k].p, h[k].n, secret, strlen(secret)) &&
                                        !contains(h[k].p, h[k].n, enc.data, enc.len))));
            if (keep)
                pp_buf_append(&b, h[k].p, h[k].n);
            else
                pp_buf_puts(&b, MASK);
            k++;
        }
        pp_buf_deinit(&enc);
        return pp_buf_steal(&b, NULL);
    }
    pp_buf_deinit(&enc);
    return pp_strdup(MSG_LIBPQ);
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
 * Writes "<what> "<s masked by l>": <reason>", or "<what>: <reason>" when
 * nothing of s would be shown. The reason must be safe to print. s is shown
 * as it is, control bytes and all: the log escapes them, and rewriting
 * them could make up text that was never there.
 */
static void report(const char *s, const span_list *l, const char *what, const char *reason,
                   char *err, size_t errlen)
{
    char *m = spans_apply(s, strlen(s), l);
    if (strcmp(m, MASK) == 0)
        set_err(err, errlen, "%s: %s", what, reason);
    else
        set_err(err, errlen, "%s \"%s\": %s", what, m, reason);
    free(m);
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
        if (secret_keyword(d->keywords[i], strlen(d->keywords[i])) || embeds_dsn(d->values[i]))
            pp_buf_puts(&b, MASK);
        else
            put_kv_value(&b, d->values[i]);
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
        wipe_free(raw);
        wipe_free(dec);
        wipe_free(unesc);
        if (found)
            return true;
    }
    return false;
}

/*
 * The masked form of s, which parsed into d and was scanned exactly into
 * l. Should a secret libpq read not lie in a masked region (scan() and
 * libpq disagree), the form rebuilt from the options is used instead.
 */
static char *masked_form(const char *s, const span_list *l, const pp_dsn *d)
{
    for (size_t i = 0; i < d->n; i++) {
        if (secret_keyword(d->keywords[i], strlen(d->keywords[i])) &&
            !spans_cover(s, l, d->values[i]))
            return canonical(d);
    }
    return spans_apply(s, strlen(s), l);
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
 * into a start-up error instead of a failed scrape. The ports are digits
 * by now (check_values), so the reason quotes nothing secret. Returns a
 * malloc'd reason, or NULL.
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

/* Hosts and ports that are not names and numbers; NULL if they are. */
static const char *check_values(const pp_dsn *d)
{
    const char *host = pp_dsn_get(d, "host");
    const char *addr = pp_dsn_get(d, "hostaddr");
    const char *port = pp_dsn_get(d, "port");

    if ((host != NULL && !list_ok(host, host_ok)) || (addr != NULL && !list_ok(addr, host_ok)))
        return MSG_HOST;
    if (port != NULL && !list_ok(port, port_ok))
        return MSG_PORT;
    return NULL;
}

/*
 * Reads s, scanned exactly into sc, into the options of out. Returns NULL
 * if pgpulse accepts it, else the malloc'd reason: libpq's raw message
 * (*from_libpq; to be made safe before it is shown) or pgpulse's own.
 * *exact says whether s may still be shown as sc masks it.
 */
static char *load(const char *s, const scan *sc, pp_dsn *out, bool *from_libpq, bool *exact)
{
    char *pqerr = NULL;
    char *reason = NULL;
    const char *own = problem_reason(sc->problem);
    PQconninfoOption *opts = PQconninfoParse(s, &pqerr);

    *from_libpq = false;
    *exact = false;
    memset(out, 0, sizeof *out);
    if (opts == NULL) {
        *from_libpq = own == NULL && pqerr != NULL;
        reason = pp_strdup(own != NULL ? own : pqerr != NULL ? pqerr : "out of memory");
        if (pqerr != NULL) {
            explicit_bzero(pqerr, strlen(pqerr));
            PQfreemem(pqerr);
        }
        return reason;
    }

    size_t n = 0;
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
        n += o->val != NULL && o->val[0] != '\0';
    out->keywords = pp_calloc(n + 1, sizeof(char *));
    out->values = pp_calloc(n + 1, sizeof(char *));
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL)
            continue;
        if (o->val[0] != '\0') {
            out->keywords[out->n] = pp_strdup(o->keyword);
            out->values[out->n] = pp_strdup(o->val);
            out->n++;
        }
        explicit_bzero(o->val, strlen(o->val)); /* libpq does not clear its copies */
    }
    PQconninfoFree(opts);

    if (own == NULL)
        own = check_values(out);
    if (own != NULL)
        return pp_strdup(own);
    reason = check_ports(out);
    *exact = true;
    return reason;
}

/*
 * Reads s (trimmed). On success returns NULL with out filled, and l holds
 * the spans of its masked form. Otherwise out is left empty and returns a
 * reason that is safe to print next to s masked by l. known_secret, if not
 * NULL, is a password that s holds percent-encoded. Free l with scan_free.
 */
static char *read_dsn(const char *s, const char *known_secret, pp_dsn *out, scan *l)
{
    size_t len = strlen(s);
    bool from_libpq, exact;

    scan_text(l, s, len, true);
    char *reason = load(s, l, out, &from_libpq, &exact);
    if (reason == NULL)
        return NULL;
    pp_dsn_deinit(out);
    if (!exact) {
        scan_free(l);
        scan_text(l, s, len, false);
    }
    if (from_libpq) {
        char *safe = libpq_reason(reason, s, &l->spans, known_secret);
        wipe_free(reason);
        reason = safe;
    }
    return reason;
}

/* Parses s (NUL-terminated, already trimmed); on error err gets a message
 * that starts with what. */
static int parse_one(const char *s, const char *known_secret, const char *what, pp_dsn *out,
                     char *err, size_t errlen)
{
    scan l;
    char *reason = read_dsn(s, known_secret, out, &l);

    if (reason == NULL) {
        derive(out);
        out->masked = masked_form(s, &l.spans, out);
    } else {
        report(s, &l.spans, what, reason, err, errlen);
        free(reason);
    }
    scan_free(&l);
    return reason == NULL ? 0 : -1;
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
    int rc = parse_one(s, NULL, "invalid DSN", out, err, errlen);
    wipe_free(s);
    return rc;
}

char *pp_dsn_mask_text(const char *text)
{
    if (text == NULL)
        return NULL;
    size_t n;
    const char *t = trim(text, strlen(text), &n);
    char *s = dup_n(t, n);
    pp_dsn d;
    scan l;
    char *reason = read_dsn(s, NULL, &d, &l);
    char *m = reason == NULL ? masked_form(s, &l.spans, &d) : spans_apply(s, n, &l.spans);

    free(reason);
    pp_dsn_deinit(&d);
    scan_free(&l);
    wipe_free(s);
    return m;
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
    size_t a, b;  /* trimmed */
    size_t group; /* index of the element that starts its group */
} element;

/*
 * A DSN that a ',' of the list cut in two: el[g] and the elements after it
 * up to el[last], which do not begin a DSN of their own. It is refused
 * where it begins, shown as the masks of its reading alone and of the
 * reading of the whole group (a password holding ',' is cut too) hide it.
 */
static void report_cut(const char *text, const element *el, size_t g, size_t last, char *err,
                       size_t errlen)
{
    size_t n = el[g].b - el[g].a;
    char *s = dup_n(text + el[g].a, n);
    scan whole, own;
    char what[48];

    scan_text(&whole, text + el[g].a, el[last].b - el[g].a, false);
    scan_text(&own, s, n, false);
    for (size_t k = 0; k < whole.spans.n; k++) {
        if (whole.spans.v[k].a < n)
            spans_add(&own.spans, whole.spans.v[k].a,
                      whole.spans.v[k].b < n ? whole.spans.v[k].b : n);
    }
    spans_merge(&own.spans);
    snprintf(what, sizeof what, "invalid DSN %zu", g + 1);
    report(s, &own.spans, what, MSG_SPLIT, err, errlen);
    scan_free(&whole);
    scan_free(&own);
    wipe_free(s);
}

int pp_dsn_parse_list(const char *text, pp_dsn **out, size_t *n, char *err, size_t errlen)
{
    size_t len = strlen(text);
    size_t count = list_len(text);
    element *el = pp_calloc(count, sizeof *el);
    pp_dsn *list = pp_calloc(count, sizeof *list);
    size_t parsed = 0;
    int rc = -1;

    *out = NULL;
    *n = 0;
    for (size_t i = 0, p = 0; i < count; i++) {
        size_t c = find(text, p, len, ',');
        size_t tn;
        const char *t = trim(text + p, c - p, &tn);
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
    }

    for (size_t i = 0; i < count; i++) {
        size_t last = i;
        while (last + 1 < count && el[last + 1].group == i)
            last++;
        int prc = -1;
        if (last > i) {
            report_cut(text, el, i, last, err, errlen);
        } else {
            char what[48];
            snprintf(what, sizeof what, "invalid DSN %zu", i + 1);
            char *s = dup_n(text + el[i].a, el[i].b - el[i].a);
            prc = parse_one(s, NULL, what, &list[i], err, errlen);
            wipe_free(s);
        }
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
    if (parse_one(dsn.data, pass, "invalid DSN", list, tmp, errlen) != 0) {
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
