"""The extender wire protocol of kube-scheduler, and nothing else: bytes in, bytes out.

Types follow ``k8s.io/kube-scheduler/extender/v1`` (no JSON tags, so the keys are the Go
field names in PascalCase; every key is always emitted and nil becomes ``null``). Only this
module knows a wire key. Embedded Pod and Node objects use ordinary Kubernetes camelCase and
are decoded into the small typed views of ``extender.kube.objects`` (only the fields the
extender reads; msgspec skips the rest without building Python objects, which is what keeps
stateless mode, full Node objects on every call, cheap). The API server's lists and watch
events are decoded there too, not here: this module imports no Kubernetes client. A filter
answer in ``Nodes`` form echoes the scheduler's own objects byte for byte, cut from the body.
The nodes of a call are counted on its bytes before any is decoded (``counting``).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, TypeVar

import msgspec
import numpy as np
import numpy.typing as npt

from extender.kube.objects import BadRequest, Node, Pod
from extender.protocol.counting import (
    OBJECTS,
    SPARSE,
    STRINGS,
    Probe,
    TooManyNodes,
    check_members,
    count_members,
    probe_count,
    typed_bound,
)
from scoring import MAX_EXTENDER_PRIORITY

__all__ = ["TooManyNodes"]  # raised here, defined with the counting (extender.protocol.counting)

_NULL = msgspec.Raw(b"null")


class _NodeViews(msgspec.Struct, frozen=True):
    """``Nodes`` as its views: an item that is not an object is refused at once, before any
    other is built (the count of ``{`` bounds what this builds; ``_check_node_count``)."""

    items: list[Node] | None = None


class _ExtenderArgs(msgspec.Struct, frozen=True):
    Pod: Pod | None = None
    Nodes: _NodeViews | None = None
    NodeNames: msgspec.Raw = _NULL


class _NodeList(msgspec.Struct, frozen=True):
    metadata: msgspec.Raw = msgspec.Raw(b"{}")
    items: list[msgspec.Raw] | None = None


class _NodeListOnly(msgspec.Struct, frozen=True):
    """The raw bytes of each Node object, for a filter answer to echo: a second pass over a
    body whose nodes are known to be objects, and few enough."""

    Nodes: _NodeList | None = None


class _ItemsText(msgspec.Struct, frozen=True):
    items: msgspec.Raw = _NULL


class _NodeItemsText(msgspec.Struct, frozen=True):
    """Only ``Nodes.items``, as text: nothing built per node (nor the Pod), to count them."""

    Nodes: _ItemsText | None = None


class _ItemsProbes(msgspec.Struct, frozen=True):
    items: list[Probe] | None = None


class _NodeProbes(msgspec.Struct, frozen=True):
    """Only ``Nodes.items``, each item an empty ``Probe``: to count items spread over
    ``SPARSE`` bytes or more each (full Node objects: ~12 KB)."""

    Nodes: _ItemsProbes | None = None


class _BindingArgs(msgspec.Struct, frozen=True):
    PodName: str = ""
    PodNamespace: str = ""
    PodUID: str = ""
    Node: str = ""


class _MetaPod(msgspec.Struct, frozen=True):
    UID: str = ""


# Go's int64: a larger count would be echoed in the answer, which kube-scheduler cannot decode
_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class _MetaVictims(msgspec.Struct, frozen=True):
    Pods: list[_MetaPod] | None = None
    NumPDBViolations: _Int64 = 0


class _Victims(msgspec.Struct, frozen=True):
    Pods: list[Pod] | None = None
    NumPDBViolations: _Int64 = 0


class _PreemptionArgs(msgspec.Struct, frozen=True):
    """The candidates' maps as text, counted before they are decoded (``_candidates``)."""

    Pod: Pod | None = None
    NodeNameToVictims: msgspec.Raw = _NULL
    NodeNameToMetaVictims: msgspec.Raw = _NULL


# --- decoded requests -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NodeObjects:
    """The ``Nodes`` form: the decoded views, and the request's body, from which a filter
    answer takes each node's own bytes to echo (``raw``: only filter needs them)."""

    names: tuple[str, ...]
    views: tuple[Node, ...]
    body: bytes

    def raw(self) -> tuple[msgspec.Raw, tuple[msgspec.Raw, ...]]:
        """The NodeList's ``metadata`` and each item's bytes, aligned with ``views``."""
        nodes = _node_list_decoder.decode(self.body).Nodes
        assert nodes is not None  # the body decoded with Nodes set
        return nodes.metadata, tuple(nodes.items or ())


@dataclasses.dataclass(frozen=True)
class SchedulingRequest:
    """ExtenderArgs of filter and prioritize: a pod and its candidates, in exactly one form."""

    pod: Pod
    names: tuple[str, ...]
    objects: NodeObjects | None  # None in the NodeNames (nodeCacheCapable) form

    @property
    def names_form(self) -> bool:
        return self.objects is None


@dataclasses.dataclass(frozen=True)
class BindingRequest:
    pod_name: str
    namespace: str
    pod_uid: str
    node: str


@dataclasses.dataclass(frozen=True)
class Victims:
    """One preemption candidate: victim UIDs, full victim pods when the scheduler sent them
    (``NodeNameToVictims`` form; empty in the Meta form), and the PDB violation count."""

    uids: tuple[str, ...]
    pods: tuple[Pod, ...]
    pdb_violations: int


@dataclasses.dataclass(frozen=True)
class PreemptionRequest:
    pod: Pod
    candidates: Mapping[str, Victims]
    meta_form: bool


_T = TypeVar("_T")
_args_decoder = msgspec.json.Decoder(_ExtenderArgs)
_node_list_decoder = msgspec.json.Decoder(_NodeListOnly)
_node_items_text_decoder = msgspec.json.Decoder(_NodeItemsText)
_node_probes_decoder = msgspec.json.Decoder(_NodeProbes)
_names_decoder = msgspec.json.Decoder(list[str] | None)
_binding_decoder = msgspec.json.Decoder(_BindingArgs)
_preemption_decoder = msgspec.json.Decoder(_PreemptionArgs)
_victims_decoder = msgspec.json.Decoder(dict[str, _Victims] | None)
_meta_victims_decoder = msgspec.json.Decoder(dict[str, _MetaVictims] | None)


def _decode(decoder: msgspec.json.Decoder[_T], body: bytes, what: str) -> _T:
    """``body`` decoded, or BadRequest naming what is wrong and where.

    The whole body is checked to be UTF-8 first (``isascii`` is one pass in C; a body with
    other bytes is decoded once, also in C): msgspec validates only the strings it turns into
    ``str`` (and raises ``UnicodeDecodeError`` for those), not the ones it skips or keeps raw,
    and raw Node objects are echoed in a filter answer. Nesting is bounded by msgspec itself:
    it raises ``RecursionError`` beyond the interpreter's recursion limit (1,000 levels, far
    under the 10,000 of Go's decoder), in skipped and raw values too, so every raw value kept
    and echoed is nested within that bound."""
    if not body:
        raise BadRequest(f"empty request body: expected a JSON {what} object")
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            where = _path_at(body, exc.start)
            raise BadRequest(
                f"request body is not valid UTF-8: {exc.reason} at byte {exc.start}, in `{where}`"
            ) from None
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"invalid {what}: {exc}".replace("`$.", "`")) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest(f"request body is nested too deeply: {_too_deep(body)}") from None


