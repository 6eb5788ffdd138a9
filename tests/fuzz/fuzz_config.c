/*
 * fuzz_config: the command line parser (config.h).
 *
 * The input is split on NUL bytes into the arguments after argv[0]; the
 * environment is empty. A successful parse must leave a usable
 * configuration (at least one listen address, a plain absolute telemetry
 * path, finite positive timeouts, known log settings); a failed one an
 * error message and a zeroed struct. Every argument is also given to
 * pp_config_parse_duration, whose result must be a finite number of
 * seconds, not negative: the timeouts are converted to integers later.
 */
#include <math.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

#define MAX_ARGS 64

static const char *no_env(const char *name)
{
    (void)name;
    return NULL;
}

static void check_duration(const char *s)
{
    double d = -1;
    if (pp_config_parse_duration(s, &d) != 0)
        return;
    FUZZ_CHECK(isfinite(d));
    FUZZ_CHECK(d >= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    char *argv[MAX_ARGS + 2];
    int argc = 0;

    FUZZ_CHECK(copy != NULL);
    if (size > 0)
        memcpy(copy, data, size);
    copy[size] = '\0';
    argv[argc++] = "pgpulse";
    for (size_t i = 0; size > 0 && i <= size && argc <= MAX_ARGS;) {
        argv[argc++] = copy + i;
        i += strlen(copy + i) + 1;
    }
    argv[argc] = NULL;

    for (int i = 1; i < argc; i++)
        check_duration(argv[i]);

    pp_config c;
    char err[256];
    err[0] = '\0';
    if (pp_config_parse(&c, argc, argv, no_env, err, sizeof err) == 0) {
        FUZZ_CHECK(c.nlisten >= 1 && c.listen != NULL);
        for (size_t i = 0; i < c.nlisten; i++)
            FUZZ_CHECK(c.listen[i] != NULL);
        for (size_t i = 0; i < c.ncatalogs; i++)
            FUZZ_CHECK(c.catalogs[i] != NULL);
        FUZZ_CHECK(c.telemetry_path != NULL && c.telemetry_path[0] == '/');
        FUZZ_CHECK(strpbrk(c.telemetry_path, "\"<>'&? #") == NULL);
        FUZZ_CHECK(isfinite(c.connect_timeout) && c.connect_timeout > 0);
        FUZZ_CHECK(isfinite(c.lock_timeout) && c.lock_timeout > 0);
        FUZZ_CHECK(c.log_level >= PP_LOG_DEBUG && c.log_level <= PP_LOG_ERROR);
        FUZZ_CHECK(c.log_format == PP_LOG_LOGFMT || c.log_format == PP_LOG_JSON);
        pp_config_deinit(&c);
    } else {
        FUZZ_CHECK(err[0] != '\0');
        FUZZ_CHECK(c.listen == NULL && c.nlisten == 0 && c.catalogs == NULL && c.ncatalogs == 0 &&
                   c.telemetry_path == NULL);
    }
    /* a second deinit of a zeroed struct is harmless */
    pp_config_deinit(&c);

    free(copy);
    return 0;
}
