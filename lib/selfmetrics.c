/*
 * selfmetrics: see selfmetrics.h. Per-target series carry the target's
 * server label when there are several targets (pp_target_label), so the
 * same rules hold as for catalog series.
 */
#include "selfmetrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "procstat.h"
#include "render.h"

/* name{<server label>[,extra]} value */
static void line(pp_buf *b, const char *name, const char *server, const char *extra_name,
                 const char *extra_value, double v)
{
    pp_buf_puts(b, name);
    bool any = server[0] != '\0' || extra_name != NULL;
    if (any) {
        pp_buf_putc(b, '{');
        pp_buf_puts(b, server);
        if (extra_name != NULL) {
            if (server[0] != '\0')
                pp_buf_putc(b, ',');
            pp_buf_puts(b, extra_name);
            pp_buf_append(b, "=\"", 2);
            pp_render_label_value(b, extra_value, strlen(extra_value));
            pp_buf_putc(b, '"');
        }
        pp_buf_putc(b, '}');
    }
    pp_buf_putc(b, ' ');
    pp_render_double(b, v);
    pp_buf_putc(b, '\n');
}

/* Drops a header that turned out to have no samples. */
static void truncate_to(pp_buf *b, size_t mark)
{
    b->len = mark;
    if (b->data != NULL)
        b->data[mark] = '\0';
}

typedef double (*target_value)(const pp_target *t, double now);

static double v_up(const pp_target *t, double now)
{
    (void)now;
    return pp_target_up(t) ? 1 : 0;
}

static double v_error(const pp_target *t, double now)
{
    (void)now;
    return pp_target_last_cycle_error(t) ? 1 : 0;
}

/* Durations to the microsecond and times to the millisecond: finer
 * digits are noise of the clocks' arithmetic, and a value with 17 of them
 * costs printf and strtod to write (a few of these per query and target,
 * rendered at every run: 10 % of the loop's time at 1,000 targets). */
static double to_us(double v)
{
    return round(v * 1e6) / 1e6;
}

static double to_ms(double v)
{
    return round(v * 1e3) / 1e3;
}

static double v_duration(const pp_target *t, double now)
{
    (void)now;
    return to_us(pp_target_last_cycle_duration(t));
}

static double v_cycles(const pp_target *t, double now)
{
    (void)now;
    return (double)pp_target_cycles(t);
}

static double v_age(const pp_target *t, double now)
{
    double last = pp_target_last_collect(t);
    return last > 0 ? to_ms(now - last) : NAN;
}

static double v_memory(const pp_target *t, double now)
{
    (void)now;
    return (double)pp_target_memory(t);
}

/* The per-target families, in page order. */
static const struct {
    const char *name;
    const char *help;
    pp_metric_type type;
    target_value fn;
} target_families[PP_SELF_TARGET_VALUES] = {
    {"pg_up",
     "Whether the last scrape of metrics from PostgreSQL was able to connect to the server (1 "
     "for yes, 0 for no).",
     PP_METRIC_GAUGE, v_up},
    {"pg_exporter_last_scrape_error",
     "Whether the last scrape of metrics from PostgreSQL resulted in an error (1 for error, 0 "
     "for success).",
     PP_METRIC_GAUGE, v_error},
    {"pg_exporter_last_scrape_duration_seconds",
     "Duration of the last scrape of metrics from PostgreSQL.", PP_METRIC_GAUGE, v_duration},
    {"pg_exporter_scrapes_total", "Total number of times PostgreSQL was scraped for metrics.",
     PP_METRIC_COUNTER, v_cycles},
    {"pgpulse_target_data_age_seconds",
     "Seconds since the target's last completed collection cycle.", PP_METRIC_GAUGE, v_age},
    {"pgpulse_target_memory_bytes",
     "Heap bytes the target holds for its rendered series and scratch space.", PP_METRIC_GAUGE,
     v_memory},
};

