#!/usr/bin/env python3
"""pgpulse next to postgres_exporter, in one run, on one PostgreSQL server.

What it measures, for each exporter, both watching the same throwaway
PostgreSQL 15 server (a few tables with rows, pg_stat_statements preloaded,
log_connections on), each logged in as its own role:

1. Resident memory: VmRSS from /proc/PID/status once both are up and idle,
   after a minute of Prometheus-like scraping, and after the wrk runs (with
   VmHWM, the peak).
2. Load on the server at a Prometheus-like rate: both exporters run side by
   side for one window (60 s) in which each is scraped every 15 s (with
   Accept-Encoding: gzip, as Prometheus asks). SQL statements are the sum of
   pg_stat_statements calls of the exporter's role, after
   pg_stat_statements_reset() at the start of the window, and server time is
   the sum of their planning and execution time (total_plan_time +
   total_exec_time); connections opened and errors are counted per role from
   the server log written during the window.
3. /metrics under load: `wrk -t2 -c16 -d10s --latency` against each exporter
   in turn, plain and with `-H 'Accept-Encoding: gzip'`: requests/s, p50,
   p99, errors, the exporter's CPU time (/proc/PID/stat) and its server time
   per response, and the statements and connections it caused on the server
   during that run. The body size of one response of each kind is measured
   separately.

What the exporters collect (--queries):

- `tables` (the default, as in earlier results): pgpulse its built-in
  catalog; postgres_exporter its defaults plus the two per-table
  namespaces of Debian's example queries.yaml.
- `example`: both read the whole of Debian's example queries.yaml with
  --extend.query-path, and pgpulse runs the 0.11 compatibility catalog
  (queries/compat/postgres_exporter-0.11.yaml) in place of its own, so the
  two pages carry the same families. The file's pg_stat_statements
  namespace fails on PostgreSQL 13 and later in both (each says so once
  per run of it).

It prints a Markdown report (machine facts, one table, ratios pgpulse /
postgres_exporter) and writes it to bench/results/<date>.md
(example-<date>.md with --queries example). Everything it starts is
stopped on exit, failure, Ctrl-C or SIGTERM.

    python3 bench/compare.py            # builds pgpulse (Release) in build-bench/
    python3 bench/compare.py --pgpulse /path/to/pgpulse
    python3 bench/compare.py --queries example

Needs: cmake and the build dependencies (unless --pgpulse), postgresql-15
(with its contrib module pg_stat_statements), prometheus-postgres-exporter,
wrk. Run as root (servers then run as `postgres`) or as a user that can
run initdb.
"""

import argparse
import datetime
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import pgharness  # noqa: E402  (PgServer, free_port, wait_for, parse_exposition)

PG_EXPORTER = os.environ.get("POSTGRES_EXPORTER_BIN", "/usr/bin/prometheus-postgres-exporter")
# postgres_exporter 0.11.1 has no per-table collector; its package ships the
# per-table queries as an example for --extend.query-path. We use those two.
PG_EXPORTER_QUERIES = "/usr/share/doc/prometheus-postgres-exporter/examples/queries.yaml"
PG_EXPORTER_TABLE_QUERIES = ("pg_stat_user_tables", "pg_statio_user_tables")
COMPAT_CATALOG = os.path.join(REPO, "queries", "compat", "postgres_exporter-0.11.yaml")
WRK = os.environ.get("WRK", "wrk")

ROLES = {"pgpulse": "bench_pgpulse", "postgres_exporter": "bench_pgexporter"}
NAMES = ("pgpulse", "postgres_exporter")
TABLES, ROWS = 8, 20000


def note(msg):
    print(f"compare: {msg}", file=sys.stderr, flush=True)


# -- the exporters ---------------------------------------------------------------

