/*
 * test_turn: a loop turn's budget for results. Three sockets are ready at
 * once and each callback works 1 ms: with a budget of 0.5 ms the first
 * callback of a turn runs and the others leave their socket unread, which
 * the loop reports again, so each socket is read in a turn of its own and
 * none is lost. A loop without a turn has no budget.
 */
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "check.h"
#include "turn.h"

#define N 3

typedef struct side {
    uv_poll_t poll;
    int fds[2];
    int read_in_turn; /* 0: not yet */
    int deferred;
} side;

static int turns;

static void on_prepare(uv_prepare_t *h)
{
    (void)h;
    turns++;
}

static void work_1ms(void)
{
    uint64_t until = uv_hrtime() + 1000000;
    while (uv_hrtime() < until)
        ;
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    side *s = h->data;
    (void)status;
    (void)events;
    if (pp_turn_spent(h->loop)) {
        s->deferred++;
        return;
    }
    char c;
    CHECK(read(s->fds[0], &c, 1) == 1 && c == 'x');
    s->read_in_turn = turns;
    uv_poll_stop(h);
    work_1ms();
}

int main(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    loop.data = NULL;             /* uv_loop_init leaves data as it was */
    CHECK(!pp_turn_spent(&loop)); /* no turn: no budget */
    CHECK(!pp_turn_spent(&loop));

    pp_turn turn;
    pp_turn_init(&turn, &loop, 0.5);
    CHECK(loop.data == &turn);
    uv_prepare_t prepare;
    uv_prepare_init(&loop, &prepare);
    uv_prepare_start(&prepare, on_prepare);
    uv_unref((uv_handle_t *)&prepare);

    side sides[N] = {0};
    for (int i = 0; i < N; i++) {
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sides[i].fds) == 0);
        CHECK(write(sides[i].fds[1], "x", 1) == 1);
        uv_poll_init(&loop, &sides[i].poll, sides[i].fds[0]);
        sides[i].poll.data = &sides[i];
        uv_poll_start(&sides[i].poll, UV_READABLE, on_readable);
    }
    uv_run(&loop, UV_RUN_DEFAULT); /* until every socket was read */

    int deferred = 0;
    for (int i = 0; i < N; i++) {
        CHECK(sides[i].read_in_turn > 0);
        for (int j = 0; j < i; j++)
            CHECK(sides[i].read_in_turn != sides[j].read_in_turn); /* a turn each */
        deferred += sides[i].deferred;
    }
    CHECK(deferred >= N - 1); /* the first turn ran one and deferred the others */

    for (int i = 0; i < N; i++) {
        uv_close((uv_handle_t *)&sides[i].poll, NULL);
        close(sides[i].fds[0]);
        close(sides[i].fds[1]);
    }
    uv_close((uv_handle_t *)&prepare, NULL);
    pp_turn_close(&turn, NULL);
    CHECK(loop.data == NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    return CHECK_RESULT();
}
