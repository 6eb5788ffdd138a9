/*
 * target: one server, its connection and its schedule (see target.h).
 *
 * A cycle has two batches: a probe (pg_is_in_recovery()) so the role is
 * current before anything is chosen, then the due queries. Statement
 * timeouts are set per query with set_config() inside the same pipeline,
 * only when the value changes, so a cheap query cannot hold the
 * connection for an expensive query's timeout. The client deadline of each
 * statement is its timeout plus a grace period: the server's
 * statement_timeout answers first when the server is alive, the deadline
 * fires when it is not.
 */
#include "target.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "conn.h"
#include "gate.h"
#include "history.h"
#include "render.h"
#include "rows.h"
#include "schedule.h"

#define GRACE 1.0            /* seconds past statement_timeout for our deadline */
#define INTERNAL_TIMEOUT 5.0 /* seconds for the probe and set_config */

typedef enum phase {
    PHASE_NONE,
    PHASE_PROBE,
    PHASE_COLLECT,
} phase;

typedef pp_role role;
#define ROLE_UNKNOWN PP_ROLE_UNKNOWN
#define ROLE_PRIMARY PP_ROLE_PRIMARY
#define ROLE_STANDBY PP_ROLE_STANDBY

/* What statement i of the batch in flight is for. */
typedef struct stmt_meta {
    long query;   /* catalog index, or -1 for set_config */
    double start; /* loop time the statement could start (previous one done) */
} stmt_meta;

struct pp_target {
    uv_loop_t *loop;
    pp_dsn dsn;
    pp_gen *gen;       /* the generation the query states belong to */
    pp_gen *batch_gen; /* the generation of the batch in flight, or NULL */
    /* shorthands into gen */
    const pp_catalog *cat;
    pp_families *families;
    const pp_target_options *opt;
    pp_target_change_cb on_change;
    void *data;
    const pp_log *log;
    pp_conn *conn;
    pp_gate *gate;         /* borrowed: bounds connection attempts, or NULL */
    pp_gate_waiter gate_w; /* this target's place in it */
    pp_gate *seats;        /* borrowed: connections to its server (non-leaders), or NULL */
    pp_gate_waiter seat_w; /* this target's seat, or its place in the queue */
    bool resting;          /* gave its seat up between cycles: its results stay */
    bool reconnect;        /* the server options changed: reconnect after this batch */
    bool spread_pending;   /* the first cycle after connecting is in progress */
    uv_timer_t timer;      /* next cycle or reconnect */
    bool closing;

    pp_query_state *q; /* one per catalog query */
    char *label;       /* server="host:port" or "" */
    char *db_label;    /* server="host:port",datname="db" or "" */
    char *srv_label;   /* server="host:port" whatever the options say, for
                          queries with server_label */
    bool leader;       /* runs the server-scope queries of its server */
    char *server_opts; /* the "options" value sent at connect */

    bool up;
    bool settled; /* the first attempt has ended */
    role role;
    bool role_changed; /* seen by the probe of the cycle in flight */
    char **discovered; /* the server's databases at the last discovery */
    size_t ndiscovered;
    uint64_t discovery_seq; /* changes whenever discovered does */
    bool discovery_changed;
    phase phase;
    int failures; /* consecutive connect failures */
    char last_error[256];
    long session_timeout_ms; /* statement_timeout of the session, -1 unknown */

    pp_conn_stmt *stmts;
    stmt_meta *meta;
    size_t nstmts, capstmts;
    char (*setcfg)[96]; /* set_config statements of this batch */

    double cycle_start;
    bool cycle_error;
    double last_cycle_duration;
    bool last_cycle_error;
    uint64_t cycles;
    double last_collect;

    pp_rows *rows;      /* the query run whose rows are arriving */
    long rows_stmt;     /* the statement of the batch results are for, -1 none */
    bool rows_begun;    /* rows holds a run of that statement */
    bool stmt_over;     /* that statement's outcome is known */
    size_t result_peak; /* largest result libpq held in the last cycle */
    uint64_t changes;   /* every notify() */
    pp_target_self self;
    pp_history *history; /* the dashboard's, made at the first sample */
};

/* Monotonic seconds; finer than uv_now's milliseconds, for durations. */
static double loop_now(const pp_target *t)
{
    (void)t;
    return (double)uv_hrtime() / 1e9;
}

static void start_timer(pp_target *t, double seconds, uv_timer_cb cb)
{
    if (seconds < 0)
        seconds = 0;
    uv_timer_start(&t->timer, cb, (uint64_t)(seconds * 1000.0 + 0.5), 0);
}

static void notify(pp_target *t, bool state)
{
    t->changes++;
    if (t->on_change != NULL)
        t->on_change(t, t->data, state);
}

