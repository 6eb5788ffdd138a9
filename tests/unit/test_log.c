/*
 * test_log: the exact shape of logfmt and JSON lines, value escaping in
 * both formats, level filtering, and the level/format parsers. Lines are
 * written to a temporary file and read back.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "log.h"

/* Reads everything written to f since the last call and truncates it. */
static char *drain(FILE *f)
{
    long n = ftell(f);
    char *s = malloc((size_t)n + 1);
    rewind(f);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = '\0';
    rewind(f);
    return s;
}

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

/*
 * Checks that ts is "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 bytes) and within a
 * minute of now, UTC.
 */
static bool valid_ts(const char *ts)
{
    if (!(digits(ts, 4) && ts[4] == '-' && digits(ts + 5, 2) && ts[7] == '-' && digits(ts + 8, 2) &&
          ts[10] == 'T' && digits(ts + 11, 2) && ts[13] == ':' && digits(ts + 14, 2) &&
          ts[16] == ':' && digits(ts + 17, 2) && ts[19] == '.' && digits(ts + 20, 3) &&
          ts[23] == 'Z'))
        return false;
    struct tm tm = {0};
    tm.tm_year = atoi(ts) - 1900;
    tm.tm_mon = atoi(ts + 5) - 1;
    tm.tm_mday = atoi(ts + 8);
    tm.tm_hour = atoi(ts + 11);
    tm.tm_min = atoi(ts + 14);
    tm.tm_sec = atoi(ts + 17);
    time_t t = timegm(&tm);
    time_t now = time(NULL);
    return t <= now + 1 && t >= now - 60;
}

/* Splits "ts=<24 bytes> rest" (logfmt) and checks the timestamp. */
static const char *after_logfmt_ts(const char *line)
{
    if (strncmp(line, "ts=", 3) != 0 || !valid_ts(line + 3) || line[27] != ' ')
        return "(bad timestamp)";
    return line + 28;
}

/* Splits {"ts":"<24 bytes>",rest (JSON) and checks the timestamp. */
static const char *after_json_ts(const char *line)
{
    if (strncmp(line, "{\"ts\":\"", 7) != 0 || !valid_ts(line + 7) || line[31] != '"' ||
        line[32] != ',')
        return "(bad timestamp)";
    return line + 33;
}

static void test_defaults_and_parsers(void)
{
    pp_log log;
    pp_log_init(&log);
    CHECK(log.level == PP_LOG_INFO);
    CHECK(log.format == PP_LOG_LOGFMT);
    CHECK(log.out == stderr);

    pp_log_level lv = PP_LOG_ERROR;
    CHECK(pp_log_parse_level("debug", &lv) == 0 && lv == PP_LOG_DEBUG);
    CHECK(pp_log_parse_level("info", &lv) == 0 && lv == PP_LOG_INFO);
    CHECK(pp_log_parse_level("warn", &lv) == 0 && lv == PP_LOG_WARN);
    CHECK(pp_log_parse_level("error", &lv) == 0 && lv == PP_LOG_ERROR);
    CHECK(pp_log_parse_level("warning", &lv) == -1);
    CHECK(pp_log_parse_level("INFO", &lv) == -1);
    CHECK(pp_log_parse_level("", &lv) == -1);

    pp_log_format fmt = PP_LOG_JSON;
    CHECK(pp_log_parse_format("logfmt", &fmt) == 0 && fmt == PP_LOG_LOGFMT);
    CHECK(pp_log_parse_format("json", &fmt) == 0 && fmt == PP_LOG_JSON);
    CHECK(pp_log_parse_format("text", &fmt) == -1);
    CHECK(pp_log_parse_format("JSON", &fmt) == -1);
}

static void test_logfmt(FILE *f)
{
    pp_log log;
    pp_log_init(&log);
    log.out = f;
    char *s;

    pp_log_write(&log, PP_LOG_INFO, "connected", "target", "127.0.0.1:5432", NULL);
    s = drain(f);
    CHECK_STR(after_logfmt_ts(s), "level=info msg=\"connected\" target=127.0.0.1:5432\n");
    free(s);

    /* no pairs at all */
    pp_log_write(&log, PP_LOG_ERROR, "shutting down", NULL);
    s = drain(f);
    CHECK_STR(after_logfmt_ts(s), "level=error msg=\"shutting down\"\n");
    free(s);

    /* quoting: space, '=', '"', control bytes and empty values are quoted;
     * a NULL value is empty; plain values and lone backslashes are not */
    pp_log_write(&log, PP_LOG_WARN, "scrape \"failed\"\nretrying", "err", "connection refused",
                 "dsn", "host=h dbname=x", "q", "say \"hi\"", "path", "C:\\dir", "nl", "a\nb\\c",
                 "ctl", "x\x01y\tz", "empty", "", "null", NULL, "n", "42", NULL);
    s = drain(f);
    CHECK_STR(after_logfmt_ts(s),
              "level=warn msg=\"scrape \\\"failed\\\"\\nretrying\" err=\"connection refused\" "
              "dsn=\"host=h dbname=x\" q=\"say \\\"hi\\\"\" path=C:\\dir nl=\"a\\nb\\\\c\" "
              "ctl=\"x\\u0001y\\tz\" empty=\"\" null=\"\" n=42\n");
    free(s);

    /* invalid UTF-8 is replaced, valid UTF-8 kept */
    pp_log_write(&log, PP_LOG_INFO, "m", "bad", "a\xFFz", "ok", "caf\xC3\xA9", NULL);
    s = drain(f);
    CHECK_STR(after_logfmt_ts(s), "level=info msg=\"m\" bad=\"a\xEF\xBF\xBDz\" ok=caf\xC3\xA9\n");
    free(s);

    /* a key can never break the line either */
    pp_log_write(&log, PP_LOG_INFO, "m", "bad key=\n", "v", NULL);
    s = drain(f);
    CHECK_STR(after_logfmt_ts(s), "level=info msg=\"m\" bad_key__=v\n");
    free(s);
}

