"""``scripts/demo``: the README's first command shows load-awareness, says why the hot node
lost, fails when the extender decides otherwise, and leaves no server behind."""

from __future__ import annotations

import copy
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from benchmarks import demo

ROOT = Path(__file__).resolve().parent.parent
VERBS_URL = re.compile(r"POST http://127\.0\.0\.1:(\d+)/filter")


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _rows(output: str) -> list[list[str]]:
    """The table's rows (rank first), split on runs of two spaces or more."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.splitlines() if re.match(r"\d+ {2}\S", line)]


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "python").exists(), reason="scripts/demo runs in .venv")
def test_scripts_demo_shows_the_hot_node_losing_on_its_measured_load() -> None:
    started = time.monotonic()
    done = subprocess.run(["bash", "scripts/demo"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - started < 60
    out = done.stdout
    ranks = {row[1]: int(row[0]) for row in _rows(out)}
    assert set(ranks) == {"normal-a", "normal-b", "hot", "overloaded", "stale", "full"}
    assert ranks["hot"] > max(ranks["normal-a"], ranks["normal-b"])
    rows = {row[1]: row for row in _rows(out)}
    assert rows["overloaded"][-1].startswith("fail: node cpu usage too high")
    assert rows["full"][-1] == "fail: Insufficient cpu"
    assert "(stale)" in rows["stale"][4] and "fallback" in rows["stale"]
    assert rows["hot"][2] == "70%" and rows["hot"][-1] == "pass"
    # the stated reason: LoadAware, on the hot node's measured CPU; requests-based scores equal
    why = " ".join(out.split("\nWhy: ", 1)[1].split("\n\n", 1)[0].split())  # the paragraph, unwrapped
    assert re.search(r"hot lost to normal-a \(\d+ against \d+ of 10\) on LoadAware \(weight 2\)", why), why
    assert "its measured CPU plus this pod's estimate comes to 75% of allocatable" in why, why
    assert "scored both nodes the same (LeastAllocated" in why, why
    assert _refused(int(VERBS_URL.search(out).group(1)))  # type: ignore[union-attr]


def test_demo_exits_non_zero_when_load_does_not_count(tmp_path: Path) -> None:
    """The same demo under a policy that gives LoadAware weight 0: the hot node ties with the
    normal ones, and the demo says so and fails."""
    doc = yaml.safe_load((ROOT / "config" / "extender-policy.yaml").read_text())
    doc = copy.deepcopy(doc)
    for strategy in doc["strategies"]:
        if strategy["name"] == "LoadAware":
            strategy["weight"] = 0
    policy = tmp_path / "requests-only.yaml"
    policy.write_text(yaml.safe_dump(doc))
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.demo", "--policy", str(policy)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "UNEXPECTED ANSWERS" in done.stdout
    assert "the hot node is not scored below normal-a" in done.stdout
    assert "\nWhy: hot did not lose on load" in done.stdout


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_demo_stops_its_server(signum: int) -> None:
    command = [sys.executable, "-m", "benchmarks.demo", "--keep-running"]
    with subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            lines = []
            for line in proc.stdout:
                lines.append(line)
                if "Ctrl-C stops the server" in line:
                    break
            output = "".join(lines)
            port = int(VERBS_URL.search(output).group(1))  # type: ignore[union-attr]
            assert not _refused(port), output
            proc.send_signal(signum)
            assert proc.wait(timeout=30) == (130 if signum == signal.SIGINT else 128 + signum)
            assert _refused(port)
        finally:
            if proc.poll() is None:
                proc.kill()


def _outcome(hot_score: int) -> demo.Outcome:
    """A hand-made answer: the normal nodes at 8 and 7, hot at ``hot_score``, from LoadAware."""

    def row(node: str, score: int, load: int, usage: float, verdict: str = "ok") -> dict[str, object]:
        return {
            "node": node,
            "score": score,
            "verdict": verdict,
            "reason": "" if verdict == "ok" else "Insufficient cpu",
            "loadUsable": node != "stale",
            "loadAgeSeconds": 900 if node == "stale" else 20,
            "strategies": [
                {"name": "LoadAware", "weight": 2, "score": load, "counted": node != "stale", "note": ""},
                {"name": "LeastAllocated", "weight": 1, "score": 94, "counted": True, "note": ""},
            ],
            "inputs": {
                r: {"allocatable": 1000, "usage": usage * 1000, "pending": 0, "podEstimate": 50}
                for r in ("cpu", "memory")
            },
        }

    rows = [
        row("normal-a", 8, 68, 0.2),
        row("normal-b", 7, 55, 0.35),
        row("hot", hot_score, 40 if hot_score < 7 else 68, 0.7),
        row("stale", 8, 0, 0.3),
        row("overloaded", 0, 0, 0.9, "usage_threshold"),
        row("full", 0, 0, 0.1, "insufficient_resources"),
    ]
    rows.sort(key=lambda r: -int(r["score"]))  # type: ignore[call-overload]
    return demo.Outcome(
        passing=["normal-a", "normal-b", "hot", "stale"],
        failed={"overloaded": "over", "full": "Insufficient cpu"},
        scores={r["node"]: r["score"] for r in rows if r["verdict"] == "ok"},  # type: ignore[misc]
        explained=rows,
    )


def test_the_explanation_and_the_checks_come_from_the_answer() -> None:
    from extender.policy_file import load_policy

    policy = load_policy(ROOT / "config" / "extender-policy.yaml")
    lost = _outcome(6)
    assert demo.check(lost, policy) == []
    assert demo.why_hot_lost(lost) == (
        "hot lost to normal-a (6 against 8 of 10) on LoadAware (weight 2), which gave it 40 out of 100 "
        "against 68, because its measured CPU plus this pod's estimate comes to 75% of allocatable "
        "against 25% on normal-a; the other strategies scored both nodes the same (LeastAllocated 94)."
    )
    tied = _outcome(8)
    assert any("not scored below normal-a" in p for p in demo.check(tied, policy))
    assert demo.why_hot_lost(tied).startswith("hot did not lose on load")
    wrong = _outcome(6)
    wrong.scores["hot"] = 9  # prioritize and /explain disagree
    assert demo.check(wrong, policy) == ["hot: prioritize scored 9, /explain 6"]
