"""Issue 17, a memory budget: one setting (EXTENDER_MEMORY_BUDGET_BYTES) bounds the body a verb
accepts, and the decision log in bytes; a call's decoded request is not kept after it."""

from __future__ import annotations

import contextlib
import gc
import io
import json
import re
import socket
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.exceptions import HTTPException

from extender.server.app import _read_body, create_app
from extender.settings import BODY_WORKING_SET_FACTOR, MiB, Settings, SettingsError
from tests.conftest import running_extender

POD = {"metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": {"containers": []}}


def nodes_body(names: list[str], uid: str = "u") -> bytes:
    pod = dict(POD, metadata=dict(POD["metadata"], uid=uid))  # type: ignore[arg-type]
    return json.dumps({"Pod": pod, "Nodes": {"items": [{"metadata": {"name": n}} for n in names]}}).encode()


def stateless(**kw: Any) -> Settings:
    return Settings(api_access=False, cache=False, **kw)


def test_the_default_body_limit_fits_a_1_gib_container() -> None:
    s = Settings()
    assert s.memory_budget_bytes == 768 * MiB
    assert s.body_limit == 768 * MiB // BODY_WORKING_SET_FACTOR == 24 * MiB
    # the old fixed 128 MiB limit would let one call's working set reach ~4 GB
    assert s.body_limit * BODY_WORKING_SET_FACTOR <= s.memory_budget_bytes < 1024 * MiB
    assert Settings.from_env({"EXTENDER_MEMORY_BUDGET_BYTES": str(64 * MiB)}).body_limit == 2 * MiB


def test_an_explicit_body_limit_that_does_not_fit_the_budget_is_refused_at_start() -> None:
    assert Settings.from_env({"EXTENDER_MAX_BODY_BYTES": "1000"}).body_limit == 1000
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"EXTENDER_MAX_BODY_BYTES": str(128 * MiB)})
    assert "EXTENDER_MAX_BODY_BYTES" in str(err.value) and "EXTENDER_MEMORY_BUDGET_BYTES" in str(err.value)
    with pytest.raises(SettingsError, match="EXTENDER_MEMORY_BUDGET_BYTES"):
        Settings.from_env({"EXTENDER_MEMORY_BUDGET_BYTES": "0"})


def test_a_body_within_the_old_limit_but_beyond_the_budget_gets_413_before_decoding() -> None:
    client = create_app(stateless()).test_client()
    body = nodes_body(["n"]) + b" " * (25 * MiB)  # under 128 MiB, over 768 MiB / 32
    tracemalloc.start()
    try:
        r = client.post("/filter", data=body, content_type="application/json")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status_code == 413
    error = r.get_json()["Error"]
    assert str(24 * MiB) in error and "EXTENDER_MEMORY_BUDGET_BYTES" in error
    assert peak < 4 * MiB  # the body was never read, let alone decoded


