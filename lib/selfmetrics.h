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

/* What building the page costs (kept by the snapshot). */
typedef struct pp_page_stats {
    uint64_t builds;
    double build_seconds; /* all builds together, wall time */
    double last_build_seconds;
    /* plain bytes of big pages (gzipped as parts): copied compressed
     * from the page before, or compressed anew */
    uint64_t bytes_reused;
    uint64_t bytes_compressed;
} pp_page_stats;

/* How late the loop runs a timer that should fire every interval. */
#define PP_LOOP_LAG_BUCKETS 8
extern const double pp_loop_lag_bounds[PP_LOOP_LAG_BUCKETS];

typedef struct pp_loop_lag {
    uint64_t buckets[PP_LOOP_LAG_BUCKETS]; /* cumulative, as exposed */
    uint64_t count;
    double sum;         /* seconds */
    double max;         /* seconds, over the current window */
    double max_shown;   /* the previous window's max (what the page shows) */
    uint64_t window_at; /* uv_now when the current window started */
} pp_loop_lag;

/* Records one measured lateness (seconds) at loop time now_ms; the max
 * shown is that of the last complete window of window_ms. */
void pp_loop_lag_record(pp_loop_lag *l, double lag, uint64_t now_ms, uint64_t window_ms);

/* Process-wide state the page reports besides the targets'. */
typedef struct pp_process_status {
    bool reload_ok;           /* the last reload (or the start) succeeded */
    double reload_success_ts; /* unix time of the last successful load */
    pp_http_stats http;
    pp_page_stats page;
    pp_loop_lag lag;
    /* --extend.query-path, for pg_exporter_user_queries_load_error: the
     * file as given (owned by whoever owns the status; NULL: the flag is
     * not set and the metric is absent), the hex SHA-256 of its bytes (""
     * when unreadable) and whether its last load failed */
    char *user_queries_file;
    char user_queries_hash[65];
    bool user_queries_error;
} pp_process_status;

/* Appends the self-metric families that change all the time (pg_up,
 * pg_exporter_*, data ages, process and exporter-wide series) for the
 * registry's targets (borrowed). status may be NULL (a probe's page: no
 * exporter-wide series). now is unix time, used for data ages. The
 * per-query and per-collector series come as pieces: see below. Equal to
 * capture, render_values and render_process in turn. */
void pp_selfmetrics_render(pp_buf *out, const pp_registry *reg, const pp_process_status *status,
                           double now);

/* The per-target part of it in two steps: the values are read on the loop
 * (cheap), and the text is made from them alone, on any thread. Turning
 * 6,000 numbers into text took 7 ms of the loop at 1,000 targets, at every
 * page build, and a scrape that came in then waited for it. */
#define PP_SELF_TARGET_VALUES 6
typedef struct pp_self_values {
    struct {
        size_t label;                    /* offset into labels */
        double v[PP_SELF_TARGET_VALUES]; /* NaN: no sample */
    } * rows;
    size_t n;
    pp_buf labels; /* each target's label text, NUL-terminated */
} pp_self_values;

void pp_selfmetrics_capture(pp_self_values *out, const pp_registry *reg, double now);
void pp_selfmetrics_render_values(pp_buf *out, const pp_self_values *v);
void pp_selfmetrics_values_free(pp_self_values *v);

/* The exporter-wide part (nothing when status is NULL). */
void pp_selfmetrics_render_process(pp_buf *out, const pp_registry *reg,
                                   const pp_process_status *status);

/* The target's per-query and per-collector series as pieces whose spans
 * use gen's family table (the self families are interned into it), cached
 * until the target changes; borrowed (take a reference to keep them).
 * Puts PP_SELF_PIECES pieces in out and returns how many, or 0 while the
 * target still collects with another generation than gen. */
size_t pp_selfmetrics_target_pieces(pp_target *t, pp_gen *gen, pp_piece **out);

#endif
