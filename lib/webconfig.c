/*
 * webconfig: the exporter-toolkit web configuration (see webconfig.h).
 *
 * The checks follow exporter-toolkit's: cert_file and key_file go
 * together; client_ca_file without a client_auth_type that uses it is an
 * error; min_version may not exceed max_version; a cipher suite or curve
 * must be one the toolkit knows; basic_auth_users values must be bcrypt
 * hashes (checked here, at start-up, where the toolkit only fails every
 * login later); only the security headers the toolkit allows may be set.
 * Where pgpulse is stricter it says so in the message: a verifying
 * client_auth_type needs client_ca_file (Go would fall back to the
 * system's roots, which trusts every public CA for client certificates),
 * and TLS 1.0 and 1.1 are refused.
 *
 * Every key is looked up in a table per mapping; a key not in it is an
 * error at the key's position, one the toolkit knows but pgpulse does not
 * implement names itself as such.
 */
#include "webconfig.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "yaml.h"

#define MAX_FILE_BYTES (1 << 20)

typedef struct ctx {
    const pp_yaml_doc *doc;
    pp_webconfig *c;
    char *err;
    size_t errlen;
} ctx;

static int expect(ctx *x, const pp_yaml_node *n, pp_yaml_kind kind, const char *what)
{
    if (n->kind == kind)
        return 0;
    return pp_yaml_error_at(x->err, x->errlen, x->doc, n, "%s: expected %s, found %s", what,
                            pp_yaml_kind_name(kind), pp_yaml_kind_name(n->kind));
}

/* A YAML null: "", ~ or null written plainly (an absent value). */
static bool is_null(const pp_yaml_node *n)
{
    return n->kind == PP_YAML_SCALAR && n->style == PP_YAML_PLAIN &&
           (n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0);
}

/* A key the toolkit reads and pgpulse refuses: name and why. */
static int unsupported(ctx *x, const pp_yaml_node *key, const char *section, const char *why)
{
    return pp_yaml_error_at(x->err, x->errlen, x->doc, key,
                            "%s%s%s is not supported by pgpulse%s%s", section, *section ? "." : "",
                            key->str, *why ? ": " : "", why);
}

/* Reports the first key of m outside known; refused lists the toolkit's
 * keys pgpulse does not implement, each followed by the reason. */
static int check_keys(ctx *x, const pp_yaml_node *m, const char *section, const char *const *known,
                      const char *const *refused)
{
    for (size_t i = 0; i < m->n; i++) {
        const pp_yaml_node *k = m->items[2 * i];
        for (size_t j = 0; refused != NULL && refused[j] != NULL; j += 2)
            if (strcmp(k->str, refused[j]) == 0)
                return unsupported(x, k, section, refused[j + 1]);
        const char *const *a = known;
        while (*a != NULL && strcmp(*a, k->str) != 0)
            a++;
        if (*a == NULL)
            return pp_yaml_error_at(x->err, x->errlen, x->doc, k, "%s%sunknown key \"%s\"", section,
                                    *section ? ": " : "", k->str);
    }
    return 0;
}

static int get_string(ctx *x, const pp_yaml_node *n, const char *what, char **out)
{
    if (expect(x, n, PP_YAML_SCALAR, what) != 0)
        return -1;
    free(*out);
    *out = is_null(n) || n->len == 0 ? NULL : pp_strdup(n->str);
    return 0;
}

/* A file named in the web config: relative to the config file's
 * directory, as exporter-toolkit resolves it. */
static int get_file(ctx *x, const pp_yaml_node *n, const char *what, char **out)
{
    if (get_string(x, n, what, out) != 0)
        return -1;
    const char *slash = strrchr(x->c->path, '/');
    if (*out == NULL || (*out)[0] == '/' || slash == NULL)
        return 0;
    pp_buf b = PP_BUF_INIT;
    pp_buf_append(&b, x->c->path, (size_t)(slash - x->c->path) + 1);
    pp_buf_puts(&b, *out);
    free(*out);
    *out = pp_buf_steal(&b, NULL);
    return 0;
}

static int get_bool(ctx *x, const pp_yaml_node *n, const char *what, bool *out)
{
    if (expect(x, n, PP_YAML_SCALAR, what) != 0)
        return -1;
    if (n->style == PP_YAML_PLAIN && strcmp(n->str, "true") == 0)
        *out = true;
    else if (n->style == PP_YAML_PLAIN && strcmp(n->str, "false") == 0)
        *out = false;
    else
        return pp_yaml_error_at(x->err, x->errlen, x->doc, n, "%s: \"%s\" is not true or false",
                                what, n->str);
    return 0;
}