def test_a_chunked_body_beyond_the_limit_gets_413_while_it_is_read() -> None:
    """No Content-Length (gunicorn de-chunks and marks the input terminated): the read stops
    past the limit."""
    body = nodes_body([f"n{i}" for i in range(100)])
    environ = {"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True}
    with pytest.raises(HTTPException) as err:
        _read_body(environ, 1000, 5.0)
    assert err.value.code == 413 and "larger than 1000 bytes" in str(err.value.description)
    environ = {"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True}
    assert _read_body(environ, len(body), 5.0) == body


def test_the_decoded_request_is_not_kept_after_the_call() -> None:
    """Before: ``Verbs._last`` kept the request, its Node objects included, until the next call
    (the issue's 120 MiB body kept 1.8 GB). What stays is the node table that preempt and
    prioritize reuse; the decoded Node objects are released."""
    client = create_app(stateless(decisions=0)).test_client()
    body = nodes_body([f"n{i}" for i in range(50_000)])
    client.post("/filter", data=nodes_body(["warm"]), content_type="application/json")
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        r = client.post("/filter", data=body, content_type="application/json")
        assert r.status_code == 200
        del r
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - base
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    from_decoder = sum(
        s.size for s in snapshot.statistics("filename") if s.traceback[0].filename.endswith("wire.py")
    )
    nodes = 50_000
    print(f"retained {retained / nodes:.0f} B/node, from the decoder {from_decoder / nodes:.0f} B/node")
    assert from_decoder < 80 * nodes, (from_decoder, retained)  # the names, not the Node objects


def test_the_decision_log_is_bounded_in_bytes() -> None:
    """The issue: 300 calls over 10,000 long names took the log from 126 MB to 829 MB; the log
    kept every name of its last 256 pods. Now it keeps what fits its share of the budget."""
    budget = 64 * MiB
    app = create_app(stateless(memory_budget_bytes=budget))
    client = app.test_client()
    log = app.extensions["extender"]["decisions"]
    names = [f"node-{'x' * 200}-{i}" for i in range(2_000)]
    body_bytes = 0
    for k in range(40):
        body = nodes_body(names, uid=f"uid-{k}")
        body_bytes = len(body)
        assert client.post("/prioritize", data=body, content_type="application/json").status_code == 200
    kept = log._items  # what it retains: each decision's names
    held = sum(sum(map(len, d.names)) for d in kept.values())
    assert log.bytes <= budget // 16
    assert held <= budget // 16, held
    assert 1 <= len(kept) < 40  # the oldest went; the newest are there
    assert next(reversed(kept)) == "uid-39"
    assert client.get("/debug/decisions/uid-39").get_json()["prioritize"]["nodes"] == len(names)
    assert client.get("/debug/decisions/uid-0").status_code == 404
    assert body_bytes > 0


@pytest.mark.timeout(60)
def test_gunicorn_refuses_a_chunked_body_past_the_limit_with_413() -> None:
    """Before: werkzeug's limited stream cut a chunked body at the limit without a word, and the
    truncated JSON got a 400 about its syntax."""
    body = nodes_body([f"n{i}" for i in range(100)])
    with running_extender("--no-api", env={"EXTENDER_MAX_BODY_BYTES": "1000"}) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as s:
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:500], body[500:]))
            s.sendall(
                b"POST /filter HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
            )
            s.settimeout(10)
            reply = b""
            while b"}" not in reply:
                chunk = s.recv(4096)
                assert chunk, reply
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 413"), reply
        assert b"larger than 1000 bytes" in reply and b'"Error"' in reply


@pytest.mark.parametrize("form", ["NodeNames", "Nodes"])
def test_more_nodes_than_the_budget_allows_get_413_before_they_are_decoded(form: str) -> None:
    """A NodeNames list of 1,000,000 short names is 11 MB of body, within the byte limit, but
    126 B per name to decode alone: the nodes per call are bounded too (budget / 8 KiB)."""
    settings = stateless(memory_budget_bytes=8 * MiB)  # 1,024 nodes, 256 KiB of body
    assert settings.max_nodes == 1024 and settings.body_limit == 256 * 1024
    client = create_app(settings).test_client()
    items: list[Any] = [f"n{i}" for i in range(1025)]
    if form == "Nodes":
        items = [{} for _ in items]  # the cheapest node object: 3 bytes of body
    body = json.dumps({"Pod": POD, form: {"items": items} if form == "Nodes" else items}).encode()
    assert len(body) < settings.body_limit
    r = client.post("/prioritize", data=body, content_type="application/json")
    assert r.status_code == 413, r.data
    error = r.get_json()["Error"]
    assert error.startswith(f"request has 1025 nodes in `{form}"), error
    assert "more than the 1024 one call may have" in error
    ok = json.dumps({"Pod": POD, "Nodes": {"items": [{"metadata": {"name": f"n{i}"}} for i in range(1024)]}})
    assert client.post("/prioritize", data=ok.encode(), content_type="application/json").status_code == 200


# --- the node count, found before anything is built per node --------------------------------

BODY = 2 * MiB  # 700,000 items of `{},`: far beyond the default 98,304 nodes per call
POD_JSON = json.dumps(POD).encode()


