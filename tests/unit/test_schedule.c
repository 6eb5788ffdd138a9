/*
 * test_schedule: the schedule and the reconnect policy on a fake clock.
 */
#include <math.h>

#include "check.h"
#include "schedule.h"

static int near(double a, double b)
{
    return fabs(a - b) < 1e-9;
}

static void test_backoff(void)
{
    /* jitter 0.5 is the middle: the plain doubling, capped */
    static const double want15[] = {0.5, 1, 2, 4, 4, 4};
    for (int i = 0; i < 6; i++)
        CHECK(near(pp_schedule_backoff(i + 1, 15, 0.5), want15[i]));
    /* capped by the shortest interval, but never under a second */
    CHECK(near(pp_schedule_backoff(10, 2, 0.5), 2));
    CHECK(near(pp_schedule_backoff(10, 0.5, 0.5), 1));
    CHECK(near(pp_schedule_backoff(1, 0.5, 0.5), 0.5));
    /* +-20 % */
    CHECK(near(pp_schedule_backoff(1, 15, 0), 0.4));
    CHECK(near(pp_schedule_backoff(1, 15, 1), 0.6));
    CHECK(near(pp_schedule_backoff(1, 15, 7), 0.6)); /* a bad draw is clamped */
    /* after any outage, however long, the next try is at most ~5 s away */
    for (int f = 1; f < 100000; f *= 3)
        CHECK(pp_schedule_backoff(f, 3600, 1) <= 4.8 + 1e-9);
}

static void test_runs_do_not_drift(void)
{
    /* due at 0, interval 15, each run takes 0.3 s and the timer fires
     * 2 ms late: the k-th run is still due at 15 k */
    double due = 0, now = 0;
    for (int k = 1; k <= 1000; k++) {
        now = due + 0.002;
        CHECK(pp_schedule_is_due(due, now));
        due = pp_schedule_after_run(due, 15, now + 0.3);
        CHECK(near(due, 15.0 * k));
    }
    /* a timer that fires up to PP_SCHEDULE_SLACK early still runs it */
    CHECK(pp_schedule_is_due(100, 100 - PP_SCHEDULE_SLACK / 2));
    CHECK(!pp_schedule_is_due(100, 99.9));
    /* more than an interval behind (a stall, a frozen server): one interval
     * from now, not a burst of catch-up runs */
    CHECK(near(pp_schedule_after_run(0, 15, 40), 55));
}

typedef struct query {
    double next_due;
    double interval;
    int runs;
} query;

static void test_two_intervals_on_a_fake_clock(void)
{
    /* a target with queries every 1 s and every 3 s, batches taking 50 ms,
     * for 60 simulated seconds: each runs as often as its interval says,
     * and the 3 s query always rides along with a 1 s batch */
    query q[2] = {{0, 1, 0}, {0, 3, 0}};
    double now = 0;
    int batches = 0;
    while (now < 60) {
        double wake = pp_schedule_earliest(&q[0].next_due, 2, sizeof(query));
        if (wake > now)
            now = wake;
        int due[2], n = 0;
        for (int i = 0; i < 2; i++)
            if (pp_schedule_is_due(q[i].next_due, now))
                due[n++] = i;
        CHECK(n > 0);
        now += 0.05;
        for (int k = 0; k < n; k++) {
            q[due[k]].runs++;
            q[due[k]].next_due = pp_schedule_after_run(q[due[k]].next_due, q[due[k]].interval, now);
        }
        batches++;
    }
    CHECK(q[0].runs == 60 || q[0].runs == 61);
    CHECK(q[1].runs == 20 || q[1].runs == 21);
    CHECK(batches == q[0].runs);
    CHECK(near(pp_schedule_earliest(NULL, 0, sizeof(query)), 0));
}

int main(void)
{
    test_backoff();
    test_runs_do_not_drift();
    test_two_intervals_on_a_fake_clock();
    return CHECK_RESULT();
}
