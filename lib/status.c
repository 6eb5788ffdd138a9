/*
 * status: the dashboard's JSON and history sampler (see status.h).
 *
 * Values are read back from the exposition text of the targets' current
 * pieces: the catalog's families are the one source of truth for what was
 * collected, so the dashboard shows exactly what /metrics shows, and a
 * query that failed (its piece invalid) is absent here too. Only the spans
 * of the families below are parsed, so the cost of a request follows the
 * dashboard's families (mostly the user tables), not the page.
 */
#include "status.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "dsn.h"
#include "history.h"
#include "piece.h"

#define MAX_REPLICAS 32
#define LABEL_MAX 256

/* ---- reading samples back from pieces ----------------------------------- */

/* The families the dashboard reads, all static catalog families. */
typedef enum fam {
    F_STATIC,
    F_SERVER_TIME,
    F_TABLE_ROWS,
    F_START_TIME,
    F_ACTIVITY,
    F_XACT_COMMIT,
    F_XACT_ROLLBACK,
    F_LAG_BYTES,
    F_LAG_SECONDS,
    F_REPL_WRITE,
    F_REPL_FLUSH,
    F_REPL_REPLAY,
    F_WALRCV_INFO,
    F_WALRCV_AGE,
    NFAM
} fam;

static const char *const fam_names[NFAM] = {
    "pg_static",
    "pg_server_time_seconds",
    "pg_table_rows",
    "pg_postmaster_start_time_seconds",
    "pg_stat_activity_count",
    "pg_stat_database_xact_commit",
    "pg_stat_database_xact_rollback",
    "pg_replication_lag_bytes",
    "pg_replication_lag_seconds",
    "pg_stat_replication_write_lag_seconds",
    "pg_stat_replication_flush_lag_seconds",
    "pg_stat_replication_replay_lag_seconds",
    "pg_stat_wal_receiver_info",
    "pg_stat_wal_receiver_last_msg_receipt_age_seconds",
};

/* Their ids in one catalog, resolved once per catalog and request (the
 * targets of a generation share one), not once per lookup; and a reader
 * for the pieces' text (packed ones are inflated), for one pass on the
 * loop: no piece is released meanwhile. */
typedef struct fam_ids {
    const pp_catalog *cat;
    size_t id[NFAM];
    pp_piece_reader reader;
} fam_ids;

#define FAM_IDS_INIT                                                                               \
    {                                                                                              \
        .cat = NULL                                                                                \
    }

static size_t fam_id(fam_ids *ids, const pp_catalog *cat, fam f)
{
    if (ids->cat != cat) {
        for (size_t i = 0; i < NFAM; i++)
            ids->id[i] = cat != NULL ? pp_catalog_find_family(cat, fam_names[i]) : (size_t)-1;
        ids->cat = cat;
    }
    return ids->id[f];
}

typedef struct sample {
    const char *labels; /* inside the braces, not NUL-terminated */
    size_t labels_len;
    double value;
    const pp_query_state *query; /* the query state the sample came from */
} sample;

typedef void (*sample_fn)(const sample *s, void *arg);

/* Parses one exposition line "name{labels} value" of [p, end); returns
 * where the next line starts. */
static const char *parse_line(const char *p, const char *end, sample *s, bool *ok)
{
    *ok = false;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *stop = nl ? nl : end;
    const char *q = p;
    while (q < stop && *q != '{' && *q != ' ')
        q++;
    s->labels = q;
    s->labels_len = 0;
    if (q < stop && *q == '{') {
        const char *l = ++q;
        bool quoted = false;
        for (; q < stop; q++) {
            if (quoted && *q == '\\')
                q++;
            else if (*q == '"')
                quoted = !quoted;
            else if (!quoted && *q == '}')
                break;
        }
        if (q >= stop)
            return nl ? nl + 1 : end;
        s->labels = l;
        s->labels_len = (size_t)(q - l);
        q++;
    }
    while (q < stop && *q == ' ')
        q++;
    char num[64];
    size_t n = 0;
    while (q < stop && *q != ' ' && n + 1 < sizeof(num))
        num[n++] = *q++;
    num[n] = '\0';
    char *e;
    s->value = strtod(num, &e);
    *ok = n > 0 && *e == '\0';
    return nl ? nl + 1 : end;
}

/* Calls fn for every sample of family f that t shows now; returns how many
 * there were. */
