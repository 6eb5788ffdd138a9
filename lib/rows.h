/*
 * rows: one catalog query's result rows to exposition text, under a cap.
 *
 * Rows may arrive all at once (one PGresult) or one at a time (libpq's
 * single-row mode, which is how targets read them, so that a huge result is
 * never held whole): the cap on samples applies as rows are read, and
 * what is past it is only counted. The text is column-major: the samples
 * of one metric column form one run, so each family of the query is one
 * span. For queries whose metric names come from data (pg_settings), each
 * row's family is interned and adjacent samples of one family share a span.
 *
 * A leaf: it knows the query's columns, a result and a family table, and
 * nothing of targets or pages. Loop thread only (it interns families).
 */
#ifndef PGPULSE_ROWS_H
#define PGPULSE_ROWS_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "catalog.h"
#include "family.h"
#include "piece.h"

typedef struct pp_rows pp_rows;

pp_rows *pp_rows_new(void);
void pp_rows_free(pp_rows *r); /* accepts NULL */

/* Starts a run of query q (borrowed, like families and label, until
 * pp_rows_finish). label is the block every series starts with: "" or
 * server="host:port". cap is the most samples the run may produce (0:
 * 500,000). */
void pp_rows_begin(pp_rows *r, const pp_catalog_query *q, pp_families *families, const char *label,
                   size_t cap);

/* Adds every row of res (a PGRES_TUPLES_OK or PGRES_SINGLE_TUPLE result).
 * Returns 0, or -1 with a message when the result lacks a column the
 * query names; the run is then unusable until the next begin. */
int pp_rows_add(pp_rows *r, const PGresult *res, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Ends the run: *out is a piece with its text and spans (one reference,
 * the caller's): prev (NULL, or the piece of the query's last run) when
 * nothing changed, else a new one. Returns the samples dropped by the
 * cap or because their family could not be interned. */
uint64_t pp_rows_finish(pp_rows *r, pp_piece *prev, pp_piece **out);

/* postgres_exporter's conversions of user query values, each returning 0
 * and the value, or -1 when the text does not convert (no sample):
 * Go's time.ParseDuration text ("1h2m3.5s", "-5ms", "0") as whole
 * milliseconds; */
int pp_rows_parse_duration(const char *text, double *ms);
/* a date, timestamp or timestamptz in ISO output as unix seconds; */
int pp_rows_parse_timestamp(const char *text, double *secs);
/* a one-dimensional array of numbers ("{1,2,5}") into *vals, grown with
 * pp_realloc (*cap its capacity; the caller frees it), *n its length. */
int pp_rows_parse_array(const char *text, double **vals, size_t *n, size_t *cap);

/* Bytes of heap the accumulator holds (its buffers keep their capacity
 * between runs). */
size_t pp_rows_memory(const pp_rows *r);

#endif
