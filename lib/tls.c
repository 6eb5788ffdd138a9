/*
 * tls: the server's SSL_CTX (see tls.h).
 *
 * Client certificates, mapped from Go's crypto/tls policies:
 * - RequestClientCert and RequireAnyClientCert ask for a certificate and
 *   accept any (the verify callback says yes), the latter failing the
 *   handshake without one;
 * - VerifyClientCertIfGiven and RequireAndVerifyClientCert check the
 *   chain against client_ca_file only (never the system's roots), the
 *   latter failing the handshake without a certificate.
 * With TLS 1.3 a client learns that its certificate was refused after its
 * side of the handshake is done: the alert arrives on its first read.
 *
 * OpenSSL's messages come from its error queue; they name the library's
 * reason ("key values mismatch"), so each message here names the file and
 * what was being done with it.
 */
#include "tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>
#include <h2o.h>

/* Only HTTP/1.1 is offered: a client asking for h2 gets http/1.1. Static:
 * h2o keeps the pointer in the context's ALPN callback. */
static const h2o_iovec_t alpn[] = {{H2O_STRLIT("http/1.1")}, {NULL, 0}};

/* The last OpenSSL error as text, and the queue emptied. */
static const char *ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        snprintf(buf, len, "unknown error");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

/* OpenSSL says "system lib" for a missing file: say what the system said. */
static int readable(const pp_webconfig *c, const char *what, const char *path, char *err,
                    size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s \"%s\": cannot read: %s", c->path, what, path,
                 strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

static int accept_any(int preverify, X509_STORE_CTX *store)
{
    (void)preverify;
    (void)store;
    return 1;
}

static int version_of(pp_tls_version v)
{
    return v == PP_TLS13 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

int pp_tls_new(const pp_webconfig *c, SSL_CTX **out, char *err, size_t errlen)
{
    char why[256];
    *out = NULL;
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "%s: cannot create a TLS context: %s", c->path,
                 ssl_reason(why, sizeof(why)));
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, version_of(c->min_version));
    SSL_CTX_set_max_proto_version(ctx, version_of(c->max_version));
    /* no renegotiation, no compression; sessions by tickets only, so
     * nothing grows with the number of clients */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (c->prefer_server)
        SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (c->ciphers != NULL && SSL_CTX_set_cipher_list(ctx, c->ciphers) != 1) {
        snprintf(err, errlen, "%s: tls_server_config.cipher_suites: %s", c->path,
                 ssl_reason(why, sizeof(why)));
        goto fail;
    }
    if (c->groups != NULL && SSL_CTX_set1_groups_list(ctx, c->groups) != 1) {
        snprintf(err, errlen, "%s: tls_server_config.curve_preferences: %s", c->path,
                 ssl_reason(why, sizeof(why)));
        goto fail;
    }
    if (readable(c, "cert_file", c->cert_file, err, errlen) != 0 ||
        readable(c, "key_file", c->key_file, err, errlen) != 0 ||
        (c->client_ca_file != NULL &&
         readable(c, "client_ca_file", c->client_ca_file, err, errlen) != 0))
        goto fail;
    if (SSL_CTX_use_certificate_chain_file(ctx, c->cert_file) != 1) {
        snprintf(err, errlen, "%s: cert_file \"%s\": cannot load the certificate: %s", c->path,
                 c->cert_file, ssl_reason(why, sizeof(why)));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, c->key_file, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen, "%s: key_file \"%s\": cannot load the key: %s", c->path, c->key_file,
                 ssl_reason(why, sizeof(why)));
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "%s: key_file \"%s\" does not match cert_file \"%s\": %s", c->path,
                 c->key_file, c->cert_file, ssl_reason(why, sizeof(why)));
        goto fail;
    }
    if (c->client_ca_file != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(c->client_ca_file);
        if (names == NULL || SSL_CTX_load_verify_locations(ctx, c->client_ca_file, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            snprintf(err, errlen, "%s: client_ca_file \"%s\": cannot load a CA certificate: %s",
                     c->path, c->client_ca_file, ssl_reason(why, sizeof(why)));
            goto fail;
        }
        /* tells clients which CAs we accept; the context owns names now */
        SSL_CTX_set_client_CA_list(ctx, names);
    }
    switch (c->client_auth) {
    case PP_CLIENT_NO_CERT:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        break;
    case PP_CLIENT_REQUEST_CERT:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any);
        break;
    case PP_CLIENT_REQUIRE_ANY_CERT:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any);
        break;
    case PP_CLIENT_VERIFY_IF_GIVEN:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        break;
    case PP_CLIENT_REQUIRE_AND_VERIFY:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        break;
    }
    h2o_ssl_register_alpn_protocols(ctx, alpn);
    *out = ctx;
    return 0;

fail:
    SSL_CTX_free(ctx);
    return -1;
}