static size_t each_sample(fam_ids *ids, const pp_target *t, fam f, sample_fn fn, void *arg)
{
    size_t id = fam_id(ids, pp_target_catalog(t), f);
    if (id == (size_t)-1)
        return 0;
    size_t count = 0;
    for (size_t qi = 0; qi < pp_target_nqueries(t); qi++) {
        const pp_query_state *qs = pp_target_query(t, qi);
        if (!qs->valid || qs->piece == NULL)
            continue;
        const pp_piece *p = qs->piece;
        for (size_t k = 0; k < p->nspans; k++) {
            if (p->spans[k].family != id)
                continue;
            const char *text = pp_piece_read(&ids->reader, p);
            if (text == NULL)
                break;
            const char *c = text + p->spans[k].off, *end = c + p->spans[k].len;
            while (c < end) {
                sample s;
                bool ok;
                c = parse_line(c, end, &s, &ok);
                if (!ok)
                    continue;
                s.query = qs;
                if (fn != NULL)
                    fn(&s, arg);
                count++;
            }
        }
    }
    return count;
}

/* The unescaped value of label name into out; false when absent. */
static bool label(const sample *s, const char *name, char *out, size_t outlen)
{
    const char *p = s->labels, *end = s->labels + s->labels_len;
    size_t nlen = strlen(name);
    while (p < end) {
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq == NULL || eq + 1 >= end || eq[1] != '"')
            return false;
        bool match = (size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0;
        const char *v = eq + 2;
        size_t n = 0;
        for (; v < end && *v != '"'; v++) {
            char c = *v;
            if (c == '\\' && v + 1 < end) {
                c = *++v;
                if (c == 'n')
                    c = '\n';
            }
            if (match && n + 1 < outlen)
                out[n++] = c;
        }
        if (match) {
            out[n] = '\0';
            return true;
        }
        p = v + 1;
        if (p < end && *p == ',')
            p++;
    }
    return false;
}

/* ---- small readers ------------------------------------------------------ */

typedef struct reading {
    double value; /* NAN when there was none */
    double at;    /* unix time of its query's last success */
    size_t n;
} reading;

static void take_sum(const sample *s, void *arg)
{
    reading *r = arg;
    r->value = isnan(r->value) ? s->value : r->value + s->value;
    r->at = s->query->last_success;
    r->n++;
}

static void take_max(const sample *s, void *arg)
{
    reading *r = arg;
    if (isnan(r->value) || s->value > r->value)
        r->value = s->value;
    r->at = s->query->last_success;
    r->n++;
}

static reading read_sum(fam_ids *ids, const pp_target *t, fam family)
{
    reading r = {NAN, 0, 0};
    each_sample(ids, t, family, take_sum, &r);
    return r;
}

static reading read_max(fam_ids *ids, const pp_target *t, fam family)
{
    reading r = {NAN, 0, 0};
    each_sample(ids, t, family, take_max, &r);
    return r;
}

/* pg_replication_lag_bytes comes from a per-standby query on a primary
 * (labelled application_name) and from one row on a standby. */
static reading lag_bytes(fam_ids *ids, const pp_target *t)
{
    return read_max(ids, t, F_LAG_BYTES);
}

/* A standby's own lag; a primary's: its slowest standby's replay lag. */
static reading lag_seconds(fam_ids *ids, const pp_target *t)
{
    if (pp_target_role(t) == PP_ROLE_PRIMARY)
        return read_max(ids, t, F_REPL_REPLAY);
    return read_max(ids, t, F_LAG_SECONDS);
}

/* ---- history ------------------------------------------------------------ */

void pp_status_sample(pp_target *t, double now)
{
    if (!pp_target_up(t) || !pp_target_leader(t))
        return; /* server-wide values come from the server's leader */
    pp_history *h = pp_target_history(t);
    uint64_t cycles = pp_target_cycles(t);
    if (cycles == h->cycles)
        return; /* no collection ended since the last sample */
    const pp_history_sample *last = pp_history_last(h);
    if (last != NULL && now - last->t < PP_STATUS_SAMPLE_SECONDS)
        return;
    h->cycles = cycles;

    /* transactions per second between two readings of the counters (the
     * query runs less often than cycles end: keep the last rate between) */
    fam_ids ids = FAM_IDS_INIT;
    reading x = read_sum(&ids, t, F_XACT_COMMIT);
    reading rb = read_sum(&ids, t, F_XACT_ROLLBACK);
    if (!isnan(x.value) && !isnan(rb.value) && x.at > 0) {
        double total = x.value + rb.value;
        if (x.at != h->xact_at) {
            double dt = x.at - h->xact_at;
            if (!isnan(h->xact_total) && dt > 0 && total >= h->xact_total)
                h->tps = (total - h->xact_total) / dt;
            else
                h->tps = NAN; /* first reading, or the counters were reset */
            h->xact_total = total;
            h->xact_at = x.at;
        }
    } else {
        h->tps = NAN;
        h->xact_total = NAN;
    }
    pp_history_sample s = {.t = now};
    s.v[PP_HIST_LAG_BYTES] = (float)lag_bytes(&ids, t).value;
    s.v[PP_HIST_LAG_SECONDS] = (float)lag_seconds(&ids, t).value;
    s.v[PP_HIST_TPS] = (float)h->tps;
    s.v[PP_HIST_CONNECTIONS] = (float)read_sum(&ids, t, F_ACTIVITY).value;
    pp_history_push(h, &s);
    pp_piece_reader_deinit(&ids.reader);
}

