/*
 * dsn: the data source names pgpulse connects to.
 *
 * Parses what postgres_exporter accepts: DATA_SOURCE_NAME split on ',' into
 * several DSNs, each a URI (postgresql:// or postgres://) or a libpq
 * key=value string; or, when DATA_SOURCE_NAME is empty, one DSN composed from
 * DATA_SOURCE_URI[_FILE], DATA_SOURCE_USER[_FILE], DATA_SOURCE_PASS[_FILE].
 * Parsing uses libpq's own PQconninfoParse (pure, no network), so every
 * option libpq knows is accepted and anything else is an error.
 *
 * A pp_dsn keeps the options as keyword/value arrays ready for
 * PQconnectStartParams, the "server" label ("host:port", as
 * postgres_exporter derives it) and a masked form for logs and errors in
 * which the password is replaced by "xxxxx". The password itself is only
 * ever in the options array: no message, label or masked form holds it,
 * whatever the input.
 */
#ifndef PGPULSE_DSN_H
#define PGPULSE_DSN_H

#include <stddef.h>

typedef struct pp_dsn {
    char **keywords; /* owned, NULL-terminated, parallel to values */
    char **values;   /* owned */
    size_t n;        /* number of options (not counting the terminator) */
    char *host;      /* owned: the host option (may be a socket directory or
                        a comma list), or NULL when the DSN names no host:
                        libpq then uses its default, PGHOST or else the Unix
                        socket directory it was built with */
    char *port;      /* owned: the port option, default "5432" */
    char *dbname;    /* owned, may be NULL */
    char *user;      /* owned, may be NULL */
    char *label;     /* owned: "host:port" for the server label; the first
                        host and port of a list; as postgres_exporter shows
                        it, "localhost" and "5432" where the DSN names none
                        (whatever libpq connects to then) */
    char *masked;    /* owned: the options for humans as key=value text, in
                        libpq's order, with secrets and values that may hide
                        a connection string of their own as "xxxxx" */
} pp_dsn;

/* Parses one DSN (URI or key=value). On error returns -1 and writes a
 * message into err that never contains the password, e.g.
 *   invalid DSN "user=u password=xxxxx host=h port=99999": invalid port
 *   number "99999"
 * showing the text as pp_dsn_mask_text does. */
int pp_dsn_parse(const char *text, pp_dsn *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void pp_dsn_deinit(pp_dsn *d);

/* The database the DSN connects to, as libpq defaults it: dbname, else
 * PGDATABASE, else the user (user, else PGUSER), else "postgres".
 * Borrowed (from d or the environment). */
const char *pp_dsn_database(const pp_dsn *d);

/* Returns the value of keyword in d, or NULL. Borrowed. */
const char *pp_dsn_get(const pp_dsn *d, const char *keyword);
/* A deep copy of src into dst (which is overwritten). */
void pp_dsn_copy(pp_dsn *dst, const pp_dsn *src);

/* Sets (adds or replaces) an option. */
void pp_dsn_set(pp_dsn *d, const char *keyword, const char *value);

/* What pgpulse's messages show of an arbitrary DSN text, for messages
 * about text that may not parse. Returns a malloc'd string; NULL gives
 * NULL. A DSN that pp_dsn_parse accepts (or refuses only for its port
 * numbers) is shown as its masked form (see pp_dsn.masked); any other text
 * in outline only: a URI as its scheme ("postgresql://xxxxx"), key=value
 * text as its keywords, every value "xxxxx", up to the first keyword that
 * is secret or unknown or whose value may hide something ("host=xxxxx
 * pasword=xxxxx"); nothing recognisable at all as "xxxxx". */
char *pp_dsn_mask_text(const char *text);

/* Reads the data sources from the environment as postgres_exporter does
 * (see the file comment). getenv_fn lets tests supply an environment; pass
 * NULL for getenv. On success *out is a malloc'd array of *n parsed DSNs
 * (free with pp_dsn_list_free); *n may be 0 when nothing is set. On error
 * returns -1 with a message naming the variable, the DSN's position in the
 * list (1-based) and the masked DSN. */
int pp_dsn_from_env(const char *(*getenv_fn)(const char *), pp_dsn **out, size_t *n, char *err,
                    size_t errlen) __attribute__((warn_unused_result));
/* Parses a comma-separated list (the DATA_SOURCE_NAME form). */
int pp_dsn_parse_list(const char *text, pp_dsn **out, size_t *n, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void pp_dsn_list_free(pp_dsn *list, size_t n);

#endif
