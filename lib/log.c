/*
 * log: structured log lines in logfmt or JSON. See log.h for the contract.
 *
 * Invariants kept here:
 * - One event is one line: every value is escaped so that no line feed or
 *   other control byte reaches the output unescaped, and invalid UTF-8 is
 *   replaced by U+FFFD (JSON requires UTF-8; logfmt readers expect it).
 * - A line is assembled in memory and written with one fwrite followed by a
 *   flush: stdio locks the stream per call, so lines from several threads
 *   never interleave, and a line is on its way before the next event.
 * - In logfmt, msg is always quoted (msg="connected"), other values only
 *   when they need it (empty, space, '=', '"', control bytes).
 */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "render.h"

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* The queue between pp_log_write and the writer thread: a byte ring of
 * whole lines. */
struct pp_log_writer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    FILE *out;
    char *ring;
    size_t cap, head, len; /* head: first byte queued; len: bytes queued */
    unsigned long long dropped, dropped_reported;
    bool json; /* the format when the writer started, for its own line */
    bool stop;
};

static void format_ts(char *out, size_t len);

void pp_log_init(pp_log *log)
{
    log->level = PP_LOG_INFO;
    log->format = PP_LOG_LOGFMT;
    log->out = stderr;
    log->writer = NULL;
}

static void *writer_main(void *arg)
{
    pp_log_writer *w = arg;
    char *chunk = pp_malloc(w->cap);
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->len == 0 && w->dropped == w->dropped_reported && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->len == 0 && w->dropped == w->dropped_reported && w->stop)
            break;
        size_t n = w->len;
        size_t first = n < w->cap - w->head ? n : w->cap - w->head;
        memcpy(chunk, w->ring + w->head, first);
        memcpy(chunk + first, w->ring, n - first);
        w->head = (w->head + n) % w->cap;
        w->len = 0;
        unsigned long long dropped = w->dropped - w->dropped_reported;
        w->dropped_reported = w->dropped;
        pthread_mutex_unlock(&w->mu);
        /* the slow part, outside the lock */
        fwrite(chunk, 1, n, w->out);
        if (dropped > 0) {
            char ts[96];
            format_ts(ts, sizeof(ts));
            if (w->json)
                fprintf(w->out,
                        "{\"ts\":\"%s\",\"level\":\"warn\",\"msg\":\"log lines dropped: the log "
                        "output was too slow\",\"dropped\":\"%llu\"}\n",
                        ts, dropped);
            else
                fprintf(w->out,
                        "ts=%s level=warn msg=\"log lines dropped: the log output was too "
                        "slow\" dropped=%llu\n",
                        ts, dropped);
        }
        fflush(w->out);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    free(chunk);
    return NULL;
}

int pp_log_start_writer(pp_log *log, size_t queue_bytes)
{
    if (log->writer != NULL)
        return 0;
    pp_log_writer *w = pp_calloc(1, sizeof(*w));
    w->out = log->out != NULL ? log->out : stderr;
    w->json = log->format == PP_LOG_JSON;
    w->cap = queue_bytes > 4096 ? queue_bytes : 4096;
    w->ring = pp_malloc(w->cap);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w->ring);
        free(w);
        return -1;
    }
    log->writer = w;
    return 0;
}

void pp_log_stop_writer(pp_log *log)
{
    pp_log_writer *w = log->writer;
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    log->writer = NULL;
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->ring);
    free(w);
}

unsigned long long pp_log_dropped(const pp_log *log)
{
    if (log->writer == NULL)
        return 0;
    pthread_mutex_lock(&log->writer->mu);
    unsigned long long n = log->writer->dropped;
    pthread_mutex_unlock(&log->writer->mu);
    return n;
}

static void enqueue(pp_log_writer *w, const char *line, size_t n)
{
    pthread_mutex_lock(&w->mu);
    if (n > w->cap - w->len) {
        w->dropped++;
    } else {
        size_t tail = (w->head + w->len) % w->cap;
        size_t first = n < w->cap - tail ? n : w->cap - tail;
        memcpy(w->ring + tail, line, first);
        memcpy(w->ring, line + first, n - first);
        w->len += n;
    }
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int pp_log_parse_level(const char *s, pp_log_level *out)
{
    static const pp_log_level levels[] = {PP_LOG_DEBUG, PP_LOG_INFO, PP_LOG_WARN, PP_LOG_ERROR};

    if (s == NULL)
        return -1;
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = levels[i];
            return 0;
        }
    }
    return -1;
}

int pp_log_parse_format(const char *s, pp_log_format *out)
{
    if (s == NULL)
        return -1;
    if (strcmp(s, "logfmt") == 0) {
        *out = PP_LOG_LOGFMT;
        return 0;
    }
    if (strcmp(s, "json") == 0) {
        *out = PP_LOG_JSON;
        return 0;
    }
    return -1;
}

