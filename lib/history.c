/*
 * history: a fixed ring of samples (see history.h).
 */
#include "history.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>

#include "buf.h"

pp_history *pp_history_new(size_t cap)
{
    assert(cap > 0);
    pp_history *h = pp_calloc(1, sizeof(*h));
    h->slots = pp_calloc(cap, sizeof(pp_history_sample));
    h->cap = cap;
    h->xact_total = NAN;
    h->tps = NAN;
    return h;
}

void pp_history_free(pp_history *h)
{
    if (h == NULL)
        return;
    free(h->slots);
    free(h);
}

void pp_history_push(pp_history *h, const pp_history_sample *s)
{
    h->slots[h->next] = *s;
    h->next = (h->next + 1) % h->cap;
    if (h->n < h->cap)
        h->n++;
}

const pp_history_sample *pp_history_at(const pp_history *h, size_t i)
{
    assert(i < h->n);
    size_t oldest = (h->next + h->cap - h->n) % h->cap;
    return &h->slots[(oldest + i) % h->cap];
}

const pp_history_sample *pp_history_last(const pp_history *h)
{
    return h->n == 0 ? NULL : pp_history_at(h, h->n - 1);
}

size_t pp_history_memory(const pp_history *h)
{
    return sizeof(*h) + h->cap * sizeof(pp_history_sample);
}
