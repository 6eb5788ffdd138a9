/*
 * exporter: start-up, reload, the loop and shutdown (see exporter.h).
 *
 * Start-up validates everything before it serves: a catalog or DSN error
 * ends the process with status 1 and a message naming the file position or
 * the (masked) DSN. A reload validates the same way and, on any error,
 * keeps running what it has. Shutdown runs in the reverse order of
 * start-up: HTTP stops accepting and drains (responses in flight finish,
 * within --web.shutdown-timeout), and only then are the targets and the
 * snapshot the handlers read closed.
 */
#include "exporter.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "buf.h"
#include "catalog.h"
#include "clock.h"
#include "dsn.h"
#include "gen.h"
#include "http.h"
#include "probe.h"
#include "registry.h"
#include "snapshot.h"
#include "webconfig.h"
#include "status.h"
#include "turn.h"

#define CONNECT_SPREAD 2.0 /* seconds over which many new targets start */
#define FORCE_GRACE 5.0    /* seconds past the drain before giving up on a clean exit */
#define LOG_QUEUE_BYTES (1 << 20)
#define LAG_TICK_MS 100
/* Query results may take this much of a loop turn before the rest wait
 * for the next one (turn.h): a scrape waits for at most about this much
 * collection work between its own steps. */
#define TURN_BUDGET_MS 2.0
#define LAG_WINDOW_MS 10000

typedef struct exporter {
    uv_loop_t loop;
    pp_log log; /* a reload may change the level and format */
    int argc;
    char **argv;
    pp_config cfg;
    uint64_t gen_id;
    pp_registry *reg;
    pp_snapshot *snapshot;
    pp_probes *probes;
    pp_http *http;
    pp_webconfig *web; /* --web.config.file as started with; NULL: none */
    pp_process_status status;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t force;
    uv_timer_t lag;      /* fires every LAG_TICK_MS to measure the loop */
    pp_turn turn;        /* the loop's data: what results may take of a turn */
    uint64_t lag_expect; /* hrtime it should fire next */
    bool stopping;
    bool forced;
} exporter;

/* Everything a configuration loads, validated, before anything switches. */
typedef struct loaded {
    pp_gen *gen;
    pp_dsn *dsns;
    size_t ndsns;
    pp_gen *probe_gen; /* gen's catalog, shared, for one target without labels */
    pp_auth_modules modules;
    pp_hostmatch *allow;
} loaded;

static void on_registry_change(pp_registry *r, pp_target *t, bool state, void *data)
{
    exporter *e = data;
    if (t != NULL) {
        /* the dashboard's history: one sample when a collection has ended */
        pp_status_sample(t, pp_clock_wall());
        /* the target's self-metrics piece now, one target at a time: left
         * to the next page build, every target that changed since the last
         * one was redone at once, on the loop (100 ms at 1,000 targets) */
        pp_gen *gen = pp_registry_gen(r);
        pp_piece *self[PP_SELF_PIECES];
        if (gen != NULL)
            (void)pp_selfmetrics_target_pieces(t, gen, self);
    }
    if (e->snapshot != NULL)
        pp_snapshot_mark_dirty(e->snapshot, state);
}

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_http_closed(void *data)
{
    exporter *e = data;
    e->http = NULL;
    /* nothing reads the targets or the page any more */
    pp_registry_close(e->reg);
    e->reg = NULL;
    pp_snapshot_close(e->snapshot);
    e->snapshot = NULL;
    pp_probes_close(e->probes);
    e->probes = NULL;
    /* the signal handles stay open until now so a second SIGTERM (as
     * timeout(1) sends to the group) finds us still handling signals */
    uv_close((uv_handle_t *)&e->sigterm, on_handle_closed);
    uv_close((uv_handle_t *)&e->sigint, on_handle_closed);
    uv_close((uv_handle_t *)&e->sighup, on_handle_closed);
    uv_close((uv_handle_t *)&e->force, on_handle_closed);
    uv_close((uv_handle_t *)&e->lag, on_handle_closed);
    pp_turn_close(&e->turn, on_handle_closed);
}

