/*
 * authmod: postgres_exporter.yml (see authmod.h).
 */
#include "authmod.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "yaml.h"

#define MAX_FILE (1u << 20)

/* Whether libpq knows keyword as a connection option. */
static bool libpq_knows(const char *keyword)
{
    PQconninfoOption *opts = PQconndefaults();
    bool found = false;
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL && !found; o++)
        found = strcmp(o->keyword, keyword) == 0;
    PQconninfoFree(opts);
    return found;
}

static int want(const pp_yaml_doc *d, const pp_yaml_node *n, pp_yaml_kind kind, const char *what,
                char *err, size_t errlen)
{
    if (n->kind == kind)
        return 0;
    return pp_yaml_error_at(err, errlen, d, n, "%s: expected %s, found %s", what,
                            pp_yaml_kind_name(kind), pp_yaml_kind_name(n->kind));
}

static void module_deinit(pp_auth_module *m)
{
    free(m->name);
    free(m->username);
    if (m->password != NULL) {
        /* wipe: the module was the only holder */
        memset(m->password, 0, strlen(m->password));
        free(m->password);
    }
    for (size_t i = 0; i < m->nopts; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
}

static int read_module(const pp_yaml_doc *d, const pp_yaml_node *key, const pp_yaml_node *v,
                       pp_auth_module *m, char *err, size_t errlen)
{
    static const char *const allowed[] = {"type", "userpass", "options", NULL};
    m->name = pp_strdup(key->str);
    if (want(d, v, PP_YAML_MAPPING, "auth module", err, errlen) != 0)
        return -1;
    const pp_yaml_node *bad = pp_yaml_unknown_key(v, allowed);
    if (bad != NULL)
        return pp_yaml_error_at(err, errlen, d, bad,
                                "auth module %s: unknown key \"%s\" (expected type, userpass, "
                                "options)",
                                m->name, bad->str);
    const pp_yaml_node *type = pp_yaml_get(v, "type");
    if (type == NULL)
        return pp_yaml_error_at(err, errlen, d, key, "auth module %s: missing key \"type\"",
                                m->name);
    if (want(d, type, PP_YAML_SCALAR, "type", err, errlen) != 0)
        return -1;
    if (strcmp(type->str, "userpass") != 0)
        return pp_yaml_error_at(err, errlen, d, type,
                                "auth module %s: type \"%s\" is not supported (only userpass)",
                                m->name, type->str);
    const pp_yaml_node *up = pp_yaml_get(v, "userpass");
    if (up != NULL) {
        static const char *const upkeys[] = {"username", "password", NULL};
        if (want(d, up, PP_YAML_MAPPING, "userpass", err, errlen) != 0)
            return -1;
        bad = pp_yaml_unknown_key(up, upkeys);
        if (bad != NULL)
            return pp_yaml_error_at(err, errlen, d, bad,
                                    "auth module %s: unknown key \"%s\" (expected username, "
                                    "password)",
                                    m->name, bad->str);
        const pp_yaml_node *u = pp_yaml_get(up, "username"), *p = pp_yaml_get(up, "password");
        if (u != NULL && want(d, u, PP_YAML_SCALAR, "username", err, errlen) != 0)
            return -1;
        if (p != NULL && want(d, p, PP_YAML_SCALAR, "password", err, errlen) != 0)
            return -1;
        m->username = pp_strdup(u != NULL ? u->str : "");
        m->password = pp_strdup(p != NULL ? p->str : "");
    } else {
        m->username = pp_strdup("");
        m->password = pp_strdup("");
    }
    const pp_yaml_node *opts = pp_yaml_get(v, "options");
    if (opts != NULL) {
        if (want(d, opts, PP_YAML_MAPPING, "options", err, errlen) != 0)
            return -1;
        m->keys = pp_calloc(opts->n + 1, sizeof(char *));
        m->values = pp_calloc(opts->n + 1, sizeof(char *));
        for (size_t i = 0; i < opts->n; i++) {
            const pp_yaml_node *k = opts->items[2 * i], *val = opts->items[2 * i + 1];
            if (want(d, val, PP_YAML_SCALAR, "option value", err, errlen) != 0)
                return -1;
            if (!libpq_knows(k->str) || strcmp(k->str, "user") == 0 ||
                strcmp(k->str, "password") == 0)
                return pp_yaml_error_at(err, errlen, d, k,
                                        "auth module %s: \"%s\" is not a connection option "
                                        "(user and password go in userpass)",
                                        m->name, k->str);
            m->keys[m->nopts] = pp_strdup(k->str);
            m->values[m->nopts++] = pp_strdup(val->str);
        }
    }
    return 0;
}

int pp_auth_modules_parse(const char *name, const char *data, size_t len, pp_auth_modules *out,
                          char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    pp_yaml_doc *d;
    if (pp_yaml_parse(name, data, len, &d, err, errlen) != 0)
        return -1;
    const pp_yaml_node *root = pp_yaml_root(d);
    int rc = 0;
    if (root != NULL) {
        static const char *const top[] = {"auth_modules", NULL};
        const pp_yaml_node *bad;
        if (want(d, root, PP_YAML_MAPPING, "the file", err, errlen) != 0) {
            rc = -1;
        } else if ((bad = pp_yaml_unknown_key(root, top)) != NULL) {
            rc = pp_yaml_error_at(err, errlen, d, bad, "unknown key \"%s\" (expected auth_modules)",
                                  bad->str);
        } else {
            const pp_yaml_node *mods = pp_yaml_get(root, "auth_modules");
            if (mods != NULL && want(d, mods, PP_YAML_MAPPING, "auth_modules", err, errlen) != 0)
                rc = -1;
            if (rc == 0 && mods != NULL) {
                out->items = pp_calloc(mods->n ? mods->n : 1, sizeof(pp_auth_module));
                for (size_t i = 0; i < mods->n && rc == 0; i++) {
                    rc = read_module(d, mods->items[2 * i], mods->items[2 * i + 1], &out->items[i],
                                     err, errlen);
                    out->n = i + 1;
                }
            }
        }
    }
    pp_yaml_free(d);
    if (rc != 0)
        pp_auth_modules_deinit(out);
    return rc;
}

int pp_auth_modules_load(const char *path, int missing_ok, pp_auth_modules *out, char *err,
                         size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (missing_ok && access(path, F_OK) != 0 && errno == ENOENT)
        return 0;
    char *data;
    size_t len;
    if (pp_read_file(path, MAX_FILE, &data, &len, err, errlen) != 0)
        return -1;
    int rc = pp_auth_modules_parse(path, data, len, out, err, errlen);
    memset(data, 0, len); /* it held passwords */
    free(data);
    return rc;
}

void pp_auth_modules_deinit(pp_auth_modules *m)
{
    for (size_t i = 0; i < m->n; i++)
        module_deinit(&m->items[i]);
    free(m->items);
    m->items = NULL;
    m->n = 0;
}

const pp_auth_module *pp_auth_modules_find(const pp_auth_modules *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->items[i].name, name) == 0)
            return &m->items[i];
    return NULL;
}

void pp_auth_module_apply(const pp_auth_module *m, pp_dsn *dsn)
{
    for (size_t i = 0; i < m->nopts; i++)
        pp_dsn_set(dsn, m->keys[i], m->values[i]);
    pp_dsn_set(dsn, "user", m->username);
    pp_dsn_set(dsn, "password", m->password);
}