def filled(prefix: bytes, unit: bytes, suffix: bytes, size: int = BODY) -> bytes:
    """``prefix`` + ``unit`` repeated (its last byte, a separator, dropped) + ``suffix``: ``size`` bytes."""
    n = (size - len(prefix) - len(suffix)) // len(unit)
    return prefix + (unit * n)[:-1] + suffix


def distinct_members(value: bytes, size: int = BODY) -> bytes:
    """``"0":value,"1":value,...`` up to ``size`` bytes: an object's members, each key its own."""
    out, i, total = [], 0, 0
    while total < size:
        out.append(b'"%x":%s' % (i, value))
        total += len(out[-1]) + 1
        i += 1
    return b",".join(out)


def tiny(key: str, unit: bytes, first: bytes = b"") -> bytes:
    """ExtenderArgs (or preempt's) with ``key`` holding ``first`` then ``unit`` up to ``BODY`` bytes."""
    if key.startswith("NodeNameTo"):
        return b'{"Pod":' + POD_JSON + b',"%s":{' % key.encode() + distinct_members(unit) + b"}}"
    head, tail = (b'"Nodes":{"items":[', b"]}}") if key == "Nodes" else (b'"NodeNames":[', b"]}")
    return filled(b'{"Pod":' + POD_JSON + b"," + head + first, unit, tail)


TOO_MANY = (413, "request has ")
NOT_A_NODE = (400, "invalid ExtenderArgs: Expected `object`, got ")  # ... at `Nodes.items[0]`
TINY_ITEMS = {
    "nodes-empty-objects": ("/filter", tiny("Nodes", b"{},"), TOO_MANY),
    "nodes-numbers": ("/prioritize", tiny("Nodes", b"1,"), NOT_A_NODE),
    "nodes-nested-arrays": ("/filter", tiny("Nodes", b"[[]],"), NOT_A_NODE),
    "nodes-then-numbers": ("/filter", tiny("Nodes", b"1,", first=b"{}," * 90_000), NOT_A_NODE),
    "names-one-character": ("/filter", tiny("NodeNames", b'"a",'), TOO_MANY),
    "explain-empty-objects": ("/explain", tiny("Nodes", b"{},"), TOO_MANY),
    "preempt-victims-map": ("/preempt", tiny("NodeNameToVictims", b"{}"), TOO_MANY),
    "preempt-meta-map": ("/preempt", tiny("NodeNameToMetaVictims", b"{}"), TOO_MANY),
}


@pytest.mark.parametrize("case", sorted(TINY_ITEMS))
def test_a_body_of_tiny_nodes_gets_413_before_they_are_built(case: str) -> None:
    """Before: ``Nodes.items`` of 2 MiB of ``{},`` built 700,000 raw items (64 B each) before
    they were counted, 24x the body (the 24 MiB body limit: 579 MiB; of ``1,`` 36x, 875 MiB);
    preempt's maps were not counted at all (25x, then decoded and answered). tracemalloc counts
    every allocation, so the bound is exact on any machine: what a call may build for a
    refused body is a small multiple of the body (its copies as read, the pre-scan's). Items
    that are not objects are refused as such (400) at the first one, which is as cheap."""
    path, body, (status, error) = TINY_ITEMS[case]
    assert BODY - 1024 <= len(body) <= BODY + 1024
    client = create_app(stateless()).test_client()
    client.post("/filter", data=nodes_body(["warm"]), content_type="application/json")
    gc.collect()
    tracemalloc.start()
    try:
        r = client.post(path, data=body, content_type="application/json")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status_code == status, r.data[:300]
    assert r.get_json()["Error"].startswith(error), r.get_json()
    print(f"{case}: peak {peak / len(body):.1f}x the body")
    assert peak < 4 * len(body), f"{case}: peak {peak / MiB:.1f} MiB for a {len(body) / MiB:.1f} MiB body"


