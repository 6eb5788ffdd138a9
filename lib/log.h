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

typedef struct pp_log_writer pp_log_writer;

typedef struct pp_log {
    pp_log_level level;
    pp_log_format format;
    FILE *out;             /* borrowed; stderr by default */
    pp_log_writer *writer; /* owned when set: lines go through a thread */
} pp_log;

void pp_log_init(pp_log *log); /* info, logfmt, stderr, written at once */

/* From now on pp_log_write only queues its line (a bounded queue) and a
 * thread of its own writes it, so a slow or full log pipe never blocks the
 * caller. Lines that do not fit in the queue are dropped and counted; the
 * count is written once the writer catches up. Returns 0 or -1 (then lines
 * are still written directly). */
int pp_log_start_writer(pp_log *log, size_t queue_bytes);
/* Writes what is queued (waiting for the pipe as long as it takes) and
 * stops the thread; pp_log_write writes directly again. */
void pp_log_stop_writer(pp_log *log);
/* Lines dropped because the queue was full, since the writer started. */
unsigned long long pp_log_dropped(const pp_log *log);

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
