/*
 * conn: one asynchronous libpq connection on the libuv loop (see conn.h).
 *
 * Handles. The poll handle is heap-allocated and replaced whenever libpq
 * changes its socket (the fd number may even stay the same), so a handle is
 * never left on a closed descriptor. Every handle this file closes
 * decrements c->handles in its close callback; the conn is freed only when
 * it is CLOSED and the count is zero. A uv_getaddrinfo request cannot be
 * cancelled once running, so it carries a back pointer that is cleared when
 * the conn gives up on it; the callback then just frees it.
 *
 * Invariant: pg != NULL exactly in CONNECTING, IDLE and BUSY.
 */
#include "conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "buf.h"
#include "turn.h"

#define MAX_ADDRS 8 /* addresses tried per host name */

typedef struct poll_handle {
    uv_poll_t h;
    pp_conn *conn;
} poll_handle;

typedef struct resolve_req {
    uv_getaddrinfo_t req;
    pp_conn *conn; /* NULL once abandoned */
} resolve_req;

/* How a statement of a batch goes out. Each runs many times on one
 * connection (every interval, for days), so it is prepared once, named
 * after its text, and executed by name after that: the server then plans
 * it once, not on every run. With pg_stat_statements at 100 targets,
 * planning was 42 % of the catalog's time on the server. */
enum { SEND_UNNAMED, SEND_EXECUTE, SEND_PREPARE };
/* Results of a prepared-and-executed statement: the Parse's first. */
enum { STEP_RESULTS, STEP_PARSE, STEP_PARSED };

typedef struct stmt_plan {
    uint64_t key; /* of the text */
    int how;      /* SEND_* */
} stmt_plan;

struct pp_conn {
    uv_loop_t *loop;
    const pp_dsn *dsn;
    pp_conn_callbacks cb;
    void *data;
    const pp_log *log;
    pp_conn_state state;
    PGconn *pg;
    poll_handle *poll;
    int poll_fd;
    int poll_events;
    uv_timer_t timer; /* connect timeout or statement deadline */
    int handles;      /* handles not yet through their close callback */

    /* connect parameters, built per attempt */
    char **kw;
    char **val;
    size_t nparams;
    char **hosts; /* the DSN's host list, split */
    size_t nhosts;
    char **ports; /* the DSN's port list, split, when it has several */
    size_t nports;
    size_t resolving; /* index of the host being resolved */
    /* what libpq is given: one entry per address to try, in order */
    pp_buf hostaddr;
    pp_buf hostexp;
    pp_buf portexp;
    size_t naddrs;
    resolve_req *resolve;

    /* the batch in flight */
    pp_conn_stmt *stmts;
    stmt_plan *plans; /* per statement: how it was sent */
    size_t nstmts;
    size_t cur;      /* statement whose results are awaited */
    bool cur_result; /* on_result already called for cur */
    int cur_step;    /* STEP_*: where cur's results are */
    /* statements this session: prepared (named by key) or, after an
     * error about the name or the plan, sent unnamed from then on */
    uint64_t *prepared;
    size_t nprepared;
    uint64_t *shunned;
    size_t nshunned;
    size_t result_peak;
    char version[32];
};

static void set_state(pp_conn *c, pp_conn_state next)
{
    /* the legal predecessors of each state */
    switch (next) {
    case PP_CONN_DOWN:
        break; /* from anywhere but CLOSED */
    case PP_CONN_RESOLVING:
        assert(c->state == PP_CONN_DOWN);
        break;
    case PP_CONN_CONNECTING:
        assert(c->state == PP_CONN_DOWN || c->state == PP_CONN_RESOLVING);
        break;
    case PP_CONN_IDLE:
        assert(c->state == PP_CONN_CONNECTING || c->state == PP_CONN_BUSY);
        break;
    case PP_CONN_BUSY:
        assert(c->state == PP_CONN_IDLE);
        break;
    case PP_CONN_CLOSED:
        break;
    }
    assert(c->state != PP_CONN_CLOSED);
    c->state = next;
}

static void maybe_free(pp_conn *c)
{
    if (c->state != PP_CONN_CLOSED || c->handles > 0)
        return;
    free(c->stmts);
    free(c->plans);
    free(c->prepared);
    free(c->shunned);
    pp_buf_deinit(&c->hostaddr);
    pp_buf_deinit(&c->hostexp);
    pp_buf_deinit(&c->portexp);
    free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    pp_conn *c = h->data;
    c->handles--;
    maybe_free(c);
}

