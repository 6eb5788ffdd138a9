/*
 * tls: the OpenSSL server context for --web.config.file's
 * tls_server_config.
 *
 * Built once at start-up, before anything listens, so that an unreadable
 * or mismatched certificate, key or client CA file ends the process with a
 * message naming the file. The context speaks TLS 1.2 and 1.3 (within
 * min_version and max_version), offers only "http/1.1" by ALPN (pgpulse
 * serves HTTP/1.1 only; see the h2o notes on HTTP/2), and asks for and
 * checks client certificates as client_auth_type says, against
 * client_ca_file.
 */
#ifndef PGPULSE_TLS_H
#define PGPULSE_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "webconfig.h"

/* Creates the context for c (c->tls must be true). Returns 0 with *out
 * set (owned by the caller: SSL_CTX_free; connections keep their own
 * reference), or -1 with a message naming the file at fault. */
int pp_tls_new(const pp_webconfig *c, SSL_CTX **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
