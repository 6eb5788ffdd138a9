/*
 * config: flag and environment parsing (see config.h). A table drives the
 * parser so that --help, the error messages and the parser cannot drift
 * apart.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

typedef enum kind {
    K_STRING,
    K_LIST,
    K_LEVEL,
    K_FORMAT,
    K_DURATION,
    K_BOOL,
} kind;

typedef struct flag {
    const char *name;
    kind kind;
    const char *env;
    const char *def;
    const char *help;
} flag;

static const flag flags[] = {
    {"web.listen-address", K_LIST, NULL, ":9187",
     "Address on which to expose metrics and web interface (repeatable)."},
    {"web.telemetry-path", K_STRING, "PG_EXPORTER_WEB_TELEMETRY_PATH", "/metrics",
     "Path under which to expose metrics."},
    {"catalog", K_LIST, NULL, NULL,
     "Query catalog file or directory (repeatable); default: the built-in catalog."},
    {"log.level", K_LEVEL, NULL, "info",
     "Only log messages with the given severity or above: "
     "debug, info, warn, error."},
    {"log.format", K_FORMAT, NULL, "logfmt", "Output format of log messages: logfmt, json."},
    {"connect-timeout", K_DURATION, NULL, "10s", "Give up a connection attempt after this long."},
    {"lock-timeout", K_DURATION, NULL, "1s",
     "lock_timeout set on every connection, so a query never queues behind a lock."},
    {"version", K_BOOL, NULL, NULL, "Show application version."},
    {"help", K_BOOL, NULL, NULL, "Show context-sensitive help."},
};

#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

/* Reads digits with an optional fraction ("1", "1.5", ".5"): no signs,
 * exponents, hex, "inf" or "nan", which strtod would accept. */
static const char *number(const char *p, double *out)
{
    const char *start = p;
    double v = 0, scale = 1;
    bool frac = false, any = false;
    for (; (*p >= '0' && *p <= '9') || (*p == '.' && !frac); p++) {
        if (*p == '.') {
            frac = true;
            continue;
        }
        any = true;
        if (frac)
            v += (*p - '0') * (scale /= 10);
        else
            v = v * 10 + (*p - '0');
    }
    if (!any)
        return start;
    *out = v;
    return p;
}

int pp_config_parse_duration(const char *s, double *out)
{
    if (s == NULL || *s == '\0')
        return -1;
    double total = 0, v;
    const char *p = number(s, &v);
    if (p == s)
        return -1;
    if (*p == '\0') {
        total = v; /* a plain number: seconds */
    } else {
        for (p = s; *p != '\0';) {
            const char *end = number(p, &v);
            if (end == p)
                return -1;
            p = end;
            double unit;
            if (strncmp(p, "ms", 2) == 0) {
                unit = 0.001;
                p += 2;
            } else if (*p == 's') {
                unit = 1;
                p++;
            } else if (*p == 'm') {
                unit = 60;
                p++;
            } else if (*p == 'h') {
                unit = 3600;
                p++;
            } else {
                return -1;
            }
            total += v * unit;
        }
    }
    /* longer than a year is a typo, and keeps every later conversion to
     * milliseconds in range */
    if (!(total >= 0 && total <= PP_CONFIG_MAX_DURATION))
        return -1;
    *out = total;
    return 0;
}

static void push(char ***list, size_t *n, const char *v)
{
    *list = pp_realloc(*list, (*n + 1) * sizeof(char *));
    (*list)[(*n)++] = pp_strdup(v);
}

