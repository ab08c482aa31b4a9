"""scripts/run, scripts/test and scripts/check set up .venv (scripts/venv.sh): they run pip only
when the files that decide the install changed, and scripts/run says what it does.

Each test runs the real scripts in a copy of scripts/ and the requirement files, with a stand-in
Python that logs how it is called (creating a venv makes another stand-in), so no pip runs."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

STAND_IN = """#!/bin/sh
echo "$*" >> "$STAND_IN_LOG"
case "$1 $2" in
"-m venv") mkdir -p "$3/bin" && cp "$0" "$3/bin/python" ;;
"-m pip") [ -z "$STAND_IN_PIP_FAILS" ] || exit 1 ;;
"-c "*) exit "${STAND_IN_TOO_OLD:-0}" ;;
esac
exit 0
"""


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """scripts/ and the requirement files, and a stand-in ``python3`` (not yet a .venv)."""
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    for name in ("requirements.txt", "requirements-dev.txt", "constraints.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    python = tmp_path / "stand-in" / "python3"
    python.parent.mkdir()
    python.write_text(STAND_IN)
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return tmp_path


def run(repo: Path, script: str, *args: str, **env: str) -> tuple[int, str, list[str]]:
    """Run scripts/<script>; its exit code, output and the stand-in's calls (then forgotten)."""
    log = repo / "calls.log"
    log.write_text("")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("EXTENDER_", "STAND_IN_"))}
    environ.update(PYTHON=str(repo / "stand-in" / "python3"), STAND_IN_LOG=str(log), **env)
    out = subprocess.run(
        ["bash", str(repo / "scripts" / script), *args],
        cwd=repo,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.returncode, out.stdout + out.stderr, log.read_text().splitlines()


def pip_runs(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith("-m pip install")]


def test_run_creates_the_venv_installs_once_and_says_how_to_try_it(repo: Path) -> None:
    code, out, calls = run(repo, "run")
    assert code == 0, out
    assert "version_info < (3, 11)" in calls[0]  # the version check, then the venv, then pip
    (pip,) = pip_runs(calls)
    assert calls.index("-m venv .venv") < calls.index(pip) and "-r requirements.txt -c constraints.txt" in pip
    assert calls[-1] == "-m extender serve --debug-endpoints"
    for line in (
        "creating .venv",
        "installing requirements.txt",
        "starting the extender",
        "http://127.0.0.1:8888",
        "curl -s http://127.0.0.1:8889/readyz",
        "curl -s -XPOST http://127.0.0.1:8888/filter --data-binary @tests/golden/filter-nodes.request.json",
    ):
        assert line in out, (line, out)

    code, out, calls = run(repo, "run")
    assert code == 0 and pip_runs(calls) == [] and "pip skipped" in out, out
    assert calls == ["-m extender serve --debug-endpoints"]


@pytest.mark.parametrize("changed", ["requirements.txt", "constraints.txt", "stamp"])
def test_run_installs_again_when_a_file_it_installs_from_changes(repo: Path, changed: str) -> None:
    run(repo, "run")
    if changed == "stamp":
        (repo / ".venv" / ".installed-requirements").unlink()
    else:
        with (repo / changed).open("a") as f:
            f.write("# changed\n")
    code, out, calls = run(repo, "run")
    assert code == 0 and len(pip_runs(calls)) == 1, out
    assert len(pip_runs(run(repo, "run")[2])) == 0


def test_a_failed_install_is_not_stamped(repo: Path) -> None:
    code, out, calls = run(repo, "run", STAND_IN_PIP_FAILS="1")
    assert code != 0 and len(pip_runs(calls)) == 1 and "-m extender serve" not in "\n".join(calls), out
    code, out, calls = run(repo, "run")
    assert code == 0 and len(pip_runs(calls)) == 1, out
    # an install that failed halfway leaves .venv as neither set of files says: the files put back
    # as they were at the last good install must install again
    constraints = (repo / "constraints.txt").read_text()
    (repo / "constraints.txt").write_text(constraints + "# changed\n")
    assert run(repo, "run", STAND_IN_PIP_FAILS="1")[0] != 0
    (repo / "constraints.txt").write_text(constraints)
    assert len(pip_runs(run(repo, "run")[2])) == 1


def test_run_shows_the_addresses_its_flags_choose(repo: Path) -> None:
    code, out, calls = run(repo, "run", "--port", "9000", "--ops-port=9001", "--host", "0.0.0.0")
    assert code == 0, out
    assert "curl -s http://127.0.0.1:9001/readyz" in out and "http://0.0.0.0:9000/filter" in out
    assert calls[-1] == "-m extender serve --debug-endpoints --port 9000 --ops-port=9001 --host 0.0.0.0"
    code, out, _ = run(repo, "run", "--ops-port", "0", EXTENDER_PORT="7000")
    assert "curl -s http://127.0.0.1:7000/readyz" in out, out


def test_test_and_check_install_the_dev_requirements_once(repo: Path) -> None:
    code, out, calls = run(repo, "test", "-k", "golden")
    assert code == 0, out
    for tool in ("ruff", "mypy", "lint-imports"):  # what scripts/check runs before pytest
        shutil.copy(repo / ".venv" / "bin" / "python", repo / ".venv" / "bin" / tool)
    (pip,) = pip_runs(calls)
    assert "-r requirements-dev.txt -c constraints.txt" in pip
    assert calls[-1] == "-m pytest -k golden"
    for script in ("test", "check"):
        code, out, calls = run(repo, script)
        assert code == 0 and pip_runs(calls) == [], out
    with (repo / "requirements-dev.txt").open("a") as f:
        f.write("# changed\n")
    assert len(pip_runs(run(repo, "check")[2])) == 1
    # the runtime install has a stamp of its own: scripts/run installs once after scripts/test
    assert len(pip_runs(run(repo, "run")[2])) == 1


def test_an_old_python_is_refused_with_a_message(repo: Path) -> None:
    code, out, calls = run(repo, "run", STAND_IN_TOO_OLD="1")
    assert code != 0 and "not Python 3.11 or newer" in out and "PYTHON=" in out, out
    assert "-m venv .venv" not in calls and not (repo / ".venv").exists()
