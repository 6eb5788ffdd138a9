/*
 * http: h2o setup, listeners and handlers (see http.h).
 *
 * Shutdown follows the only sequence that is clean with h2o 2.2.5: close
 * the listeners, wait until the count of client connections (kept through
 * the close callback given to h2o_uv_socket_create) drops to zero, then
 * dispose the context inside the loop. Disposing with a connection open,
 * or after h2o_context_request_shutdown, aborts inside h2o. To get there
 * in bounded time without cutting responses in flight, every client's
 * socket is shut down for reading (an idle keep-alive connection reads
 * EOF and h2o closes it; a busy one finishes its response first, then
 * reads EOF), responses sent while stopping ask h2o to close, and what is
 * left at the drain deadline is shut down both ways, which fails its
 * pending write and makes h2o close it.
 *
 * h2o 2.2.5 has no write timeout. Once a second a sweep looks at each
 * client's libuv write queue: a connection whose queue has not emptied for
 * write_timeout seconds is cut the same way.
 */
#include "http.h"

#include <assert.h>
#include <h2o.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "auth.h"
#include "buf.h"
#include "config.h"
#include "probe.h"
#include "web.h"
#include "tls.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define SWEEP_MS 1000
#define PARK_POLL_MS 25
#define SCRAPE_MARGIN 0.5 /* seconds kept from a scrape's own timeout */

/* The dashboard loads its own script, style and data and nothing else. */
#define DASHBOARD_CSP                                                                              \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "                \
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
/* Where the page's template says what differs per listener. */
#define METRICS_LINK_MARK "<!--pgpulse:metrics-link-->"
#define VERSION_MARK "<!--pgpulse:version-->"

typedef struct listener {
    uv_tcp_t tcp;
    pp_http *http;
    h2o_accept_ctx_t *accept; /* the listener's kind: everything, or the dashboard only */
} listener;

/* A client connection; h2o takes over tcp.data, so the owner is kept
 * beside the handle and found with the handle's address. */
typedef struct client {
    uv_tcp_t tcp; /* first */
    pp_http *http;
    struct client *prev, *next;
    h2o_socket_t *sock;     /* h2o's socket over tcp */
    uint64_t pending_since; /* uv_now when its write queue last became non-empty, 0 = empty */
    bool cut;
    bool stuck_seen; /* found stuck closing by the last sweep (see reap_stuck) */
    bool reaped;
} client;

/* A scrape held until the page shows every target's first attempt (of
 * the exporter's targets, or of one probed target). */
typedef struct parked {
    h2o_req_t *req;
    pp_probe *probe;   /* held; NULL for the telemetry path */
    uint64_t deadline; /* uv_now */
    struct parked *prev, *next;
} parked;

typedef struct handler {
    h2o_handler_t super; /* first: h2o hands us this pointer */
    pp_http *http;
    bool dashboard_only; /* the handler of the dashboard addresses */
} handler;

struct pp_http {
    uv_loop_t *loop;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept;      /* --web.listen-address */
    h2o_accept_ctx_t dash_accept; /* --web.dashboard-address */
    h2o_hostconf_t *hosts[2];     /* NULL-terminated, one host each */
    h2o_hostconf_t *dash_hosts[2];
    bool ctx_ready;
    listener **listeners;
    size_t nlisteners;
    size_t open_listeners;
    size_t connections; /* handles not yet through their close callback */
    client *clients;    /* open client connections */
    parked *parked;
    pp_http_options opt;
    const pp_webconfig *web; /* borrowed from opt; NULL: plain HTTP, no auth */
    SSL_CTX *ssl_ctx;        /* owned; NULL: plain HTTP */
    pp_auth *auth;           /* owned; NULL: no authentication */
    pp_http_hooks hooks;
    pp_http_stats *stats;
    pp_snapshot *snapshot;
    pp_probes *probes;
    const pp_log *log;
    pp_buf page;      /* the dashboard's HTML, with the metrics link */
    pp_buf dash_page; /* the same without it, for dashboard addresses */
    uv_timer_t sweep; /* write deadlines */
    uv_timer_t park;  /* held scrapes */
    uv_timer_t drain; /* shutdown deadline */
    int timers;       /* timers not yet closed */
    bool stopping;
    bool rejected_logged; /* the cap was hit: logged once until it is not */
    void (*on_closed)(void *data);
    void *closed_data;
};

int pp_http_parse_address(const char *text, struct sockaddr_storage *out, char *err, size_t errlen)
{
    char host[256];
    const char *port;
    const char *colon;
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (end == NULL || end[1] != ':') {
            snprintf(err, errlen, "invalid listen address \"%s\": expected [host]:port", text);
            return -1;
        }
        snprintf(host, sizeof(host), "%.*s", (int)(end - text - 1), text + 1);
        port = end + 2;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL) {
            snprintf(err, errlen, "invalid listen address \"%s\": missing port", text);
            return -1;
        }
        snprintf(host, sizeof(host), "%.*s", (int)(colon - text), text);
        port = colon + 1;
    }
    char *endp;
    long p = strtol(port, &endp, 10);
    if (*port == '\0' || *endp != '\0' || p < 0 || p > 65535) {
        snprintf(err, errlen, "invalid listen address \"%s\": bad port", text);
        return -1;
    }
    memset(out, 0, sizeof(*out));
    if (host[0] == '\0') {
        /* ":9187": every interface, as Go's net.Listen does; dual-stack */
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_any;
        a->sin6_port = htons((uint16_t)p);
        return 0;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, errlen, "invalid listen address \"%s\": %s", text, gai_strerror(rc));
        return -1;
    }
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (out->ss_family == AF_INET)
        ((struct sockaddr_in *)out)->sin_port = htons((uint16_t)p);
    else
        ((struct sockaddr_in6 *)out)->sin6_port = htons((uint16_t)p);
    return 0;
}

