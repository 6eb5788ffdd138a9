/*
 * catalog: the query catalog, loaded from YAML and validated once.
 *
 * A catalog is a list of queries; each query has SQL variants chosen by the
 * server's version, a metric namespace, the role of each result column, an
 * interval, a timeout and where it runs. Loading validates everything a
 * collection would otherwise trip over at run time (names, roles, durations,
 * conflicting metric types) and reports the first problem as
 *   file:line:column: message
 * with 1-based positions. After loading, the catalog is immutable and
 * shared by every target for the life of the process (or until a reload
 * swaps in a new one). It is refcounted so that the generations built
 * from one load (the main one and /probe's) share it and can be released
 * in any order; the count is not atomic (loop thread only).
 *
 * Static metric families (one per metric column; the same metric name used
 * by two queries is one family and must agree on type) are collected in
 * c->families with their "# HELP"/"# TYPE" header pre-rendered. Queries
 * with a "name" column produce families whose names come from the data
 * (pg_settings); those are not in c->families.
 *
 * The YAML format is documented in queries/README.md.
 */
#ifndef PGPULSE_CATALOG_H
#define PGPULSE_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "render.h"

typedef enum pp_runs_on {
    PP_RUNS_ON_ANY,
    PP_RUNS_ON_PRIMARY,
    PP_RUNS_ON_STANDBY,
} pp_runs_on;

/* What a query describes: the server (settings, activity, locks,
 * replication, pg_stat_database, which lists every database), run once
 * per server however many of its databases are targets; or the database
 * it is connected to (its tables and indexes), run on every target. */
typedef enum pp_scope {
    PP_SCOPE_DATABASE,
    PP_SCOPE_SERVER,
} pp_scope;

typedef enum pp_column_role {
    PP_COL_LABEL,   /* the value becomes a label */
    PP_COL_GAUGE,   /* a gauge sample */
    PP_COL_COUNTER, /* a counter sample */
    PP_COL_DISCARD, /* ignored */
    PP_COL_NAME,    /* dynamic families: the row's metric name suffix */
    PP_COL_HELP,    /* dynamic families: the row's HELP text */
    PP_COL_BUCKET,  /* a histogram's <metric>_bucket sample; the query has an le label */
    PP_COL_SUM,     /* a histogram's <metric>_sum sample */
    PP_COL_COUNT,   /* a histogram's <metric>_count sample */
    /* a legacy HISTOGRAM: the column holds the bounds as an array
     * ("{1,2,5}"), <column>_bucket the cumulative counts, <column>_sum and
     * <column>_count the totals; one row gives a whole histogram */
    PP_COL_HISTOGRAM,
} pp_column_role;

/* How a gauge or counter column's text becomes a value. */
typedef enum pp_column_conv {
    PP_CONV_NUMBER,   /* pp_render_parse_value: numbers and booleans */
    PP_CONV_LEGACY,   /* as PP_CONV_NUMBER, date and timestamp columns as
                         unix seconds, NULL as NaN (postgres_exporter's
                         user queries) */
    PP_CONV_DURATION, /* Go duration text ("1h2m3s") as whole milliseconds;
                         "-1" gives no sample (a legacy DURATION) */
} pp_column_conv;

/* The roles whose column gives a sample. */
static inline bool pp_catalog_is_value_role(pp_column_role r)
{
    return r == PP_COL_GAUGE || r == PP_COL_COUNTER || r == PP_COL_BUCKET || r == PP_COL_SUM ||
           r == PP_COL_COUNT || r == PP_COL_HISTOGRAM;
}

typedef struct pp_catalog_column {
    char *name; /* the result column it reads */
    pp_column_role role;
    char *label;   /* PP_COL_LABEL: the label name (default: name) */
    char *metric;  /* a value column of a static query: the samples' name,
                      "<namespace>_<name>" unless overridden; for
                      bucket/sum/count, the histogram's name given by
                      "metric" and its suffix */
    char *help;    /* gauge/counter: HELP text */
    double scale;  /* gauge/counter: the value is multiplied by this
                      (default 1; 0.001 turns milliseconds into seconds) */
    size_t family; /* gauge/counter in a static query: index into
                      catalog families */
    /* gauge/counter: how the text is read */
    pp_column_conv conv;
} pp_catalog_column;

typedef struct pp_catalog_variant {
    int min_version; /* server_version_num, inclusive; 0 = no lower bound */
    int max_version; /* server_version_num, exclusive; 0 = no upper bound */
    char *sql;       /* one statement, no trailing semicolon needed */
} pp_catalog_variant;

typedef struct pp_catalog_query {
    char *name;      /* unique across the catalog */
    char *namespace; /* metric name prefix */
    char *file;      /* where it was defined, for messages */
    unsigned line, column;
    pp_catalog_variant *variants;
    size_t nvariants;
    pp_catalog_column *columns;
    size_t ncolumns;
    double interval; /* seconds between runs */
    double timeout;  /* seconds; statement deadline */
    pp_runs_on runs_on;
    pp_scope scope;
    bool datname_label;     /* a label column is named datname */
    size_t max_series;      /* cap on samples per run; 0 = the built-in default */
    bool dynamic;           /* has a PP_COL_NAME column: metric names come from
                               the data as "<namespace>_<name>", one gauge or
                               counter column gives the value */
    char *collector;        /* the postgres_exporter collector it belongs to
                               (--[no-]collector.<name>); default its name;
                               NULL for a legacy user query, in none */
    size_t collector_index; /* into pp_catalog.collectors; (size_t)-1 when
                               collector is NULL */
    bool default_metrics;   /* one of postgres_exporter's "default metrics"
                               (its built-in map, not a collector), which
                               --disable-default-metrics turns off */
    bool server_label;      /* its series carry server="host:port" even with
                               one target, as postgres_exporter 0.11's
                               legacy series did */
} pp_catalog_query;

