"""pgpulse with queries/compat/postgres_exporter-0.11.yaml next to Debian's
prometheus-postgres-exporter 0.11.1, on one real PostgreSQL 15 primary
with a streaming standby, an archiver and a replication slot.

Covers: with the compat catalog, every metric family Debian's exporter
shows is on pgpulse's page with the same type (untyped there is a gauge
here), the same label names, the same series (label values) and the same
HELP text, bar the differences listed in ALLOWED_*; settings, database
sizes and pg_static have the same values. Both exporters connect as a
login role that is only a member of
pg_monitor, and so does pgpulse with the default catalog and every
collector switched on, against the primary and the standby: no query
fails (pgpulse_query_errors_total is 0 for every query), so pg_monitor is
all the monitoring role needs (with the pg_stat_statements extension
created for stat_statements). The default catalog's differences from
0.11.1 are printed, not asserted: they are the input of docs/migration.md.
The metrics upstream's mixin alerts and dashboard read are on both pages
(those 0.11.1 had). With several DSNs the 0.11 catalog's series carry
server once, and promtool accepts its pages.
"""

import http.client
import os
import re
import unittest

from pgharness import (PgServer, Pgpulse, _Daemon, assert_promtool_ok, free_port,
                       parse_exposition, wait_for)

SOURCE_DIR = os.environ.get(
    "PGPULSE_SOURCE_DIR",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
COMPAT = os.path.join(SOURCE_DIR, "queries", "compat", "postgres_exporter-0.11.yaml")
PG_EXPORTER = os.environ.get("POSTGRES_EXPORTER_BIN", "/usr/bin/prometheus-postgres-exporter")

# The differences between the two pages that are allowed, and why. Every
# other family of 0.11.1's page must be on pgpulse's, alike.
ALLOWED_MISSING = (
    "go_",            # the Go runtime's metrics: pgpulse is not written in Go
    "promhttp_",      # the Go HTTP handler's own counters
    "process_",       # pgpulse has its own process_* set (no virtual_memory_max_bytes)
    "postgres_exporter_build_info",  # pgpulse_build_info{version} instead
)
ALLOWED_EXTRA = (
    "pgpulse_",       # pgpulse's own metrics (freshness, errors, HTTP, loop)
    "process_",
)
# Families whose series differ on purpose (labels and types still compared).
SERIES_DIFFER = {
    # pgpulse reports every collector of the catalog, 0.11.1 only its two
    # (and calls bgwriter's "bgwriter", pgpulse "stat_bgwriter")
    "pg_scrape_collector_duration_seconds", "pg_scrape_collector_success",
}

# Settings each client sets for its own session, so they differ between
# the two exporters' connections: Go's lib/pq sets extra_float_digits;
# pgpulse sets statement_timeout (the query's timeout) and lock_timeout
# (--lock-timeout). docs/migration.md says so.
SESSION_SETTINGS = {"pg_settings_extra_float_digits", "pg_settings_statement_timeout_seconds",
                    "pg_settings_lock_timeout_seconds"}

# Default catalog with every collector on, as the pg_monitor-only role:
# queries allowed to fail, with the reason. None: pg_monitor (which holds
# pg_read_all_stats, pg_read_all_settings and EXECUTE on pg_ls_waldir)
# covers every query, and stat_statements works once its extension exists.
ALLOWED_ERRORS = {}


# The metrics upstream's own mixin reads (postgres_mixin/alerts/postgres.libsonnet
# and dashboards/postgres-overview.json as tagged in v0.20.1), that
# docs/migration.md says work: on the page of the default catalog, and of
# the 0.11 catalog but for the ones 0.11.1 did not have either.
# pg_replication_lag is left out: neither upstream v0.20.1 nor pgpulse has it.
MIXIN = [
    "pg_stat_activity_count", "pg_settings_max_connections",
    "pg_settings_superuser_reserved_connections", "pg_up", "pg_stat_activity_max_tx_duration",
    "pg_stat_database_xact_commit", "pg_stat_database_xact_rollback",
    "pg_stat_database_blks_hit", "pg_stat_database_blks_read", "pg_stat_database_deadlocks",
    "pg_locks_count", "pg_settings_max_locks_per_transaction", "pg_replication_slots_active",
    "pg_replication_is_replica", "pg_exporter_last_scrape_error",
    "pg_stat_user_tables_n_dead_tup", "pg_stat_user_tables_n_live_tup",
    "pg_settings_autovacuum_vacuum_scale_factor", "pg_settings_autovacuum_vacuum_threshold",
    "pg_stat_bgwriter_checkpoints_timed_total", "pg_stat_bgwriter_checkpoints_req_total",
    # the dashboard's, besides those
    "pg_stat_database_numbackends", "pg_stat_database_tup_returned",
    "pg_stat_database_tup_fetched", "pg_stat_database_tup_inserted",
    "pg_stat_database_tup_updated", "pg_stat_database_tup_deleted",
    "pg_stat_database_conflicts", "pg_stat_bgwriter_buffers_alloc_total",
    "pg_stat_bgwriter_buffers_backend_total", "pg_stat_bgwriter_buffers_backend_fsync_total",
    "pg_stat_bgwriter_buffers_checkpoint_total", "pg_stat_bgwriter_buffers_clean_total",
]
NOT_IN_011 = {"pg_replication_is_replica", "pg_stat_user_tables_n_dead_tup",
              "pg_stat_user_tables_n_live_tup"}


def get(port, path="/metrics"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def shape(page):
    """{family: (type, label names, series label sets, HELP)}."""
    out = {}
    for name, fam in page.families.items():
        labels = {k for s in fam.samples for k in s.labels if k != "le"}
        series = {tuple(sorted(s.labels.items())) for s in fam.samples}
        typ = "gauge" if fam.type == "untyped" else fam.type
        out[name] = (typ, frozenset(labels), series, fam.help)
    return out


def differences(ref, mine):
    """What a user would notice: families of ref missing from mine, and
    families with another type or other label names. Returns lists of text."""
    missing = sorted(n for n in ref if n not in mine and not n.startswith(ALLOWED_MISSING))
    extra = sorted(n for n in mine if n not in ref and not n.startswith(ALLOWED_EXTRA))
    typed, labelled = [], []
    for n in sorted(set(ref) & set(mine)):
        if ref[n][0] != mine[n][0]:
            typed.append(f"{n}: {mine[n][0]}, 0.11.1 {ref[n][0]}")
        if ref[n][1] != mine[n][1]:
            labelled.append((n, mine[n][1], ref[n][1]))
    return missing, extra, typed, labelled


def label_text(item):
    n, mine, ref = item
    return f"{n}: {sorted(mine)}, 0.11.1 {sorted(ref)}"


class PgExporter(_Daemon):
    """Debian's prometheus-postgres-exporter 0.11.1 on a free loopback port,
    its output in self.log(); destroy() is the harness's."""

    name = "postgres_exporter"

    def __init__(self, dsn, args=()):
        self.port = free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DATA_SOURCE_", "PG_EXPORTER_"))}
        env["DATA_SOURCE_NAME"] = dsn
        self._spawn("pgpulse-pgexporter-", {},
                    [PG_EXPORTER, f"--web.listen-address=127.0.0.1:{self.port}", *args], env=env)
        self._wait(lambda: get(self.port, "/")[0] == 200, 30, "postgres_exporter to answer")

    def metrics(self):
        status, body = get(self.port)
        assert status == 200, f"postgres_exporter answered {status}"
        return parse_exposition(body)


class Compat011Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        assert os.access(PG_EXPORTER, os.X_OK), \
            f"{PG_EXPORTER} is not installed: deploy/deps.sh test installs it"
        cls.pg = PgServer(settings={
            "archive_mode": "on",
            "archive_command": "'/bin/true'",
            "shared_preload_libraries": "'pg_stat_statements'",
        })
        cls.addClassCleanup(cls.pg.destroy)
        cls.pg.psql("CREATE EXTENSION pg_stat_statements")
        cls.pg.psql("CREATE TABLE pulse_t AS SELECT g AS id FROM generate_series(1, 100) g")
        cls.pg.psql("SELECT pg_create_physical_replication_slot('pulse_slot', true)")
        cls.pg.psql("SELECT pg_switch_wal()")
        wait_for(lambda: int(cls.pg.scalar("SELECT archived_count FROM pg_stat_archiver")) > 0,
                 30, what="a segment archived")
        cls.standby = cls.pg.add_standby(application_name="pulse_standby")
        cls.addClassCleanup(cls.standby.destroy)
        # the monitoring role: a member of pg_monitor, nothing more
        cls.user, cls.password = cls.pg.user, cls.pg.password
        assert cls.pg.scalar(f"SELECT rolsuper FROM pg_roles WHERE rolname = '{cls.user}'") == "f"
        cls.dsn = cls.pg.uri(user=cls.user, password=cls.password)

        cls.ref = PgExporter(cls.dsn)
        cls.addClassCleanup(cls.ref.destroy)
        cls.compat = Pgpulse([f"--catalog={COMPAT}"], env={"DATA_SOURCE_NAME": cls.dsn})
        cls.addClassCleanup(cls.compat.destroy)

        # 0.11.1 queries at each scrape: a page with the standby's row and
        # the slot is a complete one
        cls.ref_page = wait_for(
            lambda: (lambda p: p.find("pg_stat_replication_pg_wal_lsn_diff")
                     and p.find("pg_replication_slots_active") and p)(cls.ref.metrics()),
            30, what="postgres_exporter's page with the standby and the slot")
        wanted = [n for n, f in cls.ref_page.families.items() if n.startswith("pg_") and f.samples]
        try:
            cls.compat_page = cls.compat.wait_for(
                lambda p: all(p.find(n) for n in wanted) and p, 60,
                "every pg_ family of postgres_exporter 0.11.1 on pgpulse's page")
        except AssertionError as e:
            page = cls.compat.metrics()
            raise AssertionError(f"{e}\nmissing: {[n for n in wanted if not page.find(n)]}\n"
                                 f"{cls.compat.stderr()}") from None
        # the page of 0.11.1 again, so that both were read at about the same time
        cls.ref_page = cls.ref.metrics()

    def test_same_families_types_and_labels(self):
        missing, extra, typed, labelled = differences(shape(self.ref_page),
                                                      shape(self.compat_page))
        self.assertEqual(missing, [], "families of 0.11.1 missing from pgpulse's page")
        self.assertEqual(extra, [], "families pgpulse adds that 0.11.1 does not have")
        self.assertEqual(typed, [], "families with another type")
        self.assertEqual([label_text(i) for i in labelled], [],
                         "families with other label names")

    def test_server_label_with_one_dsn(self):
        # as 0.11.1 does: server on every series of the catalog, not on pg_up
        for s in self.compat_page.find("pg_locks_count") + self.compat_page.find("pg_static"):
            self.assertEqual(s.labels.get("server"), self.pg.label(), repr(s))
        self.assertEqual(self.compat_page.find("pg_up")[0].labels, {})

    def test_several_dsns(self):
        # with two targets every series has server already: once, valid
        dsns = ",".join([self.dsn, self.standby.uri(user=self.user, password=self.password)])
        p = Pgpulse([f"--catalog={COMPAT}"], env={"DATA_SOURCE_NAME": dsns})
        self.addCleanup(p.destroy)
        page = p.wait_for(lambda pg: len({s.labels.get("server")
                                          for s in pg.find("pg_locks_count")}) == 2 and pg,
                          30, "pg_locks_count of both servers")
        self.assertEqual(page.problems, [])
        for s in page.find("pg_static") + page.find("pg_up"):
            self.assertIn(s.labels["server"], (self.pg.label(), self.standby.label()), repr(s))
        status, _, body = p.get("/metrics")
        self.assertEqual(status, 200)
        assert_promtool_ok(self, body)

    def test_promtool_accepts_the_page(self):
        status, _, body = self.compat.get("/metrics")
        self.assertEqual(status, 200)
        assert_promtool_ok(self, body)

    def test_mixin_metrics_0_11(self):
        missing = [n for n in MIXIN if n not in NOT_IN_011 and not self.compat_page.find(n)]
        self.assertEqual(missing, [], "metrics of upstream's mixin missing")
        self.assertFalse([n for n in NOT_IN_011 if self.ref_page.find(n)])

    def test_same_series(self):
        ref, mine = shape(self.ref_page), shape(self.compat_page)
        for n in sorted(set(ref) & set(mine)):
            if n.startswith(ALLOWED_MISSING) or n in SERIES_DIFFER:
                continue
            with self.subTest(family=n):
                self.assertEqual(sorted(mine[n][2]), sorted(ref[n][2]))

    def test_same_help(self):
        ref, mine = shape(self.ref_page), shape(self.compat_page)
        wrong = [f"{n}: {mine[n][3]!r}, 0.11.1 {ref[n][3]!r}"
                 for n in sorted(set(ref) & set(mine))
                 if not n.startswith(ALLOWED_MISSING)
                 and ref[n][3] != mine[n][3]]
        self.assertEqual(wrong, [])

    def test_settings_have_the_same_values(self):
        ref = {s.name: s.value for s in self.ref_page.samples if s.name.startswith("pg_settings_")}
        mine = {s.name: s.value for s in self.compat_page.samples
                if s.name.startswith("pg_settings_")}
        self.assertGreater(len(ref), 200)
        self.assertEqual(set(mine), set(ref))
        differ = {n: (mine[n], ref[n]) for n in ref if n not in SESSION_SETTINGS
                  and mine[n] != ref[n]}
        self.assertEqual(differ, {}, "settings with another value (pgpulse, 0.11.1)")

    def test_sizes_and_static_agree(self):
        ref = {s.labels["datname"]: s.value for s in self.ref_page.find("pg_database_size_bytes")}
        mine = {s.labels["datname"]: s.value
                for s in self.compat_page.find("pg_database_size_bytes")}
        self.assertEqual(set(mine), set(ref))
        for db, size in ref.items():  # read a moment apart: within 5 %
            self.assertLess(abs(mine[db] - size), size * 0.05, db)
        self.assertEqual(self.compat_page.find("pg_static")[0].labels,
                         self.ref_page.find("pg_static")[0].labels)

    def test_disable_flags_as_0_11(self):
        # 0.11.1's --disable-default-metrics drops its legacy built-ins but
        # not its collectors; --disable-settings-metrics drops the settings
        p = Pgpulse([f"--catalog={COMPAT}", "--disable-default-metrics",
                     "--disable-settings-metrics"], env={"DATA_SOURCE_NAME": self.dsn})
        self.addCleanup(p.destroy)
        page = p.wait_for(lambda pg: pg.find("pg_stat_bgwriter_buffers_alloc_total")
                          and pg.find("pg_database_size_bytes") and pg, 30, "the collectors")
        for name in ("pg_static", "pg_locks_count", "pg_stat_database_xact_commit",
                     "pg_stat_activity_count", "pg_settings_max_connections"):
            self.assertFalse(page.find(name), name)

    def test_default_catalog_against_0_11(self):
        """Prints how the default catalog's page differs from 0.11.1's (the
        input of docs/migration.md); asserts only that the page is there."""
        p = Pgpulse([], env={"DATA_SOURCE_NAME": self.dsn})
        self.addCleanup(p.destroy)
        page = p.wait_for(lambda pg: pg.find("pg_settings_max_connections")
                          and pg.find("pg_stat_replication_pg_wal_lsn_diff") and pg,
                          60, "the default catalog's page")
        missing, extra, typed, labelled = differences(shape(self.ref_page), shape(page))
        # most label differences are the server label alone: one line for them
        only_server = [n for n, mine, ref in labelled if ref - mine == {"server"} and mine <= ref]
        labelled = [label_text(i) for i in labelled if i[0] not in only_server]
        print("\ndefault catalog against postgres_exporter 0.11.1:")
        for title, items in (("missing", missing), ("added", extra),
                             ("other type", typed), ("other labels", labelled)):
            print(f"  {title} ({len(items)}):")
            for item in items:
                print(f"    {item}")
        settings = [n for n in only_server if n.startswith("pg_settings_")]
        print(f"  without the server label, otherwise alike: {len(settings)} pg_settings_* and "
              + ", ".join(n for n in only_server if n not in settings))
        missing = [n for n in MIXIN if not page.find(n)]
        self.assertEqual(missing, [], "metrics of upstream's mixin missing")

    def test_pg_monitor_is_enough(self):
        """Every query of the default catalog, every collector on, against
        the primary and the standby, as the pg_monitor member: none fails."""
        with open(os.path.join(SOURCE_DIR, "queries", "README.md")) as f:
            text = f.read()
        off = re.findall(r"`([a-z_]+)` \(off\)", text)
        self.assertIn("stat_statements", off)
        args = [f"--collector.{c}" for c in sorted(set(off))]
        dsns = ",".join([self.dsn, self.standby.uri(user=self.user, password=self.password)])
        p = Pgpulse(args, env={"DATA_SOURCE_NAME": dsns})
        self.addCleanup(p.destroy)

        def ran(page):
            # a completed cycle on each server ran every query due at start,
            # which is every query
            cycles = page.find("pg_exporter_scrapes_total")
            return len(cycles) == 2 and all(s.value >= 1 for s in cycles) and page
        page = p.wait_for(ran, 60, "a cycle of every query on both servers")
        failed = sorted({(s.labels["query"], s.labels.get("server"))
                         for s in page.find("pgpulse_query_errors_total") if s.value > 0})
        unexplained = [q for q in failed if q[0] not in ALLOWED_ERRORS]
        self.assertEqual(unexplained, [], "queries that fail as a pg_monitor member:\n"
                         + "\n".join(line for line in p.log_lines() if "failed" in line))
        self.assertTrue(page.find("pg_stat_statements_calls_total"))
        self.assertTrue(page.find("pg_wal_segments"))
        self.assertEqual({s.value for s in page.find("pg_up")}, {1.0})


if __name__ == "__main__":
    unittest.main()
