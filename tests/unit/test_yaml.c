/*
 * test_yaml: the YAML tree reader.
 *
 * Nodes carry the 1-based line and column where they start and the style
 * of a scalar; what the reader refuses (anchors, aliases, duplicate and
 * non-scalar keys, deep nesting, a second document, NUL in a scalar) is
 * refused with the exact "name:line:column: message", the first problem
 * in document order; an empty document has no root; the helpers find keys
 * and format positioned messages on one line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "yaml.h"

static char err[512];

static pp_yaml_doc *parse(const char *text)
{
    pp_yaml_doc *d = (pp_yaml_doc *)1;
    err[0] = '\0';
    if (pp_yaml_parse("t.yaml", text, strlen(text), &d, err, sizeof err) != 0) {
        CHECK(d == NULL);
        return NULL;
    }
    CHECK(d != NULL);
    return d;
}

/* Parsing text fails with exactly want. */
static void expect_error(const char *text, const char *want, int line)
{
    pp_yaml_doc *d = parse(text);
    if (d != NULL || strcmp(err, want) != 0) {
        fprintf(stderr, "%s:%d: %s\n  got:  \"%s\"\n  want: \"%s\"\n", __FILE__, line,
                d != NULL ? "parsed" : "wrong message", err, want);
        check_failures++;
    }
    pp_yaml_free(d);
}

#define EXPECT_ERROR(text, want) expect_error(text, want, __LINE__)

static void check_node(const pp_yaml_node *n, pp_yaml_kind kind, unsigned line, unsigned column,
                       int at)
{
    if (n == NULL || n->kind != kind || n->line != line || n->column != column) {
        fprintf(stderr, "%s:%d: node %s at %u:%u, want %s at %u:%u\n", __FILE__, at,
                n ? pp_yaml_kind_name(n->kind) : "NULL", n ? n->line : 0, n ? n->column : 0,
                pp_yaml_kind_name(kind), line, column);
        check_failures++;
    }
}

#define CHECK_NODE(n, kind, line, column) check_node(n, kind, line, column, __LINE__)

static void test_tree(void)
{
    pp_yaml_doc *d = parse("# a comment\n"
                           "top:\n"
                           "  plain: yes\n"
                           "  quoted: \"yes\"\n"
                           "  single: 'it''s'\n"
                           "  list:\n"
                           "    - a\n"
                           "    - {k: v, n: 5}\n"
                           "    - [x, y]\n"
                           "  block: |\n"
                           "    line 1\n"
                           "    line 2\n"
                           "  folded: >\n"
                           "    f\n"
                           "  empty:\n"
                           "other: !!str 15s\n");
    CHECK(d != NULL);
    if (d == NULL)
        return;
    CHECK_STR(pp_yaml_name(d), "t.yaml");
    const pp_yaml_node *root = pp_yaml_root(d);
    CHECK_NODE(root, PP_YAML_MAPPING, 2, 1);
    CHECK(root->n == 2);
    CHECK_NODE(root->items[0], PP_YAML_SCALAR, 2, 1);
    CHECK_STR(root->items[0]->str, "top");
    const pp_yaml_node *top = pp_yaml_get(root, "top");
    CHECK_NODE(top, PP_YAML_MAPPING, 3, 3);
    CHECK(top->n == 7);

    /* the style tells "yes" from yes */
    const pp_yaml_node *v = pp_yaml_get(top, "plain");
    CHECK_NODE(v, PP_YAML_SCALAR, 3, 10);
    CHECK_STR(v->str, "yes");
    CHECK(v->style == PP_YAML_PLAIN && v->len == 3);
    v = pp_yaml_get(top, "quoted");
    CHECK_NODE(v, PP_YAML_SCALAR, 4, 11);
    CHECK_STR(v->str, "yes");
    CHECK(v->style == PP_YAML_DOUBLE);
    v = pp_yaml_get(top, "single");
    CHECK_STR(v->str, "it's");
    CHECK(v->style == PP_YAML_SINGLE && v->len == 4);

    const pp_yaml_node *list = pp_yaml_get(top, "list");
    CHECK_NODE(list, PP_YAML_SEQUENCE, 7, 5);
    CHECK(list->n == 3);
    CHECK_NODE(list->items[0], PP_YAML_SCALAR, 7, 7);
    CHECK_NODE(list->items[1], PP_YAML_MAPPING, 8, 7);
    CHECK(list->items[1]->n == 2);
    CHECK_NODE(pp_yaml_get(list->items[1], "n"), PP_YAML_SCALAR, 8, 17);
    CHECK_STR(pp_yaml_get(list->items[1], "n")->str, "5");
    CHECK_NODE(list->items[2], PP_YAML_SEQUENCE, 9, 7);
    CHECK_NODE(list->items[2]->items[1], PP_YAML_SCALAR, 9, 11);

    v = pp_yaml_get(top, "block");
    CHECK_STR(v->str, "line 1\nline 2\n");
    CHECK(v->style == PP_YAML_LITERAL);
    CHECK(pp_yaml_get(top, "folded")->style == PP_YAML_FOLDED);
    v = pp_yaml_get(top, "empty");
    CHECK(v != NULL && v->kind == PP_YAML_SCALAR && v->len == 0 && v->str[0] == '\0');
    /* tags are ignored: every scalar is text */
    CHECK_STR(pp_yaml_get(root, "other")->str, "15s");

    /* the helpers */
    CHECK(pp_yaml_get(top, "missing") == NULL);
    CHECK(pp_yaml_get(list, "a") == NULL); /* not a mapping */
    CHECK(pp_yaml_get(NULL, "a") == NULL);
    const char *const allowed[] = {"plain", "quoted", "single", "list", "block", "folded", NULL};
    const pp_yaml_node *k = pp_yaml_unknown_key(top, allowed);
    CHECK(k != NULL && strcmp(k->str, "empty") == 0 && k->line == 15 && k->column == 3);
    const char *const all[] = {"top", "other", NULL};
    CHECK(pp_yaml_unknown_key(root, all) == NULL);
    CHECK(pp_yaml_unknown_key(list, all) == NULL);
    CHECK(pp_yaml_error_at(err, sizeof err, d, k, "unknown key \"%s\"", k->str) == -1);
    CHECK_STR(err, "t.yaml:15:3: unknown key \"empty\"");
    pp_yaml_free(d);
    pp_yaml_free(NULL);
}