# A JSON token for locating an error (not for decoding): a string (and the colon that makes it a
# key), a bracket or a comma. Scalars between them need no token.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"\s*:?|[\[\]{},]', re.DOTALL)
_PATH_SHOWN = 8  # levels of a path written out; deeper ones are counted
# bytes walked to locate an error (about 75 ms a MiB, a Python loop): a rejected request costs at
# most this much more; past them the message says so
_WALKED = 1 << 20


def _walk(body: bytes, stop: int | None = None, max_depth: int | None = None) -> tuple[list[str], int]:
    """The path of open containers at byte ``stop``, or where nesting first exceeds
    ``max_depth``; with the offset reached. For error messages only: a Python loop per token."""
    path: list[str] = []
    index: list[int] = []  # per level: -1 in an object, else the item's index in an array
    pos = min(len(body), _WALKED)
    for m in _TOKEN.finditer(body, 0, _WALKED):
        pos = m.start()
        if stop is not None and pos >= stop:
            break
        tok = m.group()
        if tok in (b"[", b"{"):
            index.append(0 if tok == b"[" else -1)
            path.append("[0]" if tok == b"[" else "")
            if max_depth is not None and len(path) > max_depth:
                break
        elif tok in (b"]", b"}"):
            if path:
                path.pop()
                index.pop()
        elif tok == b",":
            if index and index[-1] >= 0:
                index[-1] += 1
                path[-1] = f"[{index[-1]}]"
        elif tok.endswith(b":") and index and index[-1] < 0:
            key = tok[: tok.rindex(b'"')][1:].decode("utf-8", "replace")
            path[-1] = "." + key
    return path, pos


