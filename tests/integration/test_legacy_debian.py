"""Debian's example queries.yaml (0.11.1's, from prometheus-postgres-exporter)
loaded unchanged by pgpulse and by Debian's exporter, on one PostgreSQL 15.

Covers: pgpulse starts with --extend.query-path on the file as it is, next
to its default catalog; every family the file defines is on both pages or
on neither, with the same type and label names, and the per-table and
postmaster families with the same series (datname, schemaname, relname,
server) and the same values where they do not move (timestamps as unix
seconds: last_vacuum, start_time_seconds); the HISTOGRAM namespace
(pg_process_idle) gives a histogram on both; pg_stat_statements, written
for PostgreSQL 12 and older, fails on both and both say so the same way
(pg_exporter_last_scrape_error 1, no pg_stat_statements_* series,
pg_exporter_user_queries_load_error{filename,hashsum} 0: the file loaded);
pgpulse's page has no duplicate series and promtool accepts it.
"""

import os
import subprocess
import unittest

import yaml

from pgharness import PSQL, PgServer, Pgpulse, assert_promtool_ok, wait_for
from test_compat_011 import PG_EXPORTER, PgExporter

EXAMPLE = os.environ.get(
    "PGPULSE_DEBIAN_QUERIES",
    "/usr/share/doc/prometheus-postgres-exporter/examples/queries.yaml")

# Families of the file that neither exporter shows, and why.
ABSENT_FROM_BOTH = {
    # its SQL reads total_time, min_time, ... which PostgreSQL 13 renamed
    # (total_exec_time, ...): the query fails on both (reference, 4.4)
    "pg_stat_statements",
}

# Values that are the same on both pages when read a few seconds apart:
# timestamps (upstream's unix seconds) and what no one changes meanwhile.
STEADY = ("pg_postmaster_start_time_seconds", "pg_stat_user_tables_last_vacuum",
          "pg_stat_user_tables_last_analyze", "pg_stat_user_tables_vacuum_count",
          "pg_stat_user_tables_analyze_count", "pg_replication_lag")


def file_families():
    """{family: (namespace, type)} of every metric the file defines."""
    with open(EXAMPLE) as f:
        spec = yaml.safe_load(f)
    out = {}
    for ns, entry in spec.items():
        for item in entry["metrics"]:
            for col, m in item.items():
                usage = m["usage"]
                if usage in ("GAUGE", "COUNTER"):
                    out[f"{ns}_{col}"] = (ns, usage.lower())
                elif usage == "DURATION":
                    out[f"{ns}_{col}_milliseconds"] = (ns, "gauge")
                elif usage == "HISTOGRAM":
                    out[f"{ns}_{col}"] = (ns, "histogram")
    return out


def shape(page, name):
    """(type, label names, series) of a family, or None when it has no sample."""
    fam = page.families.get(name)
    if fam is None or not fam.samples:
        return None
    labels = frozenset(k for s in fam.samples for k in s.labels if k != "le")
    series = frozenset(tuple(sorted(s.labels.items())) for s in fam.samples)
    return ("gauge" if fam.type == "untyped" else fam.type, labels, series)


class DebianExampleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        assert os.access(PG_EXPORTER, os.X_OK), \
            f"{PG_EXPORTER} is not installed: deploy/deps.sh test installs it"
        assert os.path.exists(EXAMPLE), f"{EXAMPLE}: deploy/deps.sh test installs it"
        cls.pg = PgServer()
        cls.addClassCleanup(cls.pg.destroy)
        cls.pg.psql("CREATE TABLE pulse_t AS SELECT g AS id FROM generate_series(1, 100) g")
        cls.pg.psql("VACUUM ANALYZE pulse_t")
        # an idle session with a name: pg_process_idle has a row for it
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGAPPNAME"] = "pulse_idle"
        cls.idle = subprocess.Popen(
            [PSQL, "-X", "-q", "-h", "127.0.0.1", "-p", str(cls.pg.port), "-U", "postgres",
             "-d", "postgres"], env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        cls.addClassCleanup(cls.idle.wait, 10)
        cls.addClassCleanup(cls.idle.stdin.close)
        wait_for(lambda: cls.pg.scalar("SELECT count(*) FROM pg_stat_activity WHERE "
                                       "application_name = 'pulse_idle' AND state = 'idle'")
                 == "1", 30, what="the idle session")

        dsn = cls.pg.uri()
        cls.ref = PgExporter(dsn, ["--extend.query-path=" + EXAMPLE])
        cls.addClassCleanup(cls.ref.destroy)
        cls.pulse = Pgpulse(["--extend.query-path=" + EXAMPLE], env={"DATA_SOURCE_NAME": dsn})
        cls.addClassCleanup(cls.pulse.destroy)
        cls.families = file_families()
        # the namespaces that work run every 15 s: wait for each one's first run
        want = ["pg_replication_lag", "pg_postmaster_start_time_seconds",
                "pg_stat_user_tables_seq_scan", "pg_statio_user_tables_heap_blks_hit",
                "pg_process_idle_seconds_count"]
        cls.ref_page = wait_for(lambda: (lambda p: all(p.find(n) for n in want) and p)(
            cls.ref.metrics()), 30, what="postgres_exporter's page with the example's metrics")
        cls.page = cls.pulse.wait_for(
            lambda p: all(p.find(n, server=cls.pg.label()) for n in want) and p, 60,
            "pgpulse's page with the example's metrics")
        cls.ref_page = cls.ref.metrics()

    def test_same_families_types_and_labels(self):
        self.assertIn("pg_process_idle_seconds", self.families)  # the file is the one we think
        diffs = []
        for name, (ns, typ) in sorted(self.families.items()):
            ref, mine = shape(self.ref_page, name), shape(self.page, name)
            if ns in ABSENT_FROM_BOTH:
                self.assertEqual((ref, mine), (None, None), name)
                continue
            if ref is None or mine is None:
                diffs.append(f"{name}: on postgres_exporter's page {ref is not None}, "
                             f"on pgpulse's {mine is not None}")
                continue
            # pgpulse's page also has the built-in catalog's series of the
            # same families (pg_stat_user_tables_*, pg_postmaster_*), without
            # server: compare the file's series, those with server
            mine_series = frozenset(s for s in mine[2] if "server" in dict(s))
            mine_labels = frozenset(k for s in mine_series for k, _ in s if k != "le")
            if (ref[0], ref[1]) != (mine[0], mine_labels) or ref[0] != typ:
                diffs.append(f"{name}: pgpulse {mine[0]} {sorted(mine_labels)}, "
                             f"postgres_exporter {ref[0]} {sorted(ref[1])}, file {typ}")
            # the same tables, database and server; the idle sessions
            # differ (each exporter's own connection is one of them)
            if ns != "pg_process_idle" and ref[2] != mine_series:
                diffs.append(f"{name}: series differ: pgpulse {sorted(mine_series)}, "
                             f"postgres_exporter {sorted(ref[2])}")
        self.maxDiff = None
        self.assertEqual(diffs, [])

    def test_histogram_has_the_idle_session(self):
        for page in (self.ref_page, self.page):
            self.assertEqual(page.families["pg_process_idle_seconds"].type, "histogram")
            self.assertEqual(page.families["pg_process_idle_seconds"].help,
                             "Idle time of server processes")
            les = [s.labels["le"] for s in page.find("pg_process_idle_seconds_bucket",
                                                     application_name="pulse_idle")]
            self.assertEqual(les, ["1", "2", "5", "15", "30", "60", "90", "120", "300", "+Inf"])
            self.assertEqual(page.value("pg_process_idle_seconds_count",
                                        application_name="pulse_idle"), 1)

    def test_steady_values_agree(self):
        for name in STEADY:
            ref = {tuple(sorted(s.labels.items())): s.value for s in self.ref_page.find(name)}
            mine = {tuple(sorted(s.labels.items())): s.value
                    for s in self.page.find(name, server=self.pg.label())}
            self.assertTrue(ref, name)
            self.assertEqual(mine, ref, name)
        # a real timestamp, not 1970's: the VACUUM above
        self.assertGreater(self.page.value("pg_stat_user_tables_last_vacuum", relname="pulse_t",
                                           server=self.pg.label()), 1.6e9)

    def test_pg_stat_statements_fails_alike(self):
        for page in (self.ref_page, self.page):
            self.assertEqual(page.value("pg_exporter_last_scrape_error"), 1)
            self.assertEqual([s for s in page.samples if s.name.startswith("pg_stat_statements")],
                             [])
        ref = self.ref_page.find("pg_exporter_user_queries_load_error")
        mine = self.page.find("pg_exporter_user_queries_load_error")
        self.assertEqual([(s.labels, s.value) for s in mine], [(s.labels, s.value) for s in ref])
        self.assertEqual(mine[0].value, 0)
        # pgpulse names the query and the server's error
        self.assertIn('query=legacy:pg_stat_statements err="relation \\"pg_stat_statements\\" '
                      'does not exist', self.pulse.stderr())

    def test_page_is_valid(self):
        self.assertEqual(self.page.problems, [])
        _, _, body = self.pulse.get()
        assert_promtool_ok(self, body)


if __name__ == "__main__":
    unittest.main()
