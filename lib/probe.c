/*
 * probe: probed targets (see probe.h).
 *
 * Each probe is a one-target registry with its own snapshot. A probe is
 * refcounted: the set holds one reference while the target is registered,
 * and every request waiting for its first page holds one, so a target
 * dropped meanwhile (idle, or refused by a reload) still answers the
 * request with the page it had. Dropping closes the registry and the
 * snapshot at once and keeps only that last page.
 */
#include "probe.h"

#include <h2o.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "registry.h"

#define SWEEP_MS 10000
#define CONNECT_SPREAD 0.0
#define PAGE_MAX_AGE_MS 30000 /* a probe of an idle target rebuilds a page this old */

struct pp_probe {
    pp_probes *set;
    char *target; /* owned: as probed (may hold a password: never shown) */
    char *module; /* owned: "" for none */
    pp_registry *reg;
    pp_snapshot *snap;
    pp_page *last;      /* a reference: the page when the target was dropped */
    uint64_t last_used; /* uv_now */
    unsigned refs;
    struct pp_probe *prev, *next;
};

struct pp_probes {
    uv_loop_t *loop;
    const pp_log *log;
    pp_gen *gen;
    pp_auth_modules modules;
    pp_hostmatch *allow;
    double idle_timeout;
    size_t max_targets;
    pp_probe *head;
    size_t n;
    uv_timer_t sweep;
    bool closing;
    bool warned_any; /* logged once that any host may be probed */
};

static void on_change(pp_registry *r, pp_target *t, bool state, void *data)
{
    pp_probe *e = data;
    (void)r;
    (void)t;
    if (e->snap != NULL)
        pp_snapshot_mark_dirty(e->snap, state);
}

static void probe_free(pp_probe *e)
{
    if (e->last != NULL)
        h2o_mem_release_shared(e->last);
    free(e->target);
    free(e->module);
    free(e);
}

void pp_probe_release(pp_probe *e)
{
    if (--e->refs == 0)
        probe_free(e);
}

/* Takes the target off the set: its connection closes, its last page
 * stays for whoever still holds the probe. */
static void drop(pp_probe *e)
{
    pp_probes *p = e->set;
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        p->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    p->n--;
    e->last = pp_snapshot_current(e->snap);
    h2o_mem_addref_shared(e->last);
    pp_registry_close(e->reg);
    pp_snapshot_close(e->snap);
    e->reg = NULL;
    e->snap = NULL;
    pp_probe_release(e);
}

/* The DSN target names with module applied, checked against the
 * allow-list. Returns 0, or an HTTP status with a message. */
static int make_dsn(pp_probes *p, const char *target, const char *module, pp_dsn *out, char *msg,
                    size_t msglen)
{
    const pp_auth_module *m = NULL;
    if (module[0] != '\0') {
        m = pp_auth_modules_find(&p->modules, module);
        if (m == NULL) {
            snprintf(msg, msglen, "auth_module %s not found", module);
            return 400;
        }
        if (m->username[0] == '\0' || m->password[0] == '\0') {
            snprintf(msg, msglen, "auth_module %s has no username or password", module);
            return 400;
        }
    }
    /* "host:port/db?opts": a URI without its scheme, as upstream takes
     * it; key=value text starts with a keyword */
    char *text = NULL;
    size_t word = strspn(target, "abcdefghijklmnopqrstuvwxyz_");
    bool keywords = word > 0 && (target[word] == '=' || target[word] == ' ');
    if (strstr(target, "://") == NULL && !keywords) {
        size_t n = strlen(target) + sizeof("postgresql://");
        text = pp_malloc(n);
        snprintf(text, n, "postgresql://%s", target);
    }
    char why[512];
    int rc = pp_dsn_parse(text != NULL ? text : target, out, why, sizeof(why));
    if (text != NULL) {
        memset(text, 0, strlen(text));
        free(text);
    }
    if (rc != 0) {
        snprintf(msg, msglen, "invalid target: %s", why);
        return 400;
    }
    if (m != NULL)
        pp_auth_module_apply(m, out);
    if (!pp_hostmatch_allows(p->allow, out, why, sizeof(why))) {
        pp_dsn_deinit(out);
        snprintf(msg, msglen, "target not allowed: %s", why);
        return 403;
    }
    return 0;
}

static void start(pp_probe *e, pp_dsn *dsn)
{
    pp_registry_apply(e->reg, dsn, 1, e->set->gen, CONNECT_SPREAD, NULL);
}

static void on_sweep(uv_timer_t *t)
{
    pp_probes *p = t->data;
    uint64_t now = uv_now(p->loop);
    uint64_t idle = (uint64_t)(p->idle_timeout * 1000);
    for (pp_probe *e = p->head, *next; e != NULL; e = next) {
        next = e->next;
        if (now - e->last_used >= idle) {
            pp_log_write(p->log, PP_LOG_INFO, "probe target dropped: not probed for a while",
                         "target", pp_target_dsn(pp_registry_at(e->reg, 0))->masked, NULL);
            drop(e);
        }
    }
}

