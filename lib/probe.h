/*
 * probe: the targets /probe?target=…&auth_module=… collects.
 *
 * postgres_exporter opens a new connection and runs every query for each
 * probe. Here the first probe of a target registers it: it gets a registry
 * of its own (one target, its persistent connection, the catalog on its
 * schedule) and a snapshot of its own, and that first probe is answered
 * once its first collection is on its page. Every later probe is served
 * from that page, with no query. A target not probed for the idle timeout
 * is dropped with its connection. Which servers may be probed is bounded
 * by an allow-list (hostmatch.h), how many at once by a cap.
 *
 * A probe's page has the target's own series without a server label
 * (Prometheus adds the probe's instance) and no process or exporter-wide
 * series, as upstream. Loop thread only.
 */
#ifndef PGPULSE_PROBE_H
#define PGPULSE_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "authmod.h"
#include "gen.h"
#include "hostmatch.h"
#include "log.h"
#include "snapshot.h"

typedef struct pp_probes pp_probes;
typedef struct pp_probe pp_probe;

/* log is borrowed and must outlive the set. */
pp_probes *pp_probes_new(uv_loop_t *loop, const pp_log *log);

/* What probes collect with, at start-up and at every reload. Takes a
 * reference to gen and ownership of modules' and allow's contents. Known
 * targets switch to the new generation and keep their connections, unless
 * their module or the allow-list no longer admits them: then they leave. */
void pp_probes_configure(pp_probes *p, pp_gen *gen, pp_auth_modules *modules, pp_hostmatch *allow,
                         double idle_timeout, size_t max_targets);

/* The probe for target (any DSN form, or host:port/db) with auth module
 * module (NULL or "" for none), registered if new. On a refusal returns
 * NULL with an HTTP status (400, 403, 503) and a message that holds no
 * secret. The probe is held (see pp_probe_release) for the caller. */
pp_probe *pp_probes_get(pp_probes *p, const char *target, const char *module, int *status,
                        char *msg, size_t msglen);

/* Whether the probe's page shows its first collection (or the target has
 * left: then the page is as it was). */
bool pp_probe_ready(const pp_probe *e);
/* The probe's page: built when its target last changed, never by a query;
 * rebuilt now (from cached results) only if it is older than 30 s. */
pp_page *pp_probe_page(pp_probe *e);
/* Drops the caller's hold from pp_probes_get. */
void pp_probe_release(pp_probe *e);

/* Targets registered now. */
size_t pp_probes_count(const pp_probes *p);

/* Closes every target; frees the set (and every probe once released). */
void pp_probes_close(pp_probes *p);

#endif
