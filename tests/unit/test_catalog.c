/*
 * test_catalog: the query catalog loader.
 *
 * The shipped catalog must load and produce postgres_exporter's families
 * with the right types; every kind of bad input must be refused with the
 * exact "file:line:column:" of the problem and leave the catalog as it was;
 * variants are picked by server version; a directory loads in name order.
 * Run from the source directory (ctest does) so that queries/ is found.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "check.h"
#include "config.h"

static char err[1024];

static const pp_catalog_query *query(const pp_catalog *c, const char *name)
{
    for (size_t i = 0; i < c->nqueries; i++)
        if (strcmp(c->queries[i].name, name) == 0)
            return &c->queries[i];
    return NULL;
}

static const pp_catalog_column *column(const pp_catalog_query *q, const char *name)
{
    for (size_t i = 0; q != NULL && i < q->ncolumns; i++)
        if (strcmp(q->columns[i].name, name) == 0)
            return &q->columns[i];
    return NULL;
}

static int load(pp_catalog *c, const char *name, const char *yaml)
{
    err[0] = '\0';
    return pp_catalog_load_buffer(c, name, yaml, strlen(yaml), err, sizeof err);
}

/* Loading yaml into c fails with a message that starts with prefix and
 * contains what, and c keeps the queries and families it had. */
static void expect_error_in(pp_catalog *c, const char *yaml, const char *prefix, const char *what,
                            int line)
{
    size_t nq = c->nqueries, nf = c->nfamilies;
    int rc = load(c, "t.yaml", yaml);
    if (rc != -1 || strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err, what) == NULL) {
        fprintf(stderr, "%s:%d: load returned %d\n  got:  \"%s\"\n  want: \"%s...%s...\"\n",
                __FILE__, line, rc, err, prefix, what);
        check_failures++;
    }
    CHECK(c->nqueries == nq);
    CHECK(c->nfamilies == nf);
}

static void expect_error_at(const char *yaml, const char *prefix, const char *what, int line)
{
    pp_catalog *c = pp_catalog_new();
    expect_error_in(c, yaml, prefix, what, line);
    pp_catalog_free(c);
}

#define EXPECT_ERROR(yaml, prefix, what) expect_error_at(yaml, prefix, what, __LINE__)
#define EXPECT_ERROR_IN(c, yaml, prefix, what) expect_error_in(c, yaml, prefix, what, __LINE__)

static void check_family(const pp_catalog *c, const char *name, pp_metric_type type)
{
    size_t i = pp_catalog_find_family(c, name);
    if (i == (size_t)-1) {
        fprintf(stderr, "%s:%d: family %s missing\n", __FILE__, __LINE__, name);
        check_failures++;
        return;
    }
    if (c->families[i].type != type) {
        fprintf(stderr, "%s:%d: family %s has type %d, want %d\n", __FILE__, __LINE__, name,
                (int)c->families[i].type, (int)type);
        check_failures++;
    }
}

