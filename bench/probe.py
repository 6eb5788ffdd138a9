#!/usr/bin/env python3
"""/probe at 200 targets against /metrics of one target, in one run.

The claim to check: a pgpulse probing 200 servers answers each probe as
fast as a pgpulse watching one server answers /metrics, because a probe is
served from that target's cached page (postgres_exporter opens a
connection and runs every query per probe).

One PostgreSQL 15 server listening on '*' stands in for many servers, as
in scale.py: each 127.x.y.z loopback address is a distinct host:port.

1. Baseline: pgpulse with one target (DATA_SOURCE_NAME); over the window,
   GET /metrics (gzip) at --rate per second, each on a fresh connection.
2. Probes: pgpulse with no data source; each of N targets is probed once
   (in parallel, as Prometheus' first scrapes would) and the script waits
   until every probe answers pg_up 1; then, over the same window at the
   same rate, GET /probe?target=<the next target, round robin> (gzip).
   Also: the server's backends from pgpulse at the start and the end of
   the window (persistent connections: they stay N), pgpulse's CPU (share
   of one core) over the window and its VmRSS at the end.

Latency is time.perf_counter around connect, request and reading the body:
p50, p99 and max (nearest rank). The report is printed and written to
bench/results/probe-<date>.md.

    python3 bench/probe.py                    # 200 targets, 60 s windows
    python3 bench/probe.py --targets 50 --window 10

Run as root (the server runs as `postgres`) or as a user that can initdb.
"""

import argparse
import concurrent.futures
import datetime
import gzip as gzip_mod
import http.client
import os
import signal
import sys
import tempfile
import time
import urllib.parse

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import compare  # noqa: E402  (build_pgpulse, machine_facts, num, ratio, results_path)
import scale  # noqa: E402  (Pgpulse, start_server, loopback_addresses, percentile, ROLE)


def note(msg):
    print(f"probe: {msg}", file=sys.stderr, flush=True)


def fetch(port, path, timeout=30):
    """(status, plain body, seconds) of one gzip GET on a fresh connection."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept-Encoding": "gzip"})
        resp = conn.getresponse()
        body = resp.read()
        took = time.perf_counter() - t0
        if resp.getheader("Content-Encoding", "") == "gzip":
            body = gzip_mod.decompress(body)
        return resp.status, body, took
    finally:
        conn.close()


def probe_path(dsn):
    return "/probe?" + urllib.parse.urlencode({"target": dsn})


def window(p, paths, seconds, rate):
    """Requests paths round robin at rate per second for seconds; returns
    the latencies and pgpulse's CPU share over the window."""
    times, i, lags = [], 0, []
    cpu0, t0 = p.cpu_seconds(), time.monotonic()
    next_at = t0
    while time.monotonic() - t0 < seconds:
        status, body, took = fetch(p.port, paths[i % len(paths)])
        if status != 200 or b"pg_up 1" not in body:
            raise RuntimeError(f"{paths[i % len(paths)][:60]}: {status} {body[:200]!r}")
        times.append(took)
        if i % int(rate) == 0:  # the exporter's own page, once a second
            lags.append(scale.loop_lag_samples(fetch(p.port, "/metrics")[1]))
        i += 1
        next_at += 1 / rate
        time.sleep(max(0, next_at - time.monotonic()))
    cpu = (p.cpu_seconds() - cpu0) / (time.monotonic() - t0)
    return sorted(times), cpu, scale.loop_lag_summary(lags)


