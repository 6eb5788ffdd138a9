"""Debian's HAProxy in front of the seed's HA cluster, routing by pgpulse's
role endpoints: deploy/haproxy/haproxy.cfg, with this machine's addresses
and checks every 200 ms, over a real primary, two streaming standbys and
one pgpulse per node running the shipped catalog.

Covers: the write port lands on the primary and a write through it
succeeds; the read port lands only on standbys and spreads over both; after
the seed's manual failover (stop the primary, pg_promote() replica-1,
repoint replica-2) writes through the write port reach the new primary,
never a standby, and the read port serves replica-2; with no standby left
the read port falls back to the primary; a node that stops passing the
/primary check (here: its pgpulse stops) loses its sessions through the
write port at once (on-marked-down shutdown-sessions).

pgpulse re-reads a server's role once per collection cycle (15 s with the
shipped catalog), so the write port follows a promotion within that plus
one check; the test prints what it measured.
"""

import os
import socket
import struct
import subprocess
import sys
import time
import unittest

from pgharness import (PSQL, Haproxy, PgServer, Pgpulse, free_port, haproxy_local_config,
                       wait_for)

BOUND = 45  # seconds: one 15 s collection cycle, checks, a loaded machine; generous

NODES = ("postgres-primary", "postgres-replica-1", "postgres-replica-2")


def psql_via(port, sql):
    """sql through the proxy's port as the superuser (trust over loopback):
    (exit code, output or error)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "5"
    p = subprocess.run([PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                        "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres",
                        "-c", sql], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=30)
    return p.returncode, (p.stdout if p.returncode == 0 else p.stderr).strip()


class PgSession:
    """One PostgreSQL session over a raw socket (protocol 3, trust auth), so
    the test can see the moment the proxy closes it."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        body = struct.pack("!I", 196608) + b"user\0postgres\0database\0postgres\0\0"
        self.sock.sendall(struct.pack("!I", len(body) + 4) + body)
        self.buf = b""
        self.until_ready()

    def message(self):
        while len(self.buf) < 5 or len(self.buf) < 1 + struct.unpack("!I", self.buf[1:5])[0]:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the other end")
            self.buf += data
        n = 1 + struct.unpack("!I", self.buf[1:5])[0]
        kind, payload, self.buf = self.buf[:1], self.buf[5:n], self.buf[n:]
        if kind == b"E":
            raise RuntimeError(f"server error: {payload!r}")
        return kind, payload

    def until_ready(self):
        rows = []
        while True:
            kind, payload = self.message()
            if kind == b"D":  # one text column
                (length,) = struct.unpack("!i", payload[2:6])
                rows.append(payload[6:6 + length].decode())
            if kind == b"Z":
                return rows

    def scalar(self, sql):
        q = sql.encode() + b"\0"
        self.sock.sendall(b"Q" + struct.pack("!I", len(q) + 4) + q)
        (value,) = self.until_ready()
        return value

    def closed_within(self, timeout):
        """Seconds until the other end closes the idle session; raises
        AssertionError if it stays open for timeout seconds."""
        start = time.monotonic()
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"session still open after {timeout}s") from None
        except ConnectionResetError:
            data = b""
        # a server's goodbye (an ErrorResponse) may come first; then the end
        while data:
            data = self.sock.recv(65536)
        return time.monotonic() - start

    def close(self):
        self.sock.close()