static void test_builtin(void)
{
    pp_catalog *c = pp_catalog_new();
    int rc = pp_catalog_load_builtin(c, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "builtin catalog: %s\n", err);
    CHECK(rc == 0);

    const pp_metric_type G = PP_METRIC_GAUGE, C = PP_METRIC_COUNTER;
    static const char *const db_counters[] = {"xact_commit",
                                              "xact_rollback",
                                              "blks_read",
                                              "blks_hit",
                                              "tup_returned",
                                              "tup_fetched",
                                              "tup_inserted",
                                              "tup_updated",
                                              "tup_deleted",
                                              "conflicts",
                                              "temp_files",
                                              "temp_bytes",
                                              "deadlocks",
                                              "blk_read_time",
                                              "blk_write_time",
                                              "stats_reset",
                                              "active_time_seconds_total"};
    char name[128];
    check_family(c, "pg_stat_database_numbackends", G);
    for (size_t i = 0; i < sizeof db_counters / sizeof db_counters[0]; i++) {
        snprintf(name, sizeof name, "pg_stat_database_%s", db_counters[i]);
        check_family(c, name, C);
    }
    check_family(c, "pg_stat_activity_count", G);
    check_family(c, "pg_stat_activity_max_tx_duration", G);
    check_family(c, "pg_database_size_bytes", G);
    check_family(c, "pg_database_connection_limit", G);
    check_family(c, "pg_locks_count", G);
    static const char *const bgw[] = {
        "checkpoints_timed",    "checkpoints_req",    "checkpoint_write_time",
        "checkpoint_sync_time", "buffers_checkpoint", "buffers_clean",
        "maxwritten_clean",     "buffers_backend",    "buffers_backend_fsync",
        "buffers_alloc",        "stats_reset"};
    for (size_t i = 0; i < sizeof bgw / sizeof bgw[0]; i++) {
        snprintf(name, sizeof name, "pg_stat_bgwriter_%s_total", bgw[i]);
        check_family(c, name, C);
    }
    check_family(c, "pg_replication_is_replica", G);
    check_family(c, "pg_replication_lag_seconds", G);
    check_family(c, "pg_replication_last_replay_seconds", G);
    check_family(c, "pg_stat_replication_pg_current_wal_lsn_bytes", G);
    check_family(c, "pg_stat_replication_pg_wal_lsn_diff", G);
    check_family(c, "pg_postmaster_start_time_seconds", G);
    check_family(c, "pg_roles_connection_limit", G);
    static const char *const tbl_counters[] = {
        "seq_scan",     "seq_tup_read",     "idx_scan",      "idx_tup_fetch",
        "n_tup_ins",    "n_tup_upd",        "n_tup_del",     "n_tup_hot_upd",
        "vacuum_count", "autovacuum_count", "analyze_count", "autoanalyze_count"};
    static const char *const tbl_gauges[] = {
        "n_live_tup",       "n_dead_tup",       "n_mod_since_analyze",
        "last_vacuum",      "last_autovacuum",  "last_analyze",
        "last_autoanalyze", "index_size_bytes", "table_size_bytes"};
    for (size_t i = 0; i < sizeof tbl_counters / sizeof tbl_counters[0]; i++) {
        snprintf(name, sizeof name, "pg_stat_user_tables_%s", tbl_counters[i]);
        check_family(c, name, C);
    }
    for (size_t i = 0; i < sizeof tbl_gauges / sizeof tbl_gauges[0]; i++) {
        snprintf(name, sizeof name, "pg_stat_user_tables_%s", tbl_gauges[i]);
        check_family(c, name, G);
    }
    static const char *const io[] = {"heap", "idx", "toast", "tidx"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "pg_statio_user_tables_%s_blocks_read", io[i]);
        check_family(c, name, C);
        snprintf(name, sizeof name, "pg_statio_user_tables_%s_blocks_hit", io[i]);
        check_family(c, name, C);
    }
    /* What the HA cluster's dashboards and alerts read (deploy/prometheus). */
    check_family(c, "pg_replication_lag_bytes", G);
    check_family(c, "pg_stat_database_heap_blks_hit", C);
    check_family(c, "pg_stat_database_heap_blks_read", C);
    static const char *const repl_lag[] = {"write", "flush", "replay"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "pg_stat_replication_%s_lag_seconds", repl_lag[i]);
        check_family(c, name, G);
    }
    static const char *const slots[] = {"active",
                                        "pg_wal_lsn_diff",
                                        "slot_current_wal_lsn",
                                        "slot_confirmed_flush_lsn",
                                        "slot_is_active",
                                        "safe_wal_size_bytes",
                                        "wal_status"};
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++) {
        snprintf(name, sizeof name, "pg_replication_slots_%s", slots[i]);
        check_family(c, name, G);
    }
    static const char *const walrcv[] = {"info",
                                         "receive_start_lsn",
                                         "receive_start_tli",
                                         "flushed_lsn",
                                         "received_tli",
                                         "last_msg_send_time",
                                         "last_msg_receipt_time",
                                         "last_msg_receipt_age_seconds",
                                         "latest_end_lsn",
                                         "latest_end_time"};
    for (size_t i = 0; i < sizeof walrcv / sizeof walrcv[0]; i++) {
        snprintf(name, sizeof name, "pg_stat_wal_receiver_%s", walrcv[i]);
        check_family(c, name, G);
    }
    /* The collectors added for postgres_exporter v0.20.1 (types from its
     * reference; pg_static and confl_active_logicalslot are untyped
     * upstream, gauges here). */
    static const struct {
        const char *name;
        pp_metric_type type;
    } more[] = {
        {"pg_stat_archiver_archived_count", C},
        {"pg_stat_archiver_failed_count", C},
        {"pg_stat_archiver_last_archive_age", G},
        {"pg_stat_database_conflicts_confl_tablespace", C},
        {"pg_stat_database_conflicts_confl_lock", C},
        {"pg_stat_database_conflicts_confl_snapshot", C},
        {"pg_stat_database_conflicts_confl_bufferpin", C},
        {"pg_stat_database_conflicts_confl_deadlock", C},
        {"pg_stat_database_conflicts_confl_active_logicalslot", G},
        {"pg_static", G},
        {"pg_wal_segments", G},
        {"pg_wal_size_bytes", G},
        {"pg_xlog_location_bytes", G},
        {"pg_stat_statements_calls_total", C},
        {"pg_stat_statements_seconds_total", C},
        {"pg_stat_statements_rows_total", C},
        {"pg_stat_statements_block_read_seconds_total", C},
        {"pg_stat_statements_block_write_seconds_total", C},
        {"pg_stat_statements_query_id", G},
        {"pg_long_running_transactions", G},
        {"pg_long_running_transactions_oldest_timestamp_seconds", G},
        {"pg_stat_activity_autovacuum_timestamp_seconds", G},
        {"pg_database_wraparound_age_datfrozenxid_seconds", G},
        {"pg_database_wraparound_age_datminmxid_seconds", G},
        {"pg_statio_user_indexes_idx_blks_read_total", C},
        {"pg_statio_user_indexes_idx_blks_hit_total", C},
        {"pg_stat_progress_vacuum_phase", G},
        {"pg_stat_progress_vacuum_heap_blks", G},
        {"pg_stat_progress_vacuum_heap_blks_scanned", G},
        {"pg_stat_progress_vacuum_heap_blks_vacuumed", G},
        {"pg_stat_progress_vacuum_index_vacuums", G},
        {"pg_stat_progress_vacuum_max_dead_tuples", G},
        {"pg_stat_progress_vacuum_num_dead_tuples", G},
        {"pg_buffercache_summary_buffers_used", G},
        {"pg_buffercache_summary_buffers_unused", G},
        {"pg_buffercache_summary_buffers_dirty", G},
        {"pg_buffercache_summary_buffers_pinned", G},
        {"pg_buffercache_summary_usagecount_avg", G},
        {"pg_process_idle_seconds", PP_METRIC_HISTOGRAM},
    };
    for (size_t k = 0; k < sizeof more / sizeof more[0]; k++)
        check_family(c, more[k].name, more[k].type);
    static const char *const ckpt[] = {
        "num_timed",         "num_requested",      "restartpoints_timed",
        "restartpoints_req", "restartpoints_done", "write_time",
        "sync_time",         "buffers_written",    "stats_reset"};
    for (size_t k = 0; k < sizeof ckpt / sizeof ckpt[0]; k++) {
        snprintf(name, sizeof name, "pg_stat_checkpointer_%s_total", ckpt[k]);
        check_family(c, name, C);
    }
    /* What the dashboard shows besides (dashboard.yaml). */
    check_family(c, "pg_server_time_seconds", G);
    check_family(c, "pg_table_rows", G);
    /* Nothing else: every static family is one of the above. */
    CHECK(c->nfamilies == 1 + 17 + 2 + 2 + 1 + 11 + 3 + 2 + 1 + 12 + 9 + 8 + 1 + 3 + 3 + 7 + 10 +
                              2 + sizeof more / sizeof more[0] + sizeof ckpt / sizeof ckpt[0]);

    /* Headers are pre-rendered with upstream's HELP text. */
    size_t i = pp_catalog_find_family(c, "pg_locks_count");
    if (i != (size_t)-1) {
        CHECK_STR(c->families[i].header,
                  "# HELP pg_locks_count Number of locks\n# TYPE pg_locks_count gauge\n");
        CHECK(c->families[i].header_len == strlen(c->families[i].header));
    }
    i = pp_catalog_find_family(c, "pg_stat_activity_count");
    if (i != (size_t)-1)
        CHECK_STR(c->families[i].help, "number of connections in this state");

    /* Labels of the zero-filled activity query. */
    const pp_catalog_query *q = query(c, "pg_stat_activity");
    CHECK(q != NULL);
    static const char *const act_labels[] = {"datname",          "state",        "usename",
                                             "application_name", "backend_type", "wait_event_type",
                                             "wait_event"};
    for (size_t k = 0; k < 7; k++) {
        const pp_catalog_column *col = column(q, act_labels[k]);
        CHECK(col != NULL && col->role == PP_COL_LABEL && strcmp(col->label, act_labels[k]) == 0);
    }
    const pp_catalog_column *col = column(q, "count");
    CHECK(col != NULL && col->family == pp_catalog_find_family(c, "pg_stat_activity_count"));

    /* pg_settings is the one dynamic query. */
    q = query(c, "pg_settings");
    CHECK(q != NULL && q->dynamic && strcmp(q->namespace, "pg_settings") == 0);
    CHECK(column(q, "name") != NULL && column(q, "name")->role == PP_COL_NAME);
    CHECK(column(q, "help") != NULL && column(q, "help")->role == PP_COL_HELP);
    CHECK(column(q, "value") != NULL && column(q, "value")->role == PP_COL_GAUGE);
    for (size_t k = 0; k < c->nqueries; k++)
        CHECK(c->queries[k].dynamic == (strcmp(c->queries[k].name, "pg_settings") == 0));

    /* How fresh each area is, which of postgres_exporter's collectors it
     * belongs to (static and database_conflicts are its "default
     * metrics", no collector there) and the servers it runs on: 13 to 17
     * (V_ALL), from 16 or 17 on, or none of them (xlog_location). */
    enum { V_ALL, V_16, V_17, V_NONE };
    static const struct {
        const char *name;
        double interval;
        const char *collector;
        int versions;
    } freshness[] = {
        {"pg_stat_activity", 15, "stat_activity", V_ALL},
        {"pg_locks", 15, "locks", V_ALL},
        {"pg_replication", 15, "replication", V_ALL},
        {"pg_stat_replication", 15, "stat_replication", V_ALL},
        {"pg_stat_database", 15, "stat_database", V_ALL},
        {"pg_stat_bgwriter", 15, "stat_bgwriter", V_ALL},
        {"pg_database", 60, "database", V_ALL},
        {"pg_stat_user_tables", 60, "stat_user_tables", V_ALL},
        {"pg_statio_user_tables", 60, "statio_user_tables", V_ALL},
        {"pg_settings", 60, "settings", V_ALL},
        {"pg_postmaster", 60, "postmaster", V_ALL},
        {"pg_roles", 60, "roles", V_ALL},
        {"pg_replication_lag_bytes_primary", 15, "replication", V_ALL},
        {"pg_replication_lag_bytes_standby", 15, "replication", V_ALL},
        {"pg_stat_database_heap_blks", 15, "stat_database", V_ALL},
        {"pg_replication_slots", 15, "replication_slots", V_ALL},
        {"pg_replication_slots_slot", 15, "replication_slots", V_ALL},
        {"pg_replication_slots_wal_status", 15, "replication_slots", V_ALL},
        {"pg_stat_wal_receiver", 15, "stat_wal_receiver", V_ALL},
        {"pg_stat_archiver", 15, "stat_archiver", V_ALL},
        {"pg_stat_database_conflicts", 15, "database_conflicts", V_ALL},
        {"pg_static", 60, "static", V_ALL},
        {"pg_wal", 15, "wal", V_ALL},
        {"pg_xlog_location", 15, "xlog_location", V_NONE},
        {"pg_stat_statements", 60, "stat_statements", V_ALL},
        {"pg_stat_statements_query_id", 60, "stat_statements", V_ALL},
        {"pg_long_running_transactions", 15, "long_running_transactions", V_ALL},
        {"pg_stat_activity_autovacuum", 15, "stat_activity_autovacuum", V_ALL},
        {"pg_database_wraparound", 60, "database_wraparound", V_ALL},
        {"pg_statio_user_indexes", 60, "statio_user_indexes", V_ALL},
        {"pg_stat_progress_vacuum_phase", 15, "stat_progress_vacuum", V_ALL},
        {"pg_stat_progress_vacuum", 15, "stat_progress_vacuum", V_ALL},
        {"pg_stat_checkpointer", 15, "stat_checkpointer", V_17},
        {"pg_buffercache_summary", 60, "buffercache_summary", V_16},
        {"pg_process_idle_buckets", 15, "process_idle", V_ALL},
        {"pg_process_idle", 15, "process_idle", V_ALL},
        {"pg_server_time", 15, "dashboard", V_ALL},
        {"pg_table_rows", 15, "dashboard", V_ALL},
    };
    CHECK(c->nqueries == sizeof freshness / sizeof freshness[0]);
    for (size_t k = 0; k < sizeof freshness / sizeof freshness[0]; k++) {
        q = query(c, freshness[k].name);
        CHECK(q != NULL);
        if (q == NULL)
            continue;
        CHECK(q->interval == freshness[k].interval);
        CHECK(q->timeout > 0 && q->timeout <= q->interval);
        CHECK_STR(q->collector, freshness[k].collector);
        CHECK(strcmp(c->collectors[q->collector_index], q->collector) == 0);
        CHECK(q->default_metrics == (strcmp(q->collector, "static") == 0 ||
                                     strcmp(q->collector, "database_conflicts") == 0));
        int v = freshness[k].versions;
        if (v == V_NONE)
            CHECK(pp_catalog_pick(q, 90600) != NULL);
        CHECK((pp_catalog_pick(q, 130000) != NULL) == (v == V_ALL));
        CHECK((pp_catalog_pick(q, 150000) != NULL) == (v == V_ALL));
        CHECK((pp_catalog_pick(q, 160000) != NULL) == (v == V_ALL || v == V_16));
        CHECK((pp_catalog_pick(q, 170000) != NULL) == (v != V_NONE));
        CHECK(strncmp(q->file, "queries/", 8) == 0);
    }
    /* one entry per collector, each named by some query */
    for (size_t k = 0; k < c->ncollectors; k++)
        for (size_t j = 0; j < k; j++)
            CHECK(strcmp(c->collectors[j], c->collectors[k]) != 0);
    /* every collector with a flag has its queries, plus the two groups of
     * default metrics */
    static const char *const flagged[] = {
#define NAME(n, d) #n,
        PP_COLLECTORS(NAME)
#undef NAME
    };
    for (size_t k = 0; k < PP_NCOLLECTORS; k++) {
        bool found = false;
        for (size_t j = 0; j < c->ncollectors; j++)
            found = found || strcmp(c->collectors[j], flagged[k]) == 0;
        if (!found) {
            fprintf(stderr, "%s:%d: no query of collector %s\n", __FILE__, __LINE__, flagged[k]);
            check_failures++;
        }
    }
    /* + static and database_conflicts (legacy in upstream), + dashboard */
    CHECK(c->ncollectors == PP_NCOLLECTORS + 3);
    /* the histogram's samples, from two queries */
    q = query(c, "pg_process_idle_buckets");
    CHECK_STR(column(q, "bucket")->metric, "pg_process_idle_seconds_bucket");
    CHECK(column(q, "bucket")->family == pp_catalog_find_family(c, "pg_process_idle_seconds"));
    q = query(c, "pg_process_idle");
    CHECK_STR(column(q, "seconds_sum")->metric, "pg_process_idle_seconds_sum");
    CHECK_STR(column(q, "seconds_count")->metric, "pg_process_idle_seconds_count");
    CHECK(column(q, "seconds_count")->family ==
          pp_catalog_find_family(c, "pg_process_idle_seconds"));
    CHECK(query(c, "pg_stat_replication")->runs_on == PP_RUNS_ON_PRIMARY);
    CHECK(query(c, "pg_replication")->runs_on == PP_RUNS_ON_ANY);
    /* one family fed by a query per role, never both on one server */
    CHECK(query(c, "pg_replication_lag_bytes_primary")->runs_on == PP_RUNS_ON_PRIMARY);
    CHECK(query(c, "pg_replication_lag_bytes_standby")->runs_on == PP_RUNS_ON_STANDBY);
    CHECK(query(c, "pg_stat_wal_receiver")->runs_on == PP_RUNS_ON_STANDBY);
    CHECK(query(c, "pg_replication_slots")->runs_on == PP_RUNS_ON_ANY);

    /* Version variants of the shipped catalog. */
    q = query(c, "pg_stat_bgwriter");
    CHECK(pp_catalog_pick(q, 160004) != pp_catalog_pick(q, 170000));
    CHECK(strstr(pp_catalog_pick(q, 160004)->sql, "COALESCE(checkpoints_timed") != NULL);
    CHECK(strstr(pp_catalog_pick(q, 170002)->sql, "COALESCE(checkpoints_timed") == NULL);
    q = query(c, "pg_stat_database");
    CHECK(strstr(pp_catalog_pick(q, 150000)->sql, "active_time / 1000") != NULL);
    CHECK(strstr(pp_catalog_pick(q, 130000)->sql, "active_time / 1000") == NULL);

    /* Loading the same catalog twice collides on every query name. */
    rc = pp_catalog_load_builtin(c, err, sizeof err);
    CHECK(rc == -1);
    CHECK_CONTAINS(err, "is already defined at queries/");
    CHECK(c->nqueries == sizeof freshness / sizeof freshness[0]);

    /* The files on disk are the ones compiled in. */
    pp_catalog *d = pp_catalog_new();
    rc = pp_catalog_load_path(d, "queries", err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "queries/: %s\n", err);
    CHECK(rc == 0);
    CHECK(d->nqueries == c->nqueries && d->nfamilies == c->nfamilies);
    pp_catalog_free(d);
    pp_catalog_free(c);
}

