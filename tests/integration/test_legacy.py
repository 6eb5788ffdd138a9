"""postgres_exporter's queries.yaml through --extend.query-path, against a real server.

Covers: a file in upstream's format with LABEL, GAUGE, COUNTER, DISCARD and
MAPPEDMETRIC columns gives upstream's metric names, types, HELP texts and
values next to the built-in metrics; DURATION, HISTOGRAM and timestamp
columns give, sample by sample, what postgres_exporter's conversions give
(Go durations in milliseconds, arrays of bounds and cumulative counts, unix
seconds), and promtool accepts the page; pg_exporter_user_queries_load_error is
0 with the file's sha256; PG_EXPORTER_EXTEND_QUERY_PATH does the same as the
flag; a broken file stops start-up with exit 1 and file:line:column, and so
does a histogram whose samples another column produces; SIGHUP after editing the file
picks up the change, and a broken edit keeps the running queries and sets
the load-error metric to 1 with the new file's hash; master: true does not
run on a standby.
"""

import hashlib
import math
import os
import shutil
import signal
import tempfile
import unittest

from pgharness import PgServer, Pgpulse, assert_promtool_ok, wait_for

STARTUP_BOUND = 15  # seconds a failing start-up may take to exit

# Upstream's format, as in its exporter/tests/user_queries_ok.yaml.
QUERIES = """\
pg_itest_legacy:
  query: "SELECT datname, 'exclusive' AS tag_lockmode, {answer} AS answer,
          xact_commit + 1000000 AS commits, 'x' AS junk, 5 AS mapped
          FROM pg_stat_database WHERE datname = current_database()"
  cache_seconds: 1
  runonserver: ">=9.6.0"
  metrics:
    - datname:
        usage: "LABEL"
        description: "Name of the database"
    - tag_lockmode:
        usage: "LABEL"
        description: "Type of lock"
    - answer:
        usage: "GAUGE"
        description: "The answer"
    - commits:
        usage: "COUNTER"
        description: "Transactions committed, plus a million"
    - junk:
        usage: "DISCARD"
        description: "Not exported"
    - mapped:
        usage: "MAPPEDMETRIC"
        description: "Never has a value in postgres_exporter either"
        metric_mapping:
          a: 1
"""

PRIMARY_ONLY = """\
pg_itest_master:
  query: "SELECT 1 AS one"
  master: true
  cache_seconds: 1
  metrics:
    - one:
        usage: "GAUGE"
        description: "Only on a primary"
pg_itest_any:
  query: "SELECT 1 AS one"
  cache_seconds: 1
  metrics:
    - one:
        usage: "GAUGE"
        description: "Anywhere"
"""

# line 6, column 16: an unknown usage
BROKEN = """\
pg_itest_broken:
  query: "SELECT 1 AS n"
  metrics:
    - n:
        description: "a typo in the usage"
        usage: "GAGUE"
"""

# line 7, column 7: the histogram's _sum listed again as a gauge
HISTOGRAM_CLASH = """\
pg_process_idle:
  query: "SELECT 'x' AS application_name, ARRAY[1, 2] AS seconds"
  metrics:
    - seconds:
        usage: "HISTOGRAM"
        description: "Idle time of server processes"
    - seconds_sum:
        usage: "GAUGE"
        description: "Total idle time"
"""

