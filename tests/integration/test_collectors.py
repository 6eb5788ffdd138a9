"""Collectors and their flags against one real PostgreSQL 15.

Covers: the default page has every family postgres_exporter v0.20.1's
default collectors show on a PostgreSQL 15 primary (the list is
postgres_exporter_v0.20.1_pg15.families, with upstream's types) and promtool
accepts it; pg_scrape_collector_{success,duration_seconds}{collector} per
collector, 0 for a collector whose query fails (stat_statements where the
extension is missing); --no-collector.X drops its families;
--collector.stat_statements with the extension gives pg_stat_statements_*;
--disable-settings-metrics and --disable-default-metrics (and their
environment variables) drop pg_settings_* and pg_static /
pg_stat_database_conflicts_*; a changed flags file takes effect at reload;
--collector.bogus stops start-up naming the flag; --dumpmaps prints the
catalog and exits 0; --collector.process_idle gives a histogram promtool
accepts; with several targets the collector series carry server and
datname, as pg_up does.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import unittest

from pgharness import PSQL, PgServer, Pgpulse, assert_promtool_ok, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
FAMILIES_FILE = os.path.join(HERE, "postgres_exporter_v0.20.1_pg15.families")
# what the server is made to do in setUpClass (see the families file)
SET_UP = {"slot", "archived"}
NO_EXT_DB = "pulse_noext"
STARTUP_BOUND = 15


def upstream_families():
    """[(family, type, needs)] from the families file."""
    out = []
    with open(FAMILIES_FILE) as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if line:
                out.append((line[0], line[1], line[2] if len(line) > 2 else None))
    return out


def collectors_of(page, name):
    return {s.labels["collector"]: s.value for s in page.find(name)}


class CollectorsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgServer(settings={
            "shared_preload_libraries": "'pg_stat_statements'",
            "archive_mode": "on",
            "archive_command": "'/bin/true'",
            "max_slot_wal_keep_size": "'1GB'",
        })
        cls.addClassCleanup(cls.pg.destroy)
        cls.pg.psql("CREATE TABLE pulse_t AS SELECT g AS id FROM generate_series(1, 100) g")
        cls.pg.psql("CREATE INDEX pulse_t_id ON pulse_t (id)")
        cls.pg.psql("ANALYZE pulse_t")
        cls.pg.psql("SELECT pg_create_physical_replication_slot('pulse_slot', true)")
        cls.pg.psql("SELECT pg_switch_wal()")
        cls.pg.psql("CREATE EXTENSION pg_stat_statements")
        cls.pg.psql(f"CREATE DATABASE {NO_EXT_DB}")
        cls.pulse = cls.start_pulse()
        cls.addClassCleanup(cls.pulse.destroy)
        cls.addClassCleanup(cls.pulse.stop_checked)  # runs first

        def complete(page):
            return all(page.find(name) for name, _, needs in upstream_families()
                       if needs is None or needs in SET_UP) and page
        cls.page = cls.pulse.wait_for(complete, 60, "every upstream default family")

    @classmethod
    def start_pulse(cls, args=(), env=None, dbname="postgres"):
        env = {"DATA_SOURCE_NAME": cls.pg.uri(dbname=dbname), **(env or {})}
        return Pgpulse(args, env=env)

    def another(self, args=(), env=None, dbname="postgres"):
        p = self.start_pulse(args, env, dbname)
        self.addCleanup(p.destroy)
        self.addCleanup(p.stop_checked)
        return p

    @staticmethod
    def settled(collector):
        """A predicate: the page reports collector's outcome."""
        return lambda page: collector in collectors_of(page, "pg_scrape_collector_success") \
            and page

    # -- the default page ------------------------------------------------

    def test_default_page_has_upstream_families(self):
        missing, wrong = [], []
        for name, typ, needs in upstream_families():
            if needs is not None and needs not in SET_UP:
                continue
            fam = self.page.families.get(name)
            if fam is None or not fam.samples:
                missing.append(name)
            elif fam.type != typ and not (typ == "untyped" and fam.type == "gauge"):
                wrong.append(f"{name}: {fam.type}, upstream {typ}")
        self.assertEqual(missing, [], "families missing from the default page")
        self.assertEqual(wrong, [], "families with another TYPE than upstream's")

    def test_promtool_accepts_the_page(self):
        status, _, body = self.pulse.get("/metrics")
        self.assertEqual(status, 200)
        assert_promtool_ok(self, body)

    def test_default_collectors_report_success(self):
        ok = collectors_of(self.page, "pg_scrape_collector_success")
        for c in ("database", "locks", "replication", "replication_slots", "roles", "settings",
                  "stat_activity", "stat_archiver", "stat_bgwriter", "stat_database",
                  "stat_user_tables", "statio_user_tables", "wal"):
            with self.subTest(collector=c):
                self.assertEqual(ok.get(c), 1, f"pg_scrape_collector_success: {ok}")
        durations = collectors_of(self.page, "pg_scrape_collector_duration_seconds")
        self.assertEqual(set(durations), set(ok))
        self.assertTrue(all(0 <= d < 30 for d in durations.values()), durations)
        # off by default upstream: not loaded, so not reported
        for c in ("stat_statements", "database_wraparound", "statio_user_indexes"):
            self.assertNotIn(c, ok)
        self.assertFalse(self.page.find("pg_stat_statements_calls_total"))
        # a standby-only collector has no outcome on a primary
        self.assertNotIn("stat_wal_receiver", ok)

    def test_static_is_the_server_version(self):
        version = self.pg.scalar("SELECT version()")
        num = int(self.pg.scalar("SHOW server_version_num"))
        self.assertEqual(self.page.value("pg_static", version=version,
                                         short_version=f"{num // 10000}.{num % 10000}.0"), 1)

    def test_archiver_and_wal_equal_psql(self):
        page = self.pulse.metrics()
        self.assertGreaterEqual(page.value("pg_stat_archiver_archived_count"), 1)
        self.assertEqual(page.value("pg_stat_archiver_failed_count"),
                         float(self.pg.scalar("SELECT failed_count FROM pg_stat_archiver")))
        self.assertGreaterEqual(page.value("pg_stat_archiver_last_archive_age"), 0)
        segments = float(self.pg.scalar(
            "SELECT count(*) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'"))
        self.assertEqual(page.value("pg_wal_segments"), segments)
        self.assertEqual(page.value("pg_wal_size_bytes"), segments * 16 * 1024 * 1024)

    # -- flags -----------------------------------------------------------

    def test_no_collector_database_drops_its_families(self):
        page = self.another(["--no-collector.database"]).wait_for(
            self.settled("locks"), 30, "the locks collector")
        self.assertFalse(page.find("pg_database_size_bytes"))
        self.assertFalse(page.find("pg_database_connection_limit"))
        self.assertTrue(page.find("pg_locks_count"))
        self.assertNotIn("database", collectors_of(page, "pg_scrape_collector_success"))

    def test_stat_statements_with_the_extension(self):
        self.pg.psql("SELECT count(*) FROM pulse_t WHERE id > 50")
        page = self.another(["--collector.stat_statements"]).wait_for(
            lambda p: p.find("pg_stat_statements_calls_total") and p, 60,
            "pg_stat_statements_calls_total")
        for name in ("pg_stat_statements_calls_total", "pg_stat_statements_seconds_total",
                     "pg_stat_statements_rows_total",
                     "pg_stat_statements_block_read_seconds_total",
                     "pg_stat_statements_block_write_seconds_total"):
            with self.subTest(family=name):
                fam = page.families.get(name)
                self.assertIsNotNone(fam, f"{name} missing")
                self.assertEqual(fam.type, "counter")
                for s in fam.samples:
                    self.assertEqual(set(s.labels), {"user", "datname", "queryid"}, repr(s))
        self.assertEqual(collectors_of(page, "pg_scrape_collector_success")["stat_statements"], 1)

    def test_stat_statements_options(self):
        """The --collector.stat_statements.* flags, as upstream: the query
        text series, its length, the limit and the exclusions."""
        heavy = "SELECT count(*) FROM generate_series(1, 300000)"
        self.pg.psql(heavy + " -- from the other database", dbname=NO_EXT_DB)
        self.pg.psql(f"SET ROLE {self.pg.user}; {heavy} -- as the test user")
        self.pg.psql(heavy + " -- as postgres, in postgres")

        def have(page, **labels):
            return any(all(s.labels.get(k) == v for k, v in labels.items())
                       for s in page.find("pg_stat_statements_calls_total"))
        # without exclusions the other database and the other user show up
        plain = self.another(["--collector.stat_statements"]).wait_for(
            lambda p: have(p, datname=NO_EXT_DB) and have(p, user=self.pg.user) and p, 60,
            "statements of the other database and user")
        self.assertFalse(plain.find("pg_stat_statements_query_id"))
        page = self.another([
            "--collector.stat_statements", "--collector.stat_statements.include_query",
            "--collector.stat_statements.query_length=12",
            f"--collector.stat_statements.exclude_databases={NO_EXT_DB}, nosuchdb",
            f"--collector.stat_statements.exclude_users={self.pg.user}"]).wait_for(
            lambda p: p.find("pg_stat_statements_query_id") and p, 60, "the query texts")
        self.assertTrue(have(page, datname="postgres"))
        self.assertFalse(have(page, datname=NO_EXT_DB))
        self.assertFalse(have(page, user=self.pg.user))
        texts = page.find("pg_stat_statements_query_id")
        self.assertTrue(all(len(s.labels["query"]) <= 12 and s.value == 1 for s in texts), texts)
        ids = {s.labels["queryid"] for s in page.find("pg_stat_statements_calls_total")}
        self.assertLessEqual({s.labels["queryid"] for s in texts}, ids)
        # the limit, and a reload that changes it (the settings go with the
        # connection: the target reconnects)
        flags = os.path.join(tempfile.mkdtemp(prefix="pgpulse-ss-"), "flags")
        self.addCleanup(shutil.rmtree, os.path.dirname(flags), True)
        with open(flags, "w") as f:
            f.write("--collector.stat_statements\n--collector.stat_statements.limit=3\n")
        pulse = self.another(["--config.flags-file=" + flags])
        limited = pulse.wait_for(lambda p: p.find("pg_stat_statements_calls_total") and p, 60,
                                 "three statements")
        self.assertEqual(len(limited.find("pg_stat_statements_calls_total")), 3)
        with open(flags, "w") as f:
            f.write("--collector.stat_statements\n--collector.stat_statements.limit=1\n")
        pulse.proc.send_signal(signal.SIGHUP)
        pulse.wait_for(lambda p: len(p.find("pg_stat_statements_calls_total")) == 1, 60,
                       "one statement after the reload")

    def test_failing_collector_reports_zero(self):
        # the extension exists in "postgres" only: in NO_EXT_DB its view
        # does not, so the query fails; the process stays up and says so
        pulse = self.another(["--collector.stat_statements"], dbname=NO_EXT_DB)
        page = pulse.wait_for(self.settled("stat_statements"), 60, "the stat_statements outcome")
        ok = collectors_of(page, "pg_scrape_collector_success")
        self.assertEqual(ok["stat_statements"], 0)
        self.assertEqual(ok["locks"], 1)
        self.assertFalse(page.find("pg_stat_statements_calls_total"))
        self.assertEqual(page.value("pg_up"), 1)
        self.assertTrue(pulse.running())

    def test_process_idle_histogram(self):
        # a session that stays idle until the test ends
        idle = subprocess.Popen(
            [PSQL, "-X", "-q", f"host=127.0.0.1 port={self.pg.port} user=postgres "
             "dbname=postgres application_name=pulse_idle"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(idle.wait, 10)
        self.addCleanup(idle.stdin.close)
        wait_for(lambda: self.pg.scalar(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'pulse_idle' AND state = 'idle'") == "1",
            10, what="the idle session")
        pulse = self.another(["--collector.process_idle"])
        mine = {"state": "idle", "application_name": "pulse_idle"}
        page = pulse.wait_for(lambda p: p.find("pg_process_idle_seconds_count", **mine) and p,
                              30, "the idle session's histogram")
        fam = page.families["pg_process_idle_seconds"]
        self.assertEqual(fam.type, "histogram")
        buckets = {s.labels["le"]: s.value
                   for s in page.find("pg_process_idle_seconds_bucket", **mine)}
        self.assertEqual(list(buckets), ["1", "2", "5", "15", "30", "60", "90", "120", "300",
                                         "+Inf"])
        self.assertEqual(buckets["+Inf"], 1)
        self.assertEqual(buckets["300"], 1)  # idle for less than 5 minutes
        self.assertEqual(page.value("pg_process_idle_seconds_count", **mine), 1)
        self.assertGreaterEqual(page.value("pg_process_idle_seconds_sum", **mine), 0)
        self.assertEqual(page.problems, [])
        status, _, body = pulse.get("/metrics")
        assert_promtool_ok(self, body)

    def test_several_targets_label_their_collectors(self):
        # two databases of one server: server-wide collectors run once (on
        # the first), per-database ones on each, and every series says
        # which target it is about, as pg_up does
        dsn = self.pg.uri() + "," + self.pg.uri(dbname=NO_EXT_DB)
        pulse = self.another(env={"DATA_SOURCE_NAME": dsn})
        server = self.pg.label()
        page = pulse.wait_for(
            lambda p: len(p.find("pg_scrape_collector_success", collector="stat_user_tables")) == 2
            and p, 30, "stat_user_tables on both targets")
        self.assertEqual(page.problems, [])
        for name in ("pg_scrape_collector_success", "pg_scrape_collector_duration_seconds"):
            for s in page.find(name):
                self.assertEqual(set(s.labels), {"server", "datname", "collector"}, repr(s))
                self.assertEqual(s.labels["server"], server)
        self.assertEqual({s.labels["datname"] for s in page.find(
            "pg_scrape_collector_success", collector="stat_user_tables")}, {"postgres", NO_EXT_DB})
        self.assertEqual(len(page.find("pg_scrape_collector_success", collector="locks")), 1)
        self.assertEqual({tuple(sorted(s.labels)) for s in page.find("pg_up")},
                         {("datname", "server")})

    def test_disable_settings_metrics(self):
        for args, env in ((["--disable-settings-metrics"], None),
                          ((), {"PG_EXPORTER_DISABLE_SETTINGS_METRICS": "true"})):
            with self.subTest(args=args, env=env):
                page = self.another(args, env).wait_for(self.settled("locks"), 30, "locks")
                self.assertEqual([f for f in page.families if f.startswith("pg_settings_")], [])
                self.assertNotIn("settings", collectors_of(page, "pg_scrape_collector_success"))
                self.assertTrue(page.find("pg_locks_count"))

    def test_disable_default_metrics(self):
        for args, env in ((["--disable-default-metrics"], None),
                          ((), {"PG_EXPORTER_DISABLE_DEFAULT_METRICS": "true"})):
            with self.subTest(args=args, env=env):
                page = self.another(args, env).wait_for(self.settled("locks"), 30, "locks")
                self.assertFalse(page.find("pg_static"))
                self.assertFalse(page.find("pg_stat_database_conflicts_confl_lock"))
                # as in postgres_exporter v0.20, collectors are not affected
                self.assertTrue(page.find("pg_locks_count"))
                self.assertTrue(page.find("pg_settings_max_connections"))

    def test_flag_beats_environment(self):
        page = self.another(["--no-disable-default-metrics"],
                          {"PG_EXPORTER_DISABLE_DEFAULT_METRICS": "true"}).wait_for(
            lambda p: p.find("pg_static") and p, 30, "pg_static")
        self.assertEqual(len(page.find("pg_static")), 1)

    def test_reload_applies_changed_collector_flags(self):
        tmp = tempfile.mkdtemp(prefix="pgpulse-collectors-")
        self.addCleanup(shutil.rmtree, tmp, True)
        flags = os.path.join(tmp, "flags")
        with open(flags, "w") as f:
            f.write("--no-collector.database\n")
        pulse = self.another([f"--config.flags-file={flags}"])
        page = pulse.wait_for(self.settled("locks"), 30, "locks")
        self.assertFalse(page.find("pg_database_size_bytes"))
        with open(flags, "w") as f:
            f.write("--collector.database_wraparound\n")
        pulse.proc.send_signal(signal.SIGHUP)
        page = pulse.wait_for(lambda p: p.find("pg_database_size_bytes")
                              and p.find("pg_database_wraparound_age_datfrozenxid_seconds")
                              and p, 30, "database and database_wraparound after the reload")
        self.assertEqual(collectors_of(page, "pg_scrape_collector_success")["database"], 1)

    def test_unknown_collector_is_fatal(self):
        p = Pgpulse(["--collector.bogus"], env={"DATA_SOURCE_NAME": self.pg.uri()}, wait=False)
        self.addCleanup(p.destroy)
        p.proc.wait(STARTUP_BOUND)
        self.assertNotEqual(p.proc.returncode, 0)
        self.assertIn("--collector.bogus", p.stderr())

    def test_dumpmaps_prints_the_catalog_and_exits(self):
        def dump(*args):
            p = Pgpulse(["--dumpmaps", *args], wait=False, listen=False)
            self.addCleanup(p.destroy)
            p.proc.wait(STARTUP_BOUND)
            self.assertEqual(p.proc.returncode, 0, p.stderr())
            with open(p.stdout_path) as f:
                return f.read()
        out = dump()
        for text in ("pg_locks\n", "collector: locks", "pg_locks_count gauge: Number of locks",
                     "pg_stat_database_conflicts\n", "(default metrics)"):
            self.assertIn(text, out)
        self.assertNotIn("pg_stat_statements_calls_total", out)
        out = dump("--collector.stat_statements", "--no-collector.locks")
        self.assertIn("pg_stat_statements_calls_total counter", out)
        self.assertNotIn("pg_locks_count", out)


if __name__ == "__main__":
    unittest.main()
