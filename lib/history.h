/*
 * history: a fixed ring of recent samples of a few values of one target,
 * what the dashboard draws as sparklines (replication lag, transactions per
 * second, connections).
 *
 * A leaf: it knows nothing of targets or pieces. Its size is fixed when it
 * is made, so a target's history costs the same from its first sample to
 * its millionth; pp_history_memory says how much. The sampler (status.c)
 * also keeps the little state it needs between samples here, so that state
 * lives and dies with the ring. Loop thread only.
 */
#ifndef PGPULSE_HISTORY_H
#define PGPULSE_HISTORY_H

#include <stddef.h>
#include <stdint.h>

/* The values of a sample; NAN where there was none. */
enum { PP_HIST_LAG_BYTES, PP_HIST_LAG_SECONDS, PP_HIST_TPS, PP_HIST_CONNECTIONS, PP_HIST_NVALUES };

typedef struct pp_history_sample {
    double t; /* unix time */
    float v[PP_HIST_NVALUES];
} pp_history_sample;

typedef struct pp_history {
    pp_history_sample *slots; /* owned, cap of them */
    size_t cap;
    size_t n;    /* samples held, at most cap */
    size_t next; /* slot the next sample goes to */
    /* the sampler's state between samples */
    uint64_t cycles;   /* the target's cycle count at the last sample */
    double xact_total; /* commits + rollbacks at the last reading, NAN = none */
    double xact_at;    /* unix time of that reading (its query's last success) */
    double tps;        /* the last rate computed, NAN = none yet */
} pp_history;

/* A ring of cap samples (cap > 0). */
pp_history *pp_history_new(size_t cap);
void pp_history_free(pp_history *h); /* accepts NULL */

/* Appends one sample, dropping the oldest when the ring is full. */
void pp_history_push(pp_history *h, const pp_history_sample *s);

/* The i-th sample held, oldest first (i < h->n). Borrowed. */
const pp_history_sample *pp_history_at(const pp_history *h, size_t i);

/* The latest sample, or NULL when there is none. */
const pp_history_sample *pp_history_last(const pp_history *h);

/* Heap bytes the ring holds. */
size_t pp_history_memory(const pp_history *h);

#endif
