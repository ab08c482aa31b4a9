"""The container image: no Docker engine runs here, so the Dockerfile and .dockerignore are checked
statically, and the image's entrypoint is run the way the image runs it, from a folder laid out
like the image's /app."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from benchmarks.harness import running_server
from tests.conftest import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
FINAL_STAGE = DOCKERFILE.split("\nFROM ")[-1]


def _instructions(name: str, text: str = DOCKERFILE) -> list[str]:
    """The arguments of every ``name`` instruction (one line each in this Dockerfile)."""
    return [line.split(None, 1)[1] for line in text.splitlines() if line.startswith(name + " ")]


def _copied_from_context() -> list[str]:
    """The sources of every COPY that reads the build context (not ``--from=`` a stage)."""
    return [
        src for args in _instructions("COPY") if not args.startswith("--from") for src in args.split()[:-1]
    ]


def test_one_pinnable_base_image_for_both_stages() -> None:
    """Both stages come from the one ARG, so that pinning it (tag and digest) pins both; a digest
    is a whole sha256, and while there is none the Dockerfile says how to get it."""
    args = dict(a.split("=", 1) for a in _instructions("ARG") if "=" in a)
    froms = [f.split()[0] for f in _instructions("FROM")]
    assert len(froms) == 2 and set(froms) == {"${PYTHON_IMAGE}"}, froms
    image = args["PYTHON_IMAGE"]
    name, _, digest = image.partition("@")
    repo, _, tag = name.rpartition(":")
    assert repo == "python" and tag.startswith("3.11-slim") and tag != "latest", image
    if digest:
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), image
    else:
        assert f"docker buildx imagetools inspect {name}" in DOCKERFILE


def test_final_stage_is_nonroot_without_compilers() -> None:
    user = _instructions("USER", FINAL_STAGE)
    uid = user[-1].split(":")[0]
    assert uid.isdigit() and uid != "0"
    assert "gcc" not in FINAL_STAGE and "build-essential" not in FINAL_STAGE
    for src in _copied_from_context():
        assert (ROOT / src).exists(), src


def test_entrypoint_is_the_command_line() -> None:
    """``python -m extender serve`` (checks settings and policy, then execs gunicorn), in exec
    form: no shell stands between the kubelet's SIGTERM and gunicorn."""
    entry = _instructions("ENTRYPOINT", FINAL_STAGE)
    assert len(entry) == 1 and json.loads(entry[0]) == ["python", "-m", "extender", "serve"]
    assert not _instructions("CMD", FINAL_STAGE)


# ---- .dockerignore ---------------------------------------------------------------------------


DOCKERIGNORE = (ROOT / ".dockerignore").read_text()


def _ignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """(excludes, pattern) per line of a .dockerignore, as Docker reads them: ``*`` within one
    path element, ``**`` across them, ``!`` re-includes; a rule applies to a path or any parent."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        excludes = not line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        for part in re.split(r"(\*\*/?|\*|\?)", pattern):
            if part in ("**", "**/"):
                regex += "(.*/)?" if part == "**/" else ".*"
            elif part == "*":
                regex += "[^/]*"
            elif part == "?":
                regex += "[^/]"
            else:
                regex += re.escape(part)
        rules.append((excludes, re.compile(regex)))
    return rules


def _in_context(path: str, dockerignore: str = DOCKERIGNORE) -> bool:
    """Whether ``docker build .`` sends ``path``: the last rule that matches it (or a parent) wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for excludes, regex in _ignore_rules(dockerignore):
        if any(regex.fullmatch(c) for c in candidates):
            included = not excludes
    return included


def test_dockerignore_sends_what_the_image_copies_and_nothing_else() -> None:
    copied = _copied_from_context()
    files = [
        p.relative_to(ROOT).as_posix()
        for src in copied
        for p in ([ROOT / src] if (ROOT / src).is_file() else sorted((ROOT / src).rglob("*.py")))
    ]
    assert len(files) > 20
    for path in files:
        assert _in_context(path), f"{path} is copied by the Dockerfile but excluded by .dockerignore"
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        "benchmarks/results/latency.json",
        "benchmarks/data/openb/pods.csv",
        "tests/test_golden.py",
        "config/deploy/deployment.yaml",
        "extender/__pycache__/cli.cpython-311.pyc",
        "scoring/.mypy_cache/x.json",
        "README.md",
    ):
        assert not _in_context(path), f"{path} would be sent to the builder"


def test_the_ignore_reading_sees_a_rule_that_drops_a_copied_file() -> None:
    assert _in_context("extender/cli.py")
    assert not _in_context("extender/cli.py", DOCKERIGNORE + "\nextender/*.py\n")
    assert not _in_context("scoring/policy.py", DOCKERIGNORE + "\n**/policy.py\n")
    assert _in_context("tests/x.py", DOCKERIGNORE + "\n!tests\n")


# ---- the entrypoint, run as the image runs it ----------------------------------------------------


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding what the Dockerfile copies from the context, where it puts it (/app)."""
    app = tmp_path_factory.mktemp("app")
    for src in _copied_from_context():
        if src in ("requirements.txt", "constraints.txt"):
            continue  # the build stage's, not /app's
        if (ROOT / src).is_dir():
            shutil.copytree(ROOT / src, app / src, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (app / src).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / src, app / src)
    return app


def _image_env() -> dict[str, str]:
    """This environment less EXTENDER_* and PYTHONPATH, plus the final stage's ENV (but PATH)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXTENDER_") and k != "PYTHONPATH"}
    lines = iter(FINAL_STAGE.split("\nENV ", 1)[1].splitlines())
    for line in lines:
        key, _, value = line.strip(" \\").partition("=")
        if key != "PATH":
            env[key] = value
        if not line.endswith("\\"):
            break
    assert env["EXTENDER_OPS_PORT"] == "8889" and env["PYTHONUNBUFFERED"] == "1"
    return env


def _entrypoint() -> list[str]:
    """The image's ENTRYPOINT, with this interpreter for the image's ``python``."""
    entry = json.loads(_instructions("ENTRYPOINT", FINAL_STAGE)[0])
    assert entry[0] == "python"
    return [sys.executable, *entry[1:]]


def test_a_bad_policy_is_one_line_and_exit_2(app_dir: Path) -> None:
    bad = app_dir / "bad-policy.yaml"
    bad.write_text("strategies: [{name: Nope}]\n")
    env = {**_image_env(), "EXTENDER_POLICY": str(bad)}
    out = subprocess.run(
        _entrypoint(),
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out
    assert out.stderr.count("\n") == 1 and "strategies[0].name: unknown strategy 'Nope'" in out.stderr


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc (Linux)")
def test_the_entrypoint_becomes_gunicorn_in_the_same_process(app_dir: Path) -> None:
    """What the image's PID 1 runs: the CLI replaces itself with gunicorn (exec), so the process
    the container runtime started, and signals, is gunicorn's master."""
    env = {**_image_env(), "EXTENDER_API_ACCESS": "false", "EXTENDER_OPS_HOST": "127.0.0.1"}
    with running_server(command=_entrypoint(), cwd=app_dir, env=env) as server:
        with urllib.request.urlopen(f"{server.ops_url}/readyz", timeout=10) as r:
            assert r.status == 200
        cmdline = Path(f"/proc/{server.master_pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[1:3] == [b"-m", b"gunicorn"], cmdline  # started as [b"-m", b"extender"]
