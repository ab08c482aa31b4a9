"""The dependencies: the suite runs on the versions the image ships (constraints.txt), and the
ranges requirements.txt allows contain them."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

from packaging.requirements import Requirement

from extender.server.worker import GUNICORN_MIN

ROOT = Path(__file__).resolve().parent.parent


def _lines(name: str) -> list[str]:
    return [s for line in (ROOT / name).read_text().splitlines() if (s := line.split("#")[0].strip())]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


PINS = {_norm(n): v for n, v in (line.split("==") for line in _lines("constraints.txt"))}


def test_the_installed_runtime_packages_are_the_images() -> None:
    """scripts/test installs with -c constraints.txt, as the Dockerfile does: a venv made some
    other way fails here rather than testing versions that do not ship."""
    installed = {name: importlib.metadata.version(name) for name in PINS}
    assert installed == PINS


def test_requirements_allow_the_pinned_versions() -> None:
    for line in _lines("requirements.txt"):
        req = Requirement(line)
        assert _norm(req.name) in PINS, f"{req.name} has no pin in constraints.txt"
        assert req.specifier.contains(PINS[_norm(req.name)]), (line, PINS[_norm(req.name)])


def test_gunicorn_range_starts_where_the_worker_does() -> None:
    """requirements.txt's floor is the worker's (extender/server/worker.py, GUNICORN_MIN)."""
    req = next(Requirement(s) for s in _lines("requirements.txt") if s.startswith("gunicorn"))
    floor = ".".join(map(str, GUNICORN_MIN))
    assert req.specifier.contains(floor)
    assert not req.specifier.contains("23.0.0") and not req.specifier.contains("23.99")


def test_dev_pins_are_exact_and_not_the_runtimes() -> None:
    for line in _lines("requirements-dev.txt"):
        if line.startswith("-r"):
            continue
        name, sep, _ = line.partition("==")
        assert sep, f"requirements-dev.txt: {line} is not an exact pin"
        assert _norm(name) not in PINS, f"{name} is pinned in constraints.txt already"