static void on_lag_tick(uv_timer_t *h)
{
    exporter *e = h->data;
    uint64_t now = uv_hrtime();
    double late = now > e->lag_expect ? (double)(now - e->lag_expect) / 1e9 : 0;
    pp_loop_lag_record(&e->status.lag, late, uv_now(&e->loop), LAG_WINDOW_MS);
    e->lag_expect = now + (uint64_t)LAG_TICK_MS * 1000000;
}

static void on_force(uv_timer_t *h)
{
    exporter *e = h->data;
    pp_log_write(&e->log, PP_LOG_ERROR, "shutdown did not finish in time: exiting anyway", NULL);
    e->forced = true;
    uv_stop(&e->loop);
}

static void stop(exporter *e)
{
    if (e->stopping)
        return;
    e->stopping = true;
    if (e->http != NULL) {
        uv_timer_start(&e->force, on_force,
                       (uint64_t)((e->cfg.shutdown_timeout + FORCE_GRACE) * 1000), 0);
        pp_http_stop(e->http, e->cfg.shutdown_timeout, on_http_closed, e);
    } else {
        on_http_closed(e);
    }
}

/* ---- loading ------------------------------------------------------------ */

/* Whether the flags leave query q on. */
static bool collector_on(const pp_catalog_query *q, void *data)
{
    const pp_config *cfg = data;
    if (q->default_metrics && cfg->disable_default_metrics)
        return false;
    return q->collector == NULL || pp_config_collector_enabled(cfg, q->collector);
}

/* The native catalog, then --extend.query-path translated into it, less
 * the queries of collectors the flags turn off, which are not loaded at
 * all (a reload applies changed flags as it applies a changed catalog). The legacy file's outcome
 * goes to status (pg_exporter_user_queries_load_error). */
static int load_catalog(const pp_config *cfg, pp_process_status *status, pp_catalog **out,
                        char *err, size_t errlen)
{
    pp_catalog *cat = pp_catalog_new();
    pp_catalog_set_keep(cat, collector_on, (void *)cfg);
    int rc = 0;
    if (cfg->ncatalogs == 0) {
        rc = pp_catalog_load_builtin(cat, err, errlen);
    } else {
        for (size_t i = 0; i < cfg->ncatalogs && rc == 0; i++)
            rc = pp_catalog_load_path(cat, cfg->catalogs[i], err, errlen);
    }
    if (rc == 0) {
        free(status->user_queries_file);
        status->user_queries_file = NULL;
        if (cfg->extend_query_path != NULL) {
            cat->legacy_metric_prefix = cfg->metric_prefix;
            rc = pp_catalog_load_legacy_path(cat, cfg->extend_query_path, status->user_queries_hash,
                                             err, errlen);
            cat->legacy_metric_prefix = NULL; /* cfg's, freed at the next reload */
            status->user_queries_file = pp_strdup(cfg->extend_query_path);
            status->user_queries_error = rc != 0;
        }
    }
    if (rc == 0 && cat->nqueries == 0) {
        snprintf(err, errlen, "the query catalog has no queries");
        rc = -1;
    }
    if (rc != 0) {
        pp_catalog_free(cat);
        return -1;
    }
    *out = cat;
    return 0;
}

static bool same_db(const pp_dsn *a, const pp_dsn *b)
{
    return strcmp(pp_dsn_database(a), pp_dsn_database(b)) == 0;
}

/* Series of different targets must differ: targets of one server
 * ("host:port") are told apart by their database, so the same server and
 * database twice is an error. */
static int distinct_targets(const pp_dsn *dsns, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(dsns[i].label, dsns[j].label) == 0 && same_db(&dsns[i], &dsns[j])) {
                snprintf(err, errlen,
                         "data sources: DSN %zu and DSN %zu both name server %s and the same "
                         "database: list each database of a server once",
                         i + 1, j + 1, dsns[i].label);
                return -1;
            }
    return 0;
}

