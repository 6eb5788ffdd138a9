#!/usr/bin/env python3
"""pgpulse at 1, 100, 500 and 1,000 targets: the scale curve, in one run.

Throwaway PostgreSQL 15 servers listening on every address ('*') stand
in for many: each 127.x.y.z loopback address reaches each of them, so N
DSNs postgresql://bench_pgpulse@127.0.<a>.<b>:PORT/postgres are N distinct
host:port targets to pgpulse. Target i goes to server i // --per-server
(100 by default: ten servers for 1,000 targets). A real server is watched
by one connection; a single stand-in with all N would list N backends in
every server-wide view (pg_stat_activity, pg_stat_replication, pg_locks)
that each of the N targets reads, work that grows with N squared: at 1,000
targets on one server it took 1.3 of this machine's 2 cores from pgpulse
(--per-server 1000 shows it). The stand-ins' postmasters get nice 10
(--server-nice); with autogroup scheduling, Debian's default, that orders
a stand-in's processes among themselves only: each stand-in is a group of
its own that weighs as much as pgpulse's (see start_server). On a real
deployment the servers are other machines. For each N a fresh pgpulse (Release build,
built-in catalog, whose default intervals are 15 s) watches N of them, and
the script measures:

1. Start-up: seconds from starting pgpulse until one /metrics page (gzip)
   shows pg_up 1 for all N targets, polled every 0.5 s.
2. Scrapes: over a window (60 s) right after that, a gzip scrape every
   second (several Prometheus replicas' worth), each on a fresh connection,
   timed with time.perf_counter around connect, request and reading the
   whole body: p50, p90, p99 and max (nearest rank), and how many took over
   100 ms. One plain and one gzip response are fetched after the window for
   their sizes.
3. pgpulse's CPU over the window as a fraction of one core (utime + stime
   from /proc/PID/stat, divided by the wall time), VmRSS at the end of the
   window and VmHWM (the peak since start).
4. Freshness: the largest pgpulse_target_data_age_seconds on any page of
   the window, and the loop-lag self-metric (any family whose name holds
   loop_lag) if the page has one: its mean and ticks over 25 ms in the
   window, and its gauge's largest value from 20 s into the window on.

It prints a Markdown report (machine facts, one table with a column per N,
the goals and whether they hold at 1,000 targets) and writes it to
bench/results/scale-<date>.md. Everything it starts is stopped on exit,
failure, Ctrl-C or SIGTERM.

    python3 bench/scale.py                 # 1,100,500,1000 targets, ~10 min
    python3 bench/scale.py --quick         # 1,100 targets, 20 s window
    python3 bench/scale.py --pgpulse /path/to/pgpulse --targets 1,50

Needs postgresql-15 and the build dependencies of pgpulse (unless
--pgpulse). Run as root (the server then runs as `postgres`) or as a user
that can run initdb.
"""

import argparse
import datetime
import gzip as gzip_mod
import http.client
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import pgharness  # noqa: E402  (PgServer, free_port)
import compare  # noqa: E402  (Process, build_pgpulse, machine_facts, num, results_path)

ROLE = "bench_pgpulse"
DBNAME = "postgres"
TABLES, ROWS = 4, 10000
INTERVAL = 15          # the built-in catalog's default collection interval, s
# pgpulse_loop_lag_max_seconds shows the maximum of the last complete 10 s
# window until the next one completes: up to 20 s back
LAG_GAUGE_S = 20

# The goals, for 1,000 targets on a 15 s interval (see bench/README.md).
GOAL_N = 1000
GOAL_UP_S = 30
GOAL_P99_MS = 10
GOAL_MAX_MS = 100
GOAL_RSS_BYTES = 100e6
GOAL_CPU = 0.25
GOAL_AGE_S = 2 * INTERVAL

# Scrapes in the window are read into one buffer this big, allocated
# before the window (see Pgpulse.get).
READ_BUFFER = 64 << 20