class HaproxyTest(unittest.TestCase):
    def setUp(self):
        self.primary = PgServer()
        self.addCleanup(self.primary.destroy)
        self.primary.psql("CREATE TABLE writes (id serial PRIMARY KEY, note text NOT NULL)")
        self.r1 = self.primary.add_standby(application_name="postgres-replica-1")
        self.addCleanup(self.r1.destroy)
        self.r2 = self.primary.add_standby(application_name="postgres-replica-2")
        self.addCleanup(self.r2.destroy)
        self.servers = dict(zip(NODES, (self.primary, self.r1, self.r2)))
        self.node_of_port = {srv.port: node for node, srv in self.servers.items()}
        self.pulses = {}
        for node, srv in self.servers.items():
            pulse = Pgpulse(["--collection.role-interval=1s"],
                            env={"DATA_SOURCE_NAME": srv.uri(user=srv.user,
                                                             password=srv.password)})
            self.addCleanup(pulse.destroy)
            self.pulses[node] = pulse
        self.write_port = free_port()
        self.read_port = free_port()
        while self.read_port == self.write_port:
            self.read_port = free_port()
        config = haproxy_local_config(
            {node: (self.servers[node].port, self.pulses[node].port) for node in NODES},
            self.write_port, self.read_port, inter="200ms")
        self.proxy = Haproxy(config, wait_ports=(self.write_port, self.read_port))
        self.addCleanup(self.proxy.destroy)

    # -- helpers ---------------------------------------------------------------

    def where(self, port):
        """(node, in recovery) of a new session through the proxy's port."""
        rc, out = psql_via(port, "SELECT inet_server_port(), pg_is_in_recovery()")
        if rc != 0:
            raise RuntimeError(out)
        server_port, recovery = out.split("|")
        return self.node_of_port[int(server_port)], recovery == "t"

    def write(self, note):
        """Inserts a row through the write port; the node it landed on."""
        rc, out = psql_via(self.write_port, "INSERT INTO writes (note) VALUES"
                           f" ('{note}') RETURNING inet_server_port()")
        if rc != 0:
            raise RuntimeError(out)
        return self.node_of_port[int(out)]

    def reads(self, n=6):
        """Where n sessions through the read port land: {node: in recovery}."""
        seen = {}
        for _ in range(n):
            node, recovery = self.where(self.read_port)
            seen[node] = recovery
        return seen

    def wait(self, predicate, what, timeout=BOUND):
        try:
            return wait_for(predicate, timeout, interval=0.1, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}\nhaproxy log:\n{self.proxy.log()[-4000:]}") from None

    def role(self, node, path):
        status, _, body = self.pulses[node].get(path)
        return status, body.decode()

    # -- the test ----------------------------------------------------------------

    def test_routing_follows_failover(self):
        # writes: the primary
        self.wait(lambda: self.where(self.write_port) == ("postgres-primary", False),
                  "the write port to land on the primary")
        self.assertEqual(self.write("before failover"), "postgres-primary")
        self.assertEqual(self.primary.scalar("SELECT note FROM writes"), "before failover")

        # reads: both standbys, round robin, never the primary
        self.wait(lambda: self.reads() == {"postgres-replica-1": True,
                                           "postgres-replica-2": True},
                  "the read port to spread over both standbys")

        # the seed's manual failover
        self.primary.stop()
        promoted_at = time.monotonic()
        self.assertEqual(self.r1.scalar("SELECT pg_promote()"), "t")
        self.r2.psql("ALTER SYSTEM SET primary_conninfo = "
                     f"'host=127.0.0.1 port={self.r1.port} user=postgres"
                     " application_name=postgres-replica-2'")
        self.r2.psql("SELECT pg_reload_conf()")

        # Until replica-1's pgpulse sees the promotion the write port has no
        # server; a write never lands on a standby meanwhile.
        refused = []  # writes a standby refused: there must be none

        def written():
            try:
                return self.write("after failover")
            except RuntimeError as e:
                if "read-only transaction" in str(e):
                    refused.append(str(e))
                raise
        self.assertEqual(self.wait(written, "a write through the write port after failover"),
                         "postgres-replica-1")
        self.assertEqual(refused, [], "the write port sent a write to a standby")
        writes_after = time.monotonic() - promoted_at
        self.assertEqual(self.r1.scalar("SELECT count(*) FROM writes"), "2")
        status = self.role("postgres-replica-1", "/primary")
        self.assertEqual(status, (200, "primary\n"))
        print(f"\ntest_haproxy: writes reached the new primary {writes_after:.1f}s after"
              " pg_promote()", file=sys.stderr)

        # reads: replica-2 only, once it streams from the new primary
        self.r2.wait_streaming()
        self.wait(lambda: self.reads() == {"postgres-replica-2": True},
                  "the read port to serve replica-2 alone")
        self.assertEqual(self.role("postgres-primary", "/replica"), (503, "down\n"))

        # no standby left: reads fall back to the primary (a backup server)
        self.r2.stop()
        stopped_at = time.monotonic()
        self.wait(lambda: self.reads(3) == {"postgres-replica-1": False},
                  "the read port to fall back to the new primary")
        print(f"test_haproxy: reads fell back to the primary {time.monotonic() - stopped_at:.1f}s"
              " after the last standby stopped", file=sys.stderr)

        # A node that stops passing /primary loses its write sessions at
        # once, even though PostgreSQL itself is fine (here its pgpulse stops).
        session = PgSession(self.write_port)
        self.addCleanup(session.close)
        self.assertEqual(session.scalar("SELECT pg_is_in_recovery()"), "f")
        self.assertEqual(self.pulses["postgres-replica-1"].stop(), 0)
        cut = session.closed_within(10)
        print(f"test_haproxy: a write session was cut {cut:.1f}s after its node's pgpulse"
              " stopped", file=sys.stderr)
        rc, out = psql_via(self.write_port, "SELECT 1")
        self.assertNotEqual(rc, 0, "the write port has no server left")
        self.assertEqual(self.r1.scalar("SELECT pg_is_in_recovery()"), "f")


if __name__ == "__main__":
    unittest.main()