/* The batch in flight is over (done or lost): drop its generation. */
/* The statement arrays go back between batches: kept, they were 4 KiB a
 * target (4 MB at 1,000) for a few milliseconds of use an interval. */
static void end_batch(pp_target *t)
{
    pp_gen_unref(t->batch_gen);
    t->batch_gen = NULL;
    free(t->stmts);
    free(t->meta);
    free(t->setcfg);
    t->stmts = NULL;
    t->meta = NULL;
    t->setcfg = NULL;
    t->nstmts = t->capstmts = 0;
}

static void invalidate(pp_query_state *s)
{
    s->valid = false;
    pp_piece_unref(s->piece);
    s->piece = NULL;
}

static double min_interval(const pp_target *t)
{
    double m = 0;
    for (size_t i = 0; i < t->cat->nqueries; i++)
        if (m == 0 || t->cat->queries[i].interval < m)
            m = t->cat->queries[i].interval;
    return m > 0 ? m : 15.0;
}

/* ---- connecting and reconnecting ---------------------------------- */

static void on_connect_timer(uv_timer_t *h);

static void on_gate_open(pp_gate_waiter *w);

static void on_seat_open(pp_gate_waiter *w);

static void connect_now(pp_target *t)
{
    /* a database of a busy server waits for a seat first (leaders keep
     * theirs: they run the server's queries and discovery) */
    if (t->seats != NULL && !t->leader && !pp_gate_enter(t->seats, &t->seat_w, on_seat_open))
        return; /* admitted later: on_seat_open */
    if (t->gate != NULL && !pp_gate_enter(t->gate, &t->gate_w, on_gate_open))
        return; /* admitted later: on_gate_open */
    const char *kw[3] = {"options", NULL, NULL};
    const char *val[3] = {t->server_opts, NULL, NULL};
    if (pp_dsn_get(&t->dsn, "application_name") == NULL) {
        kw[1] = "application_name";
        val[1] = "pgpulse";
    }
    if (pp_conn_connect(t->conn, t->opt->connect_timeout, kw, val) != 0) {
        /* only possible if the conn is not DOWN: try again shortly */
        start_timer(t, 1.0, on_connect_timer);
    }
}

static void on_connect_timer(uv_timer_t *h)
{
    connect_now(h->data);
}

static void on_gate_open(pp_gate_waiter *w)
{
    pp_target *t = (pp_target *)((char *)w - offsetof(pp_target, gate_w));
    connect_now(t);
}

static void on_seat_open(pp_gate_waiter *w)
{
    pp_target *t = (pp_target *)((char *)w - offsetof(pp_target, seat_w));
    connect_now(t);
}

static double backoff(pp_target *t)
{
    return pp_schedule_backoff(t->failures, min_interval(t), (double)rand() / (double)RAND_MAX);
}

static void on_cycle_timer(uv_timer_t *h);

static void on_up(pp_conn *c, void *data)
{
    pp_target *t = data;
    (void)c;
    /* the gate is kept until the first collection is in (first_done) */
    t->up = true;
    t->failures = 0;
    t->last_error[0] = '\0';
    t->role = ROLE_UNKNOWN;
    t->session_timeout_ms = -1;
    if (t->resting) {
        /* back for its turn: what is due runs, the rest keeps its time */
        t->resting = false;
    } else {
        double now = loop_now(t);
        for (size_t i = 0; i < t->cat->nqueries; i++)
            t->q[i].next_due = now;
        t->spread_pending = true;
        pp_log_write(t->log, PP_LOG_INFO, "connected", "target", t->dsn.label, "server_version",
                     pp_conn_server_version_string(t->conn), NULL);
    }
    notify(t, true);
    start_timer(t, 0, on_cycle_timer);
}

static void on_down(pp_conn *c, void *data, const char *reason)
{
    pp_target *t = data;
    (void)c;
    pp_gate_leave(t->gate, &t->gate_w);
    pp_gate_leave(t->seats, &t->seat_w); /* others may use the server meanwhile */
    bool was_up = t->up || t->resting;
    t->resting = false;
    t->up = false;
    t->settled = true;
    t->phase = PHASE_NONE;
    t->nstmts = 0;
    end_batch(t);
    t->last_cycle_error = true;
    t->last_collect = 0;
    for (size_t i = 0; i < t->cat->nqueries; i++)
        invalidate(&t->q[i]);
    t->failures++;
    double delay = backoff(t);
    char retry[32];
    snprintf(retry, sizeof(retry), "%.1fs", delay);
    /* one line per change of state: repeated identical failures are debug */
    bool same = !was_up && strcmp(t->last_error, reason) == 0;
    pp_log_write(t->log, same ? PP_LOG_DEBUG : (was_up ? PP_LOG_WARN : PP_LOG_ERROR),
                 was_up ? "connection lost" : "cannot connect", "target", t->dsn.label, "err",
                 reason, "retry_in", retry, NULL);
    snprintf(t->last_error, sizeof(t->last_error), "%s", reason);
    notify(t, true);
    start_timer(t, delay, on_connect_timer);
}

