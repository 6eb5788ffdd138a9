"""What deploy/ ships: the Prometheus config and alert rules, the compose
file, the shell scripts, and deploy/local/cluster.sh run end to end.

Covers: promtool accepts prometheus.yml and its rules and
alerts_test.yml passes; docker-compose (without an engine) accepts the
compose file; every script parses and passes shellcheck; cluster.sh refuses
a taken port naming its variable, brings up the seed's cluster on free
ports (both standbys streaming, three pgpulses, Prometheus with every
target up), reports it with `status`, fails over, rejoins the old primary
both by a fresh clone and by pg_rewind, and leaves nothing behind after
`down --wipe`.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import unittest
import urllib.request

from pgharness import SOURCE_DIR, free_port, wait_for

DEPLOY = os.path.join(SOURCE_DIR, "deploy")
CLUSTER = os.path.join(DEPLOY, "local", "cluster.sh")
SCRIPTS = [os.path.join(DEPLOY, p) for p in (
    "deps.sh", "local/cluster.sh", "local/demo.sh",
    "compose/primary-init.sh", "compose/replica-entrypoint.sh")]


def run(argv, env=None, timeout=300, cwd=None):
    return subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


class DeployFilesTest(unittest.TestCase):
    def ok(self, p):
        self.assertEqual(p.returncode, 0, f"{p.args}:\n{p.stdout}{p.stderr}")

    def test_prometheus_config(self):
        p = run(["promtool", "check", "config",
                 os.path.join(DEPLOY, "prometheus", "prometheus.yml")])
        self.ok(p)
        self.assertIn("10 rules found", p.stdout)

    def test_alert_rules(self):
        self.ok(run(["promtool", "test", "rules", "alerts_test.yml"],
                    cwd=os.path.join(DEPLOY, "prometheus")))

    @unittest.skipUnless(shutil.which("docker-compose"), "docker-compose not installed")
    def test_compose_file(self):
        # Checks syntax and interpolation only; no container engine is needed.
        self.ok(run(["docker-compose", "-f", os.path.join(DEPLOY, "docker-compose.yml"),
                     "config", "-q"]))

    def test_scripts_parse(self):
        for script in SCRIPTS:
            self.ok(run(["bash", "-n", script]))

    @unittest.skipUnless(shutil.which("shellcheck"), "shellcheck not installed")
    def test_scripts_shellcheck(self):
        self.ok(run(["shellcheck", *SCRIPTS]))


def http_ok(url):
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.status == 200


class ClusterScriptTest(unittest.TestCase):
    """deploy/local/cluster.sh on free ports, in a temp CLUSTER_DIR."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pgpulse-cluster-")
        # Let the postgres user reach it, so PostgreSQL's files stay inside.
        os.chmod(self.dir, 0o755)
        self.addCleanup(shutil.rmtree, self.dir, True)
        ports = {}
        for var in ("PRIMARY_PORT", "REPLICA1_PORT", "REPLICA2_PORT", "PULSE_PRIMARY_PORT",
                    "PULSE_REPLICA1_PORT", "PULSE_REPLICA2_PORT", "PROMETHEUS_PORT"):
            port = free_port()
            while port in ports.values():
                port = free_port()
            ports[var] = port
        self.ports = ports
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("PG", "DATA_SOURCE_"))}
        self.env.update({k: str(v) for k, v in ports.items()})
        self.env["CLUSTER_DIR"] = os.path.join(self.dir, "state")
        self.env["PGPULSE_BIN"] = os.environ["PGPULSE_BIN"]
        self.env["PULSE_DB_PASSWORD"] = "test-'pw\\x"  # quoting must survive

    def cluster(self, *args, ok=True):
        p = run([CLUSTER, *args], env=self.env)
        if ok:
            self.assertEqual(p.returncode, 0, f"cluster.sh {' '.join(args)}:\n{p.stdout}{p.stderr}")
        return p

    def psql(self, port, sql):
        env = dict(self.env, PGPASSWORD=self.env["PULSE_DB_PASSWORD"], PGCONNECT_TIMEOUT="5")
        p = run(["psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(port),
                 "-U", "testadmin", "-d", "testdb", "-c", sql], env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.strip()

    def test_taken_port_is_named(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            self.env["REPLICA2_PORT"] = str(s.getsockname()[1])
            p = self.cluster("up", ok=False)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("REPLICA2_PORT", p.stderr)
        # refused before anything was built, started or created
        self.assertFalse(os.path.exists(self.env["CLUSTER_DIR"]))

    def test_up_status_failover_rejoin_down(self):
        self.addCleanup(lambda: run([CLUSTER, "down", "--wipe"], env=self.env))
        p = self.cluster("up")
        primary, r1, r2 = (self.ports[v] for v in ("PRIMARY_PORT", "REPLICA1_PORT",
                                                    "REPLICA2_PORT"))
        self.assertIn(f"http://127.0.0.1:{self.ports['PROMETHEUS_PORT']}", p.stdout)
        self.assertIn("pg_stat_replication", p.stdout)
        self.assertEqual(self.psql(primary, "SELECT application_name, state FROM"
                                            " pg_stat_replication ORDER BY 1"),
                         "postgres-replica-1|streaming\npostgres-replica-2|streaming")
        for port in (r1, r2):
            self.assertEqual(self.psql(port, "SELECT pg_is_in_recovery(), count(*) FROM"
                                             " messages"), "t|1000")
        self.assertIn("already running", self.cluster("up").stdout)

        # status is 0 once every pgpulse is connected and every target scraped
        wait_for(lambda: self.cluster("status", ok=False).returncode == 0 and
                 "targets up: 4 of 4" in self.cluster("status").stdout,
                 90, what="cluster.sh status to report all healthy")
        status = self.cluster("status").stdout
        self.assertRegex(status, r"postgres-primary\s+\d+\s+primary")
        self.assertRegex(status, r"postgres-replica-1\s+\d+\s+standby\s+streaming")
        for port in ("PULSE_PRIMARY_PORT", "PULSE_REPLICA1_PORT", "PULSE_REPLICA2_PORT"):
            self.assertTrue(http_ok(f"http://127.0.0.1:{self.ports[port]}/metrics"))

        # failover: replica-1 becomes the primary and replica-2 follows it
        self.cluster("failover")
        self.assertEqual(self.psql(r1, "SELECT pg_is_in_recovery()"), "f")
        self.assertEqual(self.psql(r1, "SELECT application_name FROM pg_stat_replication"
                                       " WHERE state = 'streaming'"), "postgres-replica-2")
        self.psql(r1, "INSERT INTO nodes (hostname) VALUES ('after failover')")
        p = self.cluster("status", ok=False)
        self.assertEqual(p.returncode, 1, "the stopped old primary makes status fail")
        self.assertRegex(p.stdout, r"postgres-primary\s+\d+\s+down")

        # rejoin by a fresh clone: the old primary streams from replica-1
        self.cluster("rejoin")
        self.assertEqual(self.psql(primary, "SELECT pg_is_in_recovery()"), "t")
        wait_for(lambda: self.psql(primary, "SELECT count(*) FROM nodes"
                                            " WHERE hostname = 'after failover'") == "1",
                 60, what="the new primary's row on the old primary")
        # and back, rejoining replica-1 with pg_rewind this time
        self.cluster("failover", "postgres-primary")
        self.cluster("rejoin", "--rewind")
        self.assertEqual(self.psql(primary, "SELECT application_name FROM pg_stat_replication"
                                            " WHERE state = 'streaming' ORDER BY 1"),
                         "postgres-replica-1\npostgres-replica-2")
        self.assertEqual(self.cluster("status").returncode, 0)

        self.cluster("down", "--wipe")
        self.assertFalse(os.path.exists(self.env["CLUSTER_DIR"]))
        for port in self.ports.values():
            with socket.socket() as s:
                self.assertNotEqual(s.connect_ex(("127.0.0.1", port)), 0, f"port {port} open")


if __name__ == "__main__":
    unittest.main()
