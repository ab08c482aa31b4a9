"""scoring/ imports numpy and the standard library only; only wire.py knows the wire keys."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_scoring_is_pure_numpy() -> None:
    allowed = {"numpy", "scoring"} | set(sys.stdlib_module_names)
    forbidden_stdlib = {"os", "time", "datetime", "socket", "logging", "random", "io", "pathlib", "subprocess"}
    for path in sorted((ROOT / "scoring").glob("*.py")):
        mods = imported_modules(path)
        assert mods <= allowed, f"{path.name} imports {mods - allowed}"
        assert not mods & forbidden_stdlib, f"{path.name} imports {mods & forbidden_stdlib} (I/O, clock or randomness)"


def test_only_wire_knows_the_protocol_keys() -> None:
    keys = ('"FailedNodes"', '"NodeNames"', '"NodeNameToMetaVictims"', '"PodUID"', '"FailedAndUnresolvableNodes"')
    for path in sorted((ROOT / "extender").glob("*.py")):
        if path.name == "wire.py":
            continue
        text = path.read_text()
        assert not any(k in text for k in keys), f"{path.name} spells a wire key; only wire.py may"
