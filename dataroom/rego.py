"""In-process Rego evaluation: compile the policy directory once, evaluate per request.

The policies in ``policies/`` are the single source of truth for every decision the data
room makes (queries, infra checks, alerts). This module loads them with ``regopy`` (a real
Rego interpreter), compiles one bundle for a fixed set of entry points and evaluates it per
request, which costs well under a millisecond.

regopy 1.5.2 crashes on Rego's ``with ... as`` keyword, so policies are written as functions
over an explicit argument (``decision(req) := {...}``, ``main := decision(input)``) and tests
call those functions directly; :meth:`PolicyBundle.run_rego_tests` evaluates every ``test_*``
rule (a failing test evaluates to undefined).

regopy re-evaluates every rule on every query (no memo of rule or function values; ~5-15 µs per
expression or rule), so the query policy is written for it (measured with
benchmarks/bench_query.py and a per-rule profile):

- a set or object literal, or a string joined from parts, is rebuilt per evaluation: use one
  string searched with ``contains``;
- ``x != null`` on an object compares the whole object: ``not is_null(x)`` (after ``x := ...``
  where x may be undefined) says the same for a few µs;
- a comprehension nested in a comprehension's body costs ~1 ms: call a function instead;
- ``f(x) := value if { y := ...; ... } else := ...`` evaluates ``value`` even when the body
  fails: a guard that skips costly rules binds no variable;
- ``not ... in`` per element costs twice a positive ``in``: when the common case gives no
  reason, count the positives first.

``tests/core/test_policy_golden.py`` holds ~600 recorded decisions that such a rewrite must
leave unchanged.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regopy import Interpreter
from regopy.rego_shared import rego_bundle_query_entrypoint, rego_free_output, rego_output_ok, rego_output_string, rego_set_input

from dataroom.rego_input import free_input, input_node

POLICY_ROOT = Path(__file__).resolve().parent.parent / "policies"
"""One sub-directory per policy concern: ``query/``, ``infra/``, ``alerts/``."""

PACKAGE_RE = re.compile(r"^package\s+([\w.]+)", re.MULTILINE)  # a Rego file's package line
_TEST_RULE_RE = re.compile(r"^(test_\w+)\s+if\b", re.MULTILINE)


class PolicyError(RuntimeError):
    """The policies could not be compiled or evaluated; nothing is allowed when this happens."""


@dataclass(frozen=True)
class RegoTestResult:
    """Outcome of one ``test_*`` rule in a ``*_test.rego`` file."""

    file: str
    rule: str
    passed: bool


def policy_files(policy_dir: Path, include_tests: bool = False) -> list[Path]:
    """Every ``.rego`` file under ``policy_dir`` in a stable order."""
    files = sorted(policy_dir.rglob("*.rego"))
    return [f for f in files if include_tests or not f.name.endswith("_test.rego")]


def bundle_hash(files: list[Path], root: Path) -> str:
    """SHA-256 over the relative names and contents of the policy files (stamped on audit records)."""
    digest = hashlib.sha256()
    for f in files:
        name = str(f.relative_to(root))
        digest.update(name.encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise PolicyError(f"policy output repeats a key ({sorted(k for k in set(keys) if keys.count(k) > 1)}): refusing it")
    return dict(pairs)


def _parse_output(text: str) -> Any:
    """The first expression of a query's output, or ``None`` when undefined.

    Parsed here, strictly (a repeated key is an error, never "last one wins"), rather than by
    regopy, which aborts the process on some undefined results.
    """
    if text == "undefined":
        return None
    try:
        doc = json.loads(text, object_pairs_hook=_reject_duplicate_keys, strict=False)
    except ValueError as exc:
        raise PolicyError(f"policy output is not valid JSON: {exc}") from exc
    expressions = doc.get("expressions") if isinstance(doc, dict) else None
    if not expressions:
        return None
    return expressions[0]


def _entrypoint(rule_path: str) -> str:
    """``data.dataroom.query.main`` / ``dataroom.query.main`` -> ``dataroom/query/main``."""
    return rule_path.removeprefix("data.").replace(".", "/")


class PolicyBundle:
    """A compiled Rego bundle of one policy directory for a fixed set of entry points.

    ``entrypoints`` are dotted rule paths such as ``dataroom.query.main``. Evaluation is
    thread-safe: each thread gets its own interpreter over the shared compiled bundle.
    """

    def __init__(
        self,
        policy_dir: Path,
        entrypoints: list[str],
        include_tests: bool = False,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.policy_dir = policy_dir
        self.files = policy_files(policy_dir, include_tests=include_tests)
        if not self.files:
            raise PolicyError(f"no .rego files found under {policy_dir}")
        self.revision = bundle_hash(policy_files(policy_dir), policy_dir)
        self.entrypoints = [_entrypoint(e) for e in entrypoints]
        builder = Interpreter()
        if data:
            builder.add_data(data)
        try:
            for f in self.files:
                builder.add_module(str(f), f.read_text())
            self._bundle = builder.build(None, self.entrypoints)
        except Exception as exc:  # regopy raises RegoError with the compiler's message
            raise PolicyError(f"cannot compile policies in {policy_dir}: {exc}") from exc
        self._local = threading.local()

    def _interpreter(self) -> Interpreter:
        interp = getattr(self._local, "interp", None)
        if interp is None:
            interp = self._local.interp = Interpreter()
        return interp

    def evaluate(self, entrypoint: str, input_doc: Any) -> Any:
        """Evaluate one entry point; returns the JSON value, or ``None`` when undefined."""
        ep = _entrypoint(entrypoint)
        if ep not in self.entrypoints:
            raise PolicyError(f"entry point {entrypoint} was not compiled into this bundle")
        interp = self._interpreter()
        try:
            node = input_node(input_doc)  # strings escaped: see dataroom/rego_input.py
            try:
                rego_set_input(interp._impl, node)
            finally:
                free_input(node)  # the interpreter holds its own reference
            raw_output = rego_bundle_query_entrypoint(interp._impl, self._bundle._impl, ep)
            try:
                ok, text = rego_output_ok(raw_output), rego_output_string(raw_output)
            finally:
                rego_free_output(raw_output)
        except Exception as exc:
            raise PolicyError(f"policy evaluation of {entrypoint} failed: {exc}") from exc
        if not ok:
            raise PolicyError(f"policy evaluation of {entrypoint} failed: {text}")
        return _parse_output(text)

    @classmethod
    def run_rego_tests(cls, policy_dir: Path) -> list[RegoTestResult]:
        """Evaluate every ``test_*`` rule of every ``*_test.rego`` file under ``policy_dir``."""
        targets: list[tuple[str, str, str]] = []
        for f in sorted(policy_dir.rglob("*_test.rego")):
            text = f.read_text()
            package = PACKAGE_RE.search(text)
            if not package:
                raise PolicyError(f"{f} has no package declaration")
            for rule in sorted(set(_TEST_RULE_RE.findall(text))):
                targets.append((str(f.relative_to(policy_dir)), rule, f"{package.group(1)}.{rule}"))
        if not targets:
            return []
        bundle = cls(policy_dir, [t[2] for t in targets], include_tests=True)
        results = []
        for file, rule, path in targets:
            try:
                value = bundle.evaluate(path, {})
            except PolicyError:
                value = None
            results.append(RegoTestResult(file=file, rule=rule, passed=value is True))
        return results