static void on_poll_closed(uv_handle_t *h)
{
    poll_handle *p = (poll_handle *)h;
    pp_conn *c = p->conn;
    free(p);
    c->handles--;
    maybe_free(c);
}

static void stop_poll(pp_conn *c)
{
    if (c->poll == NULL)
        return;
    uv_poll_stop(&c->poll->h);
    uv_close((uv_handle_t *)&c->poll->h, on_poll_closed);
    c->poll = NULL;
    c->poll_fd = -1;
}

static void on_poll(uv_poll_t *h, int status, int events);

/* Watches libpq's current socket for events, replacing the handle so a
 * socket libpq re-created under the same number is watched afresh. */
static int watch(pp_conn *c, int events, bool renew)
{
    int fd = PQsocket(c->pg);
    if (fd < 0)
        return -1;
    if (c->poll != NULL && (renew || fd != c->poll_fd))
        stop_poll(c);
    if (c->poll == NULL) {
        poll_handle *p = pp_calloc(1, sizeof(*p));
        p->conn = c;
        if (uv_poll_init(c->loop, &p->h, fd) != 0) {
            free(p);
            return -1;
        }
        c->handles++;
        c->poll = p;
        c->poll_fd = fd;
        c->poll_events = 0;
    }
    if (events != c->poll_events || renew) {
        if (uv_poll_start(&c->poll->h, events, on_poll) != 0)
            return -1;
        c->poll_events = events;
    }
    return 0;
}

static void free_params(pp_conn *c)
{
    for (size_t i = 0; i < c->nparams; i++) {
        free(c->kw[i]);
        free(c->val[i]);
    }
    free(c->kw);
    free(c->val);
    c->kw = c->val = NULL;
    c->nparams = 0;
    for (size_t i = 0; i < c->nhosts; i++)
        free(c->hosts[i]);
    free(c->hosts);
    c->hosts = NULL;
    c->nhosts = 0;
    for (size_t i = 0; i < c->nports; i++)
        free(c->ports[i]);
    free(c->ports);
    c->ports = NULL;
    c->nports = 0;
    pp_buf_reset(&c->hostaddr);
    pp_buf_reset(&c->hostexp);
    pp_buf_reset(&c->portexp);
    c->naddrs = 0;
}

/* Tears the libpq side down; the conn is DOWN afterwards. */
static void teardown(pp_conn *c)
{
    uv_timer_stop(&c->timer);
    stop_poll(c); /* before PQfinish: the fd must not be watched once closed */
    if (c->pg != NULL) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    if (c->resolve != NULL) {
        c->resolve->conn = NULL;
        c->resolve = NULL;
    }
    free_params(c);
    c->nstmts = 0;
    c->nprepared = c->nshunned = 0; /* a new session knows none */
    c->version[0] = '\0';
}

/* The connection failed or was lost: tell the owner. */
static void fail(pp_conn *c, const char *reason)
{
    char msg[512];
    /* libpq messages end with a newline and may hold several lines */
    const char *r = reason && *reason ? reason : "unknown error";
    size_t n = 0;
    for (; *r != '\0' && n + 1 < sizeof(msg); r++) {
        bool space = *r == '\n' || *r == '\r' || *r == '\t' || *r == ' ';
        if (space && (n == 0 || msg[n - 1] == ' '))
            continue; /* one line: collapse libpq's line breaks and indents */
        msg[n++] = space ? ' ' : *r;
    }
    while (n > 0 && msg[n - 1] == ' ')
        n--;
    msg[n] = '\0';
    teardown(c);
    set_state(c, PP_CONN_DOWN);
    if (c->cb.on_down != NULL)
        c->cb.on_down(c, c->data, msg);
}

static void fail_pg(pp_conn *c, const char *what)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "%s: %s", what, c->pg ? PQerrorMessage(c->pg) : "");
    fail(c, msg);
}

/* Server notices and libpq's own warnings go through our logger (libpq's
 * default processor writes them raw to stderr, between log lines):
 * warnings and worse at warn, the rest at debug. */
