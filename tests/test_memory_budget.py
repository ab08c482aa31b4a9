"""Issue 17, a memory budget: one setting (EXTENDER_MEMORY_BUDGET_BYTES) bounds the body a verb
accepts, and the decision log in bytes; a call's decoded request is not kept after it."""

from __future__ import annotations

import gc
import io
import json
import socket
import tracemalloc
from typing import Any

import pytest
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
    assert r.get_json()["Error"].startswith("request has 1025 nodes, more than the 1024")
    ok = json.dumps({"Pod": POD, "Nodes": {"items": [{"metadata": {"name": f"n{i}"}} for i in range(1024)]}})
    assert client.post("/prioritize", data=ok.encode(), content_type="application/json").status_code == 200
