/*
 * hostmatch: the /probe allow-list (see hostmatch.h).
 */
#include "hostmatch.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"

typedef enum pattern_kind {
    P_NAME,   /* exact host name (or socket directory) */
    P_SUFFIX, /* "*.example.com": text holds ".example.com" */
    P_NET,    /* an address with a prefix length */
} pattern_kind;

typedef struct pattern {
    pattern_kind kind;
    char *text; /* P_NAME, P_SUFFIX */
    int family; /* P_NET: AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned bits;
    long port; /* -1: any */
} pattern;

struct pp_hostmatch {
    bool any;
    pattern *p;
    size_t n;
};

/* An IPv4 or IPv6 literal into addr; returns its family or 0. */
static int parse_addr(const char *s, unsigned char addr[16])
{
    if (inet_pton(AF_INET, s, addr) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, s, addr) == 1)
        return AF_INET6;
    return 0;
}

static bool valid_name(const char *s)
{
    if (*s == '\0')
        return false;
    for (const char *c = s; *c != '\0'; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '.' || *c == '_'))
            return false;
    return true;
}

/* One pattern, trimmed, into p. Returns 0 or -1. */
static int parse_one(char *s, pattern *p)
{
    p->port = -1;
    if (s[0] == '/' || s[0] == '@') { /* a socket directory: exact */
        p->kind = P_NAME;
        p->text = pp_strdup(s);
        return 0;
    }
    char *host = s;
    char *portpart = NULL;
    if (s[0] == '[') {
        char *end = strchr(s, ']');
        if (end == NULL)
            return -1;
        *end = '\0';
        host = s + 1;
        char *rest = end + 1;
        if (*rest == '/') { /* [v6]/bits[:port] is not a thing; [v6/bits] neither */
            char *colon = strchr(rest, ':');
            if (colon != NULL) {
                *colon = '\0';
                portpart = colon + 1;
            }
            /* glue the prefix back onto the host */
            memmove(end, rest, strlen(rest) + 1);
        } else if (*rest == ':') {
            portpart = rest + 1;
        } else if (*rest != '\0') {
            return -1;
        }
    } else {
        char *colon = strrchr(s, ':');
        if (colon != NULL && strchr(s, ':') == colon) { /* one colon: host:port */
            *colon = '\0';
            portpart = colon + 1;
        }
    }
    if (portpart != NULL) {
        char *end;
        long port = strtol(portpart, &end, 10);
        if (*portpart < '0' || *portpart > '9' || *end != '\0' || port < 1 || port > 65535)
            return -1;
        p->port = port;
    }
    char *slash = strchr(host, '/');
    if (slash != NULL) {
        *slash = '\0';
        char *end;
        long bits = strtol(slash + 1, &end, 10);
        p->family = parse_addr(host, p->addr);
        if (p->family == 0 || slash[1] < '0' || slash[1] > '9' || *end != '\0' || bits < 0 ||
            bits > (p->family == AF_INET ? 32 : 128))
            return -1;
        p->kind = P_NET;
        p->bits = (unsigned)bits;
        return 0;
    }
    p->family = parse_addr(host, p->addr);
    if (p->family != 0) {
        p->kind = P_NET;
        p->bits = p->family == AF_INET ? 32 : 128;
        return 0;
    }
    if (host[0] == '*' && host[1] == '.' && valid_name(host + 2)) {
        p->kind = P_SUFFIX;
        p->text = pp_strdup(host + 1);
        return 0;
    }
    if (!valid_name(host))
        return -1;
    p->kind = P_NAME;
    p->text = pp_strdup(host);
    return 0;
}

