"""``pip install .``: a wheel of extender/ and scoring/ with the ``load-aware-extender`` command.

The wheel is built from a copy of the working tree (what a clone of it would hold), with the
setuptools requirements-dev.txt pins and no build isolation: no network, and nothing written
into the repository (setuptools builds in the source folder). It is then installed, without
dependencies (this venv has them), into a folder of its own, and the command is run from
elsewhere, so that only the installed copy, not the repository, can answer.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
import urllib.request
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from benchmarks.harness import running_server
from tests.conftest import ROOT

COMMAND = "load-aware-extender"
PACKAGES = ("extender", "scoring")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SKIP_IN_COPY = shutil.ignore_patterns(
    ".git",
    ".venv",
    "__pycache__",
    "*.pyc",
    "*_cache",
    ".hypothesis",
    "build",
    "dist",
    "*.egg-info",
    "results",
)


def _pip(*args: str, cwd: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", *args, "--no-index", "--no-cache-dir", "--disable-pip-version-check"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "clone"
    shutil.copytree(ROOT, src, ignore=SKIP_IN_COPY)
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(src), cwd=tmp)
    (built,) = (tmp / "dist").glob("*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path) -> Path:
    """The wheel installed into a folder of its own (``--target``: its scripts in ``bin/``)."""
    target = wheel.parent / "site"
    _pip("install", "--no-deps", "--target", str(target), str(wheel), cwd=wheel.parent)
    return target


def _run(installed: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXTENDER_")}
    env["PYTHONPATH"] = str(installed)
    return subprocess.run(
        [str(installed / "bin" / COMMAND), *args],
        cwd=installed.parent,  # not the repository: only the installed copy can answer
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _metadata(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as z:
        (path,) = [n for n in z.namelist() if n.endswith(f".dist-info/{name}")]
        return z.read(path).decode()


def test_the_build_backend_is_the_pinned_setuptools() -> None:
    """pyproject's build requirement admits the setuptools this suite builds with (pip fetches
    one in an isolated build; here the pinned one builds without network)."""
    import setuptools

    (requirement,) = (Requirement(r) for r in PYPROJECT["build-system"]["requires"])
    assert requirement.name == "setuptools" and PYPROJECT["build-system"]["build-backend"] == (
        "setuptools.build_meta"
    )
    assert requirement.specifier.contains(Version(setuptools.__version__)), setuptools.__version__


def test_the_wheel_declares_the_command_the_licence_and_requirements_txt(wheel: Path) -> None:
    entry_points = configparser.ConfigParser()
    entry_points.read_string(_metadata(wheel, "entry_points.txt"))
    assert dict(entry_points["console_scripts"]) == {COMMAND: "extender.cli:main"}
    metadata = _metadata(wheel, "METADATA").split("\n\n", 1)[0].splitlines()
    requires = sorted(
        str(Requirement(line.split(": ", 1)[1])) for line in metadata if line.startswith("Requires-Dist:")
    )
    lines = (line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines())
    assert requires == sorted(str(Requirement(line)) for line in lines if line)
    assert "License-Expression: Apache-2.0" in metadata
    assert "Requires-Python: >=3.11" in metadata


def test_the_wheel_holds_every_module_the_data_and_nothing_else(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        licences = {Path(n).name: z.read(n) for n in names if ".dist-info/licenses/" in n}
        policy = z.read("extender/_config/extender-policy.yaml")
    modules = {
        p.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for p in (ROOT / package).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert len(modules) > 40
    missing = modules - names
    assert not missing, f"not in the wheel (a package missing from pyproject's packages?): {sorted(missing)}"
    data = {"extender/protocol/openapi.yaml", "extender/_config/extender-policy.yaml"}
    assert data <= names
    assert policy == (ROOT / "config" / "extender-policy.yaml").read_bytes()
    assert licences == {n: (ROOT / n).read_bytes() for n in ("LICENSE", "NOTICE")}
    others = {n for n in names - modules - data if ".dist-info/" not in n}
    assert not others, others  # no tests, no benchmarks (nor the openb trace they hold)


def test_the_installed_command_has_the_subcommands_of_python_m_extender(installed: Path) -> None:
    out = _run(installed, "--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"usage: {COMMAND} ")
    module = subprocess.run(
        [sys.executable, "-m", "extender", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert module.stdout.startswith("usage: python -m extender ")
    subcommands = re.compile(r"\{([\w,-]+)\}")
    assert subcommands.findall(out.stdout) == subcommands.findall(module.stdout)
    assert {"serve", "check-policy"} <= set(subcommands.findall(out.stdout)[0].split(","))
    serve = _run(installed, "serve", "--help")
    assert serve.returncode == 0 and "--policy" in serve.stdout and "--no-api" in serve.stdout


def test_the_installed_command_finds_the_default_policy(installed: Path) -> None:
    out = _run(installed, "check-policy")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{installed / 'extender' / '_config' / 'extender-policy.yaml'}: ok")


def test_the_installed_command_serves(installed: Path) -> None:
    """``serve`` (validation, then gunicorn in its place) from the installed copy answers."""
    command = [str(installed / "bin" / COMMAND), "serve"]
    with running_server(
        "--no-api", command=command, cwd=installed.parent, env={"PYTHONPATH": str(installed)}
    ) as server:
        with urllib.request.urlopen(f"{server.ops_url}/readyz", timeout=10) as r:
            assert r.status == 200 and "stateless" in r.read().decode()
        request = (ROOT / "tests" / "golden" / "filter-nodes.request.json").read_bytes()
        filter_call = urllib.request.Request(f"{server.url}/filter", data=request, method="POST")
        with urllib.request.urlopen(filter_call, timeout=10) as r:
            assert r.status == 200 and b'"NodeNames"' in r.read()


def test_a_missing_default_policy_says_how_to_name_one(installed: Path, tmp_path: Path) -> None:
    broken = tmp_path / "site"
    shutil.copytree(installed, broken)
    (broken / "extender" / "_config" / "extender-policy.yaml").unlink()
    check = _run(broken, "check-policy")
    assert check.returncode == 2 and "default policy file is missing" in check.stderr
    assert "check-policy FILE" in check.stderr
    serve = _run(broken, "serve", "--no-api")
    assert serve.returncode == 2 and "--policy FILE" in serve.stderr and serve.stderr.count("\n") == 1


def test_the_licence_is_the_apache_2_0_text_and_the_trace_has_its_notice() -> None:
    """LICENSE is apache.org's LICENSE-2.0.txt byte for byte (its published sha256), and the
    openb trace, which is not under it, carries its source's terms and citation."""
    assert hashlib.sha256((ROOT / "LICENSE").read_bytes()).hexdigest() == (
        "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
    )
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    notice = (ROOT / "benchmarks" / "data" / "openb" / "NOTICE").read_text()
    assert "Licence: none stated" in notice and "@inproceedings{FGD2023," in notice
    assert "benchmarks/data/openb/NOTICE" in (ROOT / "NOTICE").read_text()