class Process:
    """What the benchmarks read of a process they started (self.proc, with
    its output in self.log_path; self.name says which in messages)."""

    name = "process"
    stop_wait = 5

    def alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                               f"{self.log_tail()}")

    def proc_status(self, field):
        """A field of /proc/PID/status in KiB (VmRSS, VmHWM)."""
        self.alive()
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise RuntimeError(f"no {field} in /proc/{self.proc.pid}/status")

    def cpu_seconds(self):
        """User + system CPU time the process has used so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines=20):
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def stop(self):
        """SIGTERM; SIGKILL after stop_wait seconds. False if it had to be killed."""
        if self.proc.poll() is not None:
            return True
        self.proc.terminate()
        try:
            self.proc.wait(self.stop_wait)
            return True
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return False


class Exporter(Process):
    """An exporter binary as a subprocess on a free loopback port."""

    def __init__(self, name, argv, dsn, tmpdir):
        self.name = name
        self.port = pgharness.free_port()
        self.log_path = os.path.join(tmpdir, f"{name}.log")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DATA_SOURCE_", "PG_EXPORTER_"))}
        env["DATA_SOURCE_NAME"] = dsn
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                argv + [f"--web.listen-address=127.0.0.1:{self.port}"], env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=tmpdir)

    def url(self, path="/metrics"):
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path="/metrics", gzip=False, timeout=30):
        """(status, headers, body as sent) of one GET."""
        self.alive()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Accept-Encoding": "gzip"} if gzip else {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()


def build_pgpulse(build_dir):
    note(f"building pgpulse (Release) in {build_dir}")
    for argv in (["cmake", "-S", REPO, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release"],
                 ["cmake", "--build", build_dir, "-j", str(os.cpu_count() or 1),
                  "--target", "pgpulse"]):
        p = subprocess.run(argv, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"compare: {' '.join(argv)} failed:\n{p.stdout}{p.stderr}")
    return os.path.join(build_dir, "pgpulse")


def build_type(binary):
    """CMAKE_BUILD_TYPE from the CMakeCache.txt next to binary, if any."""
    try:
        with open(os.path.join(os.path.dirname(binary), "CMakeCache.txt")) as f:
            m = re.search(r"^CMAKE_BUILD_TYPE:STRING=(.*)$", f.read(), re.M)
    except OSError:
        return "unknown"
    return (m.group(1) if m else "") or "none"


def table_queries_file(tmpdir):
    """The per-table queries of Debian's example queries.yaml, or None."""
    try:
        with open(PG_EXPORTER_QUERIES) as f:
            text = f.read()
    except OSError:
        return None
    # Top-level keys start in column 0; a block runs to the next one.
    blocks = re.split(r"^(?=[A-Za-z_])", text, flags=re.M)
    keep = [b for b in blocks if b.split(":", 1)[0] in PG_EXPORTER_TABLE_QUERIES]
    if len(keep) != len(PG_EXPORTER_TABLE_QUERIES):
        return None
    path = os.path.join(tmpdir, "table-queries.yaml")
    with open(path, "w") as f:
        f.write("".join(keep))
    return path


# -- the server ------------------------------------------------------------------

def start_server():
    pg = pgharness.PgServer(settings={
        "shared_preload_libraries": "'pg_stat_statements'",
        "pg_stat_statements.track": "top",
        "pg_stat_statements.track_planning": "on",
        "log_connections": "on",
        "log_line_prefix": "'%m [%p] user=%u '",
    })
    pg.psql("CREATE EXTENSION pg_stat_statements")
    for role in ROLES.values():
        pg.psql(f"CREATE ROLE {role} LOGIN IN ROLE pg_monitor")
    for i in range(1, TABLES + 1):
        pg.psql(f"CREATE TABLE bench_t{i} (id int PRIMARY KEY, n int, note text);"
                f"INSERT INTO bench_t{i} SELECT g, g % 100, md5(g::text)"
                f"  FROM generate_series(1, {ROWS}) g;"
                f"UPDATE bench_t{i} SET n = n + 1 WHERE id <= {ROWS // 10};"
                f"ANALYZE bench_t{i}")
    return pg