static const char good_prefix[] = "queries:\n"
                                  "  - name: a\n"
                                  "    sql: SELECT 1 AS x\n"
                                  "    columns:\n"
                                  "      x: {role: gauge, help: h}\n";

static bool keep_not_b(const pp_catalog_query *q, void *data)
{
    (void)data;
    return q->collector == NULL || strcmp(q->collector, "b") != 0;
}

/* "server_label": from "defaults" or the query; --dumpmaps lists the label,
 * and a label column of that name is refused. */
static void test_server_label(void)
{
    pp_catalog *c = pp_catalog_new();
    int rc = load(c, "t.yaml",
                  "defaults:\n"
                  "  server_label: true\n"
                  "queries:\n"
                  "  - name: q1\n"
                  "    sql: SELECT 1 AS x\n"
                  "    columns: {x: {role: gauge, help: h}}\n"
                  "  - name: q2\n"
                  "    server_label: false\n"
                  "    sql: SELECT 1 AS y\n"
                  "    columns: {y: {role: gauge, help: h}}\n");
    if (rc != 0)
        fprintf(stderr, "server_label: %s\n", err);
    CHECK(rc == 0);
    CHECK(query(c, "q1")->server_label && !query(c, "q2")->server_label);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    pp_catalog_dump(c, f);
    fclose(f);
    CHECK_CONTAINS(text, "q1\n  collector: q1\n  defined at: t.yaml:4:5\n");
    CHECK_CONTAINS(text, "  labels: server\n  metrics:\n    q1_x gauge: h\n");
    CHECK_CONTAINS(text, "  labels:\n  metrics:\n    q2_y gauge: h\n");
    free(text);
    pp_catalog_free(c);
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    server_label: true\n"
                 "    sql: SELECT 'x' AS server, 1 AS x\n"
                 "    columns: {server: label, x: {role: gauge, help: h}}\n",
                 "t.yaml:5:15: ", "label \"server\" is set by \"server_label\" in query \"a\"");
    EXPECT_ERROR("defaults:\n"
                 "  server_label: yes\n"
                 "queries: []\n",
                 "t.yaml:2:17: ", "bad boolean \"yes\" for \"server_label\" in \"defaults\"");
}