static void notice_processor(void *arg, const char *message)
{
    pp_conn *c = arg;
    char line[512];
    snprintf(line, sizeof(line), "%s", message);
    line[strcspn(line, "\n")] = '\0';
    bool serious = strncmp(line, "WARNING:", 8) == 0 || strncmp(line, "ERROR:", 6) == 0 ||
                   strncmp(line, "FATAL:", 6) == 0 || strncmp(line, "PANIC:", 6) == 0;
    pp_log_write(c->log, serious ? PP_LOG_WARN : PP_LOG_DEBUG, "server notice", "target",
                 c->dsn->label, "notice", line, NULL);
}

static void connected(pp_conn *c)
{
    uv_timer_stop(&c->timer);
    if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1) {
        fail_pg(c, "cannot enter pipeline mode");
        return;
    }
    const char *v = PQparameterStatus(c->pg, "server_version");
    snprintf(c->version, sizeof(c->version), "%s", v ? v : "");
    set_state(c, PP_CONN_IDLE);
    if (watch(c, UV_READABLE, false) != 0) {
        fail(c, "cannot watch the connection's socket");
        return;
    }
    if (c->cb.on_up != NULL)
        c->cb.on_up(c, c->data);
}

static void continue_connect(pp_conn *c)
{
    PostgresPollingStatusType r = PQconnectPoll(c->pg);
    switch (r) {
    case PGRES_POLLING_OK:
        connected(c);
        return;
    case PGRES_POLLING_READING:
        if (watch(c, UV_READABLE, true) != 0)
            fail_pg(c, "connection failed");
        return;
    case PGRES_POLLING_WRITING:
        if (watch(c, UV_WRITABLE, true) != 0)
            fail_pg(c, "connection failed");
        return;
    default:
        fail_pg(c, "connection failed");
        return;
    }
}

static void add_param(pp_conn *c, const char *k, const char *v);

static void start_libpq(pp_conn *c)
{
    if (c->naddrs > 0) {
        /* one host, hostaddr (and port) entry per address, in order */
        add_param(c, "host", c->hostexp.data);
        if (c->hostaddr.len > 0)
            add_param(c, "hostaddr", c->hostaddr.data);
        if (c->nports > 1)
            add_param(c, "port", c->portexp.data);
    }
    c->pg = PQconnectStartParams((const char *const *)c->kw, (const char *const *)c->val, 0);
    if (c->pg == NULL) {
        fail(c, "out of memory");
        return;
    }
    /* before anything can arrive: notices during start-up too */
    PQsetNoticeProcessor(c->pg, notice_processor, c);
    if (c->state == PP_CONN_DOWN || c->state == PP_CONN_RESOLVING)
        set_state(c, PP_CONN_CONNECTING);
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        fail_pg(c, "connection failed");
        return;
    }
    /* libpq starts as if the last poll said WRITING */
    if (watch(c, UV_WRITABLE, true) != 0)
        fail_pg(c, "connection failed");
}

static bool is_ip_literal(const char *h)
{
    unsigned char tmp[16];
    return inet_pton(AF_INET, h, tmp) == 1 || inet_pton(AF_INET6, h, tmp) == 1;
}

static void resolve_next(pp_conn *c);

/* Appends one address to try: host name (or socket directory), its
 * address ("" for a socket) and the port of host c->resolving. */
