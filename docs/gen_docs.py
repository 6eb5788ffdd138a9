#!/usr/bin/env python3
"""Generates the parts of the documentation that are read off pgpulse itself.

- docs/metrics.md: every metric family of the shipped catalog (every
  collector switched on) and of queries/compat/postgres_exporter-0.11.yaml,
  with its type, labels, interval, collector and the query (file:line) it
  comes from, read from `pgpulse --dumpmaps`;
- the flag table of docs/migration.md (between its `flags:begin` and
  `flags:end` markers): every flag and environment variable of
  postgres_exporter v0.20.1 and 0.11.1 (typed in below from v0.20.1's
  source and the real `--help` of Debian's 0.11.1) against what
  `pgpulse --help` lists.

    python3 docs/gen_docs.py [--pgpulse build/pgpulse]          rewrite both
    python3 docs/gen_docs.py [--pgpulse build/pgpulse] --check  exit 1 with a diff if stale

Python 3 standard library only: CI has no network and no python3-yaml.
"""

import argparse
import difflib
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPAT = "queries/compat/postgres_exporter-0.11.yaml"

# ---- upstream's flags --------------------------------------------------

# (flag, environment variable or None, versions that have it)
UPSTREAM_FLAGS = [
    ("web.listen-address", "PG_EXPORTER_WEB_LISTEN_ADDRESS", "0.11.1 (env), v0.20.1 (flag only)"),
    ("web.systemd-socket", None, "0.11.1, v0.20.1"),
    ("web.config.file", None, "0.11.1, v0.20.1"),
    ("web.telemetry-path", "PG_EXPORTER_WEB_TELEMETRY_PATH", "0.11.1, v0.20.1"),
    ("config.file", None, "v0.20.1"),
    ("disable-default-metrics", "PG_EXPORTER_DISABLE_DEFAULT_METRICS", "0.11.1, v0.20.1"),
    ("disable-settings-metrics", "PG_EXPORTER_DISABLE_SETTINGS_METRICS", "0.11.1"),
    ("auto-discover-databases", "PG_EXPORTER_AUTO_DISCOVER_DATABASES", "0.11.1, v0.20.1"),
    ("extend.query-path", "PG_EXPORTER_EXTEND_QUERY_PATH", "0.11.1, v0.20.1"),
    ("dumpmaps", None, "0.11.1, v0.20.1"),
    ("constantLabels", "PG_EXPORTER_CONSTANT_LABELS", "0.11.1, v0.20.1"),
    ("exclude-databases", "PG_EXPORTER_EXCLUDE_DATABASES", "0.11.1, v0.20.1"),
    ("include-databases", "PG_EXPORTER_INCLUDE_DATABASES", "0.11.1, v0.20.1"),
    ("metric-prefix", "PG_EXPORTER_METRIC_PREFIX", "0.11.1, v0.20.1"),
    ("collection-timeout", "PG_EXPORTER_COLLECTION_TIMEOUT", "v0.20.1"),
    ("log.level", None, "0.11.1, v0.20.1"),
    ("log.format", None, "0.11.1, v0.20.1"),
    ("collector.bgwriter", None, "0.11.1"),
    ("collector.replication_slot", None, "v0.19 and older"),
    ("collector.stat_statements.include_query", None, "v0.20.1"),
    ("collector.stat_statements.query_length", None, "v0.20.1"),
    ("collector.stat_statements.limit", None, "v0.20.1"),
    ("collector.stat_statements.exclude_databases", None, "v0.20.1"),
    ("collector.stat_statements.exclude_users", None, "v0.20.1"),
    ("version", None, "0.11.1, v0.20.1"),
    ("help", None, "0.11.1, v0.20.1"),
    ("help-long", None, "0.11.1, v0.20.1"),
    ("help-man", None, "0.11.1, v0.20.1"),
]
# v0.20.1's 26 --[no-]collector.<name> flags
UPSTREAM_COLLECTORS = [
    "buffercache_summary", "database", "database_wraparound", "locks",
    "long_running_transactions", "postmaster", "process_idle", "replication",
    "replication_slots", "roles", "settings", "stat_activity", "stat_activity_autovacuum",
    "stat_archiver", "stat_bgwriter", "stat_checkpointer", "stat_database",
    "stat_progress_vacuum", "stat_replication", "stat_statements", "stat_user_tables",
    "stat_wal_receiver", "statio_user_indexes", "statio_user_tables", "wal", "xlog_location",
]
# Variables without a flag, read by both.
UPSTREAM_DATA_SOURCE = ["DATA_SOURCE_NAME", "DATA_SOURCE_URI", "DATA_SOURCE_URI_FILE",
                        "DATA_SOURCE_USER", "DATA_SOURCE_USER_FILE", "DATA_SOURCE_PASS",
                        "DATA_SOURCE_PASS_FILE"]

