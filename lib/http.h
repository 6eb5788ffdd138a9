/*
 * http: the HTTP side, on libh2o's libuv flavour.
 *
 * Serves the telemetry path from the published snapshot (zero copy: the
 * page is linked to the request's pool and sent as is, gzip-encoded when
 * the client accepts it), the dashboard at "/" (its script and style at
 * /dashboard.js and /dashboard.css, its data at /api/v1/status, built by
 * the status hook from cached state), /-/healthy, /-/ready and, when
 * enabled, /-/reload; 404 for anything else. Dashboard addresses, if any,
 * get listeners of their own that serve the dashboard and nothing else.
 * The dashboard's responses carry a strict Content-Security-Policy: the
 * page loads nothing but its own script, style and data. Handlers read the
 * snapshot and nothing else: no handler waits on a database, a lookup, a
 * file or a lock. The one wait is bounded and cheap: right after start-up
 * (or a reload that added targets) a scrape is held, without touching
 * anything, until the page shows every target's first connection attempt,
 * at most until the scrape's own deadline.
 *
 * With a web config (--web.config.file), connections are TLS (tls.h) and
 * every request, whatever its path, must carry basic-auth credentials
 * (auth.h) before it is routed; a request whose password is being checked
 * waits, like a held scrape, and is answered when the check ends.
 *
 * Hardened defaults (see the h2o notes): HTTP/1.1 only, small request
 * bodies, short idle timeout, our own Server header, HEAD answered without
 * a body, a cap on open connections and a deadline for each response to be
 * read, so clients that stop reading cannot pin memory or descriptors.
 */
#ifndef PGPULSE_HTTP_H
#define PGPULSE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "buf.h"
#include "log.h"
#include "probe.h"
#include "selfmetrics.h"
#include "snapshot.h"
#include "webconfig.h"

typedef struct pp_http pp_http;

typedef struct pp_http_options {
    const char *const *addresses; /* borrowed */
    size_t naddresses;
    const char *const *dashboard_addresses; /* borrowed; only the dashboard there */
    size_t ndashboard_addresses;
    const char *telemetry_path; /* borrowed; must outlive the server */
    size_t max_connections;     /* connections beyond this are closed at once; 0 = no cap */
    double write_timeout;       /* seconds a response may take to be read */
    double startup_wait;        /* most seconds a scrape waits for first attempts */
    bool enable_lifecycle;      /* serve POST/PUT /-/reload */
    bool systemd_socket;        /* listen on systemd's sockets, not on addresses */
    const pp_webconfig *web;    /* borrowed, must outlive the server; NULL = plain HTTP */
} pp_http_options;

/* What the server asks of its owner. Both run on the loop thread. */
typedef struct pp_http_hooks {
    /* Whether the current page shows every target's first attempt. */
    bool (*ready)(void *data);
    /* Reloads the configuration; 0, or -1 with a message. */
    int (*reload)(void *data, char *err, size_t errlen);
    /* Appends the dashboard's JSON document (status.h) to out; metrics_path
     * is the path to link to, NULL on a dashboard-only listener. */
    void (*status)(void *data, const char *metrics_path, pp_buf *out);
    void *data;
} pp_http_hooks;

/* Parses a listen address the way postgres_exporter accepts it:
 * ":9187" (every interface), "host:port", "[v6]:port". Host names are
 * resolved here (start-up only). Returns 0 or -1 with a message. */
int pp_http_parse_address(const char *text, struct sockaddr_storage *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Creates the server and binds every address. opt is copied (its strings
 * are borrowed); hooks is copied; snapshot, probes (NULL: no /probe),
 * stats and log are borrowed and must outlive the server. stats is kept
 * current. */
int pp_http_start(pp_http **out, uv_loop_t *loop, const pp_http_options *opt,
                  const pp_http_hooks *hooks, pp_snapshot *snapshot, pp_probes *probes,
                  pp_http_stats *stats, const pp_log *log, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Stops accepting and drains: responses in flight finish and their
 * connections close, idle connections close now, held scrapes are answered,
 * and whatever is still open after drain seconds is cut. Calls on_closed
 * once every client connection is gone and h2o is disposed; the server is
 * freed after on_closed returns. The snapshot is not read after on_closed. */
void pp_http_stop(pp_http *h, double drain, void (*on_closed)(void *data), void *data);

#endif
