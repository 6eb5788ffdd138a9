"""What deploy/ ships: the Prometheus config and alert rules, the compose
file, the shell scripts, and deploy/local/cluster.sh run end to end.

Covers: promtool accepts prometheus.yml and its rules and
alerts_test.yml passes; docker-compose (without an engine) accepts the
compose file, which runs HAProxy with haproxy/haproxy.cfg; `haproxy -c`
accepts that config as shipped (container names need not resolve) and as
rewritten for this machine; every script parses and passes shellcheck;
cluster.sh refuses a taken port naming its variable, brings up the seed's
cluster on free ports (both standbys streaming, three pgpulses, Prometheus
with every target up, HAProxy's write port on the primary and read port on
the standbys, the cluster-wide pgpulse's dashboard with the seed's row
counts on every node), reports it with `status`, fails over (the write port
follows, the dashboard shows the old primary down), rejoins the old primary both by a fresh clone and by pg_rewind,
and leaves nothing behind after `down --wipe`.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import unittest
import urllib.request

from pgharness import HAPROXY, SOURCE_DIR, free_port, haproxy_local_config, wait_for

DEPLOY = os.path.join(SOURCE_DIR, "deploy")
CLUSTER = os.path.join(DEPLOY, "local", "cluster.sh")
SCRIPTS = [os.path.join(DEPLOY, p) for p in (
    "deps.sh", "local/cluster.sh",
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

    @unittest.skipUnless(shutil.which("docker-compose"), "docker-compose not installed")
    def test_compose_runs_haproxy(self):
        p = run(["docker-compose", "-f", os.path.join(DEPLOY, "docker-compose.yml"), "config"])
        self.ok(p)
        self.assertIn("haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg", p.stdout)
        for port in ("6432", "6433"):
            self.assertRegex(p.stdout, rf"published: \"?{port}\"?")

    def test_haproxy_config(self):
        # As shipped: container names that do not resolve here only disable
        # their servers (init-addr none), so the check passes without DNS.
        shipped = os.path.join(DEPLOY, "haproxy", "haproxy.cfg")
        self.ok(run([HAPROXY, "-c", "-f", shipped]))
        # As cluster.sh and test_haproxy rewrite it: no name left to resolve.
        nodes = {n: (free_port(), free_port()) for n in
                 ("postgres-primary", "postgres-replica-1", "postgres-replica-2")}
        with tempfile.TemporaryDirectory() as d:
            local = os.path.join(d, "haproxy.cfg")
            with open(local, "w") as f:
                f.write(haproxy_local_config(nodes, free_port(), free_port(), inter="200ms"))
            p = run([HAPROXY, "-c", "-f", local])
            self.ok(p)
            self.assertNotIn("WARNING", p.stdout + p.stderr)

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
                    "PULSE_REPLICA1_PORT", "PULSE_REPLICA2_PORT", "PROMETHEUS_PORT",
                    "HAPROXY_WRITE_PORT", "HAPROXY_READ_PORT", "PULSE_CLUSTER_PORT",
                    "DASHBOARD_PORT"):
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

    def cluster(self, *args, ok=True, env=None):
        p = run([CLUSTER, *args], env=dict(self.env, **(env or {})))
        if ok:
            self.assertEqual(p.returncode, 0, f"cluster.sh {' '.join(args)}:\n{p.stdout}{p.stderr}")
        return p

    def psql(self, port, sql):
        env = dict(self.env, PGPASSWORD=self.env["PULSE_DB_PASSWORD"], PGCONNECT_TIMEOUT="5")
        p = run(["psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(port),
                 "-U", "testadmin", "-d", "testdb", "-c", sql], env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.strip()

    def dashboard(self):
        url = f"http://127.0.0.1:{self.ports['DASHBOARD_PORT']}/api/v1/status"
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())

    def test_taken_port_is_named(self):
        for var in ("REPLICA2_PORT", "HAPROXY_WRITE_PORT"):
            with self.subTest(var=var), socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                s.listen()
                p = self.cluster("up", ok=False, env={var: str(s.getsockname()[1])})
                self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
                self.assertIn(f"({var}) is taken", p.stderr)
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

        # HAProxy: writes on the primary, reads spread over the standbys
        write, read = self.ports["HAPROXY_WRITE_PORT"], self.ports["HAPROXY_READ_PORT"]
        self.assertIn(f"-p {write} ", p.stdout)
        self.assertEqual(self.psql(write, "SELECT inet_server_port(), pg_is_in_recovery()"),
                         f"{primary}|f")
        self.psql(write, "INSERT INTO nodes (hostname) VALUES ('through haproxy')")
        wait_for(lambda: {self.psql(read, "SELECT inet_server_port(), pg_is_in_recovery()")
                          for _ in range(4)}
                 == {f"{r1}|t", f"{r2}|t"}, 30, what="reads spread over both standbys")

        # status is 0 once every pgpulse is connected and every target scraped
        wait_for(lambda: self.cluster("status", ok=False).returncode == 0 and
                 "targets up: 4 of 4" in self.cluster("status").stdout,
                 90, what="cluster.sh status to report all healthy")
        status = self.cluster("status").stdout
        self.assertRegex(status, r"postgres-primary\s+\d+\s+primary")
        self.assertRegex(status, r"postgres-replica-1\s+\d+\s+standby\s+streaming")
        self.assertRegex(status, rf"haproxy writes\s+127.0.0.1:{write}\s+-> postgres-primary\n")
        for port in ("PULSE_PRIMARY_PORT", "PULSE_REPLICA1_PORT", "PULSE_REPLICA2_PORT"):
            self.assertTrue(http_ok(f"http://127.0.0.1:{self.ports[port]}/metrics"))

        # the seed's web UI: the cluster's pgpulse, its dashboard on its own port
        dash = self.ports["DASHBOARD_PORT"]
        self.assertIn(f"http://127.0.0.1:{dash}/", p.stdout)
        self.assertRegex(status, rf"dashboard\s+http://127.0.0.1:{dash}/")
        self.assertTrue(http_ok(f"http://127.0.0.1:{dash}/"))
        self.assertTrue(http_ok(f"http://127.0.0.1:{self.ports['PULSE_CLUSTER_PORT']}/metrics"))

        def dashboard_healthy():
            doc = self.dashboard()
            rows = [{t["name"]: t["rows"] for d in n["databases"] for t in d["tables"]}
                    for n in doc["nodes"]]
            return (len(doc["nodes"]) == 3 and all(n["status"] == "ok" for n in doc["nodes"])
                    and all(r.get("messages") == 1000 for r in rows))
        wait_for(dashboard_healthy, 90, what="the dashboard: three nodes ok, 1000 messages each")

        # failover: replica-1 becomes the primary and replica-2 follows it,
        # and so does HAProxy's write port before failover returns
        p = self.cluster("failover")
        self.assertIn(f"write port {write} reaches postgres-replica-1", p.stdout)
        self.assertEqual(self.psql(write, "SELECT inet_server_port()"), str(r1))
        self.assertEqual(self.psql(r1, "SELECT pg_is_in_recovery()"), "f")
        self.assertEqual(self.psql(r1, "SELECT application_name FROM pg_stat_replication"
                                       " WHERE state = 'streaming'"), "postgres-replica-2")
        self.psql(r1, "INSERT INTO nodes (hostname) VALUES ('after failover')")
        wait_for(lambda: {n["server"]: n["status"] for n in self.dashboard()["nodes"]}
                 .get(f"127.0.0.1:{primary}") == "down", 60,
                 what="the dashboard to show the stopped primary down")
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