def _render(path: list[str]) -> str:
    parts = [p for p in path if p]
    shown = "".join(parts[:_PATH_SHOWN]).lstrip(".") or "$"
    return shown + (f"... ({len(parts) - _PATH_SHOWN} levels more)" if len(parts) > _PATH_SHOWN else "")


def _path_at(body: bytes, offset: int) -> str:
    """Where byte ``offset`` of ``body`` is, as a path such as ``Nodes.items[3].metadata.name``."""
    if offset > _WALKED:
        return f"a value past the first {_WALKED >> 20} MiB"
    return _render(_walk(body, stop=offset)[0])


_DEPTH_SHOWN = 500  # msgspec's bound is the recursion limit (1,000) less the stack in use


def _too_deep(body: bytes) -> str:
    """Where ``body`` first nests deeper than ``_DEPTH_SHOWN`` levels, in words."""
    path, offset = _walk(body, max_depth=_DEPTH_SHOWN)
    if len(path) <= _DEPTH_SHOWN:
        return "more levels than the decoder allows"
    return f"more than {_DEPTH_SHOWN} levels at byte {offset}, in `{_render(path)}`"


def _require_pod(pod: Pod | None, what: str) -> Pod:
    if pod is None:
        raise BadRequest(f"{what}.Pod is missing or null (keys are PascalCase, as kube-scheduler sends them)")
    return pod


def _unique(names: Sequence[str], where: str) -> tuple[str, ...]:
    unique = set(names)
    if len(unique) == len(names) and "" not in unique:  # the common case, at C speed
        return tuple(names)
    seen: set[str] = set()
    for name in names:
        if not name:
            raise BadRequest(f"{where}: a node has an empty name")
        if name in seen:
            raise BadRequest(f"{where}: node {name!r} appears more than once")
        seen.add(name)
    return tuple(names)


class NameListMemo:
    """The last NodeNames list decoded, and its encoded layout for the answers.

    With ``percentageOfNodesToScore: 100`` kube-scheduler sends the same list of every
    feasible node to filter and prioritize, pod after pod. Compared as bytes (a memcmp), a list
    seen last time is not decoded, checked for duplicates or re-encoded again, and the caller
    gets the very same tuple, so that the node source can recognise it by identity. One per
    ``Verbs``; threads may share it (each swap is one attribute store of an immutable pair).
    """

    def __init__(self) -> None:
        self._last: tuple[bytes, tuple[str, ...]] | None = None
        self._layout: NameLayout | None = None

    def names(self, raw: msgspec.Raw, max_nodes: int | None = None) -> tuple[str, ...] | None:
        """The NodeNames of ``raw`` (its JSON), checked; None for ``null``; ``TooManyNodes``
        beyond ``max_nodes``, before decoding them."""
        data = bytes(raw)
        last = self._last
        if last is not None and last[0] == data:
            return last[1]
        names = _decode_names(data, max_nodes)
        if names is not None:
            self._last = (data, names)
        return names

    def layout(self, names: tuple[str, ...]) -> NameLayout:
        """The encoded layout of ``names`` (kept for the last list: see ``NameLayout``)."""
        cached = self._layout
        if cached is not None and cached.names is names:
            return cached
        layout = NameLayout(names)
        self._layout = layout
        return layout


def _decode_names(data: bytes, max_nodes: int | None = None) -> tuple[str, ...] | None:
    if max_nodes is not None:
        check_members(data, max_nodes, STRINGS, "NodeNames")
    try:
        names = _names_decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"invalid ExtenderArgs: {exc}".replace("`$", "`NodeNames")) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:  # checked by _decode already
        raise BadRequest(f"invalid ExtenderArgs: `NodeNames`: {exc}") from None
    return None if names is None else _unique(names, "NodeNames")


def _check_node_count(body: bytes, max_nodes: int) -> None:
    """``TooManyNodes`` when ``Nodes.items`` of the ExtenderArgs ``body`` holds more than
    ``max_nodes`` items, found before any is decoded (``extender.protocol.counting``): cheaply
    when the whole body holds fewer commas or at most ``max_nodes`` ``{`` (full Node objects:
    ~67 each), as the decoder that follows refuses the first item that is not an object; else
    by msgspec as probes (sparse objects) or on the items' text (dense ones)."""
    typed = typed_bound(body, max_nodes, OBJECTS)
    if typed is None:
        return
    count = probe_count(_node_probes_decoder, body, _probed_items) if len(body) >= SPARSE * typed else None
    exact = True
    if count is None:
        nodes = _decode(_node_items_text_decoder, body, "ExtenderArgs").Nodes
        count, exact = count_members(bytes(nodes.items), max_nodes) if nodes is not None else (0, True)
    if count > max_nodes:
        raise TooManyNodes(count, max_nodes, "Nodes.items", exact=exact)


