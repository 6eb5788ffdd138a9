"""The command line, start-up errors, passwords, signals and log format.

Covers: a broken catalog (YAML syntax error, unknown key) stops start-up with
file:line:column; an unknown flag is named; a DSN that does not parse is
named with its password masked; a wrong password against a real server keeps
pgpulse running with pg_up 0 and the password nowhere in /metrics or the
logs; SIGTERM exits 0; --log.format=json prints JSON lines;
--web.telemetry-path (and its environment variable) moves the page;
--constantLabels reach every series of the target and none of the
process's, and a clash with a catalog label stops start-up;
--collection-timeout cuts a query whose own timeout is longer;
PG_EXPORTER_WEB_LISTEN_ADDRESS is honoured and an unknown PG_EXPORTER_
variable is named in a warning.
"""

import http.client
import json
import os
import secrets
import shutil
import tempfile
import unittest

from pgharness import PgServer, Pgpulse, wait_for

STARTUP_BOUND = 15  # seconds a failing start-up may take to exit


def write(dirpath, name, text):
    path = os.path.join(dirpath, name)
    with open(path, "w") as f:
        f.write(text)
    return path


class CliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgServer()
        cls.addClassCleanup(cls.pg.destroy)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pgpulse-cli-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def start(self, args=(), env=None, wait=True):
        env = {"DATA_SOURCE_NAME": self.pg.uri(), **(env or {})}
        pulse = Pgpulse(args, env=env, wait=wait)
        self.addCleanup(pulse.destroy)
        return pulse

    def exits_nonzero(self, pulse):
        """Waits for a start-up failure; returns stderr."""
        try:
            pulse.proc.wait(STARTUP_BOUND)
        except Exception:
            self.fail(f"pgpulse {pulse.argv[1:]} kept running; stderr:\n{pulse.stderr()}")
        self.assertNotEqual(pulse.proc.returncode, 0, pulse.stderr())
        self.assertGreater(pulse.proc.returncode, 0, "killed by a signal:\n" + pulse.stderr())
        return pulse.stderr()

    def test_catalog_yaml_syntax_error(self):
        path = write(self.dir, "syntax.yaml",
                     "queries:\n"
                     "  - name: fast_probe\n"
                     "    namespace: itest\n"
                     "    interval: 1s\n"
                     "    timeout: @2s\n")   # '@' cannot start a token: line 5, column 14
        err = self.exits_nonzero(self.start(["--catalog=" + path], wait=False))
        self.assertIn(f"{path}:5:14:", err)

    def test_catalog_unknown_key(self):
        path = write(self.dir, "unknown.yaml",
                     "queries:\n"
                     "  - name: fast_probe\n"
                     "    namespace: itest\n"
                     "    intervall: 1s\n"      # the typo starts at line 4, column 5
                     "    timeout: 2s\n"
                     "    sql: SELECT 1::int AS one\n"
                     "    columns:\n"
                     "      one: {role: gauge, help: \"always one\"}\n")
        err = self.exits_nonzero(self.start(["--catalog=" + path], wait=False))
        self.assertIn(f"{path}:4:5:", err)
        self.assertIn("intervall", err)

    def test_unknown_flag(self):
        err = self.exits_nonzero(self.start(["--no-such-flag"], wait=False))
        self.assertIn("no-such-flag", err)

    def test_unparsable_dsn_masks_password(self):
        password = "pw-" + secrets.token_hex(8)
        dsns = {
            "uri": (f"postgresql://pgpulse_test:{password}@127.0.0.1:99999/postgres",
                    r"postgresql://pgpulse_test:[^@\s]*@127\.0\.0\.1:99999/postgres"),
            "key=value": (f"host=127.0.0.1 port=99999 user=pgpulse_test password={password}",
                          r"host=127\.0\.0\.1 port=99999 user=pgpulse_test"),
        }
        for form, (dsn, named) in dsns.items():
            with self.subTest(form=form):
                pulse = self.start(env={"DATA_SOURCE_NAME": dsn}, wait=False)
                err = self.exits_nonzero(pulse)
                self.assertRegex(err, named, "the error does not name the DSN")
                self.assertNotIn(password, err)
                with open(pulse.stdout_path) as f:
                    self.assertNotIn(password, f.read())

    def test_same_server_twice(self):
        # Two databases of one server are two targets of one server, told
        # apart by datname; the same database twice would give duplicate
        # series: refused.
        both = self.pg.uri(dbname="postgres") + "," + self.pg.uri(dbname="template1")
        pulse = self.start(env={"DATA_SOURCE_NAME": both})
        page = pulse.wait_for(
            lambda p: [s.value for s in p.find("pg_up")] == [1, 1] and p, 15, "both targets up")
        self.assertEqual({(s.labels["server"], s.labels["datname"]) for s in page.find("pg_up")},
                         {(self.pg.label(), "postgres"), (self.pg.label(), "template1")})
        twice = self.pg.uri() + "," + self.pg.uri()
        err = self.exits_nonzero(self.start(env={"DATA_SOURCE_NAME": twice}, wait=False))
        self.assertIn("DSN 1 and DSN 2 both name server", err)

    def test_wrong_password_keeps_running(self):
        password = "wrong-" + secrets.token_hex(8)
        dsn = self.pg.uri(user="pgpulse_test", password=password)
        pulse = self.start(env={"DATA_SOURCE_NAME": dsn})
        # The server's own log proves pgpulse tried with that password.
        wait_for(lambda: 'password authentication failed for user "pgpulse_test"'
                 in self.pg.read_log(), 20, what="a failed login in the server log")
        page = pulse.wait_for(lambda p: p.value("pg_up") == 0 and p, 10, "pg_up 0")
        self.assertEqual(page.find("pg_settings_max_connections"), [])
        self.assertTrue(pulse.running())
        for path in ("/metrics", "/"):
            _, _, body = pulse.get(path)
            self.assertNotIn(password.encode(), body, path)
        self.assertNotIn(password, pulse.stderr())
        self.assertEqual(pulse.stop(), 0, pulse.stderr())
        self.assertNotIn(password, pulse.stderr())

    def test_sigterm_exits_zero(self):
        pulse = self.start()
        pulse.wait_for(lambda p: p.value("pg_up") == 1, 30, "pg_up 1")
        self.assertEqual(pulse.stop(timeout=5), 0, pulse.stderr())

    def test_json_logs(self):
        pulse = self.start(["--log.format=json"])
        pulse.wait_for(lambda p: p.value("pg_up") == 1, 30, "pg_up 1")
        self.assertEqual(pulse.stop(), 0, pulse.stderr())
        lines = [line for line in pulse.log_lines() if line.strip()]
        self.assertTrue(lines, "no log lines at all")
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                self.fail(f"not JSON: {line!r}")
            self.assertIsInstance(record, dict, line)
            self.assertIn("msg", record, line)
            self.assertIn("level", record, line)
        self.assertTrue(any(self.pg.label() in line for line in lines),
                        "no log line names the target")

    def test_logfmt_is_the_default(self):
        pulse = self.start()
        pulse.wait_for(lambda p: p.value("pg_up") == 1, 30, "pg_up 1")
        self.assertEqual(pulse.stop(), 0, pulse.stderr())
        lines = [line for line in pulse.log_lines() if line.strip()]
        self.assertTrue(lines, "no log lines at all")
        for line in lines:
            self.assertRegex(line, r"^ts=\S+ level=(debug|info|warn|error) msg=", line)

    def test_telemetry_path(self):
        for how, args, env in (("flag", ["--web.telemetry-path=/custom"], {}),
                               ("env", [], {"PG_EXPORTER_WEB_TELEMETRY_PATH": "/custom"})):
            with self.subTest(how=how):
                pulse = self.start(args, env)
                page = pulse.wait_for(lambda p: p.value("pg_up") == 1 and p, 30, "pg_up 1",
                                      path="/custom")
                self.assertTrue(page.find("pg_exporter_scrapes_total"))
                status, _, _ = pulse.get("/metrics")
                self.assertEqual(status, 404)
                self.assertEqual(pulse.stop(), 0, pulse.stderr())

    def test_constant_labels(self):
        pulse = self.start(["--constantLabels=env=prod,team=db\"a"])
        page = pulse.wait_for(lambda p: p.value("pg_up", env="prod") == 1 and p, 30,
                              "pg_up 1 with the constant labels")
        # every series of the target carries them; the process's own do not
        for fam in ("pg_up", "pg_exporter_scrapes_total", "pg_stat_database_xact_commit",
                    "pg_settings_max_connections", "pgpulse_query_duration_seconds"):
            samples = page.find(fam)
            self.assertTrue(samples, fam)
            for smp in samples:
                self.assertEqual((smp.labels.get("env"), smp.labels.get("team")),
                                 ("prod", 'db"a'), f"{fam} {smp.labels}")
        self.assertNotIn("env", page.find("process_start_time_seconds")[0].labels)
        self.assertEqual(pulse.stop(), 0, pulse.stderr())

    def test_constant_label_clashing_with_a_query_label(self):
        pulse = self.start(["--constantLabels=mode=x"], wait=False)
        err = self.exits_nonzero(pulse)
        self.assertIn('mode\\" is also a label of query pg_locks (queries/locks.yaml:', err)

    def test_collection_timeout_caps_every_query(self):
        path = write(self.dir, "slow.yaml",
                     "queries:\n"
                     "  - name: slow\n"
                     "    namespace: itest\n"
                     "    interval: 5s\n"
                     "    timeout: 30s\n"
                     "    sql: SELECT 1 AS one FROM pg_sleep(3)\n"
                     "    columns:\n"
                     "      one: {role: gauge, help: x}\n")
        pulse = self.start(["--catalog=" + path, "--collection-timeout=500ms"])
        pulse.wait_for(lambda p: p.value("pgpulse_query_errors_total", query="slow") >= 1, 30,
                       "the slow query to time out")
        self.assertFalse(pulse.metrics().find("itest_one"))
        self.assertEqual(pulse.stop(), 0, pulse.stderr())

    def test_upstream_environment(self):
        """postgres_exporter 0.11's listen variable works; a PG_EXPORTER_
        variable pgpulse does not read is named in a warning, not ignored."""
        from pgharness import free_port
        port = free_port()
        env = {"DATA_SOURCE_NAME": self.pg.uri(),
               "PG_EXPORTER_WEB_LISTEN_ADDRESS": f"127.0.0.1:{port}",
               "PG_EXPORTER_NOT_A_THING": "1"}
        pulse = Pgpulse([], env=env, wait=False, listen=False)
        self.addCleanup(pulse.destroy)
        pulse.port = port
        pulse.wait_ready()
        pulse.wait_log("var=PG_EXPORTER_NOT_A_THING")
        self.assertIn("environment variable not read by pgpulse", pulse.stderr())
        self.assertEqual(pulse.stop(), 0, pulse.stderr())

    def test_systemd_socket_activation(self):
        """--web.systemd-socket serves on the socket systemd passes (fd 3,
        LISTEN_PID/LISTEN_FDS, as a .socket unit does); without one it
        refuses to start, naming the flag."""
        import socket
        import subprocess
        from pgharness import _pgpulse_bin, free_port, wait_for
        sock = socket.socket()
        sock.bind(("127.0.0.1", free_port()))
        sock.listen(16)
        port = sock.getsockname()[1]
        fd = sock.fileno()
        script = (f'exec 3<&{fd} {fd}<&-; export LISTEN_PID=$$ LISTEN_FDS=1; '
                  'exec "$0" "$@"')
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DATA_SOURCE_", "PG_EXPORTER_"))}
        env["DATA_SOURCE_NAME"] = self.pg.uri()
        err_path = os.path.join(self.dir, "stderr")
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(["bash", "-c", script, _pgpulse_bin(), "--web.systemd-socket"],
                                    env=env, pass_fds=(fd,), stdout=subprocess.DEVNULL,
                                    stderr=err, stdin=subprocess.DEVNULL)
        sock.close()  # only pgpulse holds it now
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))

        def answers():
            if proc.poll() is not None:
                raise AssertionError(open(err_path).read())
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/metrics")
                body = conn.getresponse().read().decode()
                conn.close()
                return "pg_up 1" in body
            except OSError:
                return False
        wait_for(answers, 30, what="pg_up 1 on the systemd socket")
        proc.terminate()
        self.assertEqual(proc.wait(15), 0, open(err_path).read())
        self.assertIn("systemd_fd=3", open(err_path).read())
        # no socket passed: a clear error, not a silent default listener
        pulse = self.start(["--web.systemd-socket"], wait=False)
        self.assertIn("--web.systemd-socket: systemd passed no listening socket",
                      self.exits_nonzero(pulse))


if __name__ == "__main__":
    unittest.main()
