"""The /metrics page with the shipped catalog against one real PostgreSQL 15.

Covers: promtool accepts the page; the postgres_exporter families a dashboard
relies on exist with the right TYPE and labels (and no server label with one
target); stable values equal what psql reads from the same server; HEAD,
gzip, Content-Type and 404 behave as HTTP clients expect; the self-metrics
and process metrics exist.
"""

import gzip
import os
import socket
import time
import unittest

from pgharness import (PROMETHEUS_CONTENT_TYPE, PgServer, Pgpulse, assert_promtool_ok,
                       catalog_file, parse_exposition)

ACTIVITY_LABELS = {"datname", "state", "usename", "application_name", "backend_type",
                   "wait_event_type", "wait_event"}
TABLE_LABELS = {"datname", "schemaname", "relname"}

# family -> (TYPE, label names of every sample)
EXPECTED = {
    "pg_up": ("gauge", set()),
    "pg_stat_database_xact_commit": ("counter", {"datid", "datname"}),
    "pg_stat_activity_count": ("gauge", ACTIVITY_LABELS),
    "pg_database_size_bytes": ("gauge", {"datname"}),
    "pg_locks_count": ("gauge", {"datname", "mode"}),
    "pg_settings_max_connections": ("gauge", set()),
    "pg_settings_shared_buffers_bytes": ("gauge", set()),
    "pg_stat_user_tables_n_live_tup": ("gauge", TABLE_LABELS),
    "pg_statio_user_tables_heap_blocks_read": ("counter", TABLE_LABELS),
    "pg_stat_bgwriter_buffers_alloc_total": ("counter", set()),
    "pg_replication_is_replica": ("gauge", set()),
    "pg_replication_lag_seconds": ("gauge", set()),
    "pg_postmaster_start_time_seconds": ("gauge", set()),
}

SELF_METRICS = {
    "pg_exporter_scrapes_total": "counter",
    "pg_exporter_last_scrape_error": "gauge",
    "pg_exporter_last_scrape_duration_seconds": "gauge",
    "process_resident_memory_bytes": "gauge",
    "process_start_time_seconds": "gauge",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
    "process_cpu_seconds_total": "counter",
    "pgpulse_page_builds_total": "counter",
    "pgpulse_page_build_seconds_total": "counter",
    "pgpulse_page_last_build_seconds": "gauge",
}

LIVE_ROWS = 1234
# A database whose name needs escaping in a label value.
ODD_DB = 'pulse "quoted" \\ db'


