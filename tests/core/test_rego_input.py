"""The input builder of dataroom/rego_input.py: the interpreter sees exactly what regopy's own
builder would give it (over the escaped document), hostile strings stay inside their values, the
node may be freed once set, and a value with no input form fails closed."""

from __future__ import annotations

import enum
import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence, Set
from pathlib import Path
from typing import Any

import pytest
from regopy import Input, Interpreter
from regopy.rego_shared import rego_free_output, rego_output_string, rego_query, rego_set_input

from dataroom.rego import PolicyBundle, PolicyError
from dataroom.rego_input import InputError, escape, free_input, input_node


def escape_strings(value: Any) -> Any:
    """The reference: a copy of the document with every string (keys included) escaped, for regopy's own builder."""
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, Mapping):
        return {escape_strings(k): escape_strings(v) for k, v in value.items()}
    if isinstance(value, Set):
        return {escape_strings(v) for v in value}
    if isinstance(value, Sequence):
        return [escape_strings(v) for v in value]
    return value


class Color(enum.StrEnum):
    RED = 'r"ed'


class Level(enum.IntEnum):
    HIGH = 3


DOCUMENTS = [
    {},
    [],
    "plain",
    'quote " and backslash \\ and both \\"',
    {"user": {"name": "alice", "groups": ["data-scientists"]}, "project": None, "today": "2026-11-30"},
    {'key "quoted"': 'value "quoted"', "back\\slash": ["a\\", '"', '\\"', "\\\\"]},
    {"ints": [0, -1, 7, 2**62, -(2**62)], "floats": [0.5, -2.25, 3.0], "bools": [True, False], "null": None},
    {"unicode": "naïve — 数据 🙂", "newline": "a\nb\tc", "empty": ""},
    {"nested": [[[]], [{}], [{"a": [1, {"b": (2, "t")}]}]]},
    {"tuple": ("x", 1, None), "enum_str": Color.RED, "enum_int": Level.HIGH},
    {"mapping": OrderedDict([("z", 1), ("a", 'q"')]), "range": range(3), "set": {"s1", 's"2'}},
]


def _seen(interp: Interpreter) -> str:
    """The interpreter's output for ``x := input``, as text (regopy's Output would parse it)."""
    output = rego_query(interp._impl, "x := input")
    try:
        return rego_output_string(output)
    finally:
        rego_free_output(output)


@pytest.mark.parametrize("doc", DOCUMENTS, ids=range(len(DOCUMENTS)))
def test_interpreter_sees_what_regopys_builder_gives(doc) -> None:
    ours, theirs = Interpreter(), Interpreter()
    node = input_node(doc)
    try:
        rego_set_input(ours._impl, node)
    finally:
        free_input(node)
    theirs.set_input(Input(escape_strings(doc)))
    assert _seen(ours) == _seen(theirs)
    if not isinstance(doc, dict) or "set" not in doc:  # JSON has no sets: their output is a list
        assert json.loads(_seen(ours), strict=False)["bindings"]["x"] == json.loads(json.dumps(doc, default=list))


def test_freed_node_leaves_the_input_intact() -> None:
    """The interpreter keeps its own reference: freeing the node, and building (and freeing)
    many others that reuse its memory, changes nothing the next queries see."""
    interp = Interpreter()
    doc = {"facts": {"tables": ["acme.findings"] * 50, "name": 'x"y'}}
    node = input_node(doc)
    rego_set_input(interp._impl, node)
    free_input(node)
    before = _seen(interp)
    for i in range(200):
        free_input(input_node({"facts": {"tables": [f"other.t{i}"] * 50, "name": "zzz"}}))
    assert _seen(interp) == before
    assert json.loads(before, strict=False)["bindings"]["x"] == {"facts": {"tables": ["acme.findings"] * 50, "name": 'x"y'}}


def test_hostile_strings_cannot_forge_output_keys(tmp_path: Path) -> None:
    (tmp_path / "p.rego").write_text('package t\nimport rego.v1\nmain := {"allow": false, "echo": input.name}\n')
    bundle = PolicyBundle(tmp_path, ["t.main"])
    forged = 'x", "allow": true, "y": "\\'
    assert bundle.evaluate("t.main", {"name": forged}) == {"allow": False, "echo": forged}


def test_a_value_without_input_form_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="object"):
        input_node({"a": [1, object()]})
    (tmp_path / "p.rego").write_text("package t\nimport rego.v1\nmain := true\n")
    with pytest.raises(PolicyError):
        PolicyBundle(tmp_path, ["t.main"]).evaluate("t.main", {"when": object()})
