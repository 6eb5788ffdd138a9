"""Roles: a primary and its streaming standby in one pgpulse, then failover.

Covers: the standby reports pg_replication_is_replica 1 and none of the
primary-only series, the primary reports its standby in
pg_stat_replication_* with the labels dashboards use; lag values agree with
what psql reads; after the primary stops and the standby is promoted with
pg_promote() (the seed's manual failover), the promoted server's role is
read again: its standby-only series go and primary-only ones come, without
a restart, while the stopped
primary shows pg_up 0 and no series. The role endpoints a load balancer
checks (/primary, /replica, ?target=) follow every step.
"""

import os
import shutil
import tempfile
import unittest

from pgharness import PgServer, Pgpulse, SOURCE_DIR, assert_promtool_ok, parse_exposition

BOUND = 30  # seconds: a few 1 s cycles plus reconnect backoff, generous


# One query per role, so the page says which role pgpulse believes a server has.
ROLE_QUERIES = """defaults:
  interval: 1s
  timeout: 2s
queries:
  - name: on_primary
    runs_on: primary
    sql: SELECT 1 AS seen
    columns:
      seen: {role: gauge, help: "1 where pgpulse runs primary-only queries"}
    namespace: itest_primary
  - name: on_standby
    runs_on: standby
    sql: SELECT 1 AS seen
    columns:
      seen: {role: gauge, help: "1 where pgpulse runs standby-only queries"}
    namespace: itest_standby
"""


def fast_replication_catalog(dirpath):
    """A directory: the shipped replication queries, run every second
    instead of 15 s, and one query per role."""
    with open(os.path.join(SOURCE_DIR, "queries", "replication.yaml")) as f:
        text = f.read()
    assert "interval: 15s" in text
    with open(os.path.join(dirpath, "replication.yaml"), "w") as f:
        f.write(text.replace("interval: 15s", "interval: 1s\n  timeout: 2s"))
    with open(os.path.join(dirpath, "roles.yaml"), "w") as f:
        f.write(ROLE_QUERIES)
    return dirpath


class ReplicationTest(unittest.TestCase):
    def setUp(self):
        self.primary = PgServer()
        self.addCleanup(self.primary.destroy)
        self.standby = self.primary.add_standby()
        self.addCleanup(self.standby.destroy)
        self.dir = tempfile.mkdtemp(prefix="pgpulse-repl-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        dsn = self.primary.uri() + "," + self.standby.uri()
        self.pulse = Pgpulse(["--catalog=" + fast_replication_catalog(self.dir)],
                             env={"DATA_SOURCE_NAME": dsn})
        self.addCleanup(self.pulse.destroy)
        self.p, self.s = self.primary.label(), self.standby.label()

    def roles(self, page):
        return {srv: page.value("pg_replication_is_replica", server=srv)
                for srv in (self.p, self.s)}

    def role_status(self, path, target=None):
        """(status, body) of a role endpoint, for one target."""
        q = f"?target={target}" if target else ""
        status, _, body = self.pulse.get(path + q)
        return status, body.decode()

    def ran_as(self, page, server):
        """Which role-restricted queries ran on server: a set of roles."""
        return {role for role in ("primary", "standby")
                if page.find(f"itest_{role}_seen", server=server)}

    def test_roles_and_failover(self):
        def streaming(page):
            ok = (self.roles(page) == {self.p: 0, self.s: 1}
                  and page.find("pg_stat_replication_pg_wal_lsn_diff", server=self.p))
            return ok and page
        page = self.pulse.wait_for(streaming, BOUND, "primary and standby roles")
        _, _, body = self.pulse.get("/metrics")
        assert_promtool_ok(self, body)

        # the primary sees its standby, with postgres_exporter's labels
        rep = page.find("pg_stat_replication_pg_current_wal_lsn_bytes", server=self.p)
        self.assertEqual(len(rep), 1)
        self.assertEqual(set(rep[0].labels),
                         {"server", "application_name", "client_addr", "state", "slot_name"})
        self.assertEqual(rep[0].labels["state"], "streaming")
        self.assertEqual(rep[0].labels["application_name"],
                         self.primary.scalar("SELECT application_name FROM pg_stat_replication"))
        # primary-only queries do not run on the standby
        self.assertEqual(page.find("pg_stat_replication_pg_current_wal_lsn_bytes",
                                   server=self.s), [])
        self.assertEqual(self.ran_as(page, self.p), {"primary"})
        self.assertEqual(self.ran_as(page, self.s), {"standby"})
        self.assertEqual(page.value("pg_replication_lag_seconds", server=self.p), 0)
        self.assertGreaterEqual(page.value("pg_replication_lag_seconds", server=self.s), 0)

        # what a load balancer asks, answered from the cached state
        self.assertEqual(self.role_status("/primary", self.p), (200, "primary\n"))
        self.assertEqual(self.role_status("/replica", self.p), (503, "primary\n"))
        self.assertEqual(self.role_status("/replica", self.s), (200, "standby\n"))
        self.assertEqual(self.role_status("/primary", self.s), (503, "standby\n"))
        status, body = self.role_status("/primary")
        self.assertEqual(status, 400, "two targets and none chosen")
        self.assertIn(self.p, body)
        self.assertEqual(self.role_status("/primary", "10.9.9.9:1")[0], 404)
        self.assertEqual(self.pulse.get("/health")[0], 200)
        self.assertEqual(self.pulse.get("/primary?target=" + self.p, method="HEAD")[0], 200)

        # manual failover, as the seed does it
        self.primary.stop()
        self.standby.psql("SELECT pg_promote()")

        def promoted(page):
            ok = (page.value("pg_up", server=self.p) == 0
                  and page.value("pg_replication_is_replica", server=self.s) == 0
                  and self.ran_as(page, self.s) == {"primary"}
                  and page.find("pg_replication_is_replica", server=self.p) == [])
            return ok and page
        page = self.pulse.wait_for(promoted, BOUND, "the standby promoted, the primary down")
        self.assertEqual(page.value("pg_up", server=self.s), 1)
        self.assertEqual(page.find("pg_stat_replication_pg_wal_lsn_diff", server=self.p), [])
        self.assertEqual(self.role_status("/primary", self.s), (200, "primary\n"))
        self.assertEqual(self.role_status("/replica", self.s), (503, "primary\n"))
        self.assertEqual(self.role_status("/primary", self.p), (503, "down\n"))
        self.assertEqual(self.role_status("/replica", self.p), (503, "down\n"))
        self.assertEqual(self.pulse.stop(), 0, self.pulse.stderr())


if __name__ == "__main__":
    unittest.main()