def raw_http(port, request):
    """Sends request bytes, reads until the server closes; returns
    (status line, headers dict, body bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return lines[0], headers, body


class PageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgServer(settings={"max_connections": "37", "shared_buffers": "24MB"})
        cls.addClassCleanup(cls.pg.destroy)
        cls.pg.psql("CREATE TABLE pulse_rows AS"
                    f" SELECT g AS id FROM generate_series(1, {LIVE_ROWS}) g")
        cls.pg.psql("ANALYZE pulse_rows")
        quoted = '"' + ODD_DB.replace('"', '""') + '"'
        cls.pg.psql(f"CREATE DATABASE {quoted} CONNECTION LIMIT 7")
        cls.pg.psql("CREATE ROLE pulse_limited LOGIN CONNECTION LIMIT 3")
        cls.pulse = Pgpulse(env={"DATA_SOURCE_NAME": cls.pg.uri()})
        cls.addClassCleanup(cls.pulse.destroy)
        cls.addClassCleanup(cls.pulse.stop_checked)  # runs first

        def complete(page):
            have = all(page.find(name) for name in EXPECTED)
            rows = page.find("pg_stat_user_tables_n_live_tup", relname="pulse_rows")
            return have and rows and page.value("pg_up") == 1 and page
        cls.page = cls.pulse.wait_for(complete, 60, "every expected family and pulse_rows")

    def test_promtool_accepts_the_page(self):
        status, _, body = self.pulse.get("/metrics")
        self.assertEqual(status, 200)
        assert_promtool_ok(self, body)

    def test_families_have_type_and_labels(self):
        for name, (typ, labels) in EXPECTED.items():
            with self.subTest(family=name):
                fam = self.page.families.get(name)
                self.assertIsNotNone(fam, f"{name} missing")
                self.assertEqual(fam.type, typ)
                self.assertTrue(fam.help, f"{name} has no HELP text")
                self.assertTrue(fam.samples)
                for s in fam.samples:
                    self.assertEqual(set(s.labels), labels, repr(s))

    def test_one_target_has_no_server_label(self):
        with_server = [s for s in self.page.samples if "server" in s.labels]
        self.assertEqual(with_server, [])

    def test_settings_equal_psql(self):
        page = self.pulse.metrics()
        self.assertEqual(page.value("pg_settings_max_connections"), 37)
        self.assertEqual(page.value("pg_settings_max_connections"),
                         float(self.pg.scalar("SHOW max_connections")))
        self.assertEqual(page.value("pg_settings_shared_buffers_bytes"), 24 * 1024 * 1024)
        self.assertEqual(page.value("pg_settings_shared_buffers_bytes"), float(self.pg.scalar(
            "SELECT pg_size_bytes(current_setting('shared_buffers'))")))

    def test_database_list_and_connection_limits(self):
        page = self.pulse.metrics()
        rows = self.pg.psql("SELECT oid, datname, datconnlimit FROM pg_database")
        names = {r[1] for r in rows}
        self.assertIn(ODD_DB, names)
        self.assertEqual({s.labels["datname"] for s in page.find("pg_database_size_bytes")},
                         names)
        self.assertEqual({(s.labels["datid"], s.labels["datname"])
                          for s in page.find("pg_stat_database_xact_commit")},
                         {(r[0], r[1]) for r in rows})
        for oid, name, limit in rows:
            with self.subTest(datname=name):
                self.assertEqual(page.value("pg_database_connection_limit", datname=name),
                                 float(limit))
        self.assertEqual(page.value("pg_database_connection_limit", datname=ODD_DB), 7)

    def test_role_connection_limits(self):
        page = self.pulse.metrics()
        self.assertTrue(page.find("pg_roles_connection_limit"), "no pg_roles_connection_limit")
        for rolname, limit in self.pg.psql("SELECT rolname, rolconnlimit FROM pg_roles"):
            with self.subTest(rolname=rolname):
                self.assertEqual(page.value("pg_roles_connection_limit", rolname=rolname),
                                 float(limit))
        self.assertEqual(page.value("pg_roles_connection_limit", rolname="pulse_limited"), 3)

    def test_postmaster_start_time_equals_psql(self):
        want = float(self.pg.scalar("SELECT extract(epoch FROM pg_postmaster_start_time())"))
        got = self.pulse.metrics().value("pg_postmaster_start_time_seconds")
        self.assertAlmostEqual(got, want, delta=0.01)

    def test_primary_is_not_a_replica(self):
        self.assertEqual(self.pg.scalar("SELECT pg_is_in_recovery()"), "f")
        page = self.pulse.metrics()
        self.assertEqual(page.value("pg_replication_is_replica"), 0)
        self.assertEqual(page.value("pg_replication_lag_seconds"), 0)

    def test_live_tuples_of_a_known_table(self):
        self.assertEqual(self.pg.scalar(
            "SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = 'pulse_rows'"),
            str(LIVE_ROWS))
        value = self.pulse.metrics().value("pg_stat_user_tables_n_live_tup", datname="postgres",
                                           schemaname="public", relname="pulse_rows")
        self.assertEqual(value, LIVE_ROWS)

    def test_head_matches_get(self):
        # The page can change between two requests (a new collection), so
        # look for one GET/HEAD pair that saw the same page.
        attempts = []
        for _ in range(5):
            status, get_headers, body = self.pulse.get("/metrics")
            line, head_headers, head_body = raw_http(
                self.pulse.port,
                b"HEAD /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            self.assertEqual(status, 200)
            self.assertTrue(line.startswith("HTTP/1.1 200"), line)
            self.assertEqual(head_body, b"", "HEAD sent a body")
            ignore = {"date", "connection", "transfer-encoding"}
            self.assertEqual(set(head_headers) - ignore, set(get_headers) - ignore)
            self.assertEqual(head_headers["content-type"], get_headers["content-type"])
            self.assertIn("content-length", head_headers)
            attempts.append((int(head_headers["content-length"]), len(body)))
            if attempts[-1][0] == attempts[-1][1]:
                break
        self.assertEqual(attempts[-1][0], attempts[-1][1],
                         f"HEAD Content-Length vs GET body length: {attempts}")

    def test_gzip(self):
        status, headers, body = self.pulse.get("/metrics", {"Accept-Encoding": "gzip"})
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("content-encoding"), "gzip")
        plain = gzip.decompress(body)
        page = parse_exposition(plain.decode())
        self.assertEqual(page.value("pg_up"), 1)
        assert_promtool_ok(self, plain)

    def test_identity_without_accept_encoding(self):
        status, headers, body = self.pulse.get("/metrics")
        self.assertEqual(status, 200)
        self.assertNotIn("content-encoding", headers)
        self.assertIn(b"pg_up", body)

    def test_content_type(self):
        _, headers, _ = self.pulse.get("/metrics")
        self.assertEqual(headers.get("content-type"), PROMETHEUS_CONTENT_TYPE)

    def test_unknown_path_is_404(self):
        status, _, _ = self.pulse.get("/no-such-page")
        self.assertEqual(status, 404)

    def test_self_metrics(self):
        page = self.pulse.metrics()
        for name, typ in SELF_METRICS.items():
            with self.subTest(metric=name):
                fam = page.families.get(name)
                self.assertIsNotNone(fam, f"{name} missing")
                self.assertEqual(fam.type, typ)
                self.assertEqual(len(fam.samples), 1)
        self.assertEqual(page.value("pg_exporter_last_scrape_error"), 0)
        self.assertGreaterEqual(page.value("pg_exporter_scrapes_total"), 1)
        self.assertGreaterEqual(page.value("pg_exporter_last_scrape_duration_seconds"), 0)
        self.assertGreater(page.value("process_resident_memory_bytes"), 1024 * 1024)
        start = page.value("process_start_time_seconds")
        self.assertGreaterEqual(start, self.pulse.started_at - 2)
        self.assertLessEqual(start, time.time())
        self.assertGreaterEqual(page.value("process_open_fds"), 3)
        # the page in hand was built after at least the start-up one
        self.assertGreaterEqual(page.value("pgpulse_page_builds_total"), 1)
        self.assertGreater(page.value("pgpulse_page_last_build_seconds"), 0)
        self.assertLessEqual(page.value("pgpulse_page_last_build_seconds"),
                             page.value("pgpulse_page_build_seconds_total"))
        with open(f"/proc/{self.pulse.proc.pid}/limits") as f:
            soft = next(line.split()[3] for line in f if line.startswith("Max open files"))
        self.assertEqual(page.value("process_max_fds"), float(soft))

    def test_cpu_seconds_match_the_kernel(self):
        def cpu_now():
            with open(f"/proc/{self.pulse.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        # some work first, so the kernel's count is well above zero
        for _ in range(300):
            self.pulse.get("/metrics", headers={"Accept-Encoding": "gzip"})
        before = cpu_now()
        self.assertGreater(before, 0)
        # pages are refreshed every few seconds: one built from now on
        page = self.pulse.wait_for(lambda p: p.value("process_cpu_seconds_total") >= before
                                   and p, 15, "a page counting the CPU used so far")
        after = cpu_now()
        tick = 1 / os.sysconf("SC_CLK_TCK")
        self.assertLessEqual(page.value("process_cpu_seconds_total"), after + tick)


# A page past 1 MiB is gzipped family by family, and a family whose series
# all come from unchanged query results is copied from the page before.
MANY = 40000
BIG_CATALOG = f"""queries:
  - name: many
    namespace: itest_many
    interval: 1s
    sql: SELECT 'row-' || lpad(g::text, 6, '0') AS n, g AS v FROM generate_series(1, {MANY}) g
    columns:
      n: label
      v: {{role: gauge, help: "the same every run"}}
  - name: changing
    namespace: itest_changing
    interval: 1s
    sql: SELECT n FROM itest_counter
    columns:
      n: {{role: gauge, help: "what the test last wrote"}}
