/*
 * test_gate: the bound on connection attempts in flight: at most max
 * inside, waiters admitted in order on a later loop turn, leaving and
 * cancelling in any state.
 */
#include <stddef.h>
#include <uv.h>

#include "check.h"
#include "gate.h"

typedef struct who {
    pp_gate_waiter w; /* first */
    int id;
    int admitted; /* order of admission, 0 = not yet */
} who;

static int order;

static void on_admit(pp_gate_waiter *w)
{
    ((who *)w)->admitted = ++order;
}

int main(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    pp_gate *g = pp_gate_new(&loop, 2);
    who a[5] = {{.id = 0}, {.id = 1}, {.id = 2}, {.id = 3}, {.id = 4}};

    CHECK(pp_gate_enter(g, &a[0].w, on_admit));
    CHECK(pp_gate_enter(g, &a[1].w, on_admit));
    CHECK(!pp_gate_enter(g, &a[2].w, on_admit));
    CHECK(!pp_gate_enter(g, &a[3].w, on_admit));
    CHECK(!pp_gate_enter(g, &a[4].w, on_admit));
    CHECK(pp_gate_inside(g) == 2 && pp_gate_waiting(g) == 3);
    /* entering twice changes nothing */
    CHECK(pp_gate_enter(g, &a[0].w, on_admit) && pp_gate_inside(g) == 2);

    /* a place frees: nobody is admitted inside the call ... */
    pp_gate_leave(g, &a[0].w);
    CHECK(a[2].admitted == 0 && pp_gate_inside(g) == 1);
    /* ... but on the next loop turn, the first waiter */
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(a[2].admitted == 1 && a[3].admitted == 0 && pp_gate_inside(g) == 2);

    /* a waiter that gives up leaves the queue; the next in line moves up */
    pp_gate_leave(g, &a[3].w);
    CHECK(pp_gate_waiting(g) == 1);
    pp_gate_leave(g, &a[1].w);
    pp_gate_leave(g, &a[2].w);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(a[4].admitted == 2 && a[3].admitted == 0);
    CHECK(pp_gate_inside(g) == 1 && pp_gate_waiting(g) == 0);
    /* leaving when not inside is harmless */
    pp_gate_leave(g, &a[2].w);
    pp_gate_leave(NULL, &a[2].w);
    CHECK(pp_gate_inside(g) == 1);

    /* no bound */
    pp_gate_set_max(g, 0);
    for (int i = 0; i < 4; i++)
        CHECK(pp_gate_enter(g, &a[i].w, on_admit));
    CHECK(pp_gate_inside(g) == 5);

    pp_gate_close(g);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    return CHECK_RESULT();
}