class Window:
    """What each role did on the server between start() and stop()."""

    def __init__(self, pg):
        self.pg = pg

    def start(self):
        self.pg.psql("SELECT pg_stat_statements_reset()")
        self.log_offset = len(self.pg.read_log())
        self.t0 = time.monotonic()
        return self

    def stop(self):
        """role -> {statements, server_ms, connections, errors}."""
        rows = self.pg.psql(
            "SELECT r.rolname, sum(s.calls), sum(s.total_plan_time + s.total_exec_time)"
            "  FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid GROUP BY 1")
        stats = {name: (int(n), float(ms)) for name, n, ms in rows}
        log = self.pg.read_log()[self.log_offset:]
        out = {}
        for role in ROLES.values():
            out[role] = {
                "statements": stats.get(role, (0, 0.0))[0],
                "server_ms": stats.get(role, (0, 0.0))[1],
                "connections": len(re.findall(
                    rf"connection authorized: user={role}\b", log)),
                "errors": len(re.findall(rf"user={role} (?:ERROR|FATAL):", log)),
            }
        return out


# -- wrk -------------------------------------------------------------------------

def wrk_ms(text):
    """wrk's duration ("812.00us", "1.20ms", "2.01s", "1.00m") in ms."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"unexpected wrk duration {text!r}")
    scale = {"us": 0.001, "ms": 1, "s": 1000, "m": 60000, "h": 3600000}[m.group(2)]
    return float(m.group(1)) * scale


def run_wrk(url, seconds, gzip):
    argv = [WRK, "-t2", "-c16", f"-d{seconds}s", "--latency"]
    if gzip:
        argv += ["-H", "Accept-Encoding: gzip"]
    p = subprocess.run(argv + [url], capture_output=True, text=True, timeout=seconds + 60)
    out = p.stdout
    if p.returncode != 0 or "Requests/sec" not in out:
        raise RuntimeError(f"{' '.join(argv)} {url} failed:\n{out}{p.stderr}")

    def find(pattern, default=None):
        m = re.search(pattern, out, re.M)
        return m.group(1) if m else default
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(find(r"^Requests/sec:\s+([\d.]+)")),
        "requests": int(find(r"^\s*(\d+) requests in")),
        "p50": wrk_ms(find(r"^\s*50%\s+(\S+)")),
        "p99": wrk_ms(find(r"^\s*99%\s+(\S+)")),
        "non2xx": int(find(r"Non-2xx or 3xx responses: (\d+)", "0")),
        "sockerr": sum(int(x) for x in sock.groups()) if sock else 0,
        "timeouts": int(sock.group(4)) if sock else 0,
    }


# -- the run ---------------------------------------------------------------------

def wait_full_page(exp, timeout=60):
    """Waits until exp serves a 200 page with pg_up 1 and per-table series."""
    def ready():
        status, _, body = exp.get(timeout=30)
        page = pgharness.parse_exposition(body.decode())
        return (status == 200 and page.find("pg_up") and page.value("pg_up") == 1
                and page.find("pg_stat_user_tables_n_live_tup"))
    pgharness.wait_for(ready, timeout, interval=0.5, what=f"{exp.name} to serve a full page")


def measure(args, pgpulse_bin, tmpdir):
    r = {n: {} for n in NAMES}  # results per exporter
    note("starting PostgreSQL 15")
    pg = start_server()
    exps = {}
    pgpulse_args = []
    if args.queries == "example":
        if not os.path.exists(PG_EXPORTER_QUERIES):
            raise RuntimeError(f"--queries example: {PG_EXPORTER_QUERIES} not found")
        queries = PG_EXPORTER_QUERIES
        pgpulse_args = [f"--catalog={COMPAT_CATALOG}", f"--extend.query-path={queries}"]
    else:
        queries = table_queries_file(tmpdir)
    try:
        exps["pgpulse"] = Exporter("pgpulse", [pgpulse_bin] + pgpulse_args,
                                   pg.uri(user=ROLES["pgpulse"]), tmpdir)
        exps["postgres_exporter"] = Exporter(
            "postgres_exporter",
            [PG_EXPORTER] + ([f"--extend.query-path={queries}"] if queries else []),
            pg.uri(user=ROLES["postgres_exporter"]), tmpdir)
        for e in exps.values():
            pgharness.wait_for(lambda: e.get("/", timeout=2)[0] == 200, 30,
                               what=f"{e.name} to answer HTTP")
        # pgpulse collects at start-up; postgres_exporter does nothing until
        # its first scrape, so only pgpulse is waited for here.
        wait_full_page(exps["pgpulse"])
        time.sleep(2)
        for n, e in exps.items():
            r[n]["rss_idle"] = e.proc_status("VmRSS")

        # A warm-up scrape, so the window sees steady state (postgres_exporter
        # connects and checks the server version on its first scrape).
        wait_full_page(exps["postgres_exporter"])
        for n, e in exps.items():
            for gz in (False, True):
                status, headers, body = e.get(gzip=gz)
                if status != 200:
                    raise RuntimeError(f"{n}: GET /metrics gave {status}")
                r[n]["size_gzip" if gz else "size"] = len(body)
                r[n]["encoding_gzip" if gz else "encoding"] = headers.get("content-encoding", "")
            page = pgharness.parse_exposition(e.get()[2].decode())
            r[n]["samples"] = len(page.samples)
            r[n]["problems"] = page.problems

        note(f"{args.window}s window: both exporters scraped every {args.interval}s")
        win = Window(pg).start()
        for tick in range(0, args.window, args.interval):
            delay = win.t0 + tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            for n, e in exps.items():
                status = e.get(gzip=True)[0]
                if status != 200:
                    raise RuntimeError(f"{n}: scrape at {tick}s gave {status}")
        time.sleep(max(0.0, win.t0 + args.window - time.monotonic()))
        counts = win.stop()
        for n, e in exps.items():
            for k, v in counts[ROLES[n]].items():
                r[n][f"window_{k}"] = v
            r[n]["rss_window"] = e.proc_status("VmRSS")

        for n, e in exps.items():
            for gz in (False, True):
                mode = "gzip" if gz else "plain"
                note(f"wrk {args.duration}s against {n}, {mode}")
                win = Window(pg).start()
                cpu = e.cpu_seconds()
                res = run_wrk(e.url(), args.duration, gz)
                res["cpu"] = e.cpu_seconds() - cpu
                c = win.stop()[ROLES[n]]
                res.update({f"sql_{k}": v for k, v in c.items()})
                r[n][mode] = res
            r[n]["rss_wrk"] = e.proc_status("VmRSS")
            r[n]["hwm_wrk"] = e.proc_status("VmHWM")
        for n, e in exps.items():
            if e.proc.poll() is not None:
                raise RuntimeError(f"{n} exited with {e.proc.returncode}:\n{e.log_tail()}")
            with open(e.log_path, errors="replace") as f:
                r[n]["log_problems"] = [line.rstrip() for line in f
                                        if re.search(r"level=(?:warn|error)", line)]
        facts = {"postgres": pg.scalar("SHOW server_version"),
                 "queries": queries, "pgpulse_args": pgpulse_args}
        return r, facts
    except BaseException:
        for e in exps.values():
            print(f"--- last lines of {e.name}'s log:\n{e.log_tail()}", file=sys.stderr)
        raise
    finally:
        for n, e in exps.items():
            r[n]["clean_exit"] = e.stop()
        pg.destroy()


# -- the report ------------------------------------------------------------------

def first_line(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except OSError as e:
        return f"unknown ({e})"
    return ((p.stdout or p.stderr).strip().splitlines() or ["unknown"])[0]


def machine_facts(pgpulse_bin):
    """The machine and the pgpulse build a report is about (scale.py too)."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    git = ["git", "-C", REPO]
    rev = first_line(git + ["rev-parse", "--short", "HEAD"])
    # only what goes into the binary
    dirty = subprocess.run(git + ["status", "--porcelain", "--", "CMakeLists.txt", "cmake",
                                  "cmd", "lib", "queries"],
                           capture_output=True, text=True).stdout.strip() != ""
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": f"{mem_kib / 1048576:.1f} GiB",
        "kernel": os.uname().release,
        "pgpulse": f"{first_line([pgpulse_bin, '--version'])}, git {rev}"
                   f"{' + uncommitted changes to its sources' if dirty else ''},"
                   f" {build_type(pgpulse_bin)} build",
    }


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    x = a / b
    if x >= 100:
        return f"{x:,.0f}×"
    if x >= 0.1:
        return f"{x:.3g}×"
    return f"{x:.2g}×" if x >= 0.001 or x == 0 else "<0.001×"


