/*
 * config: command-line flags and environment, as postgres_exporter reads
 * them: "--flag=value" and "--flag value", "--[no-]flag" for booleans, a
 * flag beats its environment variable, an unknown flag is an error.
 * Errors name the flag. Data sources are read separately (dsn.h).
 */
#ifndef PGPULSE_CONFIG_H
#define PGPULSE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "log.h"

typedef struct pp_config {
    char **listen; /* owned; default {":9187"} */
    size_t nlisten;
    char *telemetry_path; /* owned; default "/metrics" */
    char **catalogs;      /* owned; --catalog, in order; none = built-in */
    size_t ncatalogs;
    pp_log_level log_level;
    pp_log_format log_format;
    double connect_timeout; /* seconds */
    double lock_timeout;    /* seconds */
    bool show_version;
    bool show_help;
} pp_config;

/* Parses argv (argv[0] is skipped) and the environment (getenv_fn, or
 * getenv when NULL). On error returns -1 with a message naming the flag. */
int pp_config_parse(pp_config *c, int argc, char **argv, const char *(*getenv_fn)(const char *),
                    char *err, size_t errlen) __attribute__((warn_unused_result));
void pp_config_deinit(pp_config *c);
void pp_config_usage(FILE *out);

#define PP_CONFIG_MAX_DURATION (365.0 * 24 * 3600)

/* Parses a Go-style duration ("500ms", "15s", "1m30s", "1.5s") or plain
 * seconds. Refuses signs, exponents, "inf", "nan" and anything over
 * PP_CONFIG_MAX_DURATION. */
int pp_config_parse_duration(const char *s, double *out) __attribute__((warn_unused_result));

#endif
