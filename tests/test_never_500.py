"""Never a 500 (issue 17): every malformed request gets a 4xx with ``{"Error": ...}`` naming the
field, and one log line, for every verb and /explain, in both request forms; a filter answer
never echoes invalid UTF-8.

In-process (the WSGI app through Flask's test client), against real gunicorn for what only a
server sees (chunked framing), and a bounded fuzz of the golden requests' bytes.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extender.server.app import create_app
from extender.settings import Settings
from tests.test_golden import CLOCK, CachedSource, RecordingBinder

GOLDEN = Path(__file__).parent / "golden"
POD = b'{"metadata":{"name":"p","namespace":"d","uid":"u"},"spec":{"containers":[]}}'
NODE = b'{"metadata":{"name":"n1"},"status":{"allocatable":{"cpu":"4","memory":"8Gi","pods":"110"}}}'
DEEP = b"[" * 100_000 + b"]" * 100_000


def _nodes_client() -> Any:  # stateless: the Nodes form
    return create_app(Settings(api_access=False), binder=RecordingBinder(), clock=lambda: CLOCK).test_client()  # type: ignore[arg-type]


def _names_client() -> Any:  # a names-form source: the NodeNames form
    return create_app(
        Settings(api_access=False),
        source=CachedSource(),
        binder=RecordingBinder(),  # type: ignore[arg-type]
        clock=lambda: CLOCK,
    ).test_client()


NODES = _nodes_client()
NAMES = _names_client()
CLIENTS = {"nodes": NODES, "names": NAMES}


def _names_args(names: bytes) -> bytes:
    return b'{"Pod":' + POD + b',"NodeNames":' + names + b"}"


def _nodes_args(items: bytes, list_meta: bytes = b"{}") -> bytes:
    return b'{"Pod":' + POD + b',"Nodes":{"metadata":' + list_meta + b',"items":' + items + b"}}"


SCHEDULING = ("filter", "prioritize", "explain")
# (id, verbs, form, body, needle): each answered 500 (or, for the echo cases, 200 with invalid
# UTF-8 in the answer, or an int64 overflow echoed back) before issue 17
CASES: list[tuple[str, tuple[str, ...], str, bytes, str]] = [
    ("utf8-in-NodeNames", SCHEDULING, "names", _names_args(b'["n1","\xff"]'), "`NodeNames[1]`"),
    (
        "utf8-in-node-name",
        SCHEDULING,
        "nodes",
        _nodes_args(b'[{"metadata":{"name":"n\xff"}}]'),
        "items[0].metadata.name",
    ),
    (
        "utf8-in-node-skipped-field",  # echoed back by filter before
        SCHEDULING,
        "nodes",
        _nodes_args(b"[" + NODE[:-1] + b',"spec":{"x":"\xc3\x28"}}]'),
        "`Nodes.items[0].spec.x`",
    ),
    ("utf8-in-list-metadata", SCHEDULING, "nodes", _nodes_args(b"[]", b'{"x":"\xff"}'), "`Nodes.metadata.x`"),
    (
        "utf8-in-annotation",
        SCHEDULING,
        "nodes",
        _nodes_args(
            b'[{"metadata":{"name":"n1","annotations":{"load.extender.scheduling/cpu":"\xed\xa0\x80"}}}]'
        ),
        "annotations",
    ),
    (
        "utf8-in-pod",
        SCHEDULING,
        "nodes",
        b'{"Pod":{"metadata":{"name":"p\xff"}},"Nodes":{"items":[]}}',
        "`Pod.metadata.name`",
    ),
    ("utf8-in-pod-unknown-field", SCHEDULING, "names", b'{"Pod":{"x":"\xfe"},"NodeNames":["n1"]}', "`Pod.x`"),
    (
        "utf8-in-bind",
        ("bind",),
        "names",
        b'{"PodName":"p","PodNamespace":"d\xff","Node":"n1"}',
        "`PodNamespace`",
    ),
    (
        "utf8-in-preempt-meta",
        ("preempt",),
        "names",
        b'{"Pod":' + POD + b',"NodeNameToMetaVictims":{"n1":{"Pods":[{"UID":"\xff"}]}}}',
        "`NodeNameToMetaVictims.n1.Pods[0].UID`",
    ),
    (
        "utf8-in-preempt-victims",
        ("preempt",),
        "nodes",
        b'{"Pod":' + POD + b',"NodeNameToVictims":{"n1":{"Pods":[{"metadata":{"uid":"\xff"}}]}}}',
        "`NodeNameToVictims.n1.Pods[0].metadata.uid`",
    ),
    ("deep-NodeNames", SCHEDULING, "names", _names_args(DEEP), "nested too deeply"),
    # refused as not a Node object (the first item that is not one stops the decode), or as deep
    ("deep-node-item", SCHEDULING, "nodes", _nodes_args(b"[" + DEEP + b"]"), "`Nodes.items[0]"),
    (
        "deep-node-field",
        SCHEDULING,
        "nodes",
        _nodes_args(b"[" + NODE[:-1] + b',"spec":' + DEEP + b"}]"),
        "`Nodes.items[0].spec[0]",
    ),
    ("deep-list-metadata", SCHEDULING, "nodes", _nodes_args(b"[]", DEEP), "`Nodes.metadata[0]"),
    (
        "deep-pod-unknown-field",
        SCHEDULING,
        "nodes",
        b'{"Pod":{"x":' + DEEP + b'},"Nodes":{"items":[]}}',
        "`Pod.x[0]",
    ),
    (
        "deep-unknown-key",
        SCHEDULING,
        "names",
        b'{"Z":' + DEEP + b',"Pod":' + POD + b',"NodeNames":["n1"]}',
        "`Z[0]",
    ),
    (
        "deep-bind",
        ("bind",),
        "names",
        b'{"X":' + DEEP + b',"PodName":"p","PodNamespace":"d","Node":"n1"}',
        "`X[0]",
    ),
    (
        "deep-preempt",
        ("preempt",),
        "names",
        b'{"Pod":' + POD + b',"NodeNameToMetaVictims":{"n1":{"x":' + DEEP + b"}}}",
        "nested too deeply",
    ),
    (
        "int64-overflow-echoed",
        ("preempt",),
        "names",
        b'{"Pod":'
        + POD
        + b',"NodeNameToMetaVictims":{"n1":{"Pods":[],"NumPDBViolations":1'
        + b"0" * 40
        + b"}}}",
        "NumPDBViolations",
    ),
    ("node-item-not-object", SCHEDULING, "nodes", _nodes_args(b'["x"]'), "`Nodes.items[0]`"),
]
# malformed input that was already a 400: kept so that it stays one
CASES += [
    ("lone-surrogate-name", SCHEDULING, "names", _names_args(b'["\\ud800"]'), "not valid JSON"),
    (
        "lone-low-surrogate-node",
        SCHEDULING,
        "nodes",
        _nodes_args(b'[{"metadata":{"name":"\\udc00"}}]'),
        "not valid JSON",
    ),
    (
        "surrogate-skipped-field",
        SCHEDULING,
        "nodes",
        _nodes_args(b"[" + NODE[:-1] + b',"x":"\\ud800x"}]'),
        "not valid JSON",
    ),
    ("NaN", SCHEDULING, "names", _names_args(b'["n1"],"X":NaN'), "not valid JSON"),
    ("Infinity", SCHEDULING, "nodes", _nodes_args(b"[" + NODE[:-1] + b',"x":Infinity}]'), "not valid JSON"),
    (
        "huge-quantity",
        SCHEDULING,
        "nodes",
        b'{"Pod":{"spec":{"containers":[{"resources":{"requests":{"cpu":1e999}}}]}},"Nodes":{"items":[]}}',
        "Pod.spec",
    ),
    ("top-level-array", (*SCHEDULING, "bind", "preempt"), "names", b"[]", "Expected `object`"),
    ("top-level-string", (*SCHEDULING, "bind", "preempt"), "nodes", b'"x"', "Expected `object`"),
    ("top-level-null", (*SCHEDULING, "bind", "preempt"), "names", b"null", "Expected `object`"),
    ("trailing-bytes", (*SCHEDULING, "bind", "preempt"), "names", b"{} x", "not valid JSON"),
]


def _expand() -> list[Any]:
    return [
        pytest.param(verb, form, body, needle, id=f"{name}-{verb}")
        for name, verbs, form, body, needle in CASES
        for verb in verbs
    ]


@pytest.mark.parametrize(("verb", "form", "body", "needle"), _expand())
def test_malformed_input_gets_400_naming_the_field(verb: str, form: str, body: bytes, needle: str) -> None:
    r = CLIENTS[form].post(f"/{verb}", data=body)
    assert r.status_code == 400, r.data[:300]
    answer = json.loads(r.data.decode("utf-8"))
    assert list(answer) == ["Error"]
    assert needle in answer["Error"], answer["Error"][:300]


def test_a_rejected_request_is_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="extender"):
        r = NODES.post("/filter", data=_nodes_args(b'[{"metadata":{"name":"n\xff"}}]'))
    assert r.status_code == 400
    records = [rec for rec in caplog.records if rec.name.startswith("extender")]
    assert len(records) == 1 and records[0].levelno == logging.WARNING and records[0].exc_info is None
    assert "bad_request" in records[0].getMessage()


def test_a_filter_answer_echoes_valid_nodes_byte_for_byte() -> None:
    """The check is on the whole body, so the raw node objects echoed are valid UTF-8; valid
    non-ASCII text (and a surrogate pair) is echoed unchanged."""
    node = NODE[:-1] + ',"spec":{"x":"caf\u00e9 \u2603","y":"\\ud83d\\ude00"}}'.encode()
    r = NODES.post("/filter", data=_nodes_args(b"[" + node + b"]"))
    assert r.status_code == 200
    assert node in r.data and r.data.decode("utf-8")


# --- against gunicorn ---------------------------------------------------------------------


def _raw_exchange(url: str, request: bytes) -> bytes:
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(30)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    return reply


CHUNKED = (
    b"POST /filter HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
GOOD = _nodes_args(b"[]")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("framing", "status", "needle"),
    [
        (b"zz\r\n" + GOOD + b"\r\n0\r\n\r\n", b"400", b"InvalidChunkSize"),
        (b"%x\r\n" % len(GOOD) + GOOD + b"XX0\r\n\r\n", b"400", b"ChunkMissingTerminator"),
        (b"%x\r\n" % len(GOOD) + GOOD + b"\r\n", b"400", b"last, zero-size, chunk"),  # no terminating chunk
    ],
    ids=["invalid-chunk-size", "chunk-without-crlf", "no-terminating-chunk"],
)
def test_bad_chunk_framing_gets_4xx(extender_url: str, framing: bytes, status: bytes, needle: bytes) -> None:
    reply = _raw_exchange(extender_url, CHUNKED + framing)
    assert reply.startswith(b"HTTP/1.1 " + status), reply[:300]
    _head, _, body = reply.partition(b"\r\n\r\n")
    assert needle in body and list(json.loads(body)) == ["Error"]


@pytest.mark.timeout(60)
def test_good_chunked_body_is_answered(extender_url: str) -> None:
    reply = _raw_exchange(extender_url, CHUNKED + b"%x\r\n" % len(GOOD) + GOOD + b"\r\n0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200"), reply[:300]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("verb", "body", "needle"),
    [
        ("filter", _nodes_args(b'[{"metadata":{"name":"n\xff"}}]'), "not valid UTF-8"),
        ("prioritize", b'{"Pod":{"x":' + DEEP + b'},"Nodes":{"items":[]}}', "nested too deeply"),
        ("bind", b'{"PodName":"\xff"}', "`PodName`"),
    ],
    ids=["utf8", "deep", "bind-utf8"],
)
def test_malformed_input_under_gunicorn(extender_url: str, verb: str, body: bytes, needle: str) -> None:
    """In a gunicorn request thread (its own stack) as in-process."""
    request = (
        f"POST /{verb} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + body
    )
    reply = _raw_exchange(extender_url, request)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:300]
    assert needle in json.loads(reply.partition(b"\r\n\r\n")[2])["Error"]


# --- fuzz -----------------------------------------------------------------------------------

GOLDEN_REQUESTS = {
    "filter-names": ("names", ("filter", "explain")),
    "prioritize-names": ("names", ("prioritize",)),
    "filter-nodes": ("nodes", ("filter", "explain")),
    "prioritize-nodes": ("nodes", ("prioritize",)),
    "bind": ("names", ("bind",)),
    "preempt-meta": ("names", ("preempt",)),
    "preempt-victims": ("nodes", ("preempt",)),
}
SEEDS = [
    (form, verb, (GOLDEN / f"{name}.request.json").read_bytes().strip())
    for name, (form, verbs) in GOLDEN_REQUESTS.items()
    for verb in verbs
]
NASTY = [
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\\ud800",
    b"\\udc00",
    b"[" * 2000,
    b"{" * 2000,
    b'{"a":' * 1500,
    b"NaN",
    b"-Infinity",
    b"1e999",
    b"9" * 400,
    b"null",
    b'"',
    b"\\",
    b",",
    b"]",
    b"}",
    b":",
    b"\x00",
    b'"\xff":1,',
]


@st.composite
def mutated(draw: Any) -> tuple[str, str, bytes]:
    form, verb, body = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(body)))
        kind = draw(st.integers(0, 3))
        if kind == 0:  # insert something nasty
            body = body[:at] + draw(st.sampled_from(NASTY)) + body[at:]
        elif kind == 1:  # replace bytes by random ones
            new = draw(st.binary(min_size=1, max_size=4))
            body = body[:at] + new + body[at + len(new) :]
        elif kind == 2:  # delete a run
            body = body[:at] + body[at + draw(st.integers(1, 8)) :]
        else:  # duplicate a run (duplicate keys, repeated values)
            end = at + draw(st.integers(1, 40))
            body = body[:end] + body[at:end] + body[end:]
    return form, verb, body


FUZZ_EXAMPLES = int(os.environ.get("NEVER_500_EXAMPLES", "300"))


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=FUZZ_EXAMPLES <= 300,  # in the suite: the same examples every run
)
@given(mutated())
def test_mutated_golden_requests_never_get_a_500(case: tuple[str, str, bytes]) -> None:
    """Any byte mutation of a golden request: 200 or 4xx, never 500; a 4xx is ``{"Error": ...}``;
    every answer is valid UTF-8 JSON (a filter answer echoes nodes). ``NEVER_500_EXAMPLES``
    raises the count for a longer hunt."""
    form, verb, body = case
    r = CLIENTS[form].post(f"/{verb}", data=body)
    assert r.status_code == 200 or 400 <= r.status_code < 500, (r.status_code, r.data[:300], body[:300])
    answer = json.loads(r.data.decode("utf-8"))
    if r.status_code != 200:
        assert list(answer) == ["Error"]
