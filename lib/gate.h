/*
 * gate: a bound on how many targets attempt a connection at once.
 *
 * A counting semaphore with a FIFO of waiters, on the loop thread. A
 * target enters before it resolves and connects (the TLS handshake and
 * SCRAM authentication included) and leaves once the attempt has ended,
 * either way; 1,000 targets starting together then reach their servers a
 * bounded number at a time instead of as a storm that times itself out.
 * A waiter is admitted on a later loop turn, never from inside the call
 * that freed the place, so callbacks do not re-enter.
 */
#ifndef PGPULSE_GATE_H
#define PGPULSE_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

typedef struct pp_gate pp_gate;
typedef struct pp_gate_waiter pp_gate_waiter;

typedef void (*pp_gate_cb)(pp_gate_waiter *w);

/* Embedded in its owner; zero it before first use. */
struct pp_gate_waiter {
    pp_gate_waiter *prev, *next;
    pp_gate_cb cb;
    bool queued;
    bool inside;
};

/* max 0 means no bound. */
pp_gate *pp_gate_new(uv_loop_t *loop, size_t max);
/* Frees the gate once its timer is closed; waiters are forgotten (their
 * owners are going away too). Accepts NULL. */
void pp_gate_close(pp_gate *g);
void pp_gate_set_max(pp_gate *g, size_t max);

/* Enters at once (returns true) or queues w and calls cb(w) on a later
 * loop turn when admitted (returns false). */
bool pp_gate_enter(pp_gate *g, pp_gate_waiter *w, pp_gate_cb cb);
/* w's attempt has ended: frees its place. Does nothing if w is not inside
 * (or g is NULL); takes w out of the queue if it is waiting. */
void pp_gate_leave(pp_gate *g, pp_gate_waiter *w);

size_t pp_gate_inside(const pp_gate *g);
size_t pp_gate_waiting(const pp_gate *g);

#endif