/* A header value that is exactly a non-negative decimal ("10", "9.5"),
 * or -1. Header values are not NUL-terminated. */
static double parse_decimal(const char *p, size_t n)
{
    double v;
    const char *end = pp_config_read_decimal(p, p + n, &v);
    return end == p + n && end != p ? v : -1;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Whether Accept-Encoding allows gzip (a "gzip" or "*" token without q=0). */
static bool accepts_gzip(h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT_ENCODING, -1);
    if (i < 0)
        return false;
    h2o_iovec_t v = req->headers.entries[i].value;
    size_t pos = 0;
    while (pos < v.len) {
        size_t end = pos;
        while (end < v.len && v.base[end] != ',')
            end++;
        /* token [; q=x] */
        size_t a = pos;
        while (a < end && is_space(v.base[a]))
            a++;
        size_t b = a;
        while (b < end && v.base[b] != ';' && !is_space(v.base[b]))
            b++;
        bool match = (b - a == 4 && strncasecmp(v.base + a, "gzip", 4) == 0) ||
                     (b - a == 1 && v.base[a] == '*');
        if (match) {
            bool zero = false;
            const char *q = memchr(v.base + b, '=', end - b);
            if (q != NULL && q > v.base + b && (q[-1] == 'q' || q[-1] == 'Q')) {
                const char *qs = q + 1, *qe = v.base + end;
                while (qs < qe && is_space(*qs))
                    qs++;
                while (qe > qs && is_space(qe[-1]))
                    qe--;
                zero = parse_decimal(qs, (size_t)(qe - qs)) <= 0.0;
            }
            if (!zero)
                return true;
        }
        pos = end + 1;
    }
    return false;
}

/* Seconds the scrape may wait for the first collections: the scraper's own
 * timeout less a margin, capped by the flag. */
static double wait_budget(pp_http *h, h2o_req_t *req)
{
    double budget = h->opt.startup_wait;
    static const char name[] = "x-prometheus-scrape-timeout-seconds";
    ssize_t i = h2o_find_header_by_str(&req->headers, name, sizeof(name) - 1, -1);
    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        double t = parse_decimal(v.base, v.len);
        if (t >= 0 && t - SCRAPE_MARGIN < budget)
            budget = t - SCRAPE_MARGIN;
    }
    return budget > 0 ? budget : 0;
}

static void send_body(h2o_req_t *req, const char *type, const char *body, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, strlen(type));
    h2o_start_response(req, &generator);
    /* h2o 2.2.5 does not strip the body of a HEAD response itself */
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    h2o_iovec_t iov = h2o_iovec_init(body, len);
    h2o_send(req, &iov, 1, H2O_SEND_STATE_FINAL);
}

static void send_text(h2o_req_t *req, int status, const char *reason, const char *text)
{
    req->res.status = status;
    req->res.reason = reason;
    size_t n = strlen(text);
    /* the text may live on the caller's stack: the pool outlives it */
    char *copy = h2o_mem_alloc_pool(&req->pool, n + 1);
    memcpy(copy, text, n + 1);
    send_body(req, "text/plain; charset=utf-8", copy, n);
}

/* A big page is kept gzipped only: a client that does not take gzip gets
 * it inflated as it reads, 64 KiB per turn, never a whole plain copy. */
#define INFLATE_CHUNK (64 * 1024)

typedef struct inflater {
    h2o_generator_t super; /* first: h2o hands us this pointer */
    z_stream z;
    bool ready; /* z is initialised */
    char out[INFLATE_CHUNK];
} inflater;

static void inflater_dispose(void *p)
{
    inflater *f = p;
    if (f->ready)
        inflateEnd(&f->z);
}

static void inflater_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    inflater *f = (inflater *)g;
    f->z.next_out = (Bytef *)f->out;
    f->z.avail_out = sizeof(f->out);
    int rc = Z_OK;
    while (f->z.avail_out > 0 && rc == Z_OK)
        rc = inflate(&f->z, Z_NO_FLUSH);
    h2o_iovec_t iov = h2o_iovec_init(f->out, sizeof(f->out) - f->z.avail_out);
    if (rc != Z_OK && rc != Z_STREAM_END) {
        /* cannot happen with our own stream; end it short rather than hang */
        h2o_send(req, &iov, 1, H2O_SEND_STATE_ERROR);
        return;
    }
    h2o_send(req, &iov, 1, rc == Z_STREAM_END ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void inflater_stop(h2o_generator_t *g, h2o_req_t *req)
{
    (void)g;
    (void)req; /* the pool's dispose ends the stream */
}

/* Sends page (linked to req's pool) inflated from its gzip form. */
static void send_inflated(h2o_req_t *req, pp_page *page)
{
    req->res.content_length = page->plain_len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT(CONTENT_TYPE));
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        static h2o_generator_t none = {NULL, NULL};
        h2o_start_response(req, &none);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    inflater *f = h2o_mem_alloc_shared(&req->pool, sizeof(*f), inflater_dispose);
    memset(f, 0, sizeof(*f));
    f->super.proceed = inflater_proceed;
    f->super.stop = inflater_stop;
    f->z.next_in = (Bytef *)page->gz;
    f->z.avail_in = (uInt)page->gz_len;
    if (inflateInit2(&f->z, 15 + 16) != Z_OK) {
        h2o_send_error_500(req, "Internal Server Error", "cannot inflate the page\n", 0);
        return;
    }
    f->ready = true;
    h2o_start_response(req, &f->super);
    inflater_proceed(&f->super, req);
}