static void test_empty(void)
{
    /* nothing, or only comments: no root */
    const char *empty[] = {"", "# just a comment\n", "\n\n"};
    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
        pp_yaml_doc *d = parse(empty[i]);
        CHECK(d != NULL && pp_yaml_root(d) == NULL);
        pp_yaml_free(d);
    }
    /* an explicit document with nothing in it is an empty scalar */
    pp_yaml_doc *d = parse("---\n");
    CHECK(d != NULL);
    if (d != NULL) {
        CHECK_NODE(pp_yaml_root(d), PP_YAML_SCALAR, 2, 1);
        CHECK_STR(pp_yaml_root(d)->str, "");
    }
    pp_yaml_free(d);
    d = parse("just text");
    CHECK(d != NULL && pp_yaml_root(d)->kind == PP_YAML_SCALAR);
    pp_yaml_free(d);
}

static void test_errors(void)
{
    /* libyaml's own, positions made 1-based */
    EXPECT_ERROR("a: b: c\n", "t.yaml:1:5: syntax error: mapping values are not allowed in this "
                              "context");
    EXPECT_ERROR("a: \"x\n",
                 "t.yaml:2:1: syntax error: found unexpected end of stream (while scanning a "
                 "quoted scalar at 1:4)");
    EXPECT_ERROR("a:\n\t- b\n", "t.yaml:2:1: syntax error: found character that cannot start "
                                "any token (while scanning for the next token at 2:1)");
    EXPECT_ERROR("a: 1\nb: \xff\n", "t.yaml:2:4: invalid input: invalid leading UTF-8 octet");

    /* anchors and aliases, wherever they are */
    EXPECT_ERROR("a: &x 1\n",
                 "t.yaml:1:4: anchor \"&x\" is not allowed (anchors and aliases are refused)");
    EXPECT_ERROR("a: &m {k: v}\n",
                 "t.yaml:1:4: anchor \"&m\" is not allowed (anchors and aliases are refused)");
    EXPECT_ERROR("- &s [1]\n",
                 "t.yaml:1:3: anchor \"&s\" is not allowed (anchors and aliases are refused)");
    EXPECT_ERROR("a: 1\nb: *x\n",
                 "t.yaml:2:4: alias \"*x\" is not allowed (anchors and aliases are refused)");
    EXPECT_ERROR("<<: *base\n",
                 "t.yaml:1:5: alias \"*base\" is not allowed (anchors and aliases are refused)");

    /* duplicate keys: the second one, naming the first */
    EXPECT_ERROR("a: 1\nb: 2\na: 3\n", "t.yaml:3:1: duplicate key \"a\" (first at line 1)");
    EXPECT_ERROR("m: {k: 1, j: 2, k: 3}\n", "t.yaml:1:17: duplicate key \"k\" (first at line 1)");
    /* three times: the second is reported */
    EXPECT_ERROR("x: 1\nx: 2\nx: 3\n", "t.yaml:2:1: duplicate key \"x\" (first at line 1)");
    /* quoting does not make a key different */
    EXPECT_ERROR("'k': 1\n\"k\": 2\n", "t.yaml:2:1: duplicate key \"k\" (first at line 1)");
    /* the same key in different mappings is fine */
    pp_yaml_doc *d = parse("a: {k: 1}\nb: {k: 2}\nc: [{k: 1}, {k: 2}]\n");
    CHECK(d != NULL);
    pp_yaml_free(d);
    /* the first problem in the text wins, whichever check finds it: the
     * outer mapping ends after the inner one, and after the alias */
    EXPECT_ERROR("a: 1\n"
                 "a: 2\n"
                 "b: {c: 1, c: 2}\n",
                 "t.yaml:2:1: duplicate key \"a\" (first at line 1)");
    EXPECT_ERROR("a: 1\n"
                 "a: 2\n"
                 "b: *x\n",
                 "t.yaml:2:1: duplicate key \"a\" (first at line 1)");
    EXPECT_ERROR("b: {c: 1, c: 2}\n"
                 "a: 1\n"
                 "a: 2\n",
                 "t.yaml:1:11: duplicate key \"c\" (first at line 1)");
    EXPECT_ERROR("a: 1\n"
                 "a: 2\n"
                 "b: [\n",
                 "t.yaml:2:1: duplicate key \"a\" (first at line 1)");

    /* keys are scalars */
    EXPECT_ERROR("? [a, b]\n: c\n", "t.yaml:1:3: expected a scalar as mapping key, found a "
                                    "sequence");
    EXPECT_ERROR("{? {k: v} : c}\n",
                 "t.yaml:1:4: expected a scalar as mapping key, found a mapping");

    /* a second document */
    EXPECT_ERROR("a: 1\n---\nb: 2\n", "t.yaml:2:1: only one YAML document is allowed per file");
    EXPECT_ERROR("---\na: 1\n...\n---\n", "t.yaml:4:1: only one YAML document is allowed per file");

    /* NUL inside a scalar (a C string would cut it) */
    EXPECT_ERROR("a: \"x\\0y\"\n", "t.yaml:1:4: NUL character in a scalar");

    /* control characters from the text never reach the message */
    EXPECT_ERROR("\"a\\nb\": 1\n\"a\\nb\": 2\n",
                 "t.yaml:2:1: duplicate key \"a?b\" (first at line 1)");

    /* a NULL or short error buffer is fine */
    d = (pp_yaml_doc *)1;
    CHECK(pp_yaml_parse("t.yaml", "a: &x 1", 7, &d, NULL, 0) == -1 && d == NULL);
    char small[8];
    CHECK(pp_yaml_parse("t.yaml", "a: &x 1", 7, &d, small, sizeof small) == -1);
    CHECK_STR(small, "t.yaml:");
}

