"""Test harness for pgpulse's integration tests (Python 3 stdlib only).

PgServer runs a real PostgreSQL server from Debian's packages in a fresh temp
dir, on a loopback port the kernel picked, as the unprivileged `postgres`
user when the tests run as root (initdb refuses root). Pgpulse runs the
binary named by $PGPULSE_BIN on a free loopback port and talks HTTP to it.
Prometheus runs Debian's prometheus with a given config and answers PromQL
through its HTTP API. Haproxy runs Debian's haproxy with a given config;
haproxy_local_config() turns the shipped deploy/haproxy/haproxy.cfg into
one for servers on this machine. parse_exposition() reads the Prometheus text format
so tests can assert on families, types, labels and values.

Everything started here is stopped and removed by its owner's cleanup, and
again at interpreter exit or on SIGTERM, so a failing or interrupted test
leaves no server, process or temp dir behind.
"""

import atexit
import ctypes
import http.client
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

PG_BINDIR = os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin")
PSQL = os.environ.get("PGPULSE_TEST_PSQL", "/usr/bin/psql")
PROMETHEUS = os.environ.get("PGPULSE_TEST_PROMETHEUS", "/usr/bin/prometheus")
HAPROXY = os.environ.get("PGPULSE_TEST_HAPROXY") or shutil.which("haproxy") or "/usr/sbin/haproxy"
SOURCE_DIR = os.environ.get(
    "PGPULSE_SOURCE_DIR",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Resources alive right now; destroyed at exit even if a test forgot.
_live = []


def _destroy_all():
    for res in list(reversed(_live)):
        try:
            res.destroy()
        except Exception as e:  # keep cleaning the others
            print(f"pgharness: cleanup of {res!r} failed: {e}", file=sys.stderr)


def _on_signal(signum, _frame):
    _destroy_all()
    os._exit(128 + signum)


atexit.register(_destroy_all)
for _sig in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, _on_signal)


def free_port():
    """A loopback TCP port the kernel says is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, interval=0.1, what="condition"):
    """Polls predicate() until it returns something truthy and returns that.

    Exceptions raised by predicate count as "not yet". Raises AssertionError
    naming `what`, the last value and the last exception after timeout."""
    deadline = time.monotonic() + timeout
    last, last_exc = None, None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except _Exited:
            raise
        except Exception as e:  # e.g. connection refused while starting
            last_exc = e
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}; "
                f"last value {last!r}, last error {last_exc!r}")
        time.sleep(interval)


class _Exited(Exception):
    """The process a predicate watches has exited: waiting longer is futile."""


def _is_root():
    return os.geteuid() == 0


def _as_postgres(argv):
    """argv run as the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--"] + argv if _is_root() else argv


def _run(argv, cwd=None, timeout=120):
    p = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {p.returncode}:\n{p.stdout}{p.stderr}")
    return p.stdout