static int get_version(ctx *x, const pp_yaml_node *n, const char *what, pp_tls_version *out)
{
    if (expect(x, n, PP_YAML_SCALAR, what) != 0)
        return -1;
    if (strcmp(n->str, "TLS12") == 0)
        *out = PP_TLS12;
    else if (strcmp(n->str, "TLS13") == 0)
        *out = PP_TLS13;
    else if (strcmp(n->str, "TLS10") == 0 || strcmp(n->str, "TLS11") == 0)
        return pp_yaml_error_at(x->err, x->errlen, x->doc, n,
                                "%s: %s is not supported by pgpulse (TLS12 at least)", what,
                                n->str);
    else
        return pp_yaml_error_at(x->err, x->errlen, x->doc, n,
                                "%s: unknown TLS version \"%s\" (TLS12 or TLS13)", what, n->str);
    return 0;
}

static const char *const client_auth_names[] = {
    [PP_CLIENT_NO_CERT] = "NoClientCert",
    [PP_CLIENT_REQUEST_CERT] = "RequestClientCert",
    [PP_CLIENT_REQUIRE_ANY_CERT] = "RequireAnyClientCert",
    [PP_CLIENT_VERIFY_IF_GIVEN] = "VerifyClientCertIfGiven",
    [PP_CLIENT_REQUIRE_AND_VERIFY] = "RequireAndVerifyClientCert",
};

#define NCLIENT_AUTH (sizeof(client_auth_names) / sizeof(client_auth_names[0]))

const char *pp_webconfig_client_auth_name(pp_client_auth a)
{
    return (size_t)a < NCLIENT_AUTH ? client_auth_names[a] : "?";
}

/* TLS 1.3's suites: Go always enables them and ignores them in
 * cipher_suites; so do we. */
static bool is_tls13_suite(const char *name)
{
    return strcmp(name, "TLS_AES_128_GCM_SHA256") == 0 ||
           strcmp(name, "TLS_AES_256_GCM_SHA384") == 0 ||
           strcmp(name, "TLS_CHACHA20_POLY1305_SHA256") == 0;
}

/* What one item of a list names in OpenSSL's terms: the name, or "" to
 * leave the item out, or NULL after reporting it. */
typedef const char *(*item_name)(ctx *x, const pp_yaml_node *s, const char *what);

/* A sequence of scalars as OpenSSL's colon-separated list in *dst (NULL
 * when empty). Returns 0 or -1. */
static int get_list(ctx *x, const pp_yaml_node *n, const char *what, item_name name, char **dst)
{
    if (is_null(n))
        return 0;
    if (expect(x, n, PP_YAML_SEQUENCE, what) != 0)
        return -1;
    pp_buf b = PP_BUF_INIT;
    for (size_t i = 0; i < n->n; i++) {
        const pp_yaml_node *s = n->items[i];
        const char *v = expect(x, s, PP_YAML_SCALAR, what) == 0 ? name(x, s, what) : NULL;
        if (v == NULL) {
            pp_buf_deinit(&b);
            return -1;
        }
        if (*v == '\0')
            continue;
        if (b.len > 0)
            pp_buf_putc(&b, ':');
        pp_buf_puts(&b, v);
    }
    free(*dst);
    *dst = b.len > 0 ? pp_buf_steal(&b, NULL) : NULL;
    pp_buf_deinit(&b);
    return 0;
}

static const char *cipher_name(ctx *x, const pp_yaml_node *s, const char *what)
{
    if (is_tls13_suite(s->str))
        return ""; /* TLS 1.3 suites are not configurable, as in Go */
    /* the toolkit's names are the IANA ones, as Go spells them */
    const char *ossl = OPENSSL_cipher_name(s->str);
    if (strncmp(s->str, "TLS_", 4) != 0 || ossl == NULL || strcmp(ossl, "(NONE)") == 0) {
        pp_yaml_error_at(x->err, x->errlen, x->doc, s, "%s: unknown cipher suite \"%s\"", what,
                         s->str);
        return NULL;
    }
    return ossl;
}

static const char *curve_name(ctx *x, const pp_yaml_node *s, const char *what)
{
    static const char *const map[][2] = {
        {"CurveP256", "P-256"},
        {"CurveP384", "P-384"},
        {"CurveP521", "P-521"},
        {"X25519", "X25519"},
    };
    for (size_t j = 0; j < sizeof(map) / sizeof(map[0]); j++)
        if (strcmp(map[j][0], s->str) == 0)
            return map[j][1];
    pp_yaml_error_at(x->err, x->errlen, x->doc, s,
                     "%s: unknown curve \"%s\" (CurveP256, CurveP384, CurveP521, X25519)", what,
                     s->str);
    return NULL;
}