static int load_dsns(const pp_config *cfg, pp_dsn **out, size_t *n, char *err, size_t errlen)
{
    if (cfg->ndata_sources == 0)
        return pp_dsn_from_env(NULL, out, n, err, errlen);
    pp_dsn *all = NULL;
    size_t nall = 0;
    for (size_t i = 0; i < cfg->ndata_sources; i++) {
        pp_dsn *part = NULL;
        size_t npart = 0;
        char why[768];
        if (pp_dsn_parse_list(cfg->data_sources[i], &part, &npart, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "--data-source.name %zu: %s", i + 1, why);
            pp_dsn_list_free(all, nall);
            return -1;
        }
        all = pp_realloc(all, (nall + npart + 1) * sizeof(pp_dsn));
        memcpy(all + nall, part, npart * sizeof(pp_dsn));
        nall += npart;
        free(part); /* its contents moved */
    }
    *out = all;
    *n = nall;
    return 0;
}

/* What the catalog's queries get from the command line: no query runs
 * longer than --collection-timeout, and no label column may be named like
 * a constant label (the series would have the label twice). */
static int adjust_catalog(pp_catalog *cat, const pp_config *cfg, const char *constant, char *err,
                          size_t errlen)
{
    for (size_t i = 0; i < cat->nqueries; i++) {
        pp_catalog_query *q = &cat->queries[i];
        if (q->timeout > cfg->collection_timeout)
            q->timeout = cfg->collection_timeout;
        for (size_t k = 0; constant != NULL && k < q->ncolumns; k++) {
            const pp_catalog_column *c = &q->columns[k];
            const char *name = c->label != NULL ? c->label : c->name;
            /* a name starts the block or follows '",'; in a value, a
             * quote is escaped, so '",name="' cannot come from one */
            char want[300];
            snprintf(want, sizeof(want), "\",%s=\"", name);
            bool clash = strncmp(constant, want + 2, strlen(want + 2)) == 0 ||
                         strstr(constant, want) != NULL;
            if (c->role == PP_COL_LABEL && clash) {
                snprintf(err, errlen,
                         "--constantLabels: \"%s\" is also a label of query %s (%s:%u)", name,
                         q->name, q->file, q->line);
                return -1;
            }
        }
    }
    return 0;
}

/* Appends " -c name=value" with value escaped for libpq's options
 * (spaces and backslashes). */
static void session_setting(pp_buf *b, const char *name, const char *value)
{
    pp_buf_printf(b, "%s-c %s=", b->len > 0 ? " " : "", name);
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == ' ' || *p == '\\')
            pp_buf_putc(b, '\\');
        pp_buf_putc(b, *p);
    }
}

/* The settings the catalog's stat_statements queries read
 * (current_setting('pgpulse.stat_statements_...')), from the flags. */
static char *session_settings(const pp_config *cfg)
{
    pp_buf b = PP_BUF_INIT;
    char n[32];
    snprintf(n, sizeof(n), "%.0f", cfg->ss_limit);
    session_setting(&b, "pgpulse.stat_statements_limit", n);
    snprintf(n, sizeof(n), "%.0f", cfg->ss_query_length);
    session_setting(&b, "pgpulse.stat_statements_query_length", n);
    session_setting(&b, "pgpulse.stat_statements_include_query",
                    cfg->ss_include_query ? "on" : "off");
    session_setting(&b, "pgpulse.stat_statements_exclude_databases",
                    cfg->ss_exclude_databases != NULL ? cfg->ss_exclude_databases : "");
    session_setting(&b, "pgpulse.stat_statements_exclude_users",
                    cfg->ss_exclude_users != NULL ? cfg->ss_exclude_users : "");
    return pp_buf_steal(&b, NULL);
}