/* "collector" and "default_metrics", in a query and in "defaults". */
static void test_collectors(void)
{
    pp_catalog *c = pp_catalog_new();
    static const char first[] = "defaults:\n"
                                "  collector: b\n"
                                "queries:\n"
                                "  - name: q1\n"
                                "    sql: SELECT 1 AS x\n"
                                "    columns: {x: {role: gauge, help: h}}\n"
                                "  - name: q2\n"
                                "    collector: a\n"
                                "    default_metrics: true\n"
                                "    sql: SELECT 1 AS y\n"
                                "    columns: {y: {role: gauge, help: h}}\n"
                                "  - name: q3\n"
                                "    sql: SELECT 1 AS z\n"
                                "    columns: {z: {role: gauge, help: h}}\n";
    int rc = load(c, "t.yaml", first);
    if (rc != 0)
        fprintf(stderr, "collectors: %s\n", err);
    CHECK(rc == 0);
    rc = load(c, "u.yaml",
              "defaults:\n"
              "  default_metrics: true\n"
              "queries:\n"
              "  - name: my-query.v2\n"
              "    namespace: mq\n"
              "    sql: SELECT 1 AS w\n"
              "    columns: {w: {role: gauge, help: h}}\n"
              "  - name: q5\n"
              "    default_metrics: false\n"
              "    sql: SELECT 1 AS v\n"
              "    columns: {v: {role: gauge, help: h}}\n");
    if (rc != 0)
        fprintf(stderr, "collectors: %s\n", err);
    CHECK(rc == 0);
    /* the file's default, the query's own, the name made fit for a flag */
    CHECK_STR(query(c, "q1")->collector, "b");
    CHECK_STR(query(c, "q2")->collector, "a");
    CHECK_STR(query(c, "q3")->collector, "b");
    CHECK_STR(query(c, "my-query.v2")->collector, "my_query_v2");
    CHECK_STR(query(c, "q5")->collector, "q5");
    CHECK(!query(c, "q1")->default_metrics && query(c, "q2")->default_metrics);
    CHECK(query(c, "my-query.v2")->default_metrics && !query(c, "q5")->default_metrics);
    /* collectors in order of first appearance, each query indexed */
    CHECK(c->ncollectors == 4);
    CHECK_STR(c->collectors[0], "b");
    CHECK_STR(c->collectors[1], "a");
    CHECK(query(c, "q3")->collector_index == 0 && query(c, "q2")->collector_index == 1);
    CHECK(query(c, "q5")->collector_index == 3);
    pp_catalog_free(c);

    /* with a filter, a switched-off query is not loaded: no query, no
     * collector, no family, and its metric names are free for others */
    c = pp_catalog_new();
    pp_catalog_set_keep(c, keep_not_b, NULL);
    CHECK(load(c, "t.yaml", first) == 0);
    CHECK(c->nqueries == 1 && query(c, "q1") == NULL && query(c, "q3") == NULL);
    CHECK(c->ncollectors == 1);
    CHECK_STR(c->collectors[0], "a");
    CHECK(query(c, "q2")->collector_index == 0);
    CHECK(pp_catalog_find_family(c, "q1_x") == (size_t)-1);
    CHECK(pp_catalog_find_family(c, "q2_y") != (size_t)-1);
    rc = load(c, "mine.yaml",
              "queries:\n"
              "  - name: mine\n"
              "    sql: SELECT 1 AS x\n"
              "    columns: {x: {role: counter, help: other, metric: q1_x}}\n");
    CHECK(rc == 0);
    CHECK_STR(c->collectors[query(c, "mine")->collector_index], "mine");
    /* the dump lists what is loaded */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    pp_catalog_dump(c, f);
    fclose(f);
    CHECK_CONTAINS(text, "q2\n  collector: a (default metrics)\n  defined at: t.yaml:7:5\n");
    CHECK_CONTAINS(text, "    q2_y gauge: h\n");
    CHECK_CONTAINS(text, "    q1_x counter: other\n");
    CHECK(strstr(text, "q3") == NULL);
    free(text);

    /* a user query of the legacy format is in no collector */
    static const char legacy[] =
        "pg_mine:\n  query: SELECT 1 AS n\n  metrics:\n    - n: {usage: GAUGE}\n";
    rc = pp_catalog_load_legacy_buffer(c, "legacy.yaml", legacy, strlen(legacy), err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "legacy: %s\n", err);
    CHECK(rc == 0);
    const pp_catalog_query *q = query(c, "legacy:pg_mine");
    CHECK(q != NULL && q->collector == NULL && q->collector_index == (size_t)-1);
    CHECK(c->ncollectors == 2);
    pp_catalog_free(c);

    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    collector: stat statements\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns: {x: {role: gauge, help: h}}\n",
                 "t.yaml:3:16: ",
                 "bad collector \"stat statements\" in query \"a\": expected letters, digits "
                 "and _");
    EXPECT_ERROR("defaults:\n"
                 "  collector: ''\n"
                 "queries: []\n",
                 "t.yaml:2:14: ", "empty \"collector\" in \"defaults\"");
    EXPECT_ERROR("defaults:\n"
                 "  collector: [a]\n"
                 "queries: []\n",
                 "t.yaml:2:14: ", "expected a scalar for \"collector\" in \"defaults\"");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    default_metrics: yes\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns: {x: {role: gauge, help: h}}\n",
                 "t.yaml:3:22: ",
                 "bad boolean \"yes\" for \"default_metrics\" in query \"a\": expected true or "
                 "false");
    EXPECT_ERROR("defaults:\n"
                 "  default_metrics: 1\n"
                 "queries: []\n",
                 "t.yaml:2:20: ", "bad boolean \"1\" for \"default_metrics\" in \"defaults\"");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    collectors: a\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns: {x: {role: gauge, help: h}}\n",
                 "t.yaml:3:5: ", "unknown key \"collectors\" in query \"a\"");
    /* pgpulse renders these itself now */
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns: {x: {role: gauge, help: h, metric: pg_scrape_collector_success}}\n",
                 "t.yaml:4:49: ",
                 "metric \"pg_scrape_collector_success\" is reserved for pgpulse's own metrics "
                 "(names starting with \"pg_scrape_collector_\")");
}