def test_preempt_and_explain_refuse_more_nodes_than_a_call_may_have_with_413() -> None:
    """Before: only filter and prioritize counted their nodes; a preempt of any number of
    candidates was decoded and judged, and ``/explain?node=...`` took any number of names."""
    settings = stateless(memory_budget_bytes=8 * MiB)  # 1,024 nodes
    client = create_app(settings).test_client()
    victims = {f"n{i}": {"Pods": [], "NumPDBViolations": 0} for i in range(1025)}
    for key in ("NodeNameToVictims", "NodeNameToMetaVictims"):
        r = client.post(
            "/preempt", data=json.dumps({"Pod": POD, key: victims}), content_type="application/json"
        )
        assert r.status_code == 413, r.data
        error = r.get_json()["Error"]
        assert error.startswith("request has 1025 nodes") and f"`{key}`" in error and "the 1024" in error
    del victims["n0"]
    body = json.dumps({"Pod": POD, "NodeNameToVictims": victims})
    assert client.post("/preempt", data=body, content_type="application/json").status_code == 200

    ok = nodes_body([f"n{i}" for i in range(1024)])
    query = "&".join(f"node=n{i}" for i in range(1025))
    r = client.post(f"/explain?{query}", data=ok, content_type="application/json")
    assert r.status_code == 413, r.data[:300]
    assert r.get_json()["Error"].startswith("request has 1025 nodes") and "`?node=`" in r.get_json()["Error"]
    r = client.post(f"/explain?{query.rsplit('&', 1)[0]}", data=ok, content_type="application/json")
    assert r.status_code == 200 and len(r.get_json()["nodes"]) == 1024
    r = client.post(
        "/explain", data=nodes_body([f"n{i}" for i in range(1025)]), content_type="application/json"
    )
    assert r.status_code == 413 and r.get_json()["Error"].startswith("request has 1025 nodes")


def test_names_holding_commas_quotes_and_brackets_are_counted_as_names() -> None:
    """Before: a NodeNames list was counted by its commas, so one name holding commas (legal
    JSON; the extender answers it as any name) counted as many nodes and was refused."""
    from extender.protocol.wire import decode_scheduling_request

    names = ["a,b,c,d,e,f", 'q"u,o"te', "[x,y]", "{k:v,w}", "back\\,slash\\", "é,😀"]
    body = json.dumps({"Pod": POD, "NodeNames": names}).encode()
    assert decode_scheduling_request(body, max_nodes=len(names)).names == tuple(names)
    items = [{"metadata": {"name": n, "annotations": {"a,b": "[{,}]"}}} for n in names]
    body = json.dumps({"Pod": POD, "Nodes": {"items": items}}).encode()
    assert decode_scheduling_request(body, max_nodes=len(names)).names == tuple(names)


# Strings with every byte that matters to a scanner of JSON text: separators, brackets, quotes,
# backslashes (escaped on the wire), control characters and multi-byte UTF-8
_NASTY = st.text(
    st.sampled_from(list(',:"\\[]{} \n\t/u0é€😀') + ["\x00", "\x1f"])
    | st.characters(blacklist_categories=("Cs",)),
    max_size=6,
)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _NASTY,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_NASTY, inner, max_size=4),
    max_leaves=12,
)
_NAMES = st.lists(_NASTY.filter(bool), unique=True, max_size=12)
_ENCODINGS = st.sampled_from(
    [
        {},
        {"separators": (",", ":")},
        {"ensure_ascii": False},
        {"indent": 1},
        {"indent": "\t", "ensure_ascii": False},
    ]
)


def _encode(value: object, encoding: dict[str, Any]) -> bytes:
    return json.dumps(value, **encoding).encode()


def assert_refused_for(error: str, count: int, max_nodes: int) -> None:
    """``error`` says ``count`` nodes, or when the scan stopped early at least some past ``max_nodes``."""
    said = re.match(r"request has (at least )?(\d+) nodes in `", error)
    assert said, error
    assert int(said[2]) == count if not said[1] else max_nodes < int(said[2]) <= count, error


def assert_exact_verdict(
    decode: Callable[[], Iterable[str]], names: list[str], max_nodes: int, how: tuple[int, int]
) -> None:
    """``decode`` (counted as ``how`` says) refuses exactly when there are more ``names`` than
    ``max_nodes``, else gives every one of them."""
    from extender.protocol.wire import TooManyNodes

    try:
        with counted(how):
            decoded = list(decode())
    except TooManyNodes as exc:
        assert len(names) > max_nodes, exc
        assert_refused_for(str(exc), len(names), max_nodes)
    else:
        assert len(names) <= max_nodes
        assert decoded == names


