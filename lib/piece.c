/*
 * piece: immutable, refcounted query results (see piece.h).
 */
#include "piece.h"

#include <assert.h>
#include <stdlib.h>

#include "buf.h"

pp_piece *pp_piece_new(char *text, size_t len, pp_span *spans, size_t nspans)
{
    pp_piece *p = pp_calloc(1, sizeof(*p));
    p->text = text;
    p->len = len;
    p->spans = spans;
    p->nspans = nspans;
    p->refs = 1;
    return p;
}

pp_piece *pp_piece_ref(pp_piece *p)
{
    assert(p->refs > 0);
    p->refs++;
    return p;
}

void pp_piece_unref(pp_piece *p)
{
    if (p == NULL)
        return;
    assert(p->refs > 0);
    if (--p->refs > 0)
        return;
    free((void *)p->text);
    free((void *)p->spans);
    free(p);
}

size_t pp_piece_memory(const pp_piece *p)
{
    return sizeof(*p) + p->len + p->nspans * sizeof(pp_span);
}