static void serve_page(h2o_req_t *req, pp_page *page)
{
    /* the request holds the page until its pool is cleared, even if a new
     * page is published meanwhile or the client reads slowly */
    h2o_mem_link_shared(&req->pool, page);
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL,
                   H2O_STRLIT("Accept-Encoding"));
    if (page->gz != NULL && accepts_gzip(req)) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_ENCODING, NULL,
                       H2O_STRLIT("gzip"));
        send_body(req, CONTENT_TYPE, page->gz, page->gz_len);
        return;
    }
    if (page->plain == NULL) {
        send_inflated(req, page);
        return;
    }
    send_body(req, CONTENT_TYPE, page->plain, page->plain_len);
}

static void serve_metrics(pp_http *h, h2o_req_t *req)
{
    serve_page(req, pp_snapshot_current(h->snapshot));
}

/* ---- held scrapes ------------------------------------------------------- */

static bool ready(pp_http *h)
{
    return h->hooks.ready == NULL || h->hooks.ready(h->hooks.data);
}

static void unpark(pp_http *h, parked *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        h->parked = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    h2o_req_t *req = p->req;
    pp_probe *probe = p->probe;
    free(p);
    if (probe != NULL) {
        serve_page(req, pp_probe_page(probe));
        pp_probe_release(probe);
        return;
    }
    serve_metrics(h, req);
}

static void on_park_timer(uv_timer_t *t)
{
    pp_http *h = t->data;
    bool all = h->stopping;
    bool main_ready = ready(h);
    uint64_t now = uv_now(h->loop);
    for (parked *p = h->parked, *next; p != NULL; p = next) {
        next = p->next;
        bool done = p->probe != NULL ? pp_probe_ready(p->probe) : main_ready;
        if (all || done || now >= p->deadline)
            unpark(h, p);
    }
    if (h->parked == NULL)
        uv_timer_stop(&h->park);
}

/* Holds req until its page is ready (probe: that probe's; NULL: the
 * exporter's). Returns false when it is to be answered now. */
static bool park(pp_http *h, h2o_req_t *req, pp_probe *probe)
{
    if (h->stopping || (probe != NULL ? pp_probe_ready(probe) : ready(h)))
        return false;
    double budget = wait_budget(h, req);
    if (budget <= 0)
        return false;
    parked *p = pp_calloc(1, sizeof(*p));
    p->req = req;
    p->probe = probe;
    p->deadline = uv_now(h->loop) + (uint64_t)(budget * 1000);
    p->next = h->parked;
    if (h->parked != NULL)
        h->parked->prev = p;
    h->parked = p;
    if (!uv_is_active((uv_handle_t *)&h->park))
        uv_timer_start(&h->park, on_park_timer, PARK_POLL_MS, PARK_POLL_MS);
    return true;
}

/* ---- role endpoints ----------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The value of parameter name in the request's query string, %-decoded
 * into out (at most outlen - 1 bytes). Returns false when it is absent,
 * too long or badly encoded. */
static bool query_param(h2o_req_t *req, const char *name, char *out, size_t outlen)
{
    if (req->query_at == SIZE_MAX)
        return false;
    const char *p = req->path.base + req->query_at + 1;
    const char *end = req->path.base + req->path.len;
    size_t nlen = strlen(name);
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
            size_t n = 0;
            for (const char *v = p + nlen + 1; v < stop; v++) {
                char c = *v;
                if (c == '+') {
                    c = ' ';
                } else if (c == '%') {
                    if (stop - v < 3 || hexval(v[1]) < 0 || hexval(v[2]) < 0)
                        return false;
                    c = (char)(hexval(v[1]) * 16 + hexval(v[2]));
                    v += 2;
                }
                if (n + 1 >= outlen)
                    return false;
                out[n++] = c;
            }
            out[n] = '\0';
            return true;
        }
        p = stop + 1;
    }
    return false;
}

/* Answers /primary and /replica from the page's view of the targets: 200
 * when the chosen target is up in the wanted role, 503 otherwise, with the
 * role in the body. */
static void serve_role(pp_http *h, h2o_req_t *req, pp_role want)
{
    const pp_page *page = pp_snapshot_current(h->snapshot);
    char name[256];
    const pp_page_target *t = NULL;
    if (query_param(req, "target", name, sizeof(name))) {
        for (size_t i = 0; i < page->ntargets && t == NULL; i++)
            if (strcmp(page->targets[i].name, name) == 0)
                t = &page->targets[i];
        if (t == NULL) {
            send_text(req, 404, "Not Found", "no such target\n");
            return;
        }
    } else if (page->ntargets == 1) {
        t = &page->targets[0];
    } else if (page->ntargets == 0) {
        send_text(req, 503, "Service Unavailable", "no target configured\n");
        return;
    } else {
        pp_buf b = PP_BUF_INIT;
        pp_buf_puts(&b, "several targets: choose one with ?target=, one of:\n");
        for (size_t i = 0; i < page->ntargets; i++) {
            pp_buf_puts(&b, page->targets[i].name);
            pp_buf_putc(&b, '\n');
        }
        send_text(req, 400, "Bad Request", b.data);
        pp_buf_deinit(&b);
        return;
    }
    const char *state = !t->up                       ? "down\n"
                        : t->role == PP_ROLE_PRIMARY ? "primary\n"
                        : t->role == PP_ROLE_STANDBY ? "standby\n"
                                                     : "unknown\n";
    if (t->up && t->role == want)
        send_text(req, 200, "OK", state);
    else
        send_text(req, 503, "Service Unavailable", state);
}

