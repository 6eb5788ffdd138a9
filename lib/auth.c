/*
 * auth: basic authentication (see auth.h for why a cache and the thread
 * pool both).
 *
 * The cache holds only successes, as keyed digests: SHA-256 over a random
 * per-process key, the user and the password, so that a memory dump gives
 * no fast way to test guesses. It is a fixed array replaced round-robin:
 * a handful of scrapers use a handful of credentials, and a bound keeps an
 * attacker who knows one password from growing memory. Lookups compare
 * every entry in constant time.
 *
 * Threads read users[] and nothing else of pp_auth; it does not change
 * while checks run.
 */
#include "auth.h"

#include <assert.h>
#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"

#define AUTH_MAX_RUNNING 2 /* bcrypt runs on the pool at once */
#define CACHE_ENTRIES 64   /* accepted credentials remembered */
#define MAX_ENCODED 1368   /* base64 of MAX_DECODED */
#define MAX_DECODED 1026   /* "user:password", a little over 1 KiB */
#define DIGEST_LEN 32

typedef struct entry {
    unsigned char digest[DIGEST_LEN];
    bool used;
} entry;

typedef struct check {
    uv_work_t work;
    pp_auth *auth;
    char *password; /* owned; wiped before it is freed */
    size_t user;    /* index into users, or n for an unknown user */
    unsigned char digest[DIGEST_LEN];
    bool ok;
    pp_auth_cb cb;
    void *data;
    struct check *next; /* waiting queue */
} check;

struct pp_auth {
    uv_loop_t *loop;
    pp_web_user *users; /* owned copies */
    size_t n;
    unsigned char key[DIGEST_LEN];
    entry cache[CACHE_ENTRIES];
    size_t next_slot;
    check *waiting, *waiting_tail;
    size_t running;
    size_t pending; /* running + waiting */
};

pp_auth *pp_auth_new(uv_loop_t *loop, const pp_web_user *users, size_t n)
{
    assert(n > 0);
    pp_auth *a = pp_calloc(1, sizeof(*a));
    a->loop = loop;
    a->users = pp_calloc(n, sizeof(*a->users));
    for (size_t i = 0; i < n; i++) {
        a->users[i].name = pp_strdup(users[i].name);
        a->users[i].hash = pp_strdup(users[i].hash);
    }
    a->n = n;
    if (RAND_bytes(a->key, sizeof(a->key)) != 1)
        abort(); /* no randomness: nothing here can be made safe */
    return a;
}

void pp_auth_free(pp_auth *a)
{
    if (a == NULL)
        return;
    assert(a->pending == 0);
    for (size_t i = 0; i < a->n; i++) {
        free(a->users[i].name);
        free(a->users[i].hash);
    }
    free(a->users);
    OPENSSL_cleanse(a, sizeof(*a));
    free(a);
}

size_t pp_auth_pending(const pp_auth *a)
{
    return a->pending;
}

/* "Basic <base64>" to "user:password" in out (NUL-terminated, no NUL
 * inside); returns its length, or -1. */
static long decode_basic(const char *v, size_t len, char *out)
{
    if (len < 6 || strncasecmp(v, "basic", 5) != 0 || (v[5] != ' ' && v[5] != '\t'))
        return -1;
    const char *p = v + 6, *end = v + len;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t n = (size_t)(end - p);
    /* Go's StdEncoding: padded, so a multiple of four */
    if (n == 0 || n > MAX_ENCODED || n % 4 != 0)
        return -1;
    for (const char *q = p; q < end; q++)
        if (*q == ' ' || *q == '\t')
            return -1;
    int pad = (end[-1] == '=') + (end[-2] == '=');
    int got = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)p, (int)n);
    if (got < 0 || got < pad)
        return -1;
    got -= pad;
    out[got] = '\0';
    if (memchr(out, '\0', (size_t)got) != NULL)
        return -1;
    return got;
}

static void digest_of(const pp_auth *a, const char *user, size_t ulen, const char *pw, size_t plen,
                      unsigned char *out)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int dlen = 0;
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(md, a->key, sizeof(a->key)) != 1 ||
        EVP_DigestUpdate(md, user, ulen + 1) != 1 || /* with its NUL: a separator */
        EVP_DigestUpdate(md, pw, plen) != 1 || EVP_DigestFinal_ex(md, out, &dlen) != 1 ||
        dlen != DIGEST_LEN)
        abort(); /* SHA-256 does not fail but for lack of memory */
    EVP_MD_CTX_free(md);
}

