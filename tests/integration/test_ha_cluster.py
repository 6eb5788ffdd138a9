"""The seed's HA cluster as users run it: a primary, two streaming standbys,
one pgpulse per node with the shipped catalog, and Debian's Prometheus
scraping them with deploy/prometheus/alerts.yml loaded.

Covers: data written on the primary reaches both standbys and the primary
lists both in pg_stat_replication; every Prometheus target is up; every
query of the seed's "Useful Prometheus Queries" returns a series for each
node; no HA alert fires on the healthy cluster; a stopped standby shows
pg_up 0 and fires PostgreSQLTargetDown; the seed's manual failover (stop
the primary, pg_promote() replica-1, repoint replica-2) shows in Prometheus
as replica-1 being the primary with replica-2 streaming from it; the old
primary, re-cloned as a standby of the new one, streams again.

At the end every pgpulse is stopped with SIGTERM while Prometheus is
still scraping it every second, as a rolling restart does: each exits 0.

Only the alert rules' `for:` durations are shortened (the test's copy), and
Prometheus scrapes and evaluates every second; pgpulse runs its shipped
catalog at its shipped intervals, so each step may take one 15 s cycle.
"""

import os
import re
import unittest

from pgharness import PgServer, Pgpulse, Prometheus, SOURCE_DIR, wait_for

BOUND = 90  # seconds: a 15 s query cycle, reconnect backoff, scrapes; generous

NODES = ("postgres-primary", "postgres-replica-1", "postgres-replica-2")

# The seed's "Useful Prometheus Queries", verbatim.
SEED_QUERIES = (
    "pg_replication_lag_bytes",
    "pg_stat_activity_count",
    "rate(pg_stat_database_xact_commit[1m]) + rate(pg_stat_database_xact_rollback[1m])",
    "rate(pg_stat_database_heap_blks_hit[5m]) / (rate(pg_stat_database_heap_blks_hit[5m])"
    " + rate(pg_stat_database_heap_blks_read[5m]))",
    "pg_database_size_bytes",
    "pg_stat_user_tables_n_live_tup",
)

# The alerts that speak of the cluster's shape; none may fire while it is healthy.
HA_ALERTS = {"PostgreSQLTargetDown", "PostgreSQLReplicaNotStreaming",
             "PostgreSQLPrimaryMissing", "PostgreSQLMultiplePrimaries"}


def prometheus_config(pulses):
    """The seed's job layout (deploy/prometheus/prometheus.yml), every second."""
    jobs = "".join(f"""
  - job_name: {node}
    static_configs:
      - targets: ["127.0.0.1:{pulse.port}"]
""" for node, pulse in pulses.items())
    return f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - alerts.yml
