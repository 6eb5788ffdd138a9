/*
 * family: the process-wide table of metric families.
 *
 * Every sample pgpulse renders belongs to a family with an id; the page
 * builder groups samples by id so that each family is contiguous across all
 * targets with its "# HELP"/"# TYPE" header written once. The catalog's
 * static families take ids 0..n-1 in catalog order; families whose names
 * come from data (pg_settings) are interned as they are first seen. Lives
 * on the loop thread only; ids stay valid for the life of the table.
 */
#ifndef PGPULSE_FAMILY_H
#define PGPULSE_FAMILY_H

#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "render.h"

typedef struct pp_families pp_families;

typedef struct pp_family {
    char *name;
    char *help; /* as given, unescaped */
    pp_metric_type type;
    char *header; /* "# HELP ...\n# TYPE ...\n" */
    size_t header_len;
} pp_family;

#define PP_FAMILY_NONE ((uint32_t)-1)

/* Seeds the table with the catalog's static families (borrowed only
 * during the call). max bounds the number of dynamic families. */
pp_families *pp_families_new(const pp_catalog *cat, size_t max);
void pp_families_free(pp_families *f); /* accepts NULL */

/* The id of family name, creating it with help and type if it does not
 * exist. Returns PP_FAMILY_NONE when the name exists with another type or
 * the table is full (the caller counts a dropped sample). */
uint32_t pp_families_intern(pp_families *f, const char *name, size_t name_len, const char *help,
                            pp_metric_type type);

size_t pp_families_count(const pp_families *f);
/* Borrowed; valid until the next pp_families_intern (the array may grow). */
const pp_family *pp_families_get(const pp_families *f, uint32_t id);

#endif
