"""A hundred targets from one process: the shape of the page and the bound
on connection attempts.

Covers: 100 targets (one PostgreSQL server reached on 100 distinct
127.0.0.x loopback addresses, each a different host:port to pgpulse) all
come up with --collection.max-connecting=4 and never more than four
attempts in flight on any page seen meanwhile; every target's pg_up and
catalog series are there, each family once, and promtool accepts the page.
A target's first collection (the costliest for its server: a new backend
loads the catalog) counts against the same bound: with a slow query, the
server never runs more than four of them at once.
Timing figures belong to bench/scale.py, not here.
"""

import os
import shutil
import tempfile
import time
import unittest

from pgharness import PgServer, Pgpulse, assert_promtool_ok, catalog_file, fast_catalog

N = 100


class ScaleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgServer(settings={"listen_addresses": "'*'", "max_connections": str(N + 20)})
        # every 127.x.y.z reaches the server; let them in like 127.0.0.1
        cls.pg._append_as_postgres(os.path.join(cls.pg.datadir, "pg_hba.conf"),
                                   "host all all 127.0.0.0/8 trust\n")
        cls.pg.psql("SELECT pg_reload_conf()")

    @classmethod
    def tearDownClass(cls):
        cls.pg.destroy()

    def test_hundred_targets(self):
        d = tempfile.mkdtemp(prefix="pgpulse-scale-")
        self.addCleanup(shutil.rmtree, d, True)
        labels = [f"127.0.0.{i}:{self.pg.port}" for i in range(2, 2 + N)]
        dsn = ",".join(f"postgresql://postgres@{label}/postgres?sslmode=disable"
                       for label in labels)
        pulse = Pgpulse([f"--catalog={fast_catalog(d, interval='2s')}",
                         "--collection.max-connecting=4", "--web.startup-wait=0"],
                        env={"DATA_SOURCE_NAME": dsn})
        self.addCleanup(pulse.destroy)
        most = [0]

        def all_up(page):
            most[0] = max(most[0], page.value("pgpulse_targets_connecting"))
            up = {s.labels["server"] for s in page.find("pg_up") if s.value == 1}
            return up == set(labels) and len(page.find("itest_one")) == N and page
        page = pulse.wait_for(all_up, 120, "every target up")
        self.assertLessEqual(most[0], 4, "more connection attempts in flight than allowed")
        self.assertEqual(page.problems, [])
        self.assertEqual(page.value("pgpulse_targets_waiting_to_connect"), 0)
        _, _, body = pulse.get("/metrics")
        assert_promtool_ok(self, body)
        pulse.stop_checked()

    def test_first_collections_take_turns(self):
        # a 60 s interval: during the start-up only first collections run
        path = catalog_file(self, """queries:
  - name: slow_probe
    namespace: itest
    interval: 60s
    timeout: 5s
    sql: SELECT 1::int AS one FROM pg_sleep(0.25)
    columns:
      one: {role: gauge, help: "always one"}
""")
        labels = [f"127.0.1.{i}:{self.pg.port}" for i in range(2, 2 + N)]
        dsn = ",".join(f"postgresql://postgres@{label}/postgres?sslmode=disable"
                       for label in labels)
        pulse = Pgpulse([f"--catalog={path}", "--collection.max-connecting=4",
                         "--web.startup-wait=0"], env={"DATA_SOURCE_NAME": dsn})
        self.addCleanup(pulse.destroy)
        most, deadline, up = 0, time.monotonic() + 120, 0
        while up < N and time.monotonic() < deadline:
            running = int(self.pg.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                " AND query LIKE '%pg_sleep(0.25)%' AND pid <> pg_backend_pid()"))
            most = max(most, running)
            up = sum(1 for s in pulse.metrics().find("pg_up") if s.value == 1)
        self.assertEqual(up, N, "not every target came up")
        self.assertGreaterEqual(most, 1, "no first collection seen running: the test saw nothing")
        self.assertLessEqual(most, 4, "more first collections at once than --collection.max-connecting")
        pulse.stop_checked()


if __name__ == "__main__":
    unittest.main()
