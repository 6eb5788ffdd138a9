"""The Debian package and the systemd unit, as an operator gets them.

Covers: systemd-analyze accepts deploy/systemd/pgpulse.service without a
warning and rates its exposure OK; the defaults file is what systemd and
sh read as ARGS=""; the maintainer scripts parse and pass shellcheck. As
root (CI): the .deb CPack builds from the build directory carries the
project's version, computed library dependencies and its conffile;
`dpkg -i` installs the binary, the catalog, the unit (enabled, though no
systemd runs), /etc/default/pgpulse (0640), the man page and the copyright
file, and creates the pgpulse user; the installed binary, run as that user
with a flags file in /etc/pgpulse naming the installed catalog, reaches a
real server through its Unix socket (pg_up 1) and on SIGHUP switches to
the database the edited flags file names; the man page shows every flag
of --help; a reinstall keeps an edited /etc/default/pgpulse; `dpkg -r`
keeps only the conffile and `dpkg --purge` leaves no file, unit link or
systemd state behind.

The package is installed into the real root, not with `dpkg --root`: the
maintainer scripts (adduser, deb-systemd-helper) are part of what is
tested, and they act on the running system. So the test runs only as root,
and only when no pgpulse package or /usr/bin/pgpulse is there before (it
would be replaced, and the machine must be left as found); it removes the
pgpulse user again if it created it.
"""

import glob
import grp
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unittest

from pgharness import SOURCE_DIR, PgServer, Pgpulse, wait_for

UNIT = os.path.join(SOURCE_DIR, "deploy", "systemd", "pgpulse.service")
DEFAULTS = os.path.join(SOURCE_DIR, "deploy", "systemd", "pgpulse.default")
SCRIPTS = [os.path.join(SOURCE_DIR, "deploy", "debian", s) for s in ("postinst", "prerm", "postrm")]
BUILD_DIR = os.environ.get("PGPULSE_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
PGPULSE_BIN = os.environ.get("PGPULSE_BIN", os.path.join(BUILD_DIR, "pgpulse"))

INSTALLED = {
    "/usr/bin/pgpulse",
    "/lib/systemd/system/pgpulse.service",
    "/etc/default/pgpulse",
    "/usr/share/man/man1/pgpulse.1.gz",
    "/usr/share/doc/pgpulse/copyright",
    "/usr/share/doc/pgpulse/migration.md",
    "/usr/share/doc/pgpulse/metrics.md",
    "/usr/share/pgpulse/queries/README.md",
} | {"/usr/share/pgpulse/queries/" + os.path.basename(p)
     for p in glob.glob(os.path.join(SOURCE_DIR, "queries", "*.yaml"))
     } | {"/usr/share/pgpulse/queries/compat/" + os.path.basename(p)
          for p in glob.glob(os.path.join(SOURCE_DIR, "queries", "compat", "*.yaml"))}
# What deb-systemd-helper leaves while the package is installed.
SYSTEMD_STATE = [
    "/etc/systemd/system/multi-user.target.wants/pgpulse.service",
    "/etc/systemd/system/pgpulse.service",  # the mask `dpkg -r` sets
    "/var/lib/systemd/deb-systemd-helper-enabled/pgpulse.service.dsh-also",
    "/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/pgpulse.service",
    "/var/lib/systemd/deb-systemd-helper-masked/pgpulse.service",
]


def run(argv, timeout=120, **kw):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, **kw)


def help_flags(binary):
    """The long flags `binary --help` lists, without the --[no-] prefix."""
    out = run([binary, "--help"]).stdout
    return sorted(set(re.findall(r"^\s+--(?:\[no-\])?([a-z][a-z.-]*)", out, re.M)))


class UnitFileTest(unittest.TestCase):
    """The unit and the defaults file as committed; no root needed."""

    @unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze not installed")
    def test_unit_verifies(self):
        # verify exits 0 even for an unknown key or a bad value (it only
        # warns), so any output is a failure. ExecStart must name an
        # existing binary: the built one stands in for /usr/bin/pgpulse,
        # and the man page is not installed yet (the package test checks it).
        with tempfile.TemporaryDirectory(prefix="pgpulse-unit-") as d:
            with open(UNIT) as f:
                text = f.read()
            self.assertIn("ExecStart=/usr/bin/pgpulse $ARGS\n", text)
            path = os.path.join(d, "pgpulse.service")
            with open(path, "w") as f:
                f.write(text.replace("/usr/bin/pgpulse", os.path.abspath(PGPULSE_BIN)))
            p = run(["systemd-analyze", "verify", "--man=no", path])
            self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""))

    @unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze not installed")
    def test_unit_exposure(self):
        # systemd's own rating of the sandbox, 0 (locked down) to 10; the
        # unit rates 1.5, "OK". --threshold is in tenths.
        p = run(["systemd-analyze", "security", "--offline=yes", "--threshold=20", UNIT])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"Overall exposure level for pgpulse.service: 1\.\d OK")
        for line in ("PrivateDevices=", "ProtectSystem=", "ProtectHome=", "NoNewPrivileges=",
                     "SystemCallFilter=~@", "MemoryDenyWriteExecute=",
                     "CapabilityBoundingSet=~CAP_SYS_ADMIN", "RestrictAddressFamilies=~AF_PACKET"):
            ok = [ln for ln in p.stdout.splitlines() if line in ln and ln.lstrip().startswith("✓")]
            self.assertTrue(ok, f"{line} is not a pass in:\n{p.stdout}")

    def test_defaults_file(self):
        # systemd and sh agree on this syntax: ARGS is empty and every
        # example is commented out, so a fresh install monitors nothing.
        p = run(["sh", "-c", 'set -a; . "$1"; env', "sh", DEFAULTS], env={})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("ARGS=\n", p.stdout)
        self.assertNotIn("DATA_SOURCE", p.stdout)
        with open(DEFAULTS) as f:
            text = f.read()
        self.assertIn("#DATA_SOURCE_NAME='host=/var/run/postgresql user=pgpulse", text)
        self.assertIn("IN ROLE pg_monitor", text)

    def test_maintainer_scripts(self):
        for script in SCRIPTS:
            self.assertEqual(run(["sh", "-n", script]).returncode, 0, script)
            self.assertTrue(os.stat(script).st_mode & stat.S_IXUSR, f"{script} is not executable")
        if shutil.which("shellcheck"):
            p = run(["shellcheck", *SCRIPTS])
            self.assertEqual(p.returncode, 0, p.stdout)