void pp_selfmetrics_capture(pp_self_values *out, const pp_registry *reg, double now)
{
    out->n = pp_registry_count(reg);
    out->rows = pp_malloc((out->n ? out->n : 1) * sizeof(*out->rows));
    pp_buf_init(&out->labels);
    for (size_t i = 0; i < out->n; i++) {
        const pp_target *t = pp_registry_at(reg, i);
        const char *label = pp_target_label(t);
        out->rows[i].label = out->labels.len;
        pp_buf_append(&out->labels, label, strlen(label) + 1);
        for (size_t k = 0; k < PP_SELF_TARGET_VALUES; k++)
            out->rows[i].v[k] = target_families[k].fn(t, now);
    }
}

void pp_selfmetrics_render_values(pp_buf *out, const pp_self_values *v)
{
    if (v->n == 0) {
        /* no data source at all: say so rather than print nothing */
        pp_render_header(out, "pg_up", target_families[0].help, PP_METRIC_GAUGE);
        pp_buf_puts(out, "pg_up 0\n");
    }
    for (size_t k = 0; k < PP_SELF_TARGET_VALUES; k++) {
        size_t mark = out->len;
        bool any = false;
        pp_render_header(out, target_families[k].name, target_families[k].help,
                         target_families[k].type);
        for (size_t i = 0; i < v->n; i++)
            if (!isnan(v->rows[i].v[k])) {
                line(out, target_families[k].name, v->labels.data + v->rows[i].label, NULL, NULL,
                     v->rows[i].v[k]);
                any = true;
            }
        if (!any)
            truncate_to(out, mark);
    }
}

void pp_selfmetrics_values_free(pp_self_values *v)
{
    free(v->rows);
    v->rows = NULL;
    v->n = 0;
    pp_buf_deinit(&v->labels);
}

typedef double (*query_value)(const pp_query_state *s);

static double q_duration(const pp_query_state *s)
{
    return s->last_success > 0 || s->errors > 0 ? to_us(s->duration) : NAN;
}

static double q_errors(const pp_query_state *s)
{
    return (double)s->errors;
}

static double q_success(const pp_query_state *s)
{
    return s->last_success > 0 ? to_ms(s->last_success) : NAN;
}

static double q_dropped(const pp_query_state *s)
{
    return (double)s->dropped;
}

#define QUERY_FAMILIES 4
#define PP_SELF_FAMILIES (QUERY_FAMILIES + 2)

static const struct {
    const char *name;
    const char *help;
    pp_metric_type type;
    query_value fn; /* NULL: a per-collector family */
} query_families[PP_SELF_FAMILIES] = {
    {"pgpulse_query_duration_seconds", "Seconds the last run of the query took on the server.",
     PP_METRIC_GAUGE, q_duration},
    {"pgpulse_query_errors_total", "Runs of the query that failed or timed out.", PP_METRIC_COUNTER,
     q_errors},
    {"pgpulse_query_last_success_timestamp_seconds",
     "Unix time of the query's last successful run.", PP_METRIC_GAUGE, q_success},
    {"pgpulse_query_series_dropped_total",
     "Samples dropped by the series cap or because their name was invalid.", PP_METRIC_COUNTER,
     q_dropped},
    /* postgres_exporter's, one series per collector that ran here */
    {"pg_scrape_collector_duration_seconds", "postgres_exporter: Duration of a collector scrape.",
     PP_METRIC_GAUGE, NULL},
    {"pg_scrape_collector_success", "postgres_exporter: Whether a collector succeeded.",
     PP_METRIC_GAUGE, NULL},
};

/* pg_scrape_collector_{duration_seconds,success}{collector} from the query
 * states: a collector ran on this target when one of its queries has a
 * result on the page or failed last time (a query that does not apply
 * here, by role, version or scope, has neither); its duration is the sum
 * of its queries' last durations, and it succeeded when none failed. */
