"""What users do to a running exporter: restart it under load, reload it,
scrape it the moment it starts, restart its database, read slowly.

Covers: SIGTERM while keep-alive clients scrape exits 0 and every response
that started is whole; SIGHUP with a changed catalog adds the new metric and
keeps the backend connection (same pid); a broken catalog on reload keeps
the old one and says where the error is; POST /-/reload is refused unless
--web.enable-lifecycle and reports errors; the flags file is read again on
reload (targets added and removed); the first scrape right after start
already shows a reachable server up, and scrapes held while a first
attempt hangs survive their clients leaving and a SIGTERM; a server restarted after a long outage
is up again within seconds; a client that stops reading is cut after
--web.write-timeout without slowing anyone else, and does not hold up
shutdown; connections over --web.max-connections are closed at once.
"""

import fcntl
import http.client
import os
import signal
import struct
import subprocess
import termios
import socket
import tempfile
import threading
import time
import unittest

from pgharness import Pgpulse, PgServer, fast_catalog, free_port, parse_exposition, wait_for

PID_CATALOG = """queries:
  - name: backend
    namespace: itest_backend
    interval: 1s
    sql: SELECT pg_backend_pid() AS pid
    columns:
      pid: {role: gauge, help: "pid of the backend pgpulse uses"}
"""

EXTRA_CATALOG = """queries:
  - name: extra
    namespace: itest_extra
    interval: 1s
    sql: SELECT 7 AS seven
    columns:
      seven: {role: gauge, help: "added by a reload"}
"""

BROKEN_CATALOG = """queries:
  - name: broken
    sql: SELECT 1 AS one
    columns:
      one: {role: gauge, help: x}
    intervall: 5s
"""


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


class LifecycleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgServer()

    @classmethod
    def tearDownClass(cls):
        cls.pg.destroy()

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pgpulse-lc-")
        if not self.pg.running:
            self.pg.start()

    def start(self, args=(), env=None, wait=True, catalog=True):
        full = list(args)
        if catalog:
            full.append(f"--catalog={self.dir}")
        pulse = Pgpulse(full, env={"DATA_SOURCE_NAME": self.pg.uri(), **(env or {})}, wait=wait)
        self.addCleanup(pulse.destroy)
        return pulse

    def test_sigterm_under_keepalive_load(self):
        fast_catalog(self.dir)
        pulse = self.start()
        pulse.wait_for(lambda p: p.value("pg_up") == 1, 30, "pg_up 1")
        stop = threading.Event()
        errors, done = [], [0]

        def client():
            conn = None
            while not stop.is_set():
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", pulse.port, timeout=10)
                    conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
                    resp = conn.getresponse()
                    body = resp.read()
                    length = int(resp.getheader("content-length"))
                    if resp.status != 200 or len(body) != length:
                        errors.append(f"status {resp.status}, {len(body)} of {length} bytes")
                    done[0] += 1
                    if resp.getheader("connection", "").lower() == "close":
                        conn.close()
                        conn = None
                except (ConnectionError, OSError, http.client.HTTPException):
                    # refused or closed once shutdown begins: the next
                    # request may fail, a started response may not
                    if conn is not None:
                        conn.close()
                    conn = None
                    if pulse.proc.poll() is not None:
                        return
                    time.sleep(0.01)

        threads = [threading.Thread(target=client, daemon=True) for _ in range(24)]
        for t in threads:
            t.start()
        wait_for(lambda: done[0] > 200, 30, what="200 scrapes under load")
        pulse.proc.send_signal(signal.SIGTERM)
        try:
            rc = pulse.proc.wait(30)
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        self.assertEqual(rc, 0, pulse.stderr()[-3000:])
        self.assertEqual(errors, [], "a response that started was cut")
        self.assertIn('msg="stopped"', pulse.stderr())

    def test_sighup_changes_catalog_and_keeps_connection(self):
        write(os.path.join(self.dir, "backend.yaml"), PID_CATALOG)
        pulse = self.start()
        page = pulse.wait_for(lambda p: p.find("itest_backend_pid") and p, 30,
                              "the backend pid metric")
        pid = page.value("itest_backend_pid")
        self.assertEqual(page.value("pgpulse_config_last_reload_successful"), 1)
        loaded_at = page.value("pgpulse_config_last_reload_success_timestamp_seconds")

        write(os.path.join(self.dir, "extra.yaml"), EXTRA_CATALOG)
        pulse.proc.send_signal(signal.SIGHUP)
        page = pulse.wait_for(lambda p: p.find("itest_extra_seven") and p, 30,
                              "the metric the reload added")
        self.assertTrue(pulse.running())
        self.assertEqual(page.value("itest_extra_seven"), 7)
        self.assertEqual(page.value("itest_backend_pid"), pid,
                         "the reload reconnected (the backend pid changed)")
        self.assertGreater(
            page.value("pgpulse_config_last_reload_success_timestamp_seconds"), loaded_at)
        self.assertEqual(page.problems, [])

        # a broken file: the running catalog stays, the error is positioned
        broken = os.path.join(self.dir, "zz-broken.yaml")
        write(broken, BROKEN_CATALOG)
        pulse.proc.send_signal(signal.SIGHUP)
        pulse.wait_for(lambda p: p.value("pgpulse_config_last_reload_successful") == 0, 30,
                       "the failed reload to show")
        wait_for(lambda: "zz-broken.yaml:6:5" in pulse.stderr(), 10,
                 what="the reload error with file:line:column")
        pulse.wait_log("reload failed")
        page = pulse.metrics()
        self.assertEqual(page.value("itest_extra_seven"), 7)
        self.assertEqual(page.value("itest_backend_pid"), pid)
        self.assertTrue(pulse.running())

        # removing a query removes its series, still on the same connection
        os.remove(broken)
        os.remove(os.path.join(self.dir, "extra.yaml"))
        pulse.proc.send_signal(signal.SIGHUP)
        page = pulse.wait_for(lambda p: not p.find("itest_extra_seven")
                              and p.value("pgpulse_config_last_reload_successful") == 1
                              and p.find("itest_backend_pid") and p, 30,
                              "the reload that removes the extra query")
        self.assertEqual(page.value("itest_backend_pid"), pid)
        pulse.stop_checked()

    def test_reload_endpoint(self):
        fast_catalog(self.dir)
        off = self.start()
        status, _, body = off.get("/-/reload", method="POST")
        self.assertEqual(status, 403, body)
        self.assertIn(b"--web.enable-lifecycle", body)
        off.stop_checked()

        on = self.start(["--web.enable-lifecycle"])
        status, _, _ = on.get("/-/reload", method="GET")
        self.assertEqual(status, 405)
        on.wait_for(lambda p: p.find("itest_one"), 30, "the first collection")
        status, _, body = on.get("/-/reload", method="POST")
        self.assertEqual(status, 200, body)
        # an unchanged query keeps its series across the reload: no gap
        for _ in range(20):
            self.assertTrue(on.metrics().find("itest_one"), "a series vanished at the reload")
        write(os.path.join(self.dir, "zz-broken.yaml"), BROKEN_CATALOG)
        status, _, body = on.get("/-/reload", method="PUT")
        self.assertEqual(status, 500)
        self.assertIn(b"zz-broken.yaml:6:5", body)
        self.assertIn(b"intervall", body)
        page = on.metrics()
        self.assertEqual(page.value("pgpulse_config_last_reload_successful"), 0)
        self.assertTrue(page.find("itest_one"), "the old catalog stopped running")
        on.stop_checked()

    def test_flags_file_reload_adds_and_removes_targets(self):
        other = PgServer()
        self.addCleanup(other.destroy)
        fast_catalog(self.dir)
        flags = os.path.join(self.dir, "flags")
        write(flags, f"# data sources\n--data-source.name={self.pg.uri()}\n")
        pulse = Pgpulse([f"--config.flags-file={flags}", f"--catalog={self.dir}"])
        self.addCleanup(pulse.destroy)
        pulse.wait_for(lambda p: p.value("pg_up") == 1, 30, "the first target up")

        write(flags, f"--data-source.name={self.pg.uri()},{other.uri()}\n")
        pulse.proc.send_signal(signal.SIGHUP)
        labels = {self.pg.label(), other.label()}
        page = pulse.wait_for(
            lambda p: {s.labels.get("server") for s in p.find("pg_up") if s.value == 1} == labels
            and p, 30, "both targets up after the reload")
        self.assertEqual(len(page.find("itest_one")), 2)

        write(flags, f"--data-source.name {other.uri()}\n--log.level=debug\n")
        pulse.proc.send_signal(signal.SIGHUP)
        page = pulse.wait_for(lambda p: len(p.find("pg_up")) == 1 and p.value("pg_up") == 1
                              and p, 30, "one target left")
        pulse.wait_log("target removed")

        # a flags file with an unknown flag: refused with its line, nothing changes
        write(flags, f"--data-source.name={self.pg.uri()}\n--no-such-flag=1\n")
        pulse.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: f"{flags}:2: unknown flag --no-such-flag" in pulse.stderr(), 10,
                 what="the flags file error")
        page = pulse.metrics()
        self.assertEqual(page.value("pgpulse_config_last_reload_successful"), 0)
        self.assertEqual(len(page.find("pg_up")), 1)
        self.assertEqual(page.value("pg_up"), 1)
        pulse.stop_checked()

    def test_first_scrape_is_truthful(self):
        fast_catalog(self.dir)
        pulse = self.start(wait=False)

        def first_page():
            status, _, body = pulse.get("/metrics", timeout=30)
            return status == 200 and parse_exposition(body.decode())
        page = wait_for(first_page, 30, interval=0.005, what="the first answer")
        self.assertEqual(page.value("pg_up"), 1, "the first scrape said the server was down")
        self.assertTrue(page.find("itest_one"), "the first scrape had no data")
        pulse.stop_checked()

    def test_first_scrape_does_not_wait_forever(self):
        # nothing listens there: the first attempt ends with a refusal at once,
        # or the scrape's own deadline ends the wait
        dead = PgServer(start=False)
        self.addCleanup(dead.destroy)
        fast_catalog(self.dir)
        pulse = Pgpulse([f"--catalog={self.dir}"], env={"DATA_SOURCE_NAME": dead.uri()},
                        wait=False)
        self.addCleanup(pulse.destroy)

        def first_page():
            status, _, body = pulse.get(
                "/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": "2"}, timeout=30)
            return status == 200 and parse_exposition(body.decode())
        page = wait_for(first_page, 30, interval=0.005, what="the first answer")
        self.assertEqual(page.value("pg_up"), 0)
        pulse.stop_checked()

    def test_held_scrapes_whose_clients_leave(self):
        # a server that accepts and never answers: the first attempt hangs
        # until --connect-timeout, so scrapes are held meanwhile; clients
        # that leave while held, and a SIGTERM while others are held, must
        # neither crash pgpulse nor leave anyone without an answer
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(16)
        self.addCleanup(ls.close)
        held = []
        threading.Thread(target=lambda: [held.append(ls.accept()) for _ in range(4)],
                         daemon=True).start()
        self.addCleanup(lambda: [c.close() for c, _ in held])
        dsn = f"postgresql://u@127.0.0.1:{ls.getsockname()[1]}/db?sslmode=disable"
        pulse = Pgpulse(["--connect-timeout=3s"], env={"DATA_SOURCE_NAME": dsn})
        self.addCleanup(pulse.destroy)

        def scrape():
            c = socket.create_connection(("127.0.0.1", pulse.port))
            c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            return c
        for _ in range(5):
            scrape().close()  # gone before the answer
        waiting = scrape()
        waiting.settimeout(20)
        self.assertTrue(waiting.recv(64).startswith(b"HTTP/1.1 200 "))
        waiting.close()
        self.assertTrue(pulse.running())

        # held again after a restart, then SIGTERM: every held scrape is
        # answered and pgpulse exits 0
        pulse.stop_checked()
        pulse = Pgpulse(["--connect-timeout=8s"], env={"DATA_SOURCE_NAME": dsn})
        self.addCleanup(pulse.destroy)
        conns = [scrape() for _ in range(3)]
        scrape().close()
        time.sleep(0.3)
        pulse.proc.send_signal(signal.SIGTERM)
        for c in conns:
            c.settimeout(10)
            self.assertTrue(c.recv(64).startswith(b"HTTP/1.1 200 "))
            c.close()
        self.assertEqual(pulse.proc.wait(20), 0, pulse.stderr()[-2000:])

    def test_server_back_after_long_outage(self):
        fast_catalog(self.dir)
        pulse = self.start()
        pulse.wait_for(lambda p: p.value("pg_up") == 1, 30, "pg_up 1")
        self.pg.stop()
        pulse.wait_for(lambda p: p.value("pg_up") == 0, 30, "pg_up 0")
        time.sleep(12)  # the outage: long enough for the backoff to reach its cap
        self.pg.start()
        started = time.monotonic()
        pulse.wait_for(lambda p: p.value("pg_up") == 1, 30, "pg_up 1 after the restart")
        took = time.monotonic() - started
        # the cap is 4 s with 20 % jitter; 10 s holds on any machine
        self.assertLess(took, 10, f"pg_up 1 only {took:.1f}s after the server came back")
        pulse.stop_checked()

    def test_slow_reader_is_cut_and_blocks_nobody(self):
        # a page big enough to fill the socket buffers of a client that never reads
        catalog = os.path.join(self.dir, "big.yaml")
        write(catalog, """queries:
  - name: big
    namespace: itest_big
    interval: 1s
    sql: SELECT g::text AS i, repeat('x', 200) AS pad, 1 AS v FROM generate_series(1, 20000) g
    columns:
      i: label
      pad: label
      v: {role: gauge, help: "many series"}
""")
        pulse = self.start(["--web.write-timeout=2s"])
        pulse.wait_for(lambda p: len(p.find("itest_big_v")) == 20000, 60, "the big page")
        slow = []
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", pulse.port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            slow.append(s)
        self.addCleanup(lambda: [s.close() for s in slow])
        # others are served meanwhile
        for _ in range(5):
            status, _, body = pulse.get("/-/healthy", timeout=5)
            self.assertEqual(status, 200)
        pulse.wait_for(lambda p: p.value("pgpulse_http_write_timeouts_total") >= 3, 30,
                       "the slow readers to be cut")
        # a cut client sees its connection end, not a hang
        slow[0].settimeout(10)
        total = 0
        while True:
            chunk = slow[0].recv(1 << 16)
            if not chunk:
                break
            total += len(chunk)
        self.assertGreater(total, 0)

        # and one that stops reading does not hold up shutdown
        s = socket.create_connection(("127.0.0.1", pulse.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        self.addCleanup(s.close)
        time.sleep(0.5)
        began = time.monotonic()
        rc = pulse.stop(timeout=20)
        self.assertEqual(rc, 0, pulse.stderr()[-3000:])
        # --web.shutdown-timeout is 5 s
        self.assertLess(time.monotonic() - began, 15)

    def test_connection_cap(self):
        fast_catalog(self.dir)
        pulse = self.start(["--web.max-connections=4"])
        idle = [socket.create_connection(("127.0.0.1", pulse.port)) for _ in range(4)]
        self.addCleanup(lambda: [s.close() for s in idle])
        extra = socket.create_connection(("127.0.0.1", pulse.port))
        extra.settimeout(5)
        extra.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            got = extra.recv(100)
        except ConnectionResetError:
            got = b""
        self.assertEqual(got, b"", "a connection over the cap was served")
        extra.close()
        for s in idle:
            s.close()
        page = pulse.wait_for(lambda p: p.value("pgpulse_http_connections_rejected_total") >= 1
                              and p, 10, "the rejected connection counted")
        self.assertEqual(page.problems, [])
        pulse.wait_log("too many HTTP connections")
        pulse.stop_checked()

    def test_host_name_with_several_addresses(self):
        # "localhost" may resolve to ::1 first while the server listens on
        # 127.0.0.1 only: every address is tried in order, as libpq does
        fast_catalog(self.dir)
        dsn = f"postgresql://postgres@localhost:{self.pg.port}/postgres?sslmode=disable"
        pulse = Pgpulse([f"--catalog={self.dir}"], env={"DATA_SOURCE_NAME": dsn})
        self.addCleanup(pulse.destroy)
        pulse.wait_for(lambda p: p.value("pg_up") == 1, 30, "pg_up 1 through localhost")
        pulse.stop_checked()

    def test_log_pipe_nobody_reads(self):
        # 150 unreachable targets logging every reconnect at debug fill a
        # pipe nobody reads within seconds; scrapes must go on regardless
        dead = free_port()  # nothing listens there, on any loopback address
        dsn = ",".join(f"postgresql://u@127.0.0.{i}:{dead}/db" for i in range(2, 152))
        fast_catalog(self.dir)
        r, w = os.pipe()
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATA_SOURCE_")}
        env["DATA_SOURCE_NAME"] = dsn
        proc = subprocess.Popen([os.environ["PGPULSE_BIN"], f"--web.listen-address=127.0.0.1:{port}",
                                 "--log.level=debug", f"--catalog={self.dir}"],
                                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=w)
        os.close(w)

        def cleanup():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(r)
        self.addCleanup(cleanup)

        def buffered():
            return struct.unpack("i", fcntl.ioctl(r, termios.FIONREAD, b"\0\0\0\0"))[0]
        pipe_size = fcntl.fcntl(r, 1032)  # F_GETPIPE_SZ
        wait_for(lambda: proc.poll() is None and buffered() >= pipe_size - 4096, 60,
                 what="the log pipe to fill up")
        conn_args = ("127.0.0.1", port)
        for _ in range(20):
            c = http.client.HTTPConnection(*conn_args, timeout=5)
            c.request("GET", "/metrics")
            resp = c.getresponse()
            self.assertEqual(resp.status, 200)
            page = parse_exposition(resp.read().decode())
            c.close()
            self.assertEqual(len(page.find("pg_up")), 150)
            time.sleep(0.1)
        # once someone reads again, shutdown completes and says what was dropped
        out = []
        reader = threading.Thread(target=lambda: out.append(os.read(r, 1 << 30) and
                                                            b"".join(iter(lambda: os.read(r, 65536), b""))),
                                  daemon=True)
        reader.start()
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(30), 0)
        reader.join(10)

    def test_series_cap_applies_while_reading(self):
        # 300,000 rows of 100-byte labels (a result of about 40 MB if held
        # whole) under a cap of 1,000 samples
        write(os.path.join(self.dir, "huge.yaml"), """queries:
  - name: huge
    namespace: itest_huge
    interval: 2s
    timeout: 20s
    max_series: 1000
    sql: SELECT g::text AS i, repeat('y', 100) AS pad, 1 AS v FROM generate_series(1, 300000) g
    columns:
      i: label
      pad: label
      v: {role: gauge, help: "capped"}
""")
        pulse = self.start()
        page = pulse.wait_for(
            lambda p: p.value("pgpulse_query_series_dropped_total", query="huge") >= 2 * 299000
            and p, 60, "two capped runs")
        self.assertEqual(len(page.find("itest_huge_v")), 1000)
        self.assertEqual(page.problems, [])
        # what the target holds, libpq's results included, stays small
        self.assertLess(page.value("pgpulse_target_memory_bytes"), 2 << 20)
        if "ASAN_OPTIONS" not in os.environ:  # ASan's shadow memory and quarantine
            self.assertLess(page.value("process_resident_memory_bytes"), 64 << 20)
        pulse.wait_log("series cap")
        capped = [line for line in pulse.log_lines() if "series cap" in line]
        self.assertEqual(len(capped), 1, capped)
        self.assertIn("max_series=1000", capped[0])
        pulse.stop_checked()

    def test_loop_lag_shows_a_blocked_loop(self):
        fast_catalog(self.dir)
        pulse = self.start()
        page = pulse.wait_for(lambda p: p.value("pgpulse_loop_lag_seconds_count") > 10 and p, 30,
                              "loop lag samples")
        self.assertEqual(page.families["pgpulse_loop_lag_seconds"].type, "histogram")
        self.assertLess(page.value("pgpulse_loop_lag_max_seconds"), 1.0)
        # a loop that cannot run for 1.5 s (stopped, as a blocking call would)
        pulse.proc.send_signal(signal.SIGSTOP)
        time.sleep(1.5)
        pulse.proc.send_signal(signal.SIGCONT)
        page = pulse.wait_for(lambda p: p.value("pgpulse_loop_lag_max_seconds") >= 1.0 and p, 15,
                              "the stall in pgpulse_loop_lag_max_seconds")
        over = page.value("pgpulse_loop_lag_seconds_bucket", le="+Inf") - \
            page.value("pgpulse_loop_lag_seconds_bucket", le="1")
        self.assertGreaterEqual(over, 1, "the stall is not in the histogram's top bucket")
        pulse.stop_checked()

    def test_dsn_without_host_uses_libpq_defaults(self):
        # as postgres_exporter: no host in the DSN means libpq's defaults,
        # here PGHOST naming the server's Unix socket directory
        fast_catalog(self.dir)
        pulse = self.start(env={"DATA_SOURCE_NAME": "user=postgres dbname=postgres",
                                "PGHOST": self.pg.tmpdir, "PGPORT": str(self.pg.port)})
        page = pulse.wait_for(lambda p: p.value("pg_up") == 1 and p, 30, "pg_up 1 over the socket")
        self.assertTrue(page.find("itest_one"))
        # the backend pgpulse uses came in over the socket, not TCP
        addrs = self.pg.psql("SELECT coalesce(client_addr::text, 'socket') FROM pg_stat_activity"
                             " WHERE application_name = 'pgpulse'")
        self.assertEqual([row[0] for row in addrs], ["socket"])
        pulse.stop_checked()

    def test_catalog_cannot_define_reserved_names(self):
        bad = os.path.join(self.dir, "up.yaml")
        write(bad, """queries:
  - name: mine
    namespace: pg
    sql: SELECT 1 AS up
    columns:
      up: {role: gauge, help: "mine"}
""")
        pulse = self.start(wait=False)
        rc = pulse.proc.wait(30)
        self.assertEqual(rc, 1)
        err = pulse.stderr()
        self.assertIn("up.yaml:", err)
        self.assertIn("pg_up", err)
        self.assertRegex(err, r"up\.yaml:\d+:\d+: ")

    def test_ready_and_healthy(self):
        fast_catalog(self.dir)
        pulse = self.start()
        wait_for(lambda: pulse.get("/-/ready")[0] == 200, 30, what="/-/ready")
        self.assertEqual(pulse.get("/-/healthy")[0], 200)
        self.assertEqual(pulse.get("/-/healthy", method="HEAD")[0], 200)
        pulse.stop_checked()


if __name__ == "__main__":
    unittest.main()