def _children(pid):
    """PIDs whose parent is pid, from /proc (no dependency on procps)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # exited meanwhile
        # The command name is in parentheses and may hold spaces.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


class PgServer:
    """A PostgreSQL server in its own temp dir on a free loopback port.

    Authentication is trust for every role except `pgpulse_test`, which must
    give its password (self.password, random per server) over TCP, so tests
    can check that a password never leaks. Replication connections are
    allowed so add_standby() works. `settings` go into postgresql.conf."""

    def __init__(self, settings=None, start=True, _basebackup_of=None, _application_name=None):
        self.tmpdir = tempfile.mkdtemp(prefix="pgpulse-pg-")
        _live.append(self)
        self.datadir = os.path.join(self.tmpdir, "data")
        self.logfile = os.path.join(self.tmpdir, "postgres.log")
        self.port = free_port()
        self.user = "pgpulse_test"
        self.password = "pw-" + secrets.token_hex(8)
        self.stopped_by_signal = False
        self.running = False
        if _is_root():
            pw = pwd.getpwnam("postgres")
            os.chown(self.tmpdir, pw.pw_uid, pw.pw_gid)
        if _basebackup_of is None:
            self._initdb()
        else:
            self._basebackup(_basebackup_of, _application_name)
        self._configure(settings)
        if start:
            self.start()
            if _basebackup_of is None:
                self.psql(f"CREATE ROLE {self.user} LOGIN PASSWORD '{self.password}'"
                          f" IN ROLE pg_monitor")

    def _configure(self, settings):
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.tmpdir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "wal_level": "replica",
            "max_wal_senders": "5",
            "hot_standby": "on",
            "logging_collector": "off",
        }
        conf.update(settings or {})
        self.settings = settings
        lines = "".join(f"{k} = {v}\n" for k, v in conf.items())
        # Appended last, so these win over what a base backup copied.
        self._append_as_postgres(os.path.join(self.datadir, "postgresql.conf"),
                                 "\n# pgharness\n" + lines)

    def __repr__(self):
        return f"PgServer(port={self.port}, dir={self.tmpdir})"

    # -- set-up -----------------------------------------------------------

    def _initdb(self):
        _run(_as_postgres([os.path.join(PG_BINDIR, "initdb"), "-D", self.datadir,
                           "-A", "trust", "-U", "postgres", "-E", "UTF8",
                           "--locale=C", "--no-sync"]), cwd=self.tmpdir)
        hba = (
            "# pgharness: the password role must authenticate; all else is trusted\n"
            f"host all {self.user} 127.0.0.1/32 scram-sha-256\n"
            "local all all trust\n"
            "host all all 127.0.0.1/32 trust\n"
            "local replication all trust\n"
            "host replication all 127.0.0.1/32 trust\n")
        self._write_as_postgres(os.path.join(self.datadir, "pg_hba.conf"), hba)

    def _basebackup(self, primary, application_name=None):
        argv = [os.path.join(PG_BINDIR, "pg_basebackup"), "-h", "127.0.0.1",
                "-p", str(primary.port), "-U", "postgres", "-D", self.datadir,
                "-R", "-X", "stream", "-c", "fast", "--no-sync"]
        if application_name is not None:
            # -R writes it into primary_conninfo: pg_stat_replication's name
            argv += ["-d", f"application_name={application_name}"]
        _run(_as_postgres(argv), cwd=self.tmpdir)
        self.password = primary.password  # roles are replicated

    def _write_as_postgres(self, path, text, mode="w"):
        with open(path, mode) as f:
            f.write(text)
        if _is_root():
            pw = pwd.getpwnam("postgres")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _append_as_postgres(self, path, text):
        self._write_as_postgres(path, text, mode="a")

    # -- life cycle -------------------------------------------------------

    def _pg_ctl(self, *args):
        return _run(_as_postgres([os.path.join(PG_BINDIR, "pg_ctl"), "-D", self.datadir,
                                  "-l", self.logfile, "-w", "-t", "60", *args]),
                    cwd=self.tmpdir)

    def start(self):
        self._pg_ctl("start")
        self.running = True

    def stop(self, mode="fast"):
        if self.stopped_by_signal:
            self.sigcont()
        self._pg_ctl("stop", "-m", mode)
        self.running = False

    def restart(self):
        self._pg_ctl("restart", "-m", "fast")
        self.running = True

    def postmaster_pid(self):
        with open(os.path.join(self.datadir, "postmaster.pid")) as f:
            return int(f.readline())

    def sigstop(self):
        """Freezes the postmaster and every child, so open backends hang."""
        pid = self.postmaster_pid()
        # The postmaster first: once frozen it can fork no new children.
        os.kill(pid, signal.SIGSTOP)
        self.stopped_by_signal = True
        for child in _children(pid):
            os.kill(child, signal.SIGSTOP)

    def sigcont(self):
        pid = self.postmaster_pid()
        for child in _children(pid):
            os.kill(child, signal.SIGCONT)
        os.kill(pid, signal.SIGCONT)
        self.stopped_by_signal = False

    def destroy(self):
        """Stops the server (hard) and removes its temp dir. Idempotent."""
        if self in _live:
            _live.remove(self)
        try:
            if self.stopped_by_signal:
                self.sigcont()
            if os.path.exists(os.path.join(self.datadir, "postmaster.pid")):
                self._pg_ctl("stop", "-m", "immediate")
        finally:
            self.running = False
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    # -- use ----------------------------------------------------------------

    def psql(self, sql, dbname="postgres"):
        """Runs sql as the superuser and returns rows as lists of strings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGCONNECT_TIMEOUT"] = "10"
        out = subprocess.run(
            [PSQL, "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", dbname,
             "-c", sql],
            env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"psql on port {self.port} failed: {out.stderr.strip()}\n{sql}")
        return [line.split("\t") for line in out.stdout.splitlines() if line != ""]

    def scalar(self, sql, dbname="postgres"):
        rows = self.psql(sql, dbname)
        assert len(rows) == 1 and len(rows[0]) == 1, f"{sql!r} gave {rows!r}"
        return rows[0][0]

    def label(self):
        """The server label pgpulse gives this target: "host:port"."""
        return f"127.0.0.1:{self.port}"

    def uri(self, user="postgres", password=None, dbname="postgres"):
        auth = user if password is None else f"{user}:{password}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}?sslmode=disable"

    def kv(self, user="postgres", password=None, dbname="postgres"):
        s = f"host=127.0.0.1 port={self.port} user={user} dbname={dbname} sslmode=disable"
        return s if password is None else s + f" password={password}"

    def read_log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def add_standby(self, settings=None, application_name=None):
        """A streaming standby of this server (pg_basebackup -R), started and
        streaming. application_name names it in this server's
        pg_stat_replication (two standbys need different names to give
        different series). The caller destroys it like any PgServer."""
        standby = PgServer(settings=settings, start=False, _basebackup_of=self,
                           _application_name=application_name)
        standby.start()
        standby.wait_streaming()
        return standby

    def wait_streaming(self, timeout=60):
        """Waits until this standby's WAL receiver streams."""
        wait_for(lambda: self.scalar(
            "SELECT status FROM pg_stat_wal_receiver") == "streaming",
            timeout, what=f"standby on {self.port} to stream")

    def reclone_from(self, primary, application_name=None):
        """Makes this stopped server a standby of primary in place: a fresh
        pg_basebackup into the same data dir, same port, started and
        streaming (the seed's way back for an old primary after failover)."""
        assert not self.running, "stop the server first"
        _run(_as_postgres(["rm", "-rf", self.datadir]))
        self._basebackup(primary, application_name)
        self._configure(self.settings)
        self.start()
        self.wait_streaming()


