/*
 * test_dsn: parsing URIs and key=value strings, the server label and its
 * defaults, the masked form, and reading DATA_SOURCE_* from a fake
 * environment. The leak tests feed passwords that break the syntax in
 * every way we know of and assert that no piece of them reaches a masked
 * form, a label or an error message, through every entry point.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "dsn.h"

/* The fake environment: a NULL-terminated list of name, value pairs. */
static const char *const *fake_env;

static const char *fake_getenv(const char *name)
{
    for (const char *const *p = fake_env; p != NULL && p[0] != NULL; p += 2) {
        if (strcmp(p[0], name) == 0)
            return p[1];
    }
    return NULL;
}

/* Writes contents to a new temporary file; returns its malloc'd path. */
static char *temp_file(const char *contents)
{
    char *path = strdup("/tmp/pgpulse-test-dsn-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        exit(1);
    }
    size_t n = strlen(contents);
    if (write(fd, contents, n) != (ssize_t)n) {
        perror("write");
        exit(1);
    }
    close(fd);
    return path;
}

static void test_uri(void)
{
    pp_dsn d;
    char err[256] = "";

    CHECK(pp_dsn_parse("postgresql://alice:S3cretPw@db.example:5433/app?sslmode=disable&"
                       "application_name=x",
                       &d, err, sizeof err) == 0);
    CHECK_STR(pp_dsn_get(&d, "user"), "alice");
    CHECK_STR(pp_dsn_get(&d, "password"), "S3cretPw");
    CHECK_STR(pp_dsn_get(&d, "host"), "db.example");
    CHECK_STR(pp_dsn_get(&d, "port"), "5433");
    CHECK_STR(pp_dsn_get(&d, "dbname"), "app");
    CHECK_STR(pp_dsn_get(&d, "sslmode"), "disable");
    CHECK_STR(pp_dsn_get(&d, "application_name"), "x");
    CHECK(pp_dsn_get(&d, "connect_timeout") == NULL);
    CHECK(d.n == 7);
    CHECK(d.keywords[d.n] == NULL && d.values[d.n] == NULL);
    CHECK_STR(d.host, "db.example");
    CHECK_STR(d.port, "5433");
    CHECK_STR(d.dbname, "app");
    CHECK_STR(d.user, "alice");
    CHECK_STR(d.label, "db.example:5433");
    CHECK_STR(d.masked,
              "postgresql://alice:xxxxx@db.example:5433/app?sslmode=disable&application_name=x");
    pp_dsn_deinit(&d);
    CHECK(d.keywords == NULL && d.masked == NULL && d.n == 0);
    pp_dsn_deinit(&d); /* twice is fine */
    pp_dsn_deinit(NULL);

    /* postgres:// too, a percent-encoded password, no port */
    CHECK(pp_dsn_parse("postgres://bob:p%40ss%2Fw@h/db", &d, err, sizeof err) == 0);
    CHECK_STR(pp_dsn_get(&d, "password"), "p@ss/w");
    CHECK_STR(d.label, "h:5432");
    CHECK_STR(d.masked, "postgres://bob:xxxxx@h/db");
    pp_dsn_deinit(&d);

    /* surrounding white space is ignored */
    CHECK(pp_dsn_parse("  postgresql://h/db \n", &d, err, sizeof err) == 0);
    CHECK_STR(d.masked, "postgresql://h/db");
    pp_dsn_deinit(&d);

    /* a password in the query string */
    CHECK(pp_dsn_parse("postgresql://h/db?password=qpw123&sslmode=require", &d, err, sizeof err) ==
          0);
    CHECK_STR(pp_dsn_get(&d, "password"), "qpw123");
    CHECK_STR(d.masked, "postgresql://h/db?password=xxxxx&sslmode=require");
    pp_dsn_deinit(&d);

    /* an '@' anywhere but before the host is ambiguous (is the password
     * "p/db?application_name=me" of user "u"?): percent-encoded it is fine */
    CHECK(pp_dsn_parse("postgresql://h:5432/db?application_name=me%40work", &d, err, sizeof err) ==
          0);
    CHECK_STR(pp_dsn_get(&d, "application_name"), "me@work");
    /* shown masked: a percent-encoded value may decode to anything */
    CHECK_STR(d.masked, "postgresql://h:5432/db?application_name=xxxxx");
    pp_dsn_deinit(&d);
    CHECK(pp_dsn_parse("postgresql://h:5432/db?application_name=me@work", &d, err, sizeof err) ==
          -1);
    CHECK_CONTAINS(err, "invalid DSN \"postgresql://xxxxx\": ambiguous URI");

    /* a value that is a connection string of its own is hidden whole */
    CHECK(pp_dsn_parse("postgresql://h/db?options=-csearch_path%3Dx&sslmode=disable", &d, err,
                       sizeof err) == 0);
    CHECK_STR(d.masked, "postgresql://h/db?options=xxxxx&sslmode=disable");
    pp_dsn_deinit(&d);
}

static void test_keyword_value(void)
{
    pp_dsn d;
    char err[256] = "";

    CHECK(pp_dsn_parse("host=10.0.0.1 port=6432 user=bob password='p w\\'x' dbname=postgres", &d,
                       err, sizeof err) == 0);
    CHECK_STR(pp_dsn_get(&d, "password"), "p w'x");
    CHECK_STR(d.label, "10.0.0.1:6432");
    CHECK_STR(d.user, "bob");
    CHECK_STR(d.dbname, "postgres");
    CHECK_STR(d.masked, "host=10.0.0.1 port=6432 user=bob password='xxxxx' dbname=postgres");
    pp_dsn_deinit(&d);

    CHECK(pp_dsn_parse("user = u   password = kvpass  sslpassword=keypass", &d, err, sizeof err) ==
          0);
    CHECK_STR(pp_dsn_get(&d, "password"), "kvpass");
    CHECK_STR(d.masked, "user = u   password = xxxxx  sslpassword=xxxxx");
    pp_dsn_deinit(&d);
}