/* ---- cycles ------------------------------------------------------------ */

static void push_stmt(pp_target *t, const char *sql, double timeout, long query, double start,
                      bool single_row)
{
    if (t->nstmts == t->capstmts) {
        t->capstmts = t->capstmts ? t->capstmts * 2 : 16;
        t->stmts = pp_realloc(t->stmts, t->capstmts * sizeof(*t->stmts));
        t->meta = pp_realloc(t->meta, t->capstmts * sizeof(*t->meta));
        t->setcfg = pp_realloc(t->setcfg, t->capstmts * sizeof(*t->setcfg));
    }
    t->stmts[t->nstmts] = (pp_conn_stmt){sql, timeout, single_row};
    t->meta[t->nstmts] = (stmt_meta){query, start};
    t->nstmts++;
}

static bool applies(const pp_target *t, const pp_catalog_query *q)
{
    if (q->scope == PP_SCOPE_SERVER && !t->leader)
        return false; /* another target of the same server runs it */
    if (q->runs_on == PP_RUNS_ON_PRIMARY && t->role != ROLE_PRIMARY)
        return false;
    if (q->runs_on == PP_RUNS_ON_STANDBY && t->role != ROLE_STANDBY)
        return false;
    return pp_catalog_pick(q, pp_conn_server_version(t->conn)) != NULL;
}

static int by_timeout(const void *a, const void *b, void *arg)
{
    const pp_catalog *cat = arg;
    double x = cat->queries[*(const size_t *)a].timeout;
    double y = cat->queries[*(const size_t *)b].timeout;
    return (x > y) - (x < y);
}

static void schedule_next(pp_target *t)
{
    double next = pp_schedule_earliest(&t->q[0].next_due, t->cat->nqueries, sizeof(pp_query_state));
    /* the role probe runs on its own between query runs: a promotion or a
     * demotion shows within role_interval, whatever the query intervals */
    double every = t->opt->role_interval;
    if (every > 0 && t->cycle_start + every < next)
        next = t->cycle_start + every;
    start_timer(t, next - loop_now(t), on_cycle_timer);
}

static void fail_batch(pp_target *t, const char *why)
{
    pp_log_write(t->log, PP_LOG_ERROR, "cannot send queries", "target", t->dsn.label, "err", why,
                 NULL);
    pp_conn_reset(t->conn);
    on_down(t->conn, t, why);
}

/* A connection's first collection is the costliest thing a target asks of
 * its server: the new backend loads the catalog entries of every view the
 * queries read (16 ms of a server's CPU, against about 5 ms for a later
 * one). So it counts against --collection.max-connecting like the
 * handshake, and a start never has a thousand new backends loading at
 * once: bench/README.md has the figures. */
static void first_done(pp_target *t)
{
    pp_gate_leave(t->gate, &t->gate_w);
}

static void send_collect(pp_target *t)
{
    double now = loop_now(t);
    size_t due[t->cat->nqueries > 0 ? t->cat->nqueries : 1];
    size_t ndue = 0;
    bool changed = false;
    for (size_t i = 0; i < t->cat->nqueries; i++) {
        const pp_catalog_query *q = &t->cat->queries[i];
        pp_query_state *s = &t->q[i];
        if (!applies(t, q)) {
            /* the role changed or the version has no variant: no stale series */
            if (s->valid) {
                invalidate(s);
                changed = true;
            }
            if (s->next_due <= now)
                s->next_due = now + q->interval;
            continue;
        }
        if (pp_schedule_is_due(s->next_due, now))
            due[ndue++] = i;
    }
    if (ndue == 0) {
        t->phase = PHASE_NONE;
        end_batch(t);
        first_done(t);
        if (changed)
            notify(t, false);
        schedule_next(t);
        return;
    }
    qsort_r(due, ndue, sizeof(size_t), by_timeout, (void *)t->cat);
    t->nstmts = 0;
    for (size_t k = 0; k < ndue; k++) {
        const pp_catalog_query *q = &t->cat->queries[due[k]];
        long ms = (long)(q->timeout * 1000.0);
        if (ms != t->session_timeout_ms) {
            push_stmt(t, NULL, INTERNAL_TIMEOUT, -1, now, false);
            snprintf(t->setcfg[t->nstmts - 1], sizeof(t->setcfg[0]),
                     "SELECT set_config('statement_timeout', '%ld', false)", ms);
            t->session_timeout_ms = ms;
        }
        const pp_catalog_variant *v = pp_catalog_pick(q, pp_conn_server_version(t->conn));
        push_stmt(t, v->sql, q->timeout + GRACE, (long)due[k], now, true);
    }
    /* the set_config texts live in t->setcfg, which push_stmt may move */
    for (size_t k = 0; k < t->nstmts; k++)
        if (t->meta[k].query < 0)
            t->stmts[k].sql = t->setcfg[k];
    t->phase = PHASE_COLLECT;
    t->rows_stmt = -1;
    if (pp_conn_send(t->conn, t->stmts, t->nstmts) != 0)
        fail_batch(t, "connection not ready");
}