class Sample:
    def __init__(self, name, labels, value):
        self.name, self.labels, self.value = name, labels, value

    def __repr__(self):
        lbl = ",".join(f'{k}="{v}"' for k, v in self.labels.items())
        return f"{self.name}{{{lbl}}} {self.value}"


class Family:
    def __init__(self, name):
        self.name = name
        self.help = None
        self.type = None
        self.samples = []


class Page:
    """A parsed exposition page.

    families: name -> Family, in order of first appearance. problems: what
    breaks the format's rules without breaking the parse (a second HELP or
    TYPE, a family whose lines are not contiguous, a duplicate series)."""

    def __init__(self):
        self.families = {}
        self.samples = []
        self.problems = []

    def find(self, name, **labels):
        """Samples named name whose labels include the given ones."""
        return [s for s in self.samples if s.name == name
                and all(s.labels.get(k) == v for k, v in labels.items())]

    def value(self, name, **labels):
        """The value of the one sample that matches; AssertionError otherwise."""
        found = self.find(name, **labels)
        if len(found) != 1:
            raise AssertionError(f"expected one sample {name}{labels}, found {found!r}")
        return found[0].value


_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def _unescape_help(text):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else
                  m.group(1) if m.group(1) == "\\" else m.group(0), text)


def _parse_labels(line, i, lineno):
    """Parses '{a="x",b="y"}' starting at line[i] == '{'. Returns (dict, next i)."""
    labels = {}
    i += 1
    while True:
        while i < len(line) and line[i] in " \t":
            i += 1
        if i < len(line) and line[i] == "}":
            return labels, i + 1
        m = _LABEL.match(line, i)
        if not m:
            raise ValueError(f"line {lineno}: bad label name at column {i + 1}: {line!r}")
        key = m.group(0)
        i = m.end()
        if line[i:i + 2] != '="':
            raise ValueError(f"line {lineno}: expected =\" after {key}: {line!r}")
        i += 2
        value = []
        while True:
            if i >= len(line):
                raise ValueError(f"line {lineno}: unterminated label value: {line!r}")
            c = line[i]
            if c == "\\":
                nxt = line[i + 1:i + 2]
                if nxt not in _ESCAPES:
                    raise ValueError(f"line {lineno}: bad escape \\{nxt} in label value")
                value.append(_ESCAPES[nxt])
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                value.append(c)
                i += 1
        if key in labels:
            raise ValueError(f"line {lineno}: label {key} given twice")
        labels[key] = "".join(value)
        while i < len(line) and line[i] in " \t":
            i += 1
        if i < len(line) and line[i] == ",":
            i += 1
        elif i < len(line) and line[i] == "}":
            return labels, i + 1
        else:
            raise ValueError(f"line {lineno}: expected , or }} after label {key}: {line!r}")


