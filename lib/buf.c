/*
 * buf: growable byte buffer. See buf.h for the contract; allocation failure
 * aborts (there is no useful recovery for an exporter out of memory).
 */
#include "buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(void)
{
    fputs("pgpulse: out of memory\n", stderr);
    abort();
}

void *pp_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom();
    return p;
}

void *pp_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom();
    return p;
}

void *pp_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom();
    return q;
}

bool pp_str_eq(const char *a, const char *b)
{
    return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

char *pp_strdup(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = pp_malloc(n);
    memcpy(d, s, n);
    return d;
}

void pp_split_list(const char *text, unsigned flags, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    for (const char *p = text; p != NULL && *p != '\0';) {
        size_t len = strcspn(p, ",");
        const char *a = p, *b = p + len;
        if (flags & PP_SPLIT_TRIM) {
            while (a < b && (*a == ' ' || *a == '\t'))
                a++;
            while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
                b--;
        }
        if (b > a || !(flags & PP_SPLIT_SKIP_EMPTY)) {
            *out = pp_realloc(*out, (*n + 1) * sizeof(char *));
            char *item = pp_malloc((size_t)(b - a) + 1);
            memcpy(item, a, (size_t)(b - a));
            item[b - a] = '\0';
            (*out)[(*n)++] = item;
        }
        p += len + (p[len] == ',');
    }
}

void pp_strv_free(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void pp_buf_init(pp_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void pp_buf_deinit(pp_buf *b)
{
    free(b->data);
    pp_buf_init(b);
}

void pp_buf_reset(pp_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

void pp_buf_reserve(pp_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->data = pp_realloc(b->data, cap);
    b->cap = cap;
}

void pp_buf_append(pp_buf *b, const void *p, size_t n)
{
    pp_buf_reserve(b, n);
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void pp_buf_puts(pp_buf *b, const char *s)
{
    pp_buf_append(b, s, strlen(s));
}

void pp_buf_putc(pp_buf *b, char c)
{
    pp_buf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void pp_buf_vprintf(pp_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    pp_buf_reserve(b, 64);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    if (n < 0)
        oom(); /* only an encoding error, impossible with our formats */
    if ((size_t)n >= b->cap - b->len) {
        pp_buf_reserve(b, (size_t)n);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
    }
    va_end(ap2);
    b->len += (size_t)n;
}

void pp_buf_printf(pp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pp_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

char *pp_buf_steal(pp_buf *b, size_t *len)
{
    char *d = b->data;
    if (len != NULL)
        *len = b->len;
    if (d == NULL)
        d = pp_strdup("");
    pp_buf_init(b);
    return d;
}

int pp_read_file(const char *path, size_t max, char **out, size_t *outlen, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    pp_buf b = PP_BUF_INIT;
    char chunk[8192];
    int rc = 0;
    for (;;) {
        size_t n = fread(chunk, 1, sizeof chunk, f);
        pp_buf_append(&b, chunk, n);
        if (b.len > max) {
            snprintf(err, errlen, "%s: file too large (more than %zu bytes)", path, max);
            rc = -1;
            break;
        }
        if (n < sizeof chunk) {
            if (ferror(f)) {
                snprintf(err, errlen, "%s: %s", path, strerror(errno));
                rc = -1;
            }
            break;
        }
    }
    fclose(f);
    if (rc != 0) {
        pp_buf_deinit(&b);
        return -1;
    }
    pp_buf_append(&b, "", 0); /* NUL-terminated even when empty */
    *out = pp_buf_steal(&b, outlen);
    return 0;
}