static void collector_lines(pp_target *t, const pp_catalog *cat, pp_buf *duration, pp_buf *success)
{
    size_t n = cat->ncollectors;
    if (n == 0)
        return;
    double *sum = pp_calloc(n, sizeof(*sum));
    unsigned char *ran = pp_calloc(n, 1), *failed = pp_calloc(n, 1);
    for (size_t q = 0; q < cat->nqueries; q++) {
        size_t k = cat->queries[q].collector_index;
        const pp_query_state *s = pp_target_query(t, q);
        if (k == (size_t)-1 || !(s->valid || s->failing))
            continue;
        ran[k] = 1;
        sum[k] += s->duration;
        failed[k] |= s->failing;
    }
    for (size_t k = 0; k < n; k++) {
        if (!ran[k])
            continue;
        line(duration, query_families[QUERY_FAMILIES].name, pp_target_label(t), "collector",
             cat->collectors[k], to_us(sum[k]));
        line(success, query_families[QUERY_FAMILIES + 1].name, pp_target_label(t), "collector",
             cat->collectors[k], failed[k] ? 0 : 1);
    }
    free(sum);
    free(ran);
    free(failed);
}

/* Whether a self family's values change at every run (PP_SELF_PIECES:
 * they go in the first piece). */
static const bool every_run[PP_SELF_FAMILIES] = {true, false, true, false, true, false};

size_t pp_selfmetrics_target_pieces(pp_target *t, pp_gen *gen, pp_piece **out)
{
    pp_target_self *c = pp_target_self_cache(t);
    bool same_gen = c->gen_id == gen->id;
    if (c->piece[0] != NULL && c->changes == pp_target_changes(t) && same_gen)
        goto done;
    if (pp_target_gen(t) != gen) { /* between generations: nothing it could say */
        for (size_t part = 0; part < PP_SELF_PIECES; part++) {
            pp_piece_unref(c->piece[part]);
            c->piece[part] = NULL;
        }
        return 0;
    }
    const pp_catalog *cat = pp_target_catalog(t);
    pp_buf text[PP_SELF_FAMILIES];
    for (size_t k = 0; k < PP_SELF_FAMILIES; k++)
        pp_buf_init(&text[k]);
    collector_lines(t, cat, &text[QUERY_FAMILIES], &text[QUERY_FAMILIES + 1]);
    for (size_t k = 0; k < QUERY_FAMILIES; k++)
        for (size_t q = 0; q < cat->nqueries; q++) {
            double v = query_families[k].fn(pp_target_query(t, q));
            if (!isnan(v))
                line(&text[k], query_families[k].name, pp_target_label(t), "query",
                     cat->queries[q].name, v);
        }
    pp_span spans[PP_SELF_FAMILIES];
    for (size_t part = 0; part < PP_SELF_PIECES; part++) {
        pp_buf all = PP_BUF_INIT;
        size_t nspans = 0;
        for (size_t k = 0; k < PP_SELF_FAMILIES; k++) {
            if (every_run[k] != (part == 0) || text[k].len == 0)
                continue;
            const char *name = query_families[k].name;
            uint32_t id = pp_families_intern(gen->families, name, strlen(name),
                                             query_families[k].help, query_families[k].type);
            if (id != PP_FAMILY_NONE) { /* NONE: a catalog family of that name and another type */
                spans[nspans++] =
                    (pp_span){.family = id, .len = (uint32_t)text[k].len, .off = (uint32_t)all.len};
                pp_buf_append(&all, text[k].data, text[k].len);
            }
        }
        /* a piece of another generation has other family ids */
        pp_piece *prev = same_gen ? c->piece[part] : NULL;
        pp_piece *p = pp_piece_new_or_same(prev, all.data, all.len, spans, nspans);
        pp_piece_unref(c->piece[part]);
        c->piece[part] = p;
        pp_buf_deinit(&all);
    }
    for (size_t k = 0; k < PP_SELF_FAMILIES; k++)
        pp_buf_deinit(&text[k]);
    c->changes = pp_target_changes(t);
    c->gen_id = gen->id;
done:
    for (size_t part = 0; part < PP_SELF_PIECES; part++)
        out[part] = c->piece[part];
    return PP_SELF_PIECES;
}

