/*
 * test_auth: basic authentication against bcrypt hashes, on a real loop.
 *
 * Malformed or missing headers are refused at once; a first right
 * password is accepted after a check on the thread pool and from then on
 * at once (the cache); wrong passwords and unknown users are refused after
 * a check, every time (only successes are cached); a password may hold
 * ':'; many checks at once are all answered; a shutdown answers the
 * waiting ones at once and lets the running ones finish.
 */
#include <crypt.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "auth.h"
#include "check.h"

typedef struct answer {
    int calls;
    pp_auth_result result;
} answer;

static void on_done(void *data, pp_auth_result result)
{
    answer *a = data;
    a->calls++;
    a->result = result;
}

static char *header(const char *userpass)
{
    static char out[512];
    strcpy(out, "Basic ");
    EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)userpass,
                    (int)strlen(userpass));
    return out;
}

/* The check's answer: at once, or after running the loop. */
static pp_auth_result check(uv_loop_t *loop, pp_auth *a, const char *value, bool *waited)
{
    answer ans = {0, PP_AUTH_PENDING};
    pp_auth_result r = pp_auth_check(a, value, value ? strlen(value) : 0, on_done, &ans);
    *waited = r == PP_AUTH_PENDING;
    if (r != PP_AUTH_PENDING)
        return r;
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(ans.calls == 1);
    return ans.result;
}

static char *bcrypt_hash(const char *password)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    CHECK(crypt_gensalt_rn("$2b$", 4, NULL, 0, salt, sizeof(salt)) != NULL);
    char *h = strdup(crypt_rn(password, salt, cd, (int)sizeof(*cd)));
    free(cd);
    return h;
}

int main(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char *h1 = bcrypt_hash("s3cret"), *h2 = bcrypt_hash("pa:ss");
    pp_web_user users[] = {{"alice", h1}, {"bob", h2}};
    pp_auth *a = pp_auth_new(&loop, users, 2);
    bool waited;

    /* refused at once */
    const char *bad[] = {NULL,
                         "",
                         "Bearer abc",
                         "Basic",
                         "Basic ",
                         "Basic !!!!",
                         "Basic YWxpY2U=", /* "alice", no colon */
                         "Basic YWxpY2U6czNjcmU" /* "alice:s3cre" unpadded */};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(check(&loop, a, bad[i], &waited) == PP_AUTH_DENIED);
        CHECK(!waited);
    }

    /* a first success is checked, then cached */
    CHECK(check(&loop, a, header("alice:s3cret"), &waited) == PP_AUTH_OK);
    CHECK(waited);
    CHECK(check(&loop, a, header("alice:s3cret"), &waited) == PP_AUTH_OK);
    CHECK(!waited);
    /* the scheme is case-insensitive */
    char lower[512];
    snprintf(lower, sizeof(lower), "basic %s", header("alice:s3cret") + 6);
    CHECK(check(&loop, a, lower, &waited) == PP_AUTH_OK);

    /* failures are never cached */
    for (int i = 0; i < 2; i++) {
        CHECK(check(&loop, a, header("alice:wrong"), &waited) == PP_AUTH_DENIED);
        CHECK(waited);
    }
    CHECK(check(&loop, a, header("carol:s3cret"), &waited) == PP_AUTH_DENIED);
    CHECK(waited);
    /* alice's password is not bob's */
    CHECK(check(&loop, a, header("bob:s3cret"), &waited) == PP_AUTH_DENIED);
    CHECK(check(&loop, a, header("bob:pa:ss"), &waited) == PP_AUTH_OK);

    /* many at once: all answered, none lost */
    answer many[9];
    memset(many, 0, sizeof(many));
    for (int i = 0; i < 9; i++) {
        const char *v = header(i % 3 == 0 ? "bob:pa:ss" : i % 3 == 1 ? "bob:no" : "alice:no");
        CHECK(pp_auth_check(a, v, strlen(v), on_done, &many[i]) != PP_AUTH_DENIED);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 9; i++) {
        CHECK(i % 3 == 0 || many[i].calls == 1);
        CHECK(i % 3 == 0 || many[i].result == PP_AUTH_DENIED);
    }
    CHECK(pp_auth_pending(a) == 0);

    /* shutdown: the waiting ones are answered at once, running ones finish */
    answer late[6];
    memset(late, 0, sizeof(late));
    for (int i = 0; i < 6; i++) {
        const char *v = header("alice:nope");
        CHECK(pp_auth_check(a, v, strlen(v), on_done, &late[i]) == PP_AUTH_PENDING);
    }
    CHECK(pp_auth_pending(a) == 6);
    pp_auth_cancel_waiting(a);
    int cancelled = 0;
    for (int i = 0; i < 6; i++)
        cancelled += late[i].calls == 1 && late[i].result == PP_AUTH_CANCELLED;
    CHECK(cancelled == 4); /* two were running */
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 6; i++)
        CHECK(late[i].calls == 1);
    CHECK(pp_auth_pending(a) == 0);

    pp_auth_free(a);
    free(h1);
    free(h2);
    CHECK(uv_loop_close(&loop) == 0);
    return CHECK_RESULT();
}