static void on_cycle_timer(uv_timer_t *h)
{
    pp_target *t = h->data;
    if (pp_conn_get_state(t->conn) != PP_CONN_IDLE)
        return; /* a batch is in flight or we are reconnecting */
    t->cycle_start = loop_now(t);
    t->cycle_error = false;
    t->nstmts = 0;
    push_stmt(t, "SELECT pg_is_in_recovery()", INTERNAL_TIMEOUT, -2, t->cycle_start, false);
    if (t->opt->auto_discover && t->leader)
        push_stmt(t,
                  "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate "
                  "ORDER BY datname",
                  INTERNAL_TIMEOUT, -3, t->cycle_start, false);
    t->phase = PHASE_PROBE;
    t->rows_stmt = -1;
    t->batch_gen = pp_gen_ref(t->gen);
    if (pp_conn_send(t->conn, t->stmts, t->nstmts) != 0)
        fail_batch(t, "connection not ready");
}

static void query_failed(pp_target *t, size_t qi, const char *msg)
{
    pp_query_state *s = &t->q[qi];
    s->errors++;
    invalidate(s);
    t->cycle_error = true;
    if (!s->failing)
        pp_log_write(t->log, PP_LOG_WARN, "query failed", "target", t->dsn.label, "query",
                     t->cat->queries[qi].name, "err", msg, NULL);
    s->failing = true;
}

static void result_message(const PGresult *res, char *out, size_t n)
{
    if (res == NULL) {
        snprintf(out, n, "no result");
        return;
    }
    const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (m == NULL)
        m = PQresultErrorMessage(res);
    snprintf(out, n, "%s%s%s%s", m && *m ? m : PQresStatus(PQresultStatus(res)),
             code ? " (SQLSTATE " : "", code ? code : "", code ? ")" : "");
}

static void read_role(pp_target *t, const PGresult *res)
{
    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        role r = strcmp(PQgetvalue(res, 0, 0), "t") == 0 ? ROLE_STANDBY : ROLE_PRIMARY;
        if (t->role != ROLE_UNKNOWN && r != t->role) {
            pp_log_write(t->log, PP_LOG_INFO, "role changed", "target", t->dsn.label, "role",
                         r == ROLE_PRIMARY ? "primary" : "standby", NULL);
            t->role_changed = true;
        }
        t->role = r;
        return;
    }
    char msg[256];
    result_message(res, msg, sizeof(msg));
    pp_log_write(t->log, PP_LOG_WARN, "cannot read the server role", "target", t->dsn.label, "err",
                 msg, NULL);
    t->role = ROLE_UNKNOWN;
    t->cycle_error = true;
}

/* The databases of the server, for auto-discovery: kept when the list
 * changes (the registry compares the sequence number). */
static void read_databases(pp_target *t, const PGresult *res)
{
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        char msg[256];
        result_message(res, msg, sizeof(msg));
        pp_log_write(t->log, PP_LOG_WARN, "cannot list the server's databases", "target",
                     t->dsn.label, "err", msg, NULL);
        t->cycle_error = true;
        return;
    }
    size_t n = (size_t)PQntuples(res);
    bool same = n == t->ndiscovered;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(t->discovered[i], PQgetvalue(res, (int)i, 0)) == 0;
    if (same)
        return;
    for (size_t i = 0; i < t->ndiscovered; i++)
        free(t->discovered[i]);
    t->discovered = pp_realloc(t->discovered, (n ? n : 1) * sizeof(char *));
    for (size_t i = 0; i < n; i++)
        t->discovered[i] = pp_strdup(PQgetvalue(res, (int)i, 0));
    t->ndiscovered = n;
    t->discovery_seq++;
    t->discovery_changed = true;
}

/* The outcome of query qi's run is known: schedule its next run. */
static void query_over(pp_target *t, size_t qi, size_t index, double now)
{
    pp_query_state *s = &t->q[qi];
    const pp_catalog_query *q = &t->cat->queries[qi];
    s->duration = now - t->meta[index].start;
    /* the next run is due one interval after this one was due, or from now
     * if we are more than an interval behind */
    s->next_due = pp_schedule_after_run(s->next_due, q->interval, now);
}

