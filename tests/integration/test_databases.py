"""Several databases of one server: server-wide views once per server,
database views once per database.

Covers: with three databases of one server as three DSNs (and a second
server beside them), pg_settings_*, pg_stat_database_*, pg_locks_count and
the other server-scope families appear once per server, carrying server
but no datname of their own making; pg_stat_user_tables_* appear for the
tables of every database, told apart by datname; pg_up and the other
per-target series carry server and datname; the page is valid exposition.
A reload that drops the database whose connection runs the server-wide
queries hands them to another one: they stay on the page, once.
--auto-discover-databases with --exclude-databases collects every other
database of the listed server but the excluded one, picks up a database
created meanwhile and drops one that is dropped. With
--collection.max-connections-per-server=3, twelve discovered databases are
all collected and up while the server never sees more than three pgpulse
backends; a bound of 1 is refused.
"""

import os
import shutil
import signal
import tempfile
import time
import unittest

from pgharness import PgServer, Pgpulse, assert_promtool_ok

DBS = ("app1", "app2", "app3")


class DatabasesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgServer()
        cls.other = PgServer()
        for db in DBS:
            cls.pg.psql(f"CREATE DATABASE {db}")
            cls.pg.psql(f"CREATE TABLE t_{db} (i int); INSERT INTO t_{db} VALUES (1)", dbname=db)

    @classmethod
    def tearDownClass(cls):
        cls.pg.destroy()
        cls.other.destroy()

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pgpulse-dbs-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def dsns(self, dbs):
        return [self.pg.uri(dbname=db) for db in dbs] + [self.other.uri()]

    def start(self, dbs):
        flags = os.path.join(self.dir, "flags")
        with open(flags, "w") as f:
            f.write(f"--data-source.name={','.join(self.dsns(dbs))}\n")
        # the shipped catalog, with the per-table queries every 2 s
        with open(os.path.join(self.dir, "fast.yaml"), "w") as out:
            with open(os.path.join(os.environ["PGPULSE_SOURCE_DIR"], "queries",
                                   "tables.yaml")) as f:
                out.write(f.read().replace("interval: 60s", "interval: 2s")
                          .replace("timeout: 30s", "timeout: 2s"))
        cat = os.path.join(self.dir, "catalog")
        os.mkdir(cat)
        src = os.path.join(os.environ["PGPULSE_SOURCE_DIR"], "queries")
        for name in os.listdir(src):
            if name.endswith(".yaml") and name != "tables.yaml":
                shutil.copy(os.path.join(src, name), cat)
        shutil.copy(os.path.join(self.dir, "fast.yaml"), cat)
        pulse = Pgpulse([f"--config.flags-file={flags}", f"--catalog={cat}"])
        self.addCleanup(pulse.destroy)
        return pulse, flags

    def tables_of(self, page):
        return {(s.labels["server"], s.labels["datname"], s.labels["relname"])
                for s in page.find("pg_stat_user_tables_n_live_tup")}

    def test_server_views_once_database_views_each(self):
        pulse, flags = self.start(DBS)
        a, b = self.pg.label(), self.other.label()
        want_tables = {(a, db, f"t_{db}") for db in DBS}

        def ready(page):
            return (len([s for s in page.find("pg_up") if s.value == 1]) == len(DBS) + 1
                    and want_tables <= self.tables_of(page)
                    and len(page.find("pg_settings_max_connections")) == 2 and page)
        page = pulse.wait_for(ready, 60, "every database's tables and both servers' settings")
        self.assertEqual(page.problems, [])
        _, _, body = pulse.get("/metrics")
        assert_promtool_ok(self, body)

        # server-wide: once per server, no datname label added
        for fam in ("pg_settings_max_connections", "pg_postmaster_start_time_seconds"):
            servers = [s.labels["server"] for s in page.find(fam)]
            self.assertEqual(sorted(servers), sorted([a, b]), fam)
            self.assertTrue(all("datname" not in s.labels for s in page.find(fam)), fam)
        # pg_stat_database lists every database of a server once, not once per target
        rows = [(s.labels["server"], s.labels["datname"])
                for s in page.find("pg_stat_database_xact_commit")]
        self.assertEqual(len(rows), len(set(rows)))
        self.assertIn((a, "app2"), rows)
        # per target: server and datname
        self.assertEqual({(s.labels["server"], s.labels["datname"]) for s in page.find("pg_up")},
                         {(a, db) for db in DBS} | {(b, "postgres")})
        # database scope: the heap-block sums, one per database
        heap = {(s.labels["server"], s.labels["datname"])
                for s in page.find("pg_stat_database_heap_blks_hit")}
        self.assertEqual(heap, {(a, db) for db in DBS} | {(b, "postgres")})

        # drop the database whose connection runs the server-wide queries
        # (the one with a pg_settings run of its own): another takes over
        leaders = [s.labels["datname"] for s in page.find("pgpulse_query_duration_seconds",
                                                          server=a, query="pg_settings")]
        self.assertEqual(len(leaders), 1, "one connection of the server runs pg_settings")
        rest = [db for db in DBS if db != leaders[0]]
        with open(flags, "w") as f:
            f.write(f"--data-source.name={','.join(self.dsns(rest))}\n")
        pulse.proc.send_signal(signal.SIGHUP)

        def handed_over(page):
            ups = {s.labels["datname"] for s in page.find("pg_up", server=a)}
            return (ups == set(rest)
                    and len(page.find("pg_settings_max_connections", server=a)) == 1 and page)
        page = pulse.wait_for(handed_over, 60, "the server-wide queries on another database")
        self.assertEqual(page.problems, [])
        self.assertEqual({t for t in self.tables_of(page) if t[0] == a},
                         {(a, db, f"t_{db}") for db in rest})
        pulse.stop_checked()


    def test_auto_discovery(self):
        fast = os.path.join(self.dir, "fast.yaml")
        with open(fast, "w") as f:
            f.write("""queries:
  - name: tables
    namespace: itest_tables
    interval: 1s
    sql: SELECT current_database() AS datname, count(*) AS n FROM pg_stat_user_tables
    columns:
      datname: label
      n: {role: gauge, help: "tables of the connected database"}
""")
        pulse = Pgpulse([f"--catalog={fast}", "--auto-discover-databases",
                         "--exclude-databases=app3, template0"],
                        env={"DATA_SOURCE_NAME": self.pg.uri(dbname="postgres")})
        self.addCleanup(pulse.destroy)

        def dbs(page):
            return {s.labels["datname"] for s in page.find("itest_tables_n")}
        page = pulse.wait_for(lambda p: dbs(p) == {"postgres", "app1", "app2"} and p, 60,
                              "every database but the excluded one")
        self.assertEqual(page.problems, [])
        self.assertEqual({s.labels["datname"] for s in page.find("pg_up")},
                         {"postgres", "app1", "app2"})

        self.pg.psql("CREATE DATABASE app9")
        self.addCleanup(lambda: self.pg.psql("DROP DATABASE IF EXISTS app9 WITH (FORCE)"))
        pulse.wait_for(lambda p: "app9" in dbs(p), 60, "the new database collected")
        self.pg.psql("DROP DATABASE app9 WITH (FORCE)")
        page = pulse.wait_for(lambda p: "app9" not in {s.labels["datname"]
                                                       for s in p.find("pg_up")} and p, 60,
                              "the dropped database gone from the page")
        self.assertEqual(dbs(page), {"postgres", "app1", "app2"})
        pulse.wait_log("databases discovered")
        pulse.stop_checked()

    def test_databases_take_turns_within_the_connection_bound(self):
        """Twelve databases, at most three connections to the server: the
        leader keeps one (server-wide queries, discovery), the others share
        two seats between their runs. Every database is still collected and
        up, and the server never sees more than three pgpulse backends."""
        many = [f"turn{i}" for i in range(12)]
        for db in many:
            self.pg.psql(f"CREATE DATABASE {db}")
            self.addCleanup(lambda db=db: self.pg.psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        fast = os.path.join(self.dir, "turns.yaml")
        with open(fast, "w") as f:
            f.write("""queries:
  - name: turns
    namespace: itest_turns
    interval: 2s
    sql: SELECT current_database() AS datname, pg_backend_pid() AS pid
    columns:
      datname: label
      pid: {role: gauge, help: "the backend that read it"}
""")
        pulse = Pgpulse([f"--catalog={fast}", "--auto-discover-databases",
                         "--collection.max-connections-per-server=3",
                         "--include-databases=" + ",".join(["postgres", *many])],
                        env={"DATA_SOURCE_NAME": self.pg.uri(dbname="postgres")})
        self.addCleanup(pulse.destroy)
        want = {"postgres", *many}

        def backends():
            return int(self.pg.scalar("SELECT count(*) FROM pg_stat_activity "
                                      "WHERE application_name = 'pgpulse'"))
        seen_max, pids = 0, {}

        def all_collected(page):
            nonlocal seen_max
            seen_max = max(seen_max, backends())
            for smp in page.find("itest_turns_pid"):
                pids.setdefault(smp.labels["datname"], set()).add(smp.value)
            return set(pids) == want and page
        page = pulse.wait_for(all_collected, 90, "every database collected in turn")
        self.assertEqual({s.labels["datname"] for s in page.find("pg_up") if s.value == 1}, want)
        # keep watching for a while: turns keep coming, the bound holds
        end = time.time() + 8
        while time.time() < end:
            seen_max = max(seen_max, backends())
            page = pulse.metrics()
            for smp in page.find("itest_turns_pid"):
                pids.setdefault(smp.labels["datname"], set()).add(smp.value)
            time.sleep(0.2)
        self.assertLessEqual(seen_max, 3)
        self.assertGreater(seen_max, 0)
        # databases that rest reconnect for their runs: new backends
        self.assertTrue(any(len(p) > 1 for d, p in pids.items() if d != "postgres"), pids)
        self.assertEqual(pulse.metrics().problems, [])
        pulse.stop_checked()

    def test_connection_bound_of_one_is_refused(self):
        pulse = Pgpulse(["--collection.max-connections-per-server=1"], wait=False,
                        env={"DATA_SOURCE_NAME": self.pg.uri()})
        self.addCleanup(pulse.destroy)
        self.assertEqual(pulse.proc.wait(20), 1)
        self.assertIn("--collection.max-connections-per-server", pulse.stderr())


if __name__ == "__main__":
    unittest.main()