/* bucket, sum and count columns make a histogram. */
static void test_histograms(void)
{
    pp_catalog *c = pp_catalog_new();
    int rc = load(c, "t.yaml",
                  "queries:\n"
                  "  - name: b\n"
                  "    sql: SELECT 'x' AS kind, '1' AS le, 3 AS n\n"
                  "    columns:\n"
                  "      kind: label\n"
                  "      le: label\n"
                  "      n: {role: bucket, metric: my_seconds, help: h}\n"
                  "  - name: s\n"
                  "    sql: SELECT 'x' AS kind, 1.5 AS total, 3 AS n\n"
                  "    columns:\n"
                  "      kind: label\n"
                  "      total: {role: sum, metric: my_seconds, help: h}\n"
                  "      n: {role: count, metric: my_seconds, help: h}\n");
    if (rc != 0)
        fprintf(stderr, "histograms: %s\n", err);
    CHECK(rc == 0);
    CHECK(c->nfamilies == 1);
    check_family(c, "my_seconds", PP_METRIC_HISTOGRAM);
    CHECK_STR(column(query(c, "b"), "n")->metric, "my_seconds_bucket");
    CHECK_STR(column(query(c, "s"), "total")->metric, "my_seconds_sum");
    CHECK_STR(column(query(c, "s"), "n")->metric, "my_seconds_count");
    CHECK_STR(c->families[0].header, "# HELP my_seconds h\n# TYPE my_seconds histogram\n");

    /* a gauge may not take a histogram's name or one of its samples' */
    EXPECT_ERROR_IN(c,
                    "queries:\n"
                    "  - name: g\n"
                    "    sql: SELECT 1 AS x\n"
                    "    columns:\n"
                    "      x: {role: gauge, help: h, metric: my_seconds_count}\n",
                    "t.yaml:5:41: ",
                    "metric \"my_seconds_count\" of query \"g\" would mix with the samples of "
                    "histogram \"my_seconds\" of query \"b\"");
    EXPECT_ERROR_IN(c,
                    "queries:\n"
                    "  - name: g\n"
                    "    sql: SELECT 1 AS x\n"
                    "    columns:\n"
                    "      x: {role: gauge, help: h, metric: my_seconds}\n",
                    "t.yaml:5:17: ",
                    "metric \"my_seconds\" is a gauge in query \"g\" but a histogram in query "
                    "\"b\"");
    pp_catalog_free(c);

    EXPECT_ERROR("queries:\n"
                 "  - name: b\n"
                 "    sql: SELECT 3 AS n\n"
                 "    columns:\n"
                 "      n: {role: bucket, metric: my_seconds, help: h}\n",
                 "t.yaml:5:17: ", "bucket column \"n\" of query \"b\" needs a label column \"le\"");
    EXPECT_ERROR("queries:\n"
                 "  - name: s\n"
                 "    sql: SELECT 3 AS n\n"
                 "    columns:\n"
                 "      n: {role: sum, help: h}\n",
                 "t.yaml:5:7: ",
                 "missing key \"metric\" in column \"n\" of query \"s\": a sum column names its "
                 "histogram");
    EXPECT_ERROR("queries:\n"
                 "  - name: d\n"
                 "    sql: SELECT 'a' AS name, 3 AS n\n"
                 "    columns:\n"
                 "      name: name\n"
                 "      n: {role: count, help: h}\n",
                 "t.yaml:6:17: ", "role count does not apply in query \"d\"");
    /* a gauge family first, then a histogram whose samples it would mix with */
    c = pp_catalog_new();
    CHECK(load(c, "g.yaml",
               "queries:\n"
               "  - name: g\n"
               "    sql: SELECT 1 AS x\n"
               "    columns:\n"
               "      x: {role: gauge, help: h, metric: my_seconds_sum}\n") == 0);
    EXPECT_ERROR_IN(c,
                    "queries:\n"
                    "  - name: s\n"
                    "    sql: SELECT 1 AS t\n"
                    "    columns:\n"
                    "      t: {role: sum, metric: my_seconds, help: h}\n",
                    "t.yaml:5:30: ",
                    "metric \"my_seconds_sum\" of query \"s\" would mix with the samples of "
                    "gauge \"my_seconds_sum\" of query \"g\"");
    pp_catalog_free(c);
}