/* ---- /probe ------------------------------------------------------------ */

#define MAX_PROBE_TARGET 4096

/* /probe?target=…[&auth_module=…]: the probed target's own page, at once
 * once it has one; the first probe waits for its first collection. */
static void serve_probe(pp_http *h, h2o_req_t *req)
{
    char *target = h2o_mem_alloc_pool(&req->pool, MAX_PROBE_TARGET);
    char module[256];
    if (!query_param(req, "target", target, MAX_PROBE_TARGET) || target[0] == '\0') {
        send_text(req, 400, "Bad Request", "target is required\n");
        return;
    }
    if (!query_param(req, "auth_module", module, sizeof(module)))
        module[0] = '\0';
    int status = 500;
    char msg[1024];
    pp_probe *probe = pp_probes_get(h->probes, target, module, &status, msg, sizeof(msg));
    memset(target, 0, MAX_PROBE_TARGET); /* it may hold a password */
    if (probe == NULL) {
        size_t n = strlen(msg);
        if (n + 1 < sizeof(msg)) {
            msg[n] = '\n';
            msg[n + 1] = '\0';
        }
        send_text(req, status,
                  status == 400   ? "Bad Request"
                  : status == 403 ? "Forbidden"
                                  : "Service Unavailable",
                  msg);
        return;
    }
    if (park(h, req, probe))
        return; /* the parked request keeps the hold */
    serve_page(req, pp_probe_page(probe));
    pp_probe_release(probe);
}

/* ---- routing ------------------------------------------------------------ */

static bool method_is(h2o_req_t *req, const char *m, size_t n)
{
    return h2o_memis(req->method.base, req->method.len, m, n);
}

static void not_allowed(h2o_req_t *req, const char *allow, size_t allow_len)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, allow_len);
    h2o_send_error_405(req, "Method Not Allowed", "method not allowed\n",
                       H2O_SEND_ERROR_KEEP_HEADERS);
}

static void serve_reload(pp_http *h, h2o_req_t *req)
{
    if (!method_is(req, H2O_STRLIT("POST")) && !method_is(req, H2O_STRLIT("PUT"))) {
        not_allowed(req, H2O_STRLIT("POST, PUT"));
        return;
    }
    if (!h->opt.enable_lifecycle || h->hooks.reload == NULL) {
        send_text(req, 403, "Forbidden",
                  "Lifecycle API is not enabled (start pgpulse with --web.enable-lifecycle).\n");
        return;
    }
    char err[1024];
    if (h->hooks.reload(h->hooks.data, err, sizeof(err)) != 0) {
        char msg[1100];
        snprintf(msg, sizeof(msg), "failed to reload config: %s\n", err);
        send_text(req, 500, "Internal Server Error", msg);
        return;
    }
    send_text(req, 200, "OK", "config reloaded\n");
}

/* ---- dashboard ---------------------------------------------------------- */

static const pp_web_asset *asset(const char *name)
{
    for (const pp_web_asset *a = pp_web_assets; a->name != NULL; a++)
        if (strcmp(a->name, name) == 0)
            return a;
    return NULL;
}

static void add_header(h2o_req_t *req, const char *name, const char *value)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, value,
                          strlen(value));
}

/* What every response of the dashboard carries. */
static void dashboard_headers(h2o_req_t *req, const char *cache)
{
    add_header(req, "content-security-policy", DASHBOARD_CSP);
    add_header(req, "x-content-type-options", "nosniff");
    add_header(req, "x-frame-options", "DENY");
    add_header(req, "referrer-policy", "no-referrer");
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, cache,
                   strlen(cache));
}

/* The dashboard's routes: its page, its two files and its data. */
typedef enum dash_kind { DASH_PAGE, DASH_FILE, DASH_STATUS } dash_kind;

typedef struct dash_route {
    const char *path;
    dash_kind kind;
    const char *file; /* DASH_FILE: the name in pp_web_assets */
    const char *type;
} dash_route;

static const dash_route dash_routes[] = {
    {"/", DASH_PAGE, NULL, "text/html; charset=utf-8"},
    {"/dashboard.js", DASH_FILE, "dashboard.js", "text/javascript; charset=utf-8"},
    {"/dashboard.css", DASH_FILE, "dashboard.css", "text/css; charset=utf-8"},
    {"/api/v1/status", DASH_STATUS, NULL, "application/json; charset=utf-8"},
};

static const dash_route *dashboard_route(h2o_iovec_t path)
{
    for (size_t i = 0; i < sizeof(dash_routes) / sizeof(dash_routes[0]); i++)
        if (h2o_memis(path.base, path.len, dash_routes[i].path, strlen(dash_routes[i].path)))
            return &dash_routes[i];
    return NULL;
}

