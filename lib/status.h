/*
 * status: the dashboard's data, read from what the targets last published.
 *
 * Two jobs, both on the loop thread and both reading only the few metric
 * families the dashboard shows (found by family id in the targets' current
 * pieces), never a database:
 *
 *  - pp_status_sample, called when a target's collection ends, appends one
 *    sample (replication lag, transactions per second, connections) to the
 *    target's history ring, at most every PP_STATUS_SAMPLE_SECONDS;
 *  - pp_status_render writes the JSON document GET /api/v1/status serves
 *    (docs/dashboard.md describes it): per server its reachability, role,
 *    version, uptime and clock, replication and WAL receiver state, the
 *    rows of every user table per database, and the history.
 *
 * Everything from the database is escaped as JSON strings (invalid UTF-8
 * becomes U+FFFD; <, > and & are written as \u escapes).
 */
#ifndef PGPULSE_STATUS_H
#define PGPULSE_STATUS_H

#include "buf.h"
#include "registry.h"
#include "target.h"

#define PP_STATUS_SAMPLE_SECONDS 5.0
/* A standby this far behind, or a primary's standby, is shown lagging
 * (the thresholds of deploy/prometheus/alerts.yml). */
#define PP_STATUS_LAG_SECONDS 60.0
#define PP_STATUS_LAG_BYTES (64.0 * 1024 * 1024)

/* Records a history sample of t if a collection ended since the last one
 * and PP_STATUS_SAMPLE_SECONDS have passed. now is unix time. */
void pp_status_sample(pp_target *t, double now);

/* Appends the JSON document for the registry's targets (borrowed).
 * metrics_path is the telemetry path to link to, or NULL where /metrics
 * is not served. now is unix time. */
void pp_status_render(pp_buf *out, const pp_registry *reg, const char *metrics_path, double now);

/* Appends s[0..n) as a JSON string, quotes included (exposed for tests). */
void pp_status_json_string(pp_buf *out, const char *s, size_t n);

#endif
