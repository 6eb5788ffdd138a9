/*
 * registry: targets by identity (see registry.h).
 *
 * Applying a list is a match of old targets to new DSNs by identity, a few
 * hundred or thousand entries: a hash would be the next step; a quadratic
 * match over 1,000 targets is 10^6 string compares, run only on a reload.
 */
#include "registry.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "gate.h"

struct pp_registry {
    uv_loop_t *loop;
    const pp_log *log;
    pp_registry_change_cb on_change;
    void *data;
    pp_gen *gen;
    pp_gate *gate;       /* connection attempts in flight */
    struct seats *seats; /* per server label: connections of its non-leaders */
    size_t nseats;
    pp_target **targets;
    size_t n;
    size_t unsettled;
    uint64_t settled_at;
    bool electing; /* elect() is on the stack: leaders it sets notify */
    /* auto-discovery */
    pp_dsn *configured; /* copies of the list last applied from outside */
    size_t nconfigured;
    struct found *found; /* per server: the databases its leader found */
    size_t nfound;
    struct reconcile *reconcile; /* the pending reconcile, or NULL */
};

typedef struct found {
    char *server; /* the server label, host:port */
    uint64_t seq; /* the leader's discovery_seq this list is from */
    char **dbs;
    size_t n;
} found;

/* A reconcile runs on a later loop turn (never inside the callback of the
 * target whose discovery asked for it). Heap-allocated so the registry can
 * be freed while the timer closes. */
typedef struct reconcile {
    uv_timer_t timer; /* first */
    pp_registry *r;   /* NULL once the registry is gone */
} reconcile;

static void apply_list(pp_registry *r, pp_dsn *dsns, size_t n, pp_gen *gen, double spread,
                       pp_registry_diff *diff);
static void discovered(pp_registry *r, pp_target *t);

/* One target per server (same host:port label) runs the server-scope
 * queries: the current leader while it is up, else the first target of
 * the server that is up, else the first one listed. Keeping a leader that
 * is up keeps its series where they are. */
static void elect(pp_registry *r, const char *server)
{
    pp_target *cur = NULL, *first_up = NULL, *first = NULL;
    for (size_t i = 0; i < r->n; i++) {
        pp_target *t = r->targets[i];
        if (strcmp(pp_target_dsn(t)->label, server) != 0)
            continue;
        if (first == NULL)
            first = t;
        if (pp_target_up(t)) {
            if (first_up == NULL)
                first_up = t;
            if (cur == NULL && pp_target_leader(t))
                cur = t;
        }
    }
    pp_target *lead = cur != NULL ? cur : first_up != NULL ? first_up : first;
    r->electing = true;
    for (size_t i = 0; i < r->n; i++) {
        pp_target *t = r->targets[i];
        if (strcmp(pp_target_dsn(t)->label, server) == 0)
            pp_target_set_leader(t, t == lead);
    }
    r->electing = false;
}

/* Connections to one server: its leader's, plus max_per_server - 1 seats
 * its other targets take turns at. */
struct seats {
    char *label;
    pp_gate *gate;
};

static void assign_seats(pp_registry *r)
{
    size_t max = r->gen->topt.max_per_server;
    for (size_t i = 0; i < r->n; i++) {
        pp_target *t = r->targets[i];
        if (max == 0) {
            pp_target_set_seats(t, NULL);
            continue;
        }
        const char *label = pp_target_dsn(t)->label;
        size_t k = 0;
        while (k < r->nseats && strcmp(r->seats[k].label, label) != 0)
            k++;
        if (k == r->nseats) {
            r->seats = pp_realloc(r->seats, (r->nseats + 1) * sizeof(struct seats));
            r->seats[k].label = pp_strdup(label);
            r->seats[k].gate = pp_gate_new(r->loop, max - 1);
            r->nseats++;
        }
        pp_gate_set_max(r->seats[k].gate, max - 1);
        pp_target_set_seats(t, r->seats[k].gate);
    }
}

