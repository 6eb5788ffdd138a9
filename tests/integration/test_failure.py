"""What a user sees while the one monitored server fails and recovers.

With a fast catalog (one query, interval 1s, timeout 2s): a stopped server
gives pg_up 0 promptly and none of its catalog series, and pgpulse picks it up
again when it comes back without a restart; a frozen (SIGSTOPped) server never
holds up a scrape and turns pg_up 0 after the query deadline; an outage is
logged per state change, not per scrape.
"""

import tempfile
import shutil
import time
import unittest

from pgharness import PgServer, Pgpulse, catalog_file, fast_catalog, parse_exposition, wait_for

SCRAPE_BOUND = 2.0   # seconds any scrape may take, whatever the server does
RECOVERY_BOUND = 20  # generous: two intervals plus the reconnect backoff cap


def healthy(page):
    """The page when the target is up with its catalog series, else None."""
    up = page.value("pg_up") == 1 and page.find("itest_one", datname="postgres")
    return page if up else None


def down(page):
    """The page when pg_up is 0, else None."""
    return page if page.value("pg_up") == 0 else None


class FailureTest(unittest.TestCase):
    def setUp(self):
        self.pg = PgServer()
        self.addCleanup(self.pg.destroy)
        self.dir = tempfile.mkdtemp(prefix="pgpulse-cat-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.pulse = Pgpulse(["--catalog=" + fast_catalog(self.dir)],
                             env={"DATA_SOURCE_NAME": self.pg.uri()})
        self.addCleanup(self.pulse.destroy)
        self.pulse.wait_for(healthy, RECOVERY_BOUND, "pg_up 1 and itest_one")

    def timed_scrape(self):
        t0 = time.monotonic()
        status, _, body = self.pulse.get("/metrics", timeout=SCRAPE_BOUND + 1)
        took = time.monotonic() - t0
        self.assertEqual(status, 200)
        self.assertLess(took, SCRAPE_BOUND, "a scrape waited on the database")
        return parse_exposition(body.decode())

    def target_log_lines(self):
        return [line for line in self.pulse.log_lines() if self.pg.label() in line]

    def test_stopped_server_then_back(self):
        logged_before = len(self.target_log_lines())
        self.pg.stop()
        page = self.pulse.wait_for(down, 10, "pg_up 0 after the server stopped")
        self.assertEqual(page.find("itest_one"), [], "stale series of a dead server")
        self.timed_scrape()
        self.assertGreater(len(self.target_log_lines()), logged_before,
                           "the outage was not logged")

        # One line per change of state: the loss, the first failed
        # reconnect (its reason differs), then nothing while the outage
        # lasts, however many scrapes and reconnect attempts there are.
        wait_for(lambda: any("cannot connect" in line for line in self.target_log_lines()), 10,
                 what="the first failed reconnect to be logged")
        logged = len(self.target_log_lines())
        for _ in range(20):
            self.timed_scrape()
            time.sleep(0.25)
        self.assertEqual(self.target_log_lines()[logged:], [],
                         "lines logged during the outage without a change of state")
        page = self.pulse.metrics()
        self.assertEqual(page.value("pg_up"), 0)
        self.assertEqual(page.find("itest_one"), [])

        pid = self.pulse.proc.pid
        self.pg.start()
        logged = len(self.target_log_lines())
        self.pulse.wait_for(healthy, RECOVERY_BOUND, "pg_up 1 after the server came back")
        wait_for(lambda: any('msg="connected"' in line
                             for line in self.target_log_lines()[logged:]), 10,
                 what="the reconnect logged")
        back = self.target_log_lines()[logged:]
        self.assertEqual(len([line for line in back if 'msg="connected"' in line]), 1, back)
        self.assertTrue(self.pulse.running())
        self.assertEqual(self.pulse.proc.pid, pid)
        self.assertEqual(self.pulse.stop(), 0, self.pulse.stderr())

    def test_frozen_server(self):
        self.pg.sigstop()
        deadline = time.monotonic() + RECOVERY_BOUND
        while True:
            page = self.timed_scrape()
            if down(page):
                break
            self.assertLess(time.monotonic(), deadline, "pg_up stayed 1 for a frozen server")
            time.sleep(0.2)
        for _ in range(5):  # still answering while the server stays frozen
            page = self.timed_scrape()
            time.sleep(0.2)
        self.assertEqual(page.find("itest_one"), [], "stale series of a frozen server")
        self.assertEqual(page.value("pg_up"), 0)

        self.pg.sigcont()
        self.pulse.wait_for(healthy, RECOVERY_BOUND, "pg_up 1 after SIGCONT")
        self.assertEqual(self.pulse.stop(), 0, self.pulse.stderr())