static int get_ciphers(ctx *x, const pp_yaml_node *n)
{
    return get_list(x, n, "tls_server_config.cipher_suites", cipher_name, &x->c->ciphers);
}

static int get_curves(ctx *x, const pp_yaml_node *n)
{
    return get_list(x, n, "tls_server_config.curve_preferences", curve_name, &x->c->groups);
}

static int read_tls(ctx *x, const pp_yaml_node *m, const pp_yaml_node *at)
{
    static const char *const known[] = {
        "cert_file",         "key_file",    "client_ca_file", "client_auth_type",
        "min_version",       "max_version", "cipher_suites",  "prefer_server_cipher_suites",
        "curve_preferences", NULL};
    static const char *const refused[] = {"cert",
                                          "give the certificate in cert_file",
                                          "key",
                                          "give the key in key_file",
                                          "client_ca",
                                          "give the client CAs in client_ca_file",
                                          "client_allowed_sans",
                                          "",
                                          NULL};
    const char *sec = "tls_server_config";
    pp_webconfig *c = x->c;
    if (is_null(m))
        return 0;
    if (expect(x, m, PP_YAML_MAPPING, sec) != 0 || check_keys(x, m, sec, known, refused) != 0)
        return -1;
    const pp_yaml_node *v, *auth = NULL, *ca = NULL, *cert = NULL, *key = NULL;
    if ((cert = pp_yaml_get(m, "cert_file")) != NULL &&
        get_file(x, cert, "tls_server_config.cert_file", &c->cert_file) != 0)
        return -1;
    if ((key = pp_yaml_get(m, "key_file")) != NULL &&
        get_file(x, key, "tls_server_config.key_file", &c->key_file) != 0)
        return -1;
    if ((ca = pp_yaml_get(m, "client_ca_file")) != NULL &&
        get_file(x, ca, "tls_server_config.client_ca_file", &c->client_ca_file) != 0)
        return -1;
    if ((auth = pp_yaml_get(m, "client_auth_type")) != NULL) {
        if (expect(x, auth, PP_YAML_SCALAR, "tls_server_config.client_auth_type") != 0)
            return -1;
        size_t i = 0;
        while (i < NCLIENT_AUTH && strcmp(client_auth_names[i], auth->str) != 0)
            i++;
        if (i == NCLIENT_AUTH)
            return pp_yaml_error_at(
                x->err, x->errlen, x->doc, auth,
                "tls_server_config.client_auth_type: unknown \"%s\" (NoClientCert, "
                "RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, "
                "RequireAndVerifyClientCert)",
                auth->str);
        c->client_auth = (pp_client_auth)i;
    }
    if ((v = pp_yaml_get(m, "min_version")) != NULL &&
        get_version(x, v, "tls_server_config.min_version", &c->min_version) != 0)
        return -1;
    if ((v = pp_yaml_get(m, "max_version")) != NULL &&
        get_version(x, v, "tls_server_config.max_version", &c->max_version) != 0)
        return -1;
    if (c->min_version > c->max_version)
        return pp_yaml_error_at(x->err, x->errlen, x->doc, v ? v : m,
                                "tls_server_config: min_version is above max_version");
    if ((v = pp_yaml_get(m, "prefer_server_cipher_suites")) != NULL &&
        get_bool(x, v, "tls_server_config.prefer_server_cipher_suites", &c->prefer_server) != 0)
        return -1;
    if ((v = pp_yaml_get(m, "cipher_suites")) != NULL && get_ciphers(x, v) != 0)
        return -1;
    if ((v = pp_yaml_get(m, "curve_preferences")) != NULL && get_curves(x, v) != 0)
        return -1;

    /* as the toolkit: nothing set at all is plain HTTP */
    if (c->cert_file == NULL && c->key_file == NULL && c->client_ca_file == NULL && auth == NULL)
        return 0;
    if (c->cert_file == NULL)
        return pp_yaml_error_at(x->err, x->errlen, x->doc, cert ? cert : at,
                                "tls_server_config: missing cert_file");
    if (c->key_file == NULL)
        return pp_yaml_error_at(x->err, x->errlen, x->doc, key ? key : at,
                                "tls_server_config: missing key_file");
    bool verifies = c->client_auth == PP_CLIENT_VERIFY_IF_GIVEN ||
                    c->client_auth == PP_CLIENT_REQUIRE_AND_VERIFY;
    if (c->client_ca_file != NULL && c->client_auth == PP_CLIENT_NO_CERT)
        return pp_yaml_error_at(x->err, x->errlen, x->doc, ca,
                                "tls_server_config: client_ca_file is set but client_auth_type "
                                "is NoClientCert (set RequireAndVerifyClientCert)");
    if (verifies && c->client_ca_file == NULL)
        return pp_yaml_error_at(x->err, x->errlen, x->doc, auth,
                                "tls_server_config: client_auth_type %s needs client_ca_file",
                                auth->str);
    c->tls = true;
    return 0;
}

