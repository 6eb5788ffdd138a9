/*
 * catalog: loads the query catalog from YAML and validates it.
 *
 * Loading has two steps. First the yaml module reads a file into a tree
 * with positions, refusing anchors, aliases, duplicate keys, a second
 * document and deep nesting. Then the tree is checked against the format
 * described in queries/README.md and converted into queries and families in
 * a staging area. Only when every file of one load call has succeeded is the stage
 * appended to the caller's catalog, so a failed load leaves it untouched.
 *
 * Invariants kept here:
 * - query names are unique across the whole catalog;
 * - a metric name is one family with one type and one HELP text, whichever
 *   queries produce it;
 * - families are only ever appended, so the index a column holds stays valid;
 * - every message is "name:line:column: message" with 1-based positions and
 *   no control characters.
 */
#include "catalog.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "buf.h"
#include "config.h"
#include "render.h"
#include "yaml.h"

/* A catalog file larger than this is a mistake, not a catalog. */
#define MAX_FILE_SIZE (16u << 20)
/* The default statement timeout never exceeds this many seconds. */
#define DEFAULT_TIMEOUT_CAP 10.0
#define DEFAULT_INTERVAL 15.0

/* ---- errors ----------------------------------------------------------- */

typedef struct stage {
    pp_catalog c;
    size_t qcap, fcap;
} stage;

typedef struct ctx {
    const pp_yaml_doc *doc; /* the file being read; names it in messages */
    char *err;
    size_t errlen;
    const pp_catalog *base; /* the catalog being extended; read only */
    stage *st;              /* what this load adds */
} ctx;

