"""The latency benchmark runs end to end (real server, both verbs) and writes sane figures.

No timing assertions: this machine's numbers mean nothing in CI; the benchmark's own answer
checks (status 200, every node accounted for, scores 0..10) are what must hold.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(180)
def test_latency_quick_run_writes_consistent_json(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "latency", "--quick", "--sizes", "100", "--repeat", "3",
         "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| nodes | verb |" in proc.stdout

    (result,) = tmp_path.glob("latency-*.json")
    assert len(list(tmp_path.glob("latency-*.md"))) == 1
    record = json.loads(result.read_text())
    assert record["machine"]["cpu_count"] >= 1
    rows = {row["verb"]: row for row in record["rows"]}
    assert set(rows) == {"filter", "prioritize"} and len(record["rows"]) == 2
    for row in rows.values():
        assert row["nodes"] == 100 and row["calls"] == 3
        samples = row["samples"]
        assert len(samples["client_ms"]) == len(samples["server_ms"]) == len(samples["orjson_loads_ms"]) == 3
        assert row["request_bytes"] > 100 * 10_000  # full Node objects, ~12 KB each
        assert row["server_ms"] is not None and row["ratio_server_orjson_p50"] > 0
    assert sum(rows["filter"]["answer"].values()) == 100
    assert set(rows["filter"]["answer"]) == {"passing", "failed", "unresolvable"}
    assert rows["prioritize"]["answer"] == {"scored": 100}


@pytest.mark.timeout(180)
def test_core_benchmark_agrees_with_the_reference_and_writes_json(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "core", "--sizes", "60", "--min-calls", "3",
         "--min-seconds", "0", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # 1 = the core disagreed with the reference
    (result,) = tmp_path.glob("core-*.json")
    record = json.loads(result.read_text())
    rows = record["rows"]
    assert {r["policy"] for r in rows} >= {"default policy", "LoadAware", "LowRiskOverCommitment"}
    for row in rows:
        assert row["nodes"] == 60 and row["calls"] >= 3 and row["core_ms"] > 0
        assert row["agree"] == 60 and row["ratio"] > 0
        assert sum(row["score_histogram"]) == 60
