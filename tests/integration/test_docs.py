"""The generated documentation matches what it documents.

Covers: docs/metrics.md (every family of the shipped catalog and of the
0.11.1 compatibility catalog) and the flag table of docs/migration.md are
what `docs/gen_docs.py` makes of the catalog built into this pgpulse and of
its --help, so a catalog or flag change without the regenerated pages
fails here with the diff; and the check does fail on a stale page.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from pgharness import SOURCE_DIR

GEN = os.path.join(SOURCE_DIR, "docs", "gen_docs.py")
PGPULSE_BIN = os.environ.get("PGPULSE_BIN", os.path.join(SOURCE_DIR, "build", "pgpulse"))


def check(docs=None):
    argv = [sys.executable, GEN, "--check", f"--pgpulse={PGPULSE_BIN}"]
    if docs is not None:
        argv.append(f"--docs={docs}")
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120)


class DocsTest(unittest.TestCase):
    def test_generated_pages_are_current(self):
        p = check()
        self.assertEqual(p.returncode, 0,
                         f"docs are stale; run python3 docs/gen_docs.py --pgpulse build/pgpulse\n"
                         f"{p.stdout}{p.stderr}")

    def test_a_stale_page_fails_with_a_diff(self):
        tmp = tempfile.mkdtemp(prefix="pgpulse-docs-")
        self.addCleanup(shutil.rmtree, tmp, True)
        for name in ("metrics.md", "migration.md"):
            shutil.copy(os.path.join(SOURCE_DIR, "docs", name), tmp)
        path = os.path.join(tmp, "metrics.md")
        with open(path) as f:
            lines = f.readlines()
        gone = next(line for line in lines if line.startswith("| `pg_locks_count`"))
        with open(path, "w") as f:
            f.writelines(line for line in lines if line != gone)
        p = check(tmp)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("+" + gone, p.stdout)
        self.assertIn("stale", p.stderr)

    def test_every_family_of_the_default_page_is_documented(self):
        with open(os.path.join(SOURCE_DIR, "docs", "metrics.md")) as f:
            text = f.read()
        for name in ("pg_stat_database_xact_commit", "pg_locks_count", "pg_settings_<name>",
                     "pg_stat_statements_calls_total", "pg_process_idle_seconds"):
            self.assertIn(f"| `{name}` |", text)


if __name__ == "__main__":
    unittest.main()