def _family_of(page, name):
    """The family a sample name belongs to (histograms/summaries have suffixes)."""
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[:-len(suffix)]
        if name.endswith(suffix) and base in page.families \
                and page.families[base].type in ("histogram", "summary"):
            return base
    return name


def parse_exposition(text):
    """Parses the Prometheus text format 0.0.4 into a Page. Raises ValueError
    on anything that does not parse."""
    page = Page()
    current = None   # family the previous line belonged to
    closed = set()   # families whose block has ended
    seen = set()     # (name, labels) of every sample, to spot duplicates

    def enter(name):
        nonlocal current
        if name != current:
            if name in closed:
                page.problems.append(f"family {name} is not contiguous")
            if current is not None:
                closed.add(current)
            current = name
        return page.families.setdefault(name, Family(name))

    for lineno, line in enumerate(text.split("\n"), 1):
        if line.strip() == "":
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not _NAME.fullmatch(name):
                    raise ValueError(f"line {lineno}: bad metric name {name!r}")
                fam = enter(name)
                rest = parts[3] if len(parts) > 3 else ""
                if parts[1] == "HELP":
                    if fam.help is not None:
                        page.problems.append(f"second HELP for {name}")
                    fam.help = _unescape_help(rest)
                else:
                    if fam.type is not None:
                        page.problems.append(f"second TYPE for {name}")
                    if fam.samples:
                        page.problems.append(f"TYPE for {name} after its samples")
                    if rest not in ("counter", "gauge", "histogram", "summary", "untyped"):
                        raise ValueError(f"line {lineno}: bad type {rest!r}")
                    fam.type = rest
            continue
        m = _NAME.match(line)
        if not m:
            raise ValueError(f"line {lineno}: bad sample: {line!r}")
        name = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = _parse_labels(line, i, lineno)
        fields = line[i:].split()
        if len(fields) not in (1, 2) or (i < len(line) and line[i] not in " \t"):
            raise ValueError(f"line {lineno}: expected value [timestamp]: {line!r}")
        try:
            value = float(fields[0])
        except ValueError:
            raise ValueError(f"line {lineno}: bad value {fields[0]!r}") from None
        sample = Sample(name, labels, value)
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            page.problems.append(f"duplicate series {sample!r}")
        seen.add(key)
        enter(_family_of(page, name)).samples.append(sample)
        page.samples.append(sample)
    return page


def promtool_check(body):
    """Runs `promtool check metrics` on an exposition body (bytes or str).

    Returns (exit code, output lines); promtool prints nothing for a clean
    page and one line per lint problem otherwise."""
    if isinstance(body, str):
        body = body.encode()
    p = subprocess.run(["promtool", "check", "metrics"], input=body,
                       capture_output=True, timeout=60)
    out = (p.stdout + p.stderr).decode(errors="replace")
    return p.returncode, [line for line in out.splitlines() if line.strip()]


