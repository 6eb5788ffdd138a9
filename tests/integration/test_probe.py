"""/probe, the multi-target endpoint, as a Prometheus job using it sees it.

Covers: a missing target is 400; the first probe of a target answers with
its first collection (pg_up 1, the catalog's series, no server label, no
process series); later probes are served from that target's page: the same
connection (one backend, not one per probe as postgres_exporter opens) and
no new query; auth modules from --config.file supply user and password (an
unknown module is 400, a module without password is 400) and the password
shows nowhere; --web.probe-allowed-targets refuses other servers with 403
(names are not resolved); a bad config file or pattern stops start-up with
the position; an unreachable target answers pg_up 0 without waiting out the
scrape; the cap on probed targets answers 503; an idle target is dropped
and its connection closed; a reload that removes a module drops its
targets; SIGTERM while a first probe waits exits 0.
"""

import os
import shutil
import signal
import tempfile
import time
import unittest
import urllib.parse

from pgharness import PgServer, Pgpulse, Prometheus, free_port, parse_exposition, wait_for

CATALOG = """queries:
  - name: probe_state
    namespace: itest
    interval: 1h
    sql: |
      SELECT pg_backend_pid() AS backend_pid,
             extract(epoch FROM clock_timestamp())::float8 AS collected_at
    columns:
      backend_pid: {role: gauge, help: "the collecting backend"}
      collected_at: {role: gauge, help: "when the row was read"}
"""


def probe_path(target, module=None):
    q = {"target": target}
    if module is not None:
        q["auth_module"] = module
    return "/probe?" + urllib.parse.urlencode(q)


class ProbeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgServer()
        cls.addClassCleanup(cls.pg.destroy)
        cls.dir = tempfile.mkdtemp(prefix="pgpulse-probe-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.catalog = os.path.join(cls.dir, "catalog.yaml")
        with open(cls.catalog, "w") as f:
            f.write(CATALOG)

    def config_file(self, text):
        path = os.path.join(self.dir, f"pe-{time.monotonic_ns()}.yml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def modules(self, password=None):
        return self.config_file(f"""auth_modules:
  mon:
    type: userpass
    userpass:
      username: {self.pg.user}
      password: "{password or self.pg.password}"
    options:
      sslmode: disable
  nopass:
    type: userpass
    userpass:
      username: {self.pg.user}
""")

    def start(self, *args, env=None):
        p = Pgpulse(["--catalog=" + self.catalog, *args], env=env or {})
        self.addCleanup(p.destroy)
        return p

    def probe(self, pulse, target, module=None, headers=None, timeout=15):
        status, hdrs, body = pulse.get(probe_path(target, module), headers=headers,
                                       timeout=timeout)
        return status, body.decode(errors="replace")

    def backends(self):
        return int(self.pg.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgpulse'"))

    def test_prometheus_multi_target_job(self):
        """The README's scrape job, verbatim but for addresses, in Debian's
        Prometheus: two databases of the server probed through one pgpulse
        with an auth module, each its own instance."""
        self.pg.psql("DROP DATABASE IF EXISTS probe_b")
        self.pg.psql("CREATE DATABASE probe_b")
        pulse = self.start("--config.file=" + self.modules())
        targets = [f"127.0.0.1:{self.pg.port}/postgres", f"127.0.0.1:{self.pg.port}/probe_b"]
        prom = Prometheus(f"""global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
  - job_name: postgres
    metrics_path: /probe
    params: {{auth_module: [mon]}}
    static_configs:
      - targets: {targets!r}
    relabel_configs:
      - {{source_labels: [__address__], target_label: __param_target}}
      - {{source_labels: [__param_target], target_label: instance}}
      - {{target_label: __address__, replacement: "127.0.0.1:{pulse.port}"}}
""")
        self.addCleanup(prom.destroy)

        def both_up():
            rows = prom.query('pg_up{job="postgres"} == 1')
            return sorted(r["metric"]["instance"] for r in rows) == sorted(targets)
        wait_for(both_up, 30, what="both probed databases up in Prometheus")
        self.assertEqual(
            {t["health"] for t in prom.targets() if t["labels"]["job"] == "postgres"}, {"up"})
        pulse.stop_checked()

    def test_missing_target_is_400(self):
        pulse = self.start()
        status, body = self.probe(pulse, "")
        self.assertEqual(status, 400)
        self.assertIn("target is required", body)
        status, _, body = pulse.get("/probe")
        self.assertEqual(status, 400)
        pulse.stop_checked()

    def test_first_probe_has_data_and_later_ones_come_from_the_cache(self):
        pulse = self.start()  # probe-only: no data source at all
        status, body = self.probe(pulse, self.pg.uri())
        self.assertEqual(status, 200, body)
        page = parse_exposition(body)
        self.assertEqual(page.value("pg_up"), 1)
        pid = page.value("itest_backend_pid")
        taken = page.value("itest_collected_at")
        self.assertNotIn("server=", body)
        self.assertNotIn("process_", body)
        for _ in range(5):
            time.sleep(0.3)
            status, body = self.probe(pulse, self.pg.uri(), headers={"Accept-Encoding": "gzip"})
            self.assertEqual(status, 200)
        status, body = self.probe(pulse, self.pg.uri())
        again = parse_exposition(body)
        # the same connection, and the hourly query did not run again
        self.assertEqual(again.value("itest_backend_pid"), pid)
        self.assertEqual(again.value("itest_collected_at"), taken)
        # one backend (connections of earlier tests' pgpulses may take a
        # moment to go)
        wait_for(lambda: self.backends() == 1, 10, what="one pgpulse backend")
        # the exporter's own page has no target: probes are kept apart
        self.assertNotIn("itest_backend_pid", pulse.get()[2].decode())
        pulse.stop_checked()

    def test_auth_module_supplies_credentials_and_never_shows_them(self):
        secret = self.pg.password
        pulse = self.start("--config.file=" + self.modules())
        target = f"127.0.0.1:{self.pg.port}/postgres"
        status, body = self.probe(pulse, target, "mon")
        self.assertEqual(status, 200, body)
        self.assertEqual(parse_exposition(body).value("pg_up"), 1)
        status, body = self.probe(pulse, target, "nope")
        self.assertEqual((status, body.strip()), (400, "auth_module nope not found"))
        status, body = self.probe(pulse, target, "nopass")
        self.assertEqual(status, 400)
        self.assertIn("has no username or password", body)
        # the module's user replaces the target's: a wrong user in the
        # target still logs in as the module's
        status, body = self.probe(pulse, f"postgresql://nobody@127.0.0.1:{self.pg.port}/postgres",
                                  "mon")
        self.assertEqual(parse_exposition(body).value("pg_up"), 1)
        pulse.stop_checked()
        self.assertNotIn(secret, pulse.stderr())

    def test_allowed_targets(self):
        port = self.pg.port
        pulse = self.start(f"--web.probe-allowed-targets=10.0.0.0/8, 127.0.0.1:{port}")
        status, body = self.probe(pulse, self.pg.uri())
        self.assertEqual(status, 200, body)
        for other in (f"127.0.0.2:{port}/postgres", f"localhost:{port}/postgres",
                      f"127.0.0.1:{port + 1}/postgres", "host=/tmp dbname=postgres",
                      f"host=127.0.0.1 hostaddr=192.168.1.1 port={port}", "dbname=postgres",
                      "service=foo"):
            status, body = self.probe(pulse, other)
            self.assertEqual(status, 403, f"{other}: {body}")
            self.assertIn("not allowed", body)
        # nothing was connected to on their behalf
        self.assertNotIn("probe target added\" target=\"host=127.0.0.2", pulse.stderr())
        pulse.stop_checked()

    def test_bad_inputs_stop_start_up(self):
        bad_yaml = self.config_file("auth_modules:\n  mon:\n    type: userpass\n    colour: red\n")
        cases = [
            (["--config.file=" + bad_yaml], f"{bad_yaml}:4:5"),
            (["--config.file=" + os.path.join(self.dir, "missing.yml")], "missing.yml"),
            (["--config.file=" + self.config_file(
                "auth_modules:\n  m:\n    type: userpass\n    options: {hots: x}\n")],
             ":4:15"),
            (["--web.probe-allowed-targets=10.0.0.0/33"], "--web.probe-allowed-targets"),
            (["--web.probe-allowed-targets=host:99999"], "host:99999"),
        ]
        for args, want in cases:
            p = Pgpulse(["--catalog=" + self.catalog, *args], wait=False)
            self.addCleanup(p.destroy)
            rc = p.proc.wait(20)
            self.assertNotEqual(rc, 0, args)
            self.assertIn(want, p.stderr(), args)

    def test_unreachable_target_answers_down_at_once(self):
        pulse = self.start("--connect-timeout=2s")
        closed = free_port()
        t0 = time.monotonic()
        status, body = self.probe(pulse, f"127.0.0.1:{closed}/postgres?sslmode=disable",
                                  headers={"X-Prometheus-Scrape-Timeout-Seconds": "10"})
        self.assertEqual(status, 200)
        self.assertEqual(parse_exposition(body).value("pg_up"), 0)
        # refused at once: the probe did not wait out the scrape's 9.5 s
        self.assertLess(time.monotonic() - t0, 8)
        pulse.stop_checked()

    def test_cap_idle_drop_and_reload(self):
        cfg = os.path.join(self.dir, "reload.yml")
        shutil.copy(self.modules(), cfg)
        pulse = self.start("--web.probe-max-targets=1", "--web.probe-idle-timeout=2s",
                           "--config.file=" + cfg)
        target = f"127.0.0.1:{self.pg.port}/postgres"
        status, body = self.probe(pulse, target, "mon")
        self.assertEqual(status, 200, body)
        status, body = self.probe(pulse, self.pg.uri())
        self.assertEqual(status, 503)
        self.assertIn("--web.probe-max-targets", body)
        # not probed for 2 s: dropped, connection closed, room for another
        pulse.wait_log("probe target dropped", timeout=15)
        wait_for(lambda: self.backends() == 0, 10, what="the probe's connection to close")
        status, body = self.probe(pulse, target, "mon")
        self.assertEqual(status, 200)
        # a reload without the module drops its target and refuses it
        with open(cfg, "w") as f:
            f.write("auth_modules: {}\n")
        pulse.proc.send_signal(signal.SIGHUP)
        pulse.wait_log("probe target dropped at reload")
        status, body = self.probe(pulse, target, "mon")
        self.assertEqual((status, body.strip()), (400, "auth_module mon not found"))
        pulse.stop_checked()

    def test_sigterm_while_a_first_probe_waits(self):
        frozen = PgServer()
        self.addCleanup(frozen.destroy)
        frozen.sigstop()
        self.addCleanup(frozen.sigcont)
        pulse = self.start("--connect-timeout=30s")
        import threading
        result = {}

        def probe():
            try:
                result["status"] = self.probe(pulse, frozen.uri(), timeout=30)[0]
            except Exception as e:  # the connection may be cut: that is fine
                result["error"] = e
        th = threading.Thread(target=probe)
        th.start()
        time.sleep(1.0)
        self.assertEqual(pulse.stop(timeout=20), 0, pulse.stderr()[-3000:])
        th.join(30)
        self.assertFalse(th.is_alive())


if __name__ == "__main__":
    unittest.main()