static void query_succeeded(pp_target *t, size_t qi)
{
    pp_query_state *s = &t->q[qi];
    const pp_catalog_query *q = &t->cat->queries[qi];
    pp_piece *piece;
    uint64_t dropped = pp_rows_finish(t->rows, s->piece, &piece);
    pp_piece_unref(s->piece);
    s->piece = piece;
    s->valid = true;
    s->dropped += dropped;
    if (dropped > 0 && !s->capped) {
        char cap[32], n[32];
        snprintf(cap, sizeof(cap), "%zu", q->max_series ? q->max_series : t->opt->max_series);
        snprintf(n, sizeof(n), "%llu", (unsigned long long)dropped);
        pp_log_write(t->log, PP_LOG_WARN, "query hit its series cap: samples dropped", "target",
                     t->dsn.label, "query", q->name, "max_series", cap, "dropped", n, NULL);
    }
    s->capped = dropped > 0;
    s->last_success = pp_clock_wall();
    if (s->failing)
        pp_log_write(t->log, PP_LOG_INFO, "query recovered", "target", t->dsn.label, "query",
                     q->name, NULL);
    s->failing = false;
}

static void on_result(pp_conn *c, void *data, size_t index, const PGresult *res)
{
    pp_target *t = data;
    (void)c;
    if ((long)index != t->rows_stmt) {
        /* the first result of the next statement */
        t->rows_stmt = (long)index;
        t->stmt_over = false;
        t->rows_begun = false;
    }
    if (t->stmt_over)
        return; /* what libpq adds after an error */
    double now = loop_now(t);
    if (t->phase == PHASE_PROBE) {
        t->stmt_over = true;
        if (t->meta[index].query == -3)
            read_databases(t, res);
        else
            read_role(t, res);
        return;
    }
    if (t->batch_gen != t->gen) {
        t->stmt_over = true;
        return; /* a reload switched catalogs: these indexes name old queries */
    }
    ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    bool row = st == PGRES_SINGLE_TUPLE;
    bool ok = st == PGRES_TUPLES_OK;
    long qi = t->meta[index].query;
    if (!row) {
        t->stmt_over = true;
        if (index + 1 < t->nstmts)
            t->meta[index + 1].start = now;
    }
    if (qi < 0) {
        if (!row && !ok)
            t->session_timeout_ms = -1; /* unknown now: set it again next time */
        return;
    }
    char msg[256];
    if (row || ok) {
        const pp_catalog_query *q = &t->cat->queries[qi];
        if (!t->rows_begun) {
            size_t cap = q->max_series ? q->max_series : t->opt->max_series;
            /* database-scope series say their database when targets share a
             * server, unless the query has a datname label of its own */
            const char *label =
                q->scope == PP_SCOPE_DATABASE && !q->datname_label ? t->db_label : t->label;
            if (q->server_label && !t->opt->server_label)
                label = t->srv_label;
            pp_rows_begin(t->rows, q, t->families, label, cap);
            t->rows_begun = true;
        }
        if (pp_rows_add(t->rows, res, msg, sizeof(msg)) != 0) {
            t->stmt_over = true;
            query_over(t, (size_t)qi, index, now);
            query_failed(t, (size_t)qi, msg);
            return;
        }
        if (row)
            return; /* more rows to come */
        query_over(t, (size_t)qi, index, now);
        query_succeeded(t, (size_t)qi);
        return;
    }
    query_over(t, (size_t)qi, index, now);
    result_message(res, msg, sizeof(msg));
    query_failed(t, (size_t)qi, msg);
}

static void reconnect(pp_target *t);

static void on_batch_done(pp_conn *c, void *data)
{
    pp_target *t = data;
    (void)c;
    if (t->batch_gen != t->gen) {
        /* started before a reload: run the new catalog at once */
        t->phase = PHASE_NONE;
        end_batch(t);
        if (t->reconnect)
            reconnect(t);
        else
            start_timer(t, 0, on_cycle_timer);
        return;
    }
    if (t->phase == PHASE_PROBE) {
        if (t->role_changed || t->discovery_changed) {
            /* drop what the old role produced before anything else; let
             * the registry see the databases found */
            t->role_changed = false;
            t->discovery_changed = false;
            notify(t, true);
        }
        send_collect(t);
        return;
    }
    t->phase = PHASE_NONE;
    end_batch(t);
    first_done(t);
    t->result_peak = pp_conn_take_result_peak(t->conn);
    bool first = !t->settled;
    t->settled = true;
    t->cycles++;
    t->last_cycle_duration = loop_now(t) - t->cycle_start;
    t->last_cycle_error = t->cycle_error;
    t->last_collect = pp_clock_wall();
    notify(t, first);
    if (t->spread_pending) {
        /* Targets that connect together (a start, a server restart) would
         * run their queries together forever: each moves its next runs
         * earlier by up to half an interval, once, so their cycles spread
         * over the interval and the data never gets older than one. */
        t->spread_pending = false;
        double shift = 0.5 * (double)rand() / (double)RAND_MAX;
        for (size_t i = 0; i < t->cat->nqueries; i++)
            t->q[i].next_due -= shift * t->cat->queries[i].interval;
    }
    if (t->reconnect) {
        reconnect(t);
        return;
    }
    if (t->seats != NULL && !t->leader && pp_gate_waiting(t->seats) > 0) {
        /* other databases of the server wait for a seat: give it up until
         * something is due again, keeping what was collected */
        pp_conn_reset(t->conn);
        t->up = false;
        t->resting = true;
        pp_gate_leave(t->seats, &t->seat_w);
        double next =
            pp_schedule_earliest(&t->q[0].next_due, t->cat->nqueries, sizeof(pp_query_state));
        start_timer(t, next - loop_now(t), on_connect_timer);
        return;
    }
    schedule_next(t);
}

