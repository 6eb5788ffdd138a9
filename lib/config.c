/*
 * config: flag and environment parsing (see config.h). One table holds
 * every flag: its name, kind, environment variable, default, help text and
 * the field it sets, so --help, the error messages and the parser cannot
 * drift apart.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "render.h"

typedef enum kind {
    K_PATH,     /* char *: an absolute URL path */
    K_FILE,     /* char *: a file name */
    K_TEXT,     /* char *: any text, may be empty */
    K_LIST,     /* char ** + size_t count, repeatable */
    K_ADDRS,    /* as K_LIST, and each value may be a comma-separated list */
    K_LEVEL,    /* pp_log_level */
    K_FORMAT,   /* pp_log_format */
    K_DURATION, /* double seconds, more than 0 */
    K_WAIT,     /* double seconds, 0 allowed */
    K_COUNT,    /* double, a whole number >= 0 */
    K_BOOL,     /* bool; --no-<name> sets false */
    K_ACTION,   /* bool set by the bare flag (--help, --version) */
} kind;

typedef struct flag {
    const char *name;
    kind kind;
    size_t field; /* offset into pp_config */
    size_t count; /* K_LIST: offset of the count */
    const char *env;
    const char *def;
    double min; /* K_DURATION: smallest value accepted, in seconds */
    const char *help;
} flag;

#define F(m) offsetof(pp_config, m)

