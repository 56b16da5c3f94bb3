"""How long `dataroom` commands take to start and finish, as a user runs them (issue 17 item 7).

Each command runs as a fresh process (what a shell does), interleaved round by round so that
machine noise hits all alike; prints the median and min/max per command. `python -c pass` is the
floor every command pays. No assertion: the README's performance section records the figures.

    .venv/bin/python benchmarks/bench_cli_start.py [--repeat 9] [--baseline DIR]

``--baseline DIR`` also runs each command against an older copy of the package (``git archive
<commit> dataroom policies | tar -x -C DIR``: the policies seed its fresh registry), interleaved
with the current one.
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
    parser.add_argument("--baseline", type=Path, default=None, help="a directory holding an older dataroom/ package")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    try:
        generate(home, rows=2000)
        env = {**os.environ, "DATAROOM_HOME": str(home)}
        runs = {name: (cmd, env) for name, cmd in COMMANDS.items()}
        if args.baseline:  # its own home, written by its own demo_data (catalog formats change)
            old_home = home / "baseline"
            old = {**env, "DATAROOM_HOME": str(old_home), "PYTHONPATH": str(args.baseline.resolve())}  # before the editable finder
            write = f"from pathlib import Path; from dataroom.demo_data import generate; generate(Path({str(old_home)!r}), rows=2000)"
            subprocess.run([sys.executable, "-c", write], env=old, cwd=home, check=True)
            runs.update({f"{name} [baseline]": (cmd, old) for name, cmd in COMMANDS.items() if "floor" not in name})
        for cmd, run_env in runs.values():  # warm-up: page cache, registry seeded, .pyc files written
            subprocess.run(cmd, env=run_env, cwd=home, capture_output=True, check=False)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name, (cmd, run_env) in runs.items():
                started = time.perf_counter()
                done = subprocess.run(cmd, env=run_env, cwd=home, capture_output=True)  # not the checkout: sys.path[0]
                times[name].append(time.perf_counter() - started)
                if done.returncode != 0:
                    raise SystemExit(f"{name} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
        load = os.getloadavg()[0]
        print(f"median of {args.repeat} runs each, interleaved; {os.cpu_count()} CPUs, load average {load:.1f}")
        print(f"{'command':<50} {'median':>8} {'min':>8} {'max':>8}")
        for name, values in times.items():
            print(f"{name:<50} {statistics.median(values):>7.3f}s {min(values):>7.3f}s {max(values):>7.3f}s")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
