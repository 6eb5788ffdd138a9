/*
 * exporter: start-up, the loop and shutdown (see exporter.h).
 *
 * Start-up validates everything before it serves: a catalog or DSN error
 * ends the process with status 1 and a message naming the file position or
 * the (masked) DSN. Shutdown closes every target connection and the HTTP
 * side, then lets the loop run dry so every handle is released.
 */
#include "exporter.h"

#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "buf.h"
#include "catalog.h"
#include "dsn.h"
#include "family.h"
#include "http.h"
#include "snapshot.h"
#include "target.h"

#define MAX_DYNAMIC_FAMILIES 100000

typedef struct exporter {
    uv_loop_t loop;
    const pp_log *log;
    pp_catalog *cat;
    pp_families *families;
    pp_target **targets;
    size_t ntargets;
    pp_target_options topt;
    pp_snapshot *snapshot;
    pp_http *http;
    uv_signal_t sigterm, sigint;
    bool stopping;
} exporter;

static void on_target_change(pp_target *t, void *data)
{
    exporter *e = data;
    (void)t;
    if (e->snapshot != NULL)
        pp_snapshot_mark_dirty(e->snapshot);
}

static void on_signal_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_http_closed(void *data)
{
    exporter *e = data;
    e->http = NULL;
    /* the signal handles stay open until now so a second SIGTERM (as
     * timeout(1) sends to the group) finds us still handling signals */
    uv_close((uv_handle_t *)&e->sigterm, on_signal_closed);
    uv_close((uv_handle_t *)&e->sigint, on_signal_closed);
}

static void stop(exporter *e)
{
    if (e->stopping)
        return;
    e->stopping = true;
    for (size_t i = 0; i < e->ntargets; i++)
        pp_target_close(e->targets[i]);
    e->ntargets = 0;
    pp_snapshot_close(e->snapshot);
    e->snapshot = NULL;
    if (e->http != NULL)
        pp_http_stop(e->http, on_http_closed, e);
    else
        on_http_closed(e);
}

static void on_signal(uv_signal_t *h, int signum)
{
    exporter *e = h->data;
    pp_log_write(e->log, PP_LOG_INFO, "shutting down", "signal",
                 signum == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    stop(e);
}

static int load_catalog(exporter *e, const pp_config *cfg)
{
    char err[1024];
    e->cat = pp_catalog_new();
    int rc = 0;
    if (cfg->ncatalogs == 0) {
        rc = pp_catalog_load_builtin(e->cat, err, sizeof(err));
    } else {
        for (size_t i = 0; i < cfg->ncatalogs && rc == 0; i++)
            rc = pp_catalog_load_path(e->cat, cfg->catalogs[i], err, sizeof(err));
    }
    if (rc != 0) {
        pp_log_write(e->log, PP_LOG_ERROR, "cannot load the query catalog", "err", err, NULL);
        return -1;
    }
    if (e->cat->nqueries == 0) {
        pp_log_write(e->log, PP_LOG_ERROR, "the query catalog has no queries", NULL);
        return -1;
    }
    return 0;
}

/* A database name safe to show in a label: it cannot be a piece of a
 * malformed DSN carrying a password. */
static bool plain_name(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

/* Series of different targets must differ: two DSNs for the same
 * host:port (different databases) get "host:port/dbname" labels; DSNs that
 * still collide are the same target twice, which is an error. */
static int distinct_labels(pp_dsn *dsns, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            if (strcmp(dsns[i].label, dsns[j].label) != 0)
                continue;
            for (size_t k = 0; k < n; k++) {
                if (k != i && k != j && strcmp(dsns[k].label, dsns[i].label) != 0)
                    continue;
                if (!plain_name(dsns[k].dbname))
                    continue; /* a label shows it: only plain names (then refused below) */
                pp_buf b = PP_BUF_INIT;
                pp_buf_printf(&b, "%s/%s", dsns[k].label, dsns[k].dbname);
                free(dsns[k].label);
                dsns[k].label = pp_buf_steal(&b, NULL);
            }
        }
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(dsns[i].label, dsns[j].label) == 0) {
                snprintf(err, errlen,
                         "DATA_SOURCE_NAME: DSN %zu and DSN %zu both name server %s: list each "
                         "server once",
                         i + 1, j + 1, dsns[i].label);
                return -1;
            }
    return 0;
}

