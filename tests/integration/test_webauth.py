"""--web.config.file: TLS, client certificates and basic auth with real clients.

A CA, a server certificate, client certificates from that CA and from
another one are made with the openssl CLI at test time, bcrypt hashes with
htpasswd (deploy/deps.sh test). Covers: an HTTPS scrape verified against
the CA; plain HTTP to the TLS port gets no answer; min_version and
max_version are honoured; RequireAndVerifyClientCert refuses a client
without a certificate or with one from another CA, VerifyClientCertIfGiven
refuses only the latter; basic auth answers 401 with WWW-Authenticate
without or with wrong credentials, on every path, and 200 with the right
ones; the password never reaches the log; a bad file (indentation, unknown
key, missing certificate) stops the start with a non-zero exit naming
file:line:column or the file; a changed file is reported on SIGHUP;
SIGTERM with TLS clients connected (idle, mid-handshake, not reading)
exits 0; a TLS client that never reads does not hold up other scrapes.
"""

import base64
import http.client
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import urllib.parse
import unittest
import warnings

from pgharness import PgServer, Pgpulse, fast_catalog, parse_exposition, wait_for

PASSWORD = "correct horse battery staple"


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True,
                   stdin=subprocess.DEVNULL)


def _make_ca(d, name):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
             "-subj", f"/CN={name}", cwd=d)


def _make_cert(d, name, ca, ext):
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(ext)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
             cwd=d)


def _bcrypt(user, password):
    out = subprocess.run(["htpasswd", "-nbBC", "10", user, password], check=True,
                         capture_output=True, text=True).stdout
    return out.strip().split(":", 1)[1]