static void elect_all(pp_registry *r)
{
    for (size_t i = 0; i < r->n; i++) {
        const char *server = pp_target_dsn(r->targets[i])->label;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(pp_target_dsn(r->targets[j])->label, server) == 0;
        if (!seen)
            elect(r, server);
    }
}

bool pp_registry_same_identity(const pp_dsn *a, const pp_dsn *b)
{
    return pp_str_eq(a->host, b->host) && pp_str_eq(a->port, b->port) &&
           pp_str_eq(a->dbname, b->dbname) && pp_str_eq(a->user, b->user);
}

/* Whether every option is the same, in any order. */
static bool same_options(const pp_dsn *a, const pp_dsn *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (!pp_str_eq(pp_dsn_get(b, a->keywords[i]), a->values[i]))
            return false;
    return pp_str_eq(a->label, b->label);
}

static void count_settled(pp_registry *r)
{
    size_t unsettled = 0;
    for (size_t i = 0; i < r->n; i++)
        if (!pp_target_settled(r->targets[i]))
            unsettled++;
    if (unsettled == 0 && (r->unsettled > 0 || r->settled_at == 0))
        r->settled_at = uv_hrtime();
    if (unsettled > 0)
        r->settled_at = 0;
    r->unsettled = unsettled;
}

static void on_target_change(pp_target *t, void *data, bool state)
{
    pp_registry *r = data;
    if (state && r->unsettled > 0)
        count_settled(r);
    if (state && !r->electing) {
        elect(r, pp_target_dsn(t)->label);
        discovered(r, t);
    }
    if (r->on_change != NULL)
        r->on_change(r, t, state, r->data);
}

pp_registry *pp_registry_new(uv_loop_t *loop, const pp_log *log, pp_registry_change_cb on_change,
                             void *data)
{
    pp_registry *r = pp_calloc(1, sizeof(*r));
    r->loop = loop;
    r->log = log;
    r->on_change = on_change;
    r->data = data;
    r->gate = pp_gate_new(loop, 0);
    return r;
}

static void apply_list(pp_registry *r, pp_dsn *dsns, size_t n, pp_gen *gen, double spread,
                       pp_registry_diff *diff)
{
    pp_registry_diff d = {0, 0, 0, 0};
    pp_target **next = pp_calloc(n ? n : 1, sizeof(pp_target *));
    bool *started = pp_calloc(n ? n : 1, sizeof(bool));
    bool *taken = pp_calloc(r->n ? r->n : 1, sizeof(bool));
    pp_gen *old = r->gen;
    r->gen = pp_gen_ref(gen);
    pp_gen_unref(old);
    pp_gate_set_max(r->gate, gen->topt.max_connecting);

    for (size_t i = 0; i < n; i++) {
        bool replaced = false;
        for (size_t j = 0; j < r->n; j++) {
            if (taken[j] || !pp_registry_same_identity(pp_target_dsn(r->targets[j]), &dsns[i]))
                continue;
            taken[j] = true;
            if (same_options(pp_target_dsn(r->targets[j]), &dsns[i])) {
                next[i] = r->targets[j];
                pp_target_set_gen(next[i], gen);
                d.kept++;
            } else {
                pp_log_write(r->log, PP_LOG_INFO, "target options changed: reconnecting", "target",
                             dsns[i].label, NULL);
                pp_target_close(r->targets[j]);
                d.replaced++;
                replaced = true;
            }
            break;
        }
        if (next[i] == NULL) {
            next[i] = pp_target_new(r->loop, &dsns[i], gen, r->gate, on_target_change, r, r->log);
            started[i] = true;
            if (!replaced)
                d.added++;
        }
    }
    for (size_t j = 0; j < r->n; j++) {
        if (taken[j])
            continue;
        pp_log_write(r->log, PP_LOG_INFO, "target removed", "target",
                     pp_target_dsn(r->targets[j])->label, NULL);
        pp_target_close(r->targets[j]);
        d.removed++;
    }
    free(r->targets);
    r->targets = next;
    r->n = n;
    /* spread the first connects of many new targets out */
    size_t nnew = 0;
    for (size_t i = 0; i < n; i++)
        nnew += started[i];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!started[i])
            continue;
        double delay = nnew >= 50 ? spread * (double)k / (double)nnew : 0;
        pp_target_start(next[i], delay);
        k++;
    }
    free(started);
    free(taken);
    elect_all(r);
    assign_seats(r);
    r->settled_at = 0;
    count_settled(r);
    if (diff != NULL)
        *diff = d;
    if (r->on_change != NULL)
        r->on_change(r, NULL, true, r->data);
}

