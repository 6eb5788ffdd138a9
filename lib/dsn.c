/*
 * dsn: data source names. See dsn.h for the contract.
 *
 * libpq's PQconninfoParse does the parsing, so the options accepted are
 * exactly libpq's. This file adds the checks libpq leaves to connection
 * time (hosts and ports), the server label, and text for humans that never
 * holds a password.
 *
 * Invariants kept here:
 * - A password (the value of any keyword ending in "password") lives only
 *   in the values array.
 * - What is shown of a DSN that parsed is rebuilt from its options, every
 *   secret and every value that may hold a connection string of its own
 *   masked. Of any other text only an outline is shown: a URI's scheme, or
 *   the keywords of key=value text with their values masked, up to the
 *   first keyword that is secret or unknown or has a suspect value.
 * - pgpulse refuses what libpq would read otherwise than its author
 *   evidently meant, as pieces of a password could then end up in the host
 *   and the label: white space in a URI; an '@' other than one that ends
 *   the user info before any '/', '?' or '#'; "keyword= other=..." (libpq
 *   skips the blank and takes "other=..." as the value); hosts that are not
 *   names, addresses or socket directories; ports that are not numbers.
 * - libpq's messages quote the input. A message is shown only if libpq is
 *   known to write it, its quoted piece masked unless the outline shows it
 *   as a keyword; any other message becomes a fixed text.
 * - DATA_SOURCE_NAME is split on ',' first. An element that does not begin
 *   a DSN continues the one before, which was cut in two and is refused.
 */
#include "dsn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "buf.h"

#define MASK "xxxxx"
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

/* ---- small helpers ---------------------------------------------------- */

static bool is_ws(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static bool kw_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
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
    if (s != NULL)
        explicit_bzero(s, strlen(s));
    free(s);
}

/* Index of the first of chars in t[from, to), or to. */
static size_t find(const char *t, size_t from, size_t to, const char *chars)
{
    while (from < to && strchr(chars, t[from]) == NULL)
        from++;
    return from;
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

static size_t list_len(const char *s)
{
    size_t n = 1;
    for (; *s != '\0'; s++)
        n += *s == ',';
    return n;
}

/* "password" and "sslpassword" are the secrets libpq knows; any keyword
 * that ends so also covers misspelt or future ones. */
static bool secret_keyword(const char *k)
{
    size_t n = strlen(k);
    return n >= 8 && strcasecmp(k + n - 8, "password") == 0;
}

/* A value that may hold a connection string, and so a password, of its own
 * (dbname='host=h password=pw', user=u:pw@h): libpq takes it literally, its
 * author may not have. */
static bool suspect(const char *v)
{
    for (const char *p = v; *p != '\0'; p++)
        if (strncasecmp(p, "password", 8) == 0)
            return true;
    return strpbrk(v, "=@") != NULL || strstr(v, "://") != NULL;
}

static bool known_keyword(const char *kw)
{
    PQconninfoOption *opts = PQconninfoParse("", NULL); /* every option, no values */
    bool known = false;
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL && !known; o++)
        known = strcmp(o->keyword, kw) == 0;
    PQconninfoFree(opts);
    return known;
}

/*
 * One host of a host list: empty (libpq's default), a name or an IP
 * address, a socket directory ("/...") or an abstract socket ("@..."). Any
 * other character is a sign that the text was misread, and may be a piece
 * of a password.
 */
static bool host_ok(const char *h, size_t n)
{
    bool path = n > 0 && (h[0] == '/' || h[0] == '@');
    for (size_t i = path; i < n; i++)
        if (!kw_char(h[i]) && h[i] != '.' && h[i] != '-' &&
            strchr(path ? "/~+" : ":%[]", h[i]) == NULL)
            return false;
    return true;
}

/* One port of a port list: empty (libpq's default) or digits. */
static bool port_ok(const char *p, size_t n)
{
    return strspn(p, "0123456789") >= n;
}

