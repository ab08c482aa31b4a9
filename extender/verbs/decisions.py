"""The last scheduling decisions, kept for "why did my pod land there?" (``/debug/decisions``).

Bounded memory: at most ``capacity`` pods and at most ``max_bytes`` of estimated size (oldest
dropped first: a pod's size is estimated when it is recorded, from the names, reasons and
scores it keeps, ``_size``); per pod the filter's verdict
counts and most frequent reasons, the ``top`` best nodes of prioritize (their rows of the
evaluation and node table, explained with ``scoring.explain`` when the decision is read: each
strategy's score, verdict, data age), every candidate's 0..10 score as one byte, and the node
our bind put it on. Filter and prioritize each say which policy version judged (``policy``: the
policy file may change between them, ``extender.policy_file``). Recording costs a partial
sort and copies of ``top`` rows, nothing per node in Python.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from extender.verbs.policy import VersionedPolicy
from scoring import Evaluation, NodeTable, PodDemand, Policy, Verdict
from scoring.explain import VERDICT_NAMES, explain, ranking

_PER_NAME = 57
"""A str object's overhead (49 bytes for ASCII) and its tuple slot (8)."""
_PER_DECISION = 4096
"""A decision's fixed part: its object, dicts, the copied rows of its best nodes."""


@dataclasses.dataclass
class Decision:
    uid: str
    pod: str
    first_seen: float
    updated: float
    filter: dict[str, Any] | None = None
    prioritize: dict[str, Any] | None = None
    best: _Best | None = None  # prioritize's best nodes, explained when the decision is read
    scores: npt.NDArray[np.int8] | None = None  # (N,) prioritize's 0..10 per candidate
    names: tuple[str, ...] = ()
    names_bytes: int = 0  # estimated size of ``names``, counted once when they are recorded
    bound_node: str | None = None
    bind_error: str | None = None

    def size(self) -> int:
        """Estimated bytes kept: each name string and its tuple slot, the scores, the reasons."""
        names = self.names_bytes
        scores = 0 if self.scores is None else int(self.scores.nbytes)
        reasons = sum(len(r["reason"]) + _PER_NAME for r in (self.filter or {}).get("topReasons", ()))
        best = 0 if self.best is None else sum(len(n) + _PER_NAME for n in self.best.nodes.names) * 8
        return _PER_DECISION + len(self.uid) + len(self.pod) + names + scores + reasons + best

    def summary(self) -> dict[str, Any]:
        best = self.best.nodes.names[0] if self.best is not None and len(self.best.nodes) else None
        return {
            "uid": self.uid,
            "pod": self.pod,
            "updated": _iso(self.updated),
            "bestNode": best,
            "boundNode": self.bound_node,
            "candidates": len(self.names) if self.names else (self.filter or {}).get("nodes"),
        }

    def full(self) -> dict[str, Any]:
        out = self.summary()
        prioritize = None
        if self.prioritize is not None:
            prioritize = dict(self.prioritize, top=self.best.explain() if self.best is not None else [])
        out.update(
            {
                "firstSeen": _iso(self.first_seen),
                "filter": self.filter,
                "prioritize": prioritize,
                "bindError": self.bind_error,
            }
        )
        if self.bound_node and self.scores is not None and self.bound_node in self.names:
            i = self.names.index(self.bound_node)
            score = int(self.scores[i])
            out["boundNodeScore"] = score
            out["boundNodeRank"] = int(np.count_nonzero(self.scores > score)) + 1
        return out


@dataclasses.dataclass(frozen=True)
class _Best:
    """The best nodes of one prioritize call: their rows of the evaluation and of the table
    (a few rows copied; the explanation is built only when someone reads it)."""

    ev: Evaluation
    nodes: NodeTable
    pod: PodDemand
    policy: Policy

    def explain(self) -> list[dict[str, Any]]:
        return explain(
            self.ev, pod=self.pod, nodes=self.nodes, policy=self.policy, rows=range(len(self.nodes))
        )


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