/* A bcrypt hash as htpasswd -B and Go's bcrypt write it:
 * $2a$, $2b$ or $2y$, a two-digit cost from 04 to 31, '$', 53 characters
 * of bcrypt's base64. */
static bool is_bcrypt(const char *h)
{
    static const char alphabet[] =
        "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    if (strlen(h) != 60 || h[0] != '$' || h[1] != '2' || strchr("aby", h[2]) == NULL ||
        h[2] == '\0' || h[3] != '$' || h[4] < '0' || h[4] > '3' || h[5] < '0' || h[5] > '9' ||
        h[6] != '$')
        return false;
    int cost = (h[4] - '0') * 10 + (h[5] - '0');
    if (cost < 4 || cost > 31)
        return false;
    for (size_t i = 7; i < 60; i++)
        if (strchr(alphabet, h[i]) == NULL || h[i] == '\0')
            return false;
    return true;
}

static int read_users(ctx *x, const pp_yaml_node *m)
{
    const char *sec = "basic_auth_users";
    pp_webconfig *c = x->c;
    if (is_null(m))
        return 0;
    if (expect(x, m, PP_YAML_MAPPING, sec) != 0)
        return -1;
    c->users = pp_calloc(m->n ? m->n : 1, sizeof(*c->users));
    for (size_t i = 0; i < m->n; i++) {
        const pp_yaml_node *k = m->items[2 * i], *v = m->items[2 * i + 1];
        if (k->len == 0 || strchr(k->str, ':') != NULL)
            return pp_yaml_error_at(x->err, x->errlen, x->doc, k,
                                    "%s: user name \"%s\" is empty or holds ':'", sec, k->str);
        if (expect(x, v, PP_YAML_SCALAR, sec) != 0)
            return -1;
        /* the hash is not a secret, but say nothing of what it holds */
        if (!is_bcrypt(v->str))
            return pp_yaml_error_at(x->err, x->errlen, x->doc, v,
                                    "%s: user \"%s\": not a bcrypt hash ($2y$10$... as from "
                                    "htpasswd -nBC 10)",
                                    sec, k->str);
        c->users[c->nusers].name = pp_strdup(k->str);
        c->users[c->nusers].hash = pp_strdup(v->str);
        c->nusers++;
    }
    return 0;
}

