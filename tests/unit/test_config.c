/*
 * test_config: flag and environment parsing as postgres_exporter users
 * write them, and the errors that name the flag.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"

static const char *env_path;
static const char *env_default_metrics;
static const char *env_settings_metrics;

static const char *fake_getenv(const char *name)
{
    if (strcmp(name, "PG_EXPORTER_WEB_TELEMETRY_PATH") == 0)
        return env_path;
    if (strcmp(name, "PG_EXPORTER_DISABLE_DEFAULT_METRICS") == 0)
        return env_default_metrics;
    if (strcmp(name, "PG_EXPORTER_DISABLE_SETTINGS_METRICS") == 0)
        return env_settings_metrics;
    return NULL;
}

static int parse(pp_config *c, char *err, size_t errlen, int argc, char **argv)
{
    return pp_config_parse(c, argc, argv, fake_getenv, err, errlen);
}

static void test_defaults_and_forms(void)
{
    pp_config c;
    char err[256] = "";
    char *none[] = {"pgpulse"};
    env_path = NULL;
    CHECK(parse(&c, err, sizeof err, 1, none) == 0);
    CHECK(c.nlisten == 1 && strcmp(c.listen[0], ":9187") == 0);
    CHECK_STR(c.telemetry_path, "/metrics");
    CHECK(c.ncatalogs == 0 && c.connect_timeout == 10 && c.lock_timeout == 1);
    pp_config_deinit(&c);

    char *forms[] = {"pgpulse",
                     "--web.listen-address=127.0.0.1:1",
                     "--web.listen-address",
                     "[::1]:2",
                     "--catalog",
                     "a.yaml",
                     "--catalog=dir",
                     "--log.level=debug",
                     "--log.format",
                     "json",
                     "--connect-timeout=1m30s"};
    CHECK(parse(&c, err, sizeof err, 11, forms) == 0);
    CHECK(c.nlisten == 2 && strcmp(c.listen[1], "[::1]:2") == 0);
    CHECK(c.ncatalogs == 2 && strcmp(c.catalogs[0], "a.yaml") == 0);
    CHECK(c.log_level == PP_LOG_DEBUG && c.log_format == PP_LOG_JSON);
    CHECK(c.connect_timeout == 90);
    pp_config_deinit(&c);
}

static void test_flag_beats_env(void)
{
    pp_config c;
    char err[256] = "";
    char *none[] = {"pgpulse"};
    env_path = "/from-env";
    CHECK(parse(&c, err, sizeof err, 1, none) == 0);
    CHECK_STR(c.telemetry_path, "/from-env");
    pp_config_deinit(&c);
    char *flag[] = {"pgpulse", "--web.telemetry-path=/from-flag"};
    CHECK(parse(&c, err, sizeof err, 2, flag) == 0);
    CHECK_STR(c.telemetry_path, "/from-flag");
    pp_config_deinit(&c);
    env_path = "no-slash";
    CHECK(parse(&c, err, sizeof err, 1, none) == -1);
    CHECK_CONTAINS(err, "PG_EXPORTER_WEB_TELEMETRY_PATH");
    env_path = NULL;
}

static void test_errors_name_the_flag(void)
{
    pp_config c;
    char err[256];
    char *unknown[] = {"pgpulse", "--web.listen-adress=:1"};
    CHECK(parse(&c, err, sizeof err, 2, unknown) == -1);
    CHECK_STR(err, "unknown flag --web.listen-adress");
    char *missing[] = {"pgpulse", "--catalog"};
    CHECK(parse(&c, err, sizeof err, 2, missing) == -1);
    CHECK_STR(err, "flag --catalog needs a value");
    char *level[] = {"pgpulse", "--log.level=loud"};
    CHECK(parse(&c, err, sizeof err, 2, level) == -1);
    CHECK_CONTAINS(err, "--log.level: \"loud\"");
    char *dur[] = {"pgpulse", "--lock-timeout=nan"};
    CHECK(parse(&c, err, sizeof err, 2, dur) == -1);
    CHECK_CONTAINS(err, "--lock-timeout: \"nan\" is not a duration");
    char *boolval[] = {"pgpulse", "--version=yes"};
    CHECK(parse(&c, err, sizeof err, 2, boolval) == -1);
}

/* --[no-]collector.<name> with postgres_exporter v0.20.1's defaults (but
 * postmaster and stat_wal_receiver, on here), its older names, the two
 * --disable-*-metrics flags and their variables, --dumpmaps. */