/* ---- life cycle -------------------------------------------------------- */

/* The label blocks depend on the generation's options: with several
 * targets every series says its server, and what is per database (its
 * tables, its connection's own state) says the database too. */
static void make_label(pp_target *t)
{
    pp_buf b = PP_BUF_INIT;
    free(t->label);
    free(t->db_label);
    free(t->srv_label);
    const char *constant = t->opt->constant_labels;
    if (constant != NULL)
        pp_buf_puts(&b, constant);
    if (b.len > 0)
        pp_buf_putc(&b, ',');
    pp_buf_puts(&b, "server=\"");
    pp_render_label_value(&b, t->dsn.label, strlen(t->dsn.label));
    pp_buf_putc(&b, '"');
    t->srv_label = pp_strdup(b.data);
    if (!t->opt->server_label) {
        t->label = pp_strdup(constant != NULL ? constant : "");
        t->db_label = pp_strdup(t->label);
        pp_buf_deinit(&b);
        return;
    }
    t->label = pp_strdup(b.data);
    const char *db = pp_dsn_database(&t->dsn);
    pp_buf_puts(&b, ",datname=\"");
    pp_render_label_value(&b, db, strlen(db));
    pp_buf_putc(&b, '"');
    t->db_label = pp_buf_steal(&b, NULL);
}

static void free_queries(pp_target *t)
{
    if (t->q == NULL)
        return;
    for (size_t i = 0; i < t->cat->nqueries; i++) {
        pp_piece_unref(t->q[i].piece);
    }
    free(t->q);
    t->q = NULL;
}

/* Whether two catalog queries would render the same text from the same
 * rows: then a reload can keep what the old one last produced. */
static bool same_query(const pp_catalog_query *a, const pp_catalog_query *b)
{
    if (!pp_str_eq(a->name, b->name) || !pp_str_eq(a->namespace, b->namespace) ||
        a->nvariants != b->nvariants || a->ncolumns != b->ncolumns || a->dynamic != b->dynamic ||
        a->runs_on != b->runs_on || a->server_label != b->server_label)
        return false;
    for (size_t i = 0; i < a->nvariants; i++)
        if (a->variants[i].min_version != b->variants[i].min_version ||
            a->variants[i].max_version != b->variants[i].max_version ||
            !pp_str_eq(a->variants[i].sql, b->variants[i].sql))
            return false;
    for (size_t i = 0; i < a->ncolumns; i++) {
        const pp_catalog_column *x = &a->columns[i], *y = &b->columns[i];
        if (!pp_str_eq(x->name, y->name) || x->role != y->role || !pp_str_eq(x->label, y->label) ||
            !pp_str_eq(x->metric, y->metric) || x->scale != y->scale)
            return false;
    }
    return true;
}

/* What old query state s last produced, for the new generation: the same
 * text with its spans' family ids looked up again, by name, in the new
 * table (pieces are immutable: a new one). Returns false (and leaves s as
 * it was) when a family cannot be. */
static bool remap_families(pp_query_state *s, const pp_families *from, pp_families *to)
{
    const pp_piece *p = s->piece;
    pp_span *spans = pp_malloc((p->nspans ? p->nspans : 1) * sizeof(pp_span));
    for (size_t k = 0; k < p->nspans; k++) {
        const pp_family *f = pp_families_get(from, p->spans[k].family);
        spans[k] = p->spans[k];
        spans[k].family = pp_families_intern(to, f->name, strlen(f->name), f->help, f->type);
        if (spans[k].family == PP_FAMILY_NONE) {
            free(spans);
            return false;
        }
    }
    pp_piece *copy = pp_piece_respan(p, spans);
    free(spans);
    pp_piece_unref(s->piece);
    s->piece = copy;
    return true;
}

