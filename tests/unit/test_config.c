/*
 * test_config: flag and environment parsing as postgres_exporter users
 * write them, and the errors that name the flag.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"

static const char *env_path;

static const char *fake_getenv(const char *name)
{
    if (strcmp(name, "PG_EXPORTER_WEB_TELEMETRY_PATH") == 0)
        return env_path;
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
    test_defaults_and_forms();
    test_dashboard_addresses();
    test_flag_beats_env();
    test_errors_name_the_flag();
    test_durations();
    return CHECK_RESULT();
}