static void serve_dashboard(pp_http *h, h2o_req_t *req, const dash_route *r, bool dashboard_only)
{
    req->res.status = 200;
    req->res.reason = "OK";
    if (r->kind == DASH_STATUS) {
        /* built now from what the targets last published: no database */
        pp_buf b = PP_BUF_INIT;
        if (h->hooks.status != NULL)
            h->hooks.status(h->hooks.data, dashboard_only ? NULL : h->opt.telemetry_path, &b);
        if (b.len == 0)
            pp_buf_puts(&b, "{\"nodes\":[]}\n");
        char *copy = h2o_mem_alloc_pool(&req->pool, b.len + 1);
        memcpy(copy, b.data, b.len + 1);
        dashboard_headers(req, "no-store");
        send_body(req, r->type, copy, b.len);
        pp_buf_deinit(&b);
        return;
    }
    dashboard_headers(req, "no-cache");
    if (r->kind == DASH_PAGE) {
        const pp_buf *page = dashboard_only ? &h->dash_page : &h->page;
        send_body(req, r->type, page->data, page->len);
        return;
    }
    const pp_web_asset *a = asset(r->file);
    assert(a != NULL); /* compiled in with the table */
    send_body(req, r->type, a->data, a->len);
}

static void route(pp_http *h, h2o_req_t *req, bool dashboard_only)
{
    bool get = method_is(req, H2O_STRLIT("GET"));
    bool head = method_is(req, H2O_STRLIT("HEAD"));
    h2o_iovec_t path = req->path_normalized;
    const dash_route *dash = dashboard_route(path);
    if (dashboard_only) {
        /* a dashboard address: the page, its files and its data, no more */
        if (dash == NULL)
            h2o_send_error_404(req, "Not Found", "not found\n", H2O_SEND_ERROR_KEEP_HEADERS);
        else if (!get && !head)
            not_allowed(req, H2O_STRLIT("GET, HEAD"));
        else
            serve_dashboard(h, req, dash, true);
        return;
    }
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/-/reload"))) {
        serve_reload(h, req);
        return;
    }
    bool is_metrics =
        h2o_memis(path.base, path.len, h->opt.telemetry_path, strlen(h->opt.telemetry_path));
    bool is_dashboard = dash != NULL;
    bool is_healthy = h2o_memis(path.base, path.len, H2O_STRLIT("/-/healthy")) ||
                      h2o_memis(path.base, path.len, H2O_STRLIT("/health"));
    bool is_ready = h2o_memis(path.base, path.len, H2O_STRLIT("/-/ready"));
    bool is_primary = h2o_memis(path.base, path.len, H2O_STRLIT("/primary"));
    bool is_replica = h2o_memis(path.base, path.len, H2O_STRLIT("/replica"));
    bool is_probe = h2o_memis(path.base, path.len, H2O_STRLIT("/probe")) && h->probes != NULL;
    if (!is_metrics && !is_dashboard && !is_healthy && !is_ready && !is_primary && !is_replica &&
        !is_probe) {
        h2o_send_error_404(req, "Not Found", "not found\n", H2O_SEND_ERROR_KEEP_HEADERS);
        return;
    }
    if (!get && !head) {
        not_allowed(req, H2O_STRLIT("GET, HEAD"));
        return;
    }
    if (is_metrics) {
        if (!park(h, req, NULL))
            serve_metrics(h, req);
        return;
    }
    if (is_probe) {
        serve_probe(h, req);
        return;
    }
    if (is_primary || is_replica) {
        serve_role(h, req, is_primary ? PP_ROLE_PRIMARY : PP_ROLE_STANDBY);
        return;
    }
    if (is_healthy) {
        send_text(req, 200, "OK", "pgpulse is healthy.\n");
        return;
    }
    if (is_ready) {
        if (ready(h))
            send_text(req, 200, "OK", "pgpulse is ready.\n");
        else
            send_text(req, 503, "Service Unavailable",
                      "pgpulse is not ready: a target's first connection attempt is under way.\n");
        return;
    }
    serve_dashboard(h, req, dash, false);
}

/* A request waiting for its credentials to be checked. */
typedef struct auth_wait {
    pp_http *http;
    h2o_req_t *req;
    bool dashboard_only;
} auth_wait;

static void unauthorized(h2o_req_t *req)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                   H2O_STRLIT("Basic realm=\"pgpulse\""));
    send_text(req, 401, "Unauthorized", "Unauthorized\n");
}

static void on_auth_done(void *data, pp_auth_result result)
{
    auth_wait *w = data;
    pp_http *h = w->http;
    if (h->stopping)
        w->req->http1_is_persistent = 0;
    if (result == PP_AUTH_OK)
        route(h, w->req, w->dashboard_only);
    else if (result == PP_AUTH_CANCELLED)
        send_text(w->req, 503, "Service Unavailable", "shutting down\n");
    else
        unauthorized(w->req);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    pp_http *h = ((handler *)self)->http;
    bool dashboard_only = ((handler *)self)->dashboard_only;
    if (h->stopping)
        req->http1_is_persistent = 0; /* close once answered: we are draining */
    for (size_t i = 0; h->web != NULL && i < h->web->nheaders; i++) {
        const pp_web_header *hd = &h->web->headers[i];
        h2o_add_header_by_str(&req->pool, &req->res.headers, hd->name, strlen(hd->name), 1, NULL,
                              hd->value, strlen(hd->value));
    }
    if (h->auth == NULL) {
        route(h, req, dashboard_only);
        return 0;
    }
    /* every path, "/" and 404s included, as exporter-toolkit does */
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    const char *v = i >= 0 ? req->headers.entries[i].value.base : NULL;
    size_t vlen = i >= 0 ? req->headers.entries[i].value.len : 0;
    /* h2o stops reading a connection while its request is handled, so the
     * request stays valid until we answer, however long the check takes */
    auth_wait *w = h2o_mem_alloc_pool(&req->pool, sizeof(*w));
    w->http = h;
    w->req = req;
    w->dashboard_only = dashboard_only;
    switch (pp_auth_check(h->auth, v, vlen, on_auth_done, w)) {
    case PP_AUTH_OK:
        route(h, req, dashboard_only);
        break;
    case PP_AUTH_PENDING:
        break;
    default:
        unauthorized(req);
        break;
    }
    return 0;
}