def _probed_items(args: _NodeProbes) -> int:
    return len(args.Nodes.items or ()) if args.Nodes is not None else 0


def decode_scheduling_request(
    body: bytes, memo: NameListMemo | None = None, *, max_nodes: int | None = None
) -> SchedulingRequest:
    """Decode the ExtenderArgs of filter or prioritize (``memo``: see ``NameListMemo``);
    ``TooManyNodes`` beyond ``max_nodes`` nodes, found before the nodes are decoded."""
    if max_nodes is not None:
        _check_node_count(body, max_nodes)
    args = _decode(_args_decoder, body, "ExtenderArgs")
    pod = _require_pod(args.Pod, "ExtenderArgs")
    names = (
        memo.names(args.NodeNames, max_nodes)
        if memo is not None
        else _decode_names(bytes(args.NodeNames), max_nodes)
    )
    if (args.Nodes is None) == (names is None):
        which = "both" if args.Nodes is not None else "neither"
        raise BadRequest(
            f"ExtenderArgs has {which} of Nodes and NodeNames; exactly one must be set "
            "(Nodes when nodeCacheCapable is false, NodeNames when it is true)"
        )
    if names is not None:
        return SchedulingRequest(pod, names, None)
    assert args.Nodes is not None  # exactly one of Nodes and NodeNames (checked above)
    views = tuple(args.Nodes.items or ())
    if max_nodes is not None and len(views) > max_nodes:  # counted before: cannot happen
        raise TooManyNodes(len(views), max_nodes, "Nodes.items")
    node_names = [v.metadata.name if v.metadata else "" for v in views]
    objects = NodeObjects(_unique(node_names, "Nodes.items"), views, body)
    return SchedulingRequest(pod, objects.names, objects)


def decode_binding_request(body: bytes) -> BindingRequest:
    args = _decode(_binding_decoder, body, "ExtenderBindingArgs")
    missing = [
        k
        for k, v in (("PodName", args.PodName), ("PodNamespace", args.PodNamespace), ("Node", args.Node))
        if not v
    ]
    if missing:
        raise BadRequest(f"ExtenderBindingArgs is missing {', '.join(missing)}")
    return BindingRequest(args.PodName, args.PodNamespace, args.PodUID, args.Node)


def _candidates(
    raw: msgspec.Raw, decoder: msgspec.json.Decoder[dict[str, _T] | None], key: str, max_nodes: int | None
) -> dict[str, _T] | None:
    """One of preempt's maps (node name to victims), counted before it is decoded; None for null."""
    data = bytes(raw)
    if max_nodes is not None:
        check_members(data, max_nodes, OBJECTS, key)
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"invalid ExtenderPreemptionArgs: {exc}".replace("`$", f"`{key}")) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:  # checked by _decode already
        raise BadRequest(f"invalid ExtenderPreemptionArgs: `{key}`: {exc}") from None


def decode_preemption_request(body: bytes, *, max_nodes: int | None = None) -> PreemptionRequest:
    """Decode ExtenderPreemptionArgs; ``TooManyNodes`` beyond ``max_nodes`` candidate nodes,
    found before they are decoded."""
    args = _decode(_preemption_decoder, body, "ExtenderPreemptionArgs")
    pod = _require_pod(args.Pod, "ExtenderPreemptionArgs")
    by_pods = _candidates(args.NodeNameToVictims, _victims_decoder, "NodeNameToVictims", max_nodes)
    by_uids = _candidates(
        args.NodeNameToMetaVictims, _meta_victims_decoder, "NodeNameToMetaVictims", max_nodes
    )
    if (by_pods is None) == (by_uids is None):
        which = "both" if by_pods is not None else "neither"
        raise BadRequest(
            f"ExtenderPreemptionArgs has {which} of NodeNameToVictims and "
            "NodeNameToMetaVictims; exactly one must be set"
        )
    if by_uids is not None:
        cands = {
            node: Victims(tuple(p.UID for p in v.Pods or ()), (), v.NumPDBViolations)
            for node, v in by_uids.items()
        }
        return PreemptionRequest(pod, cands, True)
    full = {}
    for node, v in (by_pods or {}).items():
        pods = tuple(v.Pods or ())
        uids = tuple(p.metadata.uid if p.metadata else "" for p in pods)
        if not all(uids):
            raise BadRequest(f"NodeNameToVictims[{node!r}]: a victim pod has no metadata.uid")
        full[node] = Victims(uids, pods, v.NumPDBViolations)
    return PreemptionRequest(pod, full, False)


