/*
 * render: the Prometheus text exposition writer (format 0.0.4).
 *
 * One escaper for label values, one for HELP text, one number formatter;
 * every byte of every page goes through these, so the page is valid
 * exposition by construction. All functions append to a pp_buf and never
 * allocate otherwise. Pure functions: no I/O, no global state.
 */
#ifndef PGPULSE_RENDER_H
#define PGPULSE_RENDER_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

typedef enum pp_metric_type {
    PP_METRIC_GAUGE,
    PP_METRIC_COUNTER,
    PP_METRIC_UNTYPED,
    PP_METRIC_HISTOGRAM,
} pp_metric_type;

/* "gauge", "counter", "untyped", "histogram". */
const char *pp_metric_type_name(pp_metric_type t);

/* Appends s[0..n) escaped for use inside a label value's double quotes:
 * backslash, double quote and line feed become \\, \" and \n. Bytes that
 * are not valid UTF-8 are replaced by U+FFFD so the page stays valid. */
void pp_render_label_value(pp_buf *b, const char *s, size_t n);

/* Looks at the byte sequence at p (n > 0 bytes available). Returns its
 * length when it is well-formed UTF-8, or minus the length of the maximal
 * ill-formed subpart that one U+FFFD replaces (at least 1), the rule
 * Unicode recommends and Python follows. */
int pp_render_utf8_seq(const unsigned char *p, size_t n);

/* Appends s escaped for a HELP line: backslash and line feed only. */
void pp_render_help_text(pp_buf *b, const char *s);

/* Appends "# HELP name help\n# TYPE name type\n". */
void pp_render_header(pp_buf *b, const char *name, const char *help, pp_metric_type t);

/* Appends a sample value: integers that a double holds exactly (|v| < 2^53)
 * without exponent or fraction ("42", "-1"), other finite values in the
 * shortest form that reads back to the same double ("0.25", "1.5e+300"),
 * and "+Inf", "-Inf", "NaN". */
void pp_render_double(pp_buf *b, double v);

/* Parses a PostgreSQL text-format value as a sample value: integers,
 * decimals, exponents, "NaN", "Infinity"/"-Infinity", and booleans "t"/"f"
 * ("true"/"false"/"on"/"off" too) as 1/0. Returns 0 and sets *out, or -1
 * if the text is not a number (the caller drops the sample). */
int pp_render_parse_value(const char *text, double *out);

/* Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names: [a-zA-Z_][a-zA-Z0-9_]*
 * and not starting with "__". */
bool pp_render_valid_metric_name(const char *s);
bool pp_render_valid_label_name(const char *s);

/* Appends s with every byte that may not appear in a metric name replaced
 * by '_' (and a leading digit prefixed with '_'). Used for names that come
 * from data, such as pg_settings rows. */
void pp_render_sanitize_name(pp_buf *b, const char *s);

/* One label pair, borrowed strings. */
typedef struct pp_label {
    const char *name;
    const char *value;
} pp_label;

/* Appends a label block "{a=\"x\",b=\"y\"}" (nothing at all when n == 0). */
void pp_render_labels(pp_buf *b, const pp_label *labels, size_t n);

#endif