pp_hostmatch *pp_hostmatch_parse(const char *text, char *err, size_t errlen)
{
    pp_hostmatch *m = pp_calloc(1, sizeof(*m));
    if (text == NULL || *text == '\0') {
        m->any = true;
        return m;
    }
    char **items;
    size_t n;
    pp_split_list(text, PP_SPLIT_TRIM | PP_SPLIT_SKIP_EMPTY, &items, &n);
    for (size_t i = 0; i < n; i++) {
        char *a = items[i];
        if (strcmp(a, "*") == 0) {
            m->any = true;
            continue;
        }
        m->p = pp_realloc(m->p, (m->n + 1) * sizeof(pattern));
        memset(&m->p[m->n], 0, sizeof(pattern));
        char shown[256]; /* parse_one cuts a up */
        snprintf(shown, sizeof(shown), "%s", a);
        if (parse_one(a, &m->p[m->n]) != 0) {
            snprintf(err, errlen,
                     "\"%s\" is not a host, *.domain, address, network (10.0.0.0/8) or "
                     "socket directory, with an optional :port",
                     shown);
            goto fail;
        }
        m->n++;
    }
    pp_strv_free(items, n);
    return m;

fail:
    pp_strv_free(items, n);
    pp_hostmatch_free(m);
    return NULL;
}

void pp_hostmatch_free(pp_hostmatch *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++)
        free(m->p[i].text);
    free(m->p);
    free(m);
}

bool pp_hostmatch_any(const pp_hostmatch *m)
{
    return m->any;
}

static bool in_net(const pattern *p, const unsigned char *addr)
{
    unsigned full = p->bits / 8, rest = p->bits % 8;
    if (memcmp(p->addr, addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (p->addr[full] & mask) == (addr[full] & mask);
}

static bool host_matches(const pp_hostmatch *m, const char *host, long port)
{
    unsigned char addr[16];
    int family = parse_addr(host, addr);
    size_t hlen = strlen(host);
    for (size_t i = 0; i < m->n; i++) {
        const pattern *p = &m->p[i];
        if (p->port != -1 && p->port != port)
            continue;
        switch (p->kind) {
        case P_NAME:
            if (strcasecmp(p->text, host) == 0)
                return true;
            break;
        case P_SUFFIX: {
            size_t slen = strlen(p->text);
            if (family == 0 && hlen > slen && strcasecmp(host + hlen - slen, p->text) == 0)
                return true;
            break;
        }
        case P_NET:
            if (family == p->family && in_net(p, addr))
                return true;
            break;
        }
    }
    return false;
}

/* The i-th element of a comma list into out; returns false past the end. */
static bool nth(const char *list, size_t i, char *out, size_t outlen)
{
    const char *s = list;
    for (size_t k = 0; k < i; k++) {
        s = strchr(s, ',');
        if (s == NULL)
            return false;
        s++;
    }
    size_t len = strcspn(s, ",");
    if (len >= outlen)
        len = outlen - 1;
    memcpy(out, s, len);
    out[len] = '\0';
    return true;
}

static bool list_allowed(const pp_hostmatch *m, const char *list, const char *ports,
                         const char *what, char *why, size_t whylen)
{
    size_t nports = 1;
    for (const char *c = ports; *c != '\0'; c++)
        nports += *c == ',';
    char host[256], port[16];
    for (size_t i = 0; nth(list, i, host, sizeof(host)); i++) {
        if (!nth(ports, nports == 1 ? 0 : i, port, sizeof(port)))
            snprintf(port, sizeof(port), "5432");
        long p = port[0] != '\0' ? strtol(port, NULL, 10) : 5432;
        if (!host_matches(m, host, p)) {
            snprintf(why, whylen, "%s %s port %ld is not in --web.probe-allowed-targets", what,
                     host, p);
            return false;
        }
    }
    return true;
}

bool pp_hostmatch_allows(const pp_hostmatch *m, const pp_dsn *d, char *why, size_t whylen)
{
    if (m->any)
        return true;
    if (pp_dsn_get(d, "service") != NULL) {
        snprintf(why, whylen,
                 "a service entry can name any host: not allowed with "
                 "--web.probe-allowed-targets");
        return false;
    }
    const char *hostaddr = pp_dsn_get(d, "hostaddr");
    if (d->host == NULL && hostaddr == NULL) {
        snprintf(why, whylen,
                 "the target names no host: not allowed with "
                 "--web.probe-allowed-targets");
        return false;
    }
    const char *ports = d->port != NULL ? d->port : "5432";
    if (d->host != NULL && !list_allowed(m, d->host, ports, "host", why, whylen))
        return false;
    if (hostaddr != NULL && !list_allowed(m, hostaddr, ports, "hostaddr", why, whylen))
        return false;
    return true;
}