/*
 * Appends s as the inside of a double-quoted string with JSON escapes;
 * logfmt readers (go-logfmt) understand the same escapes.
 */
static void put_quoted(pp_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);

    /* Worst case: a control byte becomes \u00XX (6 bytes). */
    pp_buf_reserve(b, 6 * n + 2);
    char *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c >= 0x80) {
            int len = pp_render_utf8_seq(p + i, n - i);
            if (len < 0) {
                memcpy(o, "\xEF\xBF\xBD", 3);
                o += 3;
                i += (size_t)-len;
            } else {
                memcpy(o, p + i, (size_t)len);
                o += len;
                i += (size_t)len;
            }
            continue;
        }
        i++;
        switch (c) {
        case '"':
            *o++ = '\\';
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            *o++ = '\\';
            break;
        case '\n':
            *o++ = '\\';
            *o++ = 'n';
            break;
        case '\r':
            *o++ = '\\';
            *o++ = 'r';
            break;
        case '\t':
            *o++ = '\\';
            *o++ = 't';
            break;
        default:
            if (c < 0x20 || c == 0x7F) {
                memcpy(o, "\\u00", 4);
                o[4] = hex[c >> 4];
                o[5] = hex[c & 0xF];
                o += 6;
            } else {
                *o++ = (char)c;
            }
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

static bool logfmt_needs_quotes(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);

    if (n == 0)
        return true;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c <= ' ' || c == '=' || c == '"' || c == 0x7F)
            return true;
        if (c >= 0x80) {
            int len = pp_render_utf8_seq(p + i, n - i);
            if (len < 0)
                return true; /* replaced inside quotes */
            i += (size_t)len;
        } else {
            i++;
        }
    }
    return false;
}

/* Keys come from code, but a key must never break the line either. */
static void put_logfmt_key(pp_buf *b, const char *k)
{
    size_t n = strlen(k);

    pp_buf_reserve(b, n + 2);
    char *o = b->data + b->len;
    *o++ = ' ';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        *o++ = c <= ' ' || c == '=' || c == '"' || c >= 0x7F ? '_' : (char)c;
    }
    *o++ = '=';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

static void put_logfmt_value(pp_buf *b, const char *v)
{
    if (logfmt_needs_quotes(v))
        put_quoted(b, v);
    else
        pp_buf_puts(b, v);
}

static void format_ts(char *out, size_t len)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
}

void pp_log_write(const pp_log *log, pp_log_level level, const char *msg, ...)
{
    if (level < log->level)
        return;

    FILE *out = log->out != NULL ? log->out : stderr;
    const char *lname = (unsigned)level < 4 ? level_names[level] : "error";
    char ts[96]; /* 24 bytes in practice; sized for any int fields */
    pp_buf b = PP_BUF_INIT;
    va_list ap;

    format_ts(ts, sizeof ts);
    if (msg == NULL)
        msg = "";
    pp_buf_reserve(&b, 128);

    va_start(ap, msg);
    if (log->format == PP_LOG_JSON) {
        pp_buf_puts(&b, "{\"ts\":\"");
        pp_buf_puts(&b, ts);
        pp_buf_puts(&b, "\",\"level\":\"");
        pp_buf_puts(&b, lname);
        pp_buf_puts(&b, "\",\"msg\":");
        put_quoted(&b, msg);
        for (const char *k = va_arg(ap, const char *); k != NULL; k = va_arg(ap, const char *)) {
            const char *v = va_arg(ap, const char *);
            pp_buf_putc(&b, ',');
            put_quoted(&b, k);
            pp_buf_putc(&b, ':');
            put_quoted(&b, v != NULL ? v : "");
        }
        pp_buf_puts(&b, "}\n");
    } else {
        pp_buf_puts(&b, "ts=");
        pp_buf_puts(&b, ts);
        pp_buf_puts(&b, " level=");
        pp_buf_puts(&b, lname);
        pp_buf_puts(&b, " msg=");
        put_quoted(&b, msg);
        for (const char *k = va_arg(ap, const char *); k != NULL; k = va_arg(ap, const char *)) {
            const char *v = va_arg(ap, const char *);
            put_logfmt_key(&b, k);
            put_logfmt_value(&b, v != NULL ? v : "");
        }
        pp_buf_putc(&b, '\n');
    }
    va_end(ap);

    if (log->writer != NULL) {
        enqueue(log->writer, b.data, b.len);
    } else {
        fwrite(b.data, 1, b.len, out);
        fflush(out);
    }
    pp_buf_deinit(&b);
}
