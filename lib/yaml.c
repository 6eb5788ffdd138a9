/*
 * yaml: libyaml's event API turned into a small tree. See yaml.h for the
 * contract.
 *
 * The event API rather than libyaml's document API, so that an anchor, an
 * alias, a second document or deep nesting is refused when it is seen,
 * before anything is built from it. Duplicate keys are found when their
 * mapping ends (sorted, so a mapping of n keys costs n log n); reading
 * goes on to the end of the document or the next hard error, and the
 * problem reported is the first one in document order, whichever check
 * found it.
 *
 * Invariants kept here:
 * - every node is in doc->all, which alone owns them: freeing walks that
 *   list, never the tree, so no recursion depends on the input;
 * - a mapping's keys are scalars and unique once parsing has succeeded;
 * - a message is one line: "name:line:column: message", 1-based.
 */
#include "yaml.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "buf.h"

/* A node and what building it needs; pub comes first, so a pp_yaml_node
 * pointer from the tree is a pointer to its tnode. */
typedef struct tnode {
    pp_yaml_node pub;
    pp_yaml_node **kids;
    size_t nkids, cap;
    char *str;
} tnode;

struct pp_yaml_doc {
    char *name;
    const pp_yaml_node *root;
    tnode **all; /* every node, owned */
    size_t nall, cap;
};

/* ---- messages --------------------------------------------------------- */