# --- encoded answers ------------------------------------------------------------------------


class _NodeListOut(msgspec.Struct):
    metadata: msgspec.Raw
    items: list[msgspec.Raw]


class _FilterResult(msgspec.Struct):
    """Key order as the Go struct: Nodes, NodeNames, FailedNodes, FailedAndUnresolvableNodes, Error."""

    Nodes: _NodeListOut | None
    NodeNames: list[str] | msgspec.Raw | None
    FailedNodes: dict[str, str]
    FailedAndUnresolvableNodes: dict[str, str]
    Error: str


class _HostPriority(msgspec.Struct):
    Host: str
    Score: int


class _Error(msgspec.Struct):
    Error: str


class _MetaPodOut(msgspec.Struct):
    UID: str


class _MetaVictimsOut(msgspec.Struct):
    Pods: list[_MetaPodOut]
    NumPDBViolations: int


class _PreemptionResult(msgspec.Struct):
    NodeNameToMetaVictims: dict[str, _MetaVictimsOut]


_encoder = msgspec.json.Encoder()


def encode_filter_result(
    request: SchedulingRequest,
    passing: npt.ArrayLike,
    failed: Mapping[str, str],
    unresolvable: Mapping[str, str],
    error: str = "",
    memo: NameListMemo | None = None,
) -> bytes:
    """ExtenderFilterResult in the form the request used: ``Nodes`` (the scheduler's own
    objects, echoed) for the Nodes form, ``NodeNames`` for the NodeNames form (cut from the
    names' ``NameLayout``, the memo's when it has it). ``passing`` is (N,) bool, one flag per
    request node, in request order."""
    names: list[str] | msgspec.Raw | None = None
    nodes = None
    passing = np.asarray(passing, dtype=bool)
    if request.objects is not None:
        metadata, raw = request.objects.raw()
        nodes = _NodeListOut(metadata, list(itertools.compress(raw, passing.tolist())))
    else:
        names = msgspec.Raw(_layout(request.names, memo).passing(passing))
    return _encoder.encode(_FilterResult(nodes, names, dict(failed), dict(unresolvable), error))


def encode_filter_error(request: SchedulingRequest | None, error: str) -> bytes:
    """A filter answer that fails the whole call (HTTP 200 with ``Error`` set)."""
    return _encoder.encode(_FilterResult(None, None, {}, {}, error))


_HOST_OPEN = b'{"Host":"'
_SCORE_OPEN = b'","Score":'
_ENTRY_JOIN = _SCORE_OPEN + b"00}," + _HOST_OPEN  # closes one entry, score slot "00", opens the next
# Score k as two bytes: one-digit scores padded with insignificant whitespace (RFC 8259 section 2)
_SCORE_TENS = np.frombuffer(b"01234567891", np.uint8)
_SCORE_ONES = np.frombuffer(b"          0", np.uint8)


