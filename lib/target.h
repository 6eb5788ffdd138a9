/*
 * target: one PostgreSQL server pgpulse watches.
 *
 * A target owns its DSN and one connection (conn.h), and runs the catalog
 * on its own schedule: each cycle reads the server's role (primary or
 * standby) first, then sends every query that is due, applies to that role
 * and has a variant for that server version, as one pipelined batch. Each
 * query's rows are rendered at once into exposition text with spans that
 * name the family of each run of samples (family.h); the page builder only
 * concatenates. A query that fails, a role change and a lost connection
 * all remove the affected series: nothing stale is ever served.
 *
 * Connection loss is retried with exponential backoff and jitter, capped so
 * a server that comes back is collected again within one interval. The
 * owner is told after every change of what the target would render
 * (on_change), and renders self-metrics from the read-only state below.
 */
#ifndef PGPULSE_TARGET_H
#define PGPULSE_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "dsn.h"
#include "gate.h"
#include "gen.h"
#include "history.h"
#include "log.h"
#include "piece.h"
#include "rows.h"

typedef struct pp_target pp_target;

/* What the server said it is at the last cycle's probe. */
typedef enum pp_role {
    PP_ROLE_UNKNOWN, /* not connected, or not asked yet */
    PP_ROLE_PRIMARY, /* pg_is_in_recovery() is false: writable */
    PP_ROLE_STANDBY, /* in recovery: a hot standby */
} pp_role;

/* What one catalog query last produced on this target. Read-only outside
 * target.c. */
typedef struct pp_query_state {
    pp_piece *piece;     /* the last good run's samples (a reference), NULL = none */
    bool valid;          /* piece belongs on the page */
    bool capped;         /* the last run hit the series cap (logged once) */
    bool failing;        /* the last run failed (for one log line per change) */
    double next_due;     /* loop time in seconds */
    double duration;     /* seconds the last run took */
    double last_success; /* unix time of the last success, 0 = never */
    uint64_t errors;     /* runs that failed */
    uint64_t dropped;    /* samples dropped by the series cap or bad names */
} pp_query_state;

/* state is true for a change of the target's state (connected, lost,
 * role, first attempt over), which readers want at once; false for new
 * data from a collection. */
typedef void (*pp_target_change_cb)(pp_target *t, void *data, bool state);

/* Takes ownership of dsn's contents (the caller's struct is zeroed) and a
 * reference to gen. gate (connection attempts in flight; may be NULL) and
 * log are borrowed and must outlive the target. */
pp_target *pp_target_new(uv_loop_t *loop, pp_dsn *dsn, pp_gen *gen, pp_gate *gate,
                         pp_target_change_cb on_change, void *data, const pp_log *log);

/* The bound on connections to the target's server it shares with the
 * other targets of that server (borrowed, NULL: none). A target that is
 * not its server's leader holds a seat while connected; after a cycle, if
 * others wait for one, it disconnects until its next query is due,
 * keeping its results on the page and pg_up at 1 ("resting"). */
void pp_target_set_seats(pp_target *t, pp_gate *seats);

/* Starts connecting after delay seconds (spreads many targets out). */
void pp_target_start(pp_target *t, double delay);

/* Switches the target to another generation (a reload) without touching
 * its connection: its series are dropped and every query of the new
 * catalog is due at once. A batch in flight finishes on the old
 * generation and its results are discarded. Takes a reference to gen. */
void pp_target_set_gen(pp_target *t, pp_gen *gen);

/* Whether the first connection attempt since the target was created has
 * ended: a first collection completed, or the connection failed. */
bool pp_target_settled(const pp_target *t);

/* Stops everything and frees the target once its handles are closed.
 * Accepts NULL. No callback is called after this. */
void pp_target_close(pp_target *t);

/* Read-only state for rendering. */
const pp_dsn *pp_target_dsn(const pp_target *t);
bool pp_target_up(const pp_target *t);
pp_role pp_target_role(const pp_target *t);
/* The generation the target's query states belong to (borrowed). */
pp_gen *pp_target_gen(const pp_target *t);
/* The catalog the target's query states belong to (borrowed). */
const pp_catalog *pp_target_catalog(const pp_target *t);
size_t pp_target_nqueries(const pp_target *t);
const pp_query_state *pp_target_query(const pp_target *t, size_t i);
/* The label block of the target's own series (pg_up, pgpulse_query_*):
 * "server=\"h:5432\",datname=\"db\"" with several targets, else "". */
const char *pp_target_label(const pp_target *t);

/* Whether this target runs its server's server-scope queries (one target
 * per server does; see the registry). A target that stops leading drops
 * their series; one that starts runs them at once. */
bool pp_target_leader(const pp_target *t);

/* The databases the target found on its server at its last discovery
 * (leaders with auto-discovery only), borrowed until its next cycle; seq
 * changes whenever the list does. */
const char *const *pp_target_discovered(const pp_target *t, size_t *n, uint64_t *seq);
void pp_target_set_leader(pp_target *t, bool leader);
double pp_target_last_cycle_duration(const pp_target *t);
bool pp_target_last_cycle_error(const pp_target *t);
uint64_t pp_target_cycles(const pp_target *t);
/* unix time the last cycle completed, 0 = never since the last connect */
double pp_target_last_collect(const pp_target *t);
/* The self-metrics renderer's pieces for this target: the lines of its
 * per-query and per-collector series, with their spans, and the change
 * count and generation they were rendered at. A target changes once per
 * cycle and a page is built more often: formatting 120,000 values, or
 * even copying their text on the loop, per build is what kept the loop
 * busy at 1,000 targets; the page builder takes the pieces like a query's.
 * Two pieces: what changes at every run (durations, times) and what
 * seldom does (counts of errors and drops, collectors' success), kept
 * while it is the same so the page build can reuse it.
 * Owned by the target, written by selfmetrics.c. */
#define PP_SELF_PIECES 2
typedef struct pp_target_self {
    pp_piece *piece[PP_SELF_PIECES]; /* references, NULL until rendered */
    uint64_t changes;
    uint64_t gen_id;
} pp_target_self;

pp_target_self *pp_target_self_cache(pp_target *t);
/* The dashboard's recent history of the target (history.h): owned by the
 * target, made at the first call with PP_TARGET_HISTORY_SLOTS slots,
 * written by status.c when a collection ends, counted in
 * pp_target_memory. */
#define PP_TARGET_HISTORY_SLOTS 180
pp_history *pp_target_history(pp_target *t);

/* Counts every change of what the target shows (state, results, labels). */
uint64_t pp_target_changes(const pp_target *t);

/* Bytes of heap the target holds for its rendered results and scratch
 * space (what the per-query series caps bound), plus the largest result
 * libpq held for it in the last cycle. */
size_t pp_target_memory(const pp_target *t);

#endif