/* ---- connections -------------------------------------------------------- */

/* Shuts a client's socket down (how: SHUT_RD or SHUT_RDWR); h2o notices on
 * its next read or write and closes the connection itself. */
static void shut(client *c, int how)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
        shutdown(fd, how);
}

static void close_timer(uv_timer_t *t);

static void maybe_finish(pp_http *h)
{
    if (!h->stopping)
        return;
    if (h->clients == NULL)
        close_timer(&h->drain); /* drained before the deadline */
    if (h->connections > 0 || h->open_listeners > 0 || h->timers > 0 || h->parked != NULL ||
        (h->auth != NULL && pp_auth_pending(h->auth) > 0))
        return;
    if (h->ctx_ready) {
        h->ctx_ready = false;
        h2o_context_dispose(&h->ctx);
        h2o_config_dispose(&h->config);
    }
    /* connections hold their own references to the context */
    SSL_CTX_free(h->ssl_ctx);
    pp_auth_free(h->auth);
    void (*cb)(void *) = h->on_closed;
    void *data = h->closed_data;
    free(h->listeners);
    pp_buf_deinit(&h->page);
    pp_buf_deinit(&h->dash_page);
    free(h);
    if (cb != NULL)
        cb(data);
}

static void on_conn_closed(uv_handle_t *handle)
{
    client *c = (client *)handle;
    pp_http *h = c->http;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else if (h->clients == c)
        h->clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c);
    h->connections--;
    h->stats->open = h->connections;
    maybe_finish(h);
}

static void on_connection(uv_stream_t *server, int status)
{
    listener *l = (listener *)server;
    pp_http *h = l->http;
    if (status != 0 || h->stopping)
        return;
    client *c = pp_calloc(1, sizeof(*c));
    c->http = h;
    uv_tcp_t *conn = &c->tcp;
    uv_tcp_init(h->loop, conn);
    h->connections++;
    h->stats->open = h->connections;
    if (uv_accept(server, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, on_conn_closed);
        return;
    }
    if (h->opt.max_connections > 0 && h->connections > h->opt.max_connections) {
        /* over the cap: close at once rather than let clients pile up */
        h->stats->rejected++;
        if (!h->rejected_logged) {
            char cap[32];
            snprintf(cap, sizeof(cap), "%zu", h->opt.max_connections);
            pp_log_write(h->log, PP_LOG_WARN, "too many HTTP connections: closing new ones",
                         "max_connections", cap, NULL);
            h->rejected_logged = true;
        }
        uv_close((uv_handle_t *)conn, on_conn_closed);
        return;
    }
    if (h->connections * 2 < h->opt.max_connections)
        h->rejected_logged = false;
    uv_tcp_nodelay(conn, 1);
    c->next = h->clients;
    if (h->clients != NULL)
        h->clients->prev = c;
    h->clients = c;
    c->sock = h2o_uv_socket_create((uv_stream_t *)conn, on_conn_closed);
    h2o_accept(l->accept, c->sock);
}

/*
 * h2o 2.2.5 can leave a TLS connection half-closed for ever, holding its
 * descriptor, its memory and, at shutdown, the whole process. When a read
 * fails (ECONNRESET: a client that closed without close_notify, after the
 * server sent it TLS 1.3 session tickets, is enough), libuv clears the
 * stream's writable flag before h2o's read callback runs; h2o then closes
 * the connection, which for TLS first writes a close_notify, and libuv
 * refuses that write at once (UV_EPIPE) without ever calling its
 * callback, which is the only thing that would finish the close. Such a
 * connection is the only kind whose stream stops being writable while
 * still open (h2o never shuts a stream down), and h2o then waits on the
 * pending write alone: closing it again takes h2o's path for "a write is
 * in flight", which disposes of the socket at once.
 */
static bool stuck_closing(const pp_http *h, const client *c)
{
    return h->ssl_ctx != NULL && !c->reaped && !uv_is_closing((uv_handle_t *)&c->tcp) &&
           !uv_is_writable((const uv_stream_t *)&c->tcp);
}

static void reap_stuck(client *c)
{
    c->reaped = true;
    h2o_socket_close(c->sock);
}

static void on_sweep(uv_timer_t *t)
{
    pp_http *h = t->data;
    uint64_t now = uv_now(h->loop);
    uint64_t limit = (uint64_t)(h->opt.write_timeout * 1000);
    for (client *c = h->clients, *next; c != NULL; c = next) {
        next = c->next;
        /* seen on two sweeps in a row, to be sure h2o is done with it */
        bool stuck = stuck_closing(h, c);
        if (stuck && c->stuck_seen) {
            reap_stuck(c);
            continue;
        }
        c->stuck_seen = stuck;
        if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0) {
            c->pending_since = 0;
            continue;
        }
        if (c->pending_since == 0) {
            c->pending_since = now;
            continue;
        }
        if (!c->cut && limit > 0 && now - c->pending_since >= limit) {
            c->cut = true;
            h->stats->write_timeouts++;
            pp_log_write(h->log, PP_LOG_WARN, "HTTP client did not read its response in time",
                         NULL);
            shut(c, SHUT_RDWR);
        }
    }
}

