/*
 * log: structured logging in logfmt or JSON, one line per event.
 *
 * A pp_log is passed explicitly to every module that logs (no globals).
 * Lines look like
 *   ts=2026-11-25T19:40:01.123Z level=info msg="connected" target=127.0.0.1:5432
 * or, with the JSON format,
 *   {"ts":"2026-11-25T19:40:01.123Z","level":"info","msg":"connected","target":"127.0.0.1:5432"}
 * Values are quoted and escaped when needed, so a line is always one line.
 * Nothing here knows about passwords: callers log masked DSNs only.
 */
#ifndef PGPULSE_LOG_H
#define PGPULSE_LOG_H

#include <stdio.h>

typedef enum pp_log_level {
    PP_LOG_DEBUG,
    PP_LOG_INFO,
    PP_LOG_WARN,
    PP_LOG_ERROR,
} pp_log_level;

typedef enum pp_log_format {
    PP_LOG_LOGFMT,
    PP_LOG_JSON,
} pp_log_format;

typedef struct pp_log {
    pp_log_level level;
    pp_log_format format;
    FILE *out; /* borrowed; stderr by default */
} pp_log;

void pp_log_init(pp_log *log); /* info, logfmt, stderr */

/* "debug", "info", "warn", "error" -> level; returns -1 for anything else. */
int pp_log_parse_level(const char *s, pp_log_level *out);
/* "logfmt", "json" -> format; returns -1 for anything else. */
int pp_log_parse_format(const char *s, pp_log_format *out);

/* Writes one line if level is enabled. The variadic part is pairs of
 * (const char *key, const char *value) terminated by a NULL key; a NULL
 * value is written as an empty string. Example:
 *   pp_log_write(log, PP_LOG_INFO, "connected", "target", label, NULL); */
void pp_log_write(const pp_log *log, pp_log_level level, const char *msg, ...);

#endif