/* Does every element of the comma list v pass ok? */
static bool list_ok(const char *v, bool (*ok)(const char *, size_t))
{
    for (;; v += strcspn(v, ",") + 1) {
        if (!ok(v, strcspn(v, ",")))
            return false;
        if (v[strcspn(v, ",")] == '\0')
            return true;
    }
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

/* ---- the text, read as libpq reads it --------------------------------- */

static size_t uri_scheme(const char *t, size_t len)
{
    if (len >= 13 && memcmp(t, "postgresql://", 13) == 0)
        return 13;
    if (len >= 11 && memcmp(t, "postgres://", 11) == 0)
        return 11;
    return 0;
}

/* One keyword=value pair of key=value text; the value is inside the quotes
 * of a quoted one. */
typedef struct kv_pair {
    size_t k, kn, v, vn;
    bool quoted, blank; /* blank: white space between '=' and the value */
} kv_pair;

/*
 * Reads the pair at t[*pos] as libpq does: a keyword, blanks, '=', blanks,
 * then a value that is single-quoted or runs to the next blank, with
 * backslash escapes. Returns 1 for a pair, 0 at the end, -1 where the text
 * is no pair: no keyword or '=' (p->kn is 0) or an unterminated quote.
 */
static int kv_next(const char *t, size_t len, size_t *pos, kv_pair *p)
{
    size_t i = *pos, k;
    memset(p, 0, sizeof *p);
    while (i < len && is_ws(t[i]))
        i++;
    if (i == len)
        return 0;
    for (k = i; i < len && kw_char(t[i]); i++)
        ;
    size_t kend = i;
    while (i < len && is_ws(t[i]))
        i++;
    if (kend == k || i == len || t[i] != '=')
        return -1;
    p->k = k;
    p->kn = kend - k;
    size_t eq = i++;
    while (i < len && is_ws(t[i]))
        i++;
    p->blank = i > eq + 1;
    p->quoted = i < len && t[i] == '\'';
    p->v = i + p->quoted;
    for (i = p->v; i < len && (p->quoted ? t[i] != '\'' : !is_ws(t[i]));)
        i += t[i] == '\\' && i + 1 < len ? 2 : 1;
    if (p->quoted && i >= len)
        return -1;
    p->vn = i - p->v;
    *pos = i + p->quoted;
    return 1;
}

/* Adds keyword k to kws and says whether, with value v, it lets what
 * follows it be shown. */
static bool show_keyword(pp_buf *kws, const char *k, size_t kn, const char *v, size_t vn)
{
    if (kn == 0 ||
        kn > strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"))
        return false;
    char *kw = dup_n(k, kn), *val = dup_n(v, vn);
    bool ok = known_keyword(kw) && !secret_keyword(kw) && !suspect(val) && !strpbrk(val, "\\%");
    pp_buf_printf(kws, "%s\n", kw);
    free(kw);
    wipe_free(val);
    return ok;
}

/*
 * Reads t[0, len) as libpq would and returns pgpulse's objection to that
 * reading, or NULL. Appends the outline of the text (see the file comment)
 * to out and the keywords it shows, as "\nkw\n...", to kws.
 */
static const char *outline(const char *t, size_t len, pp_buf *out, pp_buf *kws)
{
    size_t scheme = uri_scheme(t, len), pos = 0;
    bool shown = true;
    kv_pair p;
    int r;

    pp_buf_putc(kws, '\n');
    if (scheme > 0) {
        pp_buf_append(out, t, scheme);
        pp_buf_puts(out, MASK);
        for (size_t i = scheme; i < len; i++)
            if ((unsigned char)t[i] <= ' ' || t[i] == 0x7f)
                return MSG_URI_SPACE;
        /* Where a password holding '@', '/', '?' or '#' ends is anybody's
         * guess: libpq cuts at the first '@' before a '/', others elsewhere. */
        size_t at = find(t, scheme, len, "@");
        if (at < len && (at > find(t, scheme, len, "/?#") || find(t, at + 1, len, "@") < len))
            return MSG_URI_AT;
        for (size_t q = find(t, scheme, len, "?") + 1; q < len && shown;) {
            size_t e = find(t, q, len, "&"), eq = find(t, q, e, "=");
            shown = eq < e && show_keyword(kws, t + q, eq - q, t + eq + 1, e - eq - 1);
            q = e + 1;
        }
        return NULL;
    }
    for (bool first = true; (r = kv_next(t, len, &pos, &p)) != 0; first = false) {
        if (p.kn == 0) /* libpq says why, unless nothing was a pair */
            return first ? MSG_NOT_DSN : NULL;
        if (shown) {
            pp_buf_printf(out, "%s%.*s=" MASK, out->len > 0 ? " " : "", (int)p.kn, t + p.k);
            shown = show_keyword(kws, t + p.k, p.kn, t + p.v, p.vn) && r > 0;
        }
        if (r < 0)
            return NULL;
        if (p.blank && !p.quoted && memchr(t + p.v, '=', p.vn) != NULL)
            return MSG_KV_EQ;
    }
    return NULL;
}

/*
 * The messages PQconninfoParse writes (PostgreSQL 12 to 17): what comes
 * before and after the piece of the input each quotes.
 */
static const struct {
    const char *head, *tail;
} libpq_messages[] = {
    {"missing \"=\" after \"", "\" in connection info string"},
    {"unterminated quoted string in connection info string", ""},
    {"invalid connection option \"", "\""},
    {"invalid URI propagated to internal parser routine: \"", "\""},
    {"end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"", "\""},
    {"IPv6 host address may not be empty in URI: \"", "\""},
    {"unexpected character \"", "\""}, /* and two more pieces, masked with it */
    {"extra key/value separator \"=\" in URI query parameter: \"", "\""},
    {"missing key/value separator \"=\" in URI query parameter: \"", "\""},
    {"invalid URI query parameter: \"", "\""},
    {"invalid percent-encoded token: \"", "\""},
    {"forbidden value %00 in percent-encoded value: \"", "\""},
    {"out of memory", ""},
};

/* libpq's message, safe to print: its piece is kept only if kws (as
 * outline() made it) holds it. */
static char *libpq_reason(const char *msg, const char *kws)
{
    size_t n = strlen(msg);
    while (n > 0 && is_ws(msg[n - 1]))
        n--;
    for (size_t i = 0; i < sizeof libpq_messages / sizeof libpq_messages[0]; i++) {
        const char *head = libpq_messages[i].head, *tail = libpq_messages[i].tail;
        size_t hn = strlen(head), tn = strlen(tail);
        if (n < hn + tn || strncmp(msg, head, hn) != 0 || strncmp(msg + n - tn, tail, tn) != 0 ||
            (tn == 0 && n != hn))
            continue;
        int pn = (int)(n - hn - tn);
        pp_buf b = PP_BUF_INIT;
        pp_buf_printf(&b, "\n%.*s\n", pn, msg + hn);
        bool keep = tn == 0 || (pn > 0 && strstr(kws, b.data) != NULL);
        explicit_bzero(b.data, b.len);
        pp_buf_reset(&b);
        if (keep)
            pp_buf_printf(&b, "%.*s", (int)n, msg);
        else
            pp_buf_printf(&b, "%s" MASK "%s", head, tail);
        return pp_buf_steal(&b, NULL);
    }
    return pp_strdup(MSG_LIBPQ);
}

/* ---- options ---------------------------------------------------------- */

/* The options as key=value text, secrets and suspect values masked (all
 * values if all). */
static char *canonical(const pp_dsn *d, bool all)
{
    pp_buf b = PP_BUF_INIT;
    pp_buf_puts(&b, "");
    for (size_t i = 0; i < d->n; i++) {
        const char *v = d->values[i];
        pp_buf_printf(&b, "%s%s=", i > 0 ? " " : "", d->keywords[i]);
        /* a value with a quote or backslash would be escaped */
        if (all || secret_keyword(d->keywords[i]) || suspect(v) || strpbrk(v, "'\\") != NULL)
            pp_buf_puts(&b, MASK);
        else
            pp_buf_printf(&b, strpbrk(v, " \t\n\v\f\r") != NULL ? "'%s'" : "%s", v);
    }
    return pp_buf_steal(&b, NULL);
}

/* shown, or if a secret of d shows in it anyway, the keywords of d. */
static char *unless_secret(char *shown, const pp_dsn *d)
{
    for (size_t i = 0; i < d->n; i++) {
        if (secret_keyword(d->keywords[i]) && strstr(shown, d->values[i]) != NULL) {
            free(shown);
            return canonical(d, true);
        }
    }
    return shown;
}

/* Is t[0, n) a value to mask (suspect, or encoded or escaped so that it
 * may decode to a suspect one), or, if key, a keyword whose value is? */
static bool masked_n(const char *t, size_t n, bool key)
{
    char *s = dup_n(t, n);
    bool m = strpbrk(s, "%\\") != NULL || (key ? secret_keyword(s) : suspect(s));
    wipe_free(s);
    return m;
}

/* Appends t[*from, a) and MASK; what follows starts at e. */
static void put_masked(pp_buf *b, const char *t, size_t *from, size_t a, size_t e)
{
    pp_buf_append(b, t + *from, a - *from);
    pp_buf_puts(b, MASK);
    *from = e;
}

/*
 * The text t[0, len) of a DSN that parsed into d and passed outline(), as
 * written but for its secrets and suspect values.
 */
static char *masked_text(const char *t, size_t len, const pp_dsn *d)
{
    size_t scheme = uri_scheme(t, len), from = 0, pos = 0;
    pp_buf b = PP_BUF_INIT;
    kv_pair p;

    if (scheme > 0) { /* user[:password]@hosts/dbname?k=v&... */
        size_t at = find(t, scheme, len, "@"), colon = find(t, scheme, at, ":");
        if (at < len && colon < at)
            put_masked(&b, t, &from, colon + 1, at);
        size_t path = find(t, at < len ? at : scheme, len, "/?"), q = find(t, path, len, "?");
        if (path < q && masked_n(t + path + 1, q - path - 1, false))
            put_masked(&b, t, &from, path + 1, q);
        for (size_t k = q + 1, e, eq; k < len; k = e + 1) {
            e = find(t, k, len, "&");
            eq = find(t, k, e, "=");
            if (eq < e &&
                (masked_n(t + k, eq - k, true) || masked_n(t + eq + 1, e - eq - 1, false)))
                put_masked(&b, t, &from, eq + 1, e);
        }
    }
    while (scheme == 0 && kv_next(t, len, &pos, &p) > 0)
        if (masked_n(t + p.k, p.kn, true) || masked_n(t + p.v, p.vn, false))
            put_masked(&b, t, &from, p.v, p.v + p.vn);
    pp_buf_append(&b, t + from, len - from);
    pp_buf_puts(&b, "");
    return unless_secret(pp_buf_steal(&b, NULL), d);
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

const char *pp_dsn_database(const pp_dsn *d)
{
    const char *db = d->dbname;
    if (db == NULL || *db == '\0')
        db = getenv("PGDATABASE");
    if (db == NULL || *db == '\0')
        db = d->user;
    if (db == NULL || *db == '\0')
        db = getenv("PGUSER");
    return db != NULL && *db != '\0' ? db : "postgres";
}

const char *pp_dsn_get(const pp_dsn *d, const char *keyword)
{
    for (size_t i = 0; d != NULL && i < d->n; i++)
        if (strcmp(d->keywords[i], keyword) == 0)
            return d->values[i];
    return NULL;
}

/* Recomputes host, port, dbname, user and label from the options. */
static void derive(pp_dsn *d)
{
    const char *host = pp_dsn_get(d, "host"), *port = pp_dsn_get(d, "port");
    /* postgres_exporter's fingerprint: host:port; for a list, the first */
    const char *lh = host != NULL && host[0] != ',' ? host : "localhost";
    const char *lp = port != NULL && port[0] != ',' ? port : "5432";
    pp_buf label = PP_BUF_INIT;

    free(d->host);
    free(d->port);
    free(d->dbname);
    free(d->user);
    free(d->label);
    d->host = pp_strdup(host); /* NULL: libpq's default, a socket or PGHOST */
    d->port = pp_strdup(port != NULL ? port : "5432");
    d->dbname = pp_strdup(pp_dsn_get(d, "dbname"));
    d->user = pp_strdup(pp_dsn_get(d, "user"));
    pp_buf_printf(&label, "%.*s:%.*s", (int)strcspn(lh, ","), lh, (int)strcspn(lp, ","), lp);
    d->label = pp_buf_steal(&label, NULL);
}

void pp_dsn_copy(pp_dsn *dst, const pp_dsn *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->n = src->n;
    dst->keywords = pp_calloc(src->n + 1, sizeof(char *));
    dst->values = pp_calloc(src->n + 1, sizeof(char *));
    for (size_t i = 0; i < src->n; i++) {
        dst->keywords[i] = pp_strdup(src->keywords[i]);
        dst->values[i] = pp_strdup(src->values[i]);
    }
    dst->host = pp_strdup(src->host);
    dst->port = pp_strdup(src->port);
    dst->dbname = pp_strdup(src->dbname);
    dst->user = pp_strdup(src->user);
    dst->label = pp_strdup(src->label);
    dst->masked = pp_strdup(src->masked);
}

void pp_dsn_set(pp_dsn *d, const char *keyword, const char *value)
{
    size_t i = 0;
    while (i < d->n && strcmp(d->keywords[i], keyword) != 0)
        i++;
    if (i < d->n) { /* replaced or removed */
        free(d->keywords[i]);
        wipe_free(d->values[i]);
        d->n--;
        memmove(d->keywords + i, d->keywords + i + 1, (d->n - i + 1) * sizeof(char *));
        memmove(d->values + i, d->values + i + 1, (d->n - i + 1) * sizeof(char *));
    }
    if (value != NULL && value[0] != '\0') {
        d->keywords = pp_realloc(d->keywords, (d->n + 2) * sizeof(char *));
        d->values = pp_realloc(d->values, (d->n + 2) * sizeof(char *));
        memmove(d->keywords + i + 1, d->keywords + i, (d->n - i) * sizeof(char *));
        memmove(d->values + i + 1, d->values + i, (d->n - i) * sizeof(char *));
        d->keywords[i] = pp_strdup(keyword);
        d->values[i] = pp_strdup(value);
        d->n++;
        d->keywords[d->n] = d->values[d->n] = NULL;
    }
    derive(d);
    /* The original text no longer says which server and database this is. */
    if (strcmp(keyword, "host") == 0 || strcmp(keyword, "hostaddr") == 0 ||
        strcmp(keyword, "port") == 0 || strcmp(keyword, "dbname") == 0 ||
        strcmp(keyword, "user") == 0 || d->masked == NULL) {
        free(d->masked);
        d->masked = unless_secret(canonical(d, false), d);
    }
}

/*
 * Hosts and ports libpq would take only to fail when it connects; checking
 * here turns a typo into a start-up error instead of a failed scrape.
 * Returns a malloc'd reason, or NULL. *outline_only says whether it is one
 * the DSN is not shown with, as its hosts or ports may be misread text.
 */
static char *check_hosts(const pp_dsn *d, bool *outline_only)
{
    const char *host = pp_dsn_get(d, "host"), *addr = pp_dsn_get(d, "hostaddr");
    const char *port = pp_dsn_get(d, "port");
    pp_buf b = PP_BUF_INIT;

    *outline_only = true;
    if ((host != NULL && !list_ok(host, host_ok)) || (addr != NULL && !list_ok(addr, host_ok)))
        return pp_strdup(MSG_HOST);
    if (port == NULL)
        return NULL;
    if (!list_ok(port, port_ok))
        return pp_strdup(MSG_PORT);
    *outline_only = false;
    for (const char *p = port;; p += strcspn(p, ",") + 1) {
        size_t n = strcspn(p, ",");
        long v = n <= 5 ? strtol(p, NULL, 10) : 0;
        if (n > 0 && (v < 1 || v > 65535)) {
            pp_buf_printf(&b, "invalid port number \"%.*s\"", (int)n, p);
            return pp_buf_steal(&b, NULL);
        }
        if (p[n] == '\0')
            break;
    }
    size_t np = list_len(port), nh = list_len(host != NULL ? host : addr != NULL ? addr : "");
    if (np > 1 && np != nh) {
        pp_buf_printf(&b, "could not match %zu port numbers to %zu hosts", np, nh);
        return pp_buf_steal(&b, NULL);
    }
    return NULL;
}

/*
 * Reads text, trimmed. On success returns NULL with out filled. Otherwise
 * out is empty and returns a reason that is safe to print next to *shown.
 * *shown (malloc'd either way) is what may be shown of the text.
 */
static char *read_dsn(const char *text, pp_dsn *out, char **shown)
{
    size_t len;
    const char *t = trim(text, strlen(text), &len);
    char *s = dup_n(t, len), *pqerr = NULL, *reason = NULL;
    pp_buf show = PP_BUF_INIT, kws = PP_BUF_INIT;
    const char *own = outline(s, len, &show, &kws);
    PQconninfoOption *opts = own == NULL ? PQconninfoParse(s, &pqerr) : NULL;
    bool outline_only = true;

    memset(out, 0, sizeof *out);
    if (opts == NULL) {
        reason = own != NULL     ? pp_strdup(own)
                 : pqerr != NULL ? libpq_reason(pqerr, kws.data)
                                 : pp_strdup("out of memory");
        if (pqerr != NULL)
            explicit_bzero(pqerr, strlen(pqerr));
        PQfreemem(pqerr);
        goto done;
    }
    out->keywords = pp_calloc(1, sizeof(char *));
    out->values = pp_calloc(1, sizeof(char *));
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL)
            continue;
        pp_dsn_set(out, o->keyword, o->val);
        explicit_bzero(o->val, strlen(o->val)); /* libpq does not clear its copies */
    }
    PQconninfoFree(opts);
    derive(out);
    reason = check_hosts(out, &outline_only);
    if (reason == NULL || !outline_only) {
        char *m = masked_text(s, len, out);
        pp_buf_reset(&show);
        pp_buf_puts(&show, m);
        free(m);
    }
done:
    if (reason != NULL && show.len == 0)
        pp_buf_puts(&show, MASK);
    pp_buf_puts(&show, ""); /* never NULL */
    *shown = pp_buf_steal(&show, NULL);
    pp_buf_deinit(&kws);
    if (reason != NULL)
        pp_dsn_deinit(out);
    wipe_free(s);
    return reason;
}

/* "<what> "<shown>": <reason>", or "<what>: <reason>" when nothing of the
 * text is shown. */
static void report(const char *shown, const char *what, const char *reason, char *err,
                   size_t errlen)
{
    if (strcmp(shown, MASK) == 0)
        set_err(err, errlen, "%s: %s", what, reason);
    else
        set_err(err, errlen, "%s \"%s\": %s", what, shown, reason);
}

/* Parses text; on error err gets a message that starts with what. */
static int parse_one(const char *text, const char *what, pp_dsn *out, char *err, size_t errlen)
{
    char *shown;
    char *reason = read_dsn(text, out, &shown);
    if (reason != NULL) {
        report(shown, what, reason, err, errlen);
        free(reason);
        free(shown);
        return -1;
    }
    free(out->masked);
    out->masked = shown;
    return 0;
}

int pp_dsn_parse(const char *text, pp_dsn *out, char *err, size_t errlen)
{
    return parse_one(text, "invalid DSN", out, err, errlen);
}

char *pp_dsn_mask_text(const char *text)
{
    char *shown = NULL;
    pp_dsn d = {0};
    if (text != NULL)
        free(read_dsn(text, &d, &shown));
    pp_dsn_deinit(&d);
    return shown;
}

void pp_dsn_list_free(pp_dsn *list, size_t n)
{
    for (size_t i = 0; list != NULL && i < n; i++)
        pp_dsn_deinit(&list[i]);
    free(list);
}

int pp_dsn_parse_list(const char *text, pp_dsn **out, size_t *n, char *err, size_t errlen)
{
    size_t count = list_len(text), parsed = 0;
    char **el = pp_calloc(count, sizeof *el);
    pp_dsn *list = pp_calloc(count, sizeof *list);
    char what[48];
    int rc = -1;

    *out = NULL;
    *n = 0;
    for (size_t i = 0, len, tn; i < count; i++, text += len + 1) {
        len = strcspn(text, ",");
        const char *t = trim(text, len, &tn);
        el[i] = dup_n(t, tn);
    }
    for (size_t i = 0; i < count; i++) {
        if (el[i][0] == '\0') {
            set_err(err, errlen, "DSN %zu is empty", i + 1);
            goto cleanup;
        }
    }
    for (size_t i = 0; i < count; i++, parsed++) {
        snprintf(what, sizeof what, "invalid DSN %zu", i + 1);
        /* the next element begins no DSN of its own (a URI or "keyword =") */
        size_t pos = 0, next = i + 1 < count ? strlen(el[i + 1]) : 0;
        kv_pair p;
        if (next > 0 && uri_scheme(el[i + 1], next) == 0 &&
            (kv_next(el[i + 1], next, &pos, &p) == 0 || p.kn == 0)) {
            /* shown in outline as read alone, up to the ',' that cut it:
             * its secrets begin no sooner than they do in the whole */
            pp_buf show = PP_BUF_INIT, kws = PP_BUF_INIT;
            outline(el[i], strlen(el[i]), &show, &kws);
            report(show.len > 0 ? show.data : MASK, what, MSG_SPLIT, err, errlen);
            pp_buf_deinit(&show);
            pp_buf_deinit(&kws);
            goto cleanup;
        }
        if (parse_one(el[i], what, &list[i], err, errlen) != 0)
            goto cleanup;
    }
    *out = list;
    *n = count;
    list = NULL;
    rc = 0;
cleanup:
    pp_dsn_list_free(list, parsed);
    for (size_t i = 0; i < count; i++)
        wipe_free(el[i]);
    free(el);
    return rc;
}

/* ---- the environment -------------------------------------------------- */

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
    size_t got, n;
    int saved = 0;
    FILE *f = fopen(path, "r");

    if (f == NULL)
        return -1;
    while (saved == 0 && (got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        pp_buf_append(&b, chunk, got);
        saved = b.len > MAX_FILE_SIZE ? EFBIG : 0;
    }
    if (saved == 0 && ferror(f))
        saved = errno != 0 ? errno : EIO;
    const char *t = trim(b.data != NULL ? b.data : "", b.len, &n);
    if (saved == 0)
        *out = dup_n(t, n);
    fclose(f);
    if (b.data != NULL)
        explicit_bzero(b.data, b.len);
    pp_buf_deinit(&b);
    explicit_bzero(chunk, sizeof chunk);
    errno = saved;
    return saved == 0 ? 0 : -1;
}

/* NAME_FILE (its contents, trimmed) wins over NAME, as in postgres_exporter.
 * Sets *used to the variable the value came from. */
static int read_source(const char *(*get)(const char *), const char *var, const char *file_var,
                       char **value, const char **used, char *err, size_t errlen)
{
    const char *path = get(file_var), *v = get(var);
    if (path == NULL || path[0] == '\0') {
        *used = var;
        *value = pp_strdup(v != NULL ? v : "");
        return 0;
    }
    *used = file_var;
    if (read_trimmed(path, value) == 0)
        return 0;
    set_err(err, errlen, "%s: could not read file \"%s\": %s", file_var, path, strerror(errno));
    return -1;
}

int pp_dsn_from_env(const char *(*getenv_fn)(const char *), pp_dsn **out, size_t *n, char *err,
                    size_t errlen)
{
    char *user = NULL, *pass = NULL, *uri = NULL, *tmp = NULL;
    const char *user_var, *pass_var, *uri_var = "DATA_SOURCE_URI";
    pp_buf dsn = PP_BUF_INIT;
    int rc = -1;

    *out = NULL;
    *n = 0;
    if (getenv_fn == NULL)
        getenv_fn = std_getenv;
    tmp = pp_calloc(errlen > 0 ? errlen : 1, 1);

    const char *name = getenv_fn("DATA_SOURCE_NAME");
    if (name != NULL && name[0] != '\0') {
        rc = pp_dsn_parse_list(name, out, n, tmp, errlen);
        if (rc != 0)
            set_err(err, errlen, "DATA_SOURCE_NAME: %s", tmp);
        goto cleanup;
    }
    if (read_source(getenv_fn, "DATA_SOURCE_USER", "DATA_SOURCE_USER_FILE", &user, &user_var, err,
                    errlen) != 0 ||
        read_source(getenv_fn, "DATA_SOURCE_PASS", "DATA_SOURCE_PASS_FILE", &pass, &pass_var, err,
                    errlen) != 0 ||
        read_source(getenv_fn, "DATA_SOURCE_URI", "DATA_SOURCE_URI_FILE", &uri, &uri_var, err,
                    errlen) != 0)
        goto cleanup;
    size_t un;
    const char *u = trim(uri, strlen(uri), &un);
    if (un == 0) {
        rc = 0; /* nothing configured: the caller decides what that means */
        goto cleanup;
    }
    /* user and password percent-encoded: libpq decodes them back to
     * exactly what was given */
    pp_buf_puts(&dsn, "postgresql://");
    for (const char *s = user;; s = pass) {
        for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
            pp_buf_printf(&dsn, kw_char((char)*p) || strchr("-.~", *p) ? "%c" : "%%%02X", *p);
        pp_buf_putc(&dsn, s == user ? ':' : '@');
        if (s == pass)
            break;
    }
    pp_buf_append(&dsn, u, un);

    pp_dsn *list = pp_calloc(1, sizeof *list);
    if (parse_one(dsn.data, "invalid DSN", list, tmp, errlen) != 0) {
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