static int load(exporter *e, const pp_config *cfg, loaded *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    pp_catalog *cat;
    char *constant = NULL;
    if (cfg->ss_limit < 1 || cfg->ss_query_length < 1) {
        snprintf(err, errlen, "--collector.stat_statements.%s: must be at least 1",
                 cfg->ss_limit < 1 ? "limit" : "query_length");
        return -1;
    }
    if (cfg->max_per_server == 1) {
        snprintf(err, errlen,
                 "--collection.max-connections-per-server: 1 leaves no connection for "
                 "the databases besides the server-wide one: use 0 or at least 2");
        return -1;
    }
    if (cfg->metric_prefix[0] == '\0') {
        snprintf(err, errlen, "--metric-prefix: must not be empty");
        return -1;
    }
    if (pp_config_constant_labels(cfg->constant_labels, &constant, err, errlen) != 0)
        return -1;
    if (load_catalog(cfg, &e->status, &cat, err, errlen) != 0) {
        free(constant);
        return -1;
    }
    if (adjust_catalog(cat, cfg, constant, err, errlen) != 0) {
        free(constant);
        pp_catalog_free(cat);
        return -1;
    }
    if (load_dsns(cfg, &out->dsns, &out->ndsns, err, errlen) != 0 ||
        distinct_targets(out->dsns, out->ndsns, err, errlen) != 0) {
        pp_dsn_list_free(out->dsns, out->ndsns);
        pp_catalog_free(cat);
        free(constant);
        out->dsns = NULL;
        return -1;
    }
    pp_target_options topt = {
        /* several targets, or some to come from discovery: every series
         * says its server (and, per database, its database) */
        .server_label = out->ndsns > 1 || cfg->auto_discover,
        .connect_timeout = cfg->connect_timeout,
        .lock_timeout = cfg->lock_timeout,
        .max_series = (size_t)cfg->max_series,
        .max_connecting = (size_t)cfg->max_connecting,
        .max_per_server = (size_t)cfg->max_per_server,
        .auto_discover = cfg->auto_discover,
        .role_interval = cfg->role_interval,
    };
    char why[900];
    bool missing_ok = strcmp(cfg->config_file, PP_CONFIG_DEFAULT_CONFIG_FILE) == 0;
    int bad = 0;
    if (pp_auth_modules_load(cfg->config_file, missing_ok, &out->modules, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "--config.file: %s", why);
        bad = 1;
    } else if ((out->allow = pp_hostmatch_parse(cfg->probe_allowed, why, sizeof(why))) == NULL) {
        snprintf(err, errlen, "--web.probe-allowed-targets: %s", why);
        bad = 1;
    }
    if (bad) {
        pp_auth_modules_deinit(&out->modules);
        pp_dsn_list_free(out->dsns, out->ndsns);
        pp_catalog_free(cat);
        free(constant);
        return -1;
    }
    /* /probe: the same catalog and settings, one target per page, no
     * discovery; each generation owns its copy of the option strings */
    pp_target_options popt = topt;
    popt.server_label = false;
    popt.auto_discover = false;
    popt.constant_labels = constant != NULL ? pp_strdup(constant) : NULL;
    topt.constant_labels = constant;
    topt.session = session_settings(cfg);
    popt.session = pp_strdup(topt.session);
    /* "a, b,c": names trimmed, empty ones skipped */
    pp_split_list(cfg->include_databases, PP_SPLIT_TRIM | PP_SPLIT_SKIP_EMPTY, &topt.include,
                  &topt.ninclude);
    pp_split_list(cfg->exclude_databases, PP_SPLIT_TRIM | PP_SPLIT_SKIP_EMPTY, &topt.exclude,
                  &topt.nexclude);
    out->gen = pp_gen_new(pp_catalog_ref(cat), &topt, ++e->gen_id);
    out->probe_gen = pp_gen_new(cat, &popt, ++e->gen_id);
    return 0;
}

/* Switches the registry to what was loaded; consumes it. */
static void switch_to(exporter *e, loaded *l, pp_registry_diff *diff)
{
    if (l->ndsns == 0)
        pp_log_write(&e->log, PP_LOG_WARN,
                     "no data source configured: set DATA_SOURCE_NAME or --data-source.name", NULL);
    pp_registry_apply(e->reg, l->dsns, l->ndsns, l->gen, CONNECT_SPREAD, diff);
    pp_dsn_list_free(l->dsns, l->ndsns); /* the targets took the contents */
    pp_gen_unref(l->gen);
    pp_probes_configure(e->probes, l->probe_gen, &l->modules, l->allow, e->cfg.probe_idle,
                        (size_t)e->cfg.probe_max);
    pp_gen_unref(l->probe_gen);
    e->status.reload_ok = true;
    e->status.reload_success_ts = pp_clock_wall();
}

/* ---- reload ------------------------------------------------------------- */