if __name__ == "__main__":
    unittest.main()


class ChangedResultTest(unittest.TestCase):
    """pgpulse prepares each catalog query once per connection. When what a
    query reads changes shape (a column added to a table it selects * from),
    PostgreSQL refuses the prepared plan ("cached plan must not change result
    type"): that run fails, and the next ones run unnamed, as before, so the
    series come back by themselves instead of failing for good."""

    def test_series_come_back_after_a_table_changes_shape(self):
        pg = PgServer()
        self.addCleanup(pg.destroy)
        pg.psql("CREATE TABLE itest_t (row_name text, v int); INSERT INTO itest_t VALUES ('a', 7);"
                "GRANT SELECT ON itest_t TO PUBLIC")
        path = catalog_file(self, """queries:
  - name: star_probe
    namespace: itest
    interval: 1s
    timeout: 2s
    sql: SELECT * FROM itest_t
    columns:
      row_name: label
      v: {role: gauge, help: "v of the row"}
""")
        pulse = Pgpulse(["--catalog=" + path], env={"DATA_SOURCE_NAME": pg.uri()})
        self.addCleanup(pulse.destroy)

        def v_is(want):
            return lambda page: page if page.value("itest_v", row_name="a") == want else None

        pulse.wait_for(v_is(7), RECOVERY_BOUND, "itest_v 7")
        pg.psql("ALTER TABLE itest_t ADD COLUMN extra int; UPDATE itest_t SET v = 8")
        page = pulse.wait_for(v_is(8), RECOVERY_BOUND, "itest_v 8 after the table changed")
        errors = page.value("pgpulse_query_errors_total", query="star_probe")
        self.assertGreaterEqual(errors, 1, "the prepared plan was not refused: not prepared?")
        # and it stays back: no run fails any more
        time.sleep(3)
        later = pulse.metrics()
        self.assertEqual(later.value("pgpulse_query_errors_total", query="star_probe"), errors)
        self.assertEqual(later.value("itest_v", row_name="a"), 8)

    def test_a_timed_out_query_stays_prepared(self):
        """A statement_timeout says nothing about the statement's name: the
        query is executed by name again once it runs in time, not planned
        afresh every run. PostgreSQL counts a prepared statement's
        executions in pg_prepared_statements, which a second query of the
        same session reads."""
        pg = PgServer()
        self.addCleanup(pg.destroy)
        pg.psql("CREATE TABLE itest_flag (); GRANT SELECT ON itest_flag TO PUBLIC")
        path = catalog_file(self, """queries:
  - name: sleepy_probe
    namespace: itest
    interval: 1s
    timeout: 1s
    sql: SELECT 1 AS one FROM pg_sleep(CASE WHEN EXISTS (SELECT FROM itest_flag) THEN 5 ELSE 0 END)
    columns:
      one: {role: gauge, help: "1 when the sleepy query ran in time"}
  - name: plans_probe
    namespace: itest
    interval: 1s
    timeout: 2s
    sql: >-
      SELECT coalesce(sum(generic_plans + custom_plans), 0) AS runs
      FROM pg_prepared_statements
      WHERE statement LIKE '%FROM itest_flag%' AND statement NOT LIKE '%pg_prepared_statements%'
    columns:
      runs: {role: gauge, help: "executions of the sleepy query by name"}
""")
        pulse = Pgpulse(["--catalog=" + path], env={"DATA_SOURCE_NAME": pg.uri()})
        self.addCleanup(pulse.destroy)

        def runs_at_least(n):
            return lambda page: page if (page.value("itest_runs") or 0) >= n else None

        pulse.wait_for(runs_at_least(2), RECOVERY_BOUND, "the sleepy query executed by name")
        pg.psql("INSERT INTO itest_flag DEFAULT VALUES")
        page = pulse.wait_for(
            lambda p: p if (p.value("pgpulse_query_errors_total", query="sleepy_probe") or 0) >= 1
            else None, RECOVERY_BOUND, "the sleepy query timed out")
        pg.psql("DELETE FROM itest_flag")
        before = page.value("itest_runs")
        pulse.wait_for(runs_at_least(before + 3), RECOVERY_BOUND,
                       f"executions by name past {before} after the timeout (sent unnamed?)")