static void add_address(pp_conn *c, const char *host, const char *addr)
{
    if (c->naddrs > 0) {
        pp_buf_putc(&c->hostexp, ',');
        pp_buf_putc(&c->hostaddr, ',');
        pp_buf_putc(&c->portexp, ',');
    }
    pp_buf_puts(&c->hostexp, host);
    pp_buf_puts(&c->hostaddr, addr);
    if (c->nports > 1)
        pp_buf_puts(&c->portexp, c->ports[c->resolving < c->nports ? c->resolving : 0]);
    c->naddrs++;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    resolve_req *r = (resolve_req *)req;
    pp_conn *c = r->conn;
    if (c == NULL) { /* abandoned: the conn gave up or is gone */
        uv_freeaddrinfo(res);
        free(r);
        return;
    }
    c->resolve = NULL;
    free(r);
    if (status != 0 || res == NULL) {
        char msg[512];
        snprintf(msg, sizeof(msg), "cannot resolve host \"%s\": %s", c->hosts[c->resolving],
                 uv_strerror(status));
        uv_freeaddrinfo(res);
        fail(c, msg);
        return;
    }
    /* every address, in the resolver's order (IPv6 first where the
     * system prefers it), as libpq itself would try them */
    char seen[MAX_ADDRS][INET6_ADDRSTRLEN];
    size_t n = 0;
    for (struct addrinfo *a = res; a != NULL && n < MAX_ADDRS; a = a->ai_next) {
        char ip[INET6_ADDRSTRLEN] = "";
        if (a->ai_family == AF_INET)
            uv_ip4_name((struct sockaddr_in *)a->ai_addr, ip, sizeof(ip));
        else if (a->ai_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)a->ai_addr, ip, sizeof(ip));
        else
            continue;
        bool dup = false;
        for (size_t k = 0; k < n && !dup; k++)
            dup = strcmp(seen[k], ip) == 0;
        if (dup)
            continue;
        snprintf(seen[n++], sizeof(seen[0]), "%s", ip);
        add_address(c, c->hosts[c->resolving], ip);
    }
    uv_freeaddrinfo(res);
    c->resolving++;
    resolve_next(c);
}

/* Resolves host names one after another; IP literals and socket
 * directories need no lookup (an empty hostaddr entry means "use host"). */
static void resolve_next(pp_conn *c)
{
    while (c->resolving < c->nhosts) {
        const char *h = c->hosts[c->resolving];
        if (h[0] == '/' || h[0] == '@' || h[0] == '\0' || is_ip_literal(h)) {
            add_address(c, h, h[0] == '/' || h[0] == '@' ? "" : h);
            c->resolving++;
            continue;
        }
        resolve_req *r = pp_calloc(1, sizeof(*r));
        r->conn = c;
        struct addrinfo hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        int rc = uv_getaddrinfo(c->loop, &r->req, on_resolved, h, NULL, &hints);
        if (rc != 0) {
            free(r);
            char msg[512];
            snprintf(msg, sizeof(msg), "cannot resolve host \"%s\": %s", h, uv_strerror(rc));
            fail(c, msg);
            return;
        }
        c->resolve = r;
        return;
    }
    /* a list made only of socket directories needs no hostaddr at all */
    bool any = false;
    for (size_t i = 0; i < c->nhosts; i++)
        if (c->hosts[i][0] != '/' && c->hosts[i][0] != '@')
            any = true;
    if (!any)
        pp_buf_reset(&c->hostaddr);
    if (c->nports > 1 && c->nports != c->nhosts) {
        fail(c, "the DSN's port list must have one port, or one per host");
        return;
    }
    start_libpq(c);
}

static void on_timer(uv_timer_t *t)
{
    pp_conn *c = t->data;
    switch (c->state) {
    case PP_CONN_RESOLVING:
    case PP_CONN_CONNECTING:
        fail(c, "timeout expired while connecting");
        break;
    case PP_CONN_BUSY:
        fail(c, "server did not answer before the deadline");
        break;
    default:
        break;
    }
}

static void arm_deadline(pp_conn *c)
{
    double t = c->stmts[c->cur].timeout;
    uint64_t ms = (uint64_t)(t * 1000.0);
    uv_timer_start(&c->timer, on_timer, ms ? ms : 1, 0);
}

static void add_param(pp_conn *c, const char *k, const char *v)
{
    for (size_t i = 0; i < c->nparams; i++) {
        if (strcmp(c->kw[i], k) == 0) {
            free(c->val[i]);
            c->val[i] = pp_strdup(v);
            return;
        }
    }
    c->kw = pp_realloc(c->kw, (c->nparams + 2) * sizeof(char *));
    c->val = pp_realloc(c->val, (c->nparams + 2) * sizeof(char *));
    c->kw[c->nparams] = pp_strdup(k);
    c->val[c->nparams] = pp_strdup(v);
    c->nparams++;
    c->kw[c->nparams] = c->val[c->nparams] = NULL;
}