static void use_gen(pp_target *t, pp_gen *gen)
{
    pp_gen *old = t->gen;
    pp_query_state *oldq = t->q;
    char *old_label = t->label, *old_db_label = t->db_label;
    t->label = t->db_label = NULL;
    t->gen = pp_gen_ref(gen);
    const pp_catalog *oldcat = t->cat;
    t->cat = gen->cat;
    t->families = gen->families;
    t->opt = &gen->topt;
    t->q = pp_calloc(t->cat->nqueries ? t->cat->nqueries : 1, sizeof(pp_query_state));
    make_label(t);
    t->changes++; /* the labels or the queries may differ */
    double now = loop_now(t);
    for (size_t i = 0; i < t->cat->nqueries; i++) {
        t->q[i].next_due = now;
        if (oldq == NULL || old_label == NULL || strcmp(old_label, t->label) != 0 ||
            strcmp(old_db_label, t->db_label) != 0)
            continue; /* a new target, or every series' labels change */
        /* an unchanged query keeps its series until it runs again, so a
         * reload leaves no gap on the page */
        for (size_t j = 0; j < oldcat->nqueries; j++) {
            pp_query_state *o = &oldq[j];
            if (!o->valid || !same_query(&oldcat->queries[j], &t->cat->queries[i]) ||
                !remap_families(o, old->families, t->families))
                continue;
            t->q[i] = *o;
            t->q[i].next_due = now;
            memset(o, 0, sizeof(*o));
            break;
        }
    }
    if (oldq != NULL) {
        for (size_t j = 0; j < oldcat->nqueries; j++) {
            pp_piece_unref(oldq[j].piece);
        }
        free(oldq);
    }
    free(old_label);
    free(old_db_label);
    pp_gen_unref(old);
}

/* The "options" sent at connect: the user's own first, then our timeouts
 * and the session settings catalog queries read (fixed per connection: a
 * reload that changes them reconnects; one that changes lock_timeout
 * applies to the next connection). */
static char *server_options(const pp_target *t)
{
    pp_buf b = PP_BUF_INIT;
    const char *user_opts = pp_dsn_get(&t->dsn, "options");
    long lock_ms = (long)(t->opt->lock_timeout * 1000 + 0.5);
    pp_buf_printf(&b, "%s%s-c statement_timeout=%ld -c lock_timeout=%ld",
                  user_opts ? user_opts : "", user_opts ? " " : "", (long)(INTERNAL_TIMEOUT * 1000),
                  lock_ms > 0 ? lock_ms : 1);
    if (t->opt->session != NULL)
        pp_buf_printf(&b, " %s", t->opt->session);
    return pp_buf_steal(&b, NULL);
}

pp_target *pp_target_new(uv_loop_t *loop, pp_dsn *dsn, pp_gen *gen, pp_gate *gate,
                         pp_target_change_cb on_change, void *data, const pp_log *log)
{
    pp_target *t = pp_calloc(1, sizeof(*t));
    t->loop = loop;
    t->gate = gate;
    t->dsn = *dsn;
    memset(dsn, 0, sizeof(*dsn));
    t->on_change = on_change;
    t->data = data;
    t->log = log;
    t->session_timeout_ms = -1;
    t->leader = true;
    t->rows = pp_rows_new();
    t->rows_stmt = -1;
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    use_gen(t, gen);

    t->server_opts = server_options(t);

    static const pp_conn_callbacks cb = {on_up, on_down, on_result, on_batch_done};
    t->conn = pp_conn_new(loop, &t->dsn, &cb, t, log);
    return t;
}

void pp_target_start(pp_target *t, double delay)
{
    start_timer(t, delay, on_connect_timer);
}

/* Makes a new connection with the current server options, keeping what
 * the target shows meanwhile (pg_up stays 1 unless the attempt fails). */
static void reconnect(pp_target *t)
{
    t->reconnect = false;
    pp_conn_reset(t->conn);
    t->up = false;
    t->resting = true;
    connect_now(t);
}

void pp_target_set_gen(pp_target *t, pp_gen *gen)
{
    if (t->closing || gen == t->gen)
        return;
    const char *old_session = t->opt->session;
    bool session_changed = !pp_str_eq(old_session, gen->topt.session);
    use_gen(t, gen);
    if (session_changed) {
        /* the queries read settings the connection was made with */
        free(t->server_opts);
        t->server_opts = server_options(t);
        if (t->up && t->phase == PHASE_NONE) {
            reconnect(t);
            notify(t, false);
            return;
        }
        t->reconnect = t->up; /* after the batch in flight */
    }
    if (t->up && t->phase == PHASE_NONE)
        start_timer(t, 0, on_cycle_timer);
    /* a batch in flight ends in on_batch_done, which starts a cycle */
    notify(t, false);
}

bool pp_target_settled(const pp_target *t)
{
    return t->settled;
}