/* ---- JSON --------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    unsigned cp = c & (0xff >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

void pp_status_json_string(pp_buf *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    pp_buf_putc(out, '"');
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        if (c >= 0x80) {
            size_t len = utf8_len(p + i, n - i);
            if (len == 0) {
                pp_buf_puts(out, "\\ufffd");
                i++;
            } else if (len == 3 && c == 0xe2 && p[i + 1] == 0x80 &&
                       (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
                /* U+2028 and U+2029 end a line in older JavaScript */
                pp_buf_printf(out, "\\u%04x", p[i + 2] == 0xa8 ? 0x2028 : 0x2029);
                i += 3;
            } else {
                pp_buf_append(out, p + i, len);
                i += len;
            }
            continue;
        }
        switch (c) {
        case '"':
            pp_buf_puts(out, "\\\"");
            break;
        case '\\':
            pp_buf_puts(out, "\\\\");
            break;
        case '\n':
            pp_buf_puts(out, "\\n");
            break;
        case '\r':
            pp_buf_puts(out, "\\r");
            break;
        case '\t':
            pp_buf_puts(out, "\\t");
            break;
        case '<':
        case '>':
        case '&':
            /* harmless in JSON, but never markup if someone serves it as HTML */
            pp_buf_printf(out, "\\u%04x", c);
            break;
        default:
            if (c < 0x20 || c == 0x7f)
                pp_buf_printf(out, "\\u%04x", c);
            else
                pp_buf_putc(out, (char)c);
        }
        i++;
    }
    pp_buf_putc(out, '"');
}

static void jstr(pp_buf *b, const char *s)
{
    if (s == NULL)
        pp_buf_puts(b, "null");
    else
        pp_status_json_string(b, s, strlen(s));
}

static void jnum(pp_buf *b, double v)
{
    if (isnan(v) || isinf(v))
        pp_buf_puts(b, "null");
    else if (v == floor(v) && fabs(v) < 1e15)
        pp_buf_printf(b, "%.0f", v);
    else if (fabs(v) >= 1e15 || fabs(v) < 1e-6)
        pp_buf_printf(b, "%.17g", v);
    else {
        /* microseconds are enough for times and lags; no trailing zeros */
        char s[64];
        int n = snprintf(s, sizeof(s), "%.6f", v);
        while (n > 0 && s[n - 1] == '0')
            n--;
        if (n > 0 && s[n - 1] == '.')
            n--;
        pp_buf_append(b, s, (size_t)n);
    }
}

/* "name": */
static void key(pp_buf *b, const char *name)
{
    pp_buf_putc(b, '"');
    pp_buf_puts(b, name);
    pp_buf_puts(b, "\":");
}

static void kstr(pp_buf *b, const char *name, const char *v)
{
    key(b, name);
    jstr(b, v);
    pp_buf_putc(b, ',');
}

static void knum(pp_buf *b, const char *name, double v)
{
    key(b, name);
    jnum(b, v);
    pp_buf_putc(b, ',');
}

static void kbool(pp_buf *b, const char *name, bool v)
{
    key(b, name);
    pp_buf_puts(b, v ? "true," : "false,");
}

/* Drops a trailing comma before the closing bracket c. */
static void close_with(pp_buf *b, char c)
{
    if (b->len > 0 && b->data[b->len - 1] == ',')
        b->len--;
    pp_buf_putc(b, c);
}

/* ---- replication -------------------------------------------------------- */

enum { LAG_WRITE, LAG_FLUSH, LAG_REPLAY, NLAGS };