# How the count is found: the scan's chunk (7 bytes: every string, escape and bracket may straddle
# two), and the bytes per object from which msgspec probes instead (0: always; 10**9: never)
_HOW = st.tuples(st.sampled_from([7, 64, 1 << 17]), st.sampled_from([0, 128, 10**9]))


@contextlib.contextmanager
def counted(how: tuple[int, int]) -> Iterator[None]:
    from extender.protocol import counting, wire

    chunk, sparse = how
    with (
        mock.patch.object(counting, "_CHUNK", chunk),
        mock.patch.object(counting, "SPARSE", sparse),
        mock.patch.object(wire, "SPARSE", sparse),
    ):
        yield


@given(
    value=st.lists(_JSON, max_size=8) | st.dictionaries(_NASTY, _JSON, max_size=8),
    encoding=_ENCODINGS,
    how=_HOW,
)
@settings(max_examples=300, deadline=None)
def test_the_scan_counts_the_members_of_any_json_container(
    value: list[Any] | dict[str, Any], encoding: dict[str, Any], how: tuple[int, int]
) -> None:
    from extender.protocol.counting import count_members

    text = _encode(value, encoding)
    with counted(how):
        assert count_members(text) == (len(value), True)
        if value:  # stopped early (past a chunk) only beyond the bound, never below the count
            count, exact = count_members(text, stop_above=len(value) - 1)
            assert (count, exact) == (len(value), True) or (
                not exact and len(value) - 1 < count <= len(value)
            )


@given(
    names=_NAMES,
    extra=st.lists(_JSON, max_size=12),
    max_nodes=st.integers(0, 14),
    encoding=_ENCODINGS,
    form=st.sampled_from(["Nodes", "NodeNames"]),
    how=_HOW,
)
@settings(max_examples=400, deadline=None)
def test_the_node_count_of_a_filter_or_prioritize_is_exact(
    names: list[str],
    extra: list[Any],
    max_nodes: int,
    encoding: dict[str, Any],
    form: str,
    how: tuple[int, int],
) -> None:
    """For any legal ExtenderArgs, whatever its nodes and names hold: refused (TooManyNodes)
    exactly when it has more nodes than ``max_nodes``, else decoded with every node."""
    from extender.protocol.wire import decode_scheduling_request

    if form == "Nodes":
        items = [
            {"metadata": {"name": n, "annotations": {n: n}}, "extra": x}
            for n, x in zip(names, extra + [None] * len(names), strict=False)
        ]
        value: dict[str, Any] = {"Pod": POD, "Nodes": {"metadata": {"x": extra}, "items": items}}
    else:
        value = {"Pod": dict(POD, extra=extra), "NodeNames": names}
    body = _encode(value, encoding)
    assert_exact_verdict(
        lambda: decode_scheduling_request(body, max_nodes=max_nodes).names, names, max_nodes, how
    )


@given(
    names=_NAMES, extra=_JSON, max_nodes=st.integers(0, 14), encoding=_ENCODINGS, meta=st.booleans(), how=_HOW
)
@settings(max_examples=300, deadline=None)
def test_the_node_count_of_a_preempt_is_exact(
    names: list[str], extra: Any, max_nodes: int, encoding: dict[str, Any], meta: bool, how: tuple[int, int]
) -> None:
    from extender.protocol.wire import decode_preemption_request

    if meta:
        key, victims = "NodeNameToMetaVictims", {"Pods": [{"UID": "u,1", "x": extra}], "NumPDBViolations": 1}
    else:
        key, victims = "NodeNameToVictims", {"Pods": [dict(POD, extra=extra)], "NumPDBViolations": 0}
    value = {"Pod": POD, key: {n: dict(victims, extra=extra) for n in names}}
    body = _encode(value, encoding)
    assert_exact_verdict(
        lambda: decode_preemption_request(body, max_nodes=max_nodes).candidates, names, max_nodes, how
    )