static void on_drain_deadline(uv_timer_t *t)
{
    pp_http *h = t->data;
    for (client *c = h->clients, *next; c != NULL; c = next) {
        next = c->next;
        if (stuck_closing(h, c))
            reap_stuck(c);
        else if (!c->cut) {
            c->cut = true;
            shut(c, SHUT_RDWR);
        }
    }
    close_timer(&h->drain);
}

static void on_listener_closed(uv_handle_t *handle)
{
    listener *l = (listener *)handle;
    pp_http *h = l->http;
    free(l);
    h->open_listeners--;
    maybe_finish(h);
}

static void on_timer_closed(uv_handle_t *handle)
{
    pp_http *h = handle->data;
    h->timers--;
    maybe_finish(h);
}

static void close_timer(uv_timer_t *t)
{
    if (!uv_is_closing((uv_handle_t *)t))
        uv_close((uv_handle_t *)t, on_timer_closed);
}

/* The page's template with its marks filled in: the version, and the link
 * to the metrics where they are served. */
static void build_page(pp_buf *out, const char *metrics_path)
{
    const pp_web_asset *a = asset("dashboard.html");
    const char *p = a->data, *end = a->data + a->len;
    while (p < end) {
        const char *link = strstr(p, METRICS_LINK_MARK);
        const char *ver = strstr(p, VERSION_MARK);
        const char *mark = link == NULL ? ver : ver == NULL ? link : link < ver ? link : ver;
        if (mark == NULL) {
            pp_buf_append(out, p, (size_t)(end - p));
            break;
        }
        pp_buf_append(out, p, (size_t)(mark - p));
        if (mark == link) {
            if (metrics_path != NULL) {
                /* validated at start-up: a plain path, nothing to escape */
                pp_buf_puts(out, "<a id=\"metrics-link\" href=\"");
                pp_buf_puts(out, metrics_path);
                pp_buf_puts(out, "\">Metrics</a>");
            }
            p = mark + strlen(METRICS_LINK_MARK);
        } else {
            pp_buf_puts(out, PGPULSE_VERSION);
            p = mark + strlen(VERSION_MARK);
        }
    }
}

static handler *add_host(pp_http *h, const char *name, h2o_hostconf_t **slot, bool dashboard_only)
{
    h2o_hostconf_t *host =
        h2o_config_register_host(&h->config, h2o_iovec_init(name, strlen(name)), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    handler *hd = (handler *)h2o_create_handler(path, sizeof(handler));
    hd->super.on_req = on_req;
    hd->http = h;
    hd->dashboard_only = dashboard_only;
    slot[0] = host;
    slot[1] = NULL;
    return hd;
}

/* Binds and listens on every address of one kind. */
static int listen_all(pp_http *h, const char *const *addresses, size_t n, h2o_accept_ctx_t *accept,
                      const char *flag, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_storage sa;
        if (pp_http_parse_address(addresses[i], &sa, err, errlen) != 0)
            return -1;
        listener *l = pp_calloc(1, sizeof(*l));
        l->http = h;
        l->accept = accept;
        uv_tcp_init(h->loop, &l->tcp);
        h->listeners[h->nlisteners++] = l;
        h->open_listeners++;
        int rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&sa, 0);
        if ((rc == UV_EAFNOSUPPORT || rc == UV_EADDRNOTAVAIL) && sa.ss_family == AF_INET6 &&
            addresses[i][0] == ':') {
            /* ":port" on a machine without IPv6: every IPv4 interface */
            struct sockaddr_in any4;
            uv_ip4_addr("0.0.0.0", ntohs(((struct sockaddr_in6 *)&sa)->sin6_port), &any4);
            rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&any4, 0);
        }
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&l->tcp, 1024, on_connection);
        if (rc != 0) {
            snprintf(err, errlen, "cannot listen on \"%s\" (--%s): %s", addresses[i], flag,
                     uv_strerror(rc));
            return -1;
        }
        pp_log_write(h->log, PP_LOG_INFO, "listening", "address", addresses[i], "serves",
                     accept == &h->accept ? "all" : "dashboard", NULL);
    }
    return 0;
}

/* systemd socket activation (--web.systemd-socket): the listening sockets
 * systemd passed, descriptors 3 to 3 + LISTEN_FDS - 1, when LISTEN_PID is
 * this process. They replace --web.listen-address. */
static int listen_systemd(pp_http *h, char *err, size_t errlen)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    char *end = NULL;
    long n = fds != NULL ? strtol(fds, &end, 10) : 0;
    if (pid == NULL || fds == NULL || strtol(pid, NULL, 10) != (long)getpid() || *end != '\0' ||
        n < 1 || n > 64) {
        snprintf(err, errlen,
                 "--web.systemd-socket: systemd passed no listening socket to this "
                 "process (LISTEN_PID and LISTEN_FDS; start pgpulse from a .socket "
                 "unit)");
        return -1;
    }
    for (long i = 0; i < n; i++) {
        listener *l = pp_calloc(1, sizeof(*l));
        l->http = h;
        l->accept = &h->accept;
        uv_tcp_init(h->loop, &l->tcp);
        h->listeners[h->nlisteners++] = l;
        h->open_listeners++;
        int rc = uv_tcp_open(&l->tcp, (uv_os_sock_t)(3 + i));
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&l->tcp, 1024, on_connection);
        if (rc != 0) {
            snprintf(err, errlen, "--web.systemd-socket: descriptor %ld: %s", 3 + i,
                     uv_strerror(rc));
            return -1;
        }
        char fd[24];
        snprintf(fd, sizeof(fd), "%ld", 3 + i);
        pp_log_write(h->log, PP_LOG_INFO, "listening", "systemd_fd", fd, "serves", "all", NULL);
    }
    /* as sd_listen_fds(1): children must not take them for theirs */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return 0;
}

