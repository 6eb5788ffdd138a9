/*
 * registry: the set of targets pgpulse collects, keyed by identity.
 *
 * A target's identity is (host, port, dbname, user) of its DSN. Start-up,
 * reload and (later) auto-discovery and /probe add and remove targets only
 * through pp_registry_apply, which makes the set equal to a list of DSNs:
 * a target whose DSN is unchanged keeps its connection and switches to the
 * new generation; one whose identity is the same but whose other options
 * changed (a password, sslmode) is replaced; one no longer listed closes.
 * Every reader (the page, the self-metrics, the HTTP side) reads targets
 * through the accessors below, in a stable order: the order of the list
 * last applied.
 *
 * Targets of one server (same host:port label) elect one leader that runs
 * the server-scope queries. With auto-discovery the leader also lists the
 * server's databases every cycle; the registry then makes the set equal to
 * the configured list plus one target per database found (the server's
 * first configured DSN with its dbname), on a later loop turn.
 *
 * Loop thread only. The registry owns the targets and a reference to the
 * current generation.
 */
#ifndef PGPULSE_REGISTRY_H
#define PGPULSE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "dsn.h"
#include "gen.h"
#include "log.h"
#include "target.h"

typedef struct pp_registry pp_registry;

/* state: see pp_target_change_cb. t is NULL when the set itself changed. */
typedef void (*pp_registry_change_cb)(pp_registry *r, pp_target *t, bool state, void *data);

/* log is borrowed and must outlive the registry. */
pp_registry *pp_registry_new(uv_loop_t *loop, const pp_log *log, pp_registry_change_cb on_change,
                             void *data);

/* Counts of what pp_registry_apply did. */
typedef struct pp_registry_diff {
    size_t kept, added, replaced, removed;
} pp_registry_diff;

/* Makes the set of targets equal to dsns[0..n) (their contents are taken;
 * the array stays the caller's) collecting with gen (a reference is
 * taken). New targets start connecting, spread over up to spread seconds.
 * The caller has checked that no two DSNs share an identity. */
void pp_registry_apply(pp_registry *r, pp_dsn *dsns, size_t n, pp_gen *gen, double spread,
                       pp_registry_diff *diff);

/* The current generation (borrowed), NULL before the first apply. */
pp_gen *pp_registry_gen(const pp_registry *r);
size_t pp_registry_count(const pp_registry *r);
/* Borrowed; valid until the next apply or close. */
pp_target *pp_registry_at(const pp_registry *r, size_t i);

/* Connection attempts in flight, and targets waiting to start one
 * (bounded by the generation's max_connecting). */
size_t pp_registry_connecting(const pp_registry *r);
size_t pp_registry_waiting(const pp_registry *r);

/* Whether every target's first connection attempt has ended. */
bool pp_registry_settled(const pp_registry *r);
/* uv_hrtime() when the registry last became settled (0 while it is not). */
uint64_t pp_registry_settled_at(const pp_registry *r);

/* Whether two DSNs name the same target. */
bool pp_registry_same_identity(const pp_dsn *a, const pp_dsn *b);

/* Closes every target and frees the registry; no callback after this.
 * Accepts NULL. */
void pp_registry_close(pp_registry *r);

#endif