def backends(pg):
    return int(pg.scalar(
        f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{scale.ROLE}'"))


def summary(times):
    return {"n": len(times), "p50": scale.percentile(times, 50),
            "p99": scale.percentile(times, 99), "max": times[-1]}


def run(args, binary, pg, tmpdir):
    dsns = [f"postgresql://{scale.ROLE}@{a}:{pg.port}/{scale.DBNAME}?sslmode=disable"
            for a in scale.loopback_addresses(args.targets)]
    r = {}
    note("baseline: /metrics of one target")
    p = scale.Pgpulse(binary, dsns[:1], tmpdir)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if b"pg_up 1" in fetch(p.port, "/metrics")[1]:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        times, cpu, lag = window(p, ["/metrics"], args.window, args.rate)
        r["metrics"] = dict(summary(times), cpu=cpu, lag=lag, rss=p.proc_status("VmRSS") * 1024)
    finally:
        p.stop()

    note(f"probes: {args.targets} targets through /probe")
    p = scale.Pgpulse(binary, [], tmpdir)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                fetch(p.port, "/-/healthy")
                break
            except OSError:
                time.sleep(0.2)
        paths = [probe_path(d) for d in dsns]
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            first = list(pool.map(lambda path: fetch(p.port, path, timeout=60), paths))
        r["first_s"] = time.monotonic() - t0
        r["first_up"] = sum(1 for s, b, _ in first if s == 200 and b"pg_up 1" in b)
        firsts = sorted(t for _, _, t in first)
        r["first_p50"], r["first_max"] = scale.percentile(firsts, 50), firsts[-1]
        r["backends_before"] = backends(pg)
        times, cpu, lag = window(p, paths, args.window, args.rate)
        r["backends_after"] = backends(pg)
        r["probe"] = dict(summary(times), cpu=cpu, lag=lag, rss=p.proc_status("VmRSS") * 1024)
    finally:
        p.stop()
    return r


def ms(x):
    return f"{x * 1000:.2f}"


def report(r, facts, args, started):
    m, pr = r["metrics"], r["probe"]
    lines = [
        f"# /probe at {args.targets} targets vs /metrics of one ({started:%Y-%m-%d})",
        "",
        f"Machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['memory']}, Linux "
        f"{facts['kernel']}. PostgreSQL {facts['postgres']} on loopback. {facts['pgpulse']}.",
        "",
        f"Command: `python3 bench/probe.py --targets {args.targets} --window {args.window:g} "
        f"--rate {args.rate:g}`",
        "",
        f"Each window: {args.window:g} s of gzip GETs at {args.rate:g}/s, a fresh connection "
        "each; probes go round robin over every target. The two windows run one after the "
        "other: anything else busy on the machine meanwhile shows in one column only (the "
        "loop-lag row tells a stalled pgpulse from a busy machine).",
        "",
        "| | /metrics, 1 target | /probe, round robin | ratio |",
        "| --- | ---: | ---: | ---: |",
        f"| requests | {m['n']} | {pr['n']} | |",
        f"| p50 ms | {ms(m['p50'])} | {ms(pr['p50'])} | {compare.ratio(pr['p50'], m['p50'])} |",
        f"| p99 ms | {ms(m['p99'])} | {ms(pr['p99'])} | {compare.ratio(pr['p99'], m['p99'])} |",
        f"| max ms | {ms(m['max'])} | {ms(pr['max'])} | {compare.ratio(pr['max'], m['max'])} |",
        f"| pgpulse CPU (share of a core) | {m['cpu']:.3f} | {pr['cpu']:.3f} | |",
        f"| pgpulse RSS MiB | {m['rss'] / 1048576:.1f} | {pr['rss'] / 1048576:.1f} | |",
        f"| event-loop lag (self-metric) | {m['lag']} | {pr['lag']} | |",
        "",
        f"First probes: {args.targets} in parallel (32 at a time) took {r['first_s']:.2f} s in "
        f"all; {r['first_up']} answered pg_up 1; each waited for its target's first collection "
        f"(p50 {ms(r['first_p50'])} ms, max {ms(r['first_max'])} ms).",
        "",
        f"Backends of pgpulse on the server: {r['backends_before']} before the probe window, "
        f"{r['backends_after']} after it ({pr['n']} probes): one persistent connection per "
        "target, none per probe.",
    ]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pgpulse", default=os.environ.get("PGPULSE_BIN"),
                    help="pgpulse binary (default: $PGPULSE_BIN, else build one)")
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build-bench"))
    ap.add_argument("--targets", type=int, default=200)
    ap.add_argument("--window", type=float, default=60)
    ap.add_argument("--rate", type=float, default=20, help="requests per second (default 20)")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _: sys.exit(128 + signum))
    started = datetime.datetime.now(datetime.timezone.utc)
    binary = os.path.abspath(args.pgpulse) if args.pgpulse else compare.build_pgpulse(
        args.build_dir)
    tmpdir = tempfile.mkdtemp(prefix="pgpulse-probe-")
    pg = None
    try:
        note("starting PostgreSQL 15")
        pg = scale.start_server(args.targets)
        facts = dict(compare.machine_facts(binary), postgres=pg.scalar("SHOW server_version"))
        r = run(args, binary, pg, tmpdir)
    finally:
        if pg is not None:
            pg.destroy()
    text = report(r, facts, args, started)
    compare.publish(text, started, "probe-", args.no_save, note)


if __name__ == "__main__":
    main()
