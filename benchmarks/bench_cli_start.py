"""How long `dataroom` commands take to start and finish, as a user runs them (issue 17 item 7).

Each command runs as a fresh process (what a shell does), interleaved round by round so that
machine noise hits all alike; prints the median and min/max per command. `python -c pass` is the
floor every command pays. No assertion: the README's performance section records the figures.

    .venv/bin/python benchmarks/bench_cli_start.py [--repeat 9]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dataroom.demo_data import generate  # noqa: E402

DATAROOM = [sys.executable, "-m", "dataroom.cli"]
COMMANDS = {
    "python -c pass (floor)": [sys.executable, "-c", "pass"],
    "import dataroom.cli": [sys.executable, "-c", "import dataroom.cli"],
    "dataroom --help": DATAROOM + ["--help"],
    "dataroom tables --help": DATAROOM + ["tables", "--help"],
    "dataroom tables -p remediation-acme": DATAROOM + ["tables", "-p", "remediation-acme"],
    "dataroom query (SELECT 1)": DATAROOM + ["query", "-u", "alice", "-p", "remediation-acme", "SELECT 1 AS one"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    try:
        generate(home, rows=2000)
        env = {**os.environ, "DATAROOM_HOME": str(home)}
        for cmd in COMMANDS.values():  # warm-up: page cache, registry seeded, .pyc files written
            subprocess.run(cmd, env=env, capture_output=True, check=False)
        times: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for _ in range(args.repeat):
            for name, cmd in COMMANDS.items():
                started = time.perf_counter()
                done = subprocess.run(cmd, env=env, capture_output=True)
                times[name].append(time.perf_counter() - started)
                if done.returncode != 0:
                    raise SystemExit(f"{name} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
        load = os.getloadavg()[0]
        print(f"median of {args.repeat} runs each, interleaved; {os.cpu_count()} CPUs, load average {load:.1f}")
        print(f"{'command':<40} {'median':>8} {'min':>8} {'max':>8}")
        for name, values in times.items():
            print(f"{name:<40} {statistics.median(values):>7.3f}s {min(values):>7.3f}s {max(values):>7.3f}s")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