static void process_metric(pp_buf *b, const char *name, const char *help, pp_metric_type type,
                           double v)
{
    if (v < 0)
        return;
    pp_render_header(b, name, help, type);
    line(b, name, "", NULL, NULL, v);
}

/* postgres_exporter's name, HELP and labels */
static void user_queries(pp_buf *b, const pp_process_status *status)
{
    const char *name = "pg_exporter_user_queries_load_error";
    pp_render_header(b, name,
                     "Whether the user queries file was loaded and parsed successfully "
                     "(1 for error, 0 for success).",
                     PP_METRIC_GAUGE);
    pp_buf_puts(b, name);
    pp_buf_puts(b, "{filename=\"");
    pp_render_label_value(b, status->user_queries_file, strlen(status->user_queries_file));
    pp_buf_puts(b, "\",hashsum=\"");
    pp_render_label_value(b, status->user_queries_hash, strlen(status->user_queries_hash));
    pp_buf_puts(b, "\"} ");
    pp_render_double(b, status->user_queries_error ? 1 : 0);
    pp_buf_putc(b, '\n');
}

const double pp_loop_lag_bounds[PP_LOOP_LAG_BUCKETS] = {0.001, 0.005, 0.01, 0.025,
                                                        0.05,  0.1,   0.5,  1};

void pp_loop_lag_record(pp_loop_lag *l, double lag, uint64_t now_ms, uint64_t window_ms)
{
    if (lag < 0)
        lag = 0;
    for (size_t i = 0; i < PP_LOOP_LAG_BUCKETS; i++)
        if (lag <= pp_loop_lag_bounds[i])
            l->buckets[i]++;
    l->count++;
    l->sum += lag;
    if (now_ms - l->window_at >= window_ms) {
        l->max_shown = l->max > lag ? l->max : lag;
        l->max = 0;
        l->window_at = now_ms;
        return;
    }
    if (lag > l->max)
        l->max = lag;
    if (l->max > l->max_shown)
        l->max_shown = l->max; /* a stall shows at once, not a window later */
}

static void loop_lag(pp_buf *out, const pp_loop_lag *l)
{
    static const char name[] = "pgpulse_loop_lag_seconds";
    pp_render_header(out, name,
                     "How late the event loop ran a timer due every 100 ms: high values mean "
                     "the loop was blocked.",
                     PP_METRIC_HISTOGRAM);
    char le[32];
    for (size_t i = 0; i < PP_LOOP_LAG_BUCKETS; i++) {
        pp_buf b = PP_BUF_INIT;
        pp_render_double(&b, pp_loop_lag_bounds[i]);
        snprintf(le, sizeof(le), "%s", b.data);
        pp_buf_deinit(&b);
        line(out, "pgpulse_loop_lag_seconds_bucket", "", "le", le, (double)l->buckets[i]);
    }
    line(out, "pgpulse_loop_lag_seconds_bucket", "", "le", "+Inf", (double)l->count);
    line(out, "pgpulse_loop_lag_seconds_sum", "", NULL, NULL, l->sum);
    line(out, "pgpulse_loop_lag_seconds_count", "", NULL, NULL, (double)l->count);
    process_metric(out, "pgpulse_loop_lag_max_seconds",
                   "The longest the event loop ran a timer late in the last 10 seconds.",
                   PP_METRIC_GAUGE, l->max_shown);
}

void pp_selfmetrics_render(pp_buf *out, const pp_registry *reg, const pp_process_status *status,
                           double now)
{
    pp_self_values v;
    pp_selfmetrics_capture(&v, reg, now);
    pp_selfmetrics_render_values(out, &v);
    pp_selfmetrics_values_free(&v);
    pp_selfmetrics_render_process(out, reg, status);
}