static int fail_at(ctx *x, const pp_yaml_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(ctx *x, const pp_yaml_node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pp_yaml_verror(x->err, x->errlen, pp_yaml_name(x->doc), n->line, n->column, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- small parsers ---------------------------------------------------- */

/* [0-9]+(\.[0-9]*)? at s; returns the length matched, 0 for none. */
static size_t span_decimal(const char *s)
{
    size_t i = 0;
    while (s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == 0)
        return 0;
    if (s[i] == '.') {
        i++;
        while (s[i] >= '0' && s[i] <= '9')
            i++;
    }
    return i;
}

/* A decimal number with optional sign, fraction and exponent. */
static int parse_number(const char *s, double *out)
{
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    size_t n = span_decimal(p);
    if (n == 0)
        return -1;
    p += n;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return -1;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p != '\0')
        return -1;
    double v = strtod(s, NULL);
    if (!isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* Decimal digits only, at most max. */
static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    unsigned long long v = 0;
    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* ---- tree helpers ----------------------------------------------------- */

/* Every key of m is one of allowed (the YAML reader has made sure that
 * keys are scalars and unique). where completes messages: "in query \"x\"". */
static int check_keys(ctx *x, const pp_yaml_node *m, const char *const *allowed, const char *where)
{
    const pp_yaml_node *k = pp_yaml_unknown_key(m, allowed);
    if (k != NULL)
        return fail_at(x, k, "unknown key \"%s\" %s", k->str, where);
    return 0;
}

static int expect_kind(ctx *x, const pp_yaml_node *n, pp_yaml_kind kind, const char *key,
                       const char *where)
{
    if (n->kind == kind)
        return 0;
    return fail_at(x, n, "expected %s for \"%s\" %s, found %s", pp_yaml_kind_name(kind), key, where,
                   pp_yaml_kind_name(n->kind));
}

/* A scalar that must not be empty. */
static int expect_text(ctx *x, const pp_yaml_node *n, const char *key, const char *where)
{
    if (expect_kind(x, n, PP_YAML_SCALAR, key, where) < 0)
        return -1;
    if (n->len == 0)
        return fail_at(x, n, "empty \"%s\" %s", key, where);
    return 0;
}

static int get_duration(ctx *x, const pp_yaml_node *n, const char *key, const char *where,
                        double *out)
{
    if (expect_kind(x, n, PP_YAML_SCALAR, key, where) < 0)
        return -1;
    if (pp_config_parse_duration(n->str, out) < 0)
        return fail_at(x, n,
                       "bad duration \"%s\" for \"%s\" %s: expected a number of seconds or "
                       "a form like 500ms, 15s, 1m30s, 1h, at most a year",
                       n->str, key, where);
    if (*out <= 0)
        return fail_at(x, n, "\"%s\" must be greater than zero %s", key, where);
    return 0;
}

static int get_runs_on(ctx *x, const pp_yaml_node *n, const char *where, pp_runs_on *out)
{
    if (expect_kind(x, n, PP_YAML_SCALAR, "runs_on", where) < 0)
        return -1;
    if (strcmp(n->str, "any") == 0)
        *out = PP_RUNS_ON_ANY;
    else if (strcmp(n->str, "primary") == 0)
        *out = PP_RUNS_ON_PRIMARY;
    else if (strcmp(n->str, "standby") == 0)
        *out = PP_RUNS_ON_STANDBY;
    else
        return fail_at(x, n, "bad runs_on \"%s\" %s: expected primary, standby or any", n->str,
                       where);
    return 0;
}

static int get_scope(ctx *x, const pp_yaml_node *n, const char *where, pp_scope *out)
{
    if (expect_kind(x, n, PP_YAML_SCALAR, "scope", where) < 0)
        return -1;
    if (strcmp(n->str, "server") == 0)
        *out = PP_SCOPE_SERVER;
    else if (strcmp(n->str, "database") == 0)
        *out = PP_SCOPE_DATABASE;
    else
        return fail_at(x, n, "bad scope \"%s\" %s: expected server or database", n->str, where);
    return 0;
}

/* A collector name becomes a flag (--collector.<name>) and a label value:
 * letters, digits and '_'. */
static bool valid_collector(const char *s)
{
    for (const char *p = s; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return false;
    return *s != '\0';
}

static int get_collector(ctx *x, const pp_yaml_node *n, const char *where, const char **out)
{
    if (expect_text(x, n, "collector", where) < 0)
        return -1;
    if (!valid_collector(n->str))
        return fail_at(x, n, "bad collector \"%s\" %s: expected letters, digits and _", n->str,
                       where);
    *out = n->str;
    return 0;
}

static int get_bool(ctx *x, const pp_yaml_node *n, const char *key, const char *where, bool *out)
{
    if (expect_kind(x, n, PP_YAML_SCALAR, key, where) < 0)
        return -1;
    if (strcmp(n->str, "true") == 0)
        *out = true;
    else if (strcmp(n->str, "false") == 0)
        *out = false;
    else
        return fail_at(x, n, "bad boolean \"%s\" for \"%s\" %s: expected true or false", n->str,
                       key, where);
    return 0;
}

/* ---- catalog storage -------------------------------------------------- */

static void query_deinit(pp_catalog_query *q)
{
    free(q->name);
    free(q->namespace);
    free(q->file);
    free(q->collector);
    for (size_t i = 0; i < q->nvariants; i++)
        free(q->variants[i].sql);
    free(q->variants);
    for (size_t i = 0; i < q->ncolumns; i++) {
        free(q->columns[i].name);
        free(q->columns[i].label);
        free(q->columns[i].metric);
        free(q->columns[i].help);
    }
    free(q->columns);
}

static void family_deinit(pp_catalog_family *f)
{
    free(f->name);
    free(f->help);
    free(f->header);
}

pp_catalog *pp_catalog_new(void)
{
    pp_catalog *c = pp_calloc(1, sizeof(pp_catalog));
    c->refs = 1;
    return c;
}

pp_catalog *pp_catalog_ref(pp_catalog *c)
{
    assert(c->refs > 0);
    c->refs++;
    return c;
}

static void catalog_deinit(pp_catalog *c)
{
    for (size_t i = 0; i < c->nqueries; i++)
        query_deinit(&c->queries[i]);
    free(c->queries);
    for (size_t i = 0; i < c->nfamilies; i++)
        family_deinit(&c->families[i]);
    free(c->families);
    free(c->collectors);
}

void pp_catalog_free(pp_catalog *c)
{
    if (c == NULL)
        return;
    assert(c->refs > 0);
    if (--c->refs > 0)
        return;
    catalog_deinit(c);
    free(c);
}

static const pp_catalog_query *find_query(const pp_catalog *c, const char *name)
{
    for (size_t i = 0; i < c->nqueries; i++)
        if (strcmp(c->queries[i].name, name) == 0)
            return &c->queries[i];
    return NULL;
}

size_t pp_catalog_find_family(const pp_catalog *c, const char *name)
{
    for (size_t i = 0; i < c->nfamilies; i++)
        if (strcmp(c->families[i].name, name) == 0)
            return i;
    return (size_t)-1;
}

const pp_catalog_variant *pp_catalog_pick(const pp_catalog_query *q, int server_version_num)
{
    for (size_t i = 0; i < q->nvariants; i++) {
        const pp_catalog_variant *v = &q->variants[i];
        if (v->min_version != 0 && server_version_num < v->min_version)
            continue;
        if (v->max_version != 0 && server_version_num >= v->max_version)
            continue;
        return v;
    }
    return NULL;
}

/* The family at a catalog-wide index: base first, then the stage. */
static const pp_catalog_family *family_at(const ctx *x, size_t i)
{
    if (i < x->base->nfamilies)
        return &x->base->families[i];
    return &x->st->c.families[i - x->base->nfamilies];
}

/* A query (base or stage) that has a column of family i, for messages. */
static const char *family_owner(const ctx *x, size_t i)
{
    const pp_catalog *cs[2] = {x->base, &x->st->c};
    for (size_t k = 0; k < 2; k++)
        for (size_t q = 0; q < cs[k]->nqueries; q++)
            for (size_t j = 0; j < cs[k]->queries[q].ncolumns; j++) {
                const pp_catalog_column *col = &cs[k]->queries[q].columns[j];
                if (pp_catalog_is_value_role(col->role) && col->family == i &&
                    !cs[k]->queries[q].dynamic)
                    return cs[k]->queries[q].name;
            }
    return "?";
}

static size_t stage_add_family(stage *st, const char *name, const char *help, pp_metric_type t)
{
    if (st->c.nfamilies == st->fcap) {
        st->fcap = st->fcap ? st->fcap * 2 : 32;
        st->c.families = pp_realloc(st->c.families, st->fcap * sizeof *st->c.families);
    }
    pp_catalog_family *f = &st->c.families[st->c.nfamilies];
    memset(f, 0, sizeof *f);
    f->name = pp_strdup(name);
    f->help = pp_strdup(help);
    f->type = t;
    pp_buf b = PP_BUF_INIT;
    pp_render_header(&b, name, help, t);
    f->header = pp_buf_steal(&b, &f->header_len);
    return st->c.nfamilies++;
}

static void stage_add_query(stage *st, pp_catalog_query *q)
{
    if (st->c.nqueries == st->qcap) {
        st->qcap = st->qcap ? st->qcap * 2 : 16;
        st->c.queries = pp_realloc(st->c.queries, st->qcap * sizeof *st->c.queries);
    }
    st->c.queries[st->c.nqueries++] = *q;
    memset(q, 0, sizeof *q);
}

/* Rebuilds c->collectors and each query's index into it. */
static void index_collectors(pp_catalog *c)
{
    free(c->collectors);
    c->collectors = NULL;
    c->ncollectors = 0;
    for (size_t i = 0; i < c->nqueries; i++) {
        pp_catalog_query *q = &c->queries[i];
        q->collector_index = (size_t)-1;
        if (q->collector == NULL)
            continue;
        size_t k;
        for (k = 0; k < c->ncollectors; k++)
            if (strcmp(c->collectors[k], q->collector) == 0)
                break;
        if (k == c->ncollectors) {
            c->collectors = pp_realloc(c->collectors, (k + 1) * sizeof *c->collectors);
            c->collectors[c->ncollectors++] = q->collector;
        }
        q->collector_index = k;
    }
}

void pp_catalog_set_keep(pp_catalog *c, pp_catalog_keep_fn keep, void *data)
{
    c->keep = keep;
    c->keep_data = data;
}

/* Moves everything staged into c; the stage is left empty. */
static void stage_merge(pp_catalog *c, stage *st)
{
    if (st->c.nqueries > 0) {
        c->queries = pp_realloc(c->queries, (c->nqueries + st->c.nqueries) * sizeof *c->queries);
        memcpy(c->queries + c->nqueries, st->c.queries, st->c.nqueries * sizeof *c->queries);
        c->nqueries += st->c.nqueries;
    }
    if (st->c.nfamilies > 0) {
        c->families =
            pp_realloc(c->families, (c->nfamilies + st->c.nfamilies) * sizeof *c->families);
        memcpy(c->families + c->nfamilies, st->c.families, st->c.nfamilies * sizeof *c->families);
        c->nfamilies += st->c.nfamilies;
    }
    free(st->c.queries);
    free(st->c.families);
    free(st->c.collectors);
    memset(st, 0, sizeof *st);
    index_collectors(c);
}

static void stage_discard(stage *st)
{
    catalog_deinit(&st->c);
    memset(st, 0, sizeof *st);
}

/* ---- the format ------------------------------------------------------- */

typedef struct defaults {
    double interval; /* 0: not set */
    double timeout;  /* 0: not set */
    pp_runs_on runs_on;
    pp_scope scope;
    const char *collector; /* borrowed from the document; NULL: not set */
    bool default_metrics;
    bool server_label;
} defaults;

static const char *const top_keys[] = {"defaults", "queries", NULL};
static const char *const defaults_keys[] = {"interval",  "timeout",         "runs_on",      "scope",
                                            "collector", "default_metrics", "server_label", NULL};
static const char *const query_keys[] = {
    "name",  "namespace",  "sql",     "versions",  "interval",        "timeout",      "runs_on",
    "scope", "max_series", "columns", "collector", "default_metrics", "server_label", NULL};
static const char *const version_keys[] = {"min_version", "max_version", "sql", NULL};
static const char *const column_keys[] = {"role", "help", "metric", "label", "scale", NULL};

static const struct {
    const char *name;
    pp_column_role role;
} roles[] = {
    {"label", PP_COL_LABEL},     {"gauge", PP_COL_GAUGE}, {"counter", PP_COL_COUNTER},
    {"discard", PP_COL_DISCARD}, {"name", PP_COL_NAME},   {"help", PP_COL_HELP},
    {"bucket", PP_COL_BUCKET},   {"sum", PP_COL_SUM},     {"count", PP_COL_COUNT},
};

static const char *role_name(pp_column_role r)
{
    if (r == PP_COL_HISTOGRAM) /* legacy only: not a role of the native format */
        return "histogram";
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (roles[i].role == r)
            return roles[i].name;
    return "?";
}

static bool is_value_role(pp_column_role r)
{
    return pp_catalog_is_value_role(r);
}

static bool is_histogram_role(pp_column_role r)
{
    return r == PP_COL_BUCKET || r == PP_COL_SUM || r == PP_COL_COUNT;
}

static const char *histogram_suffix(pp_column_role r)
{
    return r == PP_COL_BUCKET ? "_bucket" : r == PP_COL_SUM ? "_sum" : "_count";
}

/* Whether sample is one of the samples of the histogram named hist. */
static bool legacy_sample_of(const char *hist, const char *sample)
{
    size_t n = strlen(hist);
    return strncmp(hist, sample, n) == 0 &&
           (strcmp(sample + n, "_bucket") == 0 || strcmp(sample + n, "_sum") == 0 ||
            strcmp(sample + n, "_count") == 0);
}

static pp_metric_type role_type(pp_column_role r)
{
    return r == PP_COL_GAUGE     ? PP_METRIC_GAUGE
           : r == PP_COL_COUNTER ? PP_METRIC_COUNTER
                                 : PP_METRIC_HISTOGRAM;
}

/* The index of a family other than own whose samples could be named
 * sample (one named so, or a histogram whose _bucket, _sum or _count it
 * is), or (size_t)-1. */
static size_t sample_clash(const ctx *x, const char *sample, size_t own)
{
    size_t n = x->base->nfamilies + x->st->c.nfamilies;
    size_t slen = strlen(sample);
    for (size_t i = 0; i < n; i++) {
        const pp_catalog_family *f = family_at(x, i);
        if (i == own)
            continue;
        if (strcmp(f->name, sample) == 0)
            return i;
        size_t flen = strlen(f->name);
        if (f->type == PP_METRIC_HISTOGRAM && slen > flen && strncmp(sample, f->name, flen) == 0 &&
            (strcmp(sample + flen, "_bucket") == 0 || strcmp(sample + flen, "_sum") == 0 ||
             strcmp(sample + flen, "_count") == 0))
            return i;
    }
    return (size_t)-1;
}

static int parse_defaults(ctx *x, const pp_yaml_node *m, defaults *d)
{
    const char *where = "in \"defaults\"";
    const pp_yaml_node *v;
    if (expect_kind(x, m, PP_YAML_MAPPING, "defaults", "at top level") < 0)
        return -1;
    if (check_keys(x, m, defaults_keys, where) < 0)
        return -1;
    if ((v = pp_yaml_get(m, "interval")) && get_duration(x, v, "interval", where, &d->interval) < 0)
        return -1;
    if ((v = pp_yaml_get(m, "timeout")) && get_duration(x, v, "timeout", where, &d->timeout) < 0)
        return -1;
    if ((v = pp_yaml_get(m, "runs_on")) && get_runs_on(x, v, where, &d->runs_on) < 0)
        return -1;
    if ((v = pp_yaml_get(m, "scope")) && get_scope(x, v, where, &d->scope) < 0)
        return -1;
    if ((v = pp_yaml_get(m, "collector")) && get_collector(x, v, where, &d->collector) < 0)
        return -1;
    if ((v = pp_yaml_get(m, "default_metrics")) &&
        get_bool(x, v, "default_metrics", where, &d->default_metrics) < 0)
        return -1;
    if ((v = pp_yaml_get(m, "server_label")) &&
        get_bool(x, v, "server_label", where, &d->server_label) < 0)
        return -1;
    return 0;
}

/* Copies sql without trailing white space or a trailing semicolon. */
static char *sql_dup(const pp_yaml_node *n)
{
    size_t len = n->len;
    while (len > 0 && strchr(" \t\r\n;", n->str[len - 1]) != NULL)
        len--;
    char *s = pp_malloc(len + 1);
    memcpy(s, n->str, len);
    s[len] = '\0';
    return s;
}

/* key names the statement's key in messages: "sql", or a legacy "query". */
static int get_sql(ctx *x, const pp_yaml_node *n, const char *key, const char *where, char **out)
{
    if (expect_text(x, n, key, where) < 0)
        return -1;
    char *s = sql_dup(n);
    if (s[strspn(s, " \t\r\n")] == '\0') {
        free(s);
        return fail_at(x, n, "empty \"%s\" %s", key, where);
    }
    *out = s;
    return 0;
}

static int get_version(ctx *x, const pp_yaml_node *n, const char *key, const char *where, int *out)
{
    unsigned long long v;
    if (expect_kind(x, n, PP_YAML_SCALAR, key, where) < 0)
        return -1;
    if (parse_uint(n->str, INT32_MAX, &v) < 0)
        return fail_at(x, n, "bad %s \"%s\" %s: expected a server_version_num such as 150000", key,
                       n->str, where);
    *out = (int)v;
    return 0;
}

static bool ranges_overlap(const pp_catalog_variant *a, const pp_catalog_variant *b)
{
    /* [min, max) with 0 meaning unbounded on that side. */
    bool a_before_b =
        a->max_version != 0 && b->min_version != 0 && a->max_version <= b->min_version;
    bool b_before_a =
        b->max_version != 0 && a->min_version != 0 && b->max_version <= a->min_version;
    return !a_before_b && !b_before_a;
}

static int parse_versions(ctx *x, const pp_yaml_node *seq, const char *qname, pp_catalog_query *q)
{
    char where[320];
    snprintf(where, sizeof where, "in query \"%s\"", qname);
    if (expect_kind(x, seq, PP_YAML_SEQUENCE, "versions", where) < 0)
        return -1;
    if (seq->n == 0)
        return fail_at(x, seq, "empty \"versions\" %s", where);
    q->variants = pp_calloc(seq->n, sizeof *q->variants);
    for (size_t i = 0; i < seq->n; i++) {
        const pp_yaml_node *m = seq->items[i];
        const pp_yaml_node *v;
        pp_catalog_variant *var = &q->variants[i];
        snprintf(where, sizeof where, "in entry %zu of \"versions\" of query \"%s\"", i + 1, qname);
        if (m->kind != PP_YAML_MAPPING)
            return fail_at(x, m, "expected a mapping %s, found %s", where,
                           pp_yaml_kind_name(m->kind));
        if (check_keys(x, m, version_keys, where) < 0)
            return -1;
        if ((v = pp_yaml_get(m, "min_version")) &&
            get_version(x, v, "min_version", where, &var->min_version) < 0)
            return -1;
        if ((v = pp_yaml_get(m, "max_version")) &&
            get_version(x, v, "max_version", where, &var->max_version) < 0)
            return -1;
        if (var->min_version != 0 && var->max_version != 0 && var->min_version >= var->max_version)
            return fail_at(x, v, "max_version must be greater than min_version %s", where);
        if ((v = pp_yaml_get(m, "sql")) == NULL)
            return fail_at(x, m, "missing key \"sql\" %s", where);
        if (get_sql(x, v, "sql", where, &var->sql) < 0)
            return -1;
        q->nvariants++;
        for (size_t j = 0; j < i; j++)
            if (ranges_overlap(&q->variants[j], var))
                return fail_at(x, m,
                               "version range of entry %zu overlaps entry %zu of \"versions\" "
                               "in query \"%s\"",
                               i + 1, j + 1, qname);
    }
    return 0;
}

/* What a column's mapping said, kept for the checks that need the whole
 * query (positions for messages). */
typedef struct colsrc {
    const pp_yaml_node *key, *role, *help, *metric, *label, *scale;
} colsrc;

static int parse_column(ctx *x, const pp_yaml_node *key, const pp_yaml_node *val, const char *qname,
                        pp_catalog_column *col, colsrc *src)
{
    char where[320];
    const pp_yaml_node *role;
    snprintf(where, sizeof where, "in column \"%s\" of query \"%s\"", key->str, qname);
    if (key->len == 0)
        return fail_at(x, key, "empty column name in query \"%s\"", qname);
    col->name = pp_strdup(key->str);
    col->scale = 1;
    col->family = (size_t)-1;
    src->key = key;
    if (val->kind == PP_YAML_SCALAR) {
        role = val;
    } else if (val->kind == PP_YAML_MAPPING) {
        if (check_keys(x, val, column_keys, where) < 0)
            return -1;
        if ((role = pp_yaml_get(val, "role")) == NULL)
            return fail_at(x, val, "missing key \"role\" %s", where);
        if (expect_kind(x, role, PP_YAML_SCALAR, "role", where) < 0)
            return -1;
        src->help = pp_yaml_get(val, "help");
        src->metric = pp_yaml_get(val, "metric");
        src->label = pp_yaml_get(val, "label");
        src->scale = pp_yaml_get(val, "scale");
    } else {
        return fail_at(x, val, "expected a role or a mapping %s, found a sequence", where);
    }
    src->role = role;

    size_t r;
    for (r = 0; r < sizeof roles / sizeof roles[0]; r++)
        if (strcmp(role->str, roles[r].name) == 0)
            break;
    if (r == sizeof roles / sizeof roles[0])
        return fail_at(x, role,
                       "bad role \"%s\" %s: expected label, gauge, counter, bucket, sum, count, "
                       "discard, name or help",
                       role->str, where);
    col->role = roles[r].role;

    /* Keys that would be silently ignored are refused instead. */
    const struct {
        const char *key;
        const pp_yaml_node *n;
        bool applies;
    } extra[] = {
        {"help", src->help, is_value_role(col->role)},
        {"metric", src->metric, is_value_role(col->role)},
        {"label", src->label, col->role == PP_COL_LABEL},
        {"scale", src->scale, is_value_role(col->role)},
    };
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        if (extra[i].n == NULL)
            continue;
        if (!extra[i].applies)
            return fail_at(x, extra[i].n, "key \"%s\" does not apply to role %s %s", extra[i].key,
                           role_name(col->role), where);
        if (expect_text(x, extra[i].n, extra[i].key, where) < 0)
            return -1;
    }
    if (src->help)
        col->help = pp_strdup(src->help->str);
    if (src->metric) {
        if (!pp_render_valid_metric_name(src->metric->str))
            return fail_at(x, src->metric, "invalid metric name \"%s\" %s", src->metric->str,
                           where);
        col->metric = pp_strdup(src->metric->str);
    }
    if (col->role == PP_COL_LABEL) {
        const char *label = src->label ? src->label->str : key->str;
        if (!pp_render_valid_label_name(label))
            return fail_at(x, src->label ? src->label : key, "invalid label name \"%s\" %s", label,
                           where);
        col->label = pp_strdup(label);
    }
    if (src->scale) {
        if (parse_number(src->scale->str, &col->scale) < 0 || col->scale == 0)
            return fail_at(x, src->scale, "bad scale \"%s\" %s: expected a non-zero number",
                           src->scale->str, where);
    }
    return 0;
}

/*
 * Metric names pgpulse's own code emits (lib/selfmetrics.c): a catalog
 * metric among them would put a family on the page twice, or pass a
 * query's data off as the exporter's own state. postgres_exporter's
 * pg_static is not reserved (it is the server's version, which the
 * shipped catalog reports as postgres_exporter does).
 */
static const char *const reserved_names[] = {"pg_up", NULL};
static const char *const reserved_prefixes[] = {"pg_exporter_", "pg_scrape_collector_", "pgpulse_",
                                                "process_", NULL};

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Refuses a static metric name that is reserved, at node n. */
static int check_reserved_metric(ctx *x, const pp_yaml_node *n, const pp_catalog_query *q,
                                 const pp_catalog_column *c)
{
    for (const char *const *r = reserved_names; *r != NULL; r++)
        if (strcmp(c->metric, *r) == 0)
            return fail_at(x, n,
                           "metric \"%s\" is reserved for pgpulse's own metrics in column \"%s\" "
                           "of query \"%s\"",
                           c->metric, c->name, q->name);
    for (const char *const *r = reserved_prefixes; *r != NULL; r++)
        if (starts_with(c->metric, *r))
            return fail_at(x, n,
                           "metric \"%s\" is reserved for pgpulse's own metrics (names starting "
                           "with \"%s\") in column \"%s\" of query \"%s\"",
                           c->metric, *r, c->name, q->name);
    return 0;
}

/* Refuses the namespace of a dynamic query when "<namespace>_<anything>"
 * could be a reserved name, at node n. */
static int check_reserved_namespace(ctx *x, const pp_yaml_node *n, const pp_catalog_query *q)
{
    pp_buf b = PP_BUF_INIT;
    const char *hit = NULL;
    bool prefix = false;

    pp_buf_printf(&b, "%s_", q->namespace);
    for (const char *const *r = reserved_names; hit == NULL && *r != NULL; r++)
        if (starts_with(*r, b.data))
            hit = *r;
    for (const char *const *r = reserved_prefixes; hit == NULL && *r != NULL; r++)
        if (starts_with(*r, b.data) || starts_with(b.data, *r)) {
            hit = *r;
            prefix = true;
        }
    pp_buf_deinit(&b);
    if (hit == NULL)
        return 0;
    return fail_at(x, n,
                   "namespace \"%s\" of query \"%s\" could produce %s\"%s\", reserved for "
                   "pgpulse's own metrics (its metric names come from the name column)",
                   q->namespace, q->name, prefix ? "names starting with " : "", hit);
}

/* Checks that need all columns, then ties value columns to families. */
static int check_columns(ctx *x, const pp_yaml_node *cols, pp_catalog_query *q, const colsrc *src,
                         const pp_yaml_node *ns_src)
{
    size_t nname = 0, nhelp = 0, nvalue = 0;
    const colsrc *name_src = NULL, *help_src = NULL, *value_src = NULL;
    pp_catalog_column *value_col = NULL;

    for (size_t i = 0; i < q->ncolumns; i++) {
        pp_catalog_column *c = &q->columns[i];
        if (c->role == PP_COL_NAME) {
            if (nname++ > 0)
                return fail_at(x, src[i].key, "more than one name column in query \"%s\"", q->name);
            name_src = &src[i];
        } else if (c->role == PP_COL_HELP) {
            if (nhelp++ > 0)
                return fail_at(x, src[i].key, "more than one help column in query \"%s\"", q->name);
            help_src = &src[i];
        } else if (is_value_role(c->role)) {
            if (nvalue++ == 0) {
                value_src = &src[i];
                value_col = c;
            }
        }
        if (c->role == PP_COL_LABEL && strcmp(c->label, "datname") == 0)
            q->datname_label = true;
        if (c->role == PP_COL_LABEL && q->server_label && strcmp(c->label, "server") == 0)
            return fail_at(x, src[i].key,
                           "label \"server\" is set by \"server_label\" in query \"%s\"", q->name);
        if (c->role == PP_COL_LABEL)
            for (size_t j = 0; j < i; j++)
                if (q->columns[j].role == PP_COL_LABEL &&
                    strcmp(q->columns[j].label, c->label) == 0)
                    return fail_at(x, src[i].key, "label \"%s\" is used twice in query \"%s\"",
                                   c->label, q->name);
    }
    q->dynamic = nname > 0;
    if (nhelp > 0 && nname == 0)
        return fail_at(x, help_src->key, "help column \"%s\" in query \"%s\" needs a name column",
                       help_src->key->str, q->name);

    if (q->dynamic) {
        if (nvalue == 1 && is_histogram_role(value_col->role))
            return fail_at(x, value_src->role,
                           "role %s does not apply in query \"%s\": its metric names come from "
                           "the name column (use gauge or counter)",
                           role_name(value_col->role), q->name);
        if (nvalue != 1)
            return fail_at(x, nvalue > 1 ? cols : name_src->key,
                           "query \"%s\" has a name column and needs exactly one gauge or "
                           "counter column, found %zu",
                           q->name, nvalue);
        if (value_src->metric)
            return fail_at(x, value_src->metric,
                           "key \"metric\" does not apply in query \"%s\": its metric names "
                           "come from the name column",
                           q->name);
        if (nhelp == 0 && value_col->help == NULL)
            return fail_at(x, value_src->key,
                           "query \"%s\" needs a help column or \"help\" on column \"%s\"", q->name,
                           value_col->name);
        if (!pp_render_valid_metric_name(q->namespace))
            return fail_at(x, ns_src, "invalid namespace \"%s\" in query \"%s\"", q->namespace,
                           q->name);
        return check_reserved_namespace(x, ns_src, q);
    }

    if (nvalue == 0)
        return fail_at(x, cols, "query \"%s\" has no gauge or counter column", q->name);
    char **hist = pp_calloc(q->ncolumns, sizeof(char *)); /* histogram names, by column */
    int rc = -1;
    for (size_t i = 0; i < q->ncolumns; i++) {
        pp_catalog_column *c = &q->columns[i];
        if (!is_value_role(c->role))
            continue;
        if (c->help == NULL) {
            fail_at(x, src[i].key, "missing key \"help\" in column \"%s\" of query \"%s\"", c->name,
                    q->name);
            goto cleanup;
        }
        if (is_histogram_role(c->role)) {
            if (c->metric == NULL) {
                fail_at(x, src[i].key,
                        "missing key \"metric\" in column \"%s\" of query \"%s\": a %s "
                        "column names its histogram",
                        c->name, q->name, role_name(c->role));
                goto cleanup;
            }
            if (c->role == PP_COL_BUCKET) {
                bool le = false;
                for (size_t j = 0; j < q->ncolumns; j++)
                    le = le || (q->columns[j].role == PP_COL_LABEL &&
                                strcmp(q->columns[j].label, "le") == 0);
                if (!le) {
                    fail_at(x, src[i].role,
                            "bucket column \"%s\" of query \"%s\" needs a label column \"le\" "
                            "(the bucket's upper bound)",
                            c->name, q->name);
                    goto cleanup;
                }
            }
            hist[i] = c->metric;
            pp_buf b = PP_BUF_INIT;
            pp_buf_printf(&b, "%s%s", hist[i], histogram_suffix(c->role));
            c->metric = pp_buf_steal(&b, NULL);
        }
        if (c->metric == NULL) {
            pp_buf b = PP_BUF_INIT;
            pp_buf_printf(&b, "%s_%s", q->namespace, c->name);
            c->metric = pp_buf_steal(&b, NULL);
            if (!pp_render_valid_metric_name(c->metric)) {
                fail_at(x, src[i].key,
                        "invalid metric name \"%s\" in column \"%s\" of "
                        "query \"%s\" (set \"metric\" or \"namespace\")",
                        c->metric, c->name, q->name);
                goto cleanup;
            }
        }
        if (check_reserved_metric(x, src[i].metric ? src[i].metric : src[i].key, q, c) < 0)
            goto cleanup;
        for (size_t j = 0; j < i; j++) {
            const pp_catalog_column *o = &q->columns[j];
            const char *twice = NULL;
            if (!is_value_role(o->role))
                continue;
            if (strcmp(o->metric, c->metric) == 0)
                twice = c->metric;
            else if (c->role == PP_COL_HISTOGRAM && legacy_sample_of(c->metric, o->metric))
                twice = o->metric;
            else if (o->role == PP_COL_HISTOGRAM && legacy_sample_of(o->metric, c->metric))
                twice = c->metric;
            if (twice != NULL) {
                fail_at(x, src[i].key, "metric \"%s\" is produced twice in query \"%s\"", twice,
                        q->name);
                goto cleanup;
            }
        }
    }
    /* Families last, once nothing else can fail but a conflict. */
    for (size_t i = 0; i < q->ncolumns; i++) {
        pp_catalog_column *c = &q->columns[i];
        if (!is_value_role(c->role))
            continue;
        const char *fname = hist[i] ? hist[i] : c->metric;
        pp_metric_type t = role_type(c->role);
        size_t fi = pp_catalog_find_family(x->base, fname);
        if (fi == (size_t)-1) {
            fi = pp_catalog_find_family(&x->st->c, fname);
            if (fi != (size_t)-1)
                fi += x->base->nfamilies;
        }
        size_t other = sample_clash(x, c->metric, fi);
        /* a legacy histogram's samples are <metric>_bucket, _sum, _count */
        static const char *const hsuffix[] = {"_bucket", "_sum", "_count"};
        for (size_t k = 0; c->role == PP_COL_HISTOGRAM && other == (size_t)-1 && k < 3; k++) {
            pp_buf b = PP_BUF_INIT;
            pp_buf_printf(&b, "%s%s", c->metric, hsuffix[k]);
            other = sample_clash(x, b.data, fi);
            pp_buf_deinit(&b);
        }
        if (other != (size_t)-1) {
            fail_at(x, src[i].metric ? src[i].metric : src[i].key,
                    "metric \"%s\" of query \"%s\" would mix with the samples of %s \"%s\" of "
                    "query \"%s\"",
                    c->metric, q->name, pp_metric_type_name(family_at(x, other)->type),
                    family_at(x, other)->name, family_owner(x, other));
            goto cleanup;
        }
        if (fi != (size_t)-1) {
            const pp_catalog_family *f = family_at(x, fi);
            if (f->type != t) {
                fail_at(x, src[i].role,
                        "metric \"%s\" is a %s in query \"%s\" but a %s in query \"%s\"", fname,
                        pp_metric_type_name(t), q->name, pp_metric_type_name(f->type),
                        family_owner(x, fi));
                goto cleanup;
            }
            if (strcmp(f->help, c->help) != 0) {
                fail_at(x, src[i].help ? src[i].help : src[i].key,
                        "metric \"%s\" has a different help text in query \"%s\" than in "
                        "query \"%s\"",
                        fname, q->name, family_owner(x, fi));
                goto cleanup;
            }
        } else {
            fi = x->base->nfamilies + stage_add_family(x->st, fname, c->help, t);
        }
        c->family = fi;
    }
    rc = 0;
cleanup:
    for (size_t i = 0; i < q->ncolumns; i++)
        free(hist[i]);
    free(hist);
    return rc;
}

/* ns_src is the node the namespace comes from: "namespace", else "name". */
static int parse_columns(ctx *x, const pp_yaml_node *cols, const pp_yaml_node *ns_src,
                         pp_catalog_query *q)
{
    char where[320];
    colsrc *src = NULL;
    int rc = -1;
    snprintf(where, sizeof where, "in \"columns\" of query \"%s\"", q->name);
    if (cols->kind != PP_YAML_MAPPING) {
        fail_at(x, cols, "expected a mapping for \"columns\" in query \"%s\", found %s", q->name,
                pp_yaml_kind_name(cols->kind));
        goto cleanup;
    }
    if (cols->n == 0) {
        fail_at(x, cols, "empty \"columns\" in query \"%s\"", q->name);
        goto cleanup;
    }
    size_t n = cols->n;
    q->columns = pp_calloc(n, sizeof *q->columns);
    src = pp_calloc(n, sizeof *src);
    for (size_t i = 0; i < n; i++) {
        q->ncolumns++;
        if (parse_column(x, cols->items[2 * i], cols->items[2 * i + 1], q->name, &q->columns[i],
                         &src[i]) < 0)
            goto cleanup;
    }
    rc = check_columns(x, cols, q, src, ns_src);
cleanup:
    free(src);
    return rc;
}

static int parse_query(ctx *x, const pp_yaml_node *m, size_t index, const defaults *d)
{
    pp_catalog_query q;
    char where[320];
    const pp_yaml_node *v, *name, *ns;
    int rc = -1;

    memset(&q, 0, sizeof q);
    if (m->kind != PP_YAML_MAPPING) {
        fail_at(x, m, "expected a mapping for entry %zu of \"queries\", found %s", index + 1,
                pp_yaml_kind_name(m->kind));
        goto cleanup;
    }
    snprintf(where, sizeof where, "in entry %zu of \"queries\"", index + 1);
    if ((name = pp_yaml_get(m, "name")) == NULL) {
        /* Report unknown or duplicate keys first if there are any. */
        if (check_keys(x, m, query_keys, where) == 0)
            fail_at(x, m, "missing key \"name\" %s", where);
        goto cleanup;
    }
    if (expect_text(x, name, "name", where) < 0)
        goto cleanup;
    snprintf(where, sizeof where, "in query \"%s\"", name->str);
    if (check_keys(x, m, query_keys, where) < 0)
        goto cleanup;
    const pp_catalog_query *prev = find_query(x->base, name->str);
    if (prev == NULL)
        prev = find_query(&x->st->c, name->str);
    if (prev != NULL) {
        fail_at(x, name, "query \"%s\" is already defined at %s:%u:%u", name->str, prev->file,
                prev->line, prev->column);
        goto cleanup;
    }
    q.name = pp_strdup(name->str);
    q.file = pp_strdup(pp_yaml_name(x->doc));
    q.line = m->line;
    q.column = m->column;

    if ((ns = pp_yaml_get(m, "namespace")) != NULL) {
        if (expect_text(x, ns, "namespace", where) < 0)
            goto cleanup;
        if (!pp_render_valid_metric_name(ns->str)) {
            fail_at(x, ns, "invalid namespace \"%s\" %s", ns->str, where);
            goto cleanup;
        }
        q.namespace = pp_strdup(ns->str);
    } else {
        q.namespace = pp_strdup(q.name);
    }

    const pp_yaml_node *sql = pp_yaml_get(m, "sql"), *versions = pp_yaml_get(m, "versions");
    if (sql != NULL && versions != NULL) {
        fail_at(x, versions, "\"sql\" and \"versions\" are mutually exclusive %s", where);
        goto cleanup;
    }
    if (sql == NULL && versions == NULL) {
        fail_at(x, m, "missing key \"sql\" (or \"versions\") %s", where);
        goto cleanup;
    }
    if (sql != NULL) {
        q.variants = pp_calloc(1, sizeof *q.variants);
        if (get_sql(x, sql, "sql", where, &q.variants[0].sql) < 0)
            goto cleanup;
        q.nvariants = 1;
    } else if (parse_versions(x, versions, q.name, &q) < 0) {
        goto cleanup;
    }

    q.interval = d->interval > 0 ? d->interval : DEFAULT_INTERVAL;
    if ((v = pp_yaml_get(m, "interval")) && get_duration(x, v, "interval", where, &q.interval) < 0)
        goto cleanup;
    q.timeout = d->timeout > 0 ? d->timeout : fmin(q.interval, DEFAULT_TIMEOUT_CAP);
    if ((v = pp_yaml_get(m, "timeout")) && get_duration(x, v, "timeout", where, &q.timeout) < 0)
        goto cleanup;
    q.runs_on = d->runs_on;
    if ((v = pp_yaml_get(m, "runs_on")) && get_runs_on(x, v, where, &q.runs_on) < 0)
        goto cleanup;
    q.scope = d->scope;
    if ((v = pp_yaml_get(m, "scope")) && get_scope(x, v, where, &q.scope) < 0)
        goto cleanup;
    const char *collector = d->collector ? d->collector : q.name;
    if ((v = pp_yaml_get(m, "collector")) && get_collector(x, v, where, &collector) < 0)
        goto cleanup;
    q.collector = pp_strdup(collector);
    if (collector == q.name) /* the default: the name, made fit for a flag */
        for (char *p = q.collector; *p != '\0'; p++)
            if (!valid_collector((char[]){*p, '\0'}))
                *p = '_';
    q.default_metrics = d->default_metrics;
    if ((v = pp_yaml_get(m, "default_metrics")) &&
        get_bool(x, v, "default_metrics", where, &q.default_metrics) < 0)
        goto cleanup;
    q.server_label = d->server_label;
    if ((v = pp_yaml_get(m, "server_label")) &&
        get_bool(x, v, "server_label", where, &q.server_label) < 0)
        goto cleanup;
    if (x->base->keep != NULL && !x->base->keep(&q, x->base->keep_data)) {
        rc = 0; /* switched off: not loaded */
        goto cleanup;
    }
    if ((v = pp_yaml_get(m, "max_series")) != NULL) {
        unsigned long long n;
        if (expect_kind(x, v, PP_YAML_SCALAR, "max_series", where) < 0)
            goto cleanup;
        if (parse_uint(v->str, SIZE_MAX, &n) < 0) {
            fail_at(x, v, "bad max_series \"%s\" %s: expected a non-negative integer", v->str,
                    where);
            goto cleanup;
        }
        q.max_series = (size_t)n;
    }

    if ((v = pp_yaml_get(m, "columns")) == NULL) {
        fail_at(x, m, "missing key \"columns\" %s", where);
        goto cleanup;
    }
    if (parse_columns(x, v, ns ? ns : name, &q) < 0)
        goto cleanup;
    stage_add_query(x->st, &q);
    rc = 0;
cleanup:
    query_deinit(&q);
    return rc;
}

/* Parses one file's text and stages its queries. */
static int load_into(const pp_catalog *base, stage *st, const char *name, const char *data,
                     size_t len, char *err, size_t errlen)
{
    pp_yaml_doc *doc = NULL;
    defaults d = {0, 0, PP_RUNS_ON_ANY, PP_SCOPE_DATABASE, NULL, false, false};
    const pp_yaml_node *root, *v;
    int rc = -1;

    if (pp_yaml_parse(name, data, len, &doc, err, errlen) < 0)
        goto cleanup;
    ctx x = {doc, err, errlen, base, st};
    if ((root = pp_yaml_root(doc)) == NULL) { /* an empty file adds nothing */
        rc = 0;
        goto cleanup;
    }
    if (root->kind != PP_YAML_MAPPING) {
        fail_at(&x, root, "expected a mapping at top level, found %s",
                pp_yaml_kind_name(root->kind));
        goto cleanup;
    }
    if (check_keys(&x, root, top_keys, "at top level") < 0)
        goto cleanup;
    if ((v = pp_yaml_get(root, "defaults")) != NULL && parse_defaults(&x, v, &d) < 0)
        goto cleanup;
    if ((v = pp_yaml_get(root, "queries")) == NULL) {
        fail_at(&x, root, "missing key \"queries\" at top level");
        goto cleanup;
    }
    if (expect_kind(&x, v, PP_YAML_SEQUENCE, "queries", "at top level") < 0)
        goto cleanup;
    for (size_t i = 0; i < v->n; i++)
        if (parse_query(&x, v->items[i], i, &d) < 0)
            goto cleanup;
    rc = 0;
cleanup:
    pp_yaml_free(doc);
    return rc;
}

int pp_catalog_load_buffer(pp_catalog *c, const char *name, const char *data, size_t len, char *err,
                           size_t errlen)
{
    stage st;
    memset(&st, 0, sizeof st);
    if (load_into(c, &st, name, data, len, err, errlen) < 0) {
        stage_discard(&st);
        return -1;
    }
    stage_merge(c, &st);
    return 0;
}

/* ---- files ------------------------------------------------------------ */

static int load_file(const pp_catalog *base, stage *st, const char *path, char *err, size_t errlen)
{
    char *data = NULL;
    size_t len = 0;
    if (pp_read_file(path, MAX_FILE_SIZE, &data, &len, err, errlen) < 0)
        return -1;
    int rc = load_into(base, st, path, data, len, err, errlen);
    free(data);
    return rc;
}

static bool is_catalog_name(const char *s)
{
    size_t n = strlen(s);
    if (s[0] == '.')
        return false;
    return (n > 5 && strcmp(s + n - 5, ".yaml") == 0) || (n > 4 && strcmp(s + n - 4, ".yml") == 0);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_dir(const pp_catalog *base, stage *st, const char *path, char *err, size_t errlen)
{
    DIR *dir = NULL;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;

    if ((dir = opendir(path)) == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto cleanup;
    }
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(dir);
        if (e == NULL) {
            if (errno != 0) {
                snprintf(err, errlen, "%s: %s", path, strerror(errno));
                goto cleanup;
            }
            break;
        }
        if (!is_catalog_name(e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = pp_realloc(names, cap * sizeof *names);
        }
        names[n++] = pp_strdup(e->d_name);
    }
    qsort(names, n, sizeof *names, cmp_names);
    size_t plen = strlen(path);
    bool slash = plen > 0 && path[plen - 1] == '/';
    for (size_t i = 0; i < n; i++) {
        pp_buf b = PP_BUF_INIT;
        pp_buf_printf(&b, "%s%s%s", path, slash ? "" : "/", names[i]);
        int r = load_file(base, st, b.data, err, errlen);
        pp_buf_deinit(&b);
        if (r < 0)
            goto cleanup;
    }
    rc = 0;
cleanup:
    if (dir != NULL)
        closedir(dir);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int pp_catalog_load_path(pp_catalog *c, const char *path, char *err, size_t errlen)
{
    stage st;
    struct stat sb;
    int rc;

    memset(&st, 0, sizeof st);
    if (stat(path, &sb) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(sb.st_mode))
        rc = load_dir(c, &st, path, err, errlen);
    else
        rc = load_file(c, &st, path, err, errlen);
    if (rc < 0) {
        stage_discard(&st);
        return -1;
    }
    stage_merge(c, &st);
    return 0;
}

int pp_catalog_load_builtin(pp_catalog *c, char *err, size_t errlen)
{
    stage st;
    memset(&st, 0, sizeof st);
    for (const pp_catalog_blob *b = pp_catalog_builtin; b->name != NULL; b++) {
        if (load_into(c, &st, b->name, b->data, b->len, err, errlen) < 0) {
            stage_discard(&st);
            return -1;
        }
    }
    stage_merge(c, &st);
    return 0;
}

/* ---- postgres_exporter's queries.yaml --------------------------------- */

/*
 * The legacy format (--extend.query-path): a mapping from namespace to
 *   {query, metrics: [{<column>: {usage, description}}], master,
 *    cache_seconds, runonserver}
 * Each namespace becomes one static query named "legacy:<namespace>" (so
 * that it never collides with a native query of the same name) whose
 * columns go through check_columns like native ones: metric names,
 * reserved names and family conflicts are refused the same way.
 * postgres_exporter ignores unknown keys and reads an unknown usage as
 * DISCARD; both are refused here, as a typo would otherwise drop a metric
 * without a word.
 */

#define LEGACY_PREFIX "legacy:"

static const char *const legacy_entry_keys[] = {"query",         "metrics",     "master",
                                                "cache_seconds", "runonserver", NULL};
/* metric_mapping and pg_version are parsed and ignored upstream for user
 * queries, so they are accepted and ignored here too. */
static const char *const legacy_column_keys[] = {"usage", "description", "metric_mapping",
                                                 "pg_version", NULL};

static const struct {
    const char *name;
    pp_column_role role;
    pp_column_conv conv;
    const char *suffix; /* appended to "<namespace>_<column>" */
} legacy_usages[] = {
    {"LABEL", PP_COL_LABEL, PP_CONV_NUMBER, ""},
    {"COUNTER", PP_COL_COUNTER, PP_CONV_LEGACY, ""},
    {"GAUGE", PP_COL_GAUGE, PP_CONV_LEGACY, ""},
    {"DISCARD", PP_COL_DISCARD, PP_CONV_NUMBER, ""},
    /* upstream ignores metric_mapping in user queries, so the column never
     * yields a value: reading it as discard gives the same page */
    {"MAPPEDMETRIC", PP_COL_DISCARD, PP_CONV_NUMBER, ""},
    {"DURATION", PP_COL_GAUGE, PP_CONV_DURATION, "_milliseconds"},
    /* the bounds column; rows.c reads <column>_bucket, _sum and _count,
     * which upstream's mapping discards, listed or not */
    {"HISTOGRAM", PP_COL_HISTOGRAM, PP_CONV_NUMBER, ""},
};

/* YAML 1.1 booleans, as yaml.v2 reads them into a bool. */
static int get_legacy_bool(ctx *x, const pp_yaml_node *n, const char *key, const char *where,
                           bool *out)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
                                      "on",   "On",   "ON",   "y",   "Y",   NULL};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO",
                                     "off",   "Off",   "OFF",   "n",  "N",  NULL};
    if (expect_kind(x, n, PP_YAML_SCALAR, key, where) < 0)
        return -1;
    for (size_t i = 0; n->style == PP_YAML_PLAIN && yes[i] != NULL; i++)
        if (strcmp(n->str, yes[i]) == 0) {
            *out = true;
            return 0;
        }
    for (size_t i = 0; n->style == PP_YAML_PLAIN && no[i] != NULL; i++)
        if (strcmp(n->str, no[i]) == 0) {
            *out = false;
            return 0;
        }
    return fail_at(x, n, "bad boolean \"%s\" for \"%s\" %s: expected true or false", n->str, key,
                   where);
}

/* One "<column>: {usage, description}" pair of "metrics". */
static int parse_legacy_column(ctx *x, const pp_yaml_node *key, const pp_yaml_node *val,
                               const char *ns, const char *q_namespace, pp_catalog_column *col,
                               colsrc *src)
{
    char where[320];
    const pp_yaml_node *usage, *desc;
    snprintf(where, sizeof where, "in column \"%s\" of \"%s\"", key->str, ns);
    if (key->len == 0)
        return fail_at(x, key, "empty column name in \"%s\"", ns);
    col->name = pp_strdup(key->str);
    col->scale = 1;
    col->family = (size_t)-1;
    src->key = key;
    if (expect_kind(x, val, PP_YAML_MAPPING, key->str, where) < 0)
        return -1;
    if (check_keys(x, val, legacy_column_keys, where) < 0)
        return -1;
    if ((usage = pp_yaml_get(val, "usage")) == NULL)
        return fail_at(x, val, "missing key \"usage\" %s", where);
    if (expect_kind(x, usage, PP_YAML_SCALAR, "usage", where) < 0)
        return -1;
    size_t u;
    for (u = 0; u < sizeof legacy_usages / sizeof legacy_usages[0]; u++)
        if (strcmp(usage->str, legacy_usages[u].name) == 0)
            break;
    if (u == sizeof legacy_usages / sizeof legacy_usages[0])
        return fail_at(x, usage,
                       "bad usage \"%s\" %s: expected LABEL, COUNTER, GAUGE, DISCARD, "
                       "MAPPEDMETRIC, DURATION or HISTOGRAM (upper case)",
                       usage->str, where);
    col->role = legacy_usages[u].role;
    col->conv = legacy_usages[u].conv;
    if (legacy_usages[u].suffix[0] != '\0') {
        /* q_namespace has --metric-prefix applied already */
        pp_buf b = PP_BUF_INIT;
        pp_buf_printf(&b, "%s_%s%s", q_namespace, key->str, legacy_usages[u].suffix);
        col->metric = pp_buf_steal(&b, NULL);
        if (!pp_render_valid_metric_name(col->metric))
            return fail_at(x, key, "invalid metric name \"%s\" %s", col->metric, where);
    }
    src->role = usage;
    if ((desc = pp_yaml_get(val, "description")) != NULL &&
        expect_kind(x, desc, PP_YAML_SCALAR, "description", where) < 0)
        return -1;
    if (is_value_role(col->role)) {
        /* upstream's HELP is the description, empty when there is none */
        src->help = desc;
        col->help = pp_strdup(desc ? desc->str : "");
    }
    if (col->role == PP_COL_LABEL) {
        if (!pp_render_valid_label_name(key->str))
            return fail_at(x, key, "invalid label name \"%s\" %s", key->str, where);
        col->label = pp_strdup(key->str);
    }
    return 0;
}

static int parse_legacy_metrics(ctx *x, const pp_yaml_node *seq, const pp_yaml_node *ns_key,
                                pp_catalog_query *q)
{
    char where[320];
    colsrc *src = NULL;
    const char *ns = ns_key->str;
    int rc = -1;
    snprintf(where, sizeof where, "in \"%s\"", ns);
    if (expect_kind(x, seq, PP_YAML_SEQUENCE, "metrics", where) < 0)
        goto cleanup;
    /* each entry is a mapping, usually of one column; several are read in
     * document order */
    size_t n = 0;
    for (size_t i = 0; i < seq->n; i++) {
        const pp_yaml_node *m = seq->items[i];
        if (m->kind != PP_YAML_MAPPING) {
            fail_at(x, m, "expected a mapping for entry %zu of \"metrics\" in \"%s\", found %s",
                    i + 1, ns, pp_yaml_kind_name(m->kind));
            goto cleanup;
        }
        n += m->n;
    }
    if (n == 0) {
        fail_at(x, seq, "empty \"metrics\" in \"%s\"", ns);
        goto cleanup;
    }
    q->columns = pp_calloc(n, sizeof *q->columns);
    src = pp_calloc(n, sizeof *src);
    for (size_t i = 0; i < seq->n; i++) {
        const pp_yaml_node *m = seq->items[i];
        for (size_t k = 0; k < m->n; k++) {
            const pp_yaml_node *key = m->items[2 * k];
            for (size_t j = 0; j < q->ncolumns; j++)
                if (strcmp(q->columns[j].name, key->str) == 0) {
                    fail_at(x, key, "column \"%s\" is listed twice in \"%s\" (first at line %u)",
                            key->str, ns, src[j].key->line);
                    goto cleanup;
                }
            size_t c = q->ncolumns++;
            if (parse_legacy_column(x, key, m->items[2 * k + 1], ns, q->namespace, &q->columns[c],
                                    &src[c]) < 0)
                goto cleanup;
        }
    }
    rc = check_columns(x, seq, q, src, ns_key);
cleanup:
    free(src);
    return rc;
}

static int parse_legacy_entry(ctx *x, const pp_yaml_node *key, const pp_yaml_node *m)
{
    pp_catalog_query q;
    char where[320];
    const pp_yaml_node *v;
    pp_buf b = PP_BUF_INIT;
    int rc = -1;

    memset(&q, 0, sizeof q);
    snprintf(where, sizeof where, "in \"%s\"", key->str);
    if (key->len == 0) {
        fail_at(x, key, "empty namespace at top level");
        goto cleanup;
    }
    if (!pp_render_valid_metric_name(key->str)) {
        fail_at(x, key, "invalid namespace \"%s\": expected a metric name prefix", key->str);
        goto cleanup;
    }
    if (m->kind != PP_YAML_MAPPING) {
        fail_at(x, m, "expected a mapping for \"%s\", found %s", key->str,
                pp_yaml_kind_name(m->kind));
        goto cleanup;
    }
    if (check_keys(x, m, legacy_entry_keys, where) < 0)
        goto cleanup;
    pp_buf_printf(&b, LEGACY_PREFIX "%s", key->str);
    const pp_catalog_query *prev = find_query(x->base, b.data);
    if (prev == NULL)
        prev = find_query(&x->st->c, b.data);
    if (prev != NULL) { /* only from a second load of the same file */
        fail_at(x, key, "query \"%s\" is already defined at %s:%u:%u", b.data, prev->file,
                prev->line, prev->column);
        goto cleanup;
    }
    q.name = pp_buf_steal(&b, NULL);
    const char *prefix = x->base->legacy_metric_prefix;
    const char *pg = prefix != NULL ? strstr(key->str, "pg") : NULL;
    if (pg != NULL) {
        pp_buf_printf(&b, "%.*s%s%s", (int)(pg - key->str), key->str, prefix, pg + 2);
        q.namespace = pp_buf_steal(&b, NULL);
    } else {
        q.namespace = pp_strdup(key->str);
    }
    if (!pp_render_valid_metric_name(q.namespace)) {
        fail_at(x, key, "namespace \"%s\" with --metric-prefix is \"%s\", not a metric name",
                key->str, q.namespace);
        goto cleanup;
    }
    q.file = pp_strdup(pp_yaml_name(x->doc));
    q.line = key->line;
    q.column = key->column;
    q.scope = PP_SCOPE_DATABASE; /* upstream runs user queries on every DSN */
    /* upstream labels every user query series server="host:port"; it also
     * keeps them apart from a built-in query's series of the same family
     * (Debian's example has pg_stat_user_tables_*, as the catalog does) */
    q.server_label = true;

    q.variants = pp_calloc(1, sizeof *q.variants);
    q.nvariants = 1;
    if ((v = pp_yaml_get(m, "query")) != NULL) {
        if (get_sql(x, v, "query", where, &q.variants[0].sql) < 0)
            goto cleanup;
    } else {
        /* upstream's fallback; the namespace is a metric name, so it cannot
         * smuggle in more SQL */
        pp_buf_printf(&b, "SELECT * FROM %s", key->str);
        q.variants[0].sql = pp_buf_steal(&b, NULL);
    }

    q.interval = DEFAULT_INTERVAL;
    if ((v = pp_yaml_get(m, "cache_seconds")) != NULL) {
        unsigned long long secs;
        if (expect_kind(x, v, PP_YAML_SCALAR, "cache_seconds", where) < 0)
            goto cleanup;
        if (parse_uint(v->str, (unsigned long long)PP_CONFIG_MAX_DURATION, &secs) < 0) {
            fail_at(x, v,
                    "bad cache_seconds \"%s\" %s: expected a whole number of seconds, at most "
                    "a year",
                    v->str, where);
            goto cleanup;
        }
        if (secs > 0) /* 0 is upstream's "no cache": the default interval */
            q.interval = (double)secs;
    }
    q.timeout = fmin(q.interval, DEFAULT_TIMEOUT_CAP);
    bool master = false;
    if ((v = pp_yaml_get(m, "master")) != NULL &&
        get_legacy_bool(x, v, "master", where, &master) < 0)
        goto cleanup;
    q.runs_on = master ? PP_RUNS_ON_PRIMARY : PP_RUNS_ON_ANY;
    /* runonserver is parsed and never used upstream */
    if ((v = pp_yaml_get(m, "runonserver")) != NULL &&
        expect_kind(x, v, PP_YAML_SCALAR, "runonserver", where) < 0)
        goto cleanup;

    if ((v = pp_yaml_get(m, "metrics")) == NULL) {
        fail_at(x, key, "missing key \"metrics\" %s", where);
        goto cleanup;
    }
    if (parse_legacy_metrics(x, v, key, &q) < 0)
        goto cleanup;
    stage_add_query(x->st, &q);
    rc = 0;
cleanup:
    pp_buf_deinit(&b);
    query_deinit(&q);
    return rc;
}

static int load_legacy_into(const pp_catalog *base, stage *st, const char *name, const char *data,
                            size_t len, char *err, size_t errlen)
{
    pp_yaml_doc *doc = NULL;
    const pp_yaml_node *root;
    int rc = -1;

    if (pp_yaml_parse(name, data, len, &doc, err, errlen) < 0)
        goto cleanup;
    ctx x = {doc, err, errlen, base, st};
    if ((root = pp_yaml_root(doc)) == NULL) { /* upstream's own file is only comments */
        rc = 0;
        goto cleanup;
    }
    if (root->kind != PP_YAML_MAPPING) {
        fail_at(&x, root, "expected a mapping of namespaces at top level, found %s",
                pp_yaml_kind_name(root->kind));
        goto cleanup;
    }
    for (size_t i = 0; i < root->n; i++)
        if (parse_legacy_entry(&x, root->items[2 * i], root->items[2 * i + 1]) < 0)
            goto cleanup;
    rc = 0;
cleanup:
    pp_yaml_free(doc);
    return rc;
}

int pp_catalog_load_legacy_buffer(pp_catalog *c, const char *name, const char *data, size_t len,
                                  char *err, size_t errlen)
{
    stage st;
    memset(&st, 0, sizeof st);
    if (load_legacy_into(c, &st, name, data, len, err, errlen) < 0) {
        stage_discard(&st);
        return -1;
    }
    stage_merge(c, &st);
    return 0;
}

int pp_catalog_load_legacy_path(pp_catalog *c, const char *path,
                                char hashsum[PP_CATALOG_HASHSUM_SIZE], char *err, size_t errlen)
{
    char *data = NULL;
    size_t len = 0;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;

    hashsum[0] = '\0';
    if (pp_read_file(path, MAX_FILE_SIZE, &data, &len, err, errlen) < 0)
        return -1;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) == 1 && mdlen == 32)
        for (unsigned i = 0; i < mdlen; i++)
            snprintf(hashsum + 2 * i, 3, "%02x", md[i]);
    int rc = pp_catalog_load_legacy_buffer(c, path, data, len, err, errlen);
    free(data);
    return rc;
}

/* ---- --dumpmaps ---------------------------------------------------------- */

static void dump_bound(FILE *out, int v)
{
    if (v == 0)
        fputs("any", out);
    else
        fprintf(out, "%d", v);
}

void pp_catalog_dump(const pp_catalog *c, FILE *out)
{
    for (size_t i = 0; i < c->nqueries; i++) {
        const pp_catalog_query *q = &c->queries[i];
        fprintf(out, "%s\n  collector: %s%s\n  defined at: %s:%u:%u\n", q->name,
                q->collector ? q->collector : "(none: a user query)",
                q->default_metrics ? " (default metrics)" : "", q->file, q->line, q->column);
        fprintf(out, "  interval: %gs, timeout: %gs, runs on: %s, scope: %s\n", q->interval,
                q->timeout,
                q->runs_on == PP_RUNS_ON_PRIMARY   ? "primary"
                : q->runs_on == PP_RUNS_ON_STANDBY ? "standby"
                                                   : "any",
                q->scope == PP_SCOPE_SERVER ? "server" : "database");
        /* server_version_num ranges, [from, to) */
        fputs("  versions:", out);
        if (q->nvariants == 1 && q->variants[0].min_version == 0 && q->variants[0].max_version == 0)
            fputs(" all", out);
        else
            for (size_t v = 0; v < q->nvariants; v++) {
                fputs(v ? ", [" : " [", out);
                dump_bound(out, q->variants[v].min_version);
                fputs(", ", out);
                dump_bound(out, q->variants[v].max_version);
                fputs(")", out);
            }
        fputs("\n  labels:", out);
        if (q->server_label)
            fputs(" server", out);
        for (size_t k = 0; k < q->ncolumns; k++)
            if (q->columns[k].role == PP_COL_LABEL)
                fprintf(out, " %s", q->columns[k].label);
        fputs("\n  metrics:\n", out);
        for (size_t k = 0; k < q->ncolumns; k++) {
            const pp_catalog_column *col = &q->columns[k];
            if (!is_value_role(col->role))
                continue;
            const char *type = role_name(col->role);
            const char *from = "name";
            for (size_t j = 0; j < q->ncolumns; j++)
                if (q->columns[j].role == PP_COL_NAME)
                    from = q->columns[j].name;
            if (q->dynamic) /* the names come from the data */
                fprintf(out, "    %s_<%s> %s\n", q->namespace, from, type);
            else
                fprintf(out, "    %s %s: %s\n", col->metric, type, col->help);
        }
    }
}
