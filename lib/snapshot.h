/*
 * snapshot: the page /metrics serves, built from the targets' rendered
 * results and published as an immutable, refcounted object.
 *
 * A page holds the exposition text and its gzip form. It is allocated with
 * h2o's shared-memory refcount: the snapshot holds one reference to the
 * current page, every request that sends it links one more to its pool, so
 * a page outlives a swap for as long as a slow client still reads it. The
 * refcount is not atomic: publish and release happen on the loop thread
 * only; gzip of a large page runs on the libuv thread pool and hands the
 * result back in the after-work callback.
 *
 * New data is debounced: marking the snapshot dirty schedules one build
 * soon, however many targets finished meanwhile. A change of state
 * (connected, lost, role, a reload) is published on the next loop turn.
 * Either way builds are spaced by a multiple of what the last one cost, and
 * a build never runs twice at once. A slow timer also refreshes the page
 * so process and freshness metrics stay current when no target changes.
 */
#ifndef PGPULSE_SNAPSHOT_H
#define PGPULSE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "log.h"
#include "registry.h"
#include "selfmetrics.h"

/* A target as the page saw it: what role endpoints answer from. */
typedef struct pp_page_target {
    char *name; /* owned: the target's server label, e.g. "10.0.0.1:5432" */
    bool up;
    pp_role role;
} pp_page_target;

typedef struct pp_page {
    char *plain;      /* owned: the exposition text, or NULL for a big page,
                         which is kept gzipped only (readers inflate it) */
    size_t plain_len; /* the text's length either way */
    char *gz;         /* owned: the same, gzip-encoded */
    size_t gz_len;
    pp_page_target *targets; /* owned, in registry order */
    size_t ntargets;
    struct pp_page_parts *parts; /* owned: where each family is in gz, for
                                    the next build to reuse; or NULL */
} pp_page;

typedef struct pp_snapshot pp_snapshot;

/* All arguments are borrowed and must outlive the snapshot (status may be
 * NULL); the registry is read at every build. Builds and publishes a first
 * page at once. */
pp_snapshot *pp_snapshot_new(uv_loop_t *loop, const pp_registry *reg, pp_process_status *status,
                             const pp_log *log);

/* Something a page shows has changed: rebuild soon; urgent for a change of
 * state, which is published on the next loop turn. */
void pp_snapshot_mark_dirty(pp_snapshot *s, bool urgent);

/* For many small pages (probed targets'): stops the periodic rebuild, so
 * the page is built when what it shows changes (once per collection of
 * its targets) or when read through pp_snapshot_fresh past a given age,
 * and builds even a small page on the thread pool: 200 targets that
 * collect together would otherwise compress 200 pages in a row on the
 * loop. */
void pp_snapshot_no_refresh(pp_snapshot *s);

/* The current page, rebuilt first (on the loop; a big page on the thread
 * pool, and the previous page meanwhile) when something changed or it is
 * max_age_ms old. Never NULL. */
pp_page *pp_snapshot_fresh(pp_snapshot *s, uint64_t max_age_ms);

/* Whether the current page shows every target of the registry settled
 * (its first connection attempt over): the registry is settled and the
 * page's build started no sooner than it became so. What a scrape waits
 * for, of /metrics and of /probe alike. */
bool pp_snapshot_ready(const pp_snapshot *s);

/* The current page, never NULL. Borrowed: a caller that keeps it past the
 * current callback takes a reference with h2o_mem_addref_shared or
 * h2o_mem_link_shared (it is an h2o shared allocation). */
pp_page *pp_snapshot_current(const pp_snapshot *s);

/* Stops the timers, drops the current page and frees the snapshot once its
 * handles and any gzip in flight are done. Accepts NULL. */
void pp_snapshot_close(pp_snapshot *s);

/* Builds the plain text of a page (exposed for tests and benchmarks). */
void pp_snapshot_render(pp_buf *out, const pp_registry *reg, const pp_process_status *status);

/* gzip-encodes in[0..n) into a malloc'd buffer. Returns 0 or -1. */
int pp_snapshot_gzip(const char *in, size_t n, char **out, size_t *out_len);

#endif
