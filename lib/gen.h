/*
 * gen: one generation of what a reload replaces: the query catalog, the
 * family table built from it and the collection options.
 *
 * A generation is immutable once published, except for the family table,
 * into which collections intern the families whose names come from data
 * (loop thread only). It is refcounted: the registry holds the current one,
 * every target holds the one it collects with, and a batch in flight holds
 * the one its SQL text belongs to, so a reload never frees what is still in
 * use: what is in flight finishes on the old generation.
 */
#ifndef PGPULSE_GEN_H
#define PGPULSE_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "family.h"

typedef struct pp_target_options {
    bool server_label;      /* add server="host:port" to every series */
    double connect_timeout; /* seconds */
    double lock_timeout;    /* seconds, set at connect */
    size_t max_series;      /* per query run, when the catalog gives none */
    size_t max_connecting;  /* connection attempts in flight at once; 0 = no bound */
    size_t max_per_server;  /* connections to one server (0 = no bound; else at least 2) */
    double role_interval;   /* seconds between role checks at most; 0 = with queries */
    bool auto_discover;     /* collect every database of each listed server */
    char **include;         /* owned by the generation: databases discovery keeps (none: all) */
    size_t ninclude;
    char **exclude; /* owned by the generation: databases discovery leaves out */
    size_t nexclude;
    char *session; /* owned by the generation: more "-c name=value" server options, or NULL */
    char *constant_labels; /* owned by the generation: 'k="v",...' on every series of a
                              target (--constantLabels), or NULL */
} pp_target_options;

typedef struct pp_gen {
    pp_catalog *cat;        /* one reference: /probe's generation shares the catalog */
    pp_families *families;  /* owned */
    pp_target_options topt; /* copied */
    uint64_t id;            /* increases with every generation */
    unsigned refs;
} pp_gen;

/* Takes over one reference to cat (pp_catalog_ref it first to build a
 * second generation on the same catalog) and ownership of topt's include
 * and exclude lists, session settings and constant labels; builds the
 * family table. The caller holds the one reference. */
pp_gen *pp_gen_new(pp_catalog *cat, const pp_target_options *topt, uint64_t id);
pp_gen *pp_gen_ref(pp_gen *g);
/* Drops one reference; frees at zero. Accepts NULL. */
void pp_gen_unref(pp_gen *g);

#endif
