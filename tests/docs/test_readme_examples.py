"""The README runs (issue 17 item 8): every ```sh block of README.md is executed, in order, against
one fresh room, so that the examples never drift from the code.

A small runner of our own rather than sybil/pytest-examples/pytest-codeblocks: the blocks are one
story sharing a room (demo data, then queries, projects, hypotheses, an export), some commands are
*meant* to fail (a denied query exits 3), and a few need files the prose says come from elsewhere
(the auditor's copy of the public key). Every block is picked up automatically; what the runner
adds is explicit and listed here:

* ``SKIPPED``: blocks that cannot run in a test, each with the reason;
* ``EXPECTED_EXIT``: commands whose documented outcome is a non-zero exit;
* ``PRELUDES``: commands run before a block to make the files its prose says it is given;
* ``PLACES``: paths under /tmp the README names, moved into this test's own directory.

Each block runs in bash from a scratch directory holding links to the checkout's ``.venv`` and
``policies`` (so files the examples write, e.g. ``evidence/``, never land in the checkout), with
``.venv/bin`` on PATH and ``$DATAROOM_HOME`` set to the room the first block exports. A command
fails the block when it exits non-zero without being expected to, or prints a traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
FAILED = "__readme_command_failed__"

SKIPPED = {
    "make up": "`make up` starts JupyterHub and runs until Ctrl-C (tests/hub start `dataroom up` themselves); `make test` is the whole suite, this test included",
    ".venv/bin/python -m dataroom.engines.spark_local": "starts a Spark Connect server that runs until stopped, on a fixed port (tests/spark start their own, on a free port, and stop it)",
}
EXPECTED_EXIT = {
    '"SELECT analyst_email FROM acme.findings"': 3,  # the quick start's denied query
    "hypothesis approve H-2 --as bob": 3,  # a fellow data scientist may not approve production
}
_LATEST_DECISION = "$(dataroom audit show --json --limit 1 | python3 -c 'import json, sys; print(json.loads(sys.stdin.readline())[\"decision_id\"])')"
PRELUDES = {
    # the auditor is handed the room's public key and a proof (the prose above the block)
    "dataroom audit check-proof proof.json": [
        "dataroom audit public-key > room.pub",
        f'dataroom audit prove "{_LATEST_DECISION}" --out proof.json',
    ],
}
# Blocks run after another one rather than in README order: the auditor's check of an export needs
# the export, which the README shows later (after the hypotheses whose queries it proves).
RUN_AFTER = {"dataroom audit check-proof proof.json": "dataroom audit export"}
PLACES = ("/tmp/dataroom", "/tmp/candidate")


@dataclass
class Block:
    line: int
    text: str

    @property
    def first(self) -> str:
        return next(line for line in self.text.splitlines() if line.strip() and not line.startswith("#")).strip()

    @property
    def skip_reason(self) -> str | None:
        return next((reason for start, reason in SKIPPED.items() if self.first.startswith(start)), None)


def sh_blocks(text: str) -> list[Block]:
    """Every fenced ```sh block with the line it starts on."""
    return [Block(text[: m.start()].count("\n") + 2, m.group(1)) for m in re.finditer(r"^```sh\n(.*?)^```", text, re.S | re.M)]


def in_run_order(blocks: list[Block]) -> list[Block]:
    def key(item: tuple[int, Block]) -> float:
        index, block = item
        after = next((target for start, target in RUN_AFTER.items() if block.first.startswith(start)), None)
        targets = [i for i, b in enumerate(blocks) if after and b.first.startswith(after)]
        return targets[0] + 0.5 if targets else index

    return [b for _, b in sorted(enumerate(blocks), key=key)]


BLOCKS = in_run_order(sh_blocks(README.read_text()))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory, demo_template: Path) -> Path:
    """A working directory with links to the checkout's venv and policies; the room lives beside it."""
    root = tmp_path_factory.mktemp("readme")
    work = root / "work"
    work.mkdir()
    for name in (".venv", "policies", "notebooks"):
        (work / name).symlink_to(REPO / name)
    return work


def run_block(block: Block, work: Path) -> tuple[list[str], str]:
    """Run one block; returns the unexpected failures and the whole output."""
    root = work.parent
    script = block.text
    for place in PLACES:
        script = script.replace(place, str(root / Path(place).name))
    prelude = "\n".join(p for start, lines in PRELUDES.items() if block.first.startswith(start) for p in lines)
    trap = f"set -o errtrace\ntrap 'echo \"{FAILED} $? $BASH_COMMAND\" >&2' ERR\n"
    env = {
        **os.environ,
        "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "DATAROOM_HOME": str(root / "dataroom"),
        "EDITOR": "true",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATAROOM_AS", None)
    done = subprocess.run(["bash", "-c", trap + prelude + "\n" + script], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    failures = []
    for line in done.stderr.splitlines():
        if not line.startswith(FAILED):
            continue
        _, code, command = line.split(" ", 2)
        expected = next((c for fragment, c in EXPECTED_EXIT.items() if fragment in command), 0)
        if int(code) != expected:
            failures.append(f"exit {code} (expected {expected}): {command}")
    for fragment, code in EXPECTED_EXIT.items():
        if fragment in script and not any(fragment in line and f" {code} " in line for line in done.stderr.splitlines() if line.startswith(FAILED)):
            failures.append(f"expected exit {code} from the command with {fragment}, it did not fail that way")
    if "Traceback (most recent call last)" in output:
        failures.append("a traceback was printed")
    for leftover in processes_under(root):  # a block must not leave a server behind: stop it, say so
        failures.append(f"left a process running: {' '.join(leftover.cmdline())[:200]}")
        leftover.kill()
    return failures, output


def processes_under(root: Path) -> list:
    """Processes started from this test's scratch directory (by cwd or command line) that are still alive."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            cwd, cmdline = proc.info["cwd"] or "", " ".join(proc.info["cmdline"] or [])
        except (psutil.Error, TypeError):
            continue
        if proc.pid != os.getpid() and (cwd.startswith(str(root)) or str(root) in cmdline):
            found.append(proc)
    return found


@pytest.mark.parametrize("block", BLOCKS, ids=[f"README:{b.line}:{b.first[:40]}" for b in BLOCKS])
def test_readme_example_runs(block: Block, scratch: Path) -> None:
    if block.skip_reason:
        pytest.skip(block.skip_reason)
    failures, output = run_block(block, scratch)
    assert not failures, f"README.md line {block.line}:\n" + "\n".join(failures) + "\n--- output ---\n" + output[-6000:]
    if "audit export" in block.text:  # the export of the room's own period holds what the README did
        counts = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", output)}
        assert counts.get("hypotheses", 0) >= 2 and counts.get("linked_queries", 0) >= 1 and counts.get("inclusion_proofs", 0) >= 1, output


def test_every_block_is_found_and_every_skip_is_used() -> None:
    assert len(BLOCKS) >= 8
    firsts = [b.first for b in BLOCKS]
    for start in SKIPPED:
        assert any(f.startswith(start) for f in firsts), f"SKIPPED names no README block any more: {start}"
    for start in [*PRELUDES, *RUN_AFTER, *RUN_AFTER.values()]:
        assert any(f.startswith(start) for f in firsts), f"PRELUDES names no README block any more: {start}"
    for fragment in EXPECTED_EXIT:
        assert any(fragment in b.text for b in BLOCKS), f"EXPECTED_EXIT names no README command any more: {fragment}"
