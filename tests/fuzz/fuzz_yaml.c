/*
 * fuzz_yaml: the YAML tree reader (yaml.h).
 *
 * The input is one YAML text. A failed parse must give no document and a
 * one-line "fuzz.yaml:line:column: message". A parsed one must keep the
 * header's promises: positions are 1-based and within the text's size, scalars are
 * NUL-free strings of their stated length, mapping keys are scalars and
 * unique, nesting is at most PP_YAML_MAX_DEPTH deep, and pp_yaml_get finds
 * every key's own value.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "yaml.h"

#define NAME "fuzz.yaml"

static void check_error(const char *err)
{
    fuzz_check_positioned(err, NAME);
}

/* Walks the tree with an explicit stack (the depth is bounded, but the
 * check must not trust that). */
static void check_tree(const pp_yaml_node *root, size_t size)
{
    const pp_yaml_node *stack[PP_YAML_MAX_DEPTH + 1];
    size_t next[PP_YAML_MAX_DEPTH + 1];
    size_t depth = 0;

    stack[0] = root;
    next[0] = 0;
    for (;;) {
        const pp_yaml_node *n = stack[depth];
        if (next[depth] == 0) { /* first visit */
            /* every line and column takes at least a byte */
            FUZZ_CHECK(n->line >= 1 && n->line <= size + 1);
            FUZZ_CHECK(n->column >= 1 && n->column <= size + 1);
            if (n->kind == PP_YAML_SCALAR) {
                FUZZ_CHECK(n->str != NULL && strlen(n->str) == n->len);
                FUZZ_CHECK(n->n == 0);
            } else {
                FUZZ_CHECK(n->n == 0 || n->items != NULL);
                FUZZ_CHECK(n->style == PP_YAML_PLAIN);
            }
            if (n->kind == PP_YAML_MAPPING) {
                for (size_t i = 0; i < n->n; i++) {
                    const pp_yaml_node *k = n->items[2 * i];
                    FUZZ_CHECK(k->kind == PP_YAML_SCALAR);
                    FUZZ_CHECK(pp_yaml_get(n, k->str) == n->items[2 * i + 1]);
                    for (size_t j = 0; j < i; j++)
                        FUZZ_CHECK(strcmp(n->items[2 * j]->str, k->str) != 0);
                }
            }
        }
        size_t total = n->kind == PP_YAML_MAPPING ? 2 * n->n : n->n;
        if (n->kind != PP_YAML_SCALAR && next[depth] < total) {
            FUZZ_CHECK(depth < PP_YAML_MAX_DEPTH);
            const pp_yaml_node *kid = n->items[next[depth]++];
            if (kid->kind != PP_YAML_SCALAR)
                FUZZ_CHECK(depth + 1 < PP_YAML_MAX_DEPTH);
            stack[++depth] = kid;
            next[depth] = 0;
            continue;
        }
        next[depth] = 1; /* a scalar, or a container walked */
        if (depth == 0)
            break;
        depth--;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    pp_yaml_doc *d = (pp_yaml_doc *)1;

    err[0] = '\0';
    if (pp_yaml_parse(NAME, (const char *)data, size, &d, err, sizeof err) != 0) {
        FUZZ_CHECK(d == NULL);
        check_error(err);
        return 0;
    }
    FUZZ_CHECK(d != NULL);
    FUZZ_CHECK(strcmp(pp_yaml_name(d), NAME) == 0);
    if (pp_yaml_root(d) != NULL)
        check_tree(pp_yaml_root(d), size);
    pp_yaml_free(d);
    return 0;
}
