/*
 * fuzz_dsn: data source names (dsn.h): pp_dsn_parse, pp_dsn_parse_list and
 * pp_dsn_mask_text on the same text, checking that no password reaches a
 * masked form, a label or an error message.
 *
 * The first byte picks a template; the rest is split on NUL bytes into
 * pieces U, P, H, D, E (user, password, host, database, extra; missing
 * pieces are empty). Template 0 uses the rest as the text itself; the
 * others place P where a password goes, written raw, quoted, escaped or
 * percent-encoded, in URIs, key=value strings and lists (see templates[]).
 *
 * The leak check: the same template built with an empty P is "the rest".
 * A password candidate (P itself, and the form written into the text when
 * it is encoded) is checked when it is at least 4 bytes long, holds no 'x'
 * (so that it cannot overlap the "xxxxx" mask), and is not a substring of
 * the rest (also as a message quotes it), of an option value libpq reads
 * from the rest, or of a message text that pgpulse or libpq writes by
 * itself; nor is a P that no reading of the text takes
 * for a password (see p_not_a_password()).
 * Such a candidate can only appear in an output by leaking, so it must not
 * appear in the error message, the masked forms, or the label of what
 * parsed and the host and port it is made of. (The database and user are
 * option values taken literally: in "dbname=postgresql://u:pw@h" the URI is
 * a database name, as pgpulse does not ask libpq to expand it, and neither
 * is shown anywhere.) For template 0 the check uses
 * the password libpq read, when it parsed and the password occurs once.
 */
#include <stdbool.h>
#include <string.h>

#include <libpq-fe.h>

#include "buf.h"
#include "dsn.h"
#include "fuzz.h"

enum { U, P, H, D, E, NPIECES };

/*
 * Templates: a character after '%' is replaced by a piece. %U %P %H %D %E
 * insert the piece raw; %Q inserts P with libpq's key=value escapes (\' and
 * \\); %C inserts P percent-encoded.
 */
static const char *const templates[] = {
    NULL, /* the text as it is */
    "postgresql://%U:%P@%H/%D?%E",
    "postgres://%U:%C@%H/%D",
    "host=%H user=%U password=%P dbname=%D %E",
    "host=%H user=%U password='%Q' dbname=%D %E",
    "password = '%P' host=%H user=%U",
    "postgresql://%H/%D?user=%U&password=%P&%E",
    "postgresql://%U:%P@%H/%D,postgresql://%U@%H/%E",
    "%E,host=%H user=%U password=%P dbname=%D",
    "%U:%P@%H/%D",
    "postgresql://%U:%P@%H:%D/%E",
    "postgresql://%U@%H/%D?password=%C&%E",
    "dbname=postgresql://%U:%P@%H/%D host=%H",
    "%E host=%H password=%P",
    " \tpostgresql://%U:%P@%H/%D?%E \n",
    "sslpassword=%P host=%H %E",
};
#define NTEMPLATES (sizeof templates / sizeof templates[0])

/* Texts that appear in messages whatever the input (libpq's conninfo
 * parser and dsn.c). A candidate inside one of them proves nothing. */
static const char *const fixed_texts[] = {
    "missing \"=\" after \"\" in connection info string",
    "unterminated quoted string in connection info string",
    "invalid connection option \"\"",
    "invalid URI propagated to internal parser routine: \"\"",
    "end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"\"",
    "IPv6 host address may not be empty in URI: \"\"",
    "unexpected character \"\" at position in URI (expected \":\" or \"/\"): \"\"",
    "extra key/value separator \"=\" in URI query parameter: \"\"",
    "missing key/value separator \"=\" in URI query parameter: \"\"",
    "invalid URI query parameter: \"\"",
    "invalid percent-encoded token: \"\"",
    "forbidden value %00 in percent-encoded value: \"\"",
    "out of memory",
    "invalid DSN \"\": ",
    "invalid DSN: ",
    "DSN is empty",
    "neither a URI (postgresql://...) nor key=value pairs",
    "white space in a URI must be percent-encoded (as %20)",
    "ambiguous URI: percent-encode \"@\", \"/\", \"?\" and \"#\" in the user name and password, "
    "and \"@\" anywhere else (as %40, %2F, %3F and %23)",
    "ambiguous key=value pair: a value after \"= \" holds \"=\" (quote such a value, and write an "
    "empty one as '')",
    "the list is split on \",\" and this DSN is cut in two (write \",\" as %2C in a URI)",
    "invalid host name (a host is a name, an IP address or a socket directory)",
    "invalid port number (not a number)",
    "not a valid connection string",
    "invalid port number \"\"",
    "could not match port numbers to hosts",
    "localhost:5432",
    /* and the keywords of a masked form: see in_fixed_texts() */
};