def num(x, digits=3):
    if isinstance(x, int) or float(x).is_integer() and abs(x) >= 100:
        return f"{int(x):,}"
    return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"


def report(r, facts, args, started):
    a, b = r["pgpulse"], r["postgres_exporter"]
    rows = []

    def row(label, va, vb, fmt=num):
        rows.append(f"| {label} | {fmt(va)} | {fmt(vb)} | {ratio(va, vb)} |")

    mib = lambda kib: f"{kib / 1024:.1f}"  # noqa: E731
    for mode in ("plain", "gzip"):
        hdr = "" if mode == "plain" else ", Accept-Encoding: gzip"
        row(f"/metrics{hdr}: requests/s", a[mode]["rps"], b[mode]["rps"])
        row(f"/metrics{hdr}: p50 latency, ms", a[mode]["p50"], b[mode]["p50"])
        row(f"/metrics{hdr}: p99 latency, ms", a[mode]["p99"], b[mode]["p99"])
        size = "size" if mode == "plain" else "size_gzip"
        row(f"/metrics{hdr}: response body, bytes", a[size], b[size])
        n = [max(x[mode]["requests"], 1) for x in (a, b)]
        row(f"/metrics{hdr}: exporter CPU per response, µs",
            a[mode]["cpu"] * 1e6 / n[0], b[mode]["cpu"] * 1e6 / n[1])
        row(f"/metrics{hdr}: server time in its SQL per response, µs",
            a[mode]["sql_server_ms"] * 1e3 / n[0], b[mode]["sql_server_ms"] * 1e3 / n[1])
        row(f"/metrics{hdr}: SQL statements during the run", a[mode]["sql_statements"],
            b[mode]["sql_statements"])
        row(f"/metrics{hdr}: connections opened during the run",
            a[mode]["sql_connections"], b[mode]["sql_connections"])
    row("samples on the page", a["samples"], b["samples"])
    row("RSS idle after start-up, MiB", a["rss_idle"], b["rss_idle"], mib)
    row(f"RSS after {args.window} s of scrapes, MiB", a["rss_window"], b["rss_window"], mib)
    row("RSS after wrk, MiB", a["rss_wrk"], b["rss_wrk"], mib)
    row("peak RSS (VmHWM) after wrk, MiB", a["hwm_wrk"], b["hwm_wrk"], mib)
    scrapes = len(range(0, args.window, args.interval))
    during = f"in {args.window} s, {scrapes} scrapes {args.interval} s apart"
    row(f"SQL statements {during}", a["window_statements"], b["window_statements"])
    row(f"server time in its SQL {during}, ms", a["window_server_ms"],
        b["window_server_ms"])
    row(f"connections opened {during}", a["window_connections"], b["window_connections"])
    row(f"server errors {during}", a["window_errors"], b["window_errors"])

    notes = []
    for n in NAMES:
        for mode in ("plain", "gzip"):
            w = r[n][mode]
            if w["non2xx"] or w["sockerr"]:
                notes.append(f"- {n}, {mode}: {w['non2xx']} non-2xx responses, "
                             f"{w['sockerr']} socket errors ({w['timeouts']} timeouts)"
                             f" out of {w['requests']} requests")
        if r[n]["encoding"]:
            notes.append(f"- {n} compressed ({r[n]['encoding']}) without being asked")
        if r[n]["log_problems"]:
            notes.append(f"- {n} logged {len(r[n]['log_problems'])} warnings or errors,"
                         f" first: `{r[n]['log_problems'][0]}`")
        if r[n]["encoding_gzip"] != "gzip":
            notes.append(f"- {n} did not gzip when asked "
                         f"(Content-Encoding {r[n]['encoding_gzip']!r})")
        if not r[n]["clean_exit"]:
            notes.append(f"- {n} did not exit within 5 s of SIGTERM and was killed")
        if r[n]["problems"]:
            notes.append(f"- {n}'s page: {len(r[n]['problems'])} format problems, "
                         f"first: {r[n]['problems'][0]}")
    if not facts["queries"]:
        notes.append("- postgres_exporter ran without per-table queries "
                     f"({PG_EXPORTER_QUERIES} not found)")

    m = facts["machine"]
    cmd = "python3 bench/compare.py" + "".join(f" {x}" for x in sys.argv[1:])
    lines = [
        f"# pgpulse vs postgres_exporter, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `{cmd}` (took {facts['elapsed']:.0f} s)",
        "",
        f"- machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']}, Linux {m['kernel']}",
        f"- pgpulse: {m['pgpulse']}"
        + (", with `" + " ".join(a.replace(REPO + os.sep, "") for a in facts["pgpulse_args"])
           + "`" if facts["pgpulse_args"] else ""),
        f"- postgres_exporter: {m['postgres_exporter']}"
        + (", with the whole of its example queries.yaml (`--extend.query-path`)"
           if args.queries == "example"
           else ", with the per-table queries of its example queries.yaml" if facts["queries"]
           else ""),
        f"- PostgreSQL {facts['postgres']}, {TABLES} tables of {ROWS:,} rows,"
        " pg_stat_statements; everything on loopback",
        f"- load: {m['wrk']}, `-t2 -c16 -d{args.duration}s --latency`, one exporter at a"
        " time while the other runs unscraped",
        "",
        "| measure | pgpulse | postgres_exporter | ratio |",
        "| --- | ---: | ---: | ---: |",
        *rows,
    ]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines) + "\n"


