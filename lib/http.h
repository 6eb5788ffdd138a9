/*
 * http: the HTTP side, on libh2o's libuv flavour.
 *
 * Serves the telemetry path from the published snapshot (zero copy: the
 * page is linked to the request's pool and sent as is, gzip-encoded when
 * the client accepts it), a landing page at "/", and 404 for anything
 * else. Handlers read the snapshot and nothing else: no handler waits on a
 * database, a lookup, a file or a lock.
 *
 * Hardened defaults (see the h2o notes): HTTP/1.1 only, small request
 * bodies, short idle timeout, our own Server header, HEAD answered without
 * a body.
 */
#ifndef PGPULSE_HTTP_H
#define PGPULSE_HTTP_H

#include <stddef.h>
#include <uv.h>

#include "log.h"
#include "snapshot.h"

typedef struct pp_http pp_http;

/* Parses a listen address the way postgres_exporter accepts it:
 * ":9187" (every interface), "host:port", "[v6]:port". Host names are
 * resolved here (start-up only). Returns 0 or -1 with a message. */
int pp_http_parse_address(const char *text, struct sockaddr_storage *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Creates the server and binds every address (borrowed arrays). snapshot,
 * telemetry_path and log are borrowed and must outlive the server. */
int pp_http_start(pp_http **out, uv_loop_t *loop, const char *const *addresses, size_t n,
                  const char *telemetry_path, pp_snapshot *snapshot, const pp_log *log, char *err,
                  size_t errlen) __attribute__((warn_unused_result));

/* Stops accepting; calls on_closed once every client connection is gone
 * and h2o is disposed. The server is freed after on_closed returns. */
void pp_http_stop(pp_http *h, void (*on_closed)(void *data), void *data);

/* Connections currently open. */
size_t pp_http_connections(const pp_http *h);

#endif
