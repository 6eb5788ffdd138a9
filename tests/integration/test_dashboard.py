"""The dashboard: /api/v1/status and the page at /, against a real primary
and its streaming standby, the page driven by Debian's headless Chromium.

Covers: the JSON gives each node's role, version, uptime, clock and row
counts of every user table (count(*) below the size threshold, the
planner's estimate above it, and says which), the primary's replication
rows and the standby's WAL receiver, a table named like an HTML tag comes
back as the same string and never as markup, and no password appears; a
--web.dashboard-address serves the dashboard and its data but not
/metrics; the page carries a strict Content-Security-Policy. In Chromium
the page shows the right counts per node and the replication row, shows
the hostile name as text with no element injected, follows inserts on the
primary on the standby without a reload, fits a phone's width, shows the
primary DOWN (colour and words) once it stops, logs no console error, and
refuses to run an inline script injected into it (the CSP in force).
Screenshots are saved in the build directory (their paths are printed).

Chromium is required: without it (or chromedriver, or Selenium) the test
fails; deploy/deps.sh browser installs them.
"""

import json
import os
import shutil
import sys
import time
import unittest

from pgharness import PgServer, Pgpulse, free_port, wait_for

HOSTILE = "<img src=x onerror=alert(1)>"
# Tables at or above this size get estimates; set for the database before
# pgpulse connects, so the test needs no 10 MiB table.
THRESHOLD = 65536
USERS = 7
HOSTILE_ROWS = 3
BIG_ROWS = 20000
BOUND = 90  # seconds: the table query runs every 15 s, plus replay; generous