static void test_collectors(void)
{
    pp_config c;
    char err[256] = "";
    char *none[] = {"pgpulse"};
    CHECK(parse(&c, err, sizeof err, 1, none) == 0);
    static const char *const on[] = {"database",
                                     "locks",
                                     "replication",
                                     "replication_slots",
                                     "roles",
                                     "settings",
                                     "stat_activity",
                                     "stat_archiver",
                                     "stat_bgwriter",
                                     "stat_database",
                                     "stat_progress_vacuum",
                                     "stat_replication",
                                     "stat_user_tables",
                                     "statio_user_tables",
                                     "wal",
                                     "postmaster",
                                     "stat_wal_receiver"};
    static const char *const off[] = {
        "buffercache_summary", "database_wraparound",      "long_running_transactions",
        "process_idle",        "stat_activity_autovacuum", "stat_checkpointer",
        "stat_statements",     "statio_user_indexes",      "xlog_location"};
    for (size_t i = 0; i < sizeof on / sizeof on[0]; i++)
        CHECK(pp_config_collector_enabled(&c, on[i]));
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++)
        CHECK(!pp_config_collector_enabled(&c, off[i]));
    CHECK(sizeof on / sizeof on[0] + sizeof off / sizeof off[0] == PP_NCOLLECTORS);
    /* a collector no flag names (a catalog of one's own) is on */
    CHECK(pp_config_collector_enabled(&c, "my_queries"));
    CHECK(!c.disable_default_metrics && !c.disable_settings_metrics && !c.dumpmaps);
    pp_config_deinit(&c);

    char *flags[] = {"pgpulse",
                     "--no-collector.database",
                     "--collector.stat_statements",
                     "--collector.wal=false",
                     "--no-collector.bgwriter",
                     "--no-collector.replication_slot",
                     "--disable-settings-metrics",
                     "--disable-default-metrics",
                     "--dumpmaps"};
    CHECK(parse(&c, err, sizeof err, 9, flags) == 0);
    CHECK(!pp_config_collector_enabled(&c, "database"));
    CHECK(pp_config_collector_enabled(&c, "stat_statements"));
    CHECK(!pp_config_collector_enabled(&c, "wal"));
    CHECK(!pp_config_collector_enabled(&c, "stat_bgwriter"));
    CHECK(!pp_config_collector_enabled(&c, "replication_slots"));
    CHECK(!pp_config_collector_enabled(&c, "settings"));
    CHECK(c.collectors[PP_COLLECTOR_settings]); /* the flag itself is untouched */
    CHECK(c.disable_default_metrics && c.dumpmaps);
    CHECK(pp_config_collector_enabled(&c, "locks"));
    pp_config_deinit(&c);

    env_default_metrics = "true";
    env_settings_metrics = "1";
    CHECK(parse(&c, err, sizeof err, 1, none) == 0);
    CHECK(c.disable_default_metrics && !pp_config_collector_enabled(&c, "settings"));
    pp_config_deinit(&c);
    char *no[] = {"pgpulse", "--no-disable-default-metrics"};
    CHECK(parse(&c, err, sizeof err, 2, no) == 0);
    CHECK(!c.disable_default_metrics && c.disable_settings_metrics);
    pp_config_deinit(&c);
    env_default_metrics = "maybe";
    CHECK(parse(&c, err, sizeof err, 1, none) == -1);
    CHECK_STR(err, "$PG_EXPORTER_DISABLE_DEFAULT_METRICS: \"maybe\" is not true or false");
    env_default_metrics = env_settings_metrics = NULL;

    char *bogus[] = {"pgpulse", "--collector.bogus"};
    CHECK(parse(&c, err, sizeof err, 2, bogus) == -1);
    CHECK_STR(err, "unknown flag --collector.bogus");
    char *nobogus[] = {"pgpulse", "--no-collector.bogus"};
    CHECK(parse(&c, err, sizeof err, 2, nobogus) == -1);
    CHECK_STR(err, "unknown flag --no-collector.bogus");
    char *badval[] = {"pgpulse", "--collector.locks=sometimes"};
    CHECK(parse(&c, err, sizeof err, 2, badval) == -1);
    CHECK_STR(err, "--collector.locks: \"sometimes\" is not true or false");
}