static int read_headers(ctx *x, const pp_yaml_node *m)
{
    /* the toolkit's list, and the values it allows (NULL: any) */
    static const struct {
        const char *name;
        const char *values[3];
    } allowed[] = {
        {"Strict-Transport-Security", {NULL}},
        {"X-Content-Type-Options", {"nosniff", NULL}},
        {"X-Frame-Options", {"deny", "sameorigin", NULL}},
        {"X-XSS-Protection", {NULL}},
        {"Content-Security-Policy", {NULL}},
    };
    const char *sec = "http_server_config.headers";
    pp_webconfig *c = x->c;
    if (is_null(m))
        return 0;
    if (expect(x, m, PP_YAML_MAPPING, sec) != 0)
        return -1;
    c->headers = pp_calloc(m->n ? m->n : 1, sizeof(*c->headers));
    for (size_t i = 0; i < m->n; i++) {
        const pp_yaml_node *k = m->items[2 * i], *v = m->items[2 * i + 1];
        size_t j = 0, n = sizeof(allowed) / sizeof(allowed[0]);
        while (j < n && strcasecmp(allowed[j].name, k->str) != 0)
            j++;
        if (j == n)
            return pp_yaml_error_at(x->err, x->errlen, x->doc, k,
                                    "%s: header \"%s\" cannot be set (Strict-Transport-Security, "
                                    "X-Content-Type-Options, X-Frame-Options, X-XSS-Protection, "
                                    "Content-Security-Policy)",
                                    sec, k->str);
        if (expect(x, v, PP_YAML_SCALAR, sec) != 0)
            return -1;
        if (allowed[j].values[0] != NULL) {
            size_t a = 0;
            while (allowed[j].values[a] != NULL && strcasecmp(allowed[j].values[a], v->str) != 0)
                a++;
            if (allowed[j].values[a] == NULL)
                return pp_yaml_error_at(x->err, x->errlen, x->doc, v,
                                        "%s: invalid value \"%s\" for %s", sec, v->str,
                                        allowed[j].name);
        }
        for (const char *p = v->str; *p != '\0'; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                return pp_yaml_error_at(x->err, x->errlen, x->doc, v,
                                        "%s: control character in the value of %s", sec,
                                        allowed[j].name);
        c->headers[c->nheaders].name = allowed[j].name;
        c->headers[c->nheaders].value = pp_strdup(v->str);
        c->nheaders++;
    }
    return 0;
}

static int read_http(ctx *x, const pp_yaml_node *m)
{
    static const char *const known[] = {"http2", "headers", NULL};
    const char *sec = "http_server_config";
    if (is_null(m))
        return 0;
    if (expect(x, m, PP_YAML_MAPPING, sec) != 0 || check_keys(x, m, sec, known, NULL) != 0)
        return -1;
    const pp_yaml_node *v;
    bool http2 = false;
    /* pgpulse serves HTTP/1.1 only: "http2: true" (the toolkit's default)
     * is accepted and changes nothing */
    if ((v = pp_yaml_get(m, "http2")) != NULL &&
        get_bool(x, v, "http_server_config.http2", &http2) != 0)
        return -1;
    if ((v = pp_yaml_get(m, "headers")) != NULL && read_headers(x, v) != 0)
        return -1;
    return 0;
}

int pp_webconfig_parse(const char *name, const char *data, size_t len, pp_webconfig **out,
                       char *err, size_t errlen)
{
    static const char *const known[] = {"tls_server_config", "http_server_config",
                                        "basic_auth_users", NULL};
    static const char *const refused[] = {"rate_limit", "", NULL};
    *out = NULL;
    pp_yaml_doc *doc = NULL;
    if (pp_yaml_parse(name, data, len, &doc, err, errlen) != 0)
        return -1;
    pp_webconfig *c = pp_calloc(1, sizeof(*c));
    c->path = pp_strdup(name);
    unsigned int dlen = 0;
    if (EVP_Digest(data, len, c->digest, &dlen, EVP_sha256(), NULL) != 1)
        abort(); /* SHA-256 fails only for lack of memory */
    c->min_version = PP_TLS12;
    c->max_version = PP_TLS13;
    c->prefer_server = true;
    ctx x = {doc, c, err, errlen};
    const pp_yaml_node *root = pp_yaml_root(doc), *v;
    if (root == NULL || is_null(root))
        goto done; /* empty: plain HTTP, as upstream */
    if (expect(&x, root, PP_YAML_MAPPING, "web configuration") != 0 ||
        check_keys(&x, root, "", known, refused) != 0)
        goto fail;
    if ((v = pp_yaml_get(root, "tls_server_config")) != NULL &&
        read_tls(&x, v, root->items[0]) != 0)
        goto fail;
    if ((v = pp_yaml_get(root, "http_server_config")) != NULL && read_http(&x, v) != 0)
        goto fail;
    if ((v = pp_yaml_get(root, "basic_auth_users")) != NULL && read_users(&x, v) != 0)
        goto fail;
done:
    pp_yaml_free(doc);
    *out = c;
    return 0;
fail:
    pp_yaml_free(doc);
    pp_webconfig_free(c);
    return -1;
}

int pp_webconfig_load(const char *path, pp_webconfig **out, char *err, size_t errlen)
{
    *out = NULL;
    char *data;
    size_t n;
    if (pp_read_file(path, MAX_FILE_BYTES, &data, &n, err, errlen) != 0)
        return -1;
    int rc = pp_webconfig_parse(path, data, n, out, err, errlen);
    free(data);
    return rc;
}

void pp_webconfig_free(pp_webconfig *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nusers; i++) {
        free(c->users[i].name);
        free(c->users[i].hash);
    }
    free(c->users);
    for (size_t i = 0; i < c->nheaders; i++)
        free(c->headers[i].value);
    free(c->headers);
    free(c->path);
    free(c->cert_file);
    free(c->key_file);
    free(c->client_ca_file);
    free(c->ciphers);
    free(c->groups);
    free(c);
}