# Requests from this script must not wait forever on a stuck exporter.
HTTP_TIMEOUT = 30

# Linux caps one environment string at 32 pages (MAX_ARG_STRLEN); longer DSN
# lists go into a flags file instead.
ENV_STRING_MAX = 32 * 4096 - 64


def note(msg):
    print(f"scale: {msg}", file=sys.stderr, flush=True)


# -- addresses -------------------------------------------------------------------

def loopback_addresses(n):
    """n distinct loopback addresses from 127.0.1.1 on, no .0 or .255 octet."""
    out = []
    for a in range(0, 255):
        for b in range(1, 255):
            for c in range(1, 255):
                if len(out) == n:
                    return out
                out.append(f"127.{a}.{b}.{c}")
    raise ValueError(f"cannot make {n} loopback addresses")


# -- the server ------------------------------------------------------------------

def start_server(max_targets, nice):
    """One PostgreSQL 15 server on '*' that every 127.x.y.z reaches."""
    pg = pgharness.PgServer(start=False, settings={
        # Every 127.x.y.z must reach it: '127.0.0.1' binds that address only.
        "listen_addresses": "'*'",
        # One backend per target, plus psql and the reserved slots.
        "max_connections": str(max_targets + 50),
        "shared_buffers": "'32MB'",
        "log_min_messages": "warning",
    })
    pg._append_as_postgres(os.path.join(pg.datadir, "pg_hba.conf"),
                           "# scale.py: every loopback address is a target\n"
                           "host all all 127.0.0.0/8 trust\n")
    pg.start()
    if nice:
        # backends are forked from the postmaster afterwards: they inherit it
        os.setpriority(os.PRIO_PROCESS, pg.postmaster_pid(), nice)
        # pg_ctl starts the postmaster in a session of its own, and with
        # autogroup scheduling (Debian's default) a session's processes
        # share one group that weighs as much as pgpulse's whatever their
        # nice: the nice orders them among themselves only. Giving the
        # groups nice 10 too (/proc/PID/autogroup) made things worse at
        # 1,000 targets in two runs (server CPU 0.67 -> 0.77-1.02 of a
        # core, scrape p99 up to 113 ms), perhaps because backends
        # preempted while holding locks make the others wait.
    pg.psql(f"CREATE ROLE {ROLE} LOGIN IN ROLE pg_monitor")
    for i in range(1, TABLES + 1):
        pg.psql(f"CREATE TABLE bench_t{i} (id int PRIMARY KEY, n int, note text);"
                f"INSERT INTO bench_t{i} SELECT g, g % 100, md5(g::text)"
                f"  FROM generate_series(1, {ROWS}) g;"
                f"UPDATE bench_t{i} SET n = n + 1 WHERE id <= {ROWS // 10};"
                f"ANALYZE bench_t{i}", dbname=DBNAME)
    return pg


def server_cpu_seconds(pgs):
    """User + system CPU time of the postmasters and their living children."""
    return sum(one_server_cpu_seconds(pg) for pg in pgs)


def one_server_cpu_seconds(pg):
    root, total = pg.postmaster_pid(), 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if int(entry) == root or int(fields[1]) == root:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds():
    """CPU seconds all cores spent on anything but idle and iowait."""
    return proc_stat_ticks(lambda t: sum(t) - t[3] - t[4])


def machine_steal_seconds():
    """CPU seconds the hypervisor gave to other guests while this one
    wanted them (steal): a slower machine that nothing here can see."""
    return proc_stat_ticks(lambda t: t[7])


def proc_stat_ticks(pick):
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]
    return pick(ticks) / os.sysconf("SC_CLK_TCK")