static void test_durations(void)
{
    static const struct {
        const char *text;
        double want; /* -1: refused */
    } cases[] = {
        {"15s", 15},  {"500ms", 0.5}, {"1m30s", 90}, {"1h", 3600}, {"1.5s", 1.5},
        {"2", 2},     {".5s", 0.5},   {"0", 0},      {"", -1},     {"s", -1},
        {"-1s", -1},  {"1x", -1},     {"inf", -1},   {"nan", -1},  {"1e3", -1},
        {"0x10", -1}, {"1e400", -1},  {"9999h", -1}, {"1 s", -1},  {"1.2.3s", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double got = -1;
        int rc = pp_config_parse_duration(cases[i].text, &got);
        if (cases[i].want < 0) {
            if (rc != -1)
                fprintf(stderr, "accepted \"%s\"\n", cases[i].text);
            CHECK(rc == -1);
        } else {
            if (rc != 0 || got != cases[i].want)
                fprintf(stderr, "\"%s\": rc %d, got %g\n", cases[i].text, rc, got);
            CHECK(rc == 0 && got == cases[i].want);
        }
    }
}

static void test_constant_labels(void)
{
    char *out = NULL, err[256];
    CHECK(pp_config_constant_labels(NULL, &out, err, sizeof(err)) == 0 && out == NULL);
    CHECK(pp_config_constant_labels("", &out, err, sizeof(err)) == 0 && out == NULL);
    CHECK(pp_config_constant_labels("env=prod, dc = eu-1 ,q=a\"b\\c", &out, err, sizeof(err)) == 0);
    CHECK_STR(out, "env=\"prod\",dc=\" eu-1 \",q=\"a\\\"b\\\\c\"");
    free(out);
    CHECK(pp_config_constant_labels("empty=", &out, err, sizeof(err)) == 0);
    CHECK_STR(out, "empty=\"\"");
    free(out);
    const char *bad[] = {"novalue", "=v",       "1x=v",      "__x=v",
                         "a-b=v",   "server=x", "datname=x", "a=1,b=2,a=3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        out = NULL;
        err[0] = '\0';
        CHECK(pp_config_constant_labels(bad[i], &out, err, sizeof(err)) != 0 && out == NULL);
        CHECK_CONTAINS(err, "--constantLabels");
    }
}

static void test_unread_env(void)
{
    char *env[] = {"PATH=/bin",
                   "PG_EXPORTER_EXTEND_QUERY_PATH=/q.yaml",
                   "PG_EXPORTER_WEB_LISTEN_ADDRESS=:1",
                   "PG_EXPORTER_CONSTANT_LABELS=a=b",
                   "PG_EXPORTER_NO_SUCH_THING=1",
                   "PG_EXPORTER_EXTEND_QUERY_PATHS=x",
                   NULL};
    const char *out[4];
    size_t n = pp_config_unread_env(env, out, 4);
    CHECK(n == 2);
    if (n == 2) {
        CHECK_STR(out[0], "PG_EXPORTER_NO_SUCH_THING=1");
        CHECK_STR(out[1], "PG_EXPORTER_EXTEND_QUERY_PATHS=x");
    }
}

/* --web.dashboard-address: none by default, repeatable and comma-separated */
static void test_dashboard_addresses(void)
{
    pp_config c;
    char err[256] = "";
    char *none[] = {"pgpulse"};
    CHECK(parse(&c, err, sizeof err, 1, none) == 0);
    CHECK(c.ndashboard == 0);
    pp_config_deinit(&c);
    char *two[] = {"pgpulse", "--web.dashboard-address=:5000,127.0.0.1:5001",
                   "--web.dashboard-address", "[::1]:5002"};
    CHECK(parse(&c, err, sizeof err, 4, two) == 0);
    CHECK(c.ndashboard == 3);
    if (c.ndashboard == 3) {
        CHECK_STR(c.dashboard[0], ":5000");
        CHECK_STR(c.dashboard[1], "127.0.0.1:5001");
        CHECK_STR(c.dashboard[2], "[::1]:5002");
    }
    pp_config_deinit(&c);
    char *empty[] = {"pgpulse", "--web.dashboard-address=:5000,"};
    CHECK(parse(&c, err, sizeof err, 2, empty) != 0);
    CHECK_CONTAINS(err, "--web.dashboard-address");
}

int main(void)
{
    test_constant_labels();
    test_unread_env();
    test_defaults_and_forms();
    test_dashboard_addresses();
    test_flag_beats_env();
    test_errors_name_the_flag();
    test_collectors();
    test_durations();
    return CHECK_RESULT();
}