def package_state(name):
    """dpkg's status of the package, "not-installed" when dpkg has none."""
    p = run(["dpkg-query", "-W", "-f=${Status}", name])
    status = p.stdout.strip()
    return status if p.returncode == 0 and not status.endswith("not-installed") else "not-installed"


def dpkg(*args):
    """dpkg with args; waits (up to 2 min) while another dpkg or apt holds
    its lock, as on a shared machine. Returns the CompletedProcess."""
    deadline = time.monotonic() + 120
    while True:
        p = run(["dpkg", *args], timeout=300, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if p.returncode == 0 or "lock" not in p.stderr or time.monotonic() > deadline:
            return p
        time.sleep(1)


@unittest.skipUnless(hasattr(os, "geteuid") and os.geteuid() == 0,
                     "installs a .deb into the real root: runs as root only (CI does)")
class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if package_state("pgpulse") != "not-installed" or os.path.lexists("/usr/bin/pgpulse"):
            raise unittest.SkipTest("pgpulse is already installed here; "
                                    "the test would replace it: not run")
        cls.tmp = tempfile.mkdtemp(prefix="pgpulse-deb-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        # The package of the build under test, made in a temp dir so the
        # build directory gains no .deb.
        p = run(["cpack", "-G", "DEB", "--config", os.path.join(BUILD_DIR, "CPackConfig.cmake"),
                 "-B", cls.tmp], timeout=300)
        if p.returncode != 0:
            raise AssertionError(f"cpack failed:\n{p.stdout}{p.stderr}")
        debs = glob.glob(os.path.join(cls.tmp, "pgpulse_*.deb"))
        if len(debs) != 1:
            raise AssertionError(f"cpack made {debs}:\n{p.stdout}")
        cls.deb = debs[0]
        cls.user_existed = _user_exists("pgpulse")
        cls.addClassCleanup(cls._remove_user)
        p = dpkg("-i", cls.deb)
        cls.addClassCleanup(cls._purge_quietly)
        if p.returncode != 0:
            raise AssertionError(f"dpkg -i failed:\n{p.stdout}{p.stderr}")
        cls.install_output = p.stdout + p.stderr

    @classmethod
    def _purge_quietly(cls):
        if package_state("pgpulse") != "not-installed":
            dpkg("--purge", "pgpulse")

    @classmethod
    def _remove_user(cls):
        if not cls.user_existed and _user_exists("pgpulse"):
            run(["userdel", "pgpulse"])
            if run(["getent", "group", "pgpulse"]).returncode == 0:
                run(["groupdel", "pgpulse"])

    def field(self, name):
        return run(["dpkg-query", "-W", f"-f=${{{name}}}", "pgpulse"]).stdout

    def test_1_control(self):
        version = run(["/usr/bin/pgpulse", "--version"]).stdout.split()[-1]
        self.assertEqual(self.field("Version"), version + "-1")
        self.assertRegex(self.field("Maintainer"), r".+ <[^>]+@[^>]+>")
        depends = self.field("Depends")
        # computed by dpkg-shlibdeps from the binary
        for lib in ("libpq5", "libuv1", "libh2o0.13", "libyaml-0-2", "libc6"):
            self.assertRegex(depends, rf"(^|, ){re.escape(lib)}( |,|$)", depends)
        self.assertIn("/etc/default/pgpulse ", self.field("Conffiles"))
        self.assertNotIn("warning", self.install_output.lower(), self.install_output)

    def test_2_files(self):
        listed = set(run(["dpkg", "-L", "pgpulse"]).stdout.split())
        self.assertEqual(INSTALLED - listed, set(), "missing from dpkg -L")
        for path in INSTALLED:
            self.assertTrue(os.path.isfile(path), path)
        st = os.stat("/etc/default/pgpulse")
        self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid), (0o640, 0))
        # The binary is the one built (stripped), not some other pgpulse.
        self.assertEqual(help_flags("/usr/bin/pgpulse"), help_flags(PGPULSE_BIN))
        user = pwd.getpwnam("pgpulse")
        self.assertEqual(user.pw_shell, "/usr/sbin/nologin")
        self.assertLess(user.pw_uid, 1000, "not a system user")
        # Enabled by deb-systemd-helper although no systemd runs here.
        self.assertEqual(os.readlink(SYSTEMD_STATE[0]), "/lib/systemd/system/pgpulse.service")

    @unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze not installed")
    def test_3_installed_unit_verifies(self):
        # Now the man page the unit's Documentation= names is there too.
        p = run(["systemd-analyze", "verify", "/lib/systemd/system/pgpulse.service"])
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""))

    def test_4_runs_installed(self):
        # As the README says: the data source in a flags file in
        # /etc/pgpulse, 0640 root:pgpulse, that pgpulse (as the pgpulse
        # user) reads at start and again on SIGHUP, what the unit's
        # ExecReload sends.
        pg = PgServer()
        self.addCleanup(pg.destroy)
        pg.psql("CREATE ROLE pgpulse LOGIN IN ROLE pg_monitor")
        # The socket lives in the server's temp dir: let the pgpulse user in.
        os.chmod(pg.tmpdir, 0o755)
        flags = "/etc/pgpulse/flags"
        self.addCleanup(os.remove, flags)  # before the purge, or the dir stays

        def write_flags(dbname):
            with open(flags + ".new", "w") as f:
                f.write(f"--data-source.name=host={pg.tmpdir} port={pg.port} user=pgpulse"
                        f" dbname={dbname}\n--catalog=/usr/share/pgpulse/queries\n")
            os.chown(flags + ".new", 0, grp.getgrnam("pgpulse").gr_gid)
            os.chmod(flags + ".new", 0o640)
            os.rename(flags + ".new", flags)

        def connected_to():
            return pg.psql("SELECT datname, client_addr IS NULL FROM pg_stat_activity"
                           " WHERE usename = 'pgpulse'")

        write_flags("postgres")
        pulse = Pgpulse(["--config.flags-file=" + flags], binary="/usr/bin/pgpulse",
                        user="pgpulse")
        self.addCleanup(pulse.destroy)
        pulse.wait_for(lambda p: p.find("pg_up") and p.value("pg_up") == 1
                       and p.find("pg_stat_database_numbackends", datname="postgres"),
                       20, "pg_up 1 and the installed catalog's series")
        with open(f"/proc/{pulse.proc.pid}/status") as f:
            uid = re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1)
        self.assertEqual(int(uid), pwd.getpwnam("pgpulse").pw_uid)
        # client_addr is NULL: through the Unix socket
        self.assertEqual(connected_to(), [["postgres", "t"]])

        write_flags("template1")
        pulse.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: connected_to() == [["template1", "t"]], 20,
                 what="the reloaded data source to replace the old one")
        page = pulse.wait_for(lambda p: p.find("pg_up") and p.value("pg_up") == 1 and p,
                              20, "pg_up 1 after the reload")
        self.assertEqual(page.value("pgpulse_config_last_reload_successful"), 1)
        self.assertEqual(pulse.stop(), 0, pulse.stderr())

    def test_5_man_page(self):
        p = run(["man", "-P", "cat", "-l", "/usr/share/man/man1/pgpulse.1.gz"],
                env=dict(os.environ, MANWIDTH="200"))
        self.assertEqual(p.returncode, 0, p.stderr)
        flags = help_flags("/usr/bin/pgpulse")
        self.assertGreater(len(flags), 10, flags)
        for flag in flags:
            self.assertTrue("--" + flag in p.stdout or "--[no-]" + flag in p.stdout, flag)
        for text in ("/etc/default/pgpulse", "SIGHUP", "DATA_SOURCE_NAME"):
            self.assertIn(text, p.stdout)

    def test_6_reinstall_keeps_edited_config(self):
        with open("/etc/default/pgpulse", "a") as f:
            f.write("# edited by test_package\n")
        p = dpkg("-i", self.deb)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open("/etc/default/pgpulse") as f:
            self.assertIn("# edited by test_package\n", f.read())
        self.assertEqual(stat.S_IMODE(os.stat("/etc/default/pgpulse").st_mode), 0o640)

    def test_7_remove_then_purge(self):
        p = dpkg("-r", "pgpulse")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(package_state("pgpulse"), "deinstall ok config-files")
        self.assertEqual(sorted(f for f in INSTALLED if os.path.lexists(f)),
                         ["/etc/default/pgpulse"], "dpkg -r keeps the conffile only")
        p = dpkg("--purge", "pgpulse")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(package_state("pgpulse"), "not-installed")
        left = [f for f in sorted(INSTALLED) + SYSTEMD_STATE + ["/etc/pgpulse"]
                if os.path.lexists(f)]
        self.assertEqual(left, [], "left behind by dpkg --purge")


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


if __name__ == "__main__":
    unittest.main()
