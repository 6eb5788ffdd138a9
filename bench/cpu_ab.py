#!/usr/bin/env python3
"""Two pgpulse binaries, A and B, in alternating rounds against the same
stand-in servers: the CPU each one and the servers use for its targets.

Each round starts one pgpulse watching N targets (stand-ins as in
scale.py: at most 100 targets each, every target a distinct 127.x.y.z
address), waits --settle seconds for the start-up to pass, measures
pgpulse's CPU and the stand-ins' CPU over --window seconds (fractions of
one core), and stops it; then the other binary. A change that touches
what the servers do (the statements pgpulse sends) shows in the second
column.

    python3 bench/cpu_ab.py OLD/pgpulse NEW/pgpulse --targets 200 --rounds 3
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # noqa: E402  (start_server, Pgpulse, addresses, CPU readers)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", help="pgpulse binary A")
    ap.add_argument("b", help="pgpulse binary B")
    ap.add_argument("--targets", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settle", type=float, default=20)
    ap.add_argument("--window", type=float, default=40)
    args = ap.parse_args()
    tmpdir = tempfile.mkdtemp(prefix="pgpulse-ab-")
    per = 100
    pgs = []
    try:
        for _ in range((args.targets + per - 1) // per):
            pgs.append(scale.start_server(per, 10))
        dsns = scale.target_dsns(pgs, args.targets, per)
        print("| round | binary | pgpulse CPU, cores | servers' CPU, cores |")
        print("| ---: | --- | ---: | ---: |")
        for r in range(1, args.rounds + 1):
            for label, binary in (("A", args.a), ("B", args.b)):
                p = scale.Pgpulse(os.path.abspath(binary), dsns, tmpdir)
                try:
                    time.sleep(args.settle)
                    c0, s0, t0 = p.cpu_seconds(), scale.server_cpu_seconds(pgs), time.monotonic()
                    time.sleep(args.window)
                    c1, s1, t1 = p.cpu_seconds(), scale.server_cpu_seconds(pgs), time.monotonic()
                finally:
                    p.stop()
                print(f"| {r} | {label} | {(c1 - c0) / (t1 - t0):.3f} | {(s1 - s0) / (t1 - t0):.3f} |",
                      flush=True)
    finally:
        for pg in pgs:
            pg.destroy()
        shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    main()
