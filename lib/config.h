/*
 * config: command-line flags and environment, as postgres_exporter reads
 * them: "--flag=value" and "--flag value", "--[no-]flag" for booleans, a
 * flag beats its environment variable, an unknown flag is an error.
 * Errors name the flag.
 *
 * A flags file (--config.flags-file) holds flags too, one per line
 * ("--flag=value" or "--flag value"; blank lines and lines starting with
 * '#' are skipped). It is read at start-up and again at every reload, so
 * what it sets can change without a restart. Precedence: command line,
 * then the flags file, then the environment. Errors in it name
 * "file:line". Data sources are parsed separately (dsn.h).
 */
#ifndef PGPULSE_CONFIG_H
#define PGPULSE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "log.h"

typedef struct pp_config {
    char **listen; /* owned; default {":9187"} */
    size_t nlisten;
    char **dashboard; /* owned; --web.dashboard-address, none by default */
    size_t ndashboard;
    char *telemetry_path; /* owned; default "/metrics" */
    char **catalogs;      /* owned; --catalog, in order; none = built-in */
    size_t ncatalogs;
    char **data_sources; /* owned; --data-source.name; none = the environment */
    size_t ndata_sources;
    char *flags_file;        /* owned; --config.flags-file, or NULL */
    char *extend_query_path; /* owned; postgres_exporter's queries.yaml, or NULL */
    bool auto_discover;      /* --auto-discover-databases */
    char *exclude_databases; /* owned; comma-separated, or NULL */
    char *include_databases; /* owned; comma-separated, or NULL */
    pp_log_level log_level;
    pp_log_format log_format;
    double connect_timeout;  /* seconds */
    double lock_timeout;     /* seconds, at least 1 ms */
    double write_timeout;    /* seconds a response may take to be read */
    double shutdown_timeout; /* seconds responses in flight get at shutdown */
    double startup_wait;     /* most seconds a first scrape waits for targets */
    double max_connections;  /* open HTTP connections; 0 = no cap */
    double max_series;       /* samples per query run unless the query says */
    double max_connecting;   /* connection attempts in flight at once */
    double role_interval;    /* seconds between role checks at most */
    bool enable_lifecycle;   /* POST /-/reload */
    bool show_version;
    bool show_help;
} pp_config;

/* Parses argv (argv[0] is skipped) and the environment (getenv_fn, or
 * getenv when NULL). On error returns -1 with a message naming the flag. */
int pp_config_parse(pp_config *c, int argc, char **argv, const char *(*getenv_fn)(const char *),
                    char *err, size_t errlen) __attribute__((warn_unused_result));
void pp_config_deinit(pp_config *c);
void pp_config_usage(FILE *out);

#define PP_CONFIG_MAX_DURATION (365.0 * 24 * 3600)

/* Reads a non-negative decimal from p, at most up to end: digits with an
 * optional fraction ("1", "1.5", ".5"); no sign, exponent, hex, "inf" or
 * "nan", which strtod would accept. Returns where the number ends and sets
 * *out, or returns p (and leaves *out) when there is none. The durations
 * here and HTTP header values (which are not NUL-terminated) use it. */
const char *pp_config_read_decimal(const char *p, const char *end, double *out);

/* Parses a Go-style duration ("500ms", "15s", "1m30s", "1.5s") or plain
 * seconds. Refuses signs, exponents, "inf", "nan" and anything over
 * PP_CONFIG_MAX_DURATION. */
int pp_config_parse_duration(const char *s, double *out) __attribute__((warn_unused_result));

#endif
