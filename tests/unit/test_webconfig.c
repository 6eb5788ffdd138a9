/*
 * test_webconfig: the exporter-toolkit web configuration reader.
 *
 * A full file gives the TLS, user and header settings it says, with
 * certificate paths relative to the file's directory; an empty file means
 * plain HTTP; every mistake is refused with "file:line:column: message":
 * unknown and unsupported keys, a cert without its key, a client CA
 * without a policy that uses it, a verifying policy without a CA, unknown
 * versions, suites, curves and policies, min above max, a password hash
 * that is not bcrypt, a header the toolkit does not allow.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "webconfig.h"

#define HASH "$2y$10$jTQHmPpuCH/bvt8jCicXi./6ianjOMGsLh6nsZfGujffbeaZVknzq"

static char err[512];

static pp_webconfig *parse(const char *text)
{
    pp_webconfig *c = (pp_webconfig *)1;
    err[0] = '\0';
    if (pp_webconfig_parse("/etc/pgpulse/web.yml", text, strlen(text), &c, err, sizeof err) != 0) {
        CHECK(c == NULL);
        return NULL;
    }
    CHECK(c != NULL);
    return c;
}

static void expect_error(const char *text, const char *want, int line)
{
    pp_webconfig *c = parse(text);
    if (c != NULL || strcmp(err, want) != 0) {
        fprintf(stderr, "%s:%d: %s\n  got:  \"%s\"\n  want: \"%s\"\n", __FILE__, line,
                c != NULL ? "parsed" : "wrong message", err, want);
        check_failures++;
    }
    pp_webconfig_free(c);
}

#define EXPECT_ERROR(text, want) expect_error(text, want, __LINE__)
#define W "/etc/pgpulse/web.yml:"

static void test_full(void)
{
    pp_webconfig *c = parse("tls_server_config:\n"
                            "  cert_file: server.crt\n"
                            "  key_file: /keys/server.key\n"
                            "  client_auth_type: RequireAndVerifyClientCert\n"
                            "  client_ca_file: ca.crt\n"
                            "  min_version: TLS13\n"
                            "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "
                            "TLS_AES_128_GCM_SHA256]\n"
                            "  curve_preferences: [X25519, CurveP256]\n"
                            "  prefer_server_cipher_suites: false\n"
                            "http_server_config:\n"
                            "  http2: false\n"
                            "  headers:\n"
                            "    x-frame-options: deny\n"
                            "basic_auth_users:\n"
                            "  alice: " HASH "\n"
                            "  bob: '" HASH "'\n");
    CHECK(c != NULL);
    if (c == NULL) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    CHECK(c->tls);
    CHECK_STR(c->cert_file, "/etc/pgpulse/server.crt");
    CHECK_STR(c->key_file, "/keys/server.key");
    CHECK_STR(c->client_ca_file, "/etc/pgpulse/ca.crt");
    CHECK(c->client_auth == PP_CLIENT_REQUIRE_AND_VERIFY);
    CHECK(c->min_version == PP_TLS13 && c->max_version == PP_TLS13);
    CHECK_STR(c->ciphers, "ECDHE-RSA-AES128-GCM-SHA256");
    CHECK_STR(c->groups, "X25519:P-256");
    CHECK(!c->prefer_server);
    CHECK(c->nheaders == 1);
    CHECK_STR(c->headers[0].name, "X-Frame-Options");
    CHECK_STR(c->headers[0].value, "deny");
    CHECK(c->nusers == 2);
    CHECK_STR(c->users[1].name, "bob");
    CHECK_STR(c->users[1].hash, HASH);
    pp_webconfig_free(c);
}

static void test_plain(void)
{
    const char *plain[] = {"", "# nothing\n", "tls_server_config:\n",
                           "basic_auth_users:\nhttp_server_config: {http2: true}\n"};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        pp_webconfig *c = parse(plain[i]);
        CHECK(c != NULL && !c->tls && c->nusers == 0);
        CHECK(c != NULL && c->min_version == PP_TLS12 && c->max_version == PP_TLS13);
        pp_webconfig_free(c);
    }
    /* basic auth without TLS is allowed, as upstream */
    pp_webconfig *c = parse("basic_auth_users: {u: " HASH "}\n");
    CHECK(c != NULL && !c->tls && c->nusers == 1);
    pp_webconfig_free(c);
}

