/*
 * turn: see turn.h.
 */
#include "turn.h"

static void on_check(uv_check_t *h)
{
    pp_turn *t = h->data;
    t->started = 0;
}

void pp_turn_init(pp_turn *t, uv_loop_t *loop, double budget_ms)
{
    t->started = 0;
    t->budget_ns = (uint64_t)(budget_ms * 1e6);
    uv_check_init(loop, &t->check);
    t->check.data = t;
    uv_check_start(&t->check, on_check);
    uv_unref((uv_handle_t *)&t->check);
    loop->data = t;
}

bool pp_turn_spent(uv_loop_t *loop)
{
    pp_turn *t = loop->data;
    if (t == NULL)
        return false;
    uint64_t now = uv_hrtime();
    if (t->started == 0) {
        t->started = now;
        return false;
    }
    return now - t->started > t->budget_ns;
}

void pp_turn_close(pp_turn *t, uv_close_cb cb)
{
    if (t->check.loop->data == t)
        t->check.loop->data = NULL;
    uv_close((uv_handle_t *)&t->check, cb);
}