static void split_list(char ***out, size_t *n, const char *list)
{
    const char *p = list;
    for (;;) {
        size_t len = strcspn(p, ",");
        *out = pp_realloc(*out, (*n + 1) * sizeof(char *));
        char *h = pp_malloc(len + 1);
        memcpy(h, p, len);
        h[len] = '\0';
        (*out)[(*n)++] = h;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
}

pp_conn *pp_conn_new(uv_loop_t *loop, const pp_dsn *dsn, const pp_conn_callbacks *cb, void *data,
                     const pp_log *log)
{
    pp_conn *c = pp_calloc(1, sizeof(*c));
    c->loop = loop;
    c->dsn = dsn;
    c->cb = *cb;
    c->data = data;
    c->log = log;
    c->state = PP_CONN_DOWN;
    c->poll_fd = -1;
    pp_buf_init(&c->hostaddr);
    pp_buf_init(&c->hostexp);
    pp_buf_init(&c->portexp);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->handles = 1;
    return c;
}

int pp_conn_connect(pp_conn *c, double timeout, const char *const *extra_keywords,
                    const char *const *extra_values)
{
    if (c->state != PP_CONN_DOWN)
        return -1;
    free_params(c);
    for (size_t i = 0; i < c->dsn->n; i++)
        add_param(c, c->dsn->keywords[i], c->dsn->values[i]);
    for (size_t i = 0; extra_keywords != NULL && extra_keywords[i] != NULL; i++)
        add_param(c, extra_keywords[i], extra_values[i]);
    uint64_t ms = (uint64_t)(timeout * 1000.0);
    uv_timer_start(&c->timer, on_timer, ms ? ms : 1, 0);

    const char *hostaddr = pp_dsn_get(c->dsn, "hostaddr");
    if (hostaddr == NULL || *hostaddr == '\0')
        hostaddr = getenv("PGHOSTADDR");
    /* no host in the DSN: libpq's default, PGHOST or its socket directory;
     * a host name in PGHOST is resolved here too, as libpq's own lookup
     * would block the loop */
    const char *host = c->dsn->host != NULL ? c->dsn->host : getenv("PGHOST");
    if ((hostaddr != NULL && *hostaddr != '\0') || host == NULL || *host == '\0') {
        start_libpq(c);
        return 0;
    }
    split_list(&c->hosts, &c->nhosts, host);
    const char *port = pp_dsn_get(c->dsn, "port");
    if (port == NULL)
        port = getenv("PGPORT");
    if (port != NULL && strchr(port, ',') != NULL)
        split_list(&c->ports, &c->nports, port);
    c->resolving = 0;
    set_state(c, PP_CONN_RESOLVING);
    resolve_next(c);
    return 0;
}

/* FNV-1a of the text and its length: names a prepared statement. */
static uint64_t text_key(const char *sql)
{
    uint64_t h = UINT64_C(14695981039346656037);
    size_t n = 0;
    for (; sql[n] != '\0'; n++) {
        h ^= (unsigned char)sql[n];
        h *= UINT64_C(1099511628211);
    }
    return h ^ ((uint64_t)n << 48);
}

static bool has_key(const uint64_t *keys, size_t n, uint64_t k)
{
    for (size_t i = 0; i < n; i++)
        if (keys[i] == k)
            return true;
    return false;
}

static void add_key(uint64_t **keys, size_t *n, uint64_t k)
{
    if (has_key(*keys, *n, k))
        return;
    *keys = pp_realloc(*keys, (*n + 1) * sizeof(uint64_t));
    (*keys)[(*n)++] = k;
}

static void statement_name(char *out, size_t len, uint64_t key)
{
    snprintf(out, len, "pgpulse_%016llx", (unsigned long long)key);
}

/* Statement i failed. An error about its name or its plan (the plan
 * refused because what it reads changed shape, 0A000; a pooler that lost
 * the statement, 26000, or has one of that name, 42P05; no code at all)
 * means the name cannot be trusted: the statement goes out unnamed from
 * then on, as before, so the error does not stick. Any other error (a
 * statement_timeout, a missing table) leaves the name in use, and a Parse
 * that failed is simply tried again next time. */
static void failed(pp_conn *c, size_t i, const PGresult *res, bool at_parse)
{
    if (c->plans[i].how == SEND_UNNAMED)
        return;
    const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    bool untrusted = code == NULL || strcmp(code, "0A000") == 0 || strcmp(code, "26000") == 0 ||
                     strcmp(code, "42P05") == 0;
    if (!untrusted && !at_parse)
        return;
    uint64_t k = c->plans[i].key;
    for (size_t j = 0; j < c->nprepared; j++)
        if (c->prepared[j] == k) {
            c->prepared[j] = c->prepared[--c->nprepared];
            break;
        }
    if (untrusted)
        add_key(&c->shunned, &c->nshunned, k);
}

/* cur's own results come next (its Parse, if any, is done). */
static void results_next(pp_conn *c)
{
    c->cur_step = STEP_RESULTS;
    /* single-row mode can be asked for only while the statement itself is
     * current and none of its rows parsed: not during its Parse */
    if (c->stmts[c->cur].single_row)
        (void)PQsetSingleRowMode(c->pg);
}

/* cur is the statement now current: its Parse's result or its own come
 * next. */
static void begin_statement(pp_conn *c)
{
    if (c->cur >= c->nstmts)
        return;
    if (c->plans[c->cur].how == SEND_PREPARE)
        c->cur_step = STEP_PARSE;
    else
        results_next(c);
}

static void process_results(pp_conn *c)
{
    while (c->state == PP_CONN_BUSY && !PQisBusy(c->pg)) {
        PGresult *res = PQgetResult(c->pg);
        if (res == NULL) {
            /* end of one command's results: the Parse's (the execute is
             * current now) or the statement's (its sync follows) */
            if (PQstatus(c->pg) == CONNECTION_BAD) {
                fail_pg(c, "connection lost");
                return;
            }
            if (c->cur_step == STEP_PARSED && c->cur < c->nstmts)
                results_next(c);
            continue;
        }
        ExecStatusType st = PQresultStatus(res);
        bool at_parse = c->cur_step == STEP_PARSE && st != PGRES_PIPELINE_SYNC;
        if (at_parse) {
            if (st == PGRES_COMMAND_OK) {
                PQclear(res); /* prepared: the execute's results follow */
                c->cur_step = STEP_PARSED;
                continue;
            }
            c->cur_step = STEP_RESULTS; /* the error stands for the statement */
        }
        if ((st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR) && c->cur < c->nstmts)
            failed(c, c->cur, res, at_parse);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            if (!c->cur_result && c->cb.on_result != NULL) {
                /* a statement that produced nothing at all (empty query) */
                c->cb.on_result(c, c->data, c->cur, NULL);
                if (c->state != PP_CONN_BUSY)
                    return;
            }
            c->cur++;
            c->cur_result = false;
            /* the next statement is current now and none of its rows are
             * parsed yet: the only moment single-row mode can be asked for */
            begin_statement(c);
            if (c->cur == c->nstmts) {
                uv_timer_stop(&c->timer);
                free(c->stmts); /* idle for most of an interval */
                c->stmts = NULL;
                free(c->plans);
                c->plans = NULL;
                c->nstmts = 0;
                set_state(c, PP_CONN_IDLE);
                if (watch(c, UV_READABLE, false) != 0) {
                    fail(c, "cannot watch the connection's socket");
                    return;
                }
                if (c->cb.on_batch_done != NULL)
                    c->cb.on_batch_done(c, c->data);
                return;
            }
            arm_deadline(c);
            continue;
        }
        size_t size = PQresultMemorySize(res);
        if (size > c->result_peak)
            c->result_peak = size;
        if (c->cur < c->nstmts) {
            c->cur_result = true;
            if (c->cb.on_result != NULL)
                c->cb.on_result(c, c->data, c->cur, res);
        }
        PQclear(res);
        if (c->state != PP_CONN_BUSY)
            return; /* the callback reset or closed us */
    }
    if (c->state == PP_CONN_BUSY && PQstatus(c->pg) == CONNECTION_BAD)
        fail_pg(c, "connection lost");
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    poll_handle *p = (poll_handle *)h;
    pp_conn *c = p->conn;
    (void)status; /* on errors libpq tells us more than libuv can */
    switch (c->state) {
    case PP_CONN_CONNECTING:
        continue_connect(c);
        return;
    case PP_CONN_IDLE:
        if (PQconsumeInput(c->pg) == 0 || PQstatus(c->pg) == CONNECTION_BAD) {
            fail_pg(c, "connection lost");
            return;
        }
        /* nothing is expected while idle; drop anything the server sent */
        while (!PQisBusy(c->pg)) {
            PGresult *r = PQgetResult(c->pg);
            if (r == NULL)
                break;
            PQclear(r);
        }
        if (status < 0) {
            fail_pg(c, "connection lost");
        }
        return;
    case PP_CONN_BUSY: {
        if (pp_turn_spent(c->loop))
            return; /* unread, the socket is reported again next turn */
        if (events & UV_READABLE || status < 0) {
            if (PQconsumeInput(c->pg) == 0) {
                fail_pg(c, "connection lost");
                return;
            }
        }
        int f = PQflush(c->pg);
        if (f < 0) {
            fail_pg(c, "connection lost");
            return;
        }
        if (watch(c, f == 1 ? (UV_READABLE | UV_WRITABLE) : UV_READABLE, false) != 0) {
            fail(c, "cannot watch the connection's socket");
            return;
        }
        process_results(c);
        return;
    }
    default:
        return;
    }
}