def webdriver_or_fail(test):
    """A headless Chromium session (Debian's chromium and chromedriver),
    or a failed test naming what is missing."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        # Debian's python3-selenium, from a Python that is not Debian's
        sys.path.append("/usr/lib/python3/dist-packages")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        test.fail(f"Selenium is missing ({e}): run deploy/deps.sh browser")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    for path, pkg in ((chromium, "chromium"), (driver, "chromium-driver")):
        if not os.access(path, os.X_OK):
            test.fail(f"{path} not found: install {pkg} (deploy/deps.sh browser)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000", "--hide-scrollbars"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=opts)


def artifact(name):
    d = os.environ.get("PGPULSE_BUILD_DIR") or os.getcwd()
    return os.path.join(d, name)


class DashboardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.primary = PgServer()
        cls.addClassCleanup(cls.primary.destroy)
        p = cls.primary
        p.psql(f"ALTER DATABASE postgres SET pgpulse.exact_count_max_bytes = '{THRESHOLD}'")
        p.psql(f"CREATE TABLE users AS SELECT g AS id, 'user ' || g AS name"
               f" FROM generate_series(1, {USERS}) g")
        quoted = '"' + HOSTILE.replace('"', '""') + '"'
        p.psql(f"CREATE TABLE {quoted} AS SELECT g AS id FROM generate_series(1, {HOSTILE_ROWS}) g")
        p.psql(f"CREATE TABLE big AS SELECT g AS id, repeat('x', 100) AS pad"
               f" FROM generate_series(1, {BIG_ROWS}) g")
        p.psql("VACUUM ANALYZE big")
        cls.standby = p.add_standby(application_name="replica-a")
        cls.addClassCleanup(cls.standby.destroy)
        cls.password = "dash-secret-" + os.urandom(4).hex()
        # trust ignores the password: it is here to prove it never shows
        dsn = ",".join(s.uri(password=cls.password) for s in (cls.primary, cls.standby))
        cls.dash_port = free_port()
        cls.pulse = Pgpulse([f"--web.dashboard-address=127.0.0.1:{cls.dash_port}"],
                            env={"DATA_SOURCE_NAME": dsn})
        cls.addClassCleanup(cls.pulse.destroy)
        cls.addClassCleanup(cls.pulse.stop_checked)
        cls.P, cls.S = cls.primary.label(), cls.standby.label()

        def complete():
            doc = cls.status()
            nodes = {n["server"]: n for n in doc["nodes"]}
            ok = (set(nodes) == {cls.P, cls.S}
                  and all(len(cls.tables(n)) == 3 for n in nodes.values())
                  and nodes[cls.P]["replication"]
                  and nodes[cls.S]["wal_receiver"] is not None
                  and all(n["version"] and n["server_time"] for n in nodes.values()))
            return ok and doc
        cls.doc = wait_for(complete, BOUND, interval=0.5,
                           what="both nodes with their tables in /api/v1/status")

    @classmethod
    def status(cls, port=None):
        status, headers, body = cls.get("/api/v1/status", port)
        assert status == 200, (status, body[:200])
        assert headers["content-type"] == "application/json; charset=utf-8", headers
        return json.loads(body)

    @classmethod
    def get(cls, path, port=None):
        if port is None:
            return cls.pulse.get(path)
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    @staticmethod
    def tables(node):
        """{(schema, name): (rows, method)} over the node's databases."""
        return {(t["schema"], t["name"]): (t["rows"], t["method"])
                for d in node["databases"] for t in d["tables"]}

    def node(self, doc, server):
        return next(n for n in doc["nodes"] if n["server"] == server)

    # -- the JSON endpoint on its own ---------------------------------------

    def test_1_row_counts_per_node_exact_and_estimate(self):
        sizes = dict((r[0], int(r[1])) for r in self.primary.psql(
            "SELECT relname, pg_relation_size(oid) FROM pg_class"
            " WHERE relname IN ('users', 'big')"
            f" OR relname = '{HOSTILE}'"))
        self.assertLess(sizes["users"], THRESHOLD)
        self.assertLess(sizes[HOSTILE], THRESHOLD)
        self.assertGreaterEqual(sizes["big"], THRESHOLD)
        for server in (self.P, self.S):
            with self.subTest(node=server):
                t = self.tables(self.node(self.doc, server))
                self.assertEqual(t[("public", "users")], (USERS, "exact"))
                self.assertEqual(t[("public", HOSTILE)], (HOSTILE_ROWS, "exact"))
                rows, method = t[("public", "big")]
                self.assertEqual(method, "estimate")
                self.assertAlmostEqual(rows, BIG_ROWS, delta=BIG_ROWS * 0.1)

    def test_2_server_info(self):
        version = self.primary.scalar("SHOW server_version").split()[0]
        for server, role in ((self.P, "primary"), (self.S, "standby")):
            with self.subTest(node=server):
                n = self.node(self.doc, server)
                self.assertTrue(n["up"])
                self.assertEqual(n["role"], role)
                self.assertEqual(n["status"], "ok", n["status_text"])
                self.assertTrue(n["version"].startswith(version + "."), n["version"])
                self.assertIn("PostgreSQL " + version, n["version_string"])
                self.assertGreater(n["uptime_seconds"], 0)
                self.assertLess(n["uptime_seconds"], 3600)
                self.assertLess(abs(n["server_time"] - time.time()), 60)

    def test_3_replication(self):
        rep = self.node(self.doc, self.P)["replication"]
        self.assertEqual(len(rep), 1, rep)
        r = rep[0]
        self.assertEqual(r["application_name"], "replica-a")
        self.assertEqual(r["client_addr"], "127.0.0.1")
        self.assertEqual(r["state"], "streaming")
        self.assertEqual(r["sync_state"], "async")
        for k in ("write_lag_seconds", "flush_lag_seconds", "replay_lag_seconds", "lag_bytes"):
            self.assertGreaterEqual(r[k], 0, k)
        self.assertFalse(r["lagging"])
        s = self.node(self.doc, self.S)
        self.assertEqual(s["replication"], [])
        self.assertEqual(s["wal_receiver"]["status"], "streaming")
        self.assertEqual(s["wal_receiver"]["upstream_host"], "127.0.0.1")
        self.assertIsNotNone(s["lag_bytes"])
        self.assertIsNone(self.node(self.doc, self.P)["wal_receiver"])

    def test_4_hostile_name_escaped_and_no_password(self):
        _, _, body = self.pulse.get("/api/v1/status")
        self.assertNotIn(b"<img", body)  # \u003c in the JSON text
        self.assertIn(b"\\u003cimg src=x onerror=alert(1)\\u003e", body)
        names = {t[1] for n in json.loads(body)["nodes"] for t in self.tables(n)}
        self.assertIn(HOSTILE, names)
        for path in ("/api/v1/status", "/", "/dashboard.js"):
            self.assertNotIn(self.password.encode(), self.pulse.get(path)[2], path)

    def test_5_history_and_memory(self):
        doc = wait_for(lambda: (d := self.status()) and all(
            len(n["history"]["t"]) >= 2 for n in d["nodes"]) and d, BOUND,
            what="two history samples per node")
        for n in doc["nodes"]:
            h = n["history"]
            self.assertEqual({len(h[k]) for k in ("t", "lag_bytes", "tps", "connections")},
                             {len(h["t"])})
            self.assertEqual(h["t"], sorted(h["t"]))
            self.assertGreaterEqual(h["t"][1] - h["t"][0], 4.9, "samples 5 s apart at least")
            self.assertTrue(any(c is not None for c in h["connections"]))
        page = self.pulse.metrics()
        for server in (self.P, self.S):
            # 180 samples of 24 bytes are part of what the target holds
            mem = page.find("pgpulse_target_memory_bytes", server=server)
            self.assertEqual(len(mem), 1, mem)
            self.assertGreater(mem[0].value, 180 * 24)

    def test_6_dashboard_address_serves_only_the_dashboard(self):
        port = self.dash_port
        self.assertEqual(self.get("/metrics", port)[0], 404)
        self.assertEqual(self.get("/-/healthy", port)[0], 404)
        status, headers, body = self.get("/", port)
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "text/html; charset=utf-8")
        self.assertNotIn(b'href="/metrics"', body)
        for path in ("/dashboard.js", "/dashboard.css"):
            self.assertEqual(self.get(path, port)[0], 200, path)
        doc = self.status(port)
        self.assertIsNone(doc["metrics_path"])
        self.assertEqual({n["server"] for n in doc["nodes"]}, {self.P, self.S})
        # the main address links to the metrics
        _, _, main = self.pulse.get("/")
        self.assertIn(b'href="/metrics"', main)
        self.assertEqual(self.pulse.get("/metrics")[0], 200)

    def test_7_csp_and_types(self):
        want = {"/": "text/html; charset=utf-8",
                "/dashboard.js": "text/javascript; charset=utf-8",
                "/dashboard.css": "text/css; charset=utf-8"}
        for path, ctype in want.items():
            with self.subTest(path=path):
                status, headers, _ = self.pulse.get(path)
                self.assertEqual(status, 200)
                self.assertEqual(headers["content-type"], ctype)
                csp = headers.get("content-security-policy", "")
                self.assertIn("default-src 'none'", csp)
                self.assertIn("script-src 'self'", csp)
                self.assertNotIn("unsafe-inline", csp)
                self.assertEqual(headers.get("x-content-type-options"), "nosniff")
        _, _, html = self.pulse.get("/")
        self.assertNotIn(b"<script>", html, "no inline script: CSP would block it")
        self.assertNotIn(b"style=", html)
        self.assertEqual(self.pulse.get("/api/v1/status", method="POST")[0], 405)

    # -- the page in Chromium (last: it stops the primary) -----------------

    def test_8_page_in_chromium(self):
        d = webdriver_or_fail(self)
        self.addCleanup(d.quit)
        from selenium.webdriver.common.by import By
        base = f"http://127.0.0.1:{self.pulse.port}/"
        d.get(base)

        def cell(table, server):
            """The text of the rows table's cell for a table and a node."""
            return d.execute_script(
                "const tr = Array.from(document.querySelectorAll('#rows tbody tr'))"
                "  .find(r => r.dataset.table === arguments[0]);"
                "if (!tr) return null;"
                "const td = Array.from(tr.cells).find(c => c.dataset.server === arguments[1]);"
                "return td ? td.textContent : null;", "public." + table, server)

        def counts_shown():
            return all(cell("users", s) == str(USERS) for s in (self.P, self.S))
        wait_for(counts_shown, 30, what="the users row on both nodes")
        for s in (self.P, self.S):
            self.assertEqual(cell(HOSTILE, s), str(HOSTILE_ROWS))
            self.assertTrue(cell("big", s).startswith("≈"), cell("big", s))

        # the hostile name is text in its cell; nothing was injected
        names = [e.text for e in d.find_elements(By.CSS_SELECTOR, "#rows td.table-name")]
        self.assertIn(HOSTILE, names)
        self.assertEqual(d.find_elements(By.TAG_NAME, "img"), [])

        # the replication row and both nodes' cards, in words
        rep = d.find_element(By.ID, "replication").text
        self.assertIn("replica-a", rep)
        self.assertIn("streaming", rep)
        self.assertIn("async", rep)
        cards = {c.get_attribute("data-server"): c for c in
                 d.find_elements(By.CSS_SELECTOR, "article.node")}
        self.assertEqual(set(cards), {self.P, self.S})
        self.assertIn("PRIMARY", cards[self.P].text)
        self.assertIn("STANDBY", cards[self.S].text)
        self.assertIn("OK", cards[self.P].text)
        self.assertIn("streaming", cards[self.S].text)
        self.assertTrue(d.find_elements(By.CSS_SELECTOR, "article.node svg polyline"),
                        "no sparkline drawn")
        self.assertEqual(d.find_element(By.ID, "metrics-link").get_attribute("href"),
                         base + "metrics")
        shot = artifact("dashboard.png")
        d.save_screenshot(shot)
        print(f"\nscreenshot: {shot}", file=sys.stderr)

        # readable on a phone: nothing wider than the screen but the tables' own scroll
        d.set_window_size(390, 844)
        time.sleep(0.5)
        self.assertLessEqual(d.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"), 1)
        d.set_window_size(1280, 1000)

        # inserts on the primary reach the standby's column without a reload
        d.execute_script("window.__same_page = 1;")
        self.primary.psql("INSERT INTO users SELECT g, 'late ' || g FROM generate_series(1, 5) g")
        # each node is collected on its own schedule: wait for both
        wait_for(lambda: cell("users", self.S) == str(USERS + 5) and
                 cell("users", self.P) == str(USERS + 5), BOUND,
                 what="both nodes' users count after the insert")
        self.assertEqual(d.execute_script("return window.__same_page;"), 1, "the page reloaded")
        self.assertEqual(self.severe(d), [])

        # the primary stops: the page says so, in colour and words
        self.primary.stop()

        def primary_down():
            c = d.find_element(By.CSS_SELECTOR, f"article.node[data-server='{self.P}']")
            return c.get_attribute("data-status") == "down" and c
        card = wait_for(primary_down, BOUND, what="the primary's card to say down")
        self.assertIn("DOWN", card.text)
        self.assertIn("cannot connect", card.text)
        bg = card.value_of_css_property("background-color")
        self.assertNotIn(bg, ("rgba(255, 255, 255, 1)", "rgba(0, 0, 0, 0)"), "no colour")
        self.assertEqual(cell("users", self.P), "DOWN")
        down = self.node(self.status(), self.P)
        self.assertEqual((down["up"], down["connections"], down["tps"], down["databases"][0]["tables"]),
                         (False, None, None, []), "a node that is down shows nothing stale")

        def standby_lagging():
            c = d.find_element(By.CSS_SELECTOR, f"article.node[data-server='{self.S}']")
            return c.get_attribute("data-status") == "lagging" and c
        card = wait_for(standby_lagging, BOUND, what="the standby to say it does not stream")
        self.assertIn("LAGGING", card.text)
        self.assertIn("not streaming", card.text)
        shot = artifact("dashboard-primary-down.png")
        d.save_screenshot(shot)
        print(f"screenshot: {shot}", file=sys.stderr)
        self.assertEqual(self.severe(d), [])

        # the browser enforces the CSP: an inline script put into the page
        # does not run (and is reported as a violation)
        ran = d.execute_script(
            "window.__violations = [];"
            "document.addEventListener('securitypolicyviolation',"
            "  e => window.__violations.push(e.effectiveDirective));"
            "const s = document.createElement('script');"
            "s.textContent = 'window.__inline_ran = true;';"
            "document.body.appendChild(s);"
            "return window.__inline_ran === true;")
        self.assertFalse(ran, "an inline script ran despite the CSP")
        self.assertEqual(wait_for(lambda: d.execute_script("return window.__violations;"), 10,
                                  what="the CSP violation event"), ["script-src-elem"])

    @staticmethod
    def severe(d):
        return [e for e in d.get_log("browser") if e["level"] == "SEVERE"]



class TwoDatabasesTest(unittest.TestCase):
    """Two databases of one server are one node with two databases."""

    def test_one_node_two_databases(self):
        pg = PgServer()
        self.addCleanup(pg.destroy)
        pg.psql("CREATE DATABASE app")
        pg.psql("CREATE TABLE in_postgres AS SELECT 1 AS x")
        pg.psql("CREATE TABLE in_app AS SELECT g AS x FROM generate_series(1, 4) g", dbname="app")
        pulse = Pgpulse(env={"DATA_SOURCE_NAME": pg.uri() + "," + pg.uri(dbname="app")})
        self.addCleanup(pulse.destroy)
        self.addCleanup(pulse.stop_checked)

        def both():
            doc = json.loads(pulse.get("/api/v1/status")[2])
            dbs = {d["name"]: {t["name"]: t["rows"] for t in d["tables"]}
                   for n in doc["nodes"] for d in n["databases"]}
            return (len(doc["nodes"]) == 1 and dbs == {"postgres": {"in_postgres": 1},
                                                        "app": {"in_app": 4}}
                    and doc["nodes"][0]["version"] and doc)
        doc = wait_for(both, BOUND, interval=0.5, what="one node with both databases' tables")
        n = doc["nodes"][0]
        self.assertEqual((n["server"], n["role"], n["status"]), (pg.label(), "primary", "ok"))
        self.assertIsNotNone(n["uptime_seconds"])


if __name__ == "__main__":
    unittest.main()
