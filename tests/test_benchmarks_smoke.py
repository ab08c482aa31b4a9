"""The latency benchmark runs end to end (real server, stateless form) and writes sane figures.

No timing assertions: this machine's numbers mean nothing in CI; the benchmark's own answer
checks (status 200, every node accounted for, scores 0..10) are what must hold.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_cli(tmp_path: Path, *args: str, timeout_s: float = 150) -> tuple[str, dict[str, Any]]:
    """``python -m benchmarks ARGS --out tmp_path``; (its output, the JSON record) once it exited
    0 having written one JSON and one Markdown file."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", *args, "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".md"]
    return proc.stdout, json.loads(next(tmp_path.glob("*.json")).read_text())


@pytest.mark.timeout(180)
def test_latency_stateless_run_writes_consistent_json(tmp_path: Path) -> None:
    stdout, record = run_cli(
        tmp_path, "latency", "--forms", "stateless", "--sizes", "100", "--pods", "3", timeout_s=120
    )
    assert "| nodes | form | verb |" in stdout
    assert record["machine"]["cpu_count"] >= 1
    rows = {row["verb"]: row for row in record["rows"]}
    assert set(rows) == {"filter", "prioritize"} and len(record["rows"]) == 2
    (run,) = record["runs"]
    for verb, row in rows.items():
        assert row["nodes"] == 100 and row["form"] == "stateless" and row["calls"] == 3
        calls = run["calls"][verb]
        assert len(calls) == 3 and all(c["server_ms"] is not None and c["floor_ms"] > 0 for c in calls)
        assert row["request_bytes"]["p50"] > 50 * 10_000  # full Node objects, ~12 KB each
        assert row["server_ms"] is not None and row["ratio_server_orjson_p50"] > 0
    assert sum(rows["filter"]["answer"].values()) == 100  # in-tree: all 100 nodes fit and are sent
    assert set(rows["filter"]["answer"]) == {"passing", "failed", "unresolvable"}
    assert rows["prioritize"]["answer"] == {"scored": rows["filter"]["answer"]["passing"]}


@pytest.mark.timeout(180)
def test_core_benchmark_agrees_with_the_reference_and_writes_json(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "core",
            "--sizes",
            "60",
            "--min-calls",
            "3",
            "--min-seconds",
            "0",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr  # 1 = the core disagreed with the reference
    (result,) = tmp_path.glob("core-*.json")
    record = json.loads(result.read_text())
    rows = record["rows"]
    assert {r["policy"] for r in rows} >= {"default policy", "LoadAware", "LowRiskOverCommitment"}
    for row in rows:
        assert row["nodes"] == 60 and row["calls"] >= 3 and row["core_ms"] > 0
        assert row["agree"] == 60 and row["ratio"] > 0
        assert sum(row["score_histogram"]) == 60


def test_runqueue_wait_reads_every_thread_of_a_process() -> None:
    """The names benchmark's 'wait for a core' column: the summed second field of each
    thread's schedstat; a process whose threads are all busy on fewer cores than threads
    accumulates it, a missing process gives None."""
    import os
    import time

    from benchmarks.harness import runqueue_wait_s

    if not os.path.exists(f"/proc/{os.getpid()}/task"):
        pytest.skip("no /proc")
    spinners = [
        subprocess.Popen(
            [sys.executable, "-c", "import time\nt = time.time() + 1.5\nwhile time.time() < t: pass"]
        )
        for _ in range((os.cpu_count() or 1) + 2)
    ]
    try:
        before = {p.pid: runqueue_wait_s(p.pid) for p in spinners}
        time.sleep(1.0)
        after = {p.pid: runqueue_wait_s(p.pid) for p in spinners}
    finally:
        for p in spinners:
            p.wait()
    assert all(isinstance(v, float) and v >= 0 for v in before.values())
    assert sum(after[p] - before[p] for p in after) > 0.1  # more busy processes than cores: they queue
    assert runqueue_wait_s(spinners[0].pid) is None  # gone


@pytest.mark.timeout(180)
def test_abuse_run_keeps_the_filter_answered_and_closes_the_dripping_connections(tmp_path: Path) -> None:
    """``python -m benchmarks abuse`` end to end, small: every filter answered within its deadline
    while connections idle and drip, and the dripping ones closed by the server (408) within
    their deadline plus the client's one-second step."""
    _, record = run_cli(
        tmp_path,
        "abuse",
        "--nodes", "50", "--pods-per-node", "1", "--calls", "20", "--min-seconds", "12",
        "--idle", "8", "--drip", "4", "--workers", "extender",
        timeout_s=170,
    )  # fmt: skip
    (row,) = record["rows"]
    assert row["abused"]["timeouts"] == 0 and row["abused"]["calls"] >= 20
    assert row["drip_closed"].get("408", 0) >= 1
    assert row["drip_held_s_max"] <= 5 + 10 + 2  # EXTENDER_READ_TIMEOUT_S after whole headers
