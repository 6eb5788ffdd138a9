/*
 * selfmetrics: the exporter's own series, rendered at the end of each page:
 * pg_up and the pg_exporter_* family postgres_exporter users alert on, the
 * per-query and per-target freshness metrics pgpulse adds, and process_*.
 */
#ifndef PGPULSE_SELFMETRICS_H
#define PGPULSE_SELFMETRICS_H

#include <stddef.h>

#include "buf.h"
#include "catalog.h"
#include "target.h"

/* Appends every self-metric family for the targets (borrowed). now is
 * unix time, used for data ages. */
void pp_selfmetrics_render(pp_buf *out, pp_target *const *targets, size_t n, const pp_catalog *cat,
                           double now);

#endif