typedef struct replica {
    char app[LABEL_MAX], addr[LABEL_MAX], state[64], sync[64];
    double lag_bytes;
    double lag[NLAGS]; /* seconds */
} replica;

typedef struct replicas {
    replica r[MAX_REPLICAS];
    size_t n;
    size_t which; /* the lag the family being read gives: LAG_WRITE, ... */
} replicas;

static replica *replica_for(replicas *rs, const sample *s)
{
    char app[LABEL_MAX], addr[LABEL_MAX];
    if (!label(s, "application_name", app, sizeof(app)))
        return NULL; /* a standby's own pg_replication_lag_bytes */
    if (!label(s, "client_addr", addr, sizeof(addr)))
        addr[0] = '\0';
    for (size_t i = 0; i < rs->n; i++)
        if (strcmp(rs->r[i].app, app) == 0 && strcmp(rs->r[i].addr, addr) == 0)
            return &rs->r[i];
    if (rs->n == MAX_REPLICAS)
        return NULL;
    replica *r = &rs->r[rs->n++];
    memset(r, 0, sizeof(*r));
    snprintf(r->app, sizeof(r->app), "%s", app);
    snprintf(r->addr, sizeof(r->addr), "%s", addr);
    r->lag_bytes = r->lag[LAG_WRITE] = r->lag[LAG_FLUSH] = r->lag[LAG_REPLAY] = NAN;
    if (!label(s, "state", r->state, sizeof(r->state)))
        r->state[0] = '\0';
    return r;
}

static void take_replica_bytes(const sample *s, void *arg)
{
    replica *r = replica_for(arg, s);
    if (r == NULL)
        return;
    r->lag_bytes = s->value;
    if (!label(s, "sync_state", r->sync, sizeof(r->sync)))
        r->sync[0] = '\0';
}

static void take_replica_lag(const sample *s, void *arg)
{
    replicas *rs = arg;
    replica *r = replica_for(rs, s);
    if (r == NULL)
        return;
    r->lag[rs->which] = s->value;
}

static bool replica_lagging(const replica *r)
{
    return strcmp(r->state, "streaming") != 0 || r->lag[LAG_REPLAY] > PP_STATUS_LAG_SECONDS ||
           r->lag_bytes > PP_STATUS_LAG_BYTES;
}

/* ---- WAL receiver and version ------------------------------------------- */

typedef struct receiver {
    bool found;
    char status[64], upstream[LABEL_MAX], slot[LABEL_MAX];
} receiver;

static void take_receiver(const sample *s, void *arg)
{
    receiver *r = arg;
    r->found = true;
    if (!label(s, "status", r->status, sizeof(r->status)))
        r->status[0] = '\0';
    if (!label(s, "upstream_host", r->upstream, sizeof(r->upstream)))
        r->upstream[0] = '\0';
    if (!label(s, "slot_name", r->slot, sizeof(r->slot)))
        r->slot[0] = '\0';
}

typedef struct version {
    bool found;
    char short_version[64], full[LABEL_MAX];
} version;

static void take_version(const sample *s, void *arg)
{
    version *v = arg;
    v->found = label(s, "short_version", v->short_version, sizeof(v->short_version)) &&
               label(s, "version", v->full, sizeof(v->full));
}

/* ---- tables ------------------------------------------------------------- */

static void take_table(const sample *s, void *arg)
{
    pp_buf *b = arg;
    char schema[LABEL_MAX], name[LABEL_MAX], method[32];
    if (!label(s, "schemaname", schema, sizeof(schema)) ||
        !label(s, "relname", name, sizeof(name)) || !label(s, "method", method, sizeof(method)))
        return;
    pp_buf_putc(b, '{');
    kstr(b, "schema", schema);
    kstr(b, "name", name);
    knum(b, "rows", s->value);
    kstr(b, "method", method);
    close_with(b, '}');
    pp_buf_putc(b, ',');
}

static void render_database(pp_buf *b, fam_ids *ids, const pp_target *t)
{
    pp_buf_putc(b, '{');
    kstr(b, "name", pp_dsn_database(pp_target_dsn(t)));
    kbool(b, "up", pp_target_up(t));
    key(b, "tables");
    pp_buf_putc(b, '[');
    each_sample(ids, t, F_TABLE_ROWS, take_table, b);
    close_with(b, ']');
    pp_buf_putc(b, '}');
    pp_buf_putc(b, ',');
}

