/*
 * schedule: when queries run and when a lost connection is tried again.
 *
 * Pure functions of times and intervals (seconds on any monotonic clock)
 * and, for jitter, a number the caller draws: no timers, no state of their
 * own, so the policy is tested with a fake clock and the target only turns
 * the answers into libuv timers.
 */
#ifndef PGPULSE_SCHEDULE_H
#define PGPULSE_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>

/* A query is due when its next run time is no later than now + this:
 * timers fire a little early or late, and near-simultaneous runs are
 * better sent in one batch. */
#define PP_SCHEDULE_SLACK 0.005

/* Reconnect backoff: the first retry after PP_SCHEDULE_BACKOFF_BASE, doubling
 * per consecutive failure, capped at the shortest query interval but never
 * above PP_SCHEDULE_BACKOFF_MAX (so a server that comes back after any outage
 * is seen again within about five seconds) nor below one second. */
#define PP_SCHEDULE_BACKOFF_BASE 0.5
#define PP_SCHEDULE_BACKOFF_MAX 4.0
#define PP_SCHEDULE_JITTER 0.2 /* +-20 %, so many targets do not retry in step */

/* Whether a query whose next run is at next_due is due at now. */
bool pp_schedule_is_due(double next_due, double now);

/* The next run time of a query that was due at next_due and whose run
 * ended at now: one interval after it was due, so runs do not drift, or one
 * interval from now when it is more than an interval behind. */
double pp_schedule_after_run(double next_due, double interval, double now);

/* The earliest of n next run times (0 when n is 0). */
double pp_schedule_earliest(const double *next_due, size_t n, size_t stride);

/* Seconds to wait before reconnect attempt number failures (1 = the first
 * retry). min_interval is the shortest query interval; jitter01 is a
 * number the caller drew uniformly from [0, 1]. */
double pp_schedule_backoff(int failures, double min_interval, double jitter01);

#endif
