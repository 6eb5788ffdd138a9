/*
 * schedule: the schedule and reconnect policy (see schedule.h).
 */
#include "schedule.h"

bool pp_schedule_is_due(double next_due, double now)
{
    return next_due <= now + PP_SCHEDULE_SLACK;
}

double pp_schedule_after_run(double next_due, double interval, double now)
{
    double next = next_due + interval;
    return next <= now ? now + interval : next;
}

double pp_schedule_earliest(const double *next_due, size_t n, size_t stride)
{
    double m = 0;
    const char *p = (const char *)next_due;
    for (size_t i = 0; i < n; i++, p += stride) {
        double v = *(const double *)p;
        if (i == 0 || v < m)
            m = v;
    }
    return m;
}

double pp_schedule_backoff(int failures, double min_interval, double jitter01)
{
    double cap = min_interval;
    if (cap > PP_SCHEDULE_BACKOFF_MAX)
        cap = PP_SCHEDULE_BACKOFF_MAX;
    if (cap < 1.0)
        cap = 1.0;
    double d = PP_SCHEDULE_BACKOFF_BASE;
    for (int i = 1; i < failures && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    if (jitter01 < 0)
        jitter01 = 0;
    if (jitter01 > 1)
        jitter01 = 1;
    return d * (1 - PP_SCHEDULE_JITTER + 2 * PP_SCHEDULE_JITTER * jitter01);
}