static bool same_list(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

/* --web.config.file is read once, at start-up: TLS and the users are
 * HTTP's, which a reload keeps. Say so when the file (or the flag) no
 * longer matches what runs. */
static void check_web_config(exporter *e, const pp_config *cfg)
{
    const char *path = cfg->web_config_file;
    bool given = path != NULL && *path != '\0';
    bool running = e->web != NULL;
    const char *msg = "changed --web.config.file takes effect at the next restart, not on reload";
    if (given != running || (given && strcmp(path, e->web->path) != 0)) {
        pp_log_write(&e->log, PP_LOG_WARN, msg, NULL);
        return;
    }
    if (!given)
        return;
    pp_webconfig *now = NULL;
    char err[1024];
    if (pp_webconfig_load(path, &now, err, sizeof(err)) != 0) {
        pp_log_write(&e->log, PP_LOG_WARN,
                     "the web configuration file is invalid now: the running one stays; a restart "
                     "would fail",
                     "err", err, NULL);
        return;
    }
    if (memcmp(now->digest, e->web->digest, sizeof(now->digest)) != 0)
        pp_log_write(&e->log, PP_LOG_WARN, msg, "file", path, NULL);
    pp_webconfig_free(now);
}

static int reload(exporter *e, char *err, size_t errlen)
{
    pp_config cfg;
    loaded l;
    if (pp_config_parse(&cfg, e->argc, e->argv, NULL, err, errlen) != 0)
        goto fail;
    if (load(e, &cfg, &l, err, errlen) != 0) {
        pp_config_deinit(&cfg);
        goto fail;
    }
    /* what HTTP was started with stays until a restart */
    if (!same_list(cfg.listen, cfg.nlisten, e->cfg.listen, e->cfg.nlisten) ||
        !same_list(cfg.dashboard, cfg.ndashboard, e->cfg.dashboard, e->cfg.ndashboard) ||
        strcmp(cfg.telemetry_path, e->cfg.telemetry_path) != 0 ||
        cfg.enable_lifecycle != e->cfg.enable_lifecycle ||
        cfg.max_connections != e->cfg.max_connections ||
        cfg.write_timeout != e->cfg.write_timeout || cfg.startup_wait != e->cfg.startup_wait)
        pp_log_write(&e->log, PP_LOG_WARN,
                     "changed --web.* flags take effect at the next restart, not on reload", NULL);
    check_web_config(e, &cfg);
    e->log.level = cfg.log_level;
    e->log.format = cfg.log_format;
    /* keep the web settings HTTP runs with; take the rest */
    pp_config old = e->cfg;
    e->cfg = cfg;
    char **listen = e->cfg.listen;
    size_t nlisten = e->cfg.nlisten;
    char **dashboard = e->cfg.dashboard;
    size_t ndashboard = e->cfg.ndashboard;
    char *path = e->cfg.telemetry_path;
    e->cfg.listen = old.listen;
    e->cfg.nlisten = old.nlisten;
    e->cfg.dashboard = old.dashboard;
    e->cfg.ndashboard = old.ndashboard;
    e->cfg.telemetry_path = old.telemetry_path;
    e->cfg.enable_lifecycle = old.enable_lifecycle;
    e->cfg.max_connections = old.max_connections;
    e->cfg.write_timeout = old.write_timeout;
    e->cfg.startup_wait = old.startup_wait;
    old.listen = listen;
    old.nlisten = nlisten;
    old.dashboard = dashboard;
    old.ndashboard = ndashboard;
    old.telemetry_path = path;
    pp_config_deinit(&old);

    pp_registry_diff d;
    switch_to(e, &l, &d);
    char kept[24], added[24], replaced[24], removed[24], queries[24];
    snprintf(kept, sizeof(kept), "%zu", d.kept);
    snprintf(added, sizeof(added), "%zu", d.added);
    snprintf(replaced, sizeof(replaced), "%zu", d.replaced);
    snprintf(removed, sizeof(removed), "%zu", d.removed);
    snprintf(queries, sizeof(queries), "%zu", pp_registry_gen(e->reg)->cat->nqueries);
    pp_log_write(&e->log, PP_LOG_INFO, "configuration reloaded", "targets_kept", kept,
                 "targets_added", added, "targets_replaced", replaced, "targets_removed", removed,
                 "queries", queries, NULL);
    return 0;

fail:
    e->status.reload_ok = false;
    if (e->snapshot != NULL)
        pp_snapshot_mark_dirty(e->snapshot, true);
    pp_log_write(&e->log, PP_LOG_ERROR, "reload failed: keeping the running configuration", "err",
                 err, NULL);
    return -1;
}

static int on_reload_hook(void *data, char *err, size_t errlen)
{
    exporter *e = data;
    if (e->stopping) {
        snprintf(err, errlen, "shutting down");
        return -1;
    }
    return reload(e, err, errlen);
}

static bool on_ready_hook(void *data)
{
    exporter *e = data;
    if (e->reg == NULL || e->snapshot == NULL)
        return true;
    return pp_snapshot_ready(e->snapshot);
}

static void on_status_hook(void *data, const char *metrics_path, pp_buf *out)
{
    exporter *e = data;
    if (e->reg == NULL) {
        pp_buf_puts(out, "{\"nodes\":[]}\n");
        return;
    }
    pp_status_render(out, e->reg, metrics_path, pp_clock_wall());
}

static void on_signal(uv_signal_t *h, int signum)
{
    exporter *e = h->data;
    if (signum == SIGHUP) {
        if (e->stopping)
            return;
        pp_log_write(&e->log, PP_LOG_INFO, "reloading", "signal", "SIGHUP", NULL);
        char err[1024];
        (void)reload(e, err, sizeof(err));
        return;
    }
    pp_log_write(&e->log, PP_LOG_INFO, "shutting down", "signal",
                 signum == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    stop(e);
}

int pp_exporter_dumpmaps(const pp_config *cfg, FILE *out, char *err, size_t errlen)
{
    pp_process_status status;
    pp_catalog *cat;
    memset(&status, 0, sizeof(status));
    int rc = load_catalog(cfg, &status, &cat, err, errlen);
    free(status.user_queries_file);
    if (rc != 0)
        return -1;
    pp_catalog_dump(cat, out);
    pp_catalog_free(cat);
    return 0;
}

/* ---- the process -------------------------------------------------------- */

extern char **environ;

/* A postgres_exporter variable pgpulse does not read is said, never
 * silently ignored: the user expects it to do something. */
static void warn_unread_env(exporter *e)
{
    const char *unread[16];
    size_t n = pp_config_unread_env(environ, unread, 16);
    for (size_t i = 0; i < n; i++) {
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(unread[i], "="), unread[i]);
        pp_log_write(&e->log, PP_LOG_WARN,
                     "environment variable not read by pgpulse: see the migration notes", "var",
                     name, NULL);
    }
}

/* One descriptor per target and per client: use what the hard limit
 * allows, as Go programs (postgres_exporter) do. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int pp_exporter_run(int argc, char **argv, const pp_config *cfg, const pp_log *log)
{
    exporter *e = pp_calloc(1, sizeof(*e));
    int status = 1;
    e->log = *log;
    e->log.writer = NULL;
    /* a slow log pipe must never block the loop */
    (void)pp_log_start_writer(&e->log, LOG_QUEUE_BYTES);
    e->argc = argc;
    e->argv = argv;
    /* host name lookups (at most --collection.max-connecting at once) and
     * page assembly share libuv's thread pool: size it so that lookups
     * that hang, all of them, still leave threads for the page */
    if (getenv("UV_THREADPOOL_SIZE") == NULL) {
        double want = cfg->max_connecting > 0 ? cfg->max_connecting + 8 : 128;
        char n[16];
        snprintf(n, sizeof(n), "%d", want > 1024 ? 1024 : (int)want);
        setenv("UV_THREADPOOL_SIZE", n, 0);
    }
    raise_fd_limit();
    /* Pages and pieces are allocated on the loop and in the pool's
     * threads: glibc would give each thread an arena of its own and keep
     * what they free (a 100-target page took 117 MiB of RSS where it needs
     * 46). Two arenas, and big buffers (pages) always mapped and unmapped
     * so their memory goes back to the system when a page is freed. */
    mallopt(M_ARENA_MAX, 2);
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    signal(SIGPIPE, SIG_IGN);
    /* backoff and schedule jitter: different in every process */
    srand((unsigned)(uv_hrtime() ^ (uint64_t)getpid()));
    uv_loop_init(&e->loop);
    pp_turn_init(&e->turn, &e->loop, TURN_BUDGET_MS);
    uv_signal_init(&e->loop, &e->sigterm);
    uv_signal_init(&e->loop, &e->sigint);
    uv_signal_init(&e->loop, &e->sighup);
    uv_timer_init(&e->loop, &e->force);
    uv_timer_init(&e->loop, &e->lag);
    e->sigterm.data = e->sigint.data = e->sighup.data = e->force.data = e->lag.data = e;
    e->lag_expect = uv_hrtime() + (uint64_t)LAG_TICK_MS * 1000000;
    uv_timer_start(&e->lag, on_lag_tick, LAG_TICK_MS, LAG_TICK_MS);
    uv_signal_start(&e->sigterm, on_signal, SIGTERM);
    uv_signal_start(&e->sigint, on_signal, SIGINT);
    uv_signal_start(&e->sighup, on_signal, SIGHUP);

    /* a private copy: the caller's config is parsed again at reload */
    char err[1024];
    if (pp_config_parse(&e->cfg, argc, argv, NULL, err, sizeof(err)) != 0) {
        pp_log_write(&e->log, PP_LOG_ERROR, "invalid configuration", "err", err, NULL);
        stop(e);
        goto out;
    }
    warn_unread_env(e);
    if (e->cfg.web_config_file != NULL && *e->cfg.web_config_file != '\0' &&
        pp_webconfig_load(e->cfg.web_config_file, &e->web, err, sizeof(err)) != 0) {
        pp_log_write(&e->log, PP_LOG_ERROR, "invalid web configuration (--web.config.file)", "err",
                     err, NULL);
        stop(e);
        goto out;
    }
    loaded l;
    e->reg = pp_registry_new(&e->loop, &e->log, on_registry_change, e);
    if (load(e, &e->cfg, &l, err, sizeof(err)) != 0) {
        pp_log_write(&e->log, PP_LOG_ERROR, "cannot start", "err", err, NULL);
        stop(e);
        goto out;
    }
    e->snapshot = pp_snapshot_new(&e->loop, e->reg, &e->status, &e->log);
    e->probes = pp_probes_new(&e->loop, &e->log);
    switch_to(e, &l, NULL);
    pp_http_options hopt = {
        .addresses = (const char *const *)e->cfg.listen,
        .naddresses = e->cfg.nlisten,
        .dashboard_addresses = (const char *const *)e->cfg.dashboard,
        .ndashboard_addresses = e->cfg.ndashboard,
        .telemetry_path = e->cfg.telemetry_path,
        .max_connections = (size_t)e->cfg.max_connections,
        .write_timeout = e->cfg.write_timeout,
        .startup_wait = e->cfg.startup_wait,
        .enable_lifecycle = e->cfg.enable_lifecycle,
        .systemd_socket = e->cfg.systemd_socket,
        .web = e->web,
    };
    pp_http_hooks hooks = {on_ready_hook, on_reload_hook, on_status_hook, e};
    if (pp_http_start(&e->http, &e->loop, &hopt, &hooks, e->snapshot, e->probes, &e->status.http,
                      &e->log, err, sizeof(err)) != 0) {
        pp_log_write(&e->log, PP_LOG_ERROR, "cannot start the web server", "err", err, NULL);
        stop(e);
        goto out;
    }
    pp_log_write(&e->log, PP_LOG_INFO, "started", "version", PGPULSE_VERSION, NULL);
    status = 0;

out:
    uv_run(&e->loop, UV_RUN_DEFAULT);
    if (e->forced) {
        /* handles are still open (and the log pipe may be stuck): leave
         * them to the operating system */
        return 0;
    }
    if (uv_loop_close(&e->loop) != 0)
        pp_log_write(&e->log, PP_LOG_WARN, "handles left open at exit", NULL);
    pp_config_deinit(&e->cfg);
    pp_webconfig_free(e->web);
    if (status == 0)
        pp_log_write(&e->log, PP_LOG_INFO, "stopped", NULL);
    pp_log_stop_writer(&e->log);
    free(e->status.user_queries_file);
    free(e);
    return status;
}
