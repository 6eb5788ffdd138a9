/*
 * turn: how much of one turn of the event loop query results may take.
 *
 * libuv runs the callbacks of every socket that is ready in one turn, in
 * the order the kernel lists them. At 1,000 targets the results of a few
 * collections often arrive together, and a turn spent 5-20 ms rendering
 * them: a scrape whose socket was ready in that turn waited for all of
 * it. With a turn budget, a connection whose results would start after
 * the budget is spent leaves its socket unread: the kernel reports it
 * again at once (epoll is level-triggered), and the next turn, which
 * also serves whatever else is ready, takes it first. Nothing is lost or
 * reordered within a connection; the same work is spread over more
 * turns.
 *
 * The loop's data points at its pp_turn (the exporter sets it); a loop
 * whose data is NULL has no budget. Any other use of the loop's data
 * would be read as a pp_turn: nothing else sets it (uv_loop_init leaves
 * it as it was, so zero it).
 */
#ifndef PGPULSE_TURN_H
#define PGPULSE_TURN_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct pp_turn {
    uv_check_t check; /* after the turn's I/O callbacks: a new turn begins */
    uint64_t started; /* hrtime of the turn's first budgeted callback, 0: none yet */
    uint64_t budget_ns;
} pp_turn;

/* Starts watching loop's turns (the check handle does not keep the loop
 * alive) and makes loop->data point at t. */
void pp_turn_init(pp_turn *t, uv_loop_t *loop, double budget_ms);

/* Whether a callback about to process results on loop should leave them
 * to the next turn. The first one of a turn never does. */
bool pp_turn_spent(uv_loop_t *loop);

/* Closes the check handle; cb may be NULL. */
void pp_turn_close(pp_turn *t, uv_close_cb cb);

#endif
