/*
 * web: the dashboard's files (web/dashboard.html, .js, .css), compiled into
 * the binary by cmake/embed.cmake so that a copied binary serves its page
 * without any file beside it and the page needs no external asset.
 */
#ifndef PGPULSE_WEB_H
#define PGPULSE_WEB_H

#include <stddef.h>

typedef struct pp_web_asset {
    const char *name; /* the file's name, e.g. "dashboard.js" */
    const char *data; /* NUL-terminated (not counted in len) */
    size_t len;
} pp_web_asset;

/* Every file of web/, terminated by an entry with name == NULL. */
extern const pp_web_asset pp_web_assets[];

#endif
