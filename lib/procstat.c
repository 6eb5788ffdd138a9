/*
 * procstat: reads /proc/self/stat, /proc/self/fd, /proc/stat and the fd
 * limit. These are in-memory kernel files: reading them does not wait on
 * a disk, so it is done on the loop when a page is built.
 */
#include "procstat.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static double boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL)
        return -1;
    char line[256];
    double bt = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long long v;
        if (sscanf(line, "btime %llu", &v) == 1) {
            bt = (double)v;
            break;
        }
    }
    fclose(f);
    return bt;
}

void pp_procstat_read(pp_procstat *st)
{
    st->cpu_seconds = st->resident_bytes = st->virtual_bytes = -1;
    st->open_fds = st->max_fds = st->start_time = -1;
    double ticks = (double)sysconf(_SC_CLK_TCK);
    double page = (double)sysconf(_SC_PAGESIZE);

    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (f != NULL) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* the command name may hold spaces and parentheses: skip past the last ')' */
        char *p = strrchr(buf, ')');
        unsigned long utime, stime, vsize;
        unsigned long long start;
        long rss;
        if (p != NULL && sscanf(p + 2,
                                "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d "
                                "%*d %*d %*d %llu %lu %ld",
                                &utime, &stime, &start, &vsize, &rss) == 5) {
            st->cpu_seconds = (double)(utime + stime) / ticks;
            st->virtual_bytes = (double)vsize;
            st->resident_bytes = (double)rss * page;
            double bt = boot_time();
            if (bt >= 0)
                st->start_time = bt + (double)start / ticks;
        }
    }
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        double n = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                n++;
        closedir(d);
        st->open_fds = n - 1; /* not counting the descriptor of the listing itself */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        st->max_fds = rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur;
}