int pp_yaml_verror(char *err, size_t errlen, const char *name, unsigned line, unsigned column,
                   const char *fmt, va_list ap)
{
    if (err == NULL || errlen == 0)
        return -1;
    int n = snprintf(err, errlen, "%s:%u:%u: ", name, line, column);
    if (n >= 0 && (size_t)n < errlen)
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    /* Names, keys and values come from the input: keep it one line. */
    for (char *p = err; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return -1;
}

int pp_yaml_error(char *err, size_t errlen, const char *name, unsigned line, unsigned column,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pp_yaml_verror(err, errlen, name, line, column, fmt, ap);
    va_end(ap);
    return -1;
}

int pp_yaml_error_at(char *err, size_t errlen, const pp_yaml_doc *d, const pp_yaml_node *n,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pp_yaml_verror(err, errlen, d->name, n->line, n->column, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- reading ---------------------------------------------------------- */

typedef struct reader {
    pp_yaml_doc *doc;
    tnode *stack[PP_YAML_MAX_DEPTH]; /* the open sequences and mappings */
    size_t depth;
    int docs;
    const char *data;
    size_t len;
    char *err;
    size_t errlen;
    bool failed;
    unsigned fail_line, fail_col; /* of the message in err, when failed */
} reader;

static void fail(reader *r, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records a problem at line:col unless one earlier in the text is known. */
static void fail(reader *r, unsigned line, unsigned col, const char *fmt, ...)
{
    if (r->failed && (r->fail_line < line || (r->fail_line == line && r->fail_col <= col)))
        return;
    r->failed = true;
    r->fail_line = line;
    r->fail_col = col;
    va_list ap;
    va_start(ap, fmt);
    pp_yaml_verror(r->err, r->errlen, r->doc->name, line, col, fmt, ap);
    va_end(ap);
}

static unsigned mark_line(const yaml_mark_t *m)
{
    return (unsigned)m->line + 1;
}

static unsigned mark_col(const yaml_mark_t *m)
{
    return (unsigned)m->column + 1;
}

static void syntax_error(reader *r, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR) {
        fail(r, 1, 1, "out of memory while parsing");
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        /* Reader errors (bad encoding) carry a byte offset, not a mark. */
        unsigned line = 1, col = 1;
        for (size_t i = 0; i < p->problem_offset && i < r->len; i++) {
            if (r->data[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        fail(r, line, col, "invalid input: %s", p->problem ? p->problem : "unreadable");
        return;
    }
    const char *problem = p->problem ? p->problem : "invalid YAML";
    unsigned line = mark_line(&p->problem_mark), col = mark_col(&p->problem_mark);
    if (p->context)
        fail(r, line, col, "syntax error: %s (%s at %u:%u)", problem, p->context,
             mark_line(&p->context_mark), mark_col(&p->context_mark));
    else
        fail(r, line, col, "syntax error: %s", problem);
}

static tnode *node_new(reader *r, pp_yaml_kind kind, const yaml_event_t *ev)
{
    pp_yaml_doc *d = r->doc;
    tnode *n = pp_calloc(1, sizeof *n);
    n->pub.kind = kind;
    n->pub.line = mark_line(&ev->start_mark);
    n->pub.column = mark_col(&ev->start_mark);
    if (d->nall == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 64;
        d->all = pp_realloc(d->all, d->cap * sizeof *d->all);
    }
    d->all[d->nall++] = n;
    return n;
}

static void node_add(tnode *parent, tnode *kid)
{
    if (parent->nkids == parent->cap) {
        parent->cap = parent->cap ? parent->cap * 2 : 8;
        parent->kids = pp_realloc(parent->kids, parent->cap * sizeof *parent->kids);
    }
    parent->kids[parent->nkids++] = &kid->pub;
    parent->pub.items = (const pp_yaml_node *const *)parent->kids;
    parent->pub.n = parent->pub.kind == PP_YAML_MAPPING ? parent->nkids / 2 : parent->nkids;
}

static bool before(const pp_yaml_node *a, const pp_yaml_node *b)
{
    return a->line < b->line || (a->line == b->line && a->column < b->column);
}

static int cmp_keys(const void *pa, const void *pb)
{
    const pp_yaml_node *a = *(const pp_yaml_node *const *)pa;
    const pp_yaml_node *b = *(const pp_yaml_node *const *)pb;
    int c = strcmp(a->str, b->str);
    if (c != 0)
        return c;
    return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

/* Reports the first key of mapping m that repeats another: when m ends,
 * or, for the keys so far, when reading stops early. */
static void check_duplicates(reader *r, const tnode *m)
{
    size_t n = (m->nkids + 1) / 2; /* with a key still waiting for its value */
    if (n < 2)
        return;
    const pp_yaml_node **keys = pp_malloc(n * sizeof *keys);
    for (size_t i = 0; i < n; i++)
        keys[i] = m->kids[2 * i];
    qsort(keys, n, sizeof *keys, cmp_keys);
    const pp_yaml_node *dup = NULL, *first = NULL;
    for (size_t i = 1; i < n; i++) {
        /* keys[i - 1] is the first of its run only if the one before
         * differs; later repeats are found after an earlier one anyway */
        if (strcmp(keys[i - 1]->str, keys[i]->str) != 0)
            continue;
        if (i >= 2 && strcmp(keys[i - 2]->str, keys[i]->str) == 0)
            continue;
        if (dup == NULL || before(keys[i], dup)) {
            dup = keys[i];
            first = keys[i - 1];
        }
    }
    if (dup != NULL)
        fail(r, dup->line, dup->column, "duplicate key \"%s\" (first at line %u)", dup->str,
             first->line);
    free(keys);
}

static bool refuse_anchor(reader *r, const yaml_event_t *ev, const yaml_char_t *anchor)
{
    if (anchor == NULL)
        return false;
    fail(r, mark_line(&ev->start_mark), mark_col(&ev->start_mark),
         "anchor \"&%s\" is not allowed (anchors and aliases are refused)", (const char *)anchor);
    return true;
}

/* Handles one event; returns false to stop reading. */
static bool on_event(reader *r, const yaml_event_t *ev)
{
    unsigned line = mark_line(&ev->start_mark), col = mark_col(&ev->start_mark);
    tnode *n = NULL;

    switch (ev->type) {
    case YAML_STREAM_END_EVENT:
        return false;
    case YAML_DOCUMENT_START_EVENT:
        if (++r->docs > 1) {
            fail(r, line, col, "only one YAML document is allowed per file");
            return false;
        }
        return true;
    case YAML_ALIAS_EVENT:
        fail(r, line, col, "alias \"*%s\" is not allowed (anchors and aliases are refused)",
             (const char *)ev->data.alias.anchor);
        return false;
    case YAML_SCALAR_EVENT:
        if (refuse_anchor(r, ev, ev->data.scalar.anchor))
            return false;
        if (strlen((const char *)ev->data.scalar.value) != ev->data.scalar.length) {
            fail(r, line, col, "NUL character in a scalar");
            return false;
        }
        n = node_new(r, PP_YAML_SCALAR, ev);
        n->str = pp_malloc(ev->data.scalar.length + 1);
        memcpy(n->str, ev->data.scalar.value, ev->data.scalar.length + 1);
        n->pub.str = n->str;
        n->pub.len = ev->data.scalar.length;
        switch (ev->data.scalar.style) {
        case YAML_SINGLE_QUOTED_SCALAR_STYLE:
            n->pub.style = PP_YAML_SINGLE;
            break;
        case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
            n->pub.style = PP_YAML_DOUBLE;
            break;
        case YAML_LITERAL_SCALAR_STYLE:
            n->pub.style = PP_YAML_LITERAL;
            break;
        case YAML_FOLDED_SCALAR_STYLE:
            n->pub.style = PP_YAML_FOLDED;
            break;
        default:
            n->pub.style = PP_YAML_PLAIN;
            break;
        }
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
        if (refuse_anchor(r, ev,
                          seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor))
            return false;
        if (r->depth == PP_YAML_MAX_DEPTH) {
            fail(r, line, col, "nesting deeper than %d levels", PP_YAML_MAX_DEPTH);
            return false;
        }
        n = node_new(r, seq ? PP_YAML_SEQUENCE : PP_YAML_MAPPING, ev);
        break;
    }
    case YAML_MAPPING_END_EVENT:
        check_duplicates(r, r->stack[--r->depth]);
        return true;
    case YAML_SEQUENCE_END_EVENT:
        r->depth--;
        return true;
    default:
        return true;
    }

    if (r->doc->nall > PP_YAML_MAX_NODES) {
        fail(r, line, col, "more than %u nodes", PP_YAML_MAX_NODES);
        return false;
    }
    if (r->depth > 0) {
        tnode *parent = r->stack[r->depth - 1];
        if (parent->pub.kind == PP_YAML_MAPPING && parent->nkids % 2 == 0 &&
            n->pub.kind != PP_YAML_SCALAR) {
            fail(r, line, col, "expected a scalar as mapping key, found %s",
                 pp_yaml_kind_name(n->pub.kind));
            return false;
        }
        node_add(parent, n);
    } else {
        r->doc->root = &n->pub;
    }
    if (n->pub.kind != PP_YAML_SCALAR)
        r->stack[r->depth++] = n;
    return true;
}

int pp_yaml_parse(const char *name, const char *data, size_t len, pp_yaml_doc **out, char *err,
                  size_t errlen)
{
    yaml_parser_t p;
    yaml_event_t ev;
    reader r;

    *out = NULL;
    memset(&r, 0, sizeof r);
    r.doc = pp_calloc(1, sizeof *r.doc);
    r.doc->name = pp_strdup(name);
    r.data = data;
    r.len = len;
    r.err = err;
    r.errlen = errlen;
    if (!yaml_parser_initialize(&p)) {
        fail(&r, 1, 1, "out of memory while parsing");
        pp_yaml_free(r.doc);
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
    for (;;) {
        if (!yaml_parser_parse(&p, &ev)) {
            syntax_error(&r, &p);
            break;
        }
        bool more = on_event(&r, &ev);
        yaml_event_delete(&ev);
        if (!more)
            break;
    }
    yaml_parser_delete(&p);
    /* Stopped early: a duplicate key before the problem comes first. */
    for (size_t i = 0; i < r.depth; i++)
        if (r.stack[i]->pub.kind == PP_YAML_MAPPING)
            check_duplicates(&r, r.stack[i]);
    if (r.failed) {
        pp_yaml_free(r.doc);
        return -1;
    }
    *out = r.doc;
    return 0;
}

void pp_yaml_free(pp_yaml_doc *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->nall; i++) {
        free(d->all[i]->kids);
        free(d->all[i]->str);
        free(d->all[i]);
    }
    free(d->all);
    free(d->name);
    free(d);
}

/* ---- reading the tree ------------------------------------------------- */

const pp_yaml_node *pp_yaml_root(const pp_yaml_doc *d)
{
    return d->root;
}

const char *pp_yaml_name(const pp_yaml_doc *d)
{
    return d->name;
}

const pp_yaml_node *pp_yaml_get(const pp_yaml_node *m, const char *key)
{
    if (m == NULL || m->kind != PP_YAML_MAPPING)
        return NULL;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->items[2 * i]->str, key) == 0)
            return m->items[2 * i + 1];
    return NULL;
}

const pp_yaml_node *pp_yaml_unknown_key(const pp_yaml_node *m, const char *const *allowed)
{
    if (m == NULL || m->kind != PP_YAML_MAPPING)
        return NULL;
    for (size_t i = 0; i < m->n; i++) {
        const char *const *a = allowed;
        while (*a != NULL && strcmp(*a, m->items[2 * i]->str) != 0)
            a++;
        if (*a == NULL)
            return m->items[2 * i];
    }
    return NULL;
}

const char *pp_yaml_kind_name(pp_yaml_kind k)
{
    switch (k) {
    case PP_YAML_SCALAR:
        return "a scalar";
    case PP_YAML_SEQUENCE:
        return "a sequence";
    case PP_YAML_MAPPING:
        return "a mapping";
    }
    return "?";
}
