/*
 * http: h2o setup, listeners and handlers (see http.h).
 *
 * Shutdown follows the only sequence that is clean with h2o 2.2.5: close
 * the listeners, wait until the count of client connections (kept through
 * the close callback given to h2o_uv_socket_create) drops to zero, then
 * dispose the context inside the loop. Disposing with a connection open,
 * or after h2o_context_request_shutdown, aborts inside h2o.
 */
#include "http.h"

#include <h2o.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct listener {
    uv_tcp_t tcp;
    pp_http *http;
} listener;

/* A client connection; h2o takes over tcp.data, so the owner is kept
 * beside the handle and found with the handle's address. */
typedef struct client {
    uv_tcp_t tcp; /* first */
    pp_http *http;
} client;

typedef struct handler {
    h2o_handler_t super; /* first: h2o hands us this pointer */
    pp_http *http;
} handler;

struct pp_http {
    uv_loop_t *loop;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept;
    bool ctx_ready;
    listener **listeners;
    size_t nlisteners;
    size_t open_listeners;
    size_t connections;
    const char *telemetry_path;
    pp_snapshot *snapshot;
    const pp_log *log;
    char *landing;
    size_t landing_len;
    bool stopping;
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
        while (a < end && (v.base[a] == ' ' || v.base[a] == '\t'))
            a++;
        size_t b = a;
        while (b < end && v.base[b] != ';' && v.base[b] != ' ' && v.base[b] != '\t')
            b++;
        bool match = (b - a == 4 && strncasecmp(v.base + a, "gzip", 4) == 0) ||
                     (b - a == 1 && v.base[a] == '*');
        if (match) {
            bool zero = false;
            const char *q = memchr(v.base + b, '=', end - b);
            if (q != NULL && q > v.base + b && (q[-1] == 'q' || q[-1] == 'Q')) {
                double qv = strtod(q + 1, NULL);
                zero = qv <= 0.0;
            }
            if (!zero)
                return true;
        }
        pos = end + 1;
    }
    return false;
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

static void serve_metrics(pp_http *h, h2o_req_t *req)
{
    pp_page *page = pp_snapshot_current(h->snapshot);
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
    send_body(req, CONTENT_TYPE, page->plain, page->plain_len);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    pp_http *h = ((handler *)self)->http;
    bool get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"));
    bool head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    h2o_iovec_t path = req->path_normalized;
    bool is_metrics = h2o_memis(path.base, path.len, h->telemetry_path, strlen(h->telemetry_path));
    bool is_root = h2o_memis(path.base, path.len, H2O_STRLIT("/"));
    if (!is_metrics && !is_root) {
        h2o_send_error_404(req, "Not Found", "not found\n", 0);
        return 0;
    }
    if (!get && !head) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                       H2O_STRLIT("GET, HEAD"));
        h2o_send_error_405(req, "Method Not Allowed", "method not allowed\n",
                           H2O_SEND_ERROR_KEEP_HEADERS);
        return 0;
    }
    if (is_metrics) {
        serve_metrics(h, req);
        return 0;
    }
    req->res.status = 200;
    req->res.reason = "OK";
    send_body(req, "text/html; charset=utf-8", h->landing, h->landing_len);
    return 0;
}

static void maybe_finish(pp_http *h)
{
    if (!h->stopping || h->connections > 0 || h->open_listeners > 0 || !h->ctx_ready)
        return;
    h->ctx_ready = false;
    h2o_context_dispose(&h->ctx);
    h2o_config_dispose(&h->config);
    void (*cb)(void *) = h->on_closed;
    void *data = h->closed_data;
    free(h->listeners);
    free(h->landing);
    free(h);
    if (cb != NULL)
        cb(data);
}

static void on_conn_closed(uv_handle_t *handle)
{
    client *c = (client *)handle;
    pp_http *h = c->http;
    free(c);
    h->connections--;
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
    if (uv_accept(server, (uv_stream_t *)conn) != 0) {
        h->connections++;
        uv_close((uv_handle_t *)conn, on_conn_closed);
        return;
    }
    uv_tcp_nodelay(conn, 1);
    h->connections++;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, on_conn_closed);
    h2o_accept(&h->accept, sock);
}

static void on_listener_closed(uv_handle_t *handle)
{
    listener *l = (listener *)handle;
    pp_http *h = l->http;
    free(l);
    h->open_listeners--;
    maybe_finish(h);
}

static void build_landing(pp_http *h)
{
    pp_buf b = PP_BUF_INIT;
    pp_buf_puts(&b, "<html>\n<head><title>pgpulse</title></head>\n<body>\n"
                    "<h1>pgpulse: PostgreSQL exporter</h1>\n<p><a href=\"");
    pp_buf_puts(&b, h->telemetry_path); /* validated at start-up: a plain path */
    pp_buf_puts(&b, "\">Metrics</a></p>\n<p>version " PGPULSE_VERSION "</p>\n</body>\n</html>\n");
    h->landing = pp_buf_steal(&b, &h->landing_len);
}

int pp_http_start(pp_http **out, uv_loop_t *loop, const char *const *addresses, size_t n,
                  const char *telemetry_path, pp_snapshot *snapshot, const pp_log *log, char *err,
                  size_t errlen)
{
    pp_http *h = pp_calloc(1, sizeof(*h));
    h->loop = loop;
    h->telemetry_path = telemetry_path;
    h->snapshot = snapshot;
    h->log = log;
    build_landing(h);

    h2o_config_init(&h->config);
    h->config.server_name = h2o_iovec_init(H2O_STRLIT("pgpulse"));
    h->config.max_request_entity_size = 4096;
    h->config.http1.req_timeout = 5000;
    h->config.http1.upgrade_to_http2 = 0;
    h2o_hostconf_t *host =
        h2o_config_register_host(&h->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    handler *hd = (handler *)h2o_create_handler(path, sizeof(handler));
    hd->super.on_req = on_req;
    hd->http = h;
    h2o_context_init(&h->ctx, loop, &h->config);
    h->ctx_ready = true;
    h->accept.ctx = &h->ctx;
    h->accept.hosts = h->config.hosts;

    h->listeners = pp_calloc(n ? n : 1, sizeof(listener *));
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_storage sa;
        if (pp_http_parse_address(addresses[i], &sa, err, errlen) != 0)
            goto fail;
        listener *l = pp_calloc(1, sizeof(*l));
        l->http = h;
        uv_tcp_init(loop, &l->tcp);
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
            snprintf(err, errlen, "cannot listen on \"%s\" (--web.listen-address): %s",
                     addresses[i], uv_strerror(rc));
            goto fail;
        }
        pp_log_write(log, PP_LOG_INFO, "listening", "address", addresses[i], NULL);
    }
    *out = h;
    return 0;

fail:
    /* the caller runs the loop until our handles are closed and we are freed */
    pp_http_stop(h, NULL, NULL);
    *out = NULL;
    return -1;
}

void pp_http_stop(pp_http *h, void (*on_closed)(void *data), void *data)
{
    if (h == NULL || h->stopping)
        return;
    h->stopping = true;
    h->on_closed = on_closed;
    h->closed_data = data;
    for (size_t i = 0; i < h->nlisteners; i++)
        uv_close((uv_handle_t *)&h->listeners[i]->tcp, on_listener_closed);
    h->nlisteners = 0;
    maybe_finish(h);
}

size_t pp_http_connections(const pp_http *h)
{
    return h->connections;
}
