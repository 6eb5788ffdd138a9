/*
 * selfmetrics: the exporter's own series, rendered at the end of each page:
 * pg_up and the pg_exporter_* family postgres_exporter users alert on, the
 * per-query and per-target freshness metrics pgpulse adds, and process_*.
 */
#ifndef PGPULSE_SELFMETRICS_H
#define PGPULSE_SELFMETRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "registry.h"

/* Counters the HTTP side keeps (owned by whoever owns the server). */
typedef struct pp_http_stats {
    uint64_t rejected;       /* connections closed at once: over the cap */
    uint64_t write_timeouts; /* connections cut: a response took too long */
    size_t open;             /* connections open now */
} pp_http_stats;

/* Process-wide state the page reports besides the targets'. */
typedef struct pp_process_status {
    bool reload_ok;           /* the last reload (or the start) succeeded */
    double reload_success_ts; /* unix time of the last successful load */
    pp_http_stats http;
} pp_process_status;

/* Appends every self-metric family for the registry's targets (borrowed).
 * status may be NULL. now is unix time, used for data ages. */
void pp_selfmetrics_render(pp_buf *out, const pp_registry *reg, const pp_process_status *status,
                           double now);

#endif