typedef struct pp_catalog_family {
    char *name;
    char *help;
    pp_metric_type type;
    char *header; /* "# HELP ...\n# TYPE ...\n", pre-rendered */
    size_t header_len;
} pp_catalog_family;

/* Whether a load keeps query q, asked once its name, collector and
 * default_metrics are known (the flags turn collectors off this way). */
typedef bool (*pp_catalog_keep_fn)(const pp_catalog_query *q, void *data);

typedef struct pp_catalog {
    pp_catalog_query *queries; /* owned */
    size_t nqueries;
    pp_catalog_family *families; /* owned */
    size_t nfamilies;
    /* --metric-prefix: replaces the first "pg" in the namespaces of the
     * legacy queries loaded from now on, as postgres_exporter does;
     * borrowed, only read while loading; NULL or "pg" = unchanged */
    const char *legacy_metric_prefix;
    /* Every distinct collector of the queries, in catalog order (borrowed
     * from the queries); kept current by every load. */
    const char **collectors;
    size_t ncollectors;
    pp_catalog_keep_fn keep; /* NULL: every query */
    void *keep_data;
    unsigned refs; /* pp_catalog_new gives one, pp_catalog_ref adds one */
} pp_catalog;

/* A file compiled into the binary (cmake/embed.cmake). */
typedef struct pp_catalog_blob {
    const char *name; /* "queries/<file>.yaml" */
    const char *data;
    size_t len;
} pp_catalog_blob;

/* The shipped catalog, terminated by an entry with name == NULL. */
extern const pp_catalog_blob pp_catalog_builtin[];

/* An empty catalog; the caller holds its one reference. */
pp_catalog *pp_catalog_new(void);
/* Adds a reference to a catalog that is loaded and will not change
 * again, for a second owner. Returns c. */
pp_catalog *pp_catalog_ref(pp_catalog *c);
/* Drops the caller's reference; the last one frees the catalog. Accepts
 * NULL. */
void pp_catalog_free(pp_catalog *c);

/* Parses one YAML document and adds its queries. name is used in messages.
 * On error returns -1, writes "name:line:column: message" into err and
 * leaves c as it was before the call. */
int pp_catalog_load_buffer(pp_catalog *c, const char *name, const char *data, size_t len, char *err,
                           size_t errlen) __attribute__((warn_unused_result));
/* A file, or a directory whose *.yaml and *.yml files are loaded in name
 * order. Errors as above; an unreadable path is "path: reason". */
int pp_catalog_load_path(pp_catalog *c, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Every file of pp_catalog_builtin. */
int pp_catalog_load_builtin(pp_catalog *c, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* hex SHA-256 and its NUL */
#define PP_CATALOG_HASHSUM_SIZE 65

/*
 * Translates postgres_exporter's user queries file (--extend.query-path,
 * its "queries.yaml") and adds one query per namespace, named
 * "legacy:<namespace>": columns LABEL, GAUGE, COUNTER and DISCARD as
 * their native roles (gauges and counters with PP_CONV_LEGACY),
 * MAPPEDMETRIC as discard (upstream never gives it a value), DURATION as
 * a gauge "<namespace>_<column>_milliseconds" with PP_CONV_DURATION,
 * HISTOGRAM as PP_COL_HISTOGRAM; metric "<namespace>_<column>", HELP the
 * description, cache_seconds as the interval (else 15s), master: true as
 * runs_on primary, scope database. Unknown keys and unknown usages are
 * refused. Errors and atomicity as pp_catalog_load_buffer.
 */
int pp_catalog_load_legacy_buffer(pp_catalog *c, const char *name, const char *data, size_t len,
                                  char *err, size_t errlen) __attribute__((warn_unused_result));
/* The same for a file. hashsum gets the hex SHA-256 of the file's bytes,
 * or "" when it cannot be read (postgres_exporter's
 * pg_exporter_user_queries_load_error{hashsum}). */
int pp_catalog_load_legacy_path(pp_catalog *c, const char *path,
                                char hashsum[PP_CATALOG_HASHSUM_SIZE], char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Makes later loads into c skip every native query keep() refuses (data
 * is borrowed). A skipped query is read up to its collector and dropped
 * before its columns: it is not run, and its metrics neither make
 * families nor collide with anyone's. Queries of the legacy format belong
 * to no collector and are always loaded. */
void pp_catalog_set_keep(pp_catalog *c, pp_catalog_keep_fn keep, void *data);

/* Writes every query with its collector, SQL variants and metrics, one
 * metric a line, for --dumpmaps. */
void pp_catalog_dump(const pp_catalog *c, FILE *out);

/* The variant that applies to a server, or NULL when none does. */
const pp_catalog_variant *pp_catalog_pick(const pp_catalog_query *q, int server_version_num);

/* Index of the static family with this name, or (size_t)-1. */
size_t pp_catalog_find_family(const pp_catalog *c, const char *name);

#endif
