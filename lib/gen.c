/*
 * gen: refcounted catalog generations (see gen.h).
 */
#include "gen.h"

#include <assert.h>
#include <stdlib.h>

#include "buf.h"

/* Families whose names come from data (pg_settings rows) per generation. */
#define MAX_DYNAMIC_FAMILIES 100000

pp_gen *pp_gen_new(pp_catalog *cat, const pp_target_options *topt, uint64_t id)
{
    pp_gen *g = pp_calloc(1, sizeof(*g));
    g->cat = cat;
    g->families = pp_families_new(cat, MAX_DYNAMIC_FAMILIES);
    g->topt = *topt;
    g->id = id;
    g->refs = 1;
    return g;
}

pp_gen *pp_gen_ref(pp_gen *g)
{
    assert(g->refs > 0);
    g->refs++;
    return g;
}

void pp_gen_unref(pp_gen *g)
{
    if (g == NULL)
        return;
    assert(g->refs > 0);
    if (--g->refs > 0)
        return;
    pp_families_free(g->families);
    pp_catalog_free(g->cat); /* this generation's reference */
    pp_strv_free(g->topt.include, g->topt.ninclude);
    pp_strv_free(g->topt.exclude, g->topt.nexclude);
    free(g->topt.constant_labels);
    free(g->topt.session);
    free(g);
}