/* libpq 15 flushes the socket at every statement's sync, so a batch left
 * alone goes out as a segment per statement, each one's loopback delivery
 * and the server's wake-up paid for in our send(): a fifth of our CPU at
 * 1,000 targets. Corked, the batch leaves as one segment when uncorked.
 * On a Unix socket the option fails, harmlessly. */
static void cork(pp_conn *c, int on)
{
    (void)setsockopt(PQsocket(c->pg), IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

int pp_conn_send(pp_conn *c, const pp_conn_stmt *stmts, size_t n)
{
    if (c->state != PP_CONN_IDLE || n == 0)
        return -1;
    c->stmts = pp_realloc(c->stmts, n * sizeof(*stmts));
    memcpy(c->stmts, stmts, n * sizeof(*stmts));
    c->plans = pp_realloc(c->plans, n * sizeof(stmt_plan));
    c->nstmts = n;
    c->cur = 0;
    c->cur_result = false;
    cork(c, 1);
    for (size_t i = 0; i < n; i++) {
        stmt_plan *pl = &c->plans[i];
        pl->key = text_key(stmts[i].sql);
        pl->how = has_key(c->shunned, c->nshunned, pl->key)     ? SEND_UNNAMED
                  : has_key(c->prepared, c->nprepared, pl->key) ? SEND_EXECUTE
                                                                : SEND_PREPARE;
        char name[32];
        statement_name(name, sizeof(name), pl->key);
        int ok = 1;
        if (pl->how == SEND_PREPARE) {
            ok = PQsendPrepare(c->pg, name, stmts[i].sql, 0, NULL);
            add_key(&c->prepared, &c->nprepared, pl->key); /* forgotten if it fails */
        }
        if (ok == 1)
            ok = pl->how == SEND_UNNAMED
                     ? PQsendQueryParams(c->pg, stmts[i].sql, 0, NULL, NULL, NULL, NULL, 0)
                     : PQsendQueryPrepared(c->pg, name, 0, NULL, NULL, NULL, 0);
        if (ok != 1 || PQpipelineSync(c->pg) != 1) {
            set_state(c, PP_CONN_BUSY);
            fail_pg(c, "cannot send");
            return 0; /* reported through on_down */
        }
    }
    cork(c, 0); /* sends what the syncs left */
    set_state(c, PP_CONN_BUSY);
    begin_statement(c);
    arm_deadline(c);
    int f = PQflush(c->pg);
    if (f < 0) {
        fail_pg(c, "cannot send");
        return 0;
    }
    if (watch(c, f == 1 ? (UV_READABLE | UV_WRITABLE) : UV_READABLE, false) != 0)
        fail(c, "cannot watch the connection's socket");
    return 0;
}

void pp_conn_reset(pp_conn *c)
{
    if (c->state == PP_CONN_CLOSED)
        return;
    teardown(c);
    set_state(c, PP_CONN_DOWN);
}

void pp_conn_close(pp_conn *c)
{
    if (c == NULL)
        return;
    teardown(c);
    set_state(c, PP_CONN_CLOSED);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

pp_conn_state pp_conn_get_state(const pp_conn *c)
{
    return c->state;
}

int pp_conn_server_version(const pp_conn *c)
{
    return (c->pg != NULL && c->state >= PP_CONN_IDLE) ? PQserverVersion(c->pg) : 0;
}

const char *pp_conn_server_version_string(const pp_conn *c)
{
    return c->version;
}

size_t pp_conn_take_result_peak(pp_conn *c)
{
    size_t n = c->result_peak;
    c->result_peak = 0;
    return n;
}
