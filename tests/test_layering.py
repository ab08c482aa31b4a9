"""scoring/ imports numpy and the standard library only; only extender/protocol/wire.py knows the
wire keys. The layers between packages are import-linter contracts (pyproject.toml), run by
tests/test_import_contracts.py."""

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
    forbidden_stdlib = {
        "os",
        "time",
        "datetime",
        "socket",
        "logging",
        "random",
        "io",
        "pathlib",
        "subprocess",
    }
    for path in sorted((ROOT / "scoring").rglob("*.py")):
        mods = imported_modules(path)
        assert mods <= allowed, f"{path.name} imports {mods - allowed}"
        assert not mods & forbidden_stdlib, (
            f"{path.name} imports {mods & forbidden_stdlib} (I/O, clock or randomness)"
        )


PROTOCOL = ROOT / "extender" / "protocol" / "wire.py"


def test_only_wire_knows_the_protocol_keys() -> None:
    keys = (
        '"FailedNodes"',
        '"NodeNames"',
        '"NodeNameToMetaVictims"',
        '"PodUID"',
        '"FailedAndUnresolvableNodes"',
    )
    assert any(k in PROTOCOL.read_text() for k in keys), "the protocol module moved: update PROTOCOL"
    paths = sorted((ROOT / "extender").rglob("*.py"))
    assert len(paths) > 20, "the scan sees extender/'s subpackages"
    for path in paths:
        if path == PROTOCOL:
            continue
        text = path.read_text()
        rel = path.relative_to(ROOT)
        assert not any(k in text for k in keys), (
            f"{rel} spells a wire key; only {PROTOCOL.relative_to(ROOT)} may"
        )