static void test_json(FILE *f)
{
    pp_log log;
    pp_log_init(&log);
    log.out = f;
    log.format = PP_LOG_JSON;
    char *s;

    pp_log_write(&log, PP_LOG_INFO, "connected", "target", "127.0.0.1:5432", NULL);
    s = drain(f);
    CHECK_STR(after_json_ts(s),
              "\"level\":\"info\",\"msg\":\"connected\",\"target\":\"127.0.0.1:5432\"}\n");
    free(s);

    pp_log_write(&log, PP_LOG_ERROR, "a \"b\" \\ c\nd", "ctl", "\x01\x1f\x7f\b\f\r\t", "null", NULL,
                 "utf8", "\xE6\x97\xA5 \xF0\x9F\x98\x80", "bad", "\xC0\xAF", NULL);
    s = drain(f);
    CHECK_STR(after_json_ts(s),
              "\"level\":\"error\",\"msg\":\"a \\\"b\\\" \\\\ c\\nd\","
              "\"ctl\":\"\\u0001\\u001f\\u007f\\u0008\\u000c\\r\\t\",\"null\":\"\","
              "\"utf8\":\"\xE6\x97\xA5 \xF0\x9F\x98\x80\","
              "\"bad\":\"\xEF\xBF\xBD\xEF\xBF\xBD\"}\n");
    free(s);

    pp_log_write(&log, PP_LOG_WARN, "k", "we\"ird", "v", NULL);
    s = drain(f);
    CHECK_STR(after_json_ts(s), "\"level\":\"warn\",\"msg\":\"k\",\"we\\\"ird\":\"v\"}\n");
    free(s);
}

static void test_levels(FILE *f)
{
    pp_log log;
    pp_log_init(&log);
    log.out = f;
    char *s;

    log.level = PP_LOG_WARN;
    pp_log_write(&log, PP_LOG_DEBUG, "d", NULL);
    pp_log_write(&log, PP_LOG_INFO, "i", NULL);
    pp_log_write(&log, PP_LOG_WARN, "w", NULL);
    pp_log_write(&log, PP_LOG_ERROR, "e", NULL);
    s = drain(f);
    /* exactly two lines, in order */
    char *nl = strchr(s, '\n');
    CHECK(nl != NULL && strchr(nl + 1, '\n') != NULL && strchr(nl + 1, '\n')[1] == '\0');
    CHECK_CONTAINS(s, " level=warn msg=\"w\"\n");
    CHECK_CONTAINS(s, " level=error msg=\"e\"\n");
    CHECK(strstr(s, "msg=\"i\"") == NULL && strstr(s, "msg=\"d\"") == NULL);
    CHECK(strstr(s, " level=warn") < strstr(s, " level=error"));
    free(s);

    log.level = PP_LOG_DEBUG;
    pp_log_write(&log, PP_LOG_DEBUG, "d", NULL);
    s = drain(f);
    CHECK_STR(after_logfmt_ts(s), "level=debug msg=\"d\"\n");
    free(s);

    log.level = PP_LOG_ERROR;
    pp_log_write(&log, PP_LOG_WARN, "w", NULL);
    CHECK(ftell(f) == 0);
}

/* A writer thread in front of a pipe nobody reads: the caller never
 * blocks, what does not fit is counted, and once the pipe is read again
 * every queued line arrives in order, followed by the count. */
static void test_writer_never_blocks(void)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    FILE *out = fdopen(fds[1], "w");
    pp_log log;
    pp_log_init(&log);
    log.out = out;
    CHECK(pp_log_start_writer(&log, 8192) == 0);
    /* far more than the pipe (64 KiB) and the queue (8 KiB) hold */
    char n[16];
    for (int i = 0; i < 5000; i++) {
        snprintf(n, sizeof(n), "%d", i);
        pp_log_write(&log, PP_LOG_INFO, "line", "n", n, NULL);
    }
    CHECK(pp_log_dropped(&log) > 0);
    /* read everything while the writer drains and stops */
    pid_t child = fork();
    if (child == 0) {
        close(fds[1]);
        char buf[65536];
        size_t total = 0, dropped_lines = 0, first_ok = 0;
        ssize_t r;
        char prev = '\n';
        while ((r = read(fds[0], buf, sizeof(buf))) > 0) {
            for (ssize_t i = 0; i < r; i++) {
                if (prev == '\n' && strncmp(buf + i, "ts=", 3) != 0 && i + 3 <= r)
                    _exit(3); /* a line that does not start a log line: torn */
                prev = buf[i];
            }
            if (total == 0 && strstr(buf, "n=0\n") != NULL)
                first_ok = 1;
            if (memmem(buf, (size_t)r, "log lines dropped", 17) != NULL)
                dropped_lines++;
            total += (size_t)r;
        }
        _exit(first_ok && dropped_lines > 0 ? 0 : 2);
    }
    close(fds[0]);
    pp_log_stop_writer(&log);
    fclose(out);
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(log.writer == NULL);
}

int main(void)
{
    test_writer_never_blocks();
    FILE *f = tmpfile();
    if (f == NULL) {
        perror("tmpfile");
        return 1;
    }
    test_defaults_and_parsers();
    test_logfmt(f);
    test_json(f);
    test_levels(f);
    fclose(f);
    return CHECK_RESULT();
}