static void render_history(pp_buf *b, const pp_history *h)
{
    static const char *const names[PP_HIST_NVALUES] = {"lag_bytes", "lag_seconds", "tps",
                                                       "connections"};
    key(b, "history");
    pp_buf_putc(b, '{');
    key(b, "t");
    pp_buf_putc(b, '[');
    for (size_t i = 0; h != NULL && i < h->n; i++) {
        pp_buf_printf(b, "%.3f,", pp_history_at(h, i)->t);
    }
    close_with(b, ']');
    pp_buf_putc(b, ',');
    for (size_t k = 0; k < PP_HIST_NVALUES; k++) {
        key(b, names[k]);
        pp_buf_putc(b, '[');
        for (size_t i = 0; h != NULL && i < h->n; i++) {
            jnum(b, pp_history_at(h, i)->v[k]);
            pp_buf_putc(b, ',');
        }
        close_with(b, ']');
        pp_buf_putc(b, ',');
    }
    close_with(b, '}');
    pp_buf_putc(b, ',');
}

static const char *role_name(pp_role r)
{
    return r == PP_ROLE_PRIMARY ? "primary" : r == PP_ROLE_STANDBY ? "standby" : "unknown";
}

/* One server: the targets reg[idx[0..n)] share its label. */
static void render_node(pp_buf *b, fam_ids *ids, const pp_registry *reg, const size_t *idx,
                        size_t n, double now)
{
    pp_target *lead = pp_registry_at(reg, idx[0]);
    for (size_t i = 0; i < n; i++) {
        pp_target *t = pp_registry_at(reg, idx[i]);
        if (pp_target_leader(t)) {
            lead = t;
            break;
        }
    }
    bool up = pp_target_up(lead);
    pp_role role = up ? pp_target_role(lead) : PP_ROLE_UNKNOWN;

    version v = {false, "", ""};
    each_sample(ids, lead, F_STATIC, take_version, &v);
    reading start = read_max(ids, lead, F_START_TIME);
    reading clock = read_max(ids, lead, F_SERVER_TIME);
    /* the server's clock now: its last reading plus the time since */
    double server_now = !isnan(clock.value) && clock.at > 0 ? clock.value + (now - clock.at) : NAN;
    double last = pp_target_last_collect(lead);
    reading conns = read_sum(ids, lead, F_ACTIVITY);
    reading lagb = lag_bytes(ids, lead);
    reading lags = lag_seconds(ids, lead);
    const pp_history *h = pp_target_history(lead);

    replicas *rs = pp_calloc(1, sizeof(*rs));
    receiver rcv = {false, "", "", ""};
    if (role == PP_ROLE_PRIMARY) {
        each_sample(ids, lead, F_LAG_BYTES, take_replica_bytes, rs);
        static const fam lag[NLAGS] = {F_REPL_WRITE, F_REPL_FLUSH, F_REPL_REPLAY};
        for (size_t i = 0; i < NLAGS; i++) {
            rs->which = i;
            each_sample(ids, lead, lag[i], take_replica_lag, rs);
        }
    } else if (role == PP_ROLE_STANDBY) {
        each_sample(ids, lead, F_WALRCV_INFO, take_receiver, &rcv);
    }

    /* what a person should notice, in words */
    const char *status;
    char text[256];
    if (!up) {
        status = "down";
        snprintf(text, sizeof(text), "down: pgpulse cannot connect");
    } else if (role == PP_ROLE_STANDBY) {
        if (!rcv.found || strcmp(rcv.status, "streaming") != 0) {
            status = "lagging";
            snprintf(text, sizeof(text), "lagging: not streaming from a primary%s%s",
                     rcv.found ? ", WAL receiver " : "", rcv.found ? rcv.status : "");
        } else if (lags.value > PP_STATUS_LAG_SECONDS || lagb.value > PP_STATUS_LAG_BYTES) {
            status = "lagging";
            snprintf(text, sizeof(text), "lagging: %.0f s, %.0f bytes behind",
                     isnan(lags.value) ? 0 : lags.value, isnan(lagb.value) ? 0 : lagb.value);
        } else {
            status = "ok";
            snprintf(text, sizeof(text), "standby, streaming");
        }
    } else if (role == PP_ROLE_PRIMARY) {
        size_t behind = 0;
        for (size_t i = 0; i < rs->n; i++)
            behind += replica_lagging(&rs->r[i]);
        status = behind > 0 ? "lagging" : "ok";
        if (behind > 0)
            snprintf(text, sizeof(text), "primary: %zu of %zu standbys lagging", behind, rs->n);
        else
            snprintf(text, sizeof(text), "primary, %zu standby%s streaming", rs->n,
                     rs->n == 1 ? "" : "s");
    } else {
        status = "unknown";
        snprintf(text, sizeof(text), "connected, role not known yet");
    }

    pp_buf_putc(b, '{');
    kstr(b, "server", pp_target_dsn(lead)->label);
    kbool(b, "up", up);
    kstr(b, "role", role_name(role));
    kstr(b, "status", status);
    kstr(b, "status_text", text);
    kstr(b, "version", v.found ? v.short_version : NULL);
    kstr(b, "version_string", v.found ? v.full : NULL);
    knum(b, "start_time", start.value);
    knum(b, "uptime_seconds", !isnan(server_now) ? server_now - start.value : NAN);
    knum(b, "server_time", server_now);
    knum(b, "data_age_seconds", last > 0 ? now - last : NAN);
    knum(b, "connections", conns.value);
    knum(b, "tps", up ? h->tps : NAN); /* the history keeps the past, not the now */
    knum(b, "lag_bytes", lagb.value);
    knum(b, "lag_seconds", lags.value);
    key(b, "replication");
    pp_buf_putc(b, '[');
    for (size_t i = 0; i < rs->n; i++) {
        const replica *r = &rs->r[i];
        pp_buf_putc(b, '{');
        kstr(b, "application_name", r->app);
        kstr(b, "client_addr", r->addr);
        kstr(b, "state", r->state);
        kstr(b, "sync_state", r->sync);
        knum(b, "write_lag_seconds", r->lag[LAG_WRITE]);
        knum(b, "flush_lag_seconds", r->lag[LAG_FLUSH]);
        knum(b, "replay_lag_seconds", r->lag[LAG_REPLAY]);
        knum(b, "lag_bytes", r->lag_bytes);
        kbool(b, "lagging", replica_lagging(r));
        close_with(b, '}');
        pp_buf_putc(b, ',');
    }
    close_with(b, ']');
    pp_buf_putc(b, ',');
    key(b, "wal_receiver");
    if (rcv.found) {
        pp_buf_putc(b, '{');
        kstr(b, "status", rcv.status);
        kstr(b, "upstream_host", rcv.upstream);
        kstr(b, "slot_name", rcv.slot);
        knum(b, "last_msg_age_seconds", read_max(ids, lead, F_WALRCV_AGE).value);
        close_with(b, '}');
    } else {
        pp_buf_puts(b, "null");
    }
    pp_buf_putc(b, ',');
    key(b, "databases");
    pp_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++)
        render_database(b, ids, pp_registry_at(reg, idx[i]));
    close_with(b, ']');
    pp_buf_putc(b, ',');
    render_history(b, h);
    close_with(b, '}');
    free(rs);
}

