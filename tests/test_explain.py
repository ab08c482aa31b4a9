"""The explain surface: POST the ExtenderArgs of a prioritize call to ``/explain``.

The golden Nodes-form request (tests/golden, hand computation in test_golden.py) explained
under real gunicorn: the numbers must be the ones the prioritize answer is made of.
"""

from __future__ import annotations

from typing import Any

from tests.test_golden import fresh, golden, post


def _by_node(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["node"]: row for row in answer["nodes"]}


def test_explain_gives_each_strategy_score_and_the_inputs(extender_url: str) -> None:
    body = fresh(golden("prioritize-nodes.request.json"))
    status, answer = post(f"{extender_url}/explain", body)
    assert status == 200, answer
    assert answer["mode"] == "stateless"
    rows = _by_node(answer)
    n1 = rows["n1"]
    assert (n1["score"], n1["verdict"], n1["fallback"], n1["loadUsable"]) == (7, "ok", False, True)
    strategies = {s["name"]: (s["score"], s["counted"]) for s in n1["strategies"]}
    assert strategies == {
        "LoadAware": (67, True),
        "LeastAllocated": (90, True),
        "BalancedAllocation": (73, True),
    }  # kube-scheduler v1.36's formula
    assert n1["combined"] == 74.25  # (2 x 67 + 90 + 73) / 4
    assert n1["inputs"]["cpu"]["allocatable"] == 4000 and n1["inputs"]["cpu"]["podEstimate"] == 425
    assert n1["inputs"]["cpu"]["usage"] == 1000
    # n4 has no load data: the requests-based fallback, LoadAware not counted
    n4 = rows["n4"]
    assert (n4["score"], n4["fallback"], n4["loadUsable"]) == (8, True, False)  # (90 + 73) / 2
    la = next(s for s in n4["strategies"] if s["name"] == "LoadAware")
    assert la["counted"] is False and "fallback" in la["note"]
    # n2 fails the usage threshold
    assert rows["n2"]["verdict"] == "usage_threshold" and "86%" in rows["n2"]["reason"]
    assert rows["n2"]["score"] == 0
    # best first, and the same scores as prioritize
    scores = [row["score"] for row in answer["nodes"]]
    assert scores == sorted(scores, reverse=True)
    _, prio = post(f"{extender_url}/prioritize", body)
    assert {p["Host"]: p["Score"] for p in prio} == {name: row["score"] for name, row in rows.items()}


def test_explain_names_invalid_node_data(extender_url: str) -> None:
    status, answer = post(f"{extender_url}/explain", fresh(golden("filter-nodes.request.json")))
    assert status == 200, answer
    n3 = _by_node(answer)["n3"]
    assert n3["verdict"] == "invalid_node_data" and "4x" in n3["reason"]


def test_explain_one_node_and_bad_input(extender_url: str) -> None:
    body = fresh(golden("prioritize-nodes.request.json"))
    status, answer = post(f"{extender_url}/explain?node=n4", body)
    assert status == 200 and [row["node"] for row in answer["nodes"]] == ["n4"]
    status, answer = post(f"{extender_url}/explain", b"{not json")
    assert status == 400 and answer["Error"]