# DURATION, HISTOGRAM and a timestamp GAUGE, one row per app; the bounds
# are unsorted and repeat one (its last count counts), as upstream reads a
# Go map; b's duration is "-1" and c's PostgreSQL interval text: no sample
CONVERSIONS = """\
pg_itest_conv:
  query: |
    SELECT app, ARRAY[2.5, 0.5, 1, 1] AS seconds, bk AS seconds_bucket,
           total AS seconds_sum, n AS seconds_count, took, at
    FROM (VALUES ('a', ARRAY[3, 1, 2, 3], 7.25::float8, 4, '1h2m3.5s', to_timestamp(86400)),
                 ('b', ARRAY[2, 0, 0, 0], 6, 2, '-1', '2024-02-29 12:34:56.5+00'::timestamptz),
                 ('c', ARRAY[0, 0, 0, 0], 0, 0, (interval '1 second')::text, NULL))
         AS t(app, bk, total, n, took, at)
  cache_seconds: 1
  metrics:
    - app:
        usage: "LABEL"
        description: "Application"
    - seconds:
        usage: "HISTOGRAM"
        description: "Idle time"
    - took:
        usage: "DURATION"
        description: "How long it took"
    - at:
        usage: "GAUGE"
        description: "When"
"""


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class LegacyQueriesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgServer()
        cls.addClassCleanup(cls.pg.destroy)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pgpulse-legacy-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, "queries.yaml")

    def start(self, args=(), env=None, wait=True, pg=None):
        env = {"DATA_SOURCE_NAME": (pg or self.pg).uri(), **(env or {})}
        pulse = Pgpulse(args, env=env, wait=wait)
        self.addCleanup(pulse.destroy)
        return pulse

    def exits_with_1(self, pulse):
        """Waits for a start-up failure; returns stderr."""
        try:
            pulse.proc.wait(STARTUP_BOUND)
        except Exception:
            self.fail(f"pgpulse {pulse.argv[1:]} kept running; stderr:\n{pulse.stderr()}")
        self.assertEqual(pulse.proc.returncode, 1, pulse.stderr())
        return pulse.stderr()

    def load_error(self, page):
        found = page.find("pg_exporter_user_queries_load_error")
        self.assertEqual(len(found), 1, found)
        return found[0]

    def check_series(self, page, answer):
        self.assertEqual(page.value("pg_itest_legacy_answer", datname="postgres",
                                    tag_lockmode="exclusive"), answer)
        commits = self.pg.scalar("SELECT xact_commit FROM pg_stat_database "
                                 "WHERE datname = 'postgres'")
        self.assertGreaterEqual(page.value("pg_itest_legacy_commits", datname="postgres",
                                           tag_lockmode="exclusive"), 1000000)
        self.assertLessEqual(page.value("pg_itest_legacy_commits"), 1000000 + int(commits))
        # server="host:port" on every series, as upstream's user queries
        self.assertEqual(page.find("pg_itest_legacy_answer")[0].labels["server"],
                         self.pg.label())
        fam = page.families["pg_itest_legacy_answer"]
        self.assertEqual((fam.type, fam.help), ("gauge", "The answer"))
        fam = page.families["pg_itest_legacy_commits"]
        self.assertEqual((fam.type, fam.help),
                         ("counter", "Transactions committed, plus a million"))
        names = {s.name for s in page.samples}
        self.assertFalse({"pg_itest_legacy_junk", "pg_itest_legacy_mapped",
                          "pg_itest_legacy_datname"} & names)

    def test_flag_series_and_load_metric(self):
        digest = write(self.path, QUERIES.format(answer=42))
        pulse = self.start(["--extend.query-path=" + self.path])
        page = pulse.wait_for(lambda p: p.find("pg_itest_legacy_answer") and p, 30,
                              "the legacy query's series")
        self.check_series(page, 42)
        err = self.load_error(page)
        self.assertEqual(err.labels, {"filename": self.path, "hashsum": digest})
        self.assertEqual(err.value, 0)
        self.assertEqual(page.families["pg_exporter_user_queries_load_error"].type, "gauge")
        # the built-in catalog still runs next to it
        page = pulse.wait_for(lambda p: p.find("pg_locks_count") and p, 30, "built-in metrics")
        self.assertEqual(page.problems, [])
        _, _, body = pulse.get()
        assert_promtool_ok(self, body)
        pulse.stop_checked()

    def test_metric_prefix(self):
        """--metric-prefix replaces the first "pg" of each legacy namespace,
        as upstream; the built-in catalog and pg_up keep their names."""
        write(self.path, QUERIES.format(answer=5))
        pulse = self.start(["--extend.query-path=" + self.path],
                           env={"PG_EXPORTER_METRIC_PREFIX": "acme"})
        page = pulse.wait_for(lambda p: p.find("acme_itest_legacy_answer") and p, 30,
                              "the prefixed series")
        self.assertEqual(page.value("acme_itest_legacy_answer"), 5)
        self.assertEqual(page.find("pg_itest_legacy_answer"), [])
        self.assertEqual(page.value("pg_up"), 1)
        self.assertTrue(page.find("pg_locks_count") or page.find("pg_settings_max_connections"))
        pulse.stop_checked()
        err = self.exits_with_1(self.start(["--extend.query-path=" + self.path,
                                            "--metric-prefix=a-b"], wait=False))
        self.assertIn("with --metric-prefix is", err)

    def test_no_flag_no_load_metric(self):
        pulse = self.start()
        page = pulse.wait_for(lambda p: p.find("pg_locks_count") and p, 30, "built-in metrics")
        self.assertEqual(page.find("pg_exporter_user_queries_load_error"), [])

    def test_environment_variable(self):
        digest = write(self.path, QUERIES.format(answer=7))
        pulse = self.start(env={"PG_EXPORTER_EXTEND_QUERY_PATH": self.path})
        page = pulse.wait_for(lambda p: p.find("pg_itest_legacy_answer") and p, 30,
                              "the legacy query's series")
        self.check_series(page, 7)
        self.assertEqual(self.load_error(page).labels["hashsum"], digest)

    def test_broken_file_stops_startup(self):
        write(self.path, BROKEN)
        err = self.exits_with_1(self.start(["--extend.query-path=" + self.path], wait=False))
        # logfmt escapes the message's quotes
        self.assertIn(f'{self.path}:6:16: bad usage \\"GAGUE\\"', err)

    def test_histogram_clash_stops_startup(self):
        write(self.path, HISTOGRAM_CLASH)
        err = self.exits_with_1(self.start(["--extend.query-path=" + self.path], wait=False))
        self.assertIn(f'{self.path}:7:7: metric \\"pg_process_idle_seconds_sum\\" is produced '
                      'twice', err)

    def test_duration_histogram_and_timestamps(self):
        write(self.path, CONVERSIONS)
        pulse = self.start(["--extend.query-path=" + self.path])
        page = pulse.wait_for(lambda p: p.find("pg_itest_conv_seconds_count") and p, 30,
                              "the legacy histogram")
        # upstream's server label is on every series of a user query
        server = self.pg.label()
        self.assertEqual({s.labels.pop("server", None) for s in page.samples
                          if s.name.startswith("pg_itest_conv_")}, {server})
        # c's NULL timestamp is NaN, as upstream reads a NULL GAUGE
        self.assertTrue(math.isnan(page.value("pg_itest_conv_at", app="c")))
        got = sorted((s.name, tuple(sorted(s.labels.items())), s.value)
                     for s in page.samples if s.name.startswith("pg_itest_conv_")
                     and not math.isnan(s.value))

        def hist(app, buckets, total, count):
            out = [("pg_itest_conv_seconds_bucket", (("app", app), ("le", le)), v)
                   for le, v in buckets]
            return out + [("pg_itest_conv_seconds_sum", (("app", app),), total),
                          ("pg_itest_conv_seconds_count", (("app", app),), count)]

        want = sorted(
            hist("a", [("0.5", 1), ("1", 3), ("2.5", 3), ("+Inf", 4)], 7.25, 4)
            + hist("b", [("0.5", 0), ("1", 0), ("2.5", 2), ("+Inf", 2)], 6, 2)
            + hist("c", [("0.5", 0), ("1", 0), ("2.5", 0), ("+Inf", 0)], 0, 0)
            + [("pg_itest_conv_took_milliseconds", (("app", "a"),), 3723500),
               ("pg_itest_conv_at", (("app", "a"),), 86400),
               ("pg_itest_conv_at", (("app", "b"),), 1709210096)])
        self.assertEqual(got, want)
        fams = page.families
        self.assertEqual((fams["pg_itest_conv_seconds"].type, fams["pg_itest_conv_seconds"].help),
                         ("histogram", "Idle time"))
        self.assertEqual((fams["pg_itest_conv_took_milliseconds"].type,
                          fams["pg_itest_conv_took_milliseconds"].help),
                         ("gauge", "How long it took"))
        self.assertEqual(fams["pg_itest_conv_at"].type, "gauge")
        self.assertNotIn("pg_itest_conv_took", fams)
        self.assertEqual(page.problems, [])
        _, _, body = pulse.get()
        assert_promtool_ok(self, body)
        # the row's query did not fail: a value that does not convert is
        # one missing sample, as upstream
        self.assertEqual(page.value("pgpulse_query_errors_total", query="legacy:pg_itest_conv"), 0)
        pulse.stop_checked()

    def test_missing_file_stops_startup(self):
        missing = os.path.join(self.dir, "nope.yaml")
        err = self.exits_with_1(self.start(["--extend.query-path=" + missing], wait=False))
        self.assertIn(f"{missing}: No such file or directory", err)

    def test_sighup_rereads_the_file(self):
        write(self.path, QUERIES.format(answer=1))
        pulse = self.start(["--extend.query-path=" + self.path])
        pulse.wait_for(lambda p: p.find("pg_itest_legacy_answer") and p, 30, "the first value")

        digest = write(self.path, QUERIES.format(answer=2))
        pulse.proc.send_signal(signal.SIGHUP)
        page = pulse.wait_for(lambda p: p.find("pg_itest_legacy_answer", datname="postgres")
                              and p.value("pg_itest_legacy_answer") == 2 and p, 30,
                              "the edited query's value")
        self.check_series(page, 2)
        self.assertEqual(self.load_error(page).labels["hashsum"], digest)
        self.assertEqual(self.load_error(page).value, 0)

        # a broken edit: the running queries stay, the metric says 1 for it
        digest = write(self.path, BROKEN)
        pulse.proc.send_signal(signal.SIGHUP)
        page = pulse.wait_for(lambda p: p.value("pgpulse_config_last_reload_successful") == 0
                              and p, 30, "the failed reload")
        wait_for(lambda: f"{self.path}:6:16" in pulse.stderr(), 10,
                 what="the reload error with file:line:column")
        err = self.load_error(page)
        self.assertEqual((err.labels["hashsum"], err.value), (digest, 1))
        self.assertEqual(page.value("pg_itest_legacy_answer"), 2)
        self.assertTrue(pulse.running())
        pulse.stop_checked()

    def test_master_only_on_primary(self):
        write(self.path, PRIMARY_ONLY)
        standby = self.pg.add_standby()
        self.addCleanup(standby.destroy)
        on_standby = self.start(["--extend.query-path=" + self.path], pg=standby)
        on_primary = self.start(["--extend.query-path=" + self.path])
        page = on_primary.wait_for(lambda p: p.find("pg_itest_master_one")
                                   and p.find("pg_itest_any_one") and p, 30,
                                   "both queries on the primary")
        self.assertEqual(page.value("pg_itest_master_one"), 1)
        page = on_standby.wait_for(lambda p: p.find("pg_itest_any_one") and p, 30,
                                   "the query without master on the standby")
        # the 1s queries have run again since: still nothing from master: true
        ts = "pgpulse_query_last_success_timestamp_seconds"
        first = page.value(ts, query="legacy:pg_itest_any")
        page = on_standby.wait_for(lambda p: p.value(ts, query="legacy:pg_itest_any") > first
                                   and p, 30, "another run on the standby")
        self.assertEqual(page.value("pg_replication_is_replica"), 1)
        self.assertEqual(page.find("pg_itest_master_one"), [])
        self.assertEqual(page.find(ts, query="legacy:pg_itest_master"), [])

if __name__ == "__main__":
    unittest.main()
