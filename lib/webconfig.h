/*
 * webconfig: the exporter-toolkit web configuration file
 * (--web.config.file), as postgres_exporter reads it: TLS
 * (tls_server_config), basic authentication (basic_auth_users, bcrypt
 * hashes) and the HTTP server's options (http_server_config).
 *
 * A leaf module: it reads the file through lib/yaml.c and checks what it
 * can without the network or OpenSSL; the certificate and key files are
 * opened by tls.c. Every error is "file:line:column: message", an unknown
 * key included. What the toolkit reads but pgpulse does not do (inline
 * certificates, client_allowed_sans, rate_limit) is refused by name rather
 * than ignored. An empty file means plain HTTP without authentication, as
 * upstream.
 */
#ifndef PGPULSE_WEBCONFIG_H
#define PGPULSE_WEBCONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* tls_server_config.client_auth_type, in Go's crypto/tls terms. */
typedef enum pp_client_auth {
    PP_CLIENT_NO_CERT,            /* NoClientCert (default) */
    PP_CLIENT_REQUEST_CERT,       /* RequestClientCert: asked for, not checked */
    PP_CLIENT_REQUIRE_ANY_CERT,   /* RequireAnyClientCert: required, not checked */
    PP_CLIENT_VERIFY_IF_GIVEN,    /* VerifyClientCertIfGiven */
    PP_CLIENT_REQUIRE_AND_VERIFY, /* RequireAndVerifyClientCert */
} pp_client_auth;

/* TLS protocol versions, in their wire order. */
typedef enum pp_tls_version {
    PP_TLS12 = 12,
    PP_TLS13 = 13,
} pp_tls_version;

typedef struct pp_web_user {
    char *name; /* owned */
    char *hash; /* owned; a bcrypt hash ($2a$, $2b$ or $2y$) */
} pp_web_user;

typedef struct pp_web_header {
    const char *name; /* static: the canonical spelling */
    char *value;      /* owned */
} pp_web_header;

/* What the file says, checked; plain values, owned by the struct. */
typedef struct pp_webconfig {
    char *path;               /* owned; the file, for messages */
    unsigned char digest[32]; /* SHA-256 of the file's text: tells a changed file at reload */
    bool tls;                 /* serve HTTPS: cert_file and key_file are set */
    char *cert_file, *key_file, *client_ca_file; /* owned, or NULL */
    pp_client_auth client_auth;
    pp_tls_version min_version, max_version;
    char *ciphers;      /* owned: OpenSSL's names joined with ':' (TLS 1.2), or NULL */
    char *groups;       /* owned: curve_preferences in OpenSSL's names, or NULL */
    bool prefer_server; /* prefer_server_cipher_suites */
    pp_web_user *users; /* basic_auth_users in file order; none = no authentication */
    size_t nusers;
    pp_web_header *headers; /* http_server_config.headers */
    size_t nheaders;
} pp_webconfig;

/* Reads and checks the file at path. Returns 0 with *out set (free with
 * pp_webconfig_free), or -1 with "path:line:column: message" (or
 * "path: reason" when it cannot be read) in err. */
int pp_webconfig_load(const char *path, pp_webconfig **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The same from text already in memory; name is used in messages. */
int pp_webconfig_parse(const char *name, const char *data, size_t len, pp_webconfig **out,
                       char *err, size_t errlen) __attribute__((warn_unused_result));

void pp_webconfig_free(pp_webconfig *c); /* accepts NULL */

/* "NoClientCert", ... for logs. */
const char *pp_webconfig_client_auth_name(pp_client_auth a);

#endif
