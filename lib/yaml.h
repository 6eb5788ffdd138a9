/*
 * yaml: one YAML document read into a small tree with positions, and
 * positioned error messages.
 *
 * A leaf module: it knows YAML, not what the document means. The query
 * catalog reads its files through it; other YAML inputs (a legacy
 * postgres_exporter queries.yaml, an exporter-toolkit web config) are meant
 * to as well. Reading refuses, with a positioned error, what no consumer
 * wants and a naive reader gets wrong:
 * - anchors and aliases (a billion-laughs document is a few hundred bytes,
 *   and "<<: *x" merge keys are not applied by libyaml anyway);
 * - a second document in the same text;
 * - mapping keys that are not scalars, and duplicate keys (libyaml keeps
 *   both silently);
 * - nesting deeper than PP_YAML_MAX_DEPTH, more than PP_YAML_MAX_NODES
 *   nodes, and NUL characters in scalars.
 * Every scalar is text: "yes", 5 and 15s are strings, and the scalar's
 * style tells "yes" from yes. Tags (!!str) are ignored.
 *
 * Messages are "name:line:column: message" with 1-based positions, on one
 * line: control characters (which may come from the document) are shown
 * as '?'.
 */
#ifndef PGPULSE_YAML_H
#define PGPULSE_YAML_H

#include <stdarg.h>
#include <stddef.h>

/* Sequences and mappings nested deeper than this are refused. */
#define PP_YAML_MAX_DEPTH 32
/* A document with more nodes than this is refused. */
#define PP_YAML_MAX_NODES (1u << 20)

typedef enum pp_yaml_kind {
    PP_YAML_SCALAR,
    PP_YAML_SEQUENCE,
    PP_YAML_MAPPING,
} pp_yaml_kind;

typedef enum pp_yaml_style {
    PP_YAML_PLAIN,  /* yes (also the style of sequences and mappings) */
    PP_YAML_SINGLE, /* 'yes' */
    PP_YAML_DOUBLE, /* "yes" */
    PP_YAML_LITERAL,
    PP_YAML_FOLDED,
} pp_yaml_style;

/*
 * A node of the tree. Owned by its document and read only: it lives until
 * pp_yaml_free() of the document.
 */
typedef struct pp_yaml_node pp_yaml_node;
struct pp_yaml_node {
    pp_yaml_kind kind;
    pp_yaml_style style;
    unsigned line, column; /* 1-based, where the node starts */
    const char *str;       /* scalars: the value, NUL-terminated, no NUL inside */
    size_t len;            /* scalars: strlen(str) */
    /* Sequences: n items. Mappings: n pairs, the key of pair i in
     * items[2 * i] (always a scalar, each key once), its value in
     * items[2 * i + 1], in document order. */
    const pp_yaml_node *const *items;
    size_t n;
};

typedef struct pp_yaml_doc pp_yaml_doc;

/*
 * Reads data[0, len) (UTF-8, UTF-16 with a BOM) as one YAML document. name
 * is copied and used in messages. On success returns 0 and sets *out to a
 * new document (free with pp_yaml_free); an empty document (nothing but
 * comments) succeeds with a NULL root. On error returns -1, *out is NULL
 * and err gets "name:line:column: message".
 */
int pp_yaml_parse(const char *name, const char *data, size_t len, pp_yaml_doc **out, char *err,
                  size_t errlen) __attribute__((warn_unused_result));
void pp_yaml_free(pp_yaml_doc *d); /* accepts NULL */

/* The root node, or NULL for an empty document. Borrowed from d. */
const pp_yaml_node *pp_yaml_root(const pp_yaml_doc *d);
/* The name given to pp_yaml_parse. Borrowed from d. */
const char *pp_yaml_name(const pp_yaml_doc *d);

/* The value for key in mapping m, or NULL (also when m is no mapping). */
const pp_yaml_node *pp_yaml_get(const pp_yaml_node *m, const char *key);
/* The first key node of mapping m that is not in allowed (a NULL-terminated
 * list), or NULL when every key is allowed. */
const pp_yaml_node *pp_yaml_unknown_key(const pp_yaml_node *m, const char *const *allowed);
/* "a scalar", "a sequence", "a mapping": for "expected X, found Y". */
const char *pp_yaml_kind_name(pp_yaml_kind k);

/*
 * Write "name:line:column: message" into err (if err is not NULL and errlen
 * is not 0), truncating, with control characters shown as '?'. All return
 * -1, so that "return pp_yaml_error_at(...);" reports and fails at once.
 */
int pp_yaml_error(char *err, size_t errlen, const char *name, unsigned line, unsigned column,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));
int pp_yaml_verror(char *err, size_t errlen, const char *name, unsigned line, unsigned column,
                   const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));
/* At node n of document d. */
int pp_yaml_error_at(char *err, size_t errlen, const pp_yaml_doc *d, const pp_yaml_node *n,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