static void check_label(const char *text, const char *label, int line)
{
    pp_dsn d;
    char err[256] = "";
    if (pp_dsn_parse(text, &d, err, sizeof err) != 0) {
        fprintf(stderr, "%s:%d: parse \"%s\" failed: %s\n", __FILE__, line, text, err);
        check_failures++;
        return;
    }
    if (strcmp(d.label, label) != 0) {
        fprintf(stderr, "%s:%d: label of \"%s\" is \"%s\", want \"%s\"\n", __FILE__, line, text,
                d.label, label);
        check_failures++;
    }
    pp_dsn_deinit(&d);
}

#define LABEL(text, label) check_label(text, label, __LINE__)

static void test_labels_and_defaults(void)
{
    pp_dsn d;
    char err[256] = "";

    /* postgres_exporter's defaults */
    LABEL("", "localhost:5432");
    LABEL("dbname=x", "localhost:5432");
    LABEL("postgresql://", "localhost:5432");
    LABEL("postgresql:///db", "localhost:5432");
    LABEL("port=6000", "localhost:6000");
    LABEL("host=db", "db:5432");
    /* unix sockets: the directory, then the port */
    LABEL("host=/var/run/postgresql", "/var/run/postgresql:5432");
    LABEL("postgresql:///db?host=/tmp&port=5433", "/tmp:5433");
    LABEL("postgresql://%2Fvar%2Frun%2Fpostgresql/db", "/var/run/postgresql:5432");
    /* host lists: the first host and the first port */
    LABEL("host=h1,h2 port=5433", "h1:5433");
    LABEL("host=h1,h2 port=5433,5434", "h1:5433");
    LABEL("postgresql://h1:6001,h2:6002/db", "h1:6001");
    LABEL("host=,h2", "localhost:5432");
    /* IPv6 */
    LABEL("postgresql://[::1]:5433/db", "::1:5433");
    LABEL("host=::1", "::1:5432");

    CHECK(pp_dsn_parse("dbname=x", &d, err, sizeof err) == 0);
    CHECK_STR(d.port, "5432");
    CHECK(d.user == NULL);
    pp_dsn_deinit(&d);

    CHECK(pp_dsn_parse("host=h1,h2 port=5433,5434", &d, err, sizeof err) == 0);
    CHECK_STR(d.host, "h1,h2");
    CHECK_STR(d.port, "5433,5434");
    pp_dsn_deinit(&d);
}

/* A DSN that names no host leaves it to libpq (PGHOST, else its socket
 * directory), as postgres_exporter does; the label is postgres_exporter's
 * "localhost:<port>" all the same. */
static void test_no_host(void)
{
    const struct {
        const char *text, *label;
    } cases[] = {
        {"", "localhost:5432"},
        {"dbname=x user=u password=NoHostPw1", "localhost:5432"},
        {"port=6000", "localhost:6000"},
        {"postgresql://", "localhost:5432"},
        {"postgresql:///db?port=5433", "localhost:5433"},
        {"postgresql://u:NoHostPw1@/db", "localhost:5432"},
        {"hostaddr=127.0.0.1 port=5433", "localhost:5433"},
        {"host=", "localhost:5432"}, /* empty is libpq's default too */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pp_dsn d;
        char err[256] = "";
        CHECK(pp_dsn_parse(cases[i].text, &d, err, sizeof err) == 0);
        CHECK(d.host == NULL);
        CHECK(pp_dsn_get(&d, "host") == NULL);
        CHECK_STR(d.label, cases[i].label);
        CHECK(strstr(d.label, "NoHostPw1") == NULL && strstr(d.masked, "NoHostPw1") == NULL);
        pp_dsn_deinit(&d);
    }

    /* a socket directory or a list with an empty first host is a host */
    pp_dsn d;
    char err[256] = "";
    CHECK(pp_dsn_parse("host=/var/run/postgresql", &d, err, sizeof err) == 0);
    CHECK_STR(d.host, "/var/run/postgresql");
    pp_dsn_deinit(&d);
    CHECK(pp_dsn_parse("host=,h2", &d, err, sizeof err) == 0);
    CHECK_STR(d.host, ",h2");
    CHECK_STR(d.label, "localhost:5432");
    pp_dsn_deinit(&d);

    /* setting a host later gives one; removing it takes it away again */
    CHECK(pp_dsn_parse("dbname=x", &d, err, sizeof err) == 0);
    pp_dsn_set(&d, "host", "db");
    CHECK_STR(d.host, "db");
    CHECK_STR(d.label, "db:5432");
    pp_dsn_set(&d, "host", NULL);
    CHECK(d.host == NULL);
    CHECK_STR(d.label, "localhost:5432");
    pp_dsn_deinit(&d);
}