static void test_errors(void)
{
    EXPECT_ERROR("tls_server_config:\n  cert_file: a\n   key_file: b\n",
                 W "3:12: syntax error: mapping values are not allowed in this context");
    EXPECT_ERROR("tls_server_config:\n  cert_file: a\n  key_file: b\n  cert_fil: c\n",
                 W "4:3: tls_server_config: unknown key \"cert_fil\"");
    EXPECT_ERROR("tls_config: {}\n", W "1:1: unknown key \"tls_config\"");
    EXPECT_ERROR("rate_limit: {interval: 1s}\n", W "1:1: rate_limit is not supported by pgpulse");
    EXPECT_ERROR("tls_server_config:\n  cert: abc\n",
                 W "2:3: tls_server_config.cert is not supported by pgpulse: give the "
                   "certificate in cert_file");
    EXPECT_ERROR("http_server_config:\n  http3: true\n",
                 W "2:3: http_server_config: unknown key \"http3\"");
    EXPECT_ERROR("http_server_config:\n  http2: maybe\n",
                 W "2:10: http_server_config.http2: \"maybe\" is not true or false");
    EXPECT_ERROR("- a\n", W "1:1: web configuration: expected a mapping, found a sequence");
    EXPECT_ERROR("tls_server_config:\n  cert_file: a\n",
                 W "1:1: tls_server_config: missing key_file");
    EXPECT_ERROR("tls_server_config:\n  key_file: a\n",
                 W "1:1: tls_server_config: missing cert_file");
    EXPECT_ERROR("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n",
                 W "4:19: tls_server_config: client_ca_file is set but client_auth_type is "
                   "NoClientCert (set RequireAndVerifyClientCert)");
    EXPECT_ERROR("tls_server_config:\n  cert_file: a\n  key_file: b\n"
                 "  client_auth_type: VerifyClientCertIfGiven\n",
                 W "4:21: tls_server_config: client_auth_type VerifyClientCertIfGiven needs "
                   "client_ca_file");
    EXPECT_ERROR("tls_server_config:\n  cert_file: a\n  key_file: b\n"
                 "  client_auth_type: RequireClientCert\n",
                 W "4:21: tls_server_config.client_auth_type: unknown \"RequireClientCert\" "
                   "(NoClientCert, RequestClientCert, RequireAnyClientCert, "
                   "VerifyClientCertIfGiven, RequireAndVerifyClientCert)");
    EXPECT_ERROR("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS11\n",
                 W "4:16: tls_server_config.min_version: TLS11 is not supported by pgpulse "
                   "(TLS12 at least)");
    EXPECT_ERROR("tls_server_config:\n  cert_file: a\n  key_file: b\n  max_version: SSL3\n",
                 W "4:16: tls_server_config.max_version: unknown TLS version \"SSL3\" (TLS12 "
                   "or TLS13)");
    EXPECT_ERROR("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n"
                 "  max_version: TLS12\n",
                 W "5:16: tls_server_config: min_version is above max_version");
    EXPECT_ERROR("tls_server_config:\n  cert_file: a\n  key_file: b\n"
                 "  cipher_suites: [TLS_NOPE_WITH_NOTHING]\n",
                 W "4:19: tls_server_config.cipher_suites: unknown cipher suite "
                   "\"TLS_NOPE_WITH_NOTHING\"");
    EXPECT_ERROR("tls_server_config:\n  cert_file: a\n  key_file: b\n"
                 "  curve_preferences: [P-256]\n",
                 W "4:23: tls_server_config.curve_preferences: unknown curve \"P-256\" "
                   "(CurveP256, CurveP384, CurveP521, X25519)");
    EXPECT_ERROR("basic_auth_users:\n  alice: s3cret\n",
                 W "2:10: basic_auth_users: user \"alice\": not a bcrypt hash ($2y$10$... as "
                   "from htpasswd -nBC 10)");
    EXPECT_ERROR("basic_auth_users:\n  alice: {a: b}\n",
                 W "2:10: basic_auth_users: expected a scalar, found a mapping");
    EXPECT_ERROR("basic_auth_users:\n  'a:b': " HASH "\n",
                 W "2:3: basic_auth_users: user name \"a:b\" is empty or holds ':'");
    EXPECT_ERROR("http_server_config:\n  headers:\n    Set-Cookie: x\n",
                 W "3:5: http_server_config.headers: header \"Set-Cookie\" cannot be set "
                   "(Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, "
                   "X-XSS-Protection, Content-Security-Policy)");
    EXPECT_ERROR("http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
                 W "3:29: http_server_config.headers: invalid value \"sniff\" for "
                   "X-Content-Type-Options");
}

/* The hash is not the password, yet a message never repeats it. */
static void test_no_secret_in_messages(void)
{
    EXPECT_ERROR("basic_auth_users:\n  alice: " HASH "x\n",
                 W "2:10: basic_auth_users: user \"alice\": not a bcrypt hash ($2y$10$... as "
                   "from htpasswd -nBC 10)");
}

int main(void)
{
    test_full();
    test_plain();
    test_errors();
    test_no_secret_in_messages();
    return CHECK_RESULT();
}