static void put_encoded(pp_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')) {
            pp_buf_putc(b, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 0xF]};
            pp_buf_append(b, e, 3);
        }
    }
}

static void put_escaped(pp_buf *b, const char *s)
{
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '\'' || *p == '\\')
            pp_buf_putc(b, '\\');
        pp_buf_putc(b, *p);
    }
}

/* Expands tpl with the pieces (pw replacing piece P); malloc'd. */
static char *expand(const char *tpl, char *const *pieces, const char *pw)
{
    pp_buf b = PP_BUF_INIT;
    pp_buf_reserve(&b, 64);
    for (const char *t = tpl; *t != '\0'; t++) {
        if (*t != '%' || t[1] == '\0') {
            pp_buf_putc(&b, *t);
            continue;
        }
        switch (*++t) {
        case 'U':
            pp_buf_puts(&b, pieces[U]);
            break;
        case 'P':
            pp_buf_puts(&b, pw);
            break;
        case 'H':
            pp_buf_puts(&b, pieces[H]);
            break;
        case 'D':
            pp_buf_puts(&b, pieces[D]);
            break;
        case 'E':
            pp_buf_puts(&b, pieces[E]);
            break;
        case 'Q':
            put_escaped(&b, pw);
            break;
        case 'C':
            put_encoded(&b, pw);
            break;
        default:
            pp_buf_putc(&b, '%');
            pp_buf_putc(&b, *t);
            break;
        }
    }
    return pp_buf_steal(&b, NULL);
}

/* The passwords to look for in the outputs; at most a few. */
typedef struct secrets {
    const char *v[4];
    size_t n;
} secrets;

static bool in_fixed_texts(const char *c)
{
    for (size_t i = 0; i < sizeof fixed_texts / sizeof fixed_texts[0]; i++) {
        if (strstr(fixed_texts[i], c) != NULL)
            return true;
    }
    /* every keyword libpq knows, as a masked form writes it */
    PQconninfoOption *opts = PQconninfoParse("", NULL);
    bool found = false;
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL && !found; o++) {
        pp_buf b = PP_BUF_INIT;
        pp_buf_printf(&b, " %s=", o->keyword);
        found = strstr(b.data, c) != NULL;
        pp_buf_deinit(&b);
    }
    PQconninfoFree(opts);
    return found;
}

/* Is c in the rest once a '"' at either end is taken off? Messages quote
 * the DSN, and libpq quotes pieces of it ("invalid connection option
 * "foo""). */
static bool in_rest_quoted(const char *c, const char *rest)
{
    size_t n = strlen(c);
    size_t a = n > 0 && c[0] == '"';
    size_t b = n > a && c[n - 1] == '"' ? n - 1 : n;
    if (a == 0 && b == n)
        return false;
    char *inner = pp_malloc(b - a + 1);
    memcpy(inner, c + a, b - a);
    inner[b - a] = '\0';
    bool in = strstr(rest, inner) != NULL;
    free(inner);
    return in;
}

/* Adds c when an occurrence of it in an output can only be a leak. (A
 * candidate made of ',' only may be libpq's own: it joins the ports of a
 * host list with ','.) */
/* Is c in a value libpq reads from text? libpq unescapes and
 * percent-decodes: "host=aB\\BB" names host "aBBB" whatever the password. */
static bool in_values(const char *c, const char *text)
{
    bool found = false;
    PQconninfoOption *opts = PQconninfoParse(text, NULL);
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL && !found; o++)
        found = o->val != NULL && strstr(o->val, c) != NULL;
    PQconninfoFree(opts);
    return found;
}