void pp_selfmetrics_render_process(pp_buf *out, const pp_registry *reg,
                                   const pp_process_status *status)
{
    /* the exporter's own series; a probe's page (no status) has none */
    if (status == NULL)
        return;
    process_metric(out, "pgpulse_targets_connecting",
                   "Connection attempts, up to the end of the first collection, in flight (at most "
                   "--collection.max-connecting).",
                   PP_METRIC_GAUGE, (double)pp_registry_connecting(reg));
    process_metric(out, "pgpulse_targets_waiting_to_connect",
                   "Targets waiting for a free connection attempt.", PP_METRIC_GAUGE,
                   (double)pp_registry_waiting(reg));

    pp_procstat st;
    pp_procstat_read(&st);
    process_metric(out, "process_cpu_seconds_total",
                   "Total user and system CPU time spent in "
                   "seconds.",
                   PP_METRIC_COUNTER, st.cpu_seconds);
    process_metric(out, "process_max_fds", "Maximum number of open file descriptors.",
                   PP_METRIC_GAUGE, st.max_fds);
    process_metric(out, "process_open_fds", "Number of open file descriptors.", PP_METRIC_GAUGE,
                   st.open_fds);
    process_metric(out, "process_resident_memory_bytes", "Resident memory size in bytes.",
                   PP_METRIC_GAUGE, st.resident_bytes);
    process_metric(out, "process_start_time_seconds",
                   "Start time of the process since unix epoch in seconds.", PP_METRIC_GAUGE,
                   st.start_time);
    process_metric(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
                   PP_METRIC_GAUGE, st.virtual_bytes);

    process_metric(out, "pgpulse_config_last_reload_successful",
                   "Whether the last configuration reload attempt was successful (1) or not "
                   "(0).",
                   PP_METRIC_GAUGE, status->reload_ok ? 1 : 0);
    process_metric(out, "pgpulse_config_last_reload_success_timestamp_seconds",
                   "Unix time of the last successful configuration load.", PP_METRIC_GAUGE,
                   status->reload_success_ts);
    if (status->user_queries_file != NULL)
        user_queries(out, status);
    process_metric(out, "pgpulse_http_connections", "HTTP client connections open now.",
                   PP_METRIC_GAUGE, (double)status->http.open);
    process_metric(out, "pgpulse_http_connections_rejected_total",
                   "HTTP connections closed at once because --web.max-connections were open.",
                   PP_METRIC_COUNTER, (double)status->http.rejected);
    loop_lag(out, &status->lag);
    process_metric(out, "pgpulse_page_builds_total",
                   "Pages built (every target's latest results and these series, gzipped).",
                   PP_METRIC_COUNTER, (double)status->page.builds);
    process_metric(out, "pgpulse_page_build_seconds_total",
                   "Seconds spent building pages, from gathering to publishing.", PP_METRIC_COUNTER,
                   status->page.build_seconds);
    process_metric(out, "pgpulse_page_last_build_seconds",
                   "Seconds the last page build took, from gathering to publishing.",
                   PP_METRIC_GAUGE, status->page.last_build_seconds);
    pp_render_header(out, "pgpulse_page_build_bytes_total",
                     "Plain bytes of big pages' families built, by how: copied compressed from "
                     "the page before (none of the family's series changed) or compressed.",
                     PP_METRIC_COUNTER);
    line(out, "pgpulse_page_build_bytes_total", "", "how", "reused",
         (double)status->page.bytes_reused);
    line(out, "pgpulse_page_build_bytes_total", "", "how", "compressed",
         (double)status->page.bytes_compressed);
    process_metric(out, "pgpulse_http_write_timeouts_total",
                   "HTTP connections cut because a response was not read within "
                   "--web.write-timeout.",
                   PP_METRIC_COUNTER, (double)status->http.write_timeouts);
    pp_render_header(out, "pgpulse_build_info",
                     "A metric with a constant '1' value labeled by the pgpulse version.",
                     PP_METRIC_GAUGE);
    line(out, "pgpulse_build_info", "", "version", PGPULSE_VERSION, 1);
}