class DecisionLog:
    """Thread-safe ring of the last decisions, by pod UID."""

    def __init__(
        self,
        *,
        capacity: int = 256,
        max_bytes: int = 48 * 1024 * 1024,
        top: int = 10,
        reasons: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._capacity, self._max_bytes, self._top, self._reasons = capacity, max_bytes, top, reasons
        self._clock = clock
        self._lock = threading.Lock()
        self._items: collections.OrderedDict[str, Decision] = collections.OrderedDict()
        self._sizes: dict[str, int] = {}
        self._bytes = 0

    @property
    def bytes(self) -> int:
        """The estimated size of what is kept (at most ``max_bytes``)."""
        return self._bytes

    def _resized(self, d: Decision) -> None:
        """Account ``d``'s new size, then drop the oldest pods beyond the byte budget (``d``
        itself too when it alone does not fit)."""
        size = d.size()
        self._bytes += size - self._sizes.get(d.uid, 0)
        self._sizes[d.uid] = size
        while self._bytes > self._max_bytes and self._items:
            uid, _ = self._items.popitem(last=False)
            self._bytes -= self._sizes.pop(uid, 0)

    def _entry(self, uid: str, pod: str) -> Decision:
        now = self._clock()
        d = self._items.get(uid)
        if d is None:
            d = Decision(uid, pod, now, now)
            self._items[uid] = d
            while len(self._items) > self._capacity:
                uid_dropped, _ = self._items.popitem(last=False)
                self._bytes -= self._sizes.pop(uid_dropped, 0)
        else:
            d.updated = now
            self._items.move_to_end(uid)
        return d

    def record_filter(
        self,
        uid: str,
        pod: str,
        verdict: Verdict,
        reasons: collections.Counter[str],
        unresolved: int,
        policy: VersionedPolicy,
    ) -> None:
        """Verdict counts and the most frequent reasons (``reasons``: the reasons the filter
        answered with, counted over nodes), and the version of the policy that judged."""
        if not uid:
            return
        codes = verdict.code
        counts = {VERDICT_NAMES.get(c, str(c)): k for c, k in verdict.counts().items()}
        with self._lock:
            d = self._entry(uid, pod)
            d.filter = {
                "nodes": len(codes) + unresolved,
                "verdicts": counts,
                "unresolved": unresolved,
                "topReasons": [{"reason": r, "nodes": n} for r, n in reasons.most_common(self._reasons)],
                "policy": policy.version,
            }
            self._resized(d)

    def record_prioritize(
        self, uid: str, pod: str, ev: Evaluation, nodes: NodeTable, demand: PodDemand, policy: VersionedPolicy
    ) -> None:
        if not uid:
            return
        rows = ranking(ev, self._top)
        best = _Best(ev.take(rows), nodes.take(rows), demand, policy.policy)
        hist = np.bincount(ev.scores, minlength=11).tolist()
        names_bytes = sum(map(len, nodes.names)) + _PER_NAME * len(nodes.names)
        with self._lock:
            d = self._entry(uid, pod)
            d.prioritize = {"nodes": len(nodes), "scoreHistogram": hist, "policy": policy.version}
            d.best = best
            d.scores = ev.scores.astype(np.int8)
            d.names, d.names_bytes = nodes.names, names_bytes
            self._resized(d)

    def record_bind(self, uid: str, pod: str, node: str, error: str) -> None:
        if not uid:
            return
        with self._lock:
            d = self._entry(uid, pod)
            if error:
                d.bind_error = error
            else:
                d.bound_node, d.bind_error = node, None
            self._resized(d)

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [d.summary() for d in reversed(self._items.values())]

    def get(self, uid: str) -> dict[str, Any] | None:
        with self._lock:
            d = self._items.get(uid)
            return d.full() if d is not None else None