/* ... or in one of its ','-separated pieces (a list)? */
static bool in_values_of(const char *c, const char *text)
{
    char *copy = pp_strdup(text), *end;
    bool found = in_values(c, text);
    for (char *piece = copy; !found && piece != NULL; piece = end != NULL ? end + 1 : NULL) {
        if ((end = strchr(piece, ',')) != NULL)
            *end = '\0';
        found = in_values(c, piece);
    }
    free(copy);
    return found;
}

static void add_secret(secrets *s, const char *c, const char *rest)
{
    if (s->n == sizeof s->v / sizeof s->v[0] || strlen(c) < 4 || strchr(c, 'x') != NULL ||
        strstr(rest, c) != NULL || in_rest_quoted(c, rest) || strspn(c, ",") == strlen(c) ||
        in_fixed_texts(c) || in_values_of(c, rest))
        return;
    s->v[s->n++] = c;
}

static bool is_blank(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/*
 * Is P, placed by tpl, no password in any reading of the text, so that it
 * is not checked?
 * - After "%U:" P is in the user info of a URI (or of one without its
 *   scheme), which cannot hold a blank. A P with a blank followed by
 *   "keyword=" makes a text that libpq, when it accepts it, reads as
 *   key=value pairs, with that part of P an option of its own: U "host=",
 *   P ":1 dbname=" and H "h" make "host=::1 dbname=@h/", which says the
 *   same to libpq and to anyone reading it. (A ',' in U can also make the
 *   rest of the URI a key=value DSN of the list.)
 * - In a URI query, a P that starts with '&' leaves the password empty and
 *   starts the next parameter: "password=&sslmode=disable".
 */
static bool p_not_a_password(const char *tpl, const char *p)
{
    if (strstr(tpl, "password=%P&") != NULL && p[0] == '&')
        return true;
    if (strstr(tpl, "%U:%P") == NULL)
        return false;
    for (; *p != '\0'; p++) {
        if (!is_blank(*p))
            continue;
        const char *w = p;
        while (is_blank(*w))
            w++;
        const char *k = w;
        while ((*w >= 'a' && *w <= 'z') || (*w >= 'A' && *w <= 'Z') || (*w >= '0' && *w <= '9') ||
               *w == '_')
            w++;
        while (w > k && is_blank(*w))
            w++;
        if (w > k && *w == '=')
            return true;
    }
    return false;
}

static void check_no_secret(const secrets *s, const char *what, const char *out)
{
    if (out == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        if (strstr(out, s->v[i]) != NULL) {
            fprintf(stderr, "password \"%s\" leaked into the %s: \"%s\"\n", s->v[i], what, out);
            FUZZ_CHECK(!"password leaked");
        }
    }
}

static void check_dsn(const pp_dsn *d, const secrets *s)
{
    FUZZ_CHECK(d->keywords != NULL && d->values != NULL);
    FUZZ_CHECK(d->keywords[d->n] == NULL && d->values[d->n] == NULL);
    FUZZ_CHECK(d->port != NULL && d->label != NULL && d->masked != NULL);
    /* no host option, no host: libpq's default */
    FUZZ_CHECK((d->host == NULL) == (pp_dsn_get(d, "host") == NULL));
    FUZZ_CHECK(strchr(d->label, ':') != NULL);
    check_no_secret(s, "masked form", d->masked);
    /* "host:port": the ':' is pgpulse's own, so each side is checked */
    char *label = pp_strdup(d->label);
    char *colon = strrchr(label, ':');
    *colon = '\0';
    check_no_secret(s, "label", label);
    check_no_secret(s, "label", colon + 1);
    free(label);
    check_no_secret(s, "host", d->host);
    check_no_secret(s, "port", d->port);
}

/* Number of occurrences of needle in hay (overlapping ones too). */
static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/*
 * For a text of unknown shape: the passwords libpq read that occur once in
 * the text and in no other option, which therefore must have been masked.
 */
static void secrets_from_parse(secrets *s, const pp_dsn *d, const char *text)
{
    for (size_t i = 0; i < d->n && s->n < sizeof s->v / sizeof s->v[0]; i++) {
        const char *v = d->values[i];
        size_t kn = strlen(d->keywords[i]);
        if (kn < 8 || strcmp(d->keywords[i] + kn - 8, "password") != 0)
            continue;
        if (strlen(v) < 4 || strchr(v, 'x') != NULL || count(text, v) > 1 || in_fixed_texts(v))
            continue;
        bool elsewhere = false;
        for (size_t k = 0; k < d->n; k++) {
            if (k != i && (strstr(d->values[k], v) != NULL || strstr(d->keywords[k], v) != NULL))
                elsewhere = true;
        }
        if (!elsewhere)
            s->v[s->n++] = v;
    }
}

static void run(const char *text, const secrets *known, size_t errlen)
{
    char err[1024];
    pp_dsn d;
    secrets s = *known;

    /* one DSN */
    memset(err, 'Z', sizeof err);
    err[0] = '\0';
    if (pp_dsn_parse(text, &d, err, errlen) == 0) {
        if (s.n == 0)
            secrets_from_parse(&s, &d, text);
        check_dsn(&d, &s);
        pp_dsn_deinit(&d);
    } else {
        FUZZ_CHECK(memchr(err, '\0', errlen) != NULL);
        FUZZ_CHECK(errlen <= 1 || err[0] != '\0');
        FUZZ_CHECK(d.keywords == NULL && d.masked == NULL);
        check_no_secret(&s, "error message", err);
    }
    pp_dsn_deinit(&d); /* zeroed either way: a second call is harmless */

    /* the DATA_SOURCE_NAME form */
    pp_dsn *list = NULL;
    size_t n = 99;
    s = *known;
    memset(err, 'Z', sizeof err);
    err[0] = '\0';
    if (pp_dsn_parse_list(text, &list, &n, err, errlen) == 0) {
        size_t commas = 0;
        for (const char *p = text; *p != '\0'; p++)
            commas += *p == ',';
        FUZZ_CHECK(list != NULL && n == commas + 1);
        for (size_t i = 0; i < n; i++) {
            secrets si = s;
            if (si.n == 0 && n == 1)
                secrets_from_parse(&si, &list[i], text);
            check_dsn(&list[i], &si);
        }
        pp_dsn_list_free(list, n);
    } else {
        FUZZ_CHECK(list == NULL && n == 0);
        FUZZ_CHECK(memchr(err, '\0', errlen) != NULL);
        FUZZ_CHECK(errlen <= 1 || err[0] != '\0');
        check_no_secret(&s, "error message of a list", err);
    }

    /* masking text that did not parse */
    char *m = pp_dsn_mask_text(text);
    FUZZ_CHECK(m != NULL);
    check_no_secret(known, "masked text", m);
    free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned mode = data[0];
    const char *tpl = templates[(mode & 0x0F) % NTEMPLATES];
    /* now and then a short error buffer, to exercise truncation */
    size_t errlen = (mode & 0x10) ? 24 : 1024;

    char *rest = malloc(size);
    FUZZ_CHECK(rest != NULL);
    memcpy(rest, data + 1, size - 1);
    rest[size - 1] = '\0';

    if (tpl == NULL) {
        secrets none = {{NULL}, 0};
        run(rest, &none, errlen);
        free(rest);
        return 0;
    }

    char *pieces[NPIECES];
    char *p = rest, *end = rest + size - 1;
    for (size_t i = 0; i < NPIECES; i++) {
        pieces[i] = p;
        if (p < end)
            p += strlen(p) + 1;
        if (p > end)
            p = end; /* the last piece ran to the end: the others are empty */
    }
    char *text = expand(tpl, pieces, pieces[P]);
    char *without = expand(tpl, pieces, "");

    /* the password as it is, and as the text spells it */
    secrets s = {{NULL}, 0};
    pp_buf enc = PP_BUF_INIT;
    pp_buf_puts(&enc, ""); /* never NULL */
    if (strstr(tpl, "%C") != NULL)
        put_encoded(&enc, pieces[P]);
    else if (strstr(tpl, "%Q") != NULL)
        put_escaped(&enc, pieces[P]);
    if (!p_not_a_password(tpl, pieces[P])) {
        add_secret(&s, pieces[P], without);
        if (strcmp(enc.data, pieces[P]) != 0)
            add_secret(&s, enc.data, without);
    }

    run(text, &s, errlen);

    pp_buf_deinit(&enc);
    free(without);
    free(text);
    free(rest);
    return 0;
}
