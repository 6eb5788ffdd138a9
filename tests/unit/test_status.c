/*
 * test_status: the dashboard's pure parts: JSON string escaping (what comes
 * from the database can be anything) and the history ring.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "history.h"
#include "status.h"

static void json(const char *in, size_t n, const char *want)
{
    pp_buf b = PP_BUF_INIT;
    pp_status_json_string(&b, in, n);
    CHECK_STR(b.data, want);
    pp_buf_deinit(&b);
}

static void test_json_strings(void)
{
    json("users", 5, "\"users\"");
    json("", 0, "\"\"");
    /* markup never leaves as markup */
    json("<img src=x onerror=alert(1)>", 28, "\"\\u003cimg src=x onerror=alert(1)\\u003e\"");
    json("a&b", 3, "\"a\\u0026b\"");
    json("q\"b\\s", 5, "\"q\\\"b\\\\s\"");
    json("l1\nl2\tx\r", 8, "\"l1\\nl2\\tx\\r\"");
    json("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\"");
    json("a\0b", 3, "\"a\\u0000b\"");
    /* valid UTF-8 stays, invalid becomes U+FFFD, line separators escaped */
    json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x98", 14,
         "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x98\"");
    json("\xff", 1, "\"\\ufffd\"");
    json("\xc3", 1, "\"\\ufffd\"");                       /* truncated */
    json("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");            /* overlong */
    json("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""); /* a surrogate */
    json("\xe2\x80\xa8|\xe2\x80\xa9", 7, "\"\\u2028|\\u2029\"");
}

static void test_history_ring(void)
{
    pp_history *h = pp_history_new(3);
    CHECK(h->n == 0 && pp_history_last(h) == NULL);
    CHECK(isnan(h->tps) && isnan(h->xact_total));
    for (int i = 1; i <= 5; i++) {
        pp_history_sample s = {.t = i};
        s.v[PP_HIST_TPS] = (float)(i * 10);
        pp_history_push(h, &s);
    }
    /* full: the three newest, oldest first */
    CHECK(h->n == 3);
    CHECK(pp_history_at(h, 0)->t == 3 && pp_history_at(h, 2)->t == 5);
    CHECK(pp_history_at(h, 1)->v[PP_HIST_TPS] == 40);
    CHECK(pp_history_last(h)->t == 5);
    /* the size does not grow with the samples */
    size_t mem = pp_history_memory(h);
    CHECK(mem >= 3 * sizeof(pp_history_sample));
    pp_history_sample s = {.t = 6};
    pp_history_push(h, &s);
    CHECK(pp_history_memory(h) == mem);
    pp_history_free(h);
    pp_history_free(NULL);
}

int main(void)
{
    test_json_strings();
    test_history_ring();
    return CHECK_RESULT();
}