static void test_errors(void)
{
    pp_dsn d;
    char err[512];

    CHECK(pp_dsn_parse("postgresql://u:Pw0rd1234@h:99999/db", &d, err, sizeof err) == -1);
    CHECK_STR(err,
              "invalid DSN \"postgresql://u:xxxxx@h:99999/db\": invalid port number \"99999\"");
    CHECK(d.keywords == NULL && d.masked == NULL);

    CHECK(pp_dsn_parse("host=h port=0", &d, err, sizeof err) == -1);
    CHECK_STR(err, "invalid DSN \"host=h port=0\": invalid port number \"0\"");
    /* a port that is not a number may be a piece of a password: key=value
     * text that pgpulse refuses is shown with every value hidden */
    CHECK(pp_dsn_parse("host=h port=54x", &d, err, sizeof err) == -1);
    CHECK_STR(err, "invalid DSN \"host=xxxxx port=xxxxx\": invalid port number (not a number)");
    CHECK(pp_dsn_parse("host=a,b,c port=1,2", &d, err, sizeof err) == -1);
    CHECK_CONTAINS(err, "could not match 2 port numbers to 3 hosts");

    /* an unknown keyword (perhaps a misspelt "password") is named, the
     * values are not; a URI that does not parse shows its scheme only */
    CHECK(pp_dsn_parse("foo=bar", &d, err, sizeof err) == -1);
    CHECK_STR(err, "invalid DSN \"foo=xxxxx\": invalid connection option \"foo\"");
    CHECK(pp_dsn_parse("host=h pasword=Hunter2 port=1", &d, err, sizeof err) == -1);
    CHECK_STR(err,
              "invalid DSN \"host=xxxxx pasword=xxxxx\": invalid connection option \"pasword\"");
    CHECK(pp_dsn_parse("postgresql://h/db?foo=bar", &d, err, sizeof err) == -1);
    CHECK_STR(err, "invalid DSN \"postgresql://xxxxx\": invalid URI query parameter: \"foo\"");
    /* libpq quotes pieces of the text; one not shown in the DSN is hidden */
    CHECK(pp_dsn_parse("postgresql://u:Hunter2%zz@h/db", &d, err, sizeof err) == -1);
    CHECK_STR(err, "invalid DSN \"postgresql://xxxxx\": invalid percent-encoded token: \"xxxxx\"");
    CHECK(pp_dsn_parse("host=h password=Hunter2 user", &d, err, sizeof err) == -1);
    CHECK_STR(err, "invalid DSN \"host=xxxxx password=xxxxx\": missing \"=\" after \"xxxxx\" in "
                   "connection info string");
    CHECK(pp_dsn_parse("host=h user", &d, err, sizeof err) == -1);
    CHECK_STR(err, "invalid DSN \"host=xxxxx\": missing \"=\" after \"xxxxx\" in connection "
                   "info string");
    /* text that is no DSN at all may hold anything: nothing of it shown */
    CHECK(pp_dsn_parse("localhost:5432/db", &d, err, sizeof err) == -1);
    CHECK_STR(err, "invalid DSN: neither a URI (postgresql://...) nor key=value pairs");
    CHECK(pp_dsn_parse("postgres:/u:Hunter2@h/db", &d, err, sizeof err) == -1);
    CHECK_STR(err, "invalid DSN: neither a URI (postgresql://...) nor key=value pairs");
    /* libpq's line feed is not part of the message, nor one that a hidden
     * value takes with it */
    CHECK(pp_dsn_parse("host=h\nfoo=bar", &d, err, sizeof err) == -1);
    CHECK_STR(err, "invalid DSN \"host=xxxxx foo=xxxxx\": invalid connection option \"foo\"");

    /* a DSN libpq would misread is refused, with advice */
    CHECK(pp_dsn_parse("postgresql://u:a@b@h/db", &d, err, sizeof err) == -1);
    CHECK_STR(err, "invalid DSN \"postgresql://xxxxx\": ambiguous URI: percent-encode \"@\", "
                   "\"/\", \"?\" and \"#\" in the user name and password, and \"@\" anywhere "
                   "else (as %40, %2F, %3F and %23)");
    CHECK(pp_dsn_parse("postgresql://u:a b@h/db", &d, err, sizeof err) == -1);
    CHECK_STR(err, "invalid DSN \"postgresql://xxxxx\": white space in a URI must be "
                   "percent-encoded (as %20)");
    CHECK(pp_dsn_parse("host=h user= password=pw", &d, err, sizeof err) == -1);
    CHECK_STR(err, "invalid DSN \"host=xxxxx user=xxxxx\": ambiguous key=value pair: a value after "
                   "\"= \" holds \"=\" (quote such a value, and write an empty one as '')");
    CHECK(pp_dsn_parse("host=h user='' password=pw", &d, err, sizeof err) == 0);
    CHECK_STR(d.masked, "host=h user='' password=xxxxx");
    pp_dsn_deinit(&d);
    CHECK(pp_dsn_parse("host=h user= 'a=b' password=pw", &d, err, sizeof err) == 0);
    pp_dsn_deinit(&d);
    CHECK(pp_dsn_parse("host=h options=-csearch_path=x", &d, err, sizeof err) == 0);
    CHECK_STR(d.masked, "host=h options=xxxxx");
    pp_dsn_deinit(&d);
    /* hosts and ports that are not names and numbers */
    CHECK(pp_dsn_parse("host=a@b", &d, err, sizeof err) == -1);
    CHECK_STR(err, "invalid DSN \"host=xxxxx\": invalid host name (a host is a name, an IP "
                   "address or a socket directory)");
    CHECK(pp_dsn_parse("user=u hostaddr=1.2.3.4,x=y", &d, err, sizeof err) == -1);
    CHECK_STR(err,
              "invalid DSN \"user=xxxxx hostaddr=xxxxx\": invalid host name (a host is a name, an "
              "IP address or a socket directory)");
    CHECK(pp_dsn_parse("postgresql:///db?host=%2Ftmp%3Fx", &d, err, sizeof err) == -1);
    CHECK_CONTAINS(err, "invalid DSN \"postgresql://xxxxx\": invalid host name");
    CHECK(pp_dsn_parse("postgresql://u:Hunter2@h:12a/db", &d, err, sizeof err) == -1);
    CHECK_STR(err, "invalid DSN \"postgresql://xxxxx\": invalid port number (not a number)");
    LABEL("host=/var/run/postgresql,@abstract,10.0.0.1,fe80::1%eth0,db-1.example_x",
          "/var/run/postgresql:5432");

    /* a short error buffer truncates, NULL is allowed */
    char small[8];
    CHECK(pp_dsn_parse("foo=bar", &d, small, sizeof small) == -1);
    CHECK_STR(small, "invalid");
    CHECK(pp_dsn_parse("foo=bar", &d, NULL, 0) == -1);
}