def publish(text, started, prefix, no_save, say):
    """Prints a report and, unless no_save, writes it to results_path()."""
    print(text)
    if not no_save:
        path = results_path(started, prefix)
        with open(path, "w") as f:
            f.write(text)
        say(f"wrote {os.path.relpath(path, REPO)}")


def results_path(started, prefix=""):
    """bench/results/<prefix><date>.md, or -2, -3, ... when taken."""
    d = os.path.join(BENCH_DIR, "results")
    os.makedirs(d, exist_ok=True)
    base = os.path.join(d, f"{prefix}{started:%Y-%m-%d}")
    path, i = base + ".md", 2
    while os.path.exists(path):
        path, i = f"{base}-{i}.md", i + 1
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pgpulse", default=os.environ.get("PGPULSE_BIN"),
                    help="pgpulse binary (default: $PGPULSE_BIN, else build one)")
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build-bench"),
                    help="where to build pgpulse when --pgpulse is not given")
    ap.add_argument("--duration", type=int, default=10, help="seconds of each wrk run")
    ap.add_argument("--window", type=int, default=60,
                    help="seconds of the side-by-side scrape window")
    ap.add_argument("--interval", type=int, default=15, help="scrape interval in the window")
    ap.add_argument("--queries", choices=("tables", "example"), default="tables",
                    help="tables: pgpulse's catalog against postgres_exporter with the per-table "
                         "queries of Debian's example queries.yaml; example: both with the whole "
                         "file (--extend.query-path), pgpulse with the 0.11 compat catalog")
    ap.add_argument("--no-save", action="store_true", help="print only, write no results file")
    args = ap.parse_args()

    # SIGTERM and SIGHUP unwind like Ctrl-C, so the finally blocks stop the
    # exporters and pgharness's atexit hook removes the server.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _: sys.exit(128 + signum))
    for tool in (PG_EXPORTER, WRK):
        if not shutil.which(tool):
            sys.exit(f"compare: {tool} not found")

    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    pgpulse_bin = os.path.abspath(args.pgpulse) if args.pgpulse else build_pgpulse(args.build_dir)
    tmpdir = tempfile.mkdtemp(prefix="pgpulse-bench-")
    try:
        r, facts = measure(args, pgpulse_bin, tmpdir)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    facts["machine"] = dict(machine_facts(pgpulse_bin),
                            postgres_exporter=first_line([PG_EXPORTER, "--version"]),
                            wrk=first_line([WRK, "-v"]).split(" Copyright")[0])
    facts["elapsed"] = time.monotonic() - t0
    text = report(r, facts, args, started)
    publish(text, started, "example-" if args.queries == "example" else "", args.no_save, note)


if __name__ == "__main__":
    main()