# promtool's naming lints that postgres_exporter's own metric names trip
# (pg_stat_database_xact_commit is a counter without _total; pg_locks_count
# is a gauge ending in _count; a legacy queries.yaml's DURATION column is
# <namespace>_<column>_milliseconds). A drop-in replacement must keep those
# names, so these messages are tolerated for pg_* families and nothing else.
TOLERATED_LINTS = (
    'counter metrics should have "_total" suffix',
    'non-histogram and non-summary metrics should not have "_count" suffix',
    'use base unit "seconds" instead of "milliseconds"',
)


def assert_promtool_ok(test, body):
    """Fails test unless promtool accepts the page, naming lints aside."""
    rc, lines = promtool_check(body)
    bad = [line for line in lines
           if not (line.startswith("pg_") and line.split(" ", 1)[-1] in TOLERATED_LINTS)]
    test.assertEqual(bad, [], f"promtool check metrics (exit {rc}) complained")
    test.assertIn(rc, (0, 3) if lines else (0,), f"promtool exit code, output {lines}")


def _die_with_parent():
    """Runs in the child before exec: if the test process is killed outright
    (SIGKILL on a ctest timeout), the kernel kills pgpulse too."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _pgpulse_bin():
    path = os.environ.get("PGPULSE_BIN") or os.path.join(SOURCE_DIR, "build", "pgpulse")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"pgpulse binary not found at {path}: set PGPULSE_BIN")
    return path


class Pgpulse:
    """The pgpulse binary as a subprocess listening on a free loopback port.

    env is added to a copy of the environment from which every
    DATA_SOURCE_* and PG_EXPORTER_* variable was removed. stderr goes to a
    file (self.stderr_path). With wait=True the constructor returns once the
    HTTP listener answers; if the process exits first, it raises with the
    process's stderr. binary runs another pgpulse than $PGPULSE_BIN (an
    installed one); user runs it as that user (when we are root)."""

    def __init__(self, args=(), env=None, wait=True, listen=True, binary=None, user=None):
        self.tmpdir = tempfile.mkdtemp(prefix="pgpulse-run-")
        _live.append(self)
        self.port = free_port()
        self.stderr_path = os.path.join(self.tmpdir, "stderr.log")
        self.stdout_path = os.path.join(self.tmpdir, "stdout.log")
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("DATA_SOURCE_", "PG_EXPORTER_"))}
        full_env.update(env or {})
        argv = [binary or _pgpulse_bin()]
        if listen:
            argv.append(f"--web.listen-address=127.0.0.1:{self.port}")
        argv += list(args)
        self.argv = argv
        self.started_at = time.time()
        if user is not None:
            pw = pwd.getpwnam(user)
            os.chown(self.tmpdir, pw.pw_uid, pw.pw_gid)
        with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
            # With user, the parent-death signal is set after the switch
            # (a change of uid would clear it).
            self.proc = subprocess.Popen(argv, env=full_env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, cwd=self.tmpdir,
                                         user=user, group=user and pw.pw_gid,
                                         extra_groups=[] if user else None,
                                         preexec_fn=_die_with_parent)
        if wait:
            self.wait_ready()

    def __repr__(self):
        return f"Pgpulse(pid={self.proc.pid}, port={self.port})"

    def wait_ready(self, timeout=30):
        def answers():
            if self.proc.poll() is not None:
                raise _Exited()
            self.get("/", timeout=2)
            return True
        try:
            wait_for(answers, timeout, what=f"pgpulse to answer HTTP on {self.port}")
        except _Exited:
            raise RuntimeError(f"pgpulse exited with {self.proc.returncode} before serving; "
                               f"stderr:\n{self.stderr()}") from None
        except AssertionError as e:
            raise AssertionError(f"{e}\nstderr:\n{self.stderr()}") from None

    def get(self, path="/metrics", headers=None, method="GET", timeout=5):
        """One HTTP/1.1 request. Returns (status, headers with lower-case
        names, body bytes). Bodies are returned as sent (still gzipped)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, headers=headers or {})
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
        finally:
            conn.close()

    def metrics(self, path="/metrics"):
        """GETs the page and parses it; AssertionError unless it is a 200."""
        status, _, body = self.get(path)
        if status != 200:
            raise AssertionError(f"GET {path} gave {status}: {body[:200]!r}")
        return parse_exposition(body.decode())

    def wait_for(self, predicate, timeout, what="condition", path="/metrics"):
        """wait_for() with predicate(page) over fresh pages from path; fails
        at once if the process has exited."""
        def check():
            if self.proc.poll() is not None:
                raise _Exited()
            return predicate(self.metrics(path))
        try:
            return wait_for(check, timeout, interval=0.2, what=what)
        except _Exited:
            raise AssertionError(f"pgpulse exited with {self.proc.returncode} while waiting "
                                 f"for {what}; stderr:\n{self.stderr()}") from None

    def stderr(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def log_lines(self):
        return self.stderr().splitlines()

    def wait_log(self, text, timeout=10):
        """Waits until the log holds text (log lines are written by a thread
        of their own, a moment after the change they report)."""
        return wait_for(lambda: text in self.stderr(), timeout, what=f"{text!r} in the log")

    def running(self):
        return self.proc.poll() is None

    def stop(self, timeout=10):
        """SIGTERM, then the exit code. A process still alive after timeout
        seconds is killed and its (negative) code returned."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def stop_checked(self):
        """stop(), failing unless the exit code is 0 (under the sanitizers a
        leak or an error found at exit makes it non-zero)."""
        rc = self.stop()
        if rc != 0:
            raise AssertionError(f"pgpulse exited with {rc} on SIGTERM; stderr:\n"
                                 + self.stderr()[-5000:])

    def destroy(self):
        if self in _live:
            _live.remove(self)
        try:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


class _Daemon:
    """A peer program run in the foreground in a temp dir of its own, its
    stdout and stderr in self.log(); destroyed with the harness's other
    resources."""

    name = "daemon"

    def _spawn(self, prefix, files, argv, env=None):
        """Writes files (name -> text) into a new temp dir, then starts argv
        with {dir} in its arguments replaced by that dir, in env (None: this
        process's environment)."""
        self.tmpdir = tempfile.mkdtemp(prefix=prefix)
        _live.append(self)
        for name, text in files.items():
            with open(os.path.join(self.tmpdir, name), "w") as f:
                f.write(text)
        self.log_path = os.path.join(self.tmpdir, self.name + ".log")
        argv = [a.replace("{dir}", self.tmpdir) for a in argv]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, cwd=self.tmpdir, env=env,
                                         preexec_fn=_die_with_parent)

    def _wait(self, check, timeout, what):
        """Waits until check() is true; raises with the log if the program exits."""
        def ready():
            if self.proc.poll() is not None:
                raise _Exited()
            return check()
        try:
            wait_for(ready, timeout, what=what)
        except _Exited:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                               f"{self.log()}") from None

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def destroy(self):
        if self in _live:
            _live.remove(self)
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