void pp_status_render(pp_buf *out, const pp_registry *reg, const char *metrics_path, double now)
{
    size_t n = pp_registry_count(reg);
    size_t *idx = pp_malloc((n ? n : 1) * sizeof(size_t));
    bool *done = pp_calloc(n ? n : 1, sizeof(bool));
    fam_ids ids = FAM_IDS_INIT;
    pp_buf_putc(out, '{');
    kstr(out, "pgpulse_version", PGPULSE_VERSION);
    knum(out, "generated_at", now);
    kstr(out, "metrics_path", metrics_path);
    knum(out, "history_seconds", PP_TARGET_HISTORY_SLOTS * PP_STATUS_SAMPLE_SECONDS);
    knum(out, "lag_seconds_threshold", PP_STATUS_LAG_SECONDS);
    knum(out, "lag_bytes_threshold", PP_STATUS_LAG_BYTES);
    key(out, "nodes");
    pp_buf_putc(out, '[');
    /* one node per server, in registry order */
    for (size_t i = 0; i < n; i++) {
        if (done[i])
            continue;
        const char *server = pp_target_dsn(pp_registry_at(reg, i))->label;
        size_t k = 0;
        for (size_t j = i; j < n; j++)
            if (!done[j] && strcmp(pp_target_dsn(pp_registry_at(reg, j))->label, server) == 0) {
                done[j] = true;
                idx[k++] = j;
            }
        render_node(out, &ids, reg, idx, k, now);
        pp_buf_putc(out, ',');
    }
    close_with(out, ']');
    pp_buf_putc(out, '}');
    pp_buf_putc(out, '\n');
    free(idx);
    free(done);
    pp_piece_reader_deinit(&ids.reader);
}