static void test_errors(void)
{
    /* YAML syntax errors carry libyaml's position, made 1-based. */
    EXPECT_ERROR("queries:\n"
                 "  - name: a: b\n",
                 "t.yaml:2:12: ", "syntax error: mapping values are not allowed in this context");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql: \"SELECT 1\n",
                 "t.yaml:4:1: ", "syntax error: found unexpected end of stream");
    EXPECT_ERROR("queries:\n"
                 "\t- name: a\n",
                 "t.yaml:2:1: ", "found character that cannot start any token");

    EXPECT_ERROR("queries:\n"
                 "  - name: pg_locks\n"
                 "    intervall: 15s\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns:\n"
                 "      x: {role: gauge, help: h}\n",
                 "t.yaml:3:5: ", "unknown key \"intervall\" in query \"pg_locks\"");
    EXPECT_ERROR("query:\n  - name: a\n", "t.yaml:1:1: ", "unknown key \"query\" at top level");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns:\n"
                 "      x: {role: gauge, hlep: h}\n",
                 "t.yaml:5:24: ", "unknown key \"hlep\" in column \"x\" of query \"a\"");

    /* Durations. */
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    interval: 15x\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns: {x: {role: gauge, help: h}}\n",
                 "t.yaml:3:15: ", "bad duration \"15x\" for \"interval\" in query \"a\"");
    EXPECT_ERROR("defaults:\n"
                 "  timeout: 1m30\n"
                 "queries: []\n",
                 "t.yaml:2:12: ", "bad duration \"1m30\" for \"timeout\" in \"defaults\"");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    interval: 0s\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns: {x: {role: gauge, help: h}}\n",
                 "t.yaml:3:15: ", "\"interval\" must be greater than zero in query \"a\"");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    timeout: -1s\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns: {x: {role: gauge, help: h}}\n",
                 "t.yaml:3:14: ", "bad duration \"-1s\"");

    /* Roles and runs_on. */
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns:\n"
                 "      x: gaug\n",
                 "t.yaml:5:10: ", "bad role \"gaug\" in column \"x\" of query \"a\"");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns:\n"
                 "      x:\n"
                 "        role: histogram\n"
                 "        help: h\n",
                 "t.yaml:6:15: ", "bad role \"histogram\"");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    runs_on: leader\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns: {x: {role: gauge, help: h}}\n",
                 "t.yaml:3:14: ", "bad runs_on \"leader\" in query \"a\"");

    /* Duplicate keys (libyaml accepts them silently; the yaml module does
     * not, before the catalog reads anything). */
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql: SELECT 1 AS x\n"
                 "    sql: SELECT 2 AS x\n"
                 "    columns: {x: {role: gauge, help: h}}\n",
                 "t.yaml:4:5: ", "duplicate key \"sql\" (first at line 3)");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns:\n"
                 "      x: {role: gauge, help: h}\n"
                 "      x: label\n",
                 "t.yaml:6:7: ", "duplicate key \"x\" (first at line 5)");

    /* A query name is defined once, in the same file or across files. */
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns: {x: {role: gauge, help: h}}\n"
                 "  - name: a\n"
                 "    sql: SELECT 1 AS y\n"
                 "    columns: {y: {role: gauge, help: h}}\n",
                 "t.yaml:5:11: ", "query \"a\" is already defined at t.yaml:2:5");
    pp_catalog *c = pp_catalog_new();
    CHECK(load(c, "first.yaml", good_prefix) == 0);
    EXPECT_ERROR_IN(c,
                    "queries:\n"
                    "  - name: a\n"
                    "    namespace: other\n"
                    "    sql: SELECT 1 AS x\n"
                    "    columns: {x: {role: gauge, help: h}}\n",
                    "t.yaml:2:11: ", "query \"a\" is already defined at first.yaml:2:5");

    /* The same metric from two queries must agree on type and HELP. */
    EXPECT_ERROR_IN(
        c,
        "queries:\n"
        "  - name: b\n"
        "    sql: SELECT 1 AS y\n"
        "    columns:\n"
        "      y: {role: counter, help: h, metric: a_x}\n",
        "t.yaml:5:17: ", "metric \"a_x\" is a counter in query \"b\" but a gauge in query \"a\"");
    EXPECT_ERROR_IN(c,
                    "queries:\n"
                    "  - name: b\n"
                    "    sql: SELECT 1 AS y\n"
                    "    columns:\n"
                    "      y: {role: gauge, help: other, metric: a_x}\n",
                    "t.yaml:5:30: ", "metric \"a_x\" has a different help text in query \"b\"");
    /* Agreeing on both is fine: one family, two queries. */
    CHECK(load(c, "second.yaml",
               "queries:\n"
               "  - name: b\n"
               "    sql: SELECT 1 AS y\n"
               "    columns:\n"
               "      y: {role: gauge, help: h, metric: a_x}\n") == 0);
    CHECK(c->nqueries == 2 && c->nfamilies == 1);
    CHECK(c->queries[1].columns[0].family == 0);
    pp_catalog_free(c);

    /* Anchors and aliases are refused outright. */
    EXPECT_ERROR("defaults: &d\n"
                 "  interval: 15s\n"
                 "queries: []\n",
                 "t.yaml:1:11: ", "anchor \"&d\" is not allowed");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns: {x: {role: gauge, help: h}}\n"
                 "  - name: b\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns: *cols\n",
                 "t.yaml:7:14: ", "alias \"*cols\" is not allowed");

    /* Required keys. */
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    columns: {x: {role: gauge, help: h}}\n",
                 "t.yaml:2:5: ", "missing key \"sql\" (or \"versions\") in query \"a\"");
    EXPECT_ERROR("queries:\n"
                 "  - sql: SELECT 1\n",
                 "t.yaml:2:5: ", "missing key \"name\" in entry 1 of \"queries\"");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql: SELECT 1\n",
                 "t.yaml:2:5: ", "missing key \"columns\" in query \"a\"");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    versions:\n"
                 "      - min_version: 140000\n"
                 "    columns: {x: {role: gauge, help: h}}\n",
                 "t.yaml:4:9: ", "missing key \"sql\" in entry 1 of \"versions\" of query \"a\"");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns: {x: {role: gauge}}\n",
                 "t.yaml:4:15: ", "missing key \"help\" in column \"x\" of query \"a\"");

    /* Scalars where scalars belong. */
    EXPECT_ERROR("queries:\n"
                 "  - name: [a]\n",
                 "t.yaml:2:11: ", "expected a scalar for \"name\" in entry 1 of \"queries\"");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql:\n"
                 "      - SELECT 1\n"
                 "    columns: {x: {role: gauge, help: h}}\n",
                 "t.yaml:4:7: ", "expected a scalar for \"sql\" in query \"a\", found a sequence");

    /* Names must be valid exposition names. */
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns: {x: {role: gauge, help: h, metric: 1bad}}\n",
                 "t.yaml:4:49: ", "invalid metric name \"1bad\"");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns:\n"
                 "      db-name: label\n"
                 "      x: {role: gauge, help: h}\n",
                 "t.yaml:5:7: ", "invalid label name \"db-name\" in column \"db-name\"");
    EXPECT_ERROR("queries:\n"
                 "  - name: my-query\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns: {x: {role: gauge, help: h}}\n",
                 "t.yaml:4:15: ", "invalid metric name \"my-query_x\"");

    /* Shapes of queries. */
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns:\n"
                 "      x: label\n",
                 "t.yaml:5:7: ", "query \"a\" has no gauge or counter column");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql: SELECT 1\n"
                 "    columns:\n"
                 "      n: name\n"
                 "      h: help\n"
                 "      v: gauge\n"
                 "      w: counter\n",
                 "t.yaml:5:7: ", "needs exactly one gauge or counter column, found 2");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql: SELECT 1\n"
                 "    columns:\n"
                 "      n: name\n"
                 "      h: help\n",
                 "t.yaml:5:7: ", "needs exactly one gauge or counter column, found 0");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql: SELECT 1\n"
                 "    columns:\n"
                 "      h: help\n"
                 "      v: {role: gauge, help: x}\n",
                 "t.yaml:5:7: ", "help column \"h\" in query \"a\" needs a name column");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns:\n"
                 "      x: {role: label, help: h}\n",
                 "t.yaml:5:30: ", "key \"help\" does not apply to role label");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql: SELECT 1 AS x\n"
                 "    versions: []\n"
                 "    columns: {x: {role: gauge, help: h}}\n",
                 "t.yaml:4:15: ", "\"sql\" and \"versions\" are mutually exclusive");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    versions:\n"
                 "      - {max_version: 140000, sql: SELECT 1 AS x}\n"
                 "      - {min_version: 130000, sql: SELECT 2 AS x}\n"
                 "    columns: {x: {role: gauge, help: h}}\n",
                 "t.yaml:5:9: ", "version range of entry 2 overlaps entry 1");

    /* Other documents. */
    EXPECT_ERROR("- a\n", "t.yaml:1:1: ", "expected a mapping at top level, found a sequence");
    EXPECT_ERROR("queries: []\n"
                 "---\n"
                 "queries: []\n",
                 "t.yaml:2:1: ", "only one YAML document is allowed per file");
    /* Control characters from the file never reach the message. */
    EXPECT_ERROR("queries:\n"
                 "  - name: \"a\\nb\"\n"
                 "    sql: x\n"
                 "    columns: {x: bad}\n",
                 "t.yaml:4:18: ", "bad role \"bad\" in column \"x\" of query \"a?b\"");
}