size_t pp_registry_connecting(const pp_registry *r)
{
    return pp_gate_inside(r->gate);
}

size_t pp_registry_waiting(const pp_registry *r)
{
    return pp_gate_waiting(r->gate);
}

/* ---- auto-discovery ----------------------------------------------------- */

static bool listed(char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

static void found_free(found *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->dbs[i]);
    free(f->dbs);
    free(f->server);
}

/* The configured list plus, for each server a leader found databases on,
 * a DSN for every database it found that include/exclude let through and
 * no configured DSN already names (the first configured DSN of the server
 * with its dbname replaced). */
static void reconcile_now(pp_registry *r, double spread, pp_registry_diff *diff)
{
    const pp_target_options *o = &r->gen->topt;
    size_t cap = r->nconfigured + 1, n = 0;
    for (size_t i = 0; i < r->nfound; i++)
        cap += r->found[i].n;
    pp_dsn *want = pp_calloc(cap, sizeof(pp_dsn));
    for (size_t i = 0; i < r->nconfigured; i++)
        pp_dsn_copy(&want[n++], &r->configured[i]);
    for (size_t i = 0; o->auto_discover && i < r->nfound; i++) {
        const found *f = &r->found[i];
        const pp_dsn *base = NULL;
        for (size_t j = 0; j < r->nconfigured && base == NULL; j++)
            if (strcmp(r->configured[j].label, f->server) == 0)
                base = &r->configured[j];
        if (base == NULL)
            continue; /* the server is no longer listed */
        for (size_t k = 0; k < f->n; k++) {
            const char *db = f->dbs[k];
            if (listed(o->exclude, o->nexclude, db) ||
                (o->ninclude > 0 && !listed(o->include, o->ninclude, db)))
                continue;
            bool have = false;
            for (size_t j = 0; j < r->nconfigured && !have; j++)
                have = strcmp(r->configured[j].label, f->server) == 0 &&
                       strcmp(pp_dsn_database(&r->configured[j]), db) == 0;
            if (have)
                continue;
            pp_dsn_copy(&want[n], base);
            pp_dsn_set(&want[n], "dbname", db);
            n++;
        }
    }
    pp_registry_diff d;
    apply_list(r, want, n, r->gen, spread, &d);
    pp_dsn_list_free(want, n);
    if (diff != NULL)
        *diff = d;
    else if (d.added + d.removed > 0) {
        char added[24], removed[24];
        snprintf(added, sizeof(added), "%zu", d.added);
        snprintf(removed, sizeof(removed), "%zu", d.removed);
        pp_log_write(r->log, PP_LOG_INFO, "databases discovered", "added", added, "removed",
                     removed, NULL);
    }
}

static void on_reconcile(uv_timer_t *h)
{
    reconcile *rc = (reconcile *)h;
    pp_registry *r = rc->r;
    if (r == NULL)
        return;
    reconcile_now(r, 2.0, NULL);
}

static void on_reconcile_closed(uv_handle_t *h)
{
    free(h);
}

/* A leader's list of databases may have changed: note it and reconcile
 * soon. */
