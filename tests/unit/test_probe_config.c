/*
 * test_probe_config: what /probe is configured with, without a server:
 * the allow-list (--web.probe-allowed-targets) against DSNs of every shape
 * that can name a host, and the auth modules of postgres_exporter.yml
 * (strict keys, positions in errors, how a module changes a DSN).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "authmod.h"
#include "check.h"
#include "dsn.h"
#include "hostmatch.h"

static bool allows(const char *patterns, const char *dsn_text)
{
    char err[256], why[256];
    pp_hostmatch *m = pp_hostmatch_parse(patterns, err, sizeof(err));
    if (m == NULL) {
        fprintf(stderr, "pattern %s: %s\n", patterns, err);
        return false;
    }
    pp_dsn d;
    if (pp_dsn_parse(dsn_text, &d, err, sizeof(err)) != 0) {
        fprintf(stderr, "dsn %s: %s\n", dsn_text, err);
        pp_hostmatch_free(m);
        return false;
    }
    bool ok = pp_hostmatch_allows(m, &d, why, sizeof(why));
    pp_dsn_deinit(&d);
    pp_hostmatch_free(m);
    return ok;
}

static void test_allow_list(void)
{
    /* nothing set, or "*": anything, as upstream */
    CHECK(allows(NULL, "dbname=x"));
    CHECK(allows("", "host=anything.example port=1"));
    CHECK(allows("db1, *", "service=foo"));

    /* names: exact, case-insensitive, any port unless given */
    CHECK(allows("db1.example.com", "postgresql://u@DB1.example.com:6000/x"));
    CHECK(!allows("db1.example.com", "postgresql://u@db2.example.com/x"));
    CHECK(allows("db1:5433", "host=db1 port=5433"));
    CHECK(!allows("db1:5433", "host=db1 port=5432"));
    CHECK(!allows("db1:5433", "host=db1")); /* the default port is 5432 */
    /* suffixes match names only, not the bare domain */
    CHECK(allows("*.example.com", "host=a.b.example.com"));
    CHECK(!allows("*.example.com", "host=example.com"));
    CHECK(!allows("*.example.com", "host=evil-example.com"));

    /* addresses and networks, v4 and v6; a name is never resolved */
    CHECK(allows("10.0.0.0/8", "host=10.200.3.4"));
    CHECK(!allows("10.0.0.0/8", "host=11.0.0.1"));
    CHECK(allows("10.1.2.3", "host=10.1.2.3 port=9999"));
    CHECK(!allows("10.1.2.3", "host=10.1.2.4"));
    CHECK(!allows("127.0.0.0/8", "host=localhost"));
    CHECK(allows("192.168.0.0/23", "host=192.168.1.255"));
    CHECK(!allows("192.168.0.0/23", "host=192.168.2.0"));
    CHECK(allows("[2001:db8::]/32:5432", "host=2001:db8:1::5 port=5432"));
    CHECK(allows("2001:db8::/32", "postgresql://u@[2001:db8::1]:7000/x"));
    CHECK(!allows("2001:db8::/32", "host=2001:db9::1"));
    CHECK(allows("[::1]:5432", "host=::1"));

    /* every host of a list, and hostaddr, must be allowed */
    CHECK(allows("a,b", "host=a,b port=1,2"));
    CHECK(!allows("a", "host=a,b port=1,2"));
    CHECK(!allows("a:1", "host=a,b port=2,1"));
    CHECK(!allows("db1", "host=db1 hostaddr=10.9.9.9"));
    CHECK(allows("db1, 10.9.9.9", "host=db1 hostaddr=10.9.9.9"));

    /* socket directories match exactly; no host or a service: only "*" */
    CHECK(allows("/var/run/postgresql", "host=/var/run/postgresql"));
    CHECK(!allows("/var/run/postgresql", "host=/tmp"));
    CHECK(!allows("db1", "dbname=postgres"));
    CHECK(!allows("db1", "host=db1 service=foo"));

    /* bad patterns are refused with the pattern named */
    const char *bad[] = {"10.0.0.0/33", "host:0", "host:99999", "ho st", "[::1",
                         "*.",          "a:b",    "1.2.3.4/x",  "*x.com"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        pp_hostmatch *m = pp_hostmatch_parse(bad[i], err, sizeof(err));
        CHECK(m == NULL);
        pp_hostmatch_free(m);
        CHECK_CONTAINS(err, bad[i]);
    }
}