static const flag flags[] = {
    {"web.listen-address", K_LIST, F(listen), F(nlisten), "PG_EXPORTER_WEB_LISTEN_ADDRESS", ":9187",
     0, "Address on which to expose metrics and web interface (repeatable)."},
    {"web.dashboard-address", K_ADDRS, F(dashboard), F(ndashboard), NULL, NULL, 0,
     "Address on which to serve only the dashboard, its files and /api/v1/status, e.g. :5000 "
     "(repeatable or comma-separated; the dashboard is also at / of every listen address)."},
    {"web.telemetry-path", K_PATH, F(telemetry_path), 0, "PG_EXPORTER_WEB_TELEMETRY_PATH",
     "/metrics", 0, "Path under which to expose metrics."},
    {"web.systemd-socket", K_BOOL, F(systemd_socket), 0, NULL, "false", 0,
     "Listen on the sockets systemd passes (socket activation) instead of "
     "--web.listen-address."},
    {"web.enable-lifecycle", K_BOOL, F(enable_lifecycle), 0, NULL, "false", 0,
     "Enable reloading the configuration with POST or PUT to /-/reload."},
    {"web.config.file", K_TEXT, F(web_config_file), 0, NULL, NULL, 0,
     "Path to a configuration file that can enable TLS or authentication (exporter-toolkit "
     "format; read at start-up: changes need a restart)."},
    {"web.max-connections", K_COUNT, F(max_connections), 0, NULL, "512", 0,
     "Most HTTP connections open at once; more are closed at once (0: no cap)."},
    {"web.write-timeout", K_DURATION, F(write_timeout), 0, NULL, "30s", 0.001,
     "Cut a connection whose response has not been read after this long."},
    {"web.shutdown-timeout", K_WAIT, F(shutdown_timeout), 0, NULL, "5s", 0,
     "On SIGTERM, give responses in flight this long before cutting them."},
    {"web.startup-wait", K_WAIT, F(startup_wait), 0, NULL, "10s", 0,
     "Right after start or reload, a scrape waits up to this long (and never past the "
     "scrape's X-Prometheus-Scrape-Timeout-Seconds) for every target's first connection "
     "attempt (0: never wait)."},
    {"web.probe-allowed-targets", K_TEXT, F(probe_allowed), 0, NULL, NULL, 0,
     "Servers /probe may reach: comma-separated hosts, *.domains, addresses, networks "
     "(10.0.0.0/8), socket directories, each with an optional :port; \"*\" or empty: any."},
    {"web.probe-idle-timeout", K_DURATION, F(probe_idle), 0, NULL, "10m", 1,
     "Drop a probed target, and close its connection, when it has not been probed for this "
     "long."},
    {"web.probe-max-targets", K_COUNT, F(probe_max), 0, NULL, "1000", 0,
     "Most targets /probe collects at once; a probe of a new one beyond this gets 503."},
    {"config.file", K_FILE, F(config_file), 0, NULL, PP_CONFIG_DEFAULT_CONFIG_FILE, 0,
     "postgres_exporter's configuration file: the auth_modules /probe?auth_module= names. "
     "A missing file of the default name is ignored."},
    {"constantLabels", K_TEXT, F(constant_labels), 0, "PG_EXPORTER_CONSTANT_LABELS", NULL, 0,
     "Labels added to every series of every target: \"name=value,name2=value2\"."},
    {"metric-prefix", K_TEXT, F(metric_prefix), 0, "PG_EXPORTER_METRIC_PREFIX", "pg", 0,
     "Replaces the first \"pg\" in the namespaces of --extend.query-path's queries."},
    {"collection-timeout", K_DURATION, F(collection_timeout), 0, "PG_EXPORTER_COLLECTION_TIMEOUT",
     "1m", 0.001, "No query runs longer than this, whatever its catalog timeout says."},
    {"config.flags-file", K_FILE, F(flags_file), 0, "PGPULSE_FLAGS_FILE", NULL, 0,
     "File of further flags, one per line, read again at every reload."},
    {"data-source.name", K_LIST, F(data_sources), F(ndata_sources), NULL, NULL, 0,
     "Data source (URI or key=value DSN, or a comma-separated list; repeatable); replaces "
     "DATA_SOURCE_NAME. Put it in the flags file: command lines are visible to every user."},
    {"collection.max-series", K_COUNT, F(max_series), 0, NULL, "500000", 0,
     "Most samples one run of a query may produce unless the query sets max_series (500,000: "
     "every table of a server with 20,000 tables); the rest are counted and logged."},
    {"collection.max-connecting", K_COUNT, F(max_connecting), 0, NULL, "16", 0,
     "Most connection attempts (lookup, TCP, TLS, authentication and the first collection) in "
     "flight at once; others wait their turn, so a start or an outage never storms the servers "
     "(0: no bound)."},
    {"collection.max-connections-per-server", K_COUNT, F(max_per_server), 0, NULL, "0", 0,
     "Most connections to one server (its databases found by --auto-discover-databases, or "
     "listed): one runs the server-wide queries, the others take turns between their runs "
     "(0: no bound; else at least 2)."},
    {"collection.role-interval", K_WAIT, F(role_interval), 0, NULL, "5s", 0,
     "Check each server's role (primary or standby) and reachability at least this often, "
     "between query runs too, so /primary, /replica and pg_up follow a failover quickly "
     "(0: only with the queries)."},
    {"auto-discover-databases", K_BOOL, F(auto_discover), 0, "PG_EXPORTER_AUTO_DISCOVER_DATABASES",
     "false", 0, "Also collect every other database of each listed server (found on every cycle)."},
    {"exclude-databases", K_TEXT, F(exclude_databases), 0, "PG_EXPORTER_EXCLUDE_DATABASES", NULL, 0,
     "Databases auto-discovery leaves out (comma-separated)."},
    {"include-databases", K_TEXT, F(include_databases), 0, "PG_EXPORTER_INCLUDE_DATABASES", NULL, 0,
     "Databases auto-discovery is limited to (comma-separated; default: all)."},
    {"catalog", K_LIST, F(catalogs), F(ncatalogs), NULL, NULL, 0,
     "Query catalog file or directory (repeatable); default: the built-in catalog."},
    {"extend.query-path", K_FILE, F(extend_query_path), 0, "PG_EXPORTER_EXTEND_QUERY_PATH", NULL, 0,
     "postgres_exporter's user queries file (queries.yaml), loaded after the catalog."},
#define COLLECTOR_FLAG(n, d)                                                                       \
    {"collector." #n,                                                                              \
     K_BOOL,                                                                                       \
     F(collectors[PP_COLLECTOR_##n]),                                                              \
     0,                                                                                            \
     NULL,                                                                                         \
     d,                                                                                            \
     0,                                                                                            \
     "Enable the " #n " collector."},
    PP_COLLECTORS(COLLECTOR_FLAG)
#undef COLLECTOR_FLAG
    /* postgres_exporter's older names for two of them */
    {"collector.stat_statements.include_query", K_BOOL, F(ss_include_query), 0, NULL, "false", 0,
     "Also report pg_stat_statements_query_id{queryid,query}: each statement's text."},
    {"collector.stat_statements.query_length", K_COUNT, F(ss_query_length), 0, NULL, "120", 0,
     "Cut statement texts to this many characters."},
    {"collector.stat_statements.limit", K_COUNT, F(ss_limit), 0, NULL, "100", 0,
     "Report at most this many statements (the ones that took the most time)."},
    {"collector.stat_statements.exclude_databases", K_TEXT, F(ss_exclude_databases), 0, NULL, NULL,
     0, "Leave out the statements of these databases (comma-separated)."},
    {"collector.stat_statements.exclude_users", K_TEXT, F(ss_exclude_users), 0, NULL, NULL, 0,
     "Leave out the statements of these users (comma-separated)."},
    {"collector.bgwriter", K_BOOL, F(collectors[PP_COLLECTOR_stat_bgwriter]), 0, NULL, NULL, 0,
     "Same as --collector.stat_bgwriter (its name before postgres_exporter 0.13)."},
    {"collector.replication_slot", K_BOOL, F(collectors[PP_COLLECTOR_replication_slots]), 0, NULL,
     NULL, 0, "Same as --collector.replication_slots (its name before postgres_exporter 0.20)."},
    {"disable-default-metrics", K_BOOL, F(disable_default_metrics), 0,
     "PG_EXPORTER_DISABLE_DEFAULT_METRICS", "false", 0,
     "Do not collect postgres_exporter's default metrics (pg_static, "
     "pg_stat_database_conflicts_*); collectors are not affected."},
    {"disable-settings-metrics", K_BOOL, F(disable_settings_metrics), 0,
     "PG_EXPORTER_DISABLE_SETTINGS_METRICS", "false", 0,
     "Do not collect pg_settings_* (postgres_exporter 0.11; same as --no-collector.settings)."},
    {"dumpmaps", K_ACTION, F(dumpmaps), 0, NULL, NULL, 0,
     "Print the loaded query catalog (every query with its metrics) and exit."},
    {"log.level", K_LEVEL, F(log_level), 0, NULL, "info", 0,
     "Only log messages with the given severity or above: debug, info, warn, error."},
    {"log.format", K_FORMAT, F(log_format), 0, NULL, "logfmt", 0,
     "Output format of log messages: logfmt, json."},
    {"connect-timeout", K_DURATION, F(connect_timeout), 0, NULL, "10s", 0.001,
     "Give up a connection attempt after this long."},
    {"lock-timeout", K_DURATION, F(lock_timeout), 0, NULL, "1s", 0.001,
     "lock_timeout set on every connection, so a query never queues behind a lock "
     "(at least 1ms)."},
    {"version", K_ACTION, F(show_version), 0, NULL, NULL, 0, "Show application version."},
    {"help", K_ACTION, F(show_help), 0, NULL, NULL, 0, "Show context-sensitive help."},
    {"help-long", K_ACTION, F(show_help), 0, NULL, NULL, 0,
     "Same as --help (it lists every flag)."},
    {"help-man", K_ACTION, F(show_help), 0, NULL, NULL, 0,
     "Same as --help (the package installs man pgpulse)."},
};

#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

const char *pp_config_read_decimal(const char *p, const char *end, double *out)
{
    const char *start = p;
    double v = 0, scale = 1;
    bool frac = false, any = false;
    for (; p < end && ((*p >= '0' && *p <= '9') || (*p == '.' && !frac)); p++) {
        if (*p == '.') {
            frac = true;
            continue;
        }
        any = true;
        if (frac)
            v += (*p - '0') * (scale /= 10);
        else
            v = v * 10 + (*p - '0');
    }
    if (!any)
        return start;
    *out = v;
    return p;
}

int pp_config_parse_duration(const char *s, double *out)
{
    if (s == NULL || *s == '\0')
        return -1;
    double total = 0, v;
    const char *send = s + strlen(s);
    const char *p = pp_config_read_decimal(s, send, &v);
    if (p == s)
        return -1;
    if (*p == '\0') {
        total = v; /* a plain number: seconds */
    } else {
        for (p = s; *p != '\0';) {
            const char *end = pp_config_read_decimal(p, send, &v);
            if (end == p)
                return -1;
            p = end;
            double unit;
            if (strncmp(p, "ms", 2) == 0) {
                unit = 0.001;
                p += 2;
            } else if (*p == 's') {
                unit = 1;
                p++;
            } else if (*p == 'm') {
                unit = 60;
                p++;
            } else if (*p == 'h') {
                unit = 3600;
                p++;
            } else {
                return -1;
            }
            total += v * unit;
        }
    }
    /* longer than a year is a typo, and keeps every later conversion to
     * milliseconds in range */
    if (!(total >= 0 && total <= PP_CONFIG_MAX_DURATION))
        return -1;
    *out = total;
    return 0;
}

static void push(char ***list, size_t *n, const char *v)
{
    *list = pp_realloc(*list, (*n + 1) * sizeof(char *));
    (*list)[(*n)++] = pp_strdup(v);
}

static bool parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(v, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(v, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* Applies value v of flag f; src names where it came from for messages
 * ("--flag", "$VAR" or "file:line: --flag"). */
static int apply(pp_config *c, const flag *f, const char *v, const char *src, char *err,
                 size_t errlen)
{
    char *base = (char *)c;
    double d;
    switch (f->kind) {
    case K_PATH:
        if (v[0] != '/' || strpbrk(v, "\"<>'&? #") != NULL) {
            snprintf(err, errlen, "%s: \"%s\" is not a plain absolute path", src, v);
            return -1;
        }
        /* fall through */
    case K_TEXT:
    case K_FILE: {
        char **field = (char **)(base + f->field);
        if (*v == '\0' && f->kind == K_FILE) {
            snprintf(err, errlen, "%s: needs a value", src);
            return -1;
        }
        free(*field);
        *field = pp_strdup(v);
        return 0;
    }
    case K_LIST:
        push((char ***)(base + f->field), (size_t *)(base + f->count), v);
        return 0;
    case K_ADDRS:
        for (const char *p = v;;) {
            size_t n = strcspn(p, ",");
            if (n == 0) {
                snprintf(err, errlen, "%s: empty address in \"%s\"", src, v);
                return -1;
            }
            char *one = pp_malloc(n + 1);
            memcpy(one, p, n);
            one[n] = '\0';
            push((char ***)(base + f->field), (size_t *)(base + f->count), one);
            free(one);
            if (p[n] == '\0')
                return 0;
            p += n + 1;
        }
    case K_LEVEL:
        if (pp_log_parse_level(v, (pp_log_level *)(base + f->field)) != 0) {
            snprintf(err, errlen, "%s: \"%s\" is not one of debug, info, warn, error", src, v);
            return -1;
        }
        return 0;
    case K_FORMAT:
        if (pp_log_parse_format(v, (pp_log_format *)(base + f->field)) != 0) {
            snprintf(err, errlen, "%s: \"%s\" is not one of logfmt, json", src, v);
            return -1;
        }
        return 0;
    case K_DURATION:
    case K_WAIT:
        if (pp_config_parse_duration(v, &d) != 0 || (f->kind == K_DURATION && d <= 0)) {
            snprintf(err, errlen, "%s: \"%s\" is not a duration such as 10s (%s, at most a year)",
                     src, v, f->kind == K_DURATION ? "more than 0" : "0 or more");
            return -1;
        }
        if (d < f->min) {
            snprintf(err, errlen, "%s: \"%s\" is less than %gms", src, v, f->min * 1000);
            return -1;
        }
        *(double *)(base + f->field) = d;
        return 0;
    case K_COUNT: {
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (*v < '0' || *v > '9' || *end != '\0' || errno != 0 || n > 1000000000) {
            snprintf(err, errlen, "%s: \"%s\" is not a whole number from 0 to 1000000000", src, v);
            return -1;
        }
        *(double *)(base + f->field) = (double)n;
        return 0;
    }
    case K_BOOL:
        if (!parse_bool(v, (bool *)(base + f->field))) {
            snprintf(err, errlen, "%s: \"%s\" is not true or false", src, v);
            return -1;
        }
        return 0;
    case K_ACTION:
        *(bool *)(base + f->field) = true;
        return 0;
    }
    return 0;
}

static const flag *find(const char *name, size_t len)
{
    for (size_t i = 0; i < NFLAGS; i++)
        if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
            return &flags[i];
    return NULL;
}

static void set_defaults(pp_config *c)
{
    memset(c, 0, sizeof(*c));
    char err[64];
    for (size_t i = 0; i < NFLAGS; i++)
        if (flags[i].def != NULL && flags[i].kind != K_LIST && flags[i].kind != K_ADDRS &&
            apply(c, &flags[i], flags[i].def, flags[i].name, err, sizeof(err)) != 0)
            abort(); /* a default the table itself gets wrong */
}

/* One argument "--name[=value]" (value possibly in next, which *used
 * says was consumed). seen marks the flags given here; flags already in
 * skip are ignored (a higher-precedence source set them). */
static int one_flag(pp_config *c, const char *a, const char *next, bool *used, const char *where,
                    bool *seen, const bool *skip, char *err, size_t errlen)
{
    *used = false;
    if (strncmp(a, "--", 2) != 0) {
        snprintf(err, errlen, "%sunexpected argument \"%s\"", where, a);
        return -1;
    }
    const char *name = a + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const flag *f = find(name, len);
    bool negated = false;
    if (f == NULL && len > 3 && strncmp(name, "no-", 3) == 0) {
        f = find(name + 3, len - 3);
        negated = f != NULL && f->kind == K_BOOL;
        if (!negated)
            f = NULL;
    }
    if (f == NULL || ((f->kind == K_ACTION || negated) && eq != NULL)) {
        snprintf(err, errlen, "%sunknown flag --%.*s", where, (int)len, name);
        return -1;
    }
    const char *v = eq ? eq + 1 : NULL;
    if (f->kind == K_BOOL && v == NULL)
        v = negated ? "false" : "true";
    if (f->kind != K_ACTION && v == NULL) {
        if (next == NULL) {
            snprintf(err, errlen, "%sflag --%s needs a value", where, f->name);
            return -1;
        }
        v = next;
        *used = true;
    }
    size_t idx = (size_t)(f - flags);
    if (skip != NULL && skip[idx])
        return 0;
    seen[idx] = true;
    char src[512];
    snprintf(src, sizeof(src), "%s--%s", where, f->name);
    return apply(c, f, v ? v : "", src, err, errlen);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

static int read_flags_file(pp_config *c, const char *path, bool *seen, const bool *skip, char *err,
                           size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "--config.flags-file: cannot read \"%s\": %s", path, strerror(errno));
        return -1;
    }
    char line[8192];
    unsigned lineno = 0;
    int rc = 0;
    size_t cf = (size_t)(find("config.flags-file", 17) - flags);
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        char where[600];
        snprintf(where, sizeof(where), "%s:%u: ", path, lineno);
        if (strchr(line, '\n') == NULL && !feof(f)) {
            snprintf(err, errlen, "%sline longer than %zu bytes", where, sizeof(line) - 2);
            rc = -1;
            break;
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        /* "--flag value": split at the first blank unless there is an '=' first */
        char *value = NULL;
        size_t name_end = strcspn(s, "= \t");
        if (s[name_end] == ' ' || s[name_end] == '\t') {
            s[name_end] = '\0';
            value = trim(s + name_end + 1);
        }
        bool used;
        rc = one_flag(c, s, value, &used, where, seen, skip, err, errlen);
        if (rc == 0 && value != NULL && !used) {
            snprintf(err, errlen, "%s%s takes no value", where, s);
            rc = -1;
        }
        if (rc == 0 && seen[cf]) {
            snprintf(err, errlen, "%s--config.flags-file cannot be nested", where);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

int pp_config_parse(pp_config *c, int argc, char **argv, const char *(*getenv_fn)(const char *),
                    char *err, size_t errlen)
{
    set_defaults(c);
    bool seen[NFLAGS] = {false};

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0) {
            c->show_help = true;
            continue;
        }
        bool used;
        if (one_flag(c, a, i + 1 < argc ? argv[i + 1] : NULL, &used, "", seen, NULL, err, errlen) !=
            0)
            goto fail;
        if (used)
            i++;
    }
    /* the environment fills what no flag set; the flags file's own
     * variable first, as its contents rank above the environment */
    const char *(*get)(const char *) =
        getenv_fn ? getenv_fn : (const char *(*)(const char *))getenv;
    size_t cf = (size_t)(find("config.flags-file", 17) - flags);
    if (!seen[cf]) {
        const char *v = get(flags[cf].env);
        if (v != NULL && *v != '\0') {
            char src[64];
            snprintf(src, sizeof(src), "$%s", flags[cf].env);
            if (apply(c, &flags[cf], v, src, err, errlen) != 0)
                goto fail;
        }
    }
    if (c->flags_file != NULL) {
        bool from_file[NFLAGS] = {false};
        if (read_flags_file(c, c->flags_file, from_file, seen, err, errlen) != 0)
            goto fail;
        for (size_t i = 0; i < NFLAGS; i++)
            seen[i] = seen[i] || from_file[i];
    }
    for (size_t i = 0; i < NFLAGS; i++) {
        if (seen[i] || flags[i].env == NULL || i == cf)
            continue;
        const char *v = get(flags[i].env);
        char src[64];
        snprintf(src, sizeof(src), "$%s", flags[i].env);
        if (v != NULL && *v != '\0' && apply(c, &flags[i], v, src, err, errlen) != 0)
            goto fail;
    }
    if (c->nlisten == 0)
        push(&c->listen, &c->nlisten, ":9187");
    return 0;

fail:
    pp_config_deinit(c);
    return -1;
}

bool pp_config_collector_enabled(const pp_config *c, const char *name)
{
    static const char *const names[] = {
#define COLLECTOR_NAME(n, d) #n,
        PP_COLLECTORS(COLLECTOR_NAME)
#undef COLLECTOR_NAME
    };
    for (size_t i = 0; i < PP_NCOLLECTORS; i++)
        if (strcmp(names[i], name) == 0)
            return c->collectors[i] && !(i == PP_COLLECTOR_settings && c->disable_settings_metrics);
    return true;
}

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

void pp_config_deinit(pp_config *c)
{
    free_list(c->listen, c->nlisten);
    free_list(c->dashboard, c->ndashboard);
    free_list(c->catalogs, c->ncatalogs);
    free_list(c->data_sources, c->ndata_sources);
    free(c->telemetry_path);
    free(c->flags_file);
    free(c->web_config_file);
    free(c->extend_query_path);
    free(c->config_file);
    free(c->constant_labels);
    free(c->ss_exclude_databases);
    free(c->ss_exclude_users);
    free(c->metric_prefix);
    free(c->probe_allowed);
    free(c->exclude_databases);
    free(c->include_databases);
    memset(c, 0, sizeof(*c));
}

void pp_config_usage(FILE *out)
{
    fputs("usage: pgpulse [<flags>]\n\n"
          "PostgreSQL metrics exporter for Prometheus. Data sources come from\n"
          "--data-source.name, or DATA_SOURCE_NAME (comma-separated URIs or key=value DSNs),\n"
          "or DATA_SOURCE_URI[_FILE], DATA_SOURCE_USER[_FILE], DATA_SOURCE_PASS[_FILE].\n"
          "SIGHUP (and POST /-/reload with --web.enable-lifecycle) reloads the flags file,\n"
          "the data sources and the catalog.\n\n"
          "Flags:\n",
          out);
    for (size_t i = 0; i < NFLAGS; i++) {
        const flag *f = &flags[i];
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", f->kind == K_BOOL ? "[no-]" : "", f->name,
                 f->kind == K_BOOL || f->kind == K_ACTION ? "" : "=VALUE");
        /* two spaces at least between a flag and its help: man pages are
         * made from this (help2man) */
        fprintf(out, "  %-36s  %s", left, f->help);
        if (f->def != NULL)
            fprintf(out, " (default: %s)", f->def);
        if (f->env != NULL)
            fprintf(out, " ($%s)", f->env);
        fputc('\n', out);
    }
}

static bool label_name_ok(const char *s, size_t n)
{
    if (n == 0 || (s[0] >= '0' && s[0] <= '9') || (n >= 2 && s[0] == '_' && s[1] == '_'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

/* The name of an item "name=value", without the spaces around it. */
static const char *label_name(const char *item, size_t *len)
{
    const char *eq = strchr(item, '=');
    size_t n = eq != NULL ? (size_t)(eq - item) : strlen(item);
    while (n > 0 && item[n - 1] == ' ')
        n--;
    while (n > 0 && *item == ' ') {
        item++;
        n--;
    }
    *len = n;
    return item;
}

int pp_config_constant_labels(const char *text, char **out, char *err, size_t errlen)
{
    *out = NULL;
    if (text == NULL || *text == '\0')
        return 0;
    /* items as written: an empty one is an error, and a value keeps its
     * spaces */
    char **items;
    size_t n;
    pp_split_list(text, 0, &items, &n);
    pp_buf b = PP_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(items[i], '=');
        size_t nlen;
        const char *name = label_name(items[i], &nlen);
        if (eq == NULL || !label_name_ok(name, nlen) ||
            (nlen == 6 && memcmp(name, "server", 6) == 0) ||
            (nlen == 7 && memcmp(name, "datname", 7) == 0)) {
            snprintf(err, errlen,
                     "--constantLabels: \"%s\" is not name=value with a label name of "
                     "letters, digits and _ (not server or datname, which pgpulse sets)",
                     items[i]);
            goto fail;
        }
        /* the same name twice would make every series invalid */
        for (size_t k = 0; k < i; k++) {
            size_t klen;
            const char *known = label_name(items[k], &klen);
            if (klen == nlen && memcmp(known, name, nlen) == 0) {
                snprintf(err, errlen, "--constantLabels: label \"%.*s\" given twice", (int)nlen,
                         name);
                goto fail;
            }
        }
        if (b.len > 0)
            pp_buf_putc(&b, ',');
        pp_buf_append(&b, name, nlen);
        pp_buf_puts(&b, "=\"");
        pp_render_label_value(&b, eq + 1, strlen(eq + 1));
        pp_buf_putc(&b, '"');
    }
    pp_strv_free(items, n);
    *out = pp_buf_steal(&b, NULL);
    return 0;

fail:
    pp_strv_free(items, n);
    pp_buf_deinit(&b);
    return -1;
}

size_t pp_config_unread_env(char *const *env, const char **out, size_t max)
{
    size_t n = 0;
    for (; env != NULL && *env != NULL; env++) {
        const char *e = *env;
        if (strncmp(e, "PG_EXPORTER_", 12) != 0)
            continue;
        size_t len = strcspn(e, "=");
        bool known = false;
        for (size_t i = 0; i < NFLAGS && !known; i++)
            known = flags[i].env != NULL && strlen(flags[i].env) == len &&
                    strncmp(flags[i].env, e, len) == 0;
        if (!known && n < max)
            out[n++] = e;
    }
    return n;
}
