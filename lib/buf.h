/*
 * buf: a growable byte buffer that tracks its length.
 *
 * Every renderer in pgpulse appends into a pp_buf; growth is geometric so a
 * page of N bytes costs O(N) copies in total. Allocation failure aborts the
 * process: an exporter that cannot allocate a few kilobytes cannot do
 * anything useful, and checking every append would hide the real logic.
 * The data is always NUL-terminated (not counted in len) once anything has
 * been appended, so it can be handed to C string functions.
 */
#ifndef PGPULSE_BUF_H
#define PGPULSE_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct pp_buf {
    char *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
} pp_buf;

#define PP_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void pp_buf_init(pp_buf *b);
/* Frees the storage; the buffer is empty and reusable afterwards. */
void pp_buf_deinit(pp_buf *b);
/* Forgets the contents but keeps the storage. */
void pp_buf_reset(pp_buf *b);
/* Makes room for at least extra more bytes (plus the terminator). */
void pp_buf_reserve(pp_buf *b, size_t extra);
void pp_buf_append(pp_buf *b, const void *p, size_t n);
void pp_buf_puts(pp_buf *b, const char *s);
void pp_buf_putc(pp_buf *b, char c);
void pp_buf_printf(pp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pp_buf_vprintf(pp_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Hands the storage to the caller (free() it); the buffer becomes empty. */
char *pp_buf_steal(pp_buf *b, size_t *len);

/* Whether two strings, either possibly NULL, are equal (NULL equals only
 * NULL). */
bool pp_str_eq(const char *a, const char *b);

/* Duplicates a string or aborts; NULL gives NULL. */
char *pp_strdup(const char *s);

/* What pp_split_list does to each item. */
enum {
    PP_SPLIT_TRIM = 1 << 0,       /* drops the spaces and tabs around it */
    PP_SPLIT_SKIP_EMPTY = 1 << 1, /* leaves it out when it is empty (after trimming) */
};

/* Splits a comma-separated list into *n malloc'd strings in a malloc'd
 * array *out (NULL when there are none; pp_strv_free frees both). An item
 * starts at the start of the text or after a comma and runs to the next
 * comma or the end: "a,,b" has an empty second item and ",a" an empty
 * first one, but a comma that ends the text ends the list ("a," is one
 * item). NULL and "" have no items. flags: PP_SPLIT_*, or 0 to keep every
 * item as written. */
void pp_split_list(const char *text, unsigned flags, char ***out, size_t *n);
/* Frees the n strings of v and v. Accepts NULL. */
void pp_strv_free(char **v, size_t n);

/* Reads the whole file at path into a malloc'd, NUL-terminated buffer
 * (*outlen excludes the NUL). A file over max bytes, or one that cannot be
 * read, is an error: returns -1 with "path: reason" in err. */
int pp_read_file(const char *path, size_t max, char **out, size_t *outlen, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* malloc/calloc/realloc that abort on failure. */
void *pp_malloc(size_t n);
void *pp_calloc(size_t n, size_t size);
void *pp_realloc(void *p, size_t n);

#endif