int pp_http_start(pp_http **out, uv_loop_t *loop, const pp_http_options *opt,
                  const pp_http_hooks *hooks, pp_snapshot *snapshot, pp_probes *probes,
                  pp_http_stats *stats, const pp_log *log, char *err, size_t errlen)
{
    pp_http *h = pp_calloc(1, sizeof(*h));
    h->loop = loop;
    h->opt = *opt;
    h->hooks = *hooks;
    h->stats = stats;
    h->snapshot = snapshot;
    h->probes = probes;
    h->log = log;
    build_page(&h->page, opt->telemetry_path);
    build_page(&h->dash_page, NULL);
    uv_timer_init(loop, &h->sweep);
    uv_timer_init(loop, &h->park);
    uv_timer_init(loop, &h->drain);
    h->sweep.data = h->park.data = h->drain.data = h;
    h->timers = 3;
    uv_timer_start(&h->sweep, on_sweep, SWEEP_MS, SWEEP_MS);

    h2o_config_init(&h->config);
    h->config.server_name = h2o_iovec_init(H2O_STRLIT("pgpulse"));
    h->config.max_request_entity_size = 4096;
    h->config.http1.req_timeout = 5000;
    h->config.http1.upgrade_to_http2 = 0;
    /* one host per kind of listener; a connection only ever sees the hosts
     * of the listener that accepted it */
    add_host(h, "default", h->hosts, false);
    add_host(h, "dashboard", h->dash_hosts, true);
    h2o_context_init(&h->ctx, loop, &h->config);
    h->ctx_ready = true;
    h->accept.ctx = &h->ctx;
    h->accept.hosts = h->hosts;
    h->dash_accept.ctx = &h->ctx;
    h->dash_accept.hosts = h->dash_hosts;
    h->web = opt->web;
    if (h->web != NULL && h->web->tls) {
        if (pp_tls_new(h->web, &h->ssl_ctx, err, errlen) != 0)
            goto fail;
        h->accept.ssl_ctx = h->ssl_ctx;
        h->dash_accept.ssl_ctx = h->ssl_ctx; /* the dashboard is behind the same TLS */
        pp_log_write(log, PP_LOG_INFO, "TLS is enabled", "client_auth_type",
                     pp_webconfig_client_auth_name(h->web->client_auth), NULL);
    } else {
        pp_log_write(log, PP_LOG_INFO, "TLS is disabled", NULL);
    }
    if (h->web != NULL && h->web->nusers > 0) {
        char n[24];
        snprintf(n, sizeof(n), "%zu", h->web->nusers);
        h->auth = pp_auth_new(loop, h->web->users, h->web->nusers);
        pp_log_write(log, PP_LOG_INFO, "basic authentication is required", "users", n, NULL);
    }

    h->listeners =
        pp_calloc(opt->naddresses + opt->ndashboard_addresses + 64 + 1, sizeof(listener *));
    if ((opt->systemd_socket ? listen_systemd(h, err, errlen)
                             : listen_all(h, opt->addresses, opt->naddresses, &h->accept,
                                          "web.listen-address", err, errlen)) != 0 ||
        listen_all(h, opt->dashboard_addresses, opt->ndashboard_addresses, &h->dash_accept,
                   "web.dashboard-address", err, errlen) != 0)
        goto fail;
    h->opt.addresses = NULL; /* borrowed for the call only */
    h->opt.dashboard_addresses = NULL;
    *out = h;
    return 0;

fail:
    /* the caller runs the loop until our handles are closed and we are freed */
    pp_http_stop(h, 0, NULL, NULL);
    *out = NULL;
    return -1;
}

void pp_http_stop(pp_http *h, double drain, void (*on_closed)(void *data), void *data)
{
    if (h == NULL || h->stopping)
        return;
    h->stopping = true;
    h->on_closed = on_closed;
    h->closed_data = data;
    for (size_t i = 0; i < h->nlisteners; i++)
        uv_close((uv_handle_t *)&h->listeners[i]->tcp, on_listener_closed);
    h->nlisteners = 0;
    /* checks not yet on a thread are answered now; running ones finish */
    if (h->auth != NULL)
        pp_auth_cancel_waiting(h->auth);
    /* answer held scrapes with the page as it is */
    while (h->parked != NULL)
        unpark(h, h->parked);
    close_timer(&h->park);
    close_timer(&h->sweep);
    /* idle connections read EOF now; busy ones after their response;
     * ones stuck closing are closed */
    for (client *c = h->clients, *next; c != NULL; c = next) {
        next = c->next;
        if (stuck_closing(h, c))
            reap_stuck(c);
        else
            shut(c, SHUT_RD);
    }
    if (h->clients != NULL) {
        uv_timer_start(&h->drain, on_drain_deadline, (uint64_t)(drain * 1000), 0);
    } else {
        close_timer(&h->drain);
    }
    maybe_finish(h);
}