def role_backends(pgs):
    return sum(int(pg.scalar(f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{ROLE}'"))
               for pg in pgs)


# -- pgpulse ---------------------------------------------------------------------

class Pgpulse(compare.Process):
    """pgpulse watching N targets, on a free loopback port."""

    name = "pgpulse"
    stop_wait = 10

    def __init__(self, binary, dsns, tmpdir, extra=()):
        self.port = pgharness.free_port()
        self.log_path = os.path.join(tmpdir, f"pgpulse-{len(dsns)}.log")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DATA_SOURCE_", "PG_EXPORTER_", "PGPULSE_"))}
        argv = [binary, f"--web.listen-address=127.0.0.1:{self.port}", *extra]
        joined = ",".join(dsns)
        if len(joined) < ENV_STRING_MAX:
            env["DATA_SOURCE_NAME"] = joined
            self.dsn_via = "DATA_SOURCE_NAME"
        else:
            flags = os.path.join(tmpdir, f"flags-{len(dsns)}")
            with open(flags, "w") as f:
                f.writelines(f"--data-source.name={d}\n" for d in dsns)
            argv.append(f"--config.flags-file={flags}")
            self.dsn_via = "a flags file"
        nofile = len(dsns) * 2 + 1024

        def preexec():
            # Die with this script, and have a descriptor per connection.
            pgharness._die_with_parent()
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            want = nofile if hard == resource.RLIM_INFINITY else min(hard, nofile)
            if soft != resource.RLIM_INFINITY and soft < want:
                resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

        with open(self.log_path, "wb") as log:
            self.started = time.monotonic()
            self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=tmpdir,
                                         preexec_fn=preexec)

    def get(self, gzip=True, timeout=HTTP_TIMEOUT, into=None):
        """(status, Content-Encoding, body as sent, seconds) of one GET /metrics
        on a fresh connection; the time covers connect, request and the
        whole body.

        into: a bytearray the body is read into (and copied out of after
        the clock stops), so that the time is the server's and the wire's,
        not this client's: a fresh 3.5 MB bytes object for every scrape
        (new memory each time, as the window keeps them all) took more
        than half of the p50 at 1,000 targets (6.6 ms against 2.5). A body
        longer than into is read the plain way."""
        self.alive()
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"} if gzip else {})
            resp = conn.getresponse()
            length = resp.getheader("Content-Length")
            if into is not None and length is not None and int(length) <= len(into):
                view, got = memoryview(into), 0
                while got < int(length):
                    n = resp.readinto(view[got:int(length)])
                    if not n:
                        break
                    got += n
                took = time.perf_counter() - t0
                body = bytes(view[:got])
                view.release()
            else:
                body = resp.read()
                took = time.perf_counter() - t0
            return resp.status, resp.getheader("Content-Encoding", ""), body, took
        finally:
            conn.close()

    def log_problems(self):
        with open(self.log_path, errors="replace") as f:
            return [line.rstrip() for line in f if re.search(r"level=(?:warn|error)", line)]


# -- reading pages ---------------------------------------------------------------

# Only the few families the script needs, found with substring searches: a
# page of 1,000 targets is over 50 MB, too big for pgharness's parser or for
# a regular expression over the whole page while pgpulse is being measured.
SAMPLE = re.compile(rb"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^\n]*\})? (\S+)$", re.M)


def plain(body, encoding):
    return gzip_mod.decompress(body) if encoding == "gzip" else body


def family_values(text, name):
    """Values of the samples named name (no suffix) on a plain page.

    Only the stretch from the first to the last line of the family is
    searched; samples of one family are contiguous on a valid page, and
    the stretch holds every one of them even if they are not."""
    first, last = None, None
    for pre in (b"\n" + name + b"{", b"\n" + name + b" "):
        i = text.find(pre)
        if text.startswith(pre[1:]):
            i = -1
        elif i < 0:
            continue
        j = text.rfind(pre)
        j = j if j >= 0 else i
        first = i if first is None else min(first, i)
        last = j if last is None else max(last, j)
    if first is None:
        return []
    end = text.find(b"\n", last + 1)
    block = text[first + 1:end if end >= 0 else len(text)]
    return [float(v) for n, _, v in SAMPLE.findall(block) if n == name]


def up_count(text):
    return sum(1 for v in family_values(text, b"pg_up") if v == 1)


def up_count_of(body, encoding):
    """up_count of a response, inflating a gzip body only as far as the end
    of the pg_up family. Start-up is polled every 0.5 s while the stand-in
    servers are busy with their first backends: inflating and searching
    all 67 MB of the page at 1,000 targets took about 0.35 s of a core per
    poll, CPU the measurement itself took from the servers."""
    if encoding != "gzip":
        return up_count(body)
    z = zlib.decompressobj(16 + zlib.MAX_WBITS)
    text, step, header = bytearray(), 1 << 16, -1
    for at in range(0, len(body), step):
        seen = len(text)
        text += z.decompress(body[at:at + step])
        if header < 0:  # only the new bytes and the line they may finish
            header = text.find(b"\n# TYPE pg_up ", max(0, seen - 64))
        # the family ends where the next one's comments begin
        if header >= 0 and text.find(b"\n# ", max(header + 1, seen - 2)) >= 0:
            return up_count(bytes(text))
    return up_count(bytes(text + z.flush()))


def loop_lag_samples(text):
    """{sample name and labels: value} of every family named *loop_lag*."""
    out = {}
    i = text.find(b"loop_lag")
    while i >= 0:
        start = text.rfind(b"\n", 0, i) + 1
        end = text.find(b"\n", i)
        end = end if end >= 0 else len(text)
        m = SAMPLE.fullmatch(text[start:end])
        if m and b"loop_lag" in m.group(1):
            out[(m.group(1) + (m.group(2) or b"")).decode()] = float(m.group(3))
        i = text.find(b"loop_lag", end)
    return out


def page_facts(text):
    """(largest data age, {loop-lag sample: value}) of one plain page."""
    ages = family_values(text, b"pgpulse_target_data_age_seconds")
    return (max(ages) if ages else None), loop_lag_samples(text)


def loop_lag_summary(pages_lag, skip=0):
    """One cell for the loop-lag self-metric over the window's pages, or None.

    A gauge: the largest value seen on the pages after the first skip (a
    gauge of the last seconds' maximum, read at the window's start, shows
    the start-up before it). A histogram or summary: the mean over the
    window from _sum and _count, and, with a le="0.025" bucket, how many
    ticks were later than 25 ms in the window."""
    if not any(pages_lag):
        return None
    first, last = pages_lag[0], pages_lag[-1]
    names = sorted({k.split("{")[0] for p in pages_lag for k in p})
    parts = []

    def fmt(name, v):
        return f"{v * 1000:.3g} ms" if "seconds" in name else f"{v:.3g}"
    sums = [k for k in last if k.split("{")[0].endswith("_sum")]
    for s in sums:
        c = s.replace("_sum", "_count", 1)
        if c in last:
            dn = last[c] - first.get(c, 0)
            ds = last[s] - first.get(s, 0)
            if dn > 0:
                parts.append(f"mean {fmt(s, ds / dn)}")
            b = c.replace("_count", "_bucket", 1) + '{le="0.025"}'
            if dn > 0 and b in last:
                late = dn - (last[b] - first.get(b, 0))
                parts.append(f"{late:.0f} of {dn:.0f} ticks over 25 ms")
    settled = pages_lag[skip:] or pages_lag
    plain_names = [n for n in names if not n.endswith(("_sum", "_count", "_bucket"))]
    for n in plain_names:
        vals = [v for p in settled for k, v in p.items() if k.split("{")[0] == n]
        if vals:
            label = "max" if len(plain_names) == 1 else f"{n} max"
            parts.append(f"{label} {fmt(n, max(vals))}")
    return ", ".join(parts) or "present (" + ", ".join(names) + ")"


def percentile(sorted_vals, p):
    """Nearest-rank percentile."""
    if not sorted_vals:
        return None
    k = max(1, math.ceil(p / 100 * len(sorted_vals)))
    return sorted_vals[k - 1]


# -- one N -----------------------------------------------------------------------

def target_dsns(pgs, n, per_server):
    """n DSNs, each a distinct loopback address; target i on stand-in
    i // per_server."""
    return [f"postgresql://{ROLE}@{a}:{pgs[i // per_server].port}/{DBNAME}?sslmode=disable"
            for i, a in enumerate(loopback_addresses(n))]


def run_one(args, binary, pgs, n, tmpdir):
    r = {"n": n, "servers": (n + args.per_server - 1) // args.per_server}
    dsns = target_dsns(pgs, n, args.per_server)
    who = f"{n:,} target{'' if n == 1 else 's'}"
    note(f"{who}: starting pgpulse")
    p = Pgpulse(binary, dsns, tmpdir, args.pgpulse_arg)
    r["dsn_via"] = p.dsn_via
    try:
        # 1. until every target shows pg_up 1
        deadline = p.started + args.up_timeout
        best, r["up_s"] = 0, None
        while True:
            try:
                status, enc, body, _ = p.get()
                if status == 200:
                    best = max(best, up_count_of(body, enc))
                    if best >= n:
                        r["up_s"] = time.monotonic() - p.started
                        break
            except (OSError, http.client.HTTPException):
                pass  # not listening yet
            if time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        r["up_best"] = best
        if r["up_s"] is None:
            note(f"{who}: only {best} showed pg_up 1 within {args.up_timeout} s;"
                 " measuring anyway")
        else:
            note(f"{who}: all pg_up 1 after {r['up_s']:.1f} s")

        # 2. the window: a gzip scrape every --scrape-every seconds
        note(f"{who}: {args.window:g} s window, a gzip scrape every {args.scrape_every} s")
        times, at, bodies, errors = [], [], [], []
        server0, busy0 = server_cpu_seconds(pgs), machine_busy_seconds()
        steal0 = machine_steal_seconds()
        cpu0, t0 = p.cpu_seconds(), time.monotonic()
        tick = 0
        into = bytearray(READ_BUFFER)  # zero-filled: its pages are touched now
        while True:
            due = t0 + tick * args.scrape_every
            if due >= t0 + args.window:
                break
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            tick += 1
            try:
                status, enc, body, took = p.get(into=into)
            except (OSError, http.client.HTTPException) as e:
                errors.append(f"{type(e).__name__}: {e}")
                continue
            if status != 200:
                errors.append(f"status {status}")
                continue
            times.append(took * 1000)
            at.append(due - t0)
            bodies.append((body, enc))
        time.sleep(max(0.0, t0 + args.window - time.monotonic()))
        wall = time.monotonic() - t0
        r["cpu"] = (p.cpu_seconds() - cpu0) / wall
        r["machine_cpu"] = (machine_busy_seconds() - busy0) / wall
        r["steal"] = (machine_steal_seconds() - steal0) / wall
        r["server_cpu"] = (server_cpu_seconds(pgs) - server0) / wall
        r["rss"] = p.proc_status("VmRSS") * 1024
        r["hwm"] = p.proc_status("VmHWM") * 1024
        r["load"] = os.getloadavg()[0]
        r["backends"] = role_backends(pgs)

        # 3. sizes, after the window so they do not disturb it
        status, enc, body_gz, _ = p.get(gzip=True)
        r["size_gzip"], r["encoding_gzip"] = len(body_gz), enc
        status, enc, body_plain, _ = p.get(gzip=False)
        r["size_plain"], r["encoding_plain"] = len(body_plain), enc
        r["samples"] = sum(1 for line in body_plain.split(b"\n")
                           if line and not line.startswith(b"#"))
        del body_gz, body_plain

        # 4. the window's pages, read after it so reading them costs the
        # window no CPU
        ages, lags = [], []
        for body, enc in bodies:
            age, lag = page_facts(plain(body, enc))
            if age is not None:
                ages.append(age)
            lags.append(lag)
        del bodies
        slowest = sorted(zip(times, at), reverse=True)[:3]
        times.sort()
        r.update({
            "slowest": slowest,
            "scrapes": len(times) + len(errors),
            "errors": errors,
            "p50": percentile(times, 50), "p90": percentile(times, 90),
            "p99": percentile(times, 99), "max": times[-1] if times else None,
            "slow": sum(1 for t in times if t > GOAL_MAX_MS),
            "age": max(ages) if ages else None,
            "loop_lag": loop_lag_summary(lags, math.ceil(LAG_GAUGE_S / args.scrape_every)),
        })
        r["log_problems"] = p.log_problems()
        return r
    except BaseException:
        print(f"--- last lines of pgpulse's log ({who}):\n{p.log_tail()}",
              file=sys.stderr)
        raise
    finally:
        r["clean_exit"] = p.stop()
        # The next N starts from a server without this pgpulse's backends.
        try:
            pgharness.wait_for(lambda: role_backends(pgs) == 0, 60,
                               interval=0.5, what=f"{ROLE}'s backends to exit")
        except Exception as e:  # noqa: BLE001  (reported by the next run, if it matters)
            note(f"{e}")


# -- the report ------------------------------------------------------------------

def ms(x):
    if x is None:
        return "n/a"
    return f"{x:.3g}" if x < 1000 else f"{x:,.0f}"


def report(results, facts, args, started):
    at = results[-1]
    goal_n = at["n"]
    yes = lambda ok: "✓" if ok else "✗"  # noqa: E731
    mib = lambda b: f"{b / 1048576:.1f}"  # noqa: E731
    rows = []

    def row(label, key_or_fn, fmt=str, goal="", check=None):
        fn = key_or_fn if callable(key_or_fn) else (lambda r: r.get(key_or_fn))
        cells = []
        for r in results:
            v = fn(r)
            cells.append("n/a" if v is None else fmt(v))
        met = ""
        if check is not None:
            met = yes(check(at))
        rows.append(f"| {label} | " + " | ".join(cells) + f" | {goal} | {met} |")

    def up_cell(r):
        if r["up_s"] is None:
            return f"not all: {r['up_best']:,} of {r['n']:,} after {args.up_timeout} s"
        return f"{r['up_s']:.1f}"
    row("time until every target shows pg_up 1, s", up_cell, goal=f"≤ {GOAL_UP_S}",
        check=lambda r: r["up_s"] is not None and r["up_s"] <= GOAL_UP_S)
    row("gzip scrape: p50, ms", "p50", ms)
    row("gzip scrape: p90, ms", "p90", ms)
    row("gzip scrape: p99, ms", "p99", ms, goal=f"≤ {GOAL_P99_MS}",
        check=lambda r: r["p99"] is not None and r["p99"] <= GOAL_P99_MS and not r["errors"])
    row("gzip scrape: max, ms", "max", ms, goal=f"≤ {GOAL_MAX_MS}",
        check=lambda r: r["max"] is not None and r["max"] <= GOAL_MAX_MS and not r["errors"])
    row("the three slowest scrapes: ms at s into the window",
        lambda r: ", ".join(f"{ms(t)} at {a:.0f}" for t, a in r["slowest"]))
    row(f"gzip scrapes over {GOAL_MAX_MS} ms, failed / made",
        lambda r: f"{r['slow']}, {len(r['errors'])} / {r['scrapes']}")
    row("response body, gzip, bytes", "size_gzip", lambda v: f"{v:,}")
    row("response body, plain, bytes", "size_plain", lambda v: f"{v:,}")
    row("samples on the page", "samples", lambda v: f"{v:,}")
    row("pgpulse CPU, fraction of one core", "cpu", lambda v: f"{v:.3f}",
        goal=f"< {GOAL_CPU}", check=lambda r: r["cpu"] < GOAL_CPU)
    row("RSS (VmRSS) at the end, MiB", "rss", mib, goal="≤ 100 MB (95.4 MiB)",
        check=lambda r: r["rss"] <= GOAL_RSS_BYTES)
    row("peak RSS (VmHWM), MiB", "hwm", mib, goal="≤ 100 MB (95.4 MiB)",
        check=lambda r: r["hwm"] <= GOAL_RSS_BYTES)
    row("largest pgpulse_target_data_age_seconds, s", "age", lambda v: f"{v:.1f}",
        goal=f"< {GOAL_AGE_S} (two intervals)",
        check=lambda r: r["age"] is not None and r["age"] < GOAL_AGE_S)
    row("loop lag (self-metric)", "loop_lag")
    row("server backends of pgpulse's role at the end", "backends", lambda v: f"{v:,}")
    row("PostgreSQL server CPU (all its processes), fraction of one core", "server_cpu",
        lambda v: f"{v:.3f}")
    row(f"whole machine CPU busy, cores of {os.cpu_count()}", "machine_cpu",
        lambda v: f"{v:.2f}")
    row("of which stolen by the hypervisor (steal), cores", "steal", lambda v: f"{v:.2f}")
    row("load average (1 min) at the end", "load", lambda v: f"{v:.2f}")

    notes = []
    if goal_n != GOAL_N:
        notes.append(f"- The goals are for {GOAL_N:,} targets; this run's largest N is "
                     f"{goal_n:,}, so the ✓/✗ column is for {goal_n:,} and says nothing "
                     f"about {GOAL_N:,}.")
    for r in results:
        n = f"{r['n']:,} target{'' if r['n'] == 1 else 's'}"
        if r["errors"]:
            notes.append(f"- {n}: {len(r['errors'])} scrapes failed, first: {r['errors'][0]}")
        if r["encoding_gzip"] != "gzip":
            notes.append(f"- {n}: no gzip when asked (Content-Encoding "
                         f"{r['encoding_gzip']!r})")
        if r["encoding_plain"]:
            notes.append(f"- {n}: compressed ({r['encoding_plain']}) without being asked")
        if r["log_problems"]:
            kinds = {}
            for line in r["log_problems"]:
                m = re.search(r'msg="([^"]*)"', line)
                e = re.search(r'err="([^"]*)"', line)
                k = (m.group(1) if m else line[:80]) + (f" ({e.group(1)})" if e else "")
                kinds[k] = kinds.get(k, 0) + 1
            notes.append(f"- {n}: pgpulse logged {len(r['log_problems'])} warnings or errors: "
                         + "; ".join(f"{c}× {k}" for k, c in
                                     sorted(kinds.items(), key=lambda kv: -kv[1])[:5])
                         + f"; first: `{r['log_problems'][0]}`")
        if not r["clean_exit"]:
            notes.append(f"- {n}: pgpulse did not exit within 10 s of SIGTERM and was killed")
        if r["dsn_via"] != "DATA_SOURCE_NAME":
            notes.append(f"- {n}: DSNs passed in {r['dsn_via']} (too long for one"
                         " environment variable)")

    m = facts["machine"]
    cmd = "python3 bench/scale.py" + "".join(f" {x}" for x in sys.argv[1:])
    per = "1 s" if args.scrape_every == 1 else f"{args.scrape_every:g} s"
    servers = ", ".join(str(r["servers"]) for r in results)
    lines = [
        f"# pgpulse at {', '.join(format(r['n'], ',') for r in results)} targets,"
        f" {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `{cmd}` (took {facts['elapsed']:.0f} s)",
        "",
        f"- machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']}, Linux {m['kernel']}",
        f"- pgpulse: {m['pgpulse']}, built-in catalog ({INTERVAL} s intervals)",
        f"- PostgreSQL {facts['postgres']}: servers listening on `*`, at most"
        f" {args.per_server:,} targets each ({servers} server(s) per N) at nice"
        f" {args.server_nice}, each target a distinct 127.x.y.z address from 127.0.1.1 on,"
        f" {TABLES} tables of {ROWS:,} rows in each server; everything on loopback",
        f"- per N: a fresh pgpulse; once every target shows pg_up 1, a {args.window:g} s window"
        f" with a gzip scrape every {per} on a fresh connection (Python http.client, timed"
        " around connect, request and the whole body; nearest-rank percentiles)",
        "",
        "| measure | " + " | ".join(f"{r['n']:,} target{'' if r['n'] == 1 else 's'}"
                                     for r in results)
        + f" | goal at {GOAL_N:,} | holds at {goal_n:,} |",
        "| --- | " + " | ".join("---:" for _ in results) + " | --- | :---: |",
        *rows,
    ]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pgpulse", default=os.environ.get("PGPULSE_BIN"),
                    help="pgpulse binary (default: $PGPULSE_BIN, else build one)")
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build-bench"),
                    help="where to build pgpulse when --pgpulse is not given")
    ap.add_argument("--targets", default=None,
                    help="comma-separated target counts (default 1,100,500,1000)")
    ap.add_argument("--window", type=float, default=None,
                    help="seconds of scraping per N once all are up (default 60)")
    ap.add_argument("--scrape-every", type=float, default=1.0,
                    help="seconds between gzip scrapes in the window (default 1)")
    ap.add_argument("--up-timeout", type=float, default=120,
                    help="give up waiting for all pg_up 1 after this long, and measure"
                         " anyway (default 120)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 1,100 targets and a 20 s window unless given")
    ap.add_argument("--per-server", type=int, default=100,
                    help="targets per stand-in server (default 100; servers are added as"
                         " N grows)")
    ap.add_argument("--server-nice", type=int, default=10,
                    help="nice value of the stand-in servers (default 10; 0 to leave them"
                         " at pgpulse's priority)")
    ap.add_argument("--pgpulse-arg", action="append", default=[], metavar="FLAG",
                    help="one more flag for pgpulse, as --pgpulse-arg=--collection.max-connecting=32"
                         " (repeatable; printed in the report)")
    ap.add_argument("--no-save", action="store_true", help="print only, write no results file")
    args = ap.parse_args()
    if args.targets is None:
        args.targets = "1,100" if args.quick else "1,100,500,1000"
    if args.window is None:
        args.window = 20 if args.quick else 60
    try:
        targets = [int(x) for x in args.targets.split(",")]
        if not targets or min(targets) < 1:
            raise ValueError
    except ValueError:
        ap.error(f"--targets wants positive integers separated by commas, not {args.targets!r}")

    # SIGTERM and SIGHUP unwind like Ctrl-C, so the finally blocks stop
    # pgpulse and pgharness's atexit hook removes the server.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _: sys.exit(128 + signum))
    # Ctrl-C too, even when started in the background by a shell that
    # ignores SIGINT for its background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    binary = os.path.abspath(args.pgpulse) if args.pgpulse else compare.build_pgpulse(
        args.build_dir)
    tmpdir = tempfile.mkdtemp(prefix="pgpulse-scale-")
    results = []
    pgs = []
    try:
        nservers = (max(targets) + args.per_server - 1) // args.per_server
        each = min(max(targets), args.per_server)
        note(f"starting {nservers} PostgreSQL 15 server(s) (max_connections {each + 50})")
        for _ in range(nservers):
            pgs.append(start_server(each, args.server_nice))
        facts = {"postgres": pgs[0].scalar("SHOW server_version")}
        for n in targets:
            results.append(run_one(args, binary, pgs, n, tmpdir))
    finally:
        for pg in pgs:
            pg.destroy()
        shutil.rmtree(tmpdir, ignore_errors=True)
    facts["machine"] = compare.machine_facts(binary)
    facts["elapsed"] = time.monotonic() - t0
    text = report(results, facts, args, started)
    compare.publish(text, started, "scale-", args.no_save, note)


if __name__ == "__main__":
    main()
