"""How many nodes a request holds, read from its JSON text before any node is decoded.

A body within the byte limit can still hold millions of tiny items (``{},`` is 3 bytes, a
decoded one 64 or more): decoded first and counted after, the largest body built ~25-37x its
size before the 413. So each collection of nodes (``Nodes.items``, ``NodeNames``, preempt's
maps) is counted on its bytes, at C or numpy speed and in bounded memory, in three steps:

1. its length, then its commas: a member and its comma take 2 bytes at least, and one more
   than the commas bounds any JSON container's members (the hot path, a names-form list of
   5,000 names, ~65 KB, is too short to hold 98,304: nothing is counted);
2. a bound on the members of the one kind the decoder that follows accepts (one ``{`` per
   object, two ``"`` per string): that decoder refuses the first member of another kind, so it
   never builds more (full Node objects hold ~220 commas but ~67 ``{`` each: up to ~1,470 of
   them within the default 98,304);
3. else exactly: objects spread over 128 bytes or more each are counted by msgspec as empty
   probes (``_probe``: 16 bytes each, under their text); anything denser by a scan of the
   text (``count_members``), which stops once past the limit.

Steps 1 and 2 only ever over-estimate, and step 3 is exact up to the limit, so a request is
refused exactly when it has more members than the limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

import msgspec
import numpy as np

from extender.kube.objects import BadRequest

OBJECTS = b"{"
"""Members that must be JSON objects (Node objects; the victims of preempt's maps)."""
STRINGS = b'"'
"""Members that must be JSON strings (NodeNames)."""

# Bytes scanned per numpy step: the scan holds ~8 bytes per byte of one chunk, whatever the text
_CHUNK = 1 << 17
_SMALL = 1 << 16  # below this, bytes.count (one C loop) beats setting up numpy
_QUOTE, _COMMA, _OPEN, _CLOSE = ord('"'), ord(","), ord("{"), ord("}")  # [ | 0x20 is {, ] | 0x20 is }
_EMPTY = re.compile(rb"[\[{][ \t\r\n]*[\]}]")


class TooManyNodes(BadRequest):
    """More nodes than the memory budget allows in one call (the HTTP edge answers 413); found
    before the nodes are decoded."""

    def __init__(self, count: int, limit: int, where: str, *, exact: bool = True) -> None:
        super().__init__(
            f"request has {'' if exact else 'at least '}{count} nodes in `{where}`, more than the "
            f"{limit} one call may have within this extender's memory "
            "(EXTENDER_MEMORY_BUDGET_BYTES / 8 KiB per node)"
        )


def check_members(text: bytes, limit: int, kind: bytes, where: str) -> None:
    """``TooManyNodes`` when the JSON array or object ``text`` has more than ``limit`` members.

    ``text`` is valid JSON (as msgspec keeps a value raw: nesting within its bound), and the
    decoder that follows accepts only members of ``kind`` (``OBJECTS``: for an object, its
    members' values; ``STRINGS``), refusing the first of any other kind. Any other value than
    an array or object has no members here (the decoder refuses it)."""
    typed = typed_bound(text, limit, kind)
    if typed is None:
        return
    count = (
        probe_count(_probe_decoder, text, len) if kind == OBJECTS and len(text) >= SPARSE * typed else None
    )
    exact = True
    if count is None:
        count, exact = count_members(text, stop_above=limit)
    if count > limit:
        raise TooManyNodes(count, limit, where, exact=exact)


def typed_bound(text: bytes, limit: int, kind: bytes) -> int | None:
    """None when steps 1 or 2 show that ``text`` has at most ``limit`` members (of ``kind``, as
    in ``check_members``); else step 2's bound, above ``limit``. Nothing is counted in a text
    too short to hold more (a member and its comma are 2 bytes at least: every names-form
    body of up to ~15,000 names, within the default limit)."""
    if (len(text) - 1) // 2 <= limit or count_byte(text, b",") < limit:
        return None
    own = 1 if kind == OBJECTS and text.lstrip(b" \t\r\n").startswith(OBJECTS) else 0
    typed = count_byte(text, kind) - own
    typed = typed // 2 if kind == STRINGS else typed
    return None if typed <= limit else typed


class Probe(msgspec.Struct, gc=False):
    """Any JSON object, none of it kept: 16 bytes."""


_probe_decoder = msgspec.json.Decoder(list[Probe] | dict[str, Probe])
SPARSE = 128
"""Bytes per ``{`` from which msgspec counts the objects as ``Probe`` (with a list slot or a
dict entry: 24-100 bytes each, under the bytes they span), at its own speed (~2 ms for 500 full
Node objects, 6 MB, where ``count_members`` takes ~15); below, ``count_members`` scans."""

_D = TypeVar("_D")


def probe_count(decoder: msgspec.json.Decoder[_D], text: bytes, members: Callable[[_D], int]) -> int | None:
    """``members`` of ``text`` decoded as probes; None when it does not decode (a member that
    is not an object: then ``count_members`` counts them all)."""
    try:
        return members(decoder.decode(text))
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None


def count_byte(data: bytes, byte: bytes) -> int:
    """Occurrences of the one byte ``byte`` in ``data``: numpy compares 16-32 bytes at a time,
    ~3x ``bytes.count`` on megabytes, a chunk at a time (no array as large as ``data``)."""
    if len(data) < _SMALL:
        return data.count(byte)
    view = np.frombuffer(data, np.uint8)
    return sum(int(np.count_nonzero(view[i : i + _CHUNK] == byte[0])) for i in range(0, len(view), _CHUNK))


def count_members(text: bytes, stop_above: int | None = None) -> tuple[int, bool]:
    """The members of the JSON array or object ``text`` (elements, or key-value pairs as
    written): the commas at its own level, plus one; and whether that is exact (False: the
    scan stopped past ``stop_above``, the count so far).

    ``text`` must be valid JSON (msgspec's raw value: its nesting is within the recursion
    limit, so the depth fits int32 many times over). Backslash escapes are blanked first
    (``\\\\`` then ``\\"``, left to right as JSON reads them: two copies of ``text`` at most),
    so that every remaining ``"`` opens or closes a string. Then, a chunk at a time, the
    bytes that matter (quotes, brackets, commas; realistic JSON: 1 in 12) are taken out, and
    a running parity of the quotes says which are in a string; outside strings, a running sum
    of the brackets gives the depth; both carry over from chunk to chunk."""
    text = text.strip(b" \t\r\n")  # itself when there is nothing to strip (a raw value)
    if text[:1] not in (b"[", b"{") or _EMPTY.match(text):
        return 0, True
    if b"\\" in text:
        text = text.replace(b"\\\\", b"__").replace(b'\\"', b"__")
    view = np.frombuffer(text, np.uint8)
    in_string, depth, commas = 0, 0, 0
    for start in range(0, len(view), _CHUNK):
        chunk = view[start : start + _CHUNK]
        folded = chunk | 0x20  # [ and { alike, ] and }
        marks = chunk[
            np.flatnonzero((chunk == _QUOTE) | (folded == _OPEN) | (folded == _CLOSE) | (chunk == _COMMA))
        ]
        if not len(marks):
            continue
        parity = np.bitwise_xor.accumulate((marks == _QUOTE).view(np.uint8))
        parity ^= in_string
        outside = parity == 0  # a quote's own parity is after it: no matter, it is not counted
        folded = marks | 0x20
        steps = ((folded == _OPEN) & outside).view(np.int8) - ((folded == _CLOSE) & outside).view(np.int8)
        level = np.cumsum(steps, dtype=np.int32)
        level += depth
        commas += int(np.count_nonzero((level == 1) & outside & (marks == _COMMA)))
        in_string, depth = int(parity[-1]), int(level[-1])
        if stop_above is not None and commas + 1 > stop_above and start + _CHUNK < len(view):
            return commas + 1, False
    return commas + 1, True