static void on_timer_closed(uv_handle_t *h)
{
    pp_target *t = h->data;
    free_queries(t);
    end_batch(t);
    pp_gen_unref(t->gen);
    free(t->label);
    free(t->db_label);
    free(t->srv_label);
    for (size_t k = 0; k < PP_SELF_PIECES; k++)
        pp_piece_unref(t->self.piece[k]);
    for (size_t i = 0; i < t->ndiscovered; i++)
        free(t->discovered[i]);
    free(t->discovered);
    free(t->server_opts);
    free(t->stmts);
    free(t->meta);
    free(t->setcfg);
    pp_rows_free(t->rows);
    pp_history_free(t->history);
    pp_dsn_deinit(&t->dsn);
    free(t);
}

void pp_target_close(pp_target *t)
{
    if (t == NULL || t->closing)
        return;
    t->closing = true;
    pp_gate_leave(t->gate, &t->gate_w);
    pp_gate_leave(t->seats, &t->seat_w);
    /* the conn borrows t->dsn; it is done with it once closed (its frees
     * come later but never read the DSN) */
    pp_conn_close(t->conn);
    t->conn = NULL;
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, on_timer_closed);
}

const pp_dsn *pp_target_dsn(const pp_target *t)
{
    return &t->dsn;
}

bool pp_target_up(const pp_target *t)
{
    return t->up || t->resting;
}

void pp_target_set_seats(pp_target *t, pp_gate *seats)
{
    if (t->closing || t->seats == seats)
        return;
    bool waiting = t->seat_w.queued;
    pp_gate_leave(t->seats, &t->seat_w);
    t->seats = seats;
    if (waiting)
        connect_now(t); /* queue at the new gate, or go */
}

pp_role pp_target_role(const pp_target *t)
{
    return t->up ? t->role : PP_ROLE_UNKNOWN;
}

const pp_catalog *pp_target_catalog(const pp_target *t)
{
    return t->cat;
}

size_t pp_target_nqueries(const pp_target *t)
{
    return t->cat->nqueries;
}

const pp_query_state *pp_target_query(const pp_target *t, size_t i)
{
    return &t->q[i];
}

pp_gen *pp_target_gen(const pp_target *t)
{
    return t->gen;
}

pp_target_self *pp_target_self_cache(pp_target *t)
{
    return &t->self;
}

uint64_t pp_target_changes(const pp_target *t)
{
    return t->changes;
}

const char *pp_target_label(const pp_target *t)
{
    return t->db_label;
}

const char *const *pp_target_discovered(const pp_target *t, size_t *n, uint64_t *seq)
{
    *n = t->ndiscovered;
    *seq = t->discovery_seq;
    return (const char *const *)t->discovered;
}

bool pp_target_leader(const pp_target *t)
{
    return t->leader;
}

void pp_target_set_leader(pp_target *t, bool leader)
{
    if (t->closing || t->leader == leader)
        return;
    t->leader = leader;
    double now = loop_now(t);
    bool changed = false;
    for (size_t i = 0; i < t->cat->nqueries; i++) {
        if (t->cat->queries[i].scope != PP_SCOPE_SERVER)
            continue;
        if (leader) {
            t->q[i].next_due = now; /* take over at once */
        } else if (t->q[i].valid) {
            invalidate(&t->q[i]); /* the new leader reports the server now */
            changed = true;
        }
    }
    if (leader && t->seats != NULL) {
        /* a leader needs no seat and never waits for one */
        bool waiting = t->seat_w.queued;
        pp_gate_leave(t->seats, &t->seat_w);
        if (waiting)
            connect_now(t);
        else if (t->resting)
            start_timer(t, 0, on_connect_timer);
    }
    if (leader && t->up && t->phase == PHASE_NONE)
        start_timer(t, 0, on_cycle_timer);
    if (changed)
        notify(t, true);
}

double pp_target_last_cycle_duration(const pp_target *t)
{
    return t->last_cycle_duration;
}

bool pp_target_last_cycle_error(const pp_target *t)
{
    return t->last_cycle_error;
}

uint64_t pp_target_cycles(const pp_target *t)
{
    return t->cycles;
}

double pp_target_last_collect(const pp_target *t)
{
    return t->last_collect;
}

pp_history *pp_target_history(pp_target *t)
{
    if (t->history == NULL)
        t->history = pp_history_new(PP_TARGET_HISTORY_SLOTS);
    return t->history;
}

size_t pp_target_memory(const pp_target *t)
{
    size_t n = sizeof(*t) + pp_rows_memory(t->rows) + t->result_peak;
    if (t->history != NULL)
        n += pp_history_memory(t->history);
    for (size_t i = 0; i < t->cat->nqueries; i++)
        n += sizeof(pp_query_state) + (t->q[i].piece ? pp_piece_memory(t->q[i].piece) : 0);
    for (size_t k = 0; k < PP_SELF_PIECES; k++)
        if (t->self.piece[k] != NULL)
            n += pp_piece_memory(t->self.piece[k]);
    return n;
}