static int make_targets(exporter *e)
{
    char err[1024];
    pp_dsn *dsns = NULL;
    size_t n = 0;
    if (pp_dsn_from_env(NULL, &dsns, &n, err, sizeof(err)) != 0) {
        pp_log_write(e->log, PP_LOG_ERROR, "invalid data source", "err", err, NULL);
        return -1;
    }
    if (n == 0)
        pp_log_write(e->log, PP_LOG_WARN, "no data source configured: set DATA_SOURCE_NAME", NULL);
    if (distinct_labels(dsns, n, err, sizeof(err)) != 0) {
        pp_log_write(e->log, PP_LOG_ERROR, "invalid data source", "err", err, NULL);
        pp_dsn_list_free(dsns, n);
        return -1;
    }
    e->topt.server_label = n > 1;
    e->families = pp_families_new(e->cat, MAX_DYNAMIC_FAMILIES);
    e->targets = pp_calloc(n ? n : 1, sizeof(pp_target *));
    for (size_t i = 0; i < n; i++)
        e->targets[e->ntargets++] = pp_target_new(&e->loop, &dsns[i], e->cat, e->families, &e->topt,
                                                  on_target_change, e, e->log);
    pp_dsn_list_free(dsns, n); /* the targets took the contents */
    return 0;
}

int pp_exporter_run(const pp_config *cfg, const pp_log *log)
{
    exporter *e = pp_calloc(1, sizeof(*e));
    int status = 1;
    e->log = log;
    e->topt.connect_timeout = cfg->connect_timeout;
    e->topt.lock_timeout = cfg->lock_timeout;
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&e->loop);
    uv_signal_init(&e->loop, &e->sigterm);
    uv_signal_init(&e->loop, &e->sigint);
    e->sigterm.data = e->sigint.data = e;
    uv_signal_start(&e->sigterm, on_signal, SIGTERM);
    uv_signal_start(&e->sigint, on_signal, SIGINT);

    if (load_catalog(e, cfg) != 0 || make_targets(e) != 0) {
        stop(e);
        goto out;
    }
    e->snapshot = pp_snapshot_new(&e->loop, e->cat, e->families, e->targets, &e->ntargets, log);
    char err[512];
    if (pp_http_start(&e->http, &e->loop, (const char *const *)cfg->listen, cfg->nlisten,
                      cfg->telemetry_path, e->snapshot, log, err, sizeof(err)) != 0) {
        pp_log_write(log, PP_LOG_ERROR, "cannot start the web server", "err", err, NULL);
        stop(e);
        goto out;
    }
    /* spread the first connects of many targets over up to two seconds */
    for (size_t i = 0; i < e->ntargets; i++) {
        double spread = e->ntargets > 1 ? 2.0 * (double)i / (double)e->ntargets : 0;
        if (spread > 0 && e->ntargets < 50)
            spread = 0;
        pp_target_start(e->targets[i], spread);
    }
    pp_log_write(log, PP_LOG_INFO, "started", "version", PGPULSE_VERSION, NULL);
    status = 0;

out:
    uv_run(&e->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&e->loop) != 0)
        pp_log_write(log, PP_LOG_WARN, "handles left open at exit", NULL);
    pp_families_free(e->families);
    pp_catalog_free(e->cat);
    free(e->targets);
    free(e);
    if (status == 0)
        pp_log_write(log, PP_LOG_INFO, "stopped", NULL);
    return status;
}
