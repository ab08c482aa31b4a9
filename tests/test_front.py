"""Where a request ends (extender/server/front.py): checked against every split of valid requests,
and against gunicorn's own parser on the same bytes."""

from __future__ import annotations

import io

import pytest
from gunicorn.config import Config
from gunicorn.http.parser import RequestParser
from hypothesis import given, settings
from hypothesis import strategies as st

from extender.server.front import HEADER_LIMIT, RequestScan, Verdict

LIMIT = 10_000

header_names = st.sampled_from([b"Host", b"Accept", b"User-Agent", b"X-Trace", b"Content-Type"])
header_values = st.binary(min_size=0, max_size=40).map(
    lambda b: bytes(c for c in b if 0x21 <= c <= 0x7E)  # visible ASCII: a valid field value
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A valid HTTP/1.1 request (bytes) and its body as the application should see it."""
    method = draw(st.sampled_from([b"GET", b"POST"]))
    body = draw(st.binary(max_size=300))
    headers = draw(st.lists(st.tuples(header_names, header_values), max_size=5, unique_by=lambda h: h[0]))
    framing = draw(st.sampled_from(["length", "chunked", "none"] if not body else ["length", "chunked"]))
    head = [method + b" /filter HTTP/1.1"] + [n + b": " + v for n, v in headers]
    if framing == "length":
        head.append(
            draw(st.sampled_from([b"Content-Length", b"content-length"])) + b": " + str(len(body)).encode()
        )
        payload = body
    elif framing == "chunked":
        head.append(b"Transfer-Encoding: chunked")
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True) if b > a]
        ext = draw(st.sampled_from([b"", b";name=value"]))
        payload = b"".join(b"%x%s\r\n%s\r\n" % (len(p), ext, p) for p in pieces)
        trailer = draw(st.sampled_from([b"", b"X-Trailer: 1\r\n"]))
        payload += b"0\r\n" + trailer + b"\r\n"
    else:
        payload = b""
    return b"\r\n".join(head) + b"\r\n\r\n" + payload, body


@given(requests(), st.binary(max_size=30), st.lists(st.integers(1, 400), max_size=30))
@settings(max_examples=300, deadline=None)
def test_the_scan_says_whole_exactly_at_the_request_end(
    request_body: tuple[bytes, bytes], after: bytes, steps: list[int]
) -> None:
    """Fed in any pieces, the scan says MORE until the last byte, then WHOLE with ``end`` there,
    whatever follows (a pipelined next request)."""
    raw, _ = request_body
    data = raw + after
    scan = RequestScan(LIMIT)
    seen, cut = 0, 0
    for step in [*steps, len(data)]:
        cut = min(cut + step, len(data))
        verdict = scan.feed(data[:cut])
        if cut < len(raw):
            assert verdict is Verdict.MORE, (cut, len(raw))
        else:
            assert verdict is Verdict.WHOLE and scan.end == len(raw)
            seen += 1
        if cut == len(data):
            break
    assert seen >= 1


@given(requests())
@settings(max_examples=200, deadline=None)
def test_gunicorn_reads_the_same_request_from_the_bytes_the_scan_called_whole(
    request_body: tuple[bytes, bytes],
) -> None:
    """The parser that will read these bytes agrees: one request, this body, nothing left over
    (so a thread given a WHOLE request never waits on the socket)."""
    raw, body = request_body
    scan = RequestScan(LIMIT)
    assert scan.feed(raw) is Verdict.WHOLE
    parser = RequestParser(Config(), [raw[: scan.end]], ("127.0.0.1", 1))
    req = next(parser)
    assert req.body.read() == body


@pytest.mark.parametrize(
    "head",
    [
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",  # repeated
        b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",  # smuggling shape
        b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (LIMIT + 1),  # the app's 413, from the header
    ],
)
def test_framing_the_parser_refuses_goes_to_the_parser_at_once(head: bytes) -> None:
    """No waiting for a body whose framing is wrong or too large: gunicorn or the app answers
    these from the headers (400, 413), so the scan hands them over without their body."""
    assert RequestScan(LIMIT).feed(head) is Verdict.PARSER


def test_a_malformed_chunk_goes_to_the_parser() -> None:
    head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert RequestScan(LIMIT).feed(head + b"zz\r\n") is Verdict.PARSER
    assert RequestScan(LIMIT).feed(head + b"3\r\nabcdef\r\n") is Verdict.PARSER  # data past its size
    assert RequestScan(LIMIT).feed(head + b"1" * 5000) is Verdict.PARSER  # no end of a size line


def test_limits() -> None:
    head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert RequestScan(LIMIT).feed(head + b"%x\r\n" % (LIMIT + 1)) is Verdict.BODY_TOO_LARGE
    assert RequestScan(LIMIT).feed(head + b"%x\r\n" % LIMIT) is Verdict.MORE
    big = b"GET / HTTP/1.1\r\n" + b"X-A: " + b"a" * HEADER_LIMIT
    assert RequestScan(LIMIT).feed(big) is Verdict.HEADERS_TOO_LARGE
    assert RequestScan(LIMIT).feed(big[: HEADER_LIMIT - 10]) is Verdict.MORE


def test_feeding_costs_the_new_bytes_not_the_buffer() -> None:
    """Headers arriving a byte at a time are searched once, not once per byte from the start
    (a quadratic scan would let a slow client cost the event loop CPU)."""
    raw = b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"p" * 30_000 + b"\r\n\r\n"
    scan = RequestScan(LIMIT)
    buf = io.BytesIO()
    searched = 0
    for i in range(0, len(raw), 7):
        buf.write(raw[i : i + 7])
        before = scan._searched
        scan.feed(buf.getvalue())
        searched += scan._searched - max(before - 3, 0) if scan.header_end < 0 else 0
    assert scan.header_end == len(raw)
    assert searched < 2 * len(raw)


def test_expect_continue_is_noticed() -> None:
    scan = RequestScan(LIMIT)
    scan.feed(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    assert scan.expects_continue