class Prometheus(_Daemon):
    """Debian's prometheus on a free loopback port, in its own temp dir.

    config is the text of prometheus.yml; files maps more file names (rule
    files the config names, relative to it) to their text. query() and
    api() speak the HTTP API and return its "data"."""

    name = "prometheus"

    def __init__(self, config, files=None, timeout=60):
        self.port = free_port()
        self._spawn("pgpulse-prom-", dict(files or {}, **{"prometheus.yml": config}),
                    [PROMETHEUS, "--config.file={dir}/prometheus.yml",
                     "--storage.tsdb.path={dir}/data",
                     f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"])
        self._wait(lambda: self._get("/-/ready")[0] == 200, timeout,
                   f"prometheus to be ready on {self.port}")

    def __repr__(self):
        return f"Prometheus(pid={self.proc.pid}, port={self.port})"

    def _get(self, path, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def api(self, path, **params):
        """GET /api/v1/<path>?params; the answer's "data", or RuntimeError."""
        query = urllib.parse.urlencode(params)
        status, body = self._get(f"/api/v1/{path}" + (f"?{query}" if query else ""))
        doc = json.loads(body)
        if status != 200 or doc.get("status") != "success":
            raise RuntimeError(f"prometheus {path} {params}: {status} {body[:300]!r}")
        return doc["data"]

    def query(self, promql):
        """An instant query: a list of {"metric": labels, "value": [t, "v"]}."""
        return self.api("query", query=promql)["result"]

    def targets(self):
        return self.api("targets", state="active")["activeTargets"]

    def firing(self):
        """The firing alerts: a list of their label dicts."""
        return [a["labels"] for a in self.api("alerts")["alerts"] if a["state"] == "firing"]


def haproxy_local_config(nodes, write_port, read_port, inter=None, template=None):
    """deploy/haproxy/haproxy.cfg for servers on 127.0.0.1: nodes maps each
    node name of the compose file (postgres-primary, postgres-replica-1,
    postgres-replica-2) to (PostgreSQL port, pgpulse port). The same
    substitutions as deploy/local/cluster.sh makes; inter (e.g. "200ms")
    replaces the check interval. Raises if a compose name is left."""
    if template is None:
        with open(os.path.join(SOURCE_DIR, "deploy", "haproxy", "haproxy.cfg")) as f:
            template = f.read()
    text = template
    for node, (pg_port, pulse_port) in nodes.items():
        exporter = "postgres-exporter-" + node[len("postgres-"):]
        text = text.replace(f" {exporter}:9187", f" 127.0.0.1:{pulse_port}")
        text = text.replace(f" {node}:5432", f" 127.0.0.1:{pg_port}")
    text = text.replace("bind :6432\n", f"bind 127.0.0.1:{write_port}\n")
    text = text.replace("bind :6433\n", f"bind 127.0.0.1:{read_port}\n")
    # Docker's DNS has no place here: every address is an IP.
    text = re.sub(r"(?ms)^resolvers docker\n.*?\n\n", "", text)
    text = text.replace(" resolvers docker", "")
    if inter is not None:
        text, n = re.subn(r"(?m)^(\s*default-server .*)\binter \S+", rf"\1inter {inter}", text)
        assert n == 1, "no default-server line with inter in haproxy.cfg"
    left = [line for line in text.splitlines()
            if re.match(r"\s*(server\s+\S+|bind)\s+(?!127\.0\.0\.1:)", line)
            or re.match(r"\s*(nameserver|resolvers)\b", line)]
    assert not left, f"haproxy.cfg has addresses the local config does not know: {left}"
    return text


class Haproxy(_Daemon):
    """Debian's haproxy in the foreground with the given config text, in its
    own temp dir. The constructor returns once every port in wait_ports
    accepts connections; haproxy's log (stdout/stderr) is in self.log()."""

    name = "haproxy"

    def __init__(self, config, wait_ports=(), timeout=30):
        self._spawn("pgpulse-haproxy-", {"haproxy.cfg": config},
                    [HAPROXY, "-db", "-f", "{dir}/haproxy.cfg"])
        self.config_path = os.path.join(self.tmpdir, "haproxy.cfg")

        def listening():
            for port in wait_ports:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        self._wait(listening, timeout, f"haproxy to listen on {list(wait_ports)}")

    def __repr__(self):
        return f"Haproxy(pid={self.proc.pid}, dir={self.tmpdir})"


def catalog_file(test, text, name="catalog.yaml"):
    """Writes a catalog's YAML into a directory of its own, removed when
    the test ends, and returns the file's path."""
    d = tempfile.mkdtemp(prefix="pgpulse-cat-")
    test.addCleanup(shutil.rmtree, d, True)
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def fast_catalog(dirpath, interval="1s", timeout="2s"):
    """Writes the tests' one-query catalog into dirpath and returns its path.
    It yields itest_one{datname="..."} 1."""
    path = os.path.join(dirpath, "fast.yaml")
    with open(path, "w") as f:
        f.write(f"""queries:
  - name: fast_probe
    namespace: itest
    interval: {interval}
    timeout: {timeout}
    sql: SELECT 1::int AS one, current_database() AS datname
    columns:
      datname: label
      one: {{role: gauge, help: "always one"}}
""")
    return path
