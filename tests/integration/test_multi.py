"""Two servers in one DATA_SOURCE_NAME (one URI, one key=value DSN).

Covers: every per-target series, pg_up included, carries
server="127.0.0.1:<port>" and each server's values stay its own; the page
stays valid exposition (promtool, one HELP/TYPE per family, families
contiguous, no duplicate series); stopping one server turns only its pg_up
to 0 and removes only its series. With thirty targets (thirty databases of
one server) the page grows past the size pgpulse gzips on the thread pool:
it stays valid and its gzip form is the same page.
"""

import gzip
import os
import shutil
import tempfile
import unittest

from pgharness import SOURCE_DIR, PgServer, Pgpulse, assert_promtool_ok, fast_catalog

# Series that describe the pgpulse process or the scrape as a whole and so
# carry no server label.
GLOBAL_PREFIXES = ("process_", "pg_exporter_", "pgpulse_build_info", "pgpulse_config_",
                   "pgpulse_loop_", "pgpulse_http_", "pgpulse_targets_", "pgpulse_page_")


def is_global(name):
    return name.startswith(GLOBAL_PREFIXES)


class MultiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Distinct max_connections tell the two servers' series apart.
        cls.a = PgServer(settings={"max_connections": "41"})
        cls.addClassCleanup(cls.a.destroy)
        cls.b = PgServer(settings={"max_connections": "43"})
        cls.addClassCleanup(cls.b.destroy)
        cls.dir = tempfile.mkdtemp(prefix="pgpulse-cat-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        # The shipped catalog plus the fast probe, so an outage shows within
        # a second whatever the shipped intervals are.
        catalogs = ["--catalog=" + os.path.join(SOURCE_DIR, "queries"),
                    "--catalog=" + fast_catalog(cls.dir)]
        dsn = cls.a.uri() + "," + cls.b.kv()
        cls.pulse = Pgpulse(catalogs, env={"DATA_SOURCE_NAME": dsn})
        cls.addClassCleanup(cls.pulse.destroy)
        cls.addClassCleanup(cls.pulse.stop_checked)  # runs first
        cls.labels = {cls.a.label(), cls.b.label()}

    def both_up(self, page):
        return all(page.value("pg_up", server=s) == 1
                   and page.find("itest_one", server=s)
                   and page.find("pg_settings_max_connections", server=s)
                   for s in self.labels)

    def test_1_series_carry_their_server(self):
        page = self.pulse.wait_for(lambda p: self.both_up(p) and p, 60, "both servers up")
        self.assertEqual(page.problems, [])
        for fam in page.families.values():
            if is_global(fam.name):
                continue
            for s in fam.samples:
                self.assertIn(s.labels.get("server"), self.labels, repr(s))
        self.assertEqual({s.labels["server"] for s in page.find("pg_up")}, self.labels)
        self.assertEqual(page.value("pg_settings_max_connections", server=self.a.label()), 41)
        self.assertEqual(page.value("pg_settings_max_connections", server=self.b.label()), 43)
        for srv in (self.a, self.b):
            start = float(srv.scalar("SELECT extract(epoch FROM pg_postmaster_start_time())"))
            self.assertAlmostEqual(page.value("pg_postmaster_start_time_seconds",
                                              server=srv.label()), start, delta=0.01)
        ages = page.find("pgpulse_target_data_age_seconds")
        self.assertEqual({s.labels.get("server") for s in ages}, self.labels)

    def test_1_valid_exposition(self):
        self.pulse.wait_for(self.both_up, 60, "both servers up")
        status, _, body = self.pulse.get("/metrics")
        self.assertEqual(status, 200)
        assert_promtool_ok(self, body)

    def test_2_one_server_stopped(self):
        self.pulse.wait_for(self.both_up, 60, "both servers up")
        self.b.stop()
        page = self.pulse.wait_for(
            lambda p: p.value("pg_up", server=self.b.label()) == 0 and p, 20,
            "pg_up 0 for the stopped server")
        self.assertEqual(page.value("pg_up", server=self.a.label()), 1)
        self.assertTrue(page.find("itest_one", server=self.a.label()))
        self.assertEqual(page.value("pg_settings_max_connections", server=self.a.label()), 41)
        self.assertEqual(page.find("itest_one", server=self.b.label()), [])
        self.assertEqual(page.find("pg_settings_max_connections", server=self.b.label()), [])
        self.assertEqual(page.problems, [])
        status, _, body = self.pulse.get("/metrics")
        assert_promtool_ok(self, body)


class ManyTargetsTest(unittest.TestCase):
    TARGETS = 30
    BIG = 256 * 1024  # pages from this size on are gzipped off the loop

    def test_big_page(self):
        # thirty servers: one PostgreSQL reached on thirty loopback addresses
        pg = PgServer(settings={"listen_addresses": "'*'"})
        self.addCleanup(pg.destroy)
        pg._append_as_postgres(os.path.join(pg.datadir, "pg_hba.conf"),
                               "host all all 127.0.0.0/8 trust\n")
        pg.psql("SELECT pg_reload_conf()")
        servers = {f"127.0.0.{i}:{pg.port}" for i in range(2, 2 + self.TARGETS)}
        dsn = ",".join(f"postgresql://postgres@{s}/postgres?sslmode=disable" for s in servers)
        pulse = Pgpulse(env={"DATA_SOURCE_NAME": dsn})
        self.addCleanup(pulse.destroy)

        def all_up(page):
            up = [s.value for s in page.find("pg_up")]
            return (up == [1] * self.TARGETS
                    and len(page.find("pg_settings_max_connections")) == self.TARGETS and page)
        page = pulse.wait_for(all_up, 90, f"{self.TARGETS} targets up with their settings")
        self.assertEqual(page.problems, [])
        self.assertEqual({s.labels["server"] for s in page.find("pg_up")}, servers)
        for _ in range(20):
            _, _, plain = pulse.get("/metrics")
            _, headers, gz = pulse.get("/metrics", headers={"Accept-Encoding": "gzip"})
            self.assertEqual(headers.get("content-encoding"), "gzip")
            if gzip.decompress(gz) == plain:
                break
        else:
            self.fail("the gzipped page never matched the plain one")
        self.assertGreater(len(plain), self.BIG)
        assert_promtool_ok(self, plain)
        self.assertEqual(pulse.stop(), 0, pulse.stderr())

if __name__ == "__main__":
    unittest.main()