pp_probes *pp_probes_new(uv_loop_t *loop, const pp_log *log)
{
    pp_probes *p = pp_calloc(1, sizeof(*p));
    p->loop = loop;
    p->log = log;
    p->allow = pp_hostmatch_parse(NULL, NULL, 0);
    p->idle_timeout = 600;
    p->max_targets = 1000;
    uv_timer_init(loop, &p->sweep);
    p->sweep.data = p;
    return p;
}

void pp_probes_configure(pp_probes *p, pp_gen *gen, pp_auth_modules *modules, pp_hostmatch *allow,
                         double idle_timeout, size_t max_targets)
{
    pp_gen_unref(p->gen);
    p->gen = pp_gen_ref(gen);
    pp_auth_modules_deinit(&p->modules);
    p->modules = *modules;
    memset(modules, 0, sizeof(*modules));
    pp_hostmatch_free(p->allow);
    p->allow = allow;
    p->idle_timeout = idle_timeout;
    p->max_targets = max_targets;
    /* look for idle targets a few times per timeout, at most every SWEEP_MS */
    double every = idle_timeout * 1000 / 4;
    uint64_t ms = every < 250 ? 250 : every > SWEEP_MS ? SWEEP_MS : (uint64_t)every;
    uv_timer_start(&p->sweep, on_sweep, ms, ms);
    for (pp_probe *e = p->head, *next; e != NULL; e = next) {
        next = e->next;
        pp_dsn dsn;
        char msg[512];
        if (make_dsn(p, e->target, e->module, &dsn, msg, sizeof(msg)) != 0) {
            pp_log_write(p->log, PP_LOG_INFO, "probe target dropped at reload", "target",
                         pp_target_dsn(pp_registry_at(e->reg, 0))->masked, "reason", msg, NULL);
            drop(e);
            continue;
        }
        start(e, &dsn);
        pp_dsn_deinit(&dsn);
    }
}

pp_probe *pp_probes_get(pp_probes *p, const char *target, const char *module, int *status,
                        char *msg, size_t msglen)
{
    if (module == NULL)
        module = "";
    for (pp_probe *e = p->head; e != NULL; e = e->next)
        if (strcmp(e->target, target) == 0 && strcmp(e->module, module) == 0) {
            e->last_used = uv_now(p->loop);
            e->refs++;
            return e;
        }
    if (p->closing || p->gen == NULL) {
        *status = 503;
        snprintf(msg, msglen, "shutting down");
        return NULL;
    }
    if (p->n >= p->max_targets) {
        *status = 503;
        snprintf(msg, msglen,
                 "%zu targets are probed already (--web.probe-max-targets); try again once idle "
                 "ones are dropped",
                 p->n);
        return NULL;
    }
    pp_dsn dsn;
    int rc = make_dsn(p, target, module, &dsn, msg, msglen);
    if (rc != 0) {
        *status = rc;
        return NULL;
    }
    if (pp_hostmatch_any(p->allow) && !p->warned_any) {
        p->warned_any = true;
        pp_log_write(p->log, PP_LOG_WARN,
                     "/probe may reach any server: limit it with --web.probe-allowed-targets",
                     NULL);
    }
    pp_probe *e = pp_calloc(1, sizeof(*e));
    e->set = p;
    e->target = pp_strdup(target);
    e->module = pp_strdup(module);
    e->last_used = uv_now(p->loop);
    e->refs = 2; /* the set's and the caller's */
    e->reg = pp_registry_new(p->loop, p->log, on_change, e);
    e->snap = pp_snapshot_new(p->loop, e->reg, NULL, p->log);
    /* built when its target changes, so a probe finds it ready; no timer
     * per target rebuilding pages nobody reads, all at once */
    pp_snapshot_no_refresh(e->snap);
    pp_log_write(p->log, PP_LOG_INFO, "probe target added", "target", dsn.masked, NULL);
    start(e, &dsn);
    pp_dsn_deinit(&dsn);
    e->next = p->head;
    if (p->head != NULL)
        p->head->prev = e;
    p->head = e;
    p->n++;
    return e;
}

bool pp_probe_ready(const pp_probe *e)
{
    return e->snap == NULL || pp_snapshot_ready(e->snap);
}

pp_page *pp_probe_page(pp_probe *e)
{
    return e->snap != NULL ? pp_snapshot_fresh(e->snap, PAGE_MAX_AGE_MS) : e->last;
}

size_t pp_probes_count(const pp_probes *p)
{
    return p->n;
}

static void on_sweep_closed(uv_handle_t *h)
{
    pp_probes *p = h->data;
    free(p);
}

void pp_probes_close(pp_probes *p)
{
    if (p == NULL)
        return;
    p->closing = true;
    while (p->head != NULL)
        drop(p->head);
    pp_gen_unref(p->gen);
    pp_auth_modules_deinit(&p->modules);
    pp_hostmatch_free(p->allow);
    uv_close((uv_handle_t *)&p->sweep, on_sweep_closed);
}