# What pgpulse does with a flag its --help does not list: an unknown flag
# stops pgpulse at start ("unknown flag --x"), so each needs its reason.
# A flag missing from both --help and this table stops the generator.
NOT_IN_PGPULSE = {}


def run(argv):
    p = subprocess.run(argv, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        sys.exit(f"gen_docs: {' '.join(argv)} exited {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def pgpulse_flags(binary):
    """{flag: (help text, env var or None)} from `pgpulse --help`."""
    flags = {}
    for line in run([binary, "--help"]).splitlines():
        m = re.match(r"\s+--(?:\[no-\])?([A-Za-z][A-Za-z0-9._-]*)(?:=VALUE)?\s+(.*)$", line)
        if m:
            env = re.search(r"\(\$([A-Z_]+)\)\s*$", m.group(2))
            flags[m.group(1)] = (m.group(2), env.group(1) if env else None)
    return flags


def flag_rows(binary):
    mine = pgpulse_flags(binary)
    envs = {env: flag for flag, (_, env) in mine.items() if env}
    rows = []
    upstream = UPSTREAM_FLAGS + [(f"collector.{c}", None,
                                  "0.11.1, v0.20.1" if c == "database" else "v0.20.1")
                                 for c in UPSTREAM_COLLECTORS
                                 if f"collector.{c}" not in [f for f, _, _ in UPSTREAM_FLAGS]]
    for flag, env, versions in upstream:
        if flag in mine:
            text = mine[flag][0]
            alias = re.match(r"Same as (--[a-z0-9._-]+)", text)
            what = f"alias of `{alias.group(1)}`" if alias else "same"
            default = re.search(r"\(default: ([^)]*)\)", text)
            if default:
                what += f" (default `{default.group(1)}`)"
        elif flag in NOT_IN_PGPULSE:
            what = NOT_IN_PGPULSE[flag]
        else:
            sys.exit(f"gen_docs: --{flag} is neither in pgpulse --help nor in NOT_IN_PGPULSE")
        if env is None:
            env_what = ""
        elif env in envs:
            env_what = f"`{env}`: read" + ("" if envs[env] == flag else f" (by --{envs[env]})")
        else:
            env_what = f"`{env}`: not read, warned about at start"
        rows.append(f"| `--{flag}` | {versions} | {what} | {env_what} |")
    for env in UPSTREAM_DATA_SOURCE:
        rows.append(f"| | 0.11.1, v0.20.1 | | `{env}`: read, as upstream |")
    extra = sorted(f for f in mine if f not in {u[0] for u in upstream}
                   and not f.startswith("collector."))
    return rows, extra


def flags_section(binary):
    rows, extra = flag_rows(binary)
    out = ["| upstream flag | in | pgpulse | environment variable |",
           "| --- | --- | --- | --- |"] + rows
    out += ["", "Flags pgpulse has and postgres_exporter does not: "
            + ", ".join(f"`--{f}`" for f in extra) + "."]
    return "\n".join(out) + "\n"


# ---- metrics -----------------------------------------------------------

def dumpmaps(binary, args):
    """[query dict] from `pgpulse --dumpmaps`."""
    queries, q = [], None
    section = None
    for line in run([binary, "--dumpmaps", *args]).splitlines():
        if not line.startswith(" "):
            q = {"name": line, "metrics": []}
            queries.append(q)
        elif line.startswith("  collector: "):
            q["collector"] = line.split(": ", 1)[1]
        elif line.startswith("  defined at: "):
            q["at"] = line.split(": ", 1)[1].rsplit(":", 1)[0]  # file:line
        elif line.startswith("  interval: "):
            q["interval"] = line.split(",")[0].split(": ")[1]
            q["runs_on"] = re.search(r"runs on: (\w+)", line).group(1)
        elif line.startswith("  versions: "):
            q["versions"] = line.split(": ", 1)[1]
        elif line.startswith("  labels:"):
            q["labels"] = line.split(":", 1)[1].split()
        elif line == "  metrics:":
            section = "metrics"
        elif line.startswith("    ") and section == "metrics":
            m = re.match(r"\s+(\S+) (\w+)(?:: (.*))?$", line)
            q["metrics"].append((m.group(1), m.group(2), m.group(3)))
    return queries


def link(at):
    """queries/x.yaml:12 as a link from docs/ to that line."""
    path, line = at.rsplit(":", 1)
    return f"[{at}](../{path}#L{line})"


def families(queries):
    """{family: {type, labels, intervals, collectors, queries, help}} in catalog order."""
    out = {}
    for q in queries:
        for name, role, help_ in q["metrics"]:
            typ = role
            labels = [x for x in q["labels"]]
            if role in ("bucket", "sum", "count"):
                name = name[:-len("_" + role)]
                typ = "histogram"
                labels = [x for x in labels if x != "le"]
            if help_ is None:
                help_ = "per row, from the query's `help` column"
            f = out.setdefault(name, {"type": typ, "labels": [], "intervals": [],
                                      "collectors": [], "queries": [], "help": help_,
                                      "runs_on": []})
            for lst, v in ((f["labels"], labels), (f["intervals"], [q["interval"]]),
                           (f["collectors"], [q["collector"]]), (f["runs_on"], [q["runs_on"]]),
                           (f["queries"], [f"`{q['name']}` ({link(q['at'])})"])):
                for x in v:
                    if x not in lst:
                        lst.append(x)
    return out


def collector_defaults(binary):
    """{collector: True if on by default}."""
    out = {}
    for flag, (text, _) in pgpulse_flags(binary).items():
        m = re.match(r"collector\.(\w+)$", flag)
        d = re.search(r"\(default: (true|false)\)", text)
        if m and d:
            out[m.group(1)] = d.group(1) == "true"
    return out


def cell(text):
    return text.replace("|", "\\|")


def family_table(fams, defaults):
    out = ["| metric | type | labels | interval | collector | runs on | query (file:line) | HELP |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, f in fams.items():
        collectors = []
        for c in f["collectors"]:
            base = c.split(" ")[0]
            note = " (off)" if defaults.get(base) is False else ""
            collectors.append(f"`{base}`{note}" + (" (default metrics)" if "default" in c else ""))
        out.append("| " + " | ".join([
            f"`{name}`", f["type"], ", ".join(f["labels"]) or "–", ", ".join(f["intervals"]),
            ", ".join(collectors), ", ".join(f["runs_on"]), "<br>".join(f["queries"]),
            cell(f["help"])]) + " |")
    return "\n".join(out) + "\n"


def metrics_md(binary):
    defaults = collector_defaults(binary)
    every = [f"--collector.{c}" for c in sorted(defaults)]
    shipped = families(dumpmaps(binary, every))
    compat = families(dumpmaps(binary, [f"--catalog={COMPAT}", *every]))
    return f"""# Metric reference

Generated by `docs/gen_docs.py` from `pgpulse --dumpmaps`; do not edit by
hand (`test_docs` fails when this page and the catalog disagree). Run
`python3 docs/gen_docs.py --pgpulse build/pgpulse` after changing a file
of `queries/`.

Columns: the family's **type**; its **labels** (with several targets, every
series also has `server="host:port"`, and those of a database's own
queries `datname`; see the README); how often its query runs
(**interval**, so how old a sample can be); the **collector** that
switches it (`--[no-]collector.<name>`; *off*: off by default, *default
metrics*: off with `--disable-default-metrics`); on which servers it
runs; the query and where it is defined. A family fed by several queries
lists each. `pg_settings_<name>` stands for one family per server
parameter. pgpulse's own metrics (`pg_up`, `pg_exporter_*`,
`pg_scrape_collector_*`, `pgpulse_*`, `process_*`) are in the README's
"Self-metrics".

## The shipped catalog (`queries/*.yaml`, built in)

{len(shipped)} families.

{family_table(shipped, defaults)}
## postgres_exporter 0.11.1 compatibility (`{COMPAT}`)

Loaded with `--catalog {COMPAT}` instead of the shipped catalog; see
[migration.md](migration.md#from-debians-0111). Every series of it carries
`server`, even with one target. {len(compat)} families.

{family_table(compat, defaults)}"""


# ---- main --------------------------------------------------------------

def migration_md(binary, path):
    with open(path) as f:
        text = f.read()
    begin, end = "<!-- flags:begin (docs/gen_docs.py) -->\n", "<!-- flags:end -->"
    if begin not in text or end not in text:
        sys.exit(f"gen_docs: {path} lacks the flags markers")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return head + begin + flags_section(binary) + end + tail


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pgpulse", default=os.environ.get("PGPULSE_BIN",
                                                        os.path.join(ROOT, "build", "pgpulse")))
    ap.add_argument("--check", action="store_true", help="exit 1 with a diff if a page is stale")
    ap.add_argument("--docs", default=os.path.join(ROOT, "docs"),
                    help="the directory of metrics.md and migration.md (default: docs/)")
    args = ap.parse_args()
    binary = os.path.abspath(args.pgpulse)
    metrics, migration = (os.path.join(args.docs, n) for n in ("metrics.md", "migration.md"))
    stale = False
    for path, text in ((metrics, metrics_md(binary)), (migration, migration_md(binary, migration))):
        try:
            with open(path) as f:
                old = f.read()
        except FileNotFoundError:
            old = ""
        if old == text:
            continue
        rel = os.path.relpath(path, ROOT)
        if args.check:
            stale = True
            sys.stdout.writelines(difflib.unified_diff(
                old.splitlines(True), text.splitlines(True), f"{rel} (committed)",
                f"{rel} (from the catalog and pgpulse --help)"))
        else:
            with open(path, "w") as f:
                f.write(text)
            print(f"gen_docs: wrote {rel}")
    if stale:
        print("\ngen_docs: stale; run python3 docs/gen_docs.py --pgpulse build/pgpulse",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