/* Names pgpulse emits itself cannot come from the catalog. */
static void test_reserved(void)
{
    /* a static metric, by its "metric" key or by namespace and column */
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns:\n"
                 "      x: {role: gauge, help: h, metric: pg_up}\n",
                 "t.yaml:5:41: ",
                 "metric \"pg_up\" is reserved for pgpulse's own metrics in column \"x\" of "
                 "query \"a\"");
    EXPECT_ERROR("queries:\n"
                 "  - name: pg\n"
                 "    sql: SELECT 1 AS up\n"
                 "    columns:\n"
                 "      up: {role: gauge, help: h}\n",
                 "t.yaml:5:7: ", "metric \"pg_up\" is reserved for pgpulse's own metrics");
    const char *prefixed[][2] = {
        {"process", "process_x"},
        {"pgpulse", "pgpulse_x"},
        {"pg_exporter", "pg_exporter_x"},
    };
    for (size_t i = 0; i < sizeof prefixed / sizeof prefixed[0]; i++) {
        char yaml[512], what[256];
        snprintf(yaml, sizeof yaml,
                 "queries:\n"
                 "  - name: a\n"
                 "    namespace: %s\n"
                 "    sql: SELECT 1 AS x\n"
                 "    columns:\n"
                 "      x: {role: counter, help: h}\n",
                 prefixed[i][0]);
        snprintf(what, sizeof what,
                 "metric \"%s\" is reserved for pgpulse's own metrics (names starting with "
                 "\"%s_\") in column \"x\" of query \"a\"",
                 prefixed[i][1], prefixed[i][0]);
        EXPECT_ERROR(yaml, "t.yaml:6:7: ", what);
    }
    /* a second column of a good query, after a good one */
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    sql: SELECT 1 AS x, 2 AS y\n"
                 "    columns:\n"
                 "      x: {role: gauge, help: h}\n"
                 "      y: {role: gauge, help: h, metric: process_open_fds}\n",
                 "t.yaml:6:41: ", "metric \"process_open_fds\" is reserved");

    /* a dynamic query's namespace, given or defaulted to its name */
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    namespace: pgpulse_settings\n"
                 "    sql: SELECT 'n' AS name, 1 AS v\n"
                 "    columns: {name: name, v: {role: gauge, help: h}}\n",
                 "t.yaml:3:16: ",
                 "namespace \"pgpulse_settings\" of query \"a\" could produce names starting "
                 "with \"pgpulse_\", reserved for pgpulse's own metrics");
    EXPECT_ERROR("queries:\n"
                 "  - name: process\n"
                 "    sql: SELECT 'n' AS name, 1 AS v\n"
                 "    columns: {name: name, v: {role: gauge, help: h}}\n",
                 "t.yaml:2:11: ", "namespace \"process\" of query \"process\" could produce");
    /* "pg_" + a row named "up" or "exporter_x" would be reserved */
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    namespace: pg\n"
                 "    sql: SELECT 'n' AS name, 1 AS v\n"
                 "    columns: {name: name, v: {role: gauge, help: h}}\n",
                 "t.yaml:3:16: ",
                 "namespace \"pg\" of query \"a\" could produce \"pg_up\", reserved for "
                 "pgpulse's own metrics");
    EXPECT_ERROR("queries:\n"
                 "  - name: a\n"
                 "    namespace: pg_exporter\n"
                 "    sql: SELECT 'n' AS name, 1 AS v\n"
                 "    columns: {name: name, v: {role: gauge, help: h}}\n",
                 "t.yaml:3:16: ", "could produce names starting with \"pg_exporter_\"");

    /* near misses are fine, as is pg_static (postgres_exporter's version
     * info, which a catalog query may report) */
    pp_catalog *c = pp_catalog_new();
    CHECK(load(c, "ok.yaml",
               "queries:\n"
               "  - name: a\n"
               "    sql: SELECT 1 AS x\n"
               "    columns:\n"
               "      up: {role: gauge, help: h, metric: pg_upx}\n"
               "      y: {role: gauge, help: h, metric: pg_up_total}\n"
               "      z: {role: gauge, help: h, metric: processes}\n"
               "      w: {role: gauge, help: h, metric: pg_static}\n"
               "      v: {role: gauge, help: h, metric: pg_exporterx}\n"
               "  - name: pg_process\n"
               "    sql: SELECT 'n' AS name, 1 AS v\n"
               "    columns: {name: name, v: {role: gauge, help: h}}\n"
               "  - name: pg_up\n"
               "    sql: SELECT 'n' AS name, 1 AS v\n"
               "    columns: {name: name, v: {role: gauge, help: h}}\n") == 0);
    if (err[0] != '\0')
        fprintf(stderr, "%s\n", err);
    CHECK(c->nqueries == 3);
    pp_catalog_free(c);
}

static void test_format(void)
{
    pp_catalog *c = pp_catalog_new();
    int rc = load(c, "f.yaml",
                  "defaults:\n"
                  "  interval: 1m30s\n"
                  "  runs_on: standby\n"
                  "queries:\n"
                  "  - name: first\n"
                  "    namespace: ns\n"
                  "    sql: |\n"
                  "      SELECT 1 AS v, 'x' AS l, 2 AS w;\n"
                  "    max_series: 500\n"
                  "    columns:\n"
                  "      l: {role: label, label: lab}\n"
                  "      ignored: discard\n"
                  "      v: {role: counter, help: \"v help\", scale: 0.001}\n"
                  "      w: {role: gauge, help: w help, metric: other_name}\n"
                  "  - name: second\n"
                  "    interval: 500ms\n"
                  "    runs_on: any\n"
                  "    sql: SELECT 1 AS v\n"
                  "    columns: {v: {role: gauge, help: h}}\n"
                  "  - name: third\n"
                  "    interval: 2\n"
                  "    timeout: 1h\n"
                  "    sql: SELECT 1 AS v\n"
                  "    columns: {v: {role: gauge, help: h}}\n"
                  "  - name: dyn\n"
                  "    sql: SELECT 'a' AS n, 1 AS v\n"
                  "    columns:\n"
                  "      n: name\n"
                  "      v: {role: counter, help: fallback}\n");
    if (rc != 0)
        fprintf(stderr, "test_format: %s\n", err);
    CHECK(rc == 0);
    if (rc != 0) {
        pp_catalog_free(c);
        return;
    }
    CHECK(c->nqueries == 4);
    const pp_catalog_query *q = &c->queries[0];
    CHECK_STR(q->name, "first");
    CHECK_STR(q->namespace, "ns");
    CHECK_STR(q->file, "f.yaml");
    CHECK(q->line == 5 && q->column == 5);
    CHECK(q->interval == 90);
    CHECK(q->timeout == 10); /* min(interval, 10s) */
    CHECK(q->runs_on == PP_RUNS_ON_STANDBY);
    CHECK(q->max_series == 500);
    CHECK(!q->dynamic);
    CHECK(q->nvariants == 1 && q->variants[0].min_version == 0 && q->variants[0].max_version == 0);
    /* Trailing white space and the semicolon are dropped. */
    CHECK_STR(q->variants[0].sql, "SELECT 1 AS v, 'x' AS l, 2 AS w");
    CHECK(q->ncolumns == 4);
    CHECK_STR(q->columns[0].name, "l");
    CHECK(q->columns[0].role == PP_COL_LABEL);
    CHECK_STR(q->columns[0].label, "lab");
    CHECK(q->columns[1].role == PP_COL_DISCARD);
    CHECK(q->columns[2].role == PP_COL_COUNTER);
    CHECK_STR(q->columns[2].metric, "ns_v");
    CHECK_STR(q->columns[2].help, "v help");
    CHECK(q->columns[2].scale == 0.001);
    CHECK_STR(q->columns[3].metric, "other_name");
    CHECK(q->columns[3].scale == 1);
    CHECK(c->nfamilies == 4);
    CHECK(q->columns[2].family == pp_catalog_find_family(c, "ns_v"));
    CHECK(q->columns[3].family == pp_catalog_find_family(c, "other_name"));
    CHECK_STR(c->families[q->columns[2].family].header,
              "# HELP ns_v v help\n# TYPE ns_v counter\n");

    q = &c->queries[1];
    CHECK_STR(q->namespace, "second");
    CHECK(q->interval == 0.5 && q->timeout == 0.5);
    CHECK(q->runs_on == PP_RUNS_ON_ANY);
    q = &c->queries[2];
    CHECK(q->interval == 2 && q->timeout == 3600);
    CHECK(q->runs_on == PP_RUNS_ON_STANDBY);

    q = &c->queries[3];
    CHECK(q->dynamic);
    CHECK(q->columns[1].family == (size_t)-1);
    CHECK(pp_catalog_find_family(c, "dyn_v") == (size_t)-1);
    CHECK(pp_catalog_find_family(c, "nope") == (size_t)-1);

    /* A file's defaults stay in that file. */
    CHECK(load(c, "g.yaml",
               "queries:\n  - name: g\n    sql: SELECT 1 AS v\n"
               "    columns: {v: {role: gauge, help: h}}\n") == 0);
    q = &c->queries[4];
    CHECK(q->interval == 15 && q->timeout == 10 && q->runs_on == PP_RUNS_ON_ANY);

    /* Empty and comment-only files add nothing. */
    CHECK(load(c, "e.yaml", "") == 0);
    CHECK(load(c, "e.yaml", "# nothing yet\n") == 0);
    CHECK(load(c, "e.yaml", "queries: []\n") == 0);
    CHECK(c->nqueries == 5);
    pp_catalog_free(c);
}

