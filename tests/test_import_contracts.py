"""The layers of the code hold: ``lint-imports`` (import-linter) keeps every contract of
pyproject.toml's ``[tool.importlinter]``.

The contracts say, top to bottom, which part of ``extender/`` may import which (entry points,
HTTP server, cluster cache, settings, verbs and load sources, protocol, Kubernetes objects and
client), that ``scoring`` imports numpy and the standard library only, that the protocol
imports no Kubernetes client, that the verbs import no I/O, and that no package has an import
cycle. Run here so that a broken layer fails the suite, not only a separate CI step: the
command is the venv's own (next to this interpreter), never skipped when it is missing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_every_import_contract_is_kept() -> None:
    assert LINT_IMPORTS.exists(), f"{LINT_IMPORTS} missing: pip install -r requirements-dev.txt"
    run = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, f"lint-imports found a broken layer:\n{run.stdout}\n{run.stderr}"


def test_the_contracts_cover_the_layers() -> None:
    """A contract deleted or renamed is a layer no longer enforced."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    ids = {c["id"] for c in contracts}
    assert {
        "extender-layers",
        "scoring-pure",
        "protocol-no-kubernetes-client",
        "verbs-no-io",
        "no-cycles",
    } <= ids, ids
