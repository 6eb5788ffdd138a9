/*
 * hostmatch: which servers /probe may reach (--web.probe-allowed-targets).
 *
 * A list of patterns, comma-separated:
 *   *                  any server (the default, as postgres_exporter)
 *   db1.example.com    that host name, any port (names compare without case)
 *   *.example.com      any name ending in .example.com
 *   10.1.2.3           that address, any port
 *   10.0.0.0/8         any address in the network (IPv4 or IPv6)
 *   [2001:db8::]/32    the same, for IPv6 in brackets
 *   host:5432          any of the above with a port: only that port
 *   /var/run/postgresql  that Unix socket directory, exactly
 * Matching is on the text of the DSN: every host and every hostaddr it
 * names must match, with its port; names are not resolved, so a name
 * pattern never lets an address through nor the other way round. A DSN
 * that names no host (libpq's default socket or PGHOST) or a service file
 * entry (which can name any host) matches only "*".
 */
#ifndef PGPULSE_HOSTMATCH_H
#define PGPULSE_HOSTMATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "dsn.h"

typedef struct pp_hostmatch pp_hostmatch;

/* Parses a pattern list. Returns NULL with a message naming the bad
 * pattern. An empty list or "*" allows everything. */
pp_hostmatch *pp_hostmatch_parse(const char *text, char *err, size_t errlen);
void pp_hostmatch_free(pp_hostmatch *m); /* accepts NULL */

/* Whether everything is allowed. */
bool pp_hostmatch_any(const pp_hostmatch *m);

/* Whether the DSN may be connected to; when not, why (without secrets). */
bool pp_hostmatch_allows(const pp_hostmatch *m, const pp_dsn *d, char *why, size_t whylen);

#endif