static int apply(pp_config *c, const flag *f, const char *v, bool from_env, char *err,
                 size_t errlen)
{
    const char *src = from_env ? f->env : f->name;
    const char *pre = from_env ? "" : "--";
    double d;
    switch (f->kind) {
    case K_STRING:
        if (strcmp(f->name, "web.telemetry-path") == 0) {
            if (v[0] != '/' || strpbrk(v, "\"<>'&? #") != NULL) {
                snprintf(err, errlen, "%s%s: \"%s\" is not a plain absolute path", pre, src, v);
                return -1;
            }
            free(c->telemetry_path);
            c->telemetry_path = pp_strdup(v);
        }
        return 0;
    case K_LIST:
        if (strcmp(f->name, "web.listen-address") == 0)
            push(&c->listen, &c->nlisten, v);
        else
            push(&c->catalogs, &c->ncatalogs, v);
        return 0;
    case K_LEVEL:
        if (pp_log_parse_level(v, &c->log_level) != 0) {
            snprintf(err, errlen, "%s%s: \"%s\" is not one of debug, info, warn, error", pre, src,
                     v);
            return -1;
        }
        return 0;
    case K_FORMAT:
        if (pp_log_parse_format(v, &c->log_format) != 0) {
            snprintf(err, errlen, "%s%s: \"%s\" is not one of logfmt, json", pre, src, v);
            return -1;
        }
        return 0;
    case K_DURATION:
        if (pp_config_parse_duration(v, &d) != 0 || d <= 0) {
            snprintf(err, errlen,
                     "%s%s: \"%s\" is not a duration such as 10s (more than 0, at most a year)",
                     pre, src, v);
            return -1;
        }
        if (strcmp(f->name, "connect-timeout") == 0)
            c->connect_timeout = d;
        else
            c->lock_timeout = d;
        return 0;
    case K_BOOL:
        if (strcmp(f->name, "version") == 0)
            c->show_version = true;
        else
            c->show_help = true;
        return 0;
    }
    return 0;
}

static const flag *find(const char *name, size_t len)
{
    for (size_t i = 0; i < NFLAGS; i++)
        if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
            return &flags[i];
    return NULL;
}

int pp_config_parse(pp_config *c, int argc, char **argv, const char *(*getenv_fn)(const char *),
                    char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->log_level = PP_LOG_INFO;
    c->log_format = PP_LOG_LOGFMT;
    c->telemetry_path = pp_strdup("/metrics");
    c->connect_timeout = 10;
    c->lock_timeout = 1;
    bool seen[NFLAGS] = {false};

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0) {
            c->show_help = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument \"%s\"", a);
            goto fail;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const flag *f = find(name, len);
        if (f == NULL || (f->kind == K_BOOL && eq != NULL)) {
            snprintf(err, errlen, "unknown flag --%.*s", (int)len, name);
            goto fail;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (f->kind != K_BOOL && v == NULL) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "flag --%s needs a value", f->name);
                goto fail;
            }
            v = argv[++i];
        }
        seen[f - flags] = true;
        if (apply(c, f, v ? v : "", false, err, errlen) != 0)
            goto fail;
    }
    /* the environment fills what no flag set */
    for (size_t i = 0; i < NFLAGS; i++) {
        if (seen[i] || flags[i].env == NULL)
            continue;
        const char *v = getenv_fn ? getenv_fn(flags[i].env) : getenv(flags[i].env);
        if (v != NULL && *v != '\0' && apply(c, &flags[i], v, true, err, errlen) != 0)
            goto fail;
    }
    if (c->nlisten == 0)
        push(&c->listen, &c->nlisten, ":9187");
    return 0;

fail:
    pp_config_deinit(c);
    return -1;
}

void pp_config_deinit(pp_config *c)
{
    for (size_t i = 0; i < c->nlisten; i++)
        free(c->listen[i]);
    for (size_t i = 0; i < c->ncatalogs; i++)
        free(c->catalogs[i]);
    free(c->listen);
    free(c->catalogs);
    free(c->telemetry_path);
    memset(c, 0, sizeof(*c));
}

void pp_config_usage(FILE *out)
{
    fputs("usage: pgpulse [<flags>]\n\n"
          "PostgreSQL metrics exporter for Prometheus. Data sources come from\n"
          "DATA_SOURCE_NAME (comma-separated URIs or key=value DSNs) or from\n"
          "DATA_SOURCE_URI[_FILE], DATA_SOURCE_USER[_FILE], DATA_SOURCE_PASS[_FILE].\n\n"
          "Flags:\n",
          out);
    for (size_t i = 0; i < NFLAGS; i++) {
        const flag *f = &flags[i];
        char left[64];
        snprintf(left, sizeof(left), "--%s%s", f->name, f->kind == K_BOOL ? "" : "=VALUE");
        fprintf(out, "  %-28s %s", left, f->help);
        if (f->def != NULL)
            fprintf(out, " (default: %s)", f->def);
        if (f->env != NULL)
            fprintf(out, " ($%s)", f->env);
        fputc('\n', out);
    }
}