"""


class BigPageTest(unittest.TestCase):
    def setUp(self):
        self.pg = PgServer()
        self.addCleanup(self.pg.destroy)
        self.pg.psql("CREATE TABLE itest_counter (n int); INSERT INTO itest_counter VALUES (1)")

    def built(self, page, how):
        return page.value("pgpulse_page_build_bytes_total", how=how)

    def test_unchanged_families_are_reused_and_changes_show(self):
        pulse = Pgpulse([f"--catalog={catalog_file(self, BIG_CATALOG)}"],
                        env={"DATA_SOURCE_NAME": self.pg.uri()})
        self.addCleanup(pulse.destroy)
        first = pulse.wait_for(
            lambda p: p.find("itest_changing_n") and p.value("itest_changing_n") == 1
            and len(p.find("itest_many_v")) == MANY and self.built(p, "reused") > 0 and p,
            60, "the big page, built at least once from the page before")
        self.pg.psql("UPDATE itest_counter SET n = 2")
        page = pulse.wait_for(lambda p: p.value("itest_changing_n") == 2 and p, 30,
                              "the new value on the page")
        # the unchanged family was copied again, the changed one compressed
        self.assertGreater(self.built(page, "reused"), self.built(first, "reused"))
        self.assertGreater(self.built(page, "compressed"), self.built(first, "compressed"))

        status, headers, body = pulse.get("/metrics", {"Accept-Encoding": "gzip"})
        self.assertEqual((status, headers.get("content-encoding")), (200, "gzip"))
        self.assertGreater(len(body), 0)
        plain = gzip.decompress(body)  # checks the CRC-32 and the length
        self.assertGreater(len(plain), 1 << 20, "not a big page: the test proves nothing")
        got = parse_exposition(plain.decode())
        self.assertEqual(got.problems, [])
        self.assertEqual(got.value("itest_changing_n"), 2)
        values = {s.labels["n"]: s.value for s in got.find("itest_many_v")}
        self.assertEqual(values, {f"row-{g:06d}": g for g in range(1, MANY + 1)})
        assert_promtool_ok(self, plain)
        # without gzip: the same page, inflated by the server
        status, headers, ident = pulse.get("/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(len(parse_exposition(ident.decode()).find("itest_many_v")), MANY)
        pulse.stop_checked()


if __name__ == "__main__":
    unittest.main()