static void discovered(pp_registry *r, pp_target *t)
{
    if (!r->gen->topt.auto_discover || !pp_target_leader(t))
        return;
    size_t n;
    uint64_t seq;
    const char *const *dbs = pp_target_discovered(t, &n, &seq);
    if (seq == 0)
        return; /* nothing found yet */
    const char *server = pp_target_dsn(t)->label;
    found *f = NULL;
    for (size_t i = 0; i < r->nfound && f == NULL; i++)
        if (strcmp(r->found[i].server, server) == 0)
            f = &r->found[i];
    if (f == NULL) {
        r->found = pp_realloc(r->found, (r->nfound + 1) * sizeof(found));
        f = &r->found[r->nfound++];
        memset(f, 0, sizeof(*f));
        f->server = pp_strdup(server);
    } else if (f->seq == seq && f->n == n) {
        return;
    }
    bool same = f->n == n;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(f->dbs[i], dbs[i]) == 0;
    f->seq = seq;
    if (same)
        return;
    for (size_t i = 0; i < f->n; i++)
        free(f->dbs[i]);
    f->dbs = pp_realloc(f->dbs, (n ? n : 1) * sizeof(char *));
    for (size_t i = 0; i < n; i++)
        f->dbs[i] = pp_strdup(dbs[i]);
    f->n = n;
    if (r->reconcile == NULL) {
        r->reconcile = pp_calloc(1, sizeof(reconcile));
        r->reconcile->r = r;
        uv_timer_init(r->loop, &r->reconcile->timer);
    }
    uv_timer_start(&r->reconcile->timer, on_reconcile, 0, 0);
}

void pp_registry_apply(pp_registry *r, pp_dsn *dsns, size_t n, pp_gen *gen, double spread,
                       pp_registry_diff *diff)
{
    pp_dsn_list_free(r->configured, r->nconfigured);
    r->configured = pp_calloc(n ? n : 1, sizeof(pp_dsn));
    r->nconfigured = n;
    for (size_t i = 0; i < n; i++)
        pp_dsn_copy(&r->configured[i], &dsns[i]);
    if (!gen->topt.auto_discover || r->nfound == 0) {
        for (size_t i = 0; i < r->nfound; i++)
            found_free(&r->found[i]);
        free(r->found);
        r->found = NULL;
        r->nfound = 0;
        apply_list(r, dsns, n, gen, spread, diff);
        return;
    }
    /* keep what discovery found: the configured DSNs and the found ones,
     * so discovered databases keep their connections too */
    pp_gen *old = r->gen;
    r->gen = pp_gen_ref(gen);
    pp_gen_unref(old);
    reconcile_now(r, spread, diff);
}

pp_gen *pp_registry_gen(const pp_registry *r)
{
    return r->gen;
}

size_t pp_registry_count(const pp_registry *r)
{
    return r->n;
}

pp_target *pp_registry_at(const pp_registry *r, size_t i)
{
    return r->targets[i];
}

bool pp_registry_settled(const pp_registry *r)
{
    return r->unsettled == 0;
}

uint64_t pp_registry_settled_at(const pp_registry *r)
{
    return r->settled_at;
}

void pp_registry_close(pp_registry *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        pp_target_close(r->targets[i]);
    pp_gate_close(r->gate);
    for (size_t i = 0; i < r->nseats; i++) {
        pp_gate_close(r->seats[i].gate);
        free(r->seats[i].label);
    }
    free(r->seats);
    if (r->reconcile != NULL) {
        r->reconcile->r = NULL;
        uv_close((uv_handle_t *)&r->reconcile->timer, on_reconcile_closed);
    }
    for (size_t i = 0; i < r->nfound; i++)
        found_free(&r->found[i]);
    free(r->found);
    pp_dsn_list_free(r->configured, r->nconfigured);
    free(r->targets);
    pp_gen_unref(r->gen);
    free(r);
}
