"""The HTTP side under the load and the requests real clients send.

Covers: 16 keep-alive clients hammering /metrics while pages are swapped
under them (a one-second catalog) all get complete, valid pages and the
process survives; a HEAD and a GET pipelined on one connection both come
back intact (h2o 2.2.5 would send a HEAD body if asked wrongly, which
corrupts the next response); a refused gzip (q=0) gets the plain page; a
POST gets 405, a large request body 413; a gzipped page gunzips to exactly
what a plain GET of the same page returns.
"""

import gzip
import http.client
import shutil
import socket
import tempfile
import threading
import time
import unittest

from pgharness import PgServer, Pgpulse, fast_catalog, parse_exposition

CLIENTS = 16
REQUESTS_PER_CLIENT = 150


class HttpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgServer()
        cls.addClassCleanup(cls.pg.destroy)
        cls.dir = tempfile.mkdtemp(prefix="pgpulse-http-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.pulse = Pgpulse(["--catalog=" + fast_catalog(cls.dir)],
                            env={"DATA_SOURCE_NAME": cls.pg.uri()})
        cls.addClassCleanup(cls.pulse.destroy)
        cls.addClassCleanup(cls.pulse.stop_checked)
        cls.pulse.wait_for(lambda p: p.find("itest_one") and p, 20, "first collection")

    def test_concurrent_keepalive_clients(self):
        errors, pages = [], []
        lock = threading.Lock()

        def client(gz):
            conn = http.client.HTTPConnection("127.0.0.1", self.pulse.port, timeout=10)
            headers = {"Accept-Encoding": "gzip"} if gz else {}
            try:
                for i in range(REQUESTS_PER_CLIENT):
                    conn.request("GET", "/metrics", headers=headers)
                    resp = conn.getresponse()
                    body = resp.read()
                    if resp.status != 200:
                        raise AssertionError(f"status {resp.status}")
                    if gz:
                        body = gzip.decompress(body)
                    if i % 50 == 0:
                        with lock:
                            pages.append(body)
            except Exception as e:  # reported below, with the client's kind
                with lock:
                    errors.append(f"{'gzip' if gz else 'plain'} client: {e!r}")
            finally:
                conn.close()

        threads = [threading.Thread(target=client, args=(i % 2 == 0,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        self.assertTrue(self.pulse.running(), self.pulse.stderr())
        self.assertEqual(len(pages), CLIENTS * ((REQUESTS_PER_CLIENT + 49) // 50))
        for body in pages:
            page = parse_exposition(body.decode())  # raises on a torn page
            self.assertEqual(page.value("itest_one", datname="postgres"), 1)

    def test_pipelined_head_then_get(self):
        req = (b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        with socket.create_connection(("127.0.0.1", self.pulse.port), timeout=5) as s:
            s.sendall(req)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        head1, _, rest = data.partition(b"\r\n\r\n")
        self.assertTrue(head1.startswith(b"HTTP/1.1 200"), head1)
        # the HEAD response carries no body: the next bytes are the GET's status line
        self.assertTrue(rest.startswith(b"HTTP/1.1 200"), rest[:80])
        head2, _, body = rest.partition(b"\r\n\r\n")
        length = [int(l.split(b":")[1]) for l in head2.split(b"\r\n")
                  if l.lower().startswith(b"content-length:")]
        self.assertEqual(length, [len(body)])
        parse_exposition(body.decode())

    def test_gzip_refused_with_q0(self):
        status, headers, body = self.pulse.get(
            "/metrics", headers={"Accept-Encoding": "gzip;q=0, identity"})
        self.assertEqual(status, 200)
        self.assertNotIn("content-encoding", headers)
        parse_exposition(body.decode())

    def test_gzip_is_the_same_page(self):
        # pages change every second: retry until two requests hit one page
        for _ in range(20):
            _, _, plain = self.pulse.get("/metrics")
            _, headers, gz = self.pulse.get("/metrics", headers={"Accept-Encoding": "gzip"})
            self.assertEqual(headers.get("content-encoding"), "gzip")
            self.assertEqual(headers.get("vary"), "Accept-Encoding")
            if gzip.decompress(gz) == plain:
                return
            time.sleep(0.05)
        self.fail("a gzipped page never matched the plain page served just before it")

    def test_post_and_large_body(self):
        status, headers, _ = self.pulse.get("/metrics", method="POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers.get("allow"), "GET, HEAD")
        # a body larger than the 4 KiB limit is refused from its headers,
        # before any of it is read
        with socket.create_connection(("127.0.0.1", self.pulse.port), timeout=5) as s:
            s.sendall(b"POST /metrics HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 1048576\r\n\r\n" + b"x" * 1024)
            head = s.recv(64)
        self.assertTrue(head.startswith(b"HTTP/1.1 413 "), head)
        self.assertTrue(self.pulse.running())


BIG_CATALOG = """queries:
  - name: big
    namespace: itest
    interval: 1s
    sql: |
      SELECT 'series-' || g AS name, md5(g::text) AS tag, g AS v
        FROM generate_series(1, 30000) g
    columns:
      name: label
      tag: label
      v: {role: gauge, help: "many series"}
"""


class BigPageTest(unittest.TestCase):
    """A page of several MB is kept gzipped only; a client that does not
    take gzip gets it inflated as it reads. What it reads must be the very
    page, with the right Content-Length, even when it reads slowly while
    new pages replace it every second."""

    @classmethod
    def setUpClass(cls):
        cls.pg = PgServer()
        cls.addClassCleanup(cls.pg.destroy)
        cls.dir = tempfile.mkdtemp(prefix="pgpulse-http-big-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        path = cls.dir + "/big.yaml"
        with open(path, "w") as f:
            f.write(BIG_CATALOG)
        cls.pulse = Pgpulse(["--catalog=" + path], env={"DATA_SOURCE_NAME": cls.pg.uri()})
        cls.addClassCleanup(cls.pulse.destroy)
        cls.addClassCleanup(cls.pulse.stop_checked)
        cls.pulse.wait_for(lambda p: len(p.find("itest_v")) == 30000, 30, "the big page")

    def test_plain_is_the_gzipped_page_inflated(self):
        for _ in range(20):
            _, gh, gz = self.pulse.get("/metrics", headers={"Accept-Encoding": "gzip"})
            _, ph, plain = self.pulse.get("/metrics")
            self.assertEqual(gh.get("content-encoding"), "gzip")
            self.assertNotIn("content-encoding", ph)
            self.assertEqual(int(ph["content-length"]), len(plain))
            self.assertGreater(len(plain), 2 << 20)
            if gzip.decompress(gz) == plain:
                break
            time.sleep(0.05)
        else:
            self.fail("the plain page never matched the gzipped page served just before it")
        page = parse_exposition(plain.decode())
        self.assertEqual(len(page.find("itest_v")), 30000)
        self.assertEqual(page.problems, [])
        status, headers, body = self.pulse.get("/metrics", method="HEAD")
        self.assertEqual((status, body), (200, b""))
        self.assertGreater(int(headers["content-length"]), 2 << 20)

    def test_slow_plain_readers_across_page_swaps(self):
        def slow_read(results):
            with socket.create_connection(("127.0.0.1", self.pulse.port), timeout=20) as s:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(16384)
                    if not chunk:
                        break
                    data += chunk
                    time.sleep(0.002)  # ~8 MB/s: several page swaps per read
            results.append(data)

        results = []
        threads = [threading.Thread(target=slow_read, args=(results,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(len(results), 4)
        for data in results:
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            self.assertEqual(len(body), length)
            self.assertEqual(len(parse_exposition(body.decode()).find("itest_v")), 30000)


if __name__ == "__main__":
    unittest.main()
