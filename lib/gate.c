/*
 * gate: connection attempts in flight, bounded (see gate.h).
 */
#include "gate.h"

#include <stdlib.h>

#include "buf.h"

struct pp_gate {
    uv_timer_t admit; /* first: the close callback frees the gate */
    size_t max, inside, waiting;
    pp_gate_waiter *head, *tail;
};

static void unlink_waiter(pp_gate *g, pp_gate_waiter *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        g->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    else
        g->tail = w->prev;
    w->prev = w->next = NULL;
    w->queued = false;
    g->waiting--;
}

static bool has_room(const pp_gate *g)
{
    return g->max == 0 || g->inside < g->max;
}

static void on_admit(uv_timer_t *t)
{
    pp_gate *g = (pp_gate *)t;
    while (g->head != NULL && has_room(g)) {
        pp_gate_waiter *w = g->head;
        unlink_waiter(g, w);
        w->inside = true;
        g->inside++;
        w->cb(w); /* may leave at once (a failed start): the loop re-checks */
    }
}

static void kick(pp_gate *g)
{
    if (g->head != NULL && has_room(g) && !uv_is_active((uv_handle_t *)&g->admit))
        uv_timer_start(&g->admit, on_admit, 0, 0);
}

pp_gate *pp_gate_new(uv_loop_t *loop, size_t max)
{
    pp_gate *g = pp_calloc(1, sizeof(*g));
    uv_timer_init(loop, &g->admit);
    g->max = max;
    return g;
}

static void on_closed(uv_handle_t *h)
{
    free(h); /* the timer is the gate's first member */
}

void pp_gate_close(pp_gate *g)
{
    if (g == NULL)
        return;
    while (g->head != NULL)
        unlink_waiter(g, g->head);
    uv_close((uv_handle_t *)&g->admit, on_closed);
}

void pp_gate_set_max(pp_gate *g, size_t max)
{
    g->max = max;
    kick(g);
}

bool pp_gate_enter(pp_gate *g, pp_gate_waiter *w, pp_gate_cb cb)
{
    if (w->inside)
        return true;
    if (w->queued)
        return false;
    if (has_room(g) && g->head == NULL) {
        w->inside = true;
        g->inside++;
        return true;
    }
    w->cb = cb;
    w->queued = true;
    w->next = NULL;
    w->prev = g->tail;
    if (g->tail != NULL)
        g->tail->next = w;
    else
        g->head = w;
    g->tail = w;
    g->waiting++;
    kick(g);
    return false;
}

void pp_gate_leave(pp_gate *g, pp_gate_waiter *w)
{
    if (g == NULL)
        return;
    if (w->queued) {
        unlink_waiter(g, w);
        return;
    }
    if (!w->inside)
        return;
    w->inside = false;
    g->inside--;
    kick(g);
}

size_t pp_gate_inside(const pp_gate *g)
{
    return g->inside;
}

size_t pp_gate_waiting(const pp_gate *g)
{
    return g->waiting;
}