class NameLayout:
    """One name list's JSON laid out once for the two answers that repeat it, so that an answer
    costs a few numpy operations instead of a Python object per node.

    * ``passing``: the filter's NodeNames, cut out of ``"a","b",...,`` (every name quoted and
      followed by a comma; ``starts`` (N+1,) the offset of each entry) as one slice per run of
      passing names.
    * ``priorities``: HostPriorityList, a copy of a template that holds every name and a
      two-byte score slot per entry (``slots`` (N,) offsets), the slots written from the scores.

    Built from ``_name_parts``."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self._parts = _name_parts(names)
        self._listing: tuple[bytes, npt.NDArray[np.intp]] | None = None
        self._template: tuple[npt.NDArray[np.uint8], npt.NDArray[np.intp]] | None = None

    def _lengths(self) -> npt.NDArray[np.intp]:
        return np.fromiter(map(len, self._parts), np.intp, len(self._parts))

    def passing(self, mask: npt.NDArray[np.bool_]) -> bytes:
        """The JSON list of the names where ``mask`` (N,) is True, in order."""
        if self._listing is None:
            starts = np.zeros(len(self._parts) + 1, np.intp)
            np.cumsum(self._lengths() + 3, out=starts[1:])  # '"' name '",'
            self._listing = (b'"' + b'","'.join(self._parts) + b'",' if self._parts else b"", starts)
        listing, starts = self._listing
        edges = np.flatnonzero(np.diff(mask, prepend=False, append=False))  # run starts and ends, alternating
        if not len(edges):
            return b"[]"
        bounds = starts[edges].tolist()
        kept = b"".join([listing[a:b] for a, b in zip(bounds[0::2], bounds[1::2], strict=True)])
        return b"[" + kept[:-1] + b"]"

    def priorities(self, scores: npt.NDArray[np.int64]) -> bytes:
        """HostPriorityList for ``scores`` (N,) int, each 0..MAX_EXTENDER_PRIORITY."""
        if self._template is None:
            # "[" {"Host":" name0 JOIN name1 JOIN ... nameN-1 ","Score":00} "]"
            body = b"[" + _HOST_OPEN + _ENTRY_JOIN.join(self._parts) + _SCORE_OPEN + b"00}]"
            n = len(self._parts)
            slots = (
                1
                + len(_HOST_OPEN)
                + len(_SCORE_OPEN)
                + np.cumsum(self._lengths())
                + np.arange(n, dtype=np.intp) * len(_ENTRY_JOIN)
            )
            self._template = (np.frombuffer(body, np.uint8), slots)
        template, slots = self._template
        out = template.copy()
        out[slots] = _SCORE_TENS[scores]
        out[slots + 1] = _SCORE_ONES[scores]
        return out.tobytes()


def _layout(names: Sequence[str], memo: NameListMemo | None) -> NameLayout:
    """The memo's layout of ``names`` (kept while the same tuple comes again), or a new one."""
    return memo.layout(names) if memo is not None and isinstance(names, tuple) else NameLayout(tuple(names))


def _name_parts(names: Sequence[str]) -> list[bytes]:
    """Each name's JSON string contents, escapes included. Split from one encoding of the whole
    list at its ``","`` separators when nothing needed escaping (then no name holds a quote, so
    ``","`` only separates); otherwise one encoding per name (a name such as ``a",`` encodes
    as ``a\\",``, which holds the separator)."""
    if not names:
        return []
    encoded = _encoder.encode(list(names))
    if b"\\" not in encoded:
        return encoded[2:-2].split(b'","')
    return [_encoder.encode(name)[1:-1] for name in names]


def encode_host_priorities(
    names: Sequence[str], scores: npt.ArrayLike, memo: NameListMemo | None = None
) -> bytes:
    """HostPriorityList: a bare JSON array of {Host, Score}; ``scores`` (N,) int.

    Written into the names' ``NameLayout`` (``memo`` keeps it for a list that comes again):
    no object per node. Out-of-range scores, which the core never produces, take the plain
    encoder."""
    scores = np.asarray(scores, dtype=np.int64)
    if len(names) != len(scores):
        raise ValueError("names and scores differ in length")
    if not len(scores):
        return b"[]"
    if scores.min() < 0 or scores.max() > MAX_EXTENDER_PRIORITY:
        return _encoder.encode(list(map(_HostPriority, names, scores.tolist())))
    return _layout(names, memo).priorities(scores)


def encode_error(error: str) -> bytes:
    """``{"Error": "..."}``: ExtenderBindingResult, and the body of every 4xx answer."""
    return _encoder.encode(_Error(error))


def encode_preemption_result(kept: Mapping[str, Victims]) -> bytes:
    return _encoder.encode(
        _PreemptionResult(
            {
                node: _MetaVictimsOut([_MetaPodOut(u) for u in v.uids], v.pdb_violations)
                for node, v in kept.items()
            }
        )
    )


def encode_explanation(pod: str, mode: str, policy: str, nodes: Sequence[Mapping[str, object]]) -> bytes:
    """The extender's own explain answer (not part of kube-scheduler's protocol):
    ``{"pod": "namespace/name", "mode": ..., "policy": version, "nodes": [...]}``, nodes best first."""
    return _encoder.encode({"pod": pod, "mode": mode, "policy": policy, "nodes": list(nodes)})


def encode_json(obj: object) -> bytes:
    """Plain JSON for the extender's own debug routes (not part of kube-scheduler's protocol)."""
    return _encoder.encode(obj)
