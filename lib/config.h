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

/*
 * postgres_exporter v0.20.1's collectors, each with a --[no-]collector.<name>
 * flag: X(name, default). The defaults are upstream's, except postmaster
 * and stat_wal_receiver, which pgpulse has always collected (the HA
 * cluster's alerts read pg_stat_wal_receiver_info). A catalog query names
 * its collector; queries of a collector that is off are not loaded.
 */
#define PP_COLLECTORS(X)                                                                           \
    X(buffercache_summary, "false")                                                                \
    X(database, "true")                                                                            \
    X(database_wraparound, "false")                                                                \
    X(locks, "true")                                                                               \
    X(long_running_transactions, "false")                                                          \
    X(postmaster, "true")                                                                          \
    X(process_idle, "false")                                                                       \
    X(replication, "true")                                                                         \
    X(replication_slots, "true")                                                                   \
    X(roles, "true")                                                                               \
    X(settings, "true")                                                                            \
    X(stat_activity, "true")                                                                       \
    X(stat_activity_autovacuum, "false")                                                           \
    X(stat_archiver, "true")                                                                       \
    X(stat_bgwriter, "true")                                                                       \
    X(stat_checkpointer, "false")                                                                  \
    X(stat_database, "true")                                                                       \
    X(stat_progress_vacuum, "true")                                                                \
    X(stat_replication, "true")                                                                    \
    X(stat_statements, "false")                                                                    \
    X(stat_user_tables, "true")                                                                    \
    X(stat_wal_receiver, "true")                                                                   \
    X(statio_user_indexes, "false")                                                                \
    X(statio_user_tables, "true")                                                                  \
    X(wal, "true")                                                                                 \
    X(xlog_location, "false")

typedef enum pp_collector {
#define PP_COLLECTOR_ENUM(name, def) PP_COLLECTOR_##name,
    PP_COLLECTORS(PP_COLLECTOR_ENUM)
#undef PP_COLLECTOR_ENUM
        PP_NCOLLECTORS
} pp_collector;

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
    char *flags_file;          /* owned; --config.flags-file, or NULL */
    char *extend_query_path;   /* owned; postgres_exporter's queries.yaml, or NULL */
    char *config_file;         /* owned; --config.file (auth modules for /probe) */
    char *probe_allowed;       /* owned; --web.probe-allowed-targets, or NULL: any */
    double probe_idle;         /* seconds a probed target stays without a probe */
    double probe_max;          /* most probed targets at once */
    char *constant_labels;     /* owned; --constantLabels "k=v,k2=v2", or NULL */
    char *metric_prefix;       /* owned; --metric-prefix, default "pg" */
    double collection_timeout; /* seconds: no query runs longer */
    bool auto_discover;        /* --auto-discover-databases */
    char *exclude_databases;   /* owned; comma-separated, or NULL */
    char *include_databases;   /* owned; comma-separated, or NULL */
    pp_log_level log_level;
    pp_log_format log_format;
    double connect_timeout;          /* seconds */
    double lock_timeout;             /* seconds, at least 1 ms */
    double write_timeout;            /* seconds a response may take to be read */
    double shutdown_timeout;         /* seconds responses in flight get at shutdown */
    double startup_wait;             /* most seconds a first scrape waits for targets */
    double max_connections;          /* open HTTP connections; 0 = no cap */
    double max_series;               /* samples per query run unless the query says */
    double max_connecting;           /* connection attempts in flight at once */
    double max_per_server;           /* connections to one server; 0 = no bound */
    double role_interval;            /* seconds between role checks at most */
    bool enable_lifecycle;           /* POST /-/reload */
    bool collectors[PP_NCOLLECTORS]; /* --[no-]collector.<name> */
    /* --collector.stat_statements.*: handed to the server as session
     * settings the stat_statements queries read */
    bool ss_include_query;
    double ss_query_length;
    double ss_limit;
    char *ss_exclude_databases;    /* owned, or NULL */
    char *ss_exclude_users;        /* owned, or NULL */
    bool disable_default_metrics;  /* drop the catalog's default_metrics queries */
    bool disable_settings_metrics; /* postgres_exporter 0.11's --no-collector.settings */
    bool dumpmaps;                 /* print the catalog and exit */
    char *web_config_file;         /* owned; exporter-toolkit web config, or NULL (plain HTTP) */
    bool show_version;
    bool show_help;
    bool systemd_socket; /* --web.systemd-socket */
} pp_config;

/* Parses argv (argv[0] is skipped) and the environment (getenv_fn, or
 * getenv when NULL). On error returns -1 with a message naming the flag. */
int pp_config_parse(pp_config *c, int argc, char **argv, const char *(*getenv_fn)(const char *),
                    char *err, size_t errlen) __attribute__((warn_unused_result));
void pp_config_deinit(pp_config *c);

/* Whether the queries of collector name run: its --[no-]collector flag
 * (settings also obeys --disable-settings-metrics); a collector that has
 * no flag (a catalog of one's own) is always on. */
bool pp_config_collector_enabled(const pp_config *c, const char *name);
void pp_config_usage(FILE *out);

/* --config.file's default: a missing file of that name is no error. */
#define PP_CONFIG_DEFAULT_CONFIG_FILE "postgres_exporter.yml"

/* --constantLabels "k=v,k2=v2" as a label block 'k="v",k2="v2"' (malloc'd
 * into *out; NULL for empty text). Names must be valid label names, not
 * reserved ("__" prefix) and not server or datname, which pgpulse sets;
 * values are escaped. Returns 0, or -1 with a message. */
int pp_config_constant_labels(const char *text, char **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The entries of env ("NAME=value", NULL-terminated, as environ) that
 * look like postgres_exporter's variables (PG_EXPORTER_*) but that no flag
 * reads: up to max of them into out (borrowed from env). Returns how many. */
size_t pp_config_unread_env(char *const *env, const char **out, size_t max);

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