static void test_depth(void)
{
    pp_buf b = PP_BUF_INIT;
    for (int i = 0; i < PP_YAML_MAX_DEPTH; i++)
        pp_buf_putc(&b, '[');
    for (int i = 0; i < PP_YAML_MAX_DEPTH; i++)
        pp_buf_putc(&b, ']');
    pp_yaml_doc *d = parse(b.data);
    CHECK(d != NULL);
    const pp_yaml_node *n = d ? pp_yaml_root(d) : NULL;
    int depth = 0;
    for (; n != NULL; n = n->n > 0 ? n->items[0] : NULL)
        depth++;
    CHECK(depth == PP_YAML_MAX_DEPTH);
    pp_yaml_free(d);

    /* one level more is refused where it begins */
    pp_buf_reset(&b);
    for (int i = 0; i <= PP_YAML_MAX_DEPTH; i++)
        pp_buf_puts(&b, "{a: ");
    char want[128];
    snprintf(want, sizeof want, "t.yaml:1:%d: nesting deeper than %d levels",
             4 * PP_YAML_MAX_DEPTH + 1, PP_YAML_MAX_DEPTH);
    EXPECT_ERROR(b.data, want);

    /* so are too many nodes */
    pp_buf_reset(&b);
    pp_buf_putc(&b, '[');
    for (unsigned i = 0; i < PP_YAML_MAX_NODES; i++)
        pp_buf_puts(&b, "1,");
    pp_buf_puts(&b, "1]");
    snprintf(want, sizeof want, "t.yaml:1:%u: more than %u nodes", 2 * PP_YAML_MAX_NODES,
             PP_YAML_MAX_NODES);
    EXPECT_ERROR(b.data, want);
    pp_buf_deinit(&b);
}

static void test_messages(void)
{
    char e[64];
    CHECK(pp_yaml_error(e, sizeof e, "q/x.yaml", 42, 7, "unknown key \"%s\"", "intervall") == -1);
    CHECK_STR(e, "q/x.yaml:42:7: unknown key \"intervall\"");
    CHECK(pp_yaml_error(e, sizeof e, "x\ty", 1, 2, "bad \"%s\"", "a\nb\x7f") == -1);
    CHECK_STR(e, "x?y:1:2: bad \"a?b?\"");
    CHECK(pp_yaml_error(e, 12, "x.yaml", 1, 2, "long message") == -1);
    CHECK_STR(e, "x.yaml:1:2:");
    CHECK(pp_yaml_error(NULL, 0, "x.yaml", 1, 2, "nothing") == -1);
    CHECK(pp_yaml_error(e, 0, "x.yaml", 1, 2, "nothing") == -1);

    /* the name is copied */
    char *name = strdup("copied.yaml");
    pp_yaml_doc *d = NULL;
    CHECK(pp_yaml_parse(name, "a: 1", 4, &d, err, sizeof err) == 0);
    free(name);
    CHECK_STR(pp_yaml_name(d), "copied.yaml");
    pp_yaml_free(d);
}

int main(void)
{
    test_tree();
    test_empty();
    test_errors();
    test_depth();
    test_messages();
    return CHECK_RESULT();
}