def _basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class WebAuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pgpulse-webauth-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        d = cls.dir
        _make_ca(d, "ca")
        _make_ca(d, "otherca")
        _make_cert(d, "server", "ca",
                   "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        _make_cert(d, "client", "ca", "extendedKeyUsage=clientAuth\n")
        _make_cert(d, "intruder", "otherca", "extendedKeyUsage=clientAuth\n")
        cls.hash = _bcrypt("prometheus", PASSWORD)
        cls.pg = PgServer()
        cls.addClassCleanup(cls.pg.destroy)
        cls.catalog = fast_catalog(d)

    # -- helpers -------------------------------------------------------------

    def path(self, name):
        return os.path.join(self.dir, name)

    def write_config(self, text, name="web.yml"):
        p = self.path(name)
        if name.startswith("/nonexistent/"):
            return name
        with open(p, "w") as f:
            f.write(text)
        return p

    def tls_config(self, extra=""):
        return ("tls_server_config:\n"
                "  cert_file: server.crt\n"
                "  key_file: server.key\n" + extra)

    def start(self, config_text, args=(), name="web.yml"):
        """pgpulse with config_text as its web config, once it logged that
        it started (plain HTTP cannot tell it is ready)."""
        p = self.write_config(config_text, name)
        pulse = Pgpulse(["--catalog=" + self.catalog, "--web.config.file=" + p, *args],
                        env={"DATA_SOURCE_NAME": self.pg.uri()}, wait=False)
        self.addCleanup(pulse.destroy)

        def started():
            if not pulse.running():
                raise AssertionError(f"pgpulse exited with {pulse.proc.returncode}:\n"
                                     + pulse.stderr())
            return 'msg="started"' in pulse.stderr()
        wait_for(started, 30, what="pgpulse to start")
        return pulse

    def start_fails(self, config_text, name="bad.yml"):
        """Runs pgpulse with config_text and returns (exit code, stderr)."""
        p = self.write_config(config_text, name)
        pulse = Pgpulse(["--catalog=" + self.catalog, "--web.config.file=" + p],
                        env={"DATA_SOURCE_NAME": self.pg.uri()}, wait=False)
        self.addCleanup(pulse.destroy)
        try:
            rc = pulse.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.fail(f"pgpulse kept running with {name}:\n{pulse.stderr()}")
        return rc, pulse.stderr()

    def context(self, cert=None, minimum=None, maximum=None):
        ctx = ssl.create_default_context(cafile=self.path("ca.crt"))
        if cert is not None:
            ctx.load_cert_chain(self.path(cert + ".crt"), self.path(cert + ".key"))
        if minimum is not None:
            ctx.minimum_version = minimum
        if maximum is not None:
            ctx.maximum_version = maximum
        return ctx

    def https_get(self, pulse, path="/metrics", ctx=None, headers=None, timeout=5):
        conn = http.client.HTTPSConnection("127.0.0.1", pulse.port, timeout=timeout,
                                           context=ctx or self.context())
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
        finally:
            conn.close()

    def assert_refused(self, pulse, ctx, what):
        """A request with ctx gets no answer: the handshake fails, or with
        TLS 1.3 the server's alert arrives on the first read."""
        with self.assertRaises((ssl.SSLError, ConnectionError, http.client.HTTPException,
                                OSError), msg=what):
            status, _, _ = self.https_get(pulse, ctx=ctx)
            raise AssertionError(f"{what}: got HTTP {status}")  # not an OSError: fails the test

    def wait_series(self, pulse, ctx=None, headers=None):
        def seen():
            status, _, body = self.https_get(pulse, ctx=ctx, headers=headers)
            return status == 200 and parse_exposition(body.decode()).find("itest_one")
        return wait_for(seen, 20, what="itest_one over HTTPS")

    # -- TLS -------------------------------------------------------------------

    def test_https_scrape_and_plain_http_refused(self):
        pulse = self.start(self.tls_config())
        self.wait_series(pulse)
        status, headers, body = self.https_get(pulse)
        self.assertEqual(status, 200)
        page = parse_exposition(body.decode())
        self.assertEqual(page.value("itest_one", datname="postgres"), 1)
        # the server's certificate is checked: a client trusting another CA refuses it
        other = ssl.create_default_context(cafile=self.path("otherca.crt"))
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.https_get(pulse, ctx=other)
        # HTTP/1.1 even when the client offers h2
        ctx = self.context()
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection(("127.0.0.1", pulse.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
        # plain HTTP to the TLS port gets no HTTP answer
        with self.assertRaises((http.client.HTTPException, ConnectionError, OSError)):
            pulse.get("/metrics", timeout=5)
        self.assertIn("TLS is enabled", pulse.stderr())
        pulse.stop_checked()

    def test_versions(self):
        # default: TLS 1.2 at least
        pulse = self.start(self.tls_config())
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            status, _, _ = self.https_get(pulse, ctx=self.context(minimum=version,
                                                                  maximum=version))
            self.assertEqual(status, 200, version)
        with warnings.catch_warnings():  # TLS 1.0 and 1.1 are deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            old = self.context(minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1_1)
        old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client try; the server must refuse
        self.assert_refused(pulse, old, "a TLS 1.1 client")
        pulse.stop_checked()

        pulse = self.start(self.tls_config("  min_version: TLS13\n"), name="tls13.yml")
        self.assert_refused(pulse, self.context(maximum=ssl.TLSVersion.TLSv1_2),
                            "a TLS 1.2 client with min_version TLS13")
        self.assertEqual(self.https_get(pulse)[0], 200)
        pulse.stop_checked()

        pulse = self.start(self.tls_config("  max_version: TLS12\n"), name="tls12.yml")
        self.assert_refused(pulse, self.context(minimum=ssl.TLSVersion.TLSv1_3),
                            "a TLS 1.3 client with max_version TLS12")
        self.assertEqual(self.https_get(pulse)[0], 200)
        pulse.stop_checked()

    def test_client_certificates(self):
        pulse = self.start(self.tls_config("  client_auth_type: RequireAndVerifyClientCert\n"
                                           "  client_ca_file: ca.crt\n"))
        self.assertEqual(self.https_get(pulse, ctx=self.context("client"))[0], 200)
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            self.assert_refused(pulse, self.context(minimum=version, maximum=version),
                                f"no client certificate over {version}")
            self.assert_refused(pulse, self.context("intruder", minimum=version,
                                                    maximum=version),
                                f"a certificate from another CA over {version}")
        self.assertTrue(pulse.running())
        pulse.stop_checked()

        pulse = self.start(self.tls_config("  client_auth_type: VerifyClientCertIfGiven\n"
                                           "  client_ca_file: ca.crt\n"), name="ifgiven.yml")
        self.assertEqual(self.https_get(pulse)[0], 200)
        self.assertEqual(self.https_get(pulse, ctx=self.context("client"))[0], 200)
        self.assert_refused(pulse, self.context("intruder"), "a certificate from another CA")
        pulse.stop_checked()

    # -- basic auth ------------------------------------------------------------

    def test_basic_auth(self):
        pulse = self.start(self.tls_config(f"basic_auth_users:\n  prometheus: {self.hash}\n"),
                           args=["--log.level=debug"])
        for path in ("/metrics", "/", "/-/healthy", "/no-such-page"):
            status, headers, body = self.https_get(pulse, path)
            self.assertEqual(status, 401, path)
            self.assertEqual(headers.get("www-authenticate"), 'Basic realm="pgpulse"', path)
            self.assertEqual(body, b"Unauthorized\n")
        bad = [_basic("prometheus", "wrong"), _basic("nobody", PASSWORD),
               _basic("prometheus", PASSWORD + "x"), "Basic !!!!", "Bearer abc",
               "Basic " + base64.b64encode(b"prometheus").decode()]
        for value in bad:
            status, headers, _ = self.https_get(pulse, headers={"Authorization": value})
            self.assertEqual(status, 401, value)
            self.assertEqual(headers.get("www-authenticate"), 'Basic realm="pgpulse"')
        good = {"Authorization": _basic("prometheus", PASSWORD)}
        self.wait_series(pulse, headers=good)
        # twice more: the second answer comes from the cache of accepted credentials
        for _ in range(2):
            status, _, body = self.https_get(pulse, headers=good)
            self.assertEqual(status, 200)
            parse_exposition(body.decode())
        # a wrong password after a right one is still wrong
        status, _, _ = self.https_get(pulse, headers={
            "Authorization": _basic("prometheus", "wrong")})
        self.assertEqual(status, 401)
        pulse.stop_checked()
        log = pulse.stderr()
        self.assertIn("basic authentication is required", log)
        for secret in (PASSWORD, base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()):
            self.assertNotIn(secret, log)

    def test_dashboard_and_probe_behind_the_same_auth(self):
        """The dashboard address, the dashboard's data and /probe ask for the
        same credentials as /metrics: nothing is reachable around them."""
        from pgharness import free_port
        dash = free_port()
        pulse = self.start(f"basic_auth_users:\n  prometheus: {self.hash}\n", name="dash.yml",
                           args=[f"--web.dashboard-address=127.0.0.1:{dash}"])
        good = {"Authorization": _basic("prometheus", PASSWORD)}
        probe = "/probe?target=" + urllib.parse.quote(self.pg.uri())
        for port, path in ((dash, "/"), (dash, "/api/v1/status"), (dash, "/dashboard.js"),
                           (pulse.port, "/api/v1/status"), (pulse.port, probe)):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 401, (port, path))
            self.assertEqual(resp.getheader("WWW-Authenticate"), 'Basic realm="pgpulse"')
            conn.request("GET", path, headers=good)
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 200, (port, path))
            conn.close()
        pulse.stop_checked()

    def test_basic_auth_without_tls_and_many_at_once(self):
        # bcrypt runs off the loop: sixteen first logins and wrong
        # passwords at once, and a health check still answers meanwhile
        pulse = self.start(f"basic_auth_users:\n  prometheus: {self.hash}\n", name="plain.yml")
        self.assertIn("TLS is disabled", pulse.stderr())
        results = []
        lock = threading.Lock()

        def login(i):
            pw = PASSWORD if i % 2 == 0 else f"wrong-{i}"
            status, _, _ = pulse.get("/-/healthy", headers={"Authorization": _basic(
                "prometheus", pw)}, timeout=20)
            with lock:
                results.append((i % 2 == 0, status))
        threads = [threading.Thread(target=login, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(sorted(results), [(False, 401)] * 8 + [(True, 200)] * 8)
        status, _, _ = pulse.get("/metrics", headers={"Authorization": _basic(
            "prometheus", PASSWORD)})
        self.assertEqual(status, 200)
        pulse.stop_checked()

    def test_clients_gone_while_their_password_is_checked(self):
        # the answer to a check must not touch a request whose client reset
        pulse = self.start(self.tls_config(f"basic_auth_users:\n  prometheus: {self.hash}\n"))
        for i in range(10):
            s = self.context().wrap_socket(
                socket.create_connection(("127.0.0.1", pulse.port), timeout=5),
                server_hostname="127.0.0.1")
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: "
                      + _basic("prometheus", f"wrong-{i}").encode() + b"\r\n\r\n")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()  # a reset, while bcrypt runs
        good = {"Authorization": _basic("prometheus", PASSWORD)}
        self.assertEqual(self.https_get(pulse, headers=good)[0], 200)
        self.assertTrue(pulse.running())
        pulse.stop_checked()

    # -- bad files -------------------------------------------------------------

    def test_bad_files_stop_the_start(self):
        cases = [
            ("indent.yml", self.tls_config().replace("  key_file", "   key_file"),
             ["indent.yml:3:12:", "mapping values are not allowed"]),
            ("unknown.yml", self.tls_config("  cert_fil: x\n"),
             ["unknown.yml:4:3:", 'unknown key \\"cert_fil\\"']),
            ("toplevel.yml", "tls_server_cfg: {}\n", ["toplevel.yml:1:1:", "tls_server_cfg"]),
            ("missing.yml", self.tls_config().replace("server.crt", "nope.crt"),
             ["missing.yml", "nope.crt", "No such file or directory"]),
            ("mismatch.yml", self.tls_config().replace("server.key", "client.key"),
             ["mismatch.yml", "client.key"]),
            ("hash.yml", f"basic_auth_users:\n  prometheus: {PASSWORD}\n",
             ["hash.yml:2:15:", "not a bcrypt hash"]),
            ("noca.yml", self.tls_config("  client_auth_type: RequireAndVerifyClientCert\n"),
             ["noca.yml:4:21:", "needs client_ca_file"]),
        ]
        for name, text, wanted in cases:
            with self.subTest(name):
                rc, err = self.start_fails(text, name)
                self.assertNotEqual(rc, 0, err)
                for w in wanted:
                    self.assertIn(w, err)
                self.assertNotIn(PASSWORD, err)
        rc, err = self.start_fails("", "/nonexistent/web.yml")
        self.assertNotEqual(rc, 0, err)
        self.assertIn("/nonexistent/web.yml: No such file or directory", err)

    def test_empty_file_is_plain_http(self):
        pulse = self.start("# nothing here\n", name="empty.yml")
        status, _, _ = pulse.get("/metrics")
        self.assertEqual(status, 200)
        self.assertIn("TLS is disabled", pulse.stderr())
        pulse.stop_checked()

    def test_changed_file_reported_on_reload(self):
        pulse = self.start(self.tls_config(), name="reload.yml")
        pulse.proc.send_signal(signal.SIGHUP)
        pulse.wait_log("configuration reloaded")
        self.assertNotIn("--web.config.file", pulse.stderr())
        self.write_config(self.tls_config(f"basic_auth_users:\n  prometheus: {self.hash}\n"),
                          "reload.yml")
        pulse.proc.send_signal(signal.SIGHUP)
        pulse.wait_log("changed --web.config.file takes effect at the next restart")
        # still the running configuration: no authentication asked
        self.assertEqual(self.https_get(pulse)[0], 200)
        pulse.stop_checked()

    # -- connections -----------------------------------------------------------

    def never_reading_client(self, pulse, requests=3000, auth=b""):
        """A TLS connection that sent many pipelined scrapes and reads none."""
        raw = socket.create_connection(("127.0.0.1", pulse.port), timeout=10)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s = self.context().wrap_socket(raw, server_hostname="127.0.0.1")
        s.sendall((b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n") * requests)
        return s

    def test_stuck_tls_clients_do_not_block_scrapes(self):
        pulse = self.start(self.tls_config())
        self.wait_series(pulse)
        stuck = [self.never_reading_client(pulse) for _ in range(2)]
        # and one that connected and never started its handshake
        silent = socket.create_connection(("127.0.0.1", pulse.port), timeout=5)
        time.sleep(0.5)  # let the server fill the stuck clients' windows
        for _ in range(20):
            started = time.monotonic()
            status, _, body = self.https_get(pulse, timeout=5)
            self.assertEqual(status, 200)
            parse_exposition(body.decode())
            self.assertLess(time.monotonic() - started, 2.0)
        self.assertTrue(pulse.running())
        pulse.stop_checked()
        for s in stuck:
            s.close()
        silent.close()

    def reset_client(self, port):
        """A TLS 1.3 client that takes its session tickets and then closes
        without close_notify: the server's next read is ECONNRESET."""
        ctx = self.context(minimum=ssl.TLSVersion.TLSv1_3)
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                            server_hostname="127.0.0.1")
        time.sleep(0.2)
        s.close()

    def test_reset_tls_clients_are_released(self):
        # h2o 2.2.5 alone keeps such connections open for ever (see http.c)
        pulse = self.start(self.tls_config())
        for _ in range(5):
            self.reset_client(pulse.port)

        def released():
            _, _, body = self.https_get(pulse)
            # the page is rendered once a second: this scrape may or may not be in it
            return parse_exposition(body.decode()).value("pgpulse_http_connections") <= 1
        wait_for(released, 10, what="reset TLS connections to be released")
        self.reset_client(pulse.port)
        started = time.monotonic()
        pulse.stop_checked()
        self.assertLess(time.monotonic() - started, 3)

    def test_sigterm_with_tls_clients_connected(self):
        pulse = self.start(self.tls_config(f"basic_auth_users:\n  prometheus: {self.hash}\n"),
                           args=["--web.shutdown-timeout=1s"])
        good = {"Authorization": _basic("prometheus", PASSWORD)}
        self.wait_series(pulse, headers=good)
        # idle keep-alive after a request
        idle = http.client.HTTPSConnection("127.0.0.1", pulse.port, timeout=5,
                                           context=self.context())
        idle.request("GET", "/metrics", headers=good)
        idle.getresponse().read()
        # handshake done, nothing sent
        quiet = self.context().wrap_socket(
            socket.create_connection(("127.0.0.1", pulse.port), timeout=5),
            server_hostname="127.0.0.1")
        # TCP only, no ClientHello
        silent = socket.create_connection(("127.0.0.1", pulse.port), timeout=5)
        # half a request
        half = self.context().wrap_socket(
            socket.create_connection(("127.0.0.1", pulse.port), timeout=5),
            server_hostname="127.0.0.1")
        half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        # not reading its responses
        self.reset_client(pulse.port)
        stuck = self.never_reading_client(
            pulse, requests=500, auth=f"Authorization: {good['Authorization']}\r\n".encode())
        time.sleep(0.3)
        started = time.monotonic()
        pulse.stop_checked()  # exit code 0, also under the sanitizers
        self.assertLess(time.monotonic() - started, 8)
        for c in (quiet, silent, half, stuck):
            c.close()
        idle.close()


if __name__ == "__main__":
    unittest.main()