static void test_pick(void)
{
    pp_catalog *c = pp_catalog_new();
    int rc = load(c, "v.yaml",
                  "queries:\n"
                  "  - name: a\n"
                  "    versions:\n"
                  "      - max_version: 100000\n"
                  "        sql: SELECT 9 AS x\n"
                  "      - min_version: 100000\n"
                  "        max_version: 140000\n"
                  "        sql: SELECT 10 AS x\n"
                  "      - min_version: 140000\n"
                  "        sql: SELECT 14 AS x\n"
                  "    columns: {x: {role: gauge, help: h}}\n"
                  "  - name: b\n"
                  "    versions:\n"
                  "      - min_version: 150000\n"
                  "        sql: SELECT 15 AS x\n"
                  "    columns: {x: {role: gauge, help: h}}\n");
    CHECK(rc == 0);
    if (rc != 0) {
        pp_catalog_free(c);
        return;
    }
    const pp_catalog_query *a = &c->queries[0], *b = &c->queries[1];
    CHECK(a->nvariants == 3);
    CHECK_STR(pp_catalog_pick(a, 90624)->sql, "SELECT 9 AS x");
    CHECK_STR(pp_catalog_pick(a, 99999)->sql, "SELECT 9 AS x");
    CHECK_STR(pp_catalog_pick(a, 100000)->sql, "SELECT 10 AS x"); /* min inclusive */
    CHECK_STR(pp_catalog_pick(a, 139999)->sql, "SELECT 10 AS x");
    CHECK_STR(pp_catalog_pick(a, 140000)->sql, "SELECT 14 AS x"); /* max exclusive */
    CHECK_STR(pp_catalog_pick(a, 170002)->sql, "SELECT 14 AS x");
    CHECK(pp_catalog_pick(b, 140013) == NULL);
    CHECK_STR(pp_catalog_pick(b, 150000)->sql, "SELECT 15 AS x");
    pp_catalog_free(c);
}

static int write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static void remove_file(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

static void test_directory(void)
{
    const char *tmp = getenv("TMPDIR");
    char dir[256];
    char want[600];
    snprintf(dir, sizeof dir, "%s/test_catalog.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        CHECK(!"mkdtemp");
        return;
    }
    CHECK(write_file(dir, "b.yaml",
                     "queries:\n  - name: qb\n    sql: SELECT 1 AS v\n"
                     "    columns: {v: {role: gauge, help: h}}\n") == 0);
    CHECK(write_file(dir, "a.yml",
                     "queries:\n  - name: qa\n    sql: SELECT 1 AS v\n"
                     "    columns: {v: {role: gauge, help: h}}\n") == 0);
    CHECK(write_file(dir, "notes.txt", "not yaml: [\n") == 0);
    CHECK(write_file(dir, ".hidden.yaml", "not yaml: [\n") == 0);

    pp_catalog *c = pp_catalog_new();
    int rc = pp_catalog_load_path(c, dir, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "test_directory: %s\n", err);
    CHECK(rc == 0);
    CHECK(c->nqueries == 2);
    if (c->nqueries == 2) {
        CHECK_STR(c->queries[0].name, "qa"); /* name order: a.yml before b.yaml */
        CHECK_STR(c->queries[1].name, "qb");
        snprintf(want, sizeof want, "%s/a.yml", dir);
        CHECK_STR(c->queries[0].file, want);
    }
    pp_catalog_free(c);

    /* A bad file fails the whole directory, with its own name and position,
     * and nothing from the good files before it is kept. */
    CHECK(write_file(dir, "c.yaml",
                     "queries:\n  - name: qc\n    sql: SELECT 1 AS v\n"
                     "    columns: {v: {role: gauge, help: h}}\n"
                     "  - name: qa\n    sql: SELECT 1 AS v\n"
                     "    columns: {v: {role: gauge, help: h}}\n") == 0);
    c = pp_catalog_new();
    CHECK(load(c, "keep.yaml", good_prefix) == 0);
    rc = pp_catalog_load_path(c, dir, err, sizeof err);
    CHECK(rc == -1);
    snprintf(want, sizeof want, "%s/c.yaml:5:11: query \"qa\" is already defined at %s/a.yml:2:5",
             dir, dir);
    CHECK_STR(err, want);
    CHECK(c->nqueries == 1 && c->nfamilies == 1);
    CHECK_STR(c->queries[0].name, "a");

    /* A single file by path. */
    snprintf(want, sizeof want, "%s/b.yaml", dir);
    CHECK(pp_catalog_load_path(c, want, err, sizeof err) == 0);
    CHECK(c->nqueries == 2);

    /* Unreadable paths: "path: reason". */
    snprintf(want, sizeof want, "%s/missing.yaml", dir);
    CHECK(pp_catalog_load_path(c, want, err, sizeof err) == -1);
    char want_err[700];
    snprintf(want_err, sizeof want_err, "%s: No such file or directory", want);
    CHECK_STR(err, want_err);
    CHECK(c->nqueries == 2);
    pp_catalog_free(c);

    remove_file(dir, "a.yml");
    remove_file(dir, "b.yaml");
    remove_file(dir, "c.yaml");
    remove_file(dir, "notes.txt");
    remove_file(dir, ".hidden.yaml");
    CHECK(rmdir(dir) == 0);
}

static void test_unchanged_on_error(void)
{
    pp_catalog *c = pp_catalog_new();
    CHECK(load(c, "one.yaml", good_prefix) == 0);
    CHECK(c->nqueries == 1 && c->nfamilies == 1);
    /* The first query of this file is fine and new, the second is not:
     * neither the query nor its family may stay behind. */
    const char *bad = "queries:\n"
                      "  - name: b\n"
                      "    sql: SELECT 1 AS x\n"
                      "    columns: {x: {role: gauge, help: h}}\n"
                      "  - name: c\n"
                      "    sql: SELECT 1 AS x\n"
                      "    columns: {x: {role: gauge, help: h, scale: zero}}\n";
    EXPECT_ERROR_IN(c, bad, "t.yaml:7:48: ", "bad scale \"zero\" in column \"x\" of query \"c\"");
    CHECK(pp_catalog_find_family(c, "b_x") == (size_t)-1);
    /* So the corrected file loads afterwards without a "defined twice". */
    CHECK(load(c, "two.yaml",
               "queries:\n"
               "  - name: b\n"
               "    sql: SELECT 1 AS x\n"
               "    columns: {x: {role: gauge, help: h}}\n") == 0);
    CHECK(c->nqueries == 2 && c->nfamilies == 2);
    CHECK(c->queries[1].columns[0].family == 1);

    /* A NULL or short error buffer is fine. */
    CHECK(pp_catalog_load_buffer(c, "t.yaml", "- x\n", 4, NULL, 0) == -1);
    char small[8];
    CHECK(pp_catalog_load_buffer(c, "t.yaml", "- x\n", 4, small, sizeof small) == -1);
    CHECK(strlen(small) == sizeof small - 1);
    pp_catalog_free(c);
    pp_catalog_free(NULL);
}

int main(void)
{
    test_builtin();
    test_errors();
    test_reserved();
    test_collectors();
    test_server_label();
    test_histograms();
    test_format();
    test_pick();
    test_directory();
    test_unchanged_on_error();
    return CHECK_RESULT();
}
