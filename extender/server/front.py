"""Where one HTTP/1.1 request ends in the bytes read so far: the event loop's half of the server.

The worker (``extender/server/worker.py``) reads every request in its event loop, without a
thread, and gives a pool thread only a request that is whole in memory. A client that sends
nothing, or a byte a second, then costs a buffer and a deadline, never one of the few threads
kube-scheduler's own calls need. ``RequestScan`` tells the loop when to stop reading: it is fed
the buffer as it grows and answers

- ``MORE``: the request is not whole yet;
- ``WHOLE``: it is (its last byte is ``end``), hand it to a thread;
- ``PARSER``: hand it over now although it may not be whole, because gunicorn's parser
  answers it without reading on (malformed framing, a body over the limit: a 400 or a 413 that
  needs no more bytes);
- ``HEADERS_TOO_LARGE``: no end of headers within ``header_limit`` bytes (431);
- ``BODY_TOO_LARGE``: a chunked body announces more than ``body_limit`` bytes (413; a body
  whose Content-Length is too large goes to the parser instead: the app answers it from the
  header alone, with the metrics of its verb).

It looks only at framing (RFC 9112 section 6: Content-Length, chunked Transfer-Encoding);
anything it does not understand goes to the parser, which stays the one authority on what is
valid. Pure: bytes in, a verdict out; tests/test_front.py checks it against every split of
valid requests.
"""

from __future__ import annotations

import enum
import re

from extender.settings import BODY_WORKING_SET_FACTOR

HEADER_END = b"\r\n\r\n"
HEADER_LIMIT = 64 * 1024
"""Request line and headers of one request, bytes: kube-scheduler sends a few hundred; gunicorn's
own per-line limits (4,094 bytes per line, 8,190 per field) apply after this one."""
CHUNK_LINE_LIMIT = 4096  # a chunk-size line (hex size, extensions) longer than this is malformed

_FRAMING = re.compile(rb"^(content-length|transfer-encoding):[ \t]*(.*?)[ \t]*\r?$", re.I | re.M)
_CONTINUE = re.compile(rb"^expect:[ \t]*100-continue[ \t]*\r?$", re.I | re.M)


def too_large_message(body_limit: int) -> str:
    """The 413's ``Error``, whether the event loop or the app refuses the body."""
    return (
        f"request body larger than {body_limit} bytes, the limit that fits this extender's "
        f"memory (EXTENDER_MAX_BODY_BYTES, else EXTENDER_MEMORY_BUDGET_BYTES / {BODY_WORKING_SET_FACTOR}); "
        "refused before decoding"
    )


class Verdict(enum.Enum):
    MORE = "more"
    WHOLE = "whole"
    PARSER = "parser"
    HEADERS_TOO_LARGE = "headers_too_large"
    BODY_TOO_LARGE = "body_too_large"


class RequestScan:
    """The framing of one request, learnt as its bytes arrive. ``feed`` is called with the whole
    buffer each time (it only grows), and costs the new bytes, not the buffer: it resumes where
    it stopped."""

    def __init__(self, body_limit: int, header_limit: int = HEADER_LIMIT) -> None:
        self.body_limit = body_limit
        self.header_limit = header_limit
        self.header_end = -1  # offset just past the blank line ending the headers, once seen
        self.end = -1  # offset just past the request's last byte, once WHOLE
        self.expects_continue = False  # ``Expect: 100-continue``: the client waits for a 100
        self._searched = 0  # header search resumes here
        self._length = 0  # Content-Length (0 when chunked or absent)
        self._chunks: _Chunks | None = None

    def feed(self, buf: bytes | bytearray) -> Verdict:
        if self.end >= 0:
            return Verdict.WHOLE
        if self.header_end < 0:
            found = buf.find(HEADER_END, max(self._searched - 3, 0))
            if found < 0:
                self._searched = len(buf)
                return Verdict.HEADERS_TOO_LARGE if len(buf) > self.header_limit else Verdict.MORE
            if found + 4 > self.header_limit:
                return Verdict.HEADERS_TOO_LARGE
            self.header_end = found + 4
            framing = self._framing(bytes(buf[: self.header_end]))
            if framing is not None:
                return framing
        if self._chunks is not None:
            verdict, end = self._chunks.feed(buf)
            if verdict is Verdict.WHOLE:
                self.end = end
            return verdict
        if len(buf) >= self.header_end + self._length:
            self.end = self.header_end + self._length
            return Verdict.WHOLE
        return Verdict.MORE

    def _framing(self, head: bytes) -> Verdict | None:
        """Read the body's framing from the headers; a verdict when they settle it at once."""
        fields: dict[bytes, list[bytes]] = {}
        for name, value in _FRAMING.findall(head):
            fields.setdefault(name.lower(), []).append(value)
        self.expects_continue = bool(_CONTINUE.search(head))
        lengths, codings = fields.get(b"content-length", []), fields.get(b"transfer-encoding", [])
        if codings:
            if lengths or [c.lower() for c in codings] != [b"chunked"]:
                return Verdict.PARSER  # ambiguous or unsupported framing: the parser refuses it
            self._chunks = _Chunks(self.header_end, self.body_limit)
            return None
        if not lengths:
            return None  # no body
        if len(lengths) > 1 or not lengths[0].isdigit() or len(lengths[0]) > 18:
            return Verdict.PARSER
        self._length = int(lengths[0])
        if self._length > self.body_limit:
            return Verdict.PARSER  # the app answers 413 from the header alone
        return None


class _Chunks:
    """Where a chunked body ends (RFC 9112 section 7.1): size lines, data, the zero-size chunk,
    trailer fields, a blank line."""

    def __init__(self, start: int, body_limit: int) -> None:
        self.at = start  # the next unread byte
        self.body = 0  # data bytes so far
        self.body_limit = body_limit
        self.state = "size"  # size | data | data_end | trailer
        self.left = 0  # data bytes left in the current chunk

    def feed(self, buf: bytes | bytearray) -> tuple[Verdict, int]:
        while True:
            if self.state == "data":
                take = min(self.left, len(buf) - self.at)
                self.at += take
                self.left -= take
                if self.left:
                    return Verdict.MORE, -1
                self.state = "data_end"
            line_end = buf.find(b"\r\n", self.at)
            if line_end < 0:
                if len(buf) - self.at > CHUNK_LINE_LIMIT:
                    return Verdict.PARSER, -1
                return Verdict.MORE, -1
            line = bytes(buf[self.at : line_end])
            self.at = line_end + 2
            if self.state == "data_end":
                if line:
                    return Verdict.PARSER, -1  # data longer than its size
                self.state = "size"
            elif self.state == "size":
                size = line.split(b";", 1)[0].strip()
                if not size or len(size) > 16 or any(c not in b"0123456789abcdefABCDEF" for c in size):
                    return Verdict.PARSER, -1
                self.left = int(size, 16)
                self.body += self.left
                if self.body > self.body_limit:
                    return Verdict.BODY_TOO_LARGE, -1
                self.state = "data" if self.left else "trailer"
            elif not line:  # state "trailer": the blank line ends the message
                return Verdict.WHOLE, self.at
