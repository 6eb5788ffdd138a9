/*
 * family: the table of metric families (see family.h). Names are found in
 * an open-addressing hash table. The array of entries may move when it
 * grows, but ids and the name and header strings they point to do not.
 */
#include "family.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"

struct pp_families {
    pp_family *items;
    size_t n, cap, max;
    uint32_t *slots; /* hash slots holding id + 1, 0 = empty */
    size_t nslots;
};

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void rehash(pp_families *f, size_t nslots)
{
    free(f->slots);
    f->slots = pp_calloc(nslots, sizeof(uint32_t));
    f->nslots = nslots;
    for (size_t i = 0; i < f->n; i++) {
        size_t s = hash(f->items[i].name, strlen(f->items[i].name)) & (nslots - 1);
        while (f->slots[s] != 0)
            s = (s + 1) & (nslots - 1);
        f->slots[s] = (uint32_t)i + 1;
    }
}

static uint32_t find(const pp_families *f, const char *name, size_t len, size_t *slot)
{
    size_t s = hash(name, len) & (f->nslots - 1);
    while (f->slots[s] != 0) {
        const pp_family *it = &f->items[f->slots[s] - 1];
        if (strncmp(it->name, name, len) == 0 && it->name[len] == '\0')
            return f->slots[s] - 1;
        s = (s + 1) & (f->nslots - 1);
    }
    *slot = s;
    return PP_FAMILY_NONE;
}

static uint32_t add(pp_families *f, const char *name, size_t len, const char *help,
                    pp_metric_type type)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        f->items = pp_realloc(f->items, f->cap * sizeof(pp_family));
    }
    if ((f->n + 1) * 2 > f->nslots)
        rehash(f, f->nslots ? f->nslots * 2 : 128);
    size_t slot;
    find(f, name, len, &slot);
    pp_family *it = &f->items[f->n];
    it->name = pp_malloc(len + 1);
    memcpy(it->name, name, len);
    it->name[len] = '\0';
    it->type = type;
    it->help = pp_strdup(help ? help : "");
    pp_buf b = PP_BUF_INIT;
    pp_render_header(&b, it->name, help ? help : "", type);
    it->header = pp_buf_steal(&b, &it->header_len);
    f->slots[slot] = (uint32_t)f->n + 1;
    return (uint32_t)f->n++;
}

pp_families *pp_families_new(const pp_catalog *cat, size_t max)
{
    pp_families *f = pp_calloc(1, sizeof(*f));
    rehash(f, 128);
    for (size_t i = 0; cat != NULL && i < cat->nfamilies; i++) {
        const pp_catalog_family *cf = &cat->families[i];
        add(f, cf->name, strlen(cf->name), cf->help, cf->type);
    }
    f->max = f->n + max;
    return f;
}

void pp_families_free(pp_families *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->items[i].name);
        free(f->items[i].help);
        free(f->items[i].header);
    }
    free(f->items);
    free(f->slots);
    free(f);
}

uint32_t pp_families_intern(pp_families *f, const char *name, size_t name_len, const char *help,
                            pp_metric_type type)
{
    size_t slot;
    uint32_t id = find(f, name, name_len, &slot);
    if (id != PP_FAMILY_NONE)
        return f->items[id].type == type ? id : PP_FAMILY_NONE;
    if (f->n >= f->max)
        return PP_FAMILY_NONE;
    return add(f, name, name_len, help, type);
}

size_t pp_families_count(const pp_families *f)
{
    return f->n;
}

const pp_family *pp_families_get(const pp_families *f, uint32_t id)
{
    return id < f->n ? &f->items[id] : NULL;
}
