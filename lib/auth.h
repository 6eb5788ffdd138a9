/*
 * auth: HTTP basic authentication against bcrypt hashes
 * (basic_auth_users of --web.config.file), without blocking the loop.
 *
 * A bcrypt check costs tens of milliseconds at cost 10, which the loop
 * must never spend. Two measures, because each covers what the other
 * cannot:
 * - a bounded in-memory cache of credentials that were accepted, keyed by
 *   a keyed SHA-256 of (user, password): Prometheus sends the same
 *   credentials on every scrape, so after the first one a scrape costs one
 *   SHA-256 on the loop, as exporter-toolkit also caches;
 * - everything else (a first login, a wrong password, an unknown user,
 *   which no cache of successes can answer) is checked on libuv's thread
 *   pool, at most AUTH_MAX_RUNNING at once so that a flood of bad
 *   passwords cannot take the threads that host name lookups and page
 *   assembly need; the request waits and is answered when its check ends.
 *
 * An unknown user costs a bcrypt run too (against a configured hash), and
 * hash outputs are compared in constant time, so neither timing nor the
 * answer tells which user names exist. Passwords are wiped from memory
 * once checked and never logged.
 */
#ifndef PGPULSE_AUTH_H
#define PGPULSE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "webconfig.h"

typedef struct pp_auth pp_auth;

typedef enum pp_auth_result {
    PP_AUTH_OK,
    PP_AUTH_DENIED,
    PP_AUTH_PENDING,   /* pp_auth_check only: the callback will tell */
    PP_AUTH_CANCELLED, /* callbacks only: pp_auth_cancel_waiting */
} pp_auth_result;

/* Called on the loop thread, once, for a check that was PP_AUTH_PENDING. */
typedef void (*pp_auth_cb)(void *data, pp_auth_result result);

/* A checker for users (copied; n > 0). */
pp_auth *pp_auth_new(uv_loop_t *loop, const pp_web_user *users, size_t n);

/* Frees a; no check may be pending (assert). Accepts NULL. */
void pp_auth_free(pp_auth *a);

/* Checks an Authorization header value (value[0, len), not NUL-terminated;
 * NULL when the request has none). PP_AUTH_OK or PP_AUTH_DENIED at once,
 * or PP_AUTH_PENDING: cb(data, ...) follows on a later loop turn. */
pp_auth_result pp_auth_check(pp_auth *a, const char *value, size_t len, pp_auth_cb cb, void *data);

/* Checks not yet answered (running or waiting). */
size_t pp_auth_pending(const pp_auth *a);

/* Answers every check still waiting for a thread with PP_AUTH_CANCELLED,
 * now; those already running finish normally. For shutdown. */
void pp_auth_cancel_waiting(pp_auth *a);

#endif
