/*
 * fuzz_webconfig: the exporter-toolkit web configuration reader
 * (webconfig.h).
 *
 * The input is one web config file. A failed parse must give no config and
 * a one-line "fuzz.yaml:line:column: message". A parsed one must be
 * consistent: TLS has a certificate and a key, a verifying client policy
 * has its CA file, a CA file has a policy that uses it, min_version is not
 * above max_version, every user has a bcrypt-shaped hash, every header is
 * one the toolkit allows.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "webconfig.h"

#define NAME "fuzz.yaml"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const headers[] = {"Strict-Transport-Security", "X-Content-Type-Options",
                                          "X-Frame-Options", "X-XSS-Protection",
                                          "Content-Security-Policy"};
    char err[512];
    pp_webconfig *c = (pp_webconfig *)1;

    err[0] = '\0';
    if (pp_webconfig_parse(NAME, (const char *)data, size, &c, err, sizeof err) != 0) {
        FUZZ_CHECK(c == NULL);
        fuzz_check_positioned(err, NAME);
        return 0;
    }
    FUZZ_CHECK(c != NULL);
    FUZZ_CHECK(strcmp(c->path, NAME) == 0);
    FUZZ_CHECK(c->min_version <= c->max_version);
    if (c->tls) {
        FUZZ_CHECK(c->cert_file != NULL && *c->cert_file != '\0');
        FUZZ_CHECK(c->key_file != NULL && *c->key_file != '\0');
        bool verifies = c->client_auth == PP_CLIENT_VERIFY_IF_GIVEN ||
                        c->client_auth == PP_CLIENT_REQUIRE_AND_VERIFY;
        FUZZ_CHECK(!verifies || c->client_ca_file != NULL);
        FUZZ_CHECK(c->client_ca_file == NULL || c->client_auth != PP_CLIENT_NO_CERT);
    }
    for (size_t i = 0; i < c->nusers; i++) {
        FUZZ_CHECK(*c->users[i].name != '\0' && strchr(c->users[i].name, ':') == NULL);
        FUZZ_CHECK(strlen(c->users[i].hash) == 60 && c->users[i].hash[0] == '$');
    }
    for (size_t i = 0; i < c->nheaders; i++) {
        bool known = false;
        for (size_t j = 0; j < sizeof(headers) / sizeof(headers[0]); j++)
            known = known || strcmp(headers[j], c->headers[i].name) == 0;
        FUZZ_CHECK(known);
    }
    pp_webconfig_free(c);
    return 0;
}
