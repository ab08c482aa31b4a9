"""Properties of the service over random valid requests (in-process Flask client).

Whatever the nodes and the pod, a valid request gets HTTP 200; filter passes a subset of its
input, and passed + failed + unresolvable partition the input; prioritize answers every input
host exactly once with an integer score in 0..10.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extender.kube.objects import BadRequest, Pod
from extender.protocol.wire import (
    NameListMemo,
    SchedulingRequest,
    decode_scheduling_request,
    encode_filter_result,
    encode_host_priorities,
)
from extender.server.app import create_app
from extender.settings import Settings

NOW = 1_800_000_000.0
P = "load.extender.scheduling/"

cpu_q = st.one_of(
    st.integers(0, 512).map(str),
    st.integers(0, 512_000).map(lambda m: f"{m}m"),
    st.sampled_from(["0.5", "1.5", "1e3", "2k", "100m"]),
)
mem_q = st.one_of(
    st.integers(0, 2**40).map(str),
    st.integers(0, 4096).map(lambda g: f"{g}Gi"),
    st.integers(0, 10**7).map(lambda k: f"{k}Ki"),
    st.sampled_from(["12Mi", "0.5Ki", "1e9"]),
)
bad_q = st.sampled_from(["lots", "1Qi", "", "-1", "1e400"])


@st.composite
def nodes(draw: Any) -> list[dict[str, Any]]:
    n = draw(st.integers(0, 25))
    out = []
    for i in range(n):
        alloc = {
            "cpu": draw(st.one_of(cpu_q, bad_q) if draw(st.integers(0, 20)) == 0 else cpu_q),
            "memory": draw(mem_q),
            "pods": str(draw(st.integers(0, 250))),
        }
        if draw(st.booleans()):
            alloc["example.com/gpu"] = str(draw(st.integers(0, 8)))
        ann: dict[str, str] = {}
        if draw(st.booleans()):
            ann = {P + "cpu": draw(cpu_q), P + "memory": draw(mem_q)}
            if draw(st.booleans()):
                age = draw(st.integers(-60, 3600))
                ann[P + "updated"] = f"2027-01-15T08:{(59 - age // 60) % 60:02d}:00Z"
        out.append(
            {
                "metadata": {"name": f"node-{i}", "annotations": ann or None},
                "status": {"allocatable": alloc, "capacity": alloc},
            }
        )
    return out


@st.composite
def pods(draw: Any) -> dict[str, Any]:
    containers = []
    for _ in range(draw(st.integers(0, 3))):
        req = {}
        if draw(st.booleans()):
            req["cpu"] = draw(cpu_q)
        if draw(st.booleans()):
            req["memory"] = draw(mem_q)
        if draw(st.integers(0, 4)) == 0:
            req["example.com/gpu"] = str(draw(st.integers(1, 4)))
        lim = {"memory": draw(mem_q)} if draw(st.booleans()) else {}
        containers.append({"name": "c", "resources": {"requests": req, "limits": lim}})
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {"containers": containers}}


APP = create_app(Settings(api_access=False), clock=lambda: NOW)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes(), pods())
def test_filter_partitions_its_input(items: list[dict[str, Any]], pod: dict[str, Any]) -> None:
    body = json.dumps({"Pod": pod, "Nodes": {"metadata": {}, "items": items}, "NodeNames": None})
    r = APP.test_client().post("/filter", data=body)
    assert r.status_code == 200, r.get_json()
    answer = r.get_json()
    assert answer["Error"] == "" and answer["NodeNames"] is None
    passed = [n["metadata"]["name"] for n in answer["Nodes"]["items"]]
    failed, unresolvable = set(answer["FailedNodes"]), set(answer["FailedAndUnresolvableNodes"])
    names = [n["metadata"]["name"] for n in items]
    assert set(passed) <= set(names)
    assert not (set(passed) & failed) and not (set(passed) & unresolvable) and not (failed & unresolvable)
    assert sorted(passed + list(failed) + list(unresolvable)) == sorted(names)
    assert passed == [n for n in names if n in set(passed)]  # input order kept
    assert all(
        isinstance(v, str) and v
        for v in {**answer["FailedNodes"], **answer["FailedAndUnresolvableNodes"]}.values()
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes(), pods())
def test_prioritize_scores_every_host_once(items: list[dict[str, Any]], pod: dict[str, Any]) -> None:
    body = json.dumps({"Pod": pod, "Nodes": {"metadata": {}, "items": items}, "NodeNames": None})
    r = APP.test_client().post("/prioritize", data=body)
    assert r.status_code == 200, r.get_json()
    answer = r.get_json()
    assert isinstance(answer, list)
    assert [h["Host"] for h in answer] == [n["metadata"]["name"] for n in items]
    assert all(
        list(h) == ["Host", "Score"] and type(h["Score"]) is int and 0 <= h["Score"] <= 10 for h in answer
    )


# Names the JSON encoder must escape, with the separator's own characters, besides any text.
NAME = st.text(max_size=12) | st.text(alphabet='a",\\\n\u00e9', max_size=6)


@settings(max_examples=500, deadline=None)
@given(names=st.lists(NAME, max_size=30), data=st.data())
def test_host_priorities_encode_as_the_plain_encoder_would(names: list[str], data: Any) -> None:
    """The fast HostPriorityList encoder (a NameLayout's template) gives the same JSON
    as encoding one {Host, Score} object per node, for any names (quotes, commas, escapes,
    non-ASCII, empty) and any scores, in range or not."""
    scores = data.draw(st.lists(st.integers(-3, 13), min_size=len(names), max_size=len(names)))
    got = json.loads(encode_host_priorities(names, scores))
    assert got == [{"Host": n, "Score": s} for n, s in zip(names, scores, strict=True)]
    memo = NameListMemo()
    as_tuple = tuple(names)
    for _ in range(2):  # the second time from the memo's kept layout
        assert json.loads(encode_host_priorities(as_tuple, scores, memo)) == got


@settings(max_examples=300, deadline=None)
@given(names=st.lists(NAME, max_size=30, unique=True), data=st.data())
def test_filter_names_joined_from_the_memo_are_the_plain_encoding(names: list[str], data: Any) -> None:
    """NodeNames cut from a NameLayout (new, then the memo's kept one) are the passing names,
    for any names and any passing mask."""
    passing = data.draw(st.lists(st.booleans(), min_size=len(names), max_size=len(names)))
    request = SchedulingRequest(Pod(), tuple(names), None)
    plain = json.loads(encode_filter_result(request, passing, {"x": "why"}, {}))
    assert plain["NodeNames"] == [n for n, ok in zip(names, passing, strict=True) if ok]
    memo = NameListMemo()
    for _ in range(2):
        assert json.loads(encode_filter_result(request, passing, {"x": "why"}, {}, memo=memo)) == plain


def _args(names: object) -> bytes:
    return json.dumps({"Pod": {"metadata": {"uid": "u"}}, "Nodes": None, "NodeNames": names}).encode()


def test_a_name_list_seen_last_time_is_the_same_tuple() -> None:
    """kube-scheduler sends the same NodeNames call after call: the memo hands back the very
    tuple it decoded (the node source recognises it by identity); another list, or the same
    names in another order, is decoded afresh; a bad list is refused every time, never kept."""
    memo = NameListMemo()
    first = decode_scheduling_request(_args(["a", "b", "c"]), memo).names
    assert first == ("a", "b", "c")
    assert decode_scheduling_request(_args(["a", "b", "c"]), memo).names is first
    other = decode_scheduling_request(_args(["c", "b", "a"]), memo).names
    assert other == ("c", "b", "a") and other is not first
    for bad, why in ((["a", "a"], "appears more than once"), (["a", ""], "empty name"), ([1], "NodeNames")):
        for _ in range(2):
            with pytest.raises(BadRequest, match=why):
                decode_scheduling_request(_args(bad), memo)
    assert decode_scheduling_request(_args(["c", "b", "a"]), memo).names is other
    nodes_form = json.dumps({"Pod": {}, "Nodes": {"items": []}}).encode()
    assert decode_scheduling_request(nodes_form, memo).objects is not None  # NodeNames absent = null