static int parse(const char *text, pp_auth_modules *m, char *err, size_t errlen)
{
    return pp_auth_modules_parse("pe.yml", text, strlen(text), m, err, errlen);
}

static void test_auth_modules(void)
{
    pp_auth_modules m;
    char err[512];
    CHECK(parse("auth_modules:\n"
                "  mon:\n"
                "    type: userpass\n"
                "    userpass:\n"
                "      username: monitor\n"
                "      password: 's3cret'\n"
                "    options:\n"
                "      sslmode: require\n"
                "      connect_timeout: '5'\n"
                "  other:\n"
                "    type: userpass\n",
                &m, err, sizeof(err)) == 0);
    CHECK(m.n == 2);
    const pp_auth_module *mon = pp_auth_modules_find(&m, "mon");
    CHECK(mon != NULL && pp_auth_modules_find(&m, "nope") == NULL);
    if (mon != NULL) {
        CHECK_STR(mon->username, "monitor");
        CHECK_STR(mon->password, "s3cret");
        CHECK(mon->nopts == 2);
        pp_dsn d;
        CHECK(pp_dsn_parse("postgresql://intruder:pw@db1:5433/app", &d, err, sizeof(err)) == 0);
        pp_auth_module_apply(mon, &d);
        CHECK_STR(pp_dsn_get(&d, "user"), "monitor");
        CHECK_STR(pp_dsn_get(&d, "password"), "s3cret");
        CHECK_STR(pp_dsn_get(&d, "sslmode"), "require");
        CHECK_STR(pp_dsn_get(&d, "connect_timeout"), "5");
        CHECK_STR(d.label, "db1:5433");
        CHECK(strstr(d.masked, "s3cret") == NULL);
        pp_dsn_deinit(&d);
    }
    const pp_auth_module *other = pp_auth_modules_find(&m, "other");
    CHECK(other != NULL && other->password[0] == '\0');
    pp_auth_modules_deinit(&m);

    /* an empty file has no modules */
    CHECK(parse("# nothing\n", &m, err, sizeof(err)) == 0 && m.n == 0);
    pp_auth_modules_deinit(&m);

    /* errors carry file:line:column and never the password */
    struct {
        const char *text, *want;
    } bad[] = {
        {"auth_modules:\n  m:\n    type: userpass\n    colour: red\n", "pe.yml:4:5: auth module m: "
                                                                       "unknown key \"colour\""},
        {"auth_module: {}\n", "pe.yml:1:1: unknown key \"auth_module\""},
        {"auth_modules:\n  m:\n    type: ldap\n", "pe.yml:3:11: auth module m: type \"ldap\""},
        {"auth_modules:\n  m:\n    userpass: {username: u}\n", "pe.yml:2:3: auth module m: "
                                                               "missing key \"type\""},
        {"auth_modules:\n  m:\n    type: userpass\n    options: {hots: x}\n",
         "pe.yml:4:15: auth module m: \"hots\" is not a connection option"},
        {"auth_modules:\n  m:\n    type: userpass\n    options: {password: topsecret}\n",
         "\"password\" is not a connection option"},
        {"auth_modules:\n  m:\n    type: userpass\n    userpass: {username: u, password: "
         "topsecret, pass: x}\n",
         "unknown key \"pass\""},
        {"auth_modules: [a]\n", "pe.yml:1:15: auth_modules: expected a mapping"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK(parse(bad[i].text, &m, err, sizeof(err)) != 0);
        CHECK_CONTAINS(err, bad[i].want);
        CHECK(strstr(err, "topsecret") == NULL);
        CHECK(m.n == 0 && m.items == NULL);
    }

    /* the default file may be missing; a named one may not */
    CHECK(pp_auth_modules_load("/nonexistent/pe.yml", 1, &m, err, sizeof(err)) == 0 && m.n == 0);
    CHECK(pp_auth_modules_load("/nonexistent/pe.yml", 0, &m, err, sizeof(err)) != 0);
    CHECK_CONTAINS(err, "/nonexistent/pe.yml");
}

int main(void)
{
    test_allow_list();
    test_auth_modules();
    return CHECK_RESULT();
}