static void test_mask_text(void)
{
    struct {
        const char *in, *want;
    } cases[] = {
        {"postgresql://u:p%40ss@h/db", "postgresql://u:xxxxx@h/db"},
        {"postgresql://u@h/db", "postgresql://u@h/db"},
        /* an empty password reads as any other */
        {"postgresql://u:@h/db", "postgresql://u:xxxxx@h/db"},
        {"host=h password='' user=u", "host=h password='xxxxx' user=u"},
        {"postgresql://h/db?password=&user=u", "postgresql://h/db?password=xxxxx&user=u"},
        {"postgresql://h:5432/db", "postgresql://h:5432/db"},
        /* text that cannot be split for certain: the scheme only */
        {"postgresql://u:a@b@h/db", "postgresql://xxxxx"},
        {"postgresql://u:a/b?c@h/db?sslmode=disable", "postgresql://xxxxx"},
        {"postgresql://u:S3cret Pw@h/db", "postgresql://xxxxx"},
        {"postgres://u@h/db?application_name=a@b", "postgres://xxxxx"},
        /* trimmed, as pp_dsn_parse does */
        {" \tpostgresql://u:S3cretPw@h/db \n", "postgresql://u:xxxxx@h/db"},
        {" \tpostgresql://u:S3cret Pw@h/db", "postgresql://xxxxx"},
        {"user=u password=pw", "user=u password=xxxxx"},
        {"host=h password='a b' user=u", "host=h password='xxxxx' user=u"},
        {"host=h password='it\\'s' user=u", "host=h password='xxxxx' user=u"},
        {"host=h password=a\\ b user=u", "host=h password=xxxxx user=u"},
        /* values that are escaped or encoded may decode to anything */
        {"host=h user='it\\'s'", "host=h user='xxxxx'"},
        {"postgresql://h/db?application_name=a%2Fb", "postgresql://h/db?application_name=xxxxx"},
        /* text that libpq rejects: a URI shows its scheme only, key=value
         * text its keywords up to the first secret or unknown one */
        {"postgresql://h/db?sslmode=disable&password=a&b", "postgresql://xxxxx"},
        {"host=h password='unterminated user=u", "host=xxxxx password=xxxxx"},
        {"host=h password", "host=xxxxx"},
        {"host=h port=5432 foo=bar user=u", "host=xxxxx port=xxxxx foo=xxxxx"},
        {"user=x host= password=S3cretPw", "user=xxxxx host=xxxxx"},
        {"junk", "xxxxx"},
        {"host=h", "host=h"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *m = pp_dsn_mask_text(cases[i].in);
        CHECK_STR(m, cases[i].want);
        free(m);
    }
    CHECK(pp_dsn_mask_text(NULL) == NULL);
}

/*
 * Passwords that break the syntax, and the pieces of them that must never
 * be shown. Each runs through every entry point.
 */
typedef struct leak_case {
    const char *text;
    const char *pieces[3];
} leak_case;

static const leak_case leak_cases[] = {
    {"postgresql://u:Hunter2Secret@h/db", {"Hunter2Secret"}},
    {"postgresql://u:Hunter2Secret@h:99999/db", {"Hunter2Secret"}},
    {"postgresql://u:Hunter%zzSecret@h/db", {"Hunter", "zzSecret"}},
    {"postgresql://u:Hunter%00Secret@h/db", {"Hunter", "Secret"}},
    {"postgresql://u:Hunter2 Secret@h/db", {"Hunter2", "Secret"}},
    {"postgresql://u:Hunter@Secret@h/db", {"Hunter", "Secret"}},
    {"postgresql://u:Hunter/Secret@h/db", {"Hunter", "Secret"}},
    {"postgresql://u:1234/Secret@h/db", {"1234", "Secret"}},
    {"postgresql://u:Hunter?Secret@h/db", {"Hunter", "Secret"}},
    {"postgresql://u:Hunter:Secret@h/db", {"Hunter", "Secret"}},
    {"postgresql://me@corp:Hunter2Secret@h/db", {"Hunter2Secret"}},
    {"postgresql://u:Hunter2Secret@[::1]x/db", {"Hunter2Secret"}},
    {"postgresql://u:Hunter2Secret@h/db?foo=bar", {"Hunter2Secret"}},
    {"postgresql://h/db?password=Hunter2Secret&sslmode=disable", {"Hunter2Secret"}},
    {"postgresql://h/db?password=Hunter&Secret", {"Hunter", "Secret"}},
    {"postgresql://h/db?password=Hunter&Secret=x", {"Hunter", "Secret"}},
    {"postgresql://h/db?pass%77ord=Hunter2Secret", {"Hunter2Secret"}},
    {"postgresql://h/db?sslpassword=Hunter2Secret", {"Hunter2Secret"}},
    {"postgresql//u:Hunter2Secret@h/db?sslmode=disable", {"Hunter2Secret"}},
    {"postgres:/u:Hunter2Secret@h/db", {"Hunter2Secret"}},
    {"POSTGRESQL://u:Hunter2Secret@h/db", {"Hunter2Secret"}},
    {"host=h password=Hunter2Secret", {"Hunter2Secret"}},
    {"host=h password = 'Hunter2 Secret'", {"Hunter2", "Secret"}},
    {"host=h password='Hunter2Secret", {"Hunter2Secret"}},
    {"host=h password Hunter2Secret", {"Hunter2Secret"}},
    {"application_name='x password=Hunter2Secret", {"Hunter2Secret"}},
    {"host=h sslpassword=Hunter2Secret", {"Hunter2Secret"}},
    {"host=h password=Hunter2Secret foo=bar", {"Hunter2Secret"}},
    {"host=h port=99999 password=Hunter2Secret", {"Hunter2Secret"}},
    {"host=h password=Hunter2\\ Secret", {"Hunter2", "Secret"}},
    {"dbname=postgresql://u:Hunter2Secret@h/db", {"Hunter2Secret"}},
    {"dbname='host=x password=Hunter2Secret'", {"Hunter2Secret"}},
    /* a ',' splits DATA_SOURCE_NAME; the pieces must still be hidden */
    {"postgresql://u:Hunter,Secret@h/db", {"Hunter", "Secret"}},
    {"postgresql://u:1234,Secret@h/db", {"1234", "Secret"}},
    {"postgresql://u:Hunter2Secret@h1:5432,h2:5433/db", {"Hunter2Secret"}},
    {"host=h1,h2 password=Hunter2Secret", {"Hunter2Secret"}},
    {"host=h password=Hunter,Secret", {"Hunter", "Secret"}},
    {"postgresql://a:Pw1Secret@h1/db,postgresql://b:Pw2Secret@h2/db", {"Pw1Secret", "Pw2Secret"}},
    /* found by fuzzing: misread into the host, the dbname, the port */
    {"postgresql://user@db.example password=Hunter2Secret", {"Hunter2Secret"}},
    {"postgresql://h1/db password=Hunter2Secret", {"Hunter2Secret"}},
    {"postgresql://h/db,host=h2 user=bob password=Hunter2Secret", {"Hunter2Secret"}},
    {"user=x host= password=Hunter2Secret", {"Hunter2Secret"}},
    {"host=b user= password= Hunter2Secret dbname=a", {"Hunter2Secret"}},
    {"postgresql://db/app?user=alice@corp&password=Hunter2Secret&bogus=1", {"Hunter2Secret"}},
    {"postgresql://alice@corp:Hunter?Secret@db/app", {"Hunter", "Secret"}},
    {"postgresql://u:p@h:Hunter2Secret@db/app", {"Hunter2Secret"}},
    {"postgresql://u:p@h:Hunter2Secret/app", {"Hunter2Secret"}},
    {"postgresql://alice,host=db:Hunter2Secret@x/app", {"Hunter2Secret"}},
    {"host=alice:Hunter2Secret@db", {"Hunter2Secret"}},
    {" \tpostgresql://u:Hunter2 Secret@h/db", {"Hunter2", "Secret"}},
    {"host=h pasword=Hunter2Secret", {"Hunter2Secret"}},
    {"postgresql://h/db?sslmode=disable&pasword=Hunter2Secret", {"Hunter2Secret"}},
    {"password='Hunter2' host=h user=u Secret", {"Hunter2", "Secret"}},
    {"postgresql://u:Hunter2Secret@h/db?x", {"Hunter2Secret"}},
};

static void check_no_piece(const leak_case *c, const char *where, const char *s, int line)
{
    for (size_t i = 0; i < 3 && c->pieces[i] != NULL; i++) {
        if (s != NULL && strstr(s, c->pieces[i]) != NULL) {
            fprintf(stderr, "%s:%d: \"%s\": %s shows \"%s\": %s\n", __FILE__, line, c->text, where,
                    c->pieces[i], s);
            check_failures++;
        }
    }
}

static void test_no_leaks(void)
{
    for (size_t i = 0; i < sizeof leak_cases / sizeof leak_cases[0]; i++) {
        const leak_case *c = &leak_cases[i];
        char err[1024];
        pp_dsn d;

        char *m = pp_dsn_mask_text(c->text);
        check_no_piece(c, "mask_text", m, __LINE__);
        CHECK_CONTAINS(m, "xxxxx");
        free(m);

        err[0] = '\0';
        if (pp_dsn_parse(c->text, &d, err, sizeof err) == 0) {
            check_no_piece(c, "masked", d.masked, __LINE__);
            check_no_piece(c, "label", d.label, __LINE__);
            check_no_piece(c, "host", d.host, __LINE__);
            check_no_piece(c, "port", d.port, __LINE__);
            check_no_piece(c, "user", d.user, __LINE__);
            /* not d.dbname: "dbname=postgresql://u:pw@h/db" names a
             * database, literally, unless expand_dbname is used */
            pp_dsn_deinit(&d);
        } else {
            CHECK_CONTAINS(err, "invalid DSN");
            check_no_piece(c, "parse error", err, __LINE__);
        }

        pp_dsn *list = NULL;
        size_t n = 0;
        err[0] = '\0';
        if (pp_dsn_parse_list(c->text, &list, &n, err, sizeof err) == 0) {
            for (size_t k = 0; k < n; k++) {
                check_no_piece(c, "list masked", list[k].masked, __LINE__);
                check_no_piece(c, "list label", list[k].label, __LINE__);
            }
            pp_dsn_list_free(list, n);
        } else {
            check_no_piece(c, "list error", err, __LINE__);
            CHECK(list == NULL && n == 0);
        }

        const char *env[] = {"DATA_SOURCE_NAME", c->text, NULL};
        fake_env = env;
        err[0] = '\0';
        if (pp_dsn_from_env(fake_getenv, &list, &n, err, sizeof err) == 0) {
            for (size_t k = 0; k < n; k++)
                check_no_piece(c, "env masked", list[k].masked, __LINE__);
            pp_dsn_list_free(list, n);
        } else {
            CHECK_CONTAINS(err, "DATA_SOURCE_NAME: ");
            check_no_piece(c, "env error", err, __LINE__);
        }
    }
    fake_env = NULL;
}

/*
 * The leaks tests/fuzz/corpus/dsn/leak-* reproduce, with what is shown
 * instead: text that libpq misreads is refused and shown conservatively.
 */
static void test_fuzz_findings(void)
{
    static const char uri_at[] =
        "ambiguous URI: percent-encode \"@\", \"/\", \"?\" and \"#\" in the "
        "user name and password, and \"@\" anywhere else (as %40, %2F, "
        "%3F and %23)";
    static const char kv_eq[] = "ambiguous key=value pair: a value after \"= \" holds \"=\" (quote "
                                "such a value, and write an empty one as '')";
    static const char bad_host[] =
        "invalid host name (a host is a name, an IP address or a socket directory)";
    struct {
        const char *in;   /* holds the password S3cretPw */
        const char *err;  /* pp_dsn_parse's message */
        const char *mask; /* pp_dsn_mask_text */
    } cases[] = {
        /* (a) a key=value pair after a URI: in the host, in the dbname */
        {"postgresql://user@db.example password=S3cretPw",
         "white space in a URI must be percent-encoded (as %20)", "postgresql://xxxxx"},
        {"postgresql://h1/db password=S3cretPw",
         "white space in a URI must be percent-encoded (as %20)", "postgresql://xxxxx"},
        /* (b) "host= password=...": libpq skips the blank after '=' */
        {"user=x host= password=S3cretPw", kv_eq, "user=xxxxx host=xxxxx"},
        {"host=b user= password= S3cretPw dbname=a", kv_eq, "host=xxxxx user=xxxxx"},
        /* (c) an '@' in the query */
        {"postgresql://db/app?user=alice@corp&password=S3cretPw&bogus=1", uri_at,
         "postgresql://xxxxx"},
        /* (d) an '@' in the user name, a '?' in the password */
        {"postgresql://alice@corp:S3c?retPw@db/app", uri_at, "postgresql://xxxxx"},
        /* (e) an '@' in the password: the rest read as a port */
        {"postgresql://u:p@h:S3cretPw@db/app", uri_at, "postgresql://xxxxx"},
        /* (f) a host that is not a name */
        {"host=alice:S3cretPw@db", bad_host, "host=xxxxx"},
        /* (g) white space in the password, and around the URI */
        {" \tpostgresql://u:S3cret Pw@h/db",
         "white space in a URI must be percent-encoded (as %20)", "postgresql://xxxxx"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pp_dsn d;
        char err[512], want[512];
        CHECK(pp_dsn_parse(cases[i].in, &d, err, sizeof err) == -1);
        snprintf(want, sizeof want, "invalid DSN \"%s\": %s", cases[i].mask, cases[i].err);
        CHECK_STR(err, want);
        char *m = pp_dsn_mask_text(cases[i].in);
        CHECK_STR(m, cases[i].mask);
        free(m);
    }

    /* (c) with the '@' percent-encoded: parsed, or a clear error */
    pp_dsn d;
    char err[512];
    CHECK(pp_dsn_parse("postgresql://db/app?user=alice%40corp&password=S3cretPw", &d, err,
                       sizeof err) == 0);
    CHECK_STR(pp_dsn_get(&d, "user"), "alice@corp");
    CHECK_STR(d.masked, "postgresql://db/app?user=xxxxx&password=xxxxx");
    pp_dsn_deinit(&d);
    CHECK(pp_dsn_parse("postgresql://db/app?user=alice%40corp&password=S3cretPw&bogus=1", &d, err,
                       sizeof err) == -1);
    CHECK_STR(err, "invalid DSN \"postgresql://xxxxx\": invalid URI query parameter: \"xxxxx\"");

    /* (f) parsed alone, the URI is fine; split as DATA_SOURCE_NAME is, its
     * second half is a DSN whose host holds the password */
    CHECK(pp_dsn_parse("postgresql://alice,host=db:S3cretPw@x/app", &d, err, sizeof err) == 0);
    CHECK_STR(d.label, "x:5432");
    CHECK_STR(d.masked, "postgresql://alice,host=db:xxxxx@x/app");
    pp_dsn_deinit(&d);
    pp_dsn *list = NULL;
    size_t n = 0;
    CHECK(pp_dsn_parse_list("postgresql://alice,host=db:S3cretPw@x/app", &list, &n, err,
                            sizeof err) == -1);
    CHECK(list == NULL && n == 0);
    CHECK_STR(err, "invalid DSN 2 \"host=xxxxx\": invalid host name (a host is a name, an IP "
                   "address or a socket directory)");
}

static void test_get_set(void)
{
    pp_dsn d;
    char err[256];

    CHECK(pp_dsn_parse("postgresql://u:SetPw99@h/db", &d, err, sizeof err) == 0);
    size_t n0 = d.n;

    pp_dsn_set(&d, "application_name", "pgpulse");
    CHECK(d.n == n0 + 1);
    CHECK_STR(pp_dsn_get(&d, "application_name"), "pgpulse");
    CHECK(d.keywords[d.n] == NULL && d.values[d.n] == NULL);
    CHECK_STR(d.masked, "postgresql://u:xxxxx@h/db"); /* unchanged */

    pp_dsn_set(&d, "application_name", "other");
    CHECK(d.n == n0 + 1);
    CHECK_STR(pp_dsn_get(&d, "application_name"), "other");
    pp_dsn_set(&d, "application_name", NULL);
    CHECK(d.n == n0);
    CHECK(pp_dsn_get(&d, "application_name") == NULL);
    CHECK(d.keywords[d.n] == NULL);

    /* what identifies the target rebuilds the derived fields and the
     * masked form, which never shows the password */
    pp_dsn_set(&d, "dbname", "other db");
    CHECK_STR(d.dbname, "other db");
    CHECK_CONTAINS(d.masked, "dbname='other db'");
    CHECK_CONTAINS(d.masked, "password=xxxxx");
    CHECK(strstr(d.masked, "SetPw99") == NULL);
    pp_dsn_set(&d, "port", "6543");
    CHECK_STR(d.label, "h:6543");
    CHECK_STR(d.port, "6543");
    pp_dsn_set(&d, "host", "/tmp");
    CHECK_STR(d.label, "/tmp:6543");
    pp_dsn_set(&d, "password", "NewPw77");
    CHECK_STR(pp_dsn_get(&d, "password"), "NewPw77");
    CHECK(strstr(d.masked, "NewPw77") == NULL);
    pp_dsn_deinit(&d);

    /* set works on an empty pp_dsn too */
    pp_dsn e = {0};
    pp_dsn_set(&e, "host", "x");
    CHECK_STR(e.label, "x:5432");
    CHECK_STR(e.masked, "host=x");
    pp_dsn_deinit(&e);
    CHECK(pp_dsn_get(NULL, "host") == NULL);
}

static void test_list(void)
{
    pp_dsn *list;
    size_t n;
    char err[512];

    CHECK(pp_dsn_parse_list("postgresql://a:pa@h1/db, host=h2 port=5433 ,postgres://h3", &list, &n,
                            err, sizeof err) == 0);
    CHECK(n == 3);
    if (n == 3) {
        CHECK_STR(list[0].label, "h1:5432");
        CHECK_STR(list[0].masked, "postgresql://a:xxxxx@h1/db");
        CHECK_STR(list[1].label, "h2:5433");
        CHECK_STR(list[1].masked, "host=h2 port=5433");
        CHECK_STR(list[2].label, "h3:5432");
    }
    pp_dsn_list_free(list, n);
    pp_dsn_list_free(NULL, 0);

    CHECK(pp_dsn_parse_list("host=a,foo=bar", &list, &n, err, sizeof err) == -1);
    CHECK_STR(err, "invalid DSN 2 \"foo=xxxxx\": invalid connection option \"foo\"");
    CHECK(list == NULL && n == 0);
    CHECK(pp_dsn_parse_list("host=a,,host=c", &list, &n, err, sizeof err) == -1);
    CHECK_STR(err, "DSN 2 is empty");
    CHECK(pp_dsn_parse_list("host=a, ", &list, &n, err, sizeof err) == -1);
    CHECK_STR(err, "DSN 2 is empty");
    CHECK(pp_dsn_parse_list("", &list, &n, err, sizeof err) == -1);
    CHECK_STR(err, "DSN 1 is empty");
    /* a DSN that a ',' cuts in two is refused where it begins */
    CHECK(pp_dsn_parse_list("host=a port=1,2", &list, &n, err, sizeof err) == -1);
    CHECK_STR(err, "invalid DSN 1 \"host=xxxxx port=xxxxx\": the list is split on \",\" and this "
                   "DSN is cut in two (write \",\" as %2C in a URI)");
    CHECK(pp_dsn_parse_list("host=h0,host=h1,h2 port=5433", &list, &n, err, sizeof err) == -1);
    CHECK_STR(err, "invalid DSN 2 \"host=xxxxx\": the list is split on \",\" and this DSN is cut "
                   "in two (write \",\" as %2C in a URI)");
    CHECK(pp_dsn_parse_list("postgresql://u:1234,Rest@h/db", &list, &n, err, sizeof err) == -1);
    CHECK_STR(err, "invalid DSN 1 \"postgresql://xxxxx\": the list is split on \",\" and this "
                   "DSN is cut in two (write \",\" as %2C in a URI)");
    CHECK(pp_dsn_parse_list("postgresql://u:Pw,Rest@h/db", &list, &n, err, sizeof err) == -1);
    CHECK_CONTAINS(err, "invalid DSN 1 \"postgresql://xxxxx\": the list is split on \",\"");
    CHECK(pp_dsn_parse_list("postgresql://h1/db, h2/db", &list, &n, err, sizeof err) == -1);
    CHECK_STR(err, "invalid DSN 1 \"postgresql://xxxxx\": the list is split on \",\" and this "
                   "DSN is cut in two (write \",\" as %2C in a URI)");
    /* a piece that looks like a DSN of its own is read as one */
    CHECK(pp_dsn_parse_list("postgresql://alice,host=db:Pw99@x/app", &list, &n, err, sizeof err) ==
          -1);
    CHECK_STR(err, "invalid DSN 2 \"host=xxxxx\": invalid host name (a host is a name, an IP "
                   "address or a socket directory)");
}

static void test_env(void)
{
    pp_dsn *list = NULL;
    size_t n = 99;
    char err[512];

    /* nothing set: no DSN and no error */
    fake_env = (const char *[]){NULL};
    CHECK(pp_dsn_from_env(fake_getenv, &list, &n, err, sizeof err) == 0);
    CHECK(list == NULL && n == 0);

    /* user and password but no URI: still nothing */
    fake_env = (const char *[]){"DATA_SOURCE_USER", "u", "DATA_SOURCE_PASS", "p", NULL};
    CHECK(pp_dsn_from_env(fake_getenv, &list, &n, err, sizeof err) == 0);
    CHECK(list == NULL && n == 0);

    /* DATA_SOURCE_NAME, a list, wins over the rest */
    fake_env = (const char *[]){"DATA_SOURCE_NAME", "postgresql://a@h1/db,host=h2 port=5433",
                                "DATA_SOURCE_URI", "ignored:1/db", NULL};
    CHECK(pp_dsn_from_env(fake_getenv, &list, &n, err, sizeof err) == 0);
    CHECK(n == 2);
    if (n == 2) {
        CHECK_STR(list[0].label, "h1:5432");
        CHECK_STR(list[1].label, "h2:5433");
    }
    pp_dsn_list_free(list, n);

    /* an empty DATA_SOURCE_NAME does not count */
    fake_env = (const char *[]){"DATA_SOURCE_NAME", "", "DATA_SOURCE_URI", "h9:9/db", NULL};
    CHECK(pp_dsn_from_env(fake_getenv, &list, &n, err, sizeof err) == 0);
    CHECK(n == 1 && strcmp(list[0].label, "h9:9") == 0);
    pp_dsn_list_free(list, n);

    /* errors name the variable and the position */
    fake_env = (const char *[]){"DATA_SOURCE_NAME", "host=h1,,host=h3", NULL};
    CHECK(pp_dsn_from_env(fake_getenv, &list, &n, err, sizeof err) == -1);
    CHECK_STR(err, "DATA_SOURCE_NAME: DSN 2 is empty");
    CHECK(list == NULL && n == 0);
    fake_env = (const char *[]){"DATA_SOURCE_NAME", "host=h1,", NULL};
    CHECK(pp_dsn_from_env(fake_getenv, &list, &n, err, sizeof err) == -1);
    CHECK_STR(err, "DATA_SOURCE_NAME: DSN 2 is empty");
    fake_env =
        (const char *[]){"DATA_SOURCE_NAME", "host=h1,host=h2 port=99999 password=EnvPw123", NULL};
    CHECK(pp_dsn_from_env(fake_getenv, &list, &n, err, sizeof err) == -1);
    CHECK_STR(err, "DATA_SOURCE_NAME: invalid DSN 2 \"host=h2 port=99999 password=xxxxx\": "
                   "invalid port number \"99999\"");

    /* composed: user and password are percent-encoded, libpq decodes
     * them back to exactly what was given */
    const char *pass = "p@ss:w/rd%?&=,\xC3\xA9 '\"\\";
    fake_env = (const char *[]){"DATA_SOURCE_USER",
                                "pg user",
                                "DATA_SOURCE_PASS",
                                pass,
                                "DATA_SOURCE_URI",
                                "db.example:5433/app?sslmode=disable",
                                NULL};
    CHECK(pp_dsn_from_env(fake_getenv, &list, &n, err, sizeof err) == 0);
    CHECK(n == 1);
    if (n == 1) {
        CHECK_STR(pp_dsn_get(&list[0], "password"), pass);
        CHECK_STR(pp_dsn_get(&list[0], "user"), "pg user");
        CHECK_STR(pp_dsn_get(&list[0], "sslmode"), "disable");
        CHECK_STR(list[0].label, "db.example:5433");
        CHECK_STR(list[0].masked,
                  "postgresql://pg%20user:xxxxx@db.example:5433/app?sslmode=disable");
    }
    pp_dsn_list_free(list, n);

    /* no user and password at all */
    fake_env = (const char *[]){"DATA_SOURCE_URI", "localhost/postgres", NULL};
    CHECK(pp_dsn_from_env(fake_getenv, &list, &n, err, sizeof err) == 0);
    CHECK(n == 1 && pp_dsn_get(&list[0], "user") == NULL &&
          pp_dsn_get(&list[0], "password") == NULL);
    pp_dsn_list_free(list, n);

    /* a composed DSN that does not parse names DATA_SOURCE_URI, not the
     * password */
    fake_env = (const char *[]){
        "DATA_SOURCE_USER", "u", "DATA_SOURCE_PASS", "ComposedPw1", "DATA_SOURCE_URI",
        "h:99999/db",       NULL};
    CHECK(pp_dsn_from_env(fake_getenv, &list, &n, err, sizeof err) == -1);
    CHECK_STR(err, "DATA_SOURCE_URI (with DATA_SOURCE_USER and DATA_SOURCE_PASS): invalid DSN "
                   "\"postgresql://u:xxxxx@h:99999/db\": invalid port number \"99999\"");
    fake_env = (const char *[]){"DATA_SOURCE_PASS", "Bad%zzPw", "DATA_SOURCE_URI", "h/db?x", NULL};
    CHECK(pp_dsn_from_env(fake_getenv, &list, &n, err, sizeof err) == -1);
    CHECK_CONTAINS(err, "DATA_SOURCE_URI");
    CHECK(strstr(err, "Bad") == NULL && strstr(err, "zzPw") == NULL);
}

static void test_env_files(void)
{
    pp_dsn *list = NULL;
    size_t n = 0;
    char err[512];
    char *user = temp_file("  fileuser \n");
    char *pass = temp_file("\tFilePw42\n\n");
    char *uri = temp_file(" filehost:1234/db \n");

    /* _FILE wins over the plain variable, contents trimmed */
    fake_env = (const char *[]){"DATA_SOURCE_USER_FILE",
                                user,
                                "DATA_SOURCE_USER",
                                "envuser",
                                "DATA_SOURCE_PASS_FILE",
                                pass,
                                "DATA_SOURCE_PASS",
                                "envpass",
                                "DATA_SOURCE_URI_FILE",
                                uri,
                                "DATA_SOURCE_URI",
                                "envhost/db",
                                NULL};
    CHECK(pp_dsn_from_env(fake_getenv, &list, &n, err, sizeof err) == 0);
    CHECK(n == 1);
    if (n == 1) {
        CHECK_STR(pp_dsn_get(&list[0], "user"), "fileuser");
        CHECK_STR(pp_dsn_get(&list[0], "password"), "FilePw42");
        CHECK_STR(list[0].label, "filehost:1234");
        CHECK_STR(list[0].masked, "postgresql://fileuser:xxxxx@filehost:1234/db");
    }
    pp_dsn_list_free(list, n);

    /* an empty _FILE variable is as if unset */
    fake_env = (const char *[]){"DATA_SOURCE_URI_FILE", "", "DATA_SOURCE_URI", "envhost/db", NULL};
    CHECK(pp_dsn_from_env(fake_getenv, &list, &n, err, sizeof err) == 0);
    CHECK(n == 1 && strcmp(list[0].label, "envhost:5432") == 0);
    pp_dsn_list_free(list, n);

    /* unreadable files: the variable, the path and the reason */
    fake_env = (const char *[]){"DATA_SOURCE_PASS_FILE", "/nonexistent/pgpulse/pw",
                                "DATA_SOURCE_URI", "h/db", NULL};
    list = (pp_dsn *)1;
    n = 7;
    CHECK(pp_dsn_from_env(fake_getenv, &list, &n, err, sizeof err) == -1);
    char want[256];
    snprintf(want, sizeof want,
             "DATA_SOURCE_PASS_FILE: could not read file \"/nonexistent/pgpulse/pw\": %s",
             strerror(ENOENT));
    CHECK_STR(err, want);
    CHECK(list == NULL && n == 0);

    fake_env = (const char *[]){"DATA_SOURCE_USER_FILE", "/", "DATA_SOURCE_URI", "h/db", NULL};
    CHECK(pp_dsn_from_env(fake_getenv, &list, &n, err, sizeof err) == -1);
    snprintf(want, sizeof want, "DATA_SOURCE_USER_FILE: could not read file \"/\": %s",
             strerror(EISDIR));
    CHECK_STR(err, want);

    /* a file error is reported even with no URI, as postgres_exporter does */
    fake_env = (const char *[]){"DATA_SOURCE_URI_FILE", "/nonexistent/pgpulse/uri", NULL};
    CHECK(pp_dsn_from_env(fake_getenv, &list, &n, err, sizeof err) == -1);
    CHECK_CONTAINS(err, "DATA_SOURCE_URI_FILE: could not read file \"/nonexistent/pgpulse/uri\"");

    /* a composed DSN from a URI file that does not parse names that file */
    char *bad = temp_file("h:0/db\n");
    fake_env = (const char *[]){"DATA_SOURCE_URI_FILE", bad, "DATA_SOURCE_PASS_FILE", pass, NULL};
    CHECK(pp_dsn_from_env(fake_getenv, &list, &n, err, sizeof err) == -1);
    CHECK_CONTAINS(err, "DATA_SOURCE_URI_FILE (with DATA_SOURCE_USER and DATA_SOURCE_PASS_FILE)");
    CHECK(strstr(err, "FilePw42") == NULL);

    fake_env = NULL;
    unlink(user);
    unlink(pass);
    unlink(uri);
    unlink(bad);
    free(user);
    free(pass);
    free(uri);
    free(bad);
}

static void test_real_getenv(void)
{
    pp_dsn *list = NULL;
    size_t n = 0;
    char err[256];

    setenv("DATA_SOURCE_NAME", "host=from-real-env", 1);
    CHECK(pp_dsn_from_env(NULL, &list, &n, err, sizeof err) == 0);
    CHECK(n == 1 && strcmp(list[0].label, "from-real-env:5432") == 0);
    pp_dsn_list_free(list, n);
    unsetenv("DATA_SOURCE_NAME");
}

int main(void)
{
    test_uri();
    test_keyword_value();
    test_labels_and_defaults();
    test_no_host();
    test_errors();
    test_mask_text();
    test_no_leaks();
    test_fuzz_findings();
    test_get_set();
    test_list();
    test_env();
    test_env_files();
    test_real_getenv();
    return CHECK_RESULT();
}