scrape_configs:{jobs}"""


def fast_alerts():
    """deploy/prometheus/alerts.yml with every `for:` cut to one second."""
    with open(os.path.join(SOURCE_DIR, "deploy", "prometheus", "alerts.yml")) as f:
        text = f.read()
    fast, n = re.subn(r"(?m)^(\s+for:) \S+$", r"\1 1s", text)
    assert n >= len(HA_ALERTS), "alerts.yml changed shape"
    return fast


class HaClusterTest(unittest.TestCase):
    def setUp(self):
        self.primary = PgServer()
        self.addCleanup(self.primary.destroy)
        self.primary.psql("CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);"
                          "INSERT INTO users (name) SELECT 'user ' || i"
                          " FROM generate_series(1, 100) i; ANALYZE users")
        self.r1 = self.primary.add_standby(application_name="postgres-replica-1")
        self.addCleanup(self.r1.destroy)
        self.r2 = self.primary.add_standby(application_name="postgres-replica-2")
        self.addCleanup(self.r2.destroy)
        self.servers = dict(zip(NODES, (self.primary, self.r1, self.r2)))
        self.pulses = {}
        for node, srv in self.servers.items():
            pulse = Pgpulse(env={"DATA_SOURCE_NAME": srv.uri(user=srv.user,
                                                             password=srv.password)})
            self.addCleanup(pulse.destroy)
            self.pulses[node] = pulse
        self.prom = Prometheus(prometheus_config(self.pulses), {"alerts.yml": fast_alerts()})
        self.addCleanup(self.prom.destroy)

    # -- helpers ---------------------------------------------------------------

    def jobs_of(self, promql):
        """The jobs that have at least one series in promql's result."""
        return {r["metric"].get("job") for r in self.prom.query(promql)}

    def wait_jobs(self, promql, jobs, what):
        try:
            return wait_for(lambda: self.jobs_of(promql) >= set(jobs), BOUND, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}\nprometheus log:\n{self.prom.log()[-3000:]}") from None

    def firing(self, name):
        return [a for a in self.prom.firing() if a["alertname"] == name]

    def streaming_from(self, server):
        return {row[0] for row in server.psql(
            "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'")}

    # -- the test ----------------------------------------------------------------

    def test_cluster(self):
        # Replication works: a row written on the primary is read on both standbys.
        self.primary.psql("INSERT INTO users (name) VALUES ('written on the primary')")
        for standby in (self.r1, self.r2):
            wait_for(lambda s=standby: s.scalar(
                "SELECT count(*) FROM users WHERE name = 'written on the primary'") == "1",
                BOUND, what=f"the row on the standby on port {standby.port}")
        self.assertEqual(self.streaming_from(self.primary),
                         {"postgres-replica-1", "postgres-replica-2"})

        # Every target is up.
        def all_up():
            t = self.prom.targets()
            return len(t) == 3 and all(x["health"] == "up" for x in t)
        wait_for(all_up, BOUND, what="all three targets up")

        # Each of the seed's queries answers for every node.
        for promql in SEED_QUERIES:
            self.wait_jobs(promql, NODES, f"{promql!r} to return every node")
        # The primary's lag series name each standby.
        lag = self.prom.query('pg_replication_lag_bytes{job="postgres-primary"}')
        self.assertEqual({r["metric"]["application_name"] for r in lag},
                         {"postgres-replica-1", "postgres-replica-2"})
        self.wait_jobs('pg_stat_wal_receiver_info{status="streaming"}',
                       NODES[1:], "both standbys' WAL receivers streaming")
        # A healthy cluster fires none of the HA alerts (rules evaluate every second).
        self.wait_jobs("pg_replication_is_replica == 0", NODES[:1], "one primary")
        wait_for(lambda: not HA_ALERTS & {a["alertname"] for a in self.prom.firing()},
                 BOUND, what="no HA alert firing on the healthy cluster")

        # A standby stops: pgpulse says pg_up 0 and the target-down alert fires.
        self.r2.stop()
        self.wait_jobs('pg_up{job="postgres-replica-2"} == 0', NODES[2:],
                       "pg_up 0 for the stopped standby")
        wait_for(lambda: any(a.get("job") == "postgres-replica-2"
                             for a in self.firing("PostgreSQLTargetDown")),
                 BOUND, what="PostgreSQLTargetDown for postgres-replica-2")
        self.assertEqual([a["job"] for a in self.firing("PostgreSQLTargetDown")],
                         ["postgres-replica-2"])
        self.r2.start()
        self.r2.wait_streaming()
        wait_for(lambda: not self.firing("PostgreSQLTargetDown"), BOUND,
                 what="PostgreSQLTargetDown to resolve")

        # The seed's manual failover: stop the primary, promote replica-1,
        # point replica-2 at it.
        self.primary.stop()
        self.assertEqual(self.r1.scalar("SELECT pg_promote()"), "t")
        self.r2.psql("ALTER SYSTEM SET primary_conninfo = "
                     f"'host=127.0.0.1 port={self.r1.port} user=postgres"
                     " application_name=postgres-replica-2'")
        self.r2.psql("SELECT pg_reload_conf()")
        wait_for(lambda: "postgres-replica-2" in self.streaming_from(self.r1), BOUND,
                 what="replica-2 streaming from replica-1")
        self.wait_jobs('pg_replication_is_replica{job="postgres-replica-1"} == 0',
                       NODES[1:2], "replica-1 reported as the primary")
        self.wait_jobs('pg_replication_lag_bytes{job="postgres-replica-1",'
                       'application_name="postgres-replica-2",state="streaming"}',
                       NODES[1:2], "replica-1 listing replica-2 as its streaming standby")
        self.wait_jobs('pg_stat_wal_receiver_info{job="postgres-replica-2",status="streaming",'
                       f'upstream_host="127.0.0.1"}} and on() pg_up{{job="postgres-primary"}} == 0',
                       NODES[2:], "replica-2 streaming while the old primary is down")
        self.assertEqual(self.jobs_of("pg_replication_is_replica == 0"), {"postgres-replica-1"})

        # The old primary comes back as a standby of the new one.
        self.primary.reclone_from(self.r1, application_name="postgres-primary")
        try:
            wait_for(lambda: self.streaming_from(self.r1) == {"postgres-primary",
                                                              "postgres-replica-2"},
                     BOUND, what="both standbys streaming from replica-1")
        except AssertionError as e:
            # once seen in CI (and not in three reruns): say what replica-1
            # and replica-2 saw, so the next one can be told apart
            senders = self.r1.psql("SELECT application_name, state FROM pg_stat_replication")
            log = "\n".join(self.r2.read_log().splitlines()[-15:])
            raise AssertionError(f"{e}\nreplica-1's pg_stat_replication: {senders}"
                                 f"\nreplica-2's log, last lines:\n{log}") from e
        self.wait_jobs('pg_replication_is_replica{job="postgres-primary"} == 1',
                       NODES[:1], "the old primary reported as a standby")
        self.wait_jobs('pg_stat_wal_receiver_info{job="postgres-primary",status="streaming"}',
                       NODES[:1], "the old primary's WAL receiver streaming")
        self.wait_jobs('pg_replication_lag_bytes{job="postgres-replica-1",'
                       'application_name="postgres-primary"}', NODES[1:2],
                       "the new primary listing the old one")
        wait_for(lambda: not HA_ALERTS & {a["alertname"] for a in self.prom.firing()},
                 BOUND, what="no HA alert firing once the cluster is whole again")
        # a rolling restart: each pgpulse stops while Prometheus scrapes it
        for node, pulse in self.pulses.items():
            self.assertEqual(pulse.stop(), 0, f"{node}: {pulse.stderr()[-2000:]}")
        self.prom.destroy()


if __name__ == "__main__":
    unittest.main()