static bool cached(const pp_auth *a, const unsigned char *digest)
{
    int found = 0;
    for (size_t i = 0; i < CACHE_ENTRIES; i++)
        found |= a->cache[i].used & (CRYPTO_memcmp(a->cache[i].digest, digest, DIGEST_LEN) == 0);
    return found != 0;
}

static void on_work(uv_work_t *w)
{
    check *c = (check *)w;
    const pp_auth *a = c->auth;
    bool known = c->user < a->n;
    /* an unknown user is checked against a real hash, for the time it takes */
    const char *hash = a->users[known ? c->user : 0].hash;
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    c->ok = false;
    if (cd == NULL)
        return;
    const char *out = crypt_rn(c->password, hash, cd, (int)sizeof(*cd));
    size_t hlen = strlen(hash);
    if (out != NULL && strlen(out) == hlen)
        c->ok = known && CRYPTO_memcmp(out, hash, hlen) == 0;
    OPENSSL_cleanse(cd, sizeof(*cd));
    free(cd);
}

static void start_waiting(pp_auth *a);

static void check_free(check *c)
{
    OPENSSL_cleanse(c->password, strlen(c->password));
    free(c->password);
    OPENSSL_cleanse(c, sizeof(*c));
    free(c);
}

static void on_work_done(uv_work_t *w, int status)
{
    check *c = (check *)w;
    pp_auth *a = c->auth;
    bool ok = status == 0 && c->ok;
    if (ok) {
        entry *e = &a->cache[a->next_slot];
        memcpy(e->digest, c->digest, DIGEST_LEN);
        e->used = true;
        a->next_slot = (a->next_slot + 1) % CACHE_ENTRIES;
    }
    pp_auth_cb cb = c->cb;
    void *data = c->data;
    check_free(c);
    a->running--;
    a->pending--;
    start_waiting(a);
    cb(data, ok ? PP_AUTH_OK : PP_AUTH_DENIED);
}

static void start_waiting(pp_auth *a)
{
    while (a->running < AUTH_MAX_RUNNING && a->waiting != NULL) {
        check *c = a->waiting;
        a->waiting = c->next;
        if (a->waiting == NULL)
            a->waiting_tail = NULL;
        c->next = NULL;
        if (uv_queue_work(a->loop, &c->work, on_work, on_work_done) != 0) {
            /* cannot happen with a valid loop; answer rather than hang */
            pp_auth_cb cb = c->cb;
            void *data = c->data;
            check_free(c);
            a->pending--;
            cb(data, PP_AUTH_DENIED);
            continue;
        }
        a->running++;
    }
}

pp_auth_result pp_auth_check(pp_auth *a, const char *value, size_t len, pp_auth_cb cb, void *data)
{
    char decoded[MAX_DECODED + 4];
    if (value == NULL)
        return PP_AUTH_DENIED;
    long n = decode_basic(value, len, decoded);
    char *colon = n > 0 ? memchr(decoded, ':', (size_t)n) : NULL;
    if (colon == NULL) {
        OPENSSL_cleanse(decoded, sizeof(decoded));
        return PP_AUTH_DENIED;
    }
    *colon = '\0';
    const char *user = decoded, *pw = colon + 1;
    size_t ulen = (size_t)(colon - decoded), plen = (size_t)n - ulen - 1;
    check *c = pp_calloc(1, sizeof(*c));
    digest_of(a, user, ulen, pw, plen, c->digest);
    if (cached(a, c->digest)) {
        OPENSSL_cleanse(decoded, sizeof(decoded));
        OPENSSL_cleanse(c, sizeof(*c));
        free(c);
        return PP_AUTH_OK;
    }
    c->auth = a;
    c->user = a->n;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->users[i].name, user) == 0)
            c->user = i;
    c->password = pp_strdup(pw);
    OPENSSL_cleanse(decoded, sizeof(decoded));
    c->cb = cb;
    c->data = data;
    if (a->waiting_tail != NULL)
        a->waiting_tail->next = c;
    else
        a->waiting = c;
    a->waiting_tail = c;
    a->pending++;
    start_waiting(a);
    return PP_AUTH_PENDING;
}

void pp_auth_cancel_waiting(pp_auth *a)
{
    while (a->waiting != NULL) {
        check *c = a->waiting;
        a->waiting = c->next;
        pp_auth_cb cb = c->cb;
        void *data = c->data;
        check_free(c);
        a->pending--;
        cb(data, PP_AUTH_CANCELLED);
    }
    a->waiting_tail = NULL;
}
