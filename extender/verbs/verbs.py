"""The four verbs as plain functions of request bytes: decode, look up nodes, evaluate, encode.

No Flask here and no score arithmetic: this module wires ``wire`` (the protocol),
``NodeSource`` (node data), ``demand`` (what the pod asks for) and ``scoring`` (the numbers)
together, so that the HTTP layer only moves bytes and records metrics. No I/O either: the
node source and the binder are protocols (``NodeSource``, ``extender.kube.bind.PodBinder``)
whose concrete classes the app chooses and passes in (``extender.server.app``), so nothing
here imports the Kubernetes client or the cache.
"""

from __future__ import annotations

import collections
import dataclasses
import logging

import numpy as np

from extender.kube.bind import BindTarget, PodBinder
from extender.kube.demand import pod_demand, requested_resources
from extender.kube.objects import Pod
from extender.protocol.wire import (
    NameListMemo,
    PreemptionRequest,
    SchedulingRequest,
    TooManyNodes,
    decode_binding_request,
    decode_preemption_request,
    decode_scheduling_request,
    encode_error,
    encode_explanation,
    encode_filter_error,
    encode_filter_result,
    encode_host_priorities,
    encode_preemption_result,
)
from extender.verbs.decisions import DecisionLog
from extender.verbs.policy import FixedPolicy, PolicySource, VersionedPolicy
from extender.verbs.request_pods import RequestPods
from extender.verbs.source import CacheNotReady, Candidates, NamesFormUnsupported, NodeSource
from scoring import Evaluation, Feasibility, PodDemand, Policy, evaluate, feasibility, release
from scoring.estimate import estimate_usage
from scoring.explain import explain, ranking
from scoring.filters import OK, reason_groups


@dataclasses.dataclass(frozen=True)
class Answer:
    """An HTTP answer plus what the metrics need to know about it."""

    body: bytes
    nodes: int = 0
    status: int = 200
    outcome: str = "ok"
    rejections: tuple[tuple[str, int], ...] = ()  # (reason code name, count) for filter
    fallback_nodes: int = 0


def _pod_key(pod: Pod) -> tuple[str, str]:
    """(uid, "namespace/name") of a pod."""
    meta = pod.metadata
    return (meta.uid, f"{meta.namespace}/{meta.name}") if meta else ("", "/")


@dataclasses.dataclass(frozen=True, eq=False)
class _Judged:
    """One filter or prioritize call up to its verdict: the policy it is judged under, what
    the pod asks for, the request, the node source's candidates and the ``feasibility`` of the
    pod on them."""

    policy: VersionedPolicy
    resources: tuple[str, ...]
    demand: PodDemand
    request: SchedulingRequest
    cands: Candidates
    judged: Feasibility


_REASON_NAMES = {1: "insufficient_resources", 2: "no_allocatable", 3: "usage_threshold", 4: "no_fresh_load"}


class Verbs:
    """Answers filter, prioritize, bind and preempt for one node source, each call under the
    policy in force when it starts (``policy``: a fixed one, or a ``PolicySource``)."""

    def __init__(
        self,
        *,
        policy: Policy | PolicySource,
        source: NodeSource,
        binder: PodBinder,
        logger: logging.Logger,
        decisions: DecisionLog | None = None,
        max_nodes: int | None = None,
    ) -> None:
        self._policies = FixedPolicy(policy) if isinstance(policy, Policy) else policy
        self._source = source
        self._binder = binder
        self._log = logger
        self._decisions = decisions
        self._max_nodes = max_nodes  # per call of every verb but bind (TooManyNodes: 413)
        self._names = NameListMemo()
        self._last: _Judged | None = None  # the last judgement (one attribute store: threads may share it)
        self._request_pods = RequestPods()  # the Pods of filter and prioritize, for their bind

    def _judge(self, body: bytes) -> _Judged:
        """Decode, look the nodes up and judge them under the policy in force (taken here, once
        per call); the judgement of the last call is reused when this one is for an equal pod
        over the very same node table under the same policy (kube-scheduler sends prioritize
        right after filter, for the same pod and, when our filter failed nothing, the same node
        list, which the node source answers with the same table)."""
        pv = self._policies.current()
        request = decode_scheduling_request(body, self._names, max_nodes=self._max_nodes)
        last = self._last
        if last is not None and last.request.pod == request.pod:
            resources, demand = last.resources, last.demand
        else:
            resources = requested_resources(request.pod)
            demand = pod_demand(request.pod, resources)
        cands = self._source.candidates(request, resources)
        if (
            last is not None
            and last.policy is pv
            and last.demand is demand
            and last.cands.table is cands.table
        ):
            return dataclasses.replace(last, request=request, cands=cands)
        judged = feasibility(pod=demand, nodes=cands.table, policy=pv.policy)
        # kept without the request's Node objects (the decoded body, by far the largest part of
        # a Nodes-form call): the next call needs only the pod, the demand and the table
        self._last = _Judged(pv, resources, demand, dataclasses.replace(request, objects=None), cands, judged)
        return _Judged(pv, resources, demand, request, cands, judged)

    def _evaluate(self, body: bytes) -> tuple[_Judged, Evaluation]:
        j = self._judge(body)
        return j, evaluate(pod=j.demand, nodes=j.cands.table, policy=j.policy.policy, judged=j.judged)

    def filter(self, body: bytes) -> Answer:
        try:
            j = self._judge(body)
        except CacheNotReady as exc:  # the scheduler logs ExtenderFilterResult.Error; a 503 it would not
            return Answer(encode_filter_error(None, str(exc)), outcome="not_ready")
        request, cands, v = j.request, j.cands, j.judged.verdict
        self._request_pods.remember(request.pod)
        passing = np.zeros(len(request.names), bool)
        passing[cands.rows[v.feasible]] = True
        failed: dict[str, str] = {}
        unresolvable = dict(cands.unresolved)
        names = cands.table.names
        reasons = collections.Counter(cands.unresolved.values())
        for reason, rows in reason_groups(v, cands.table, j.demand, j.policy.policy):
            unres = v.unresolvable[rows]
            for target, sel in ((unresolvable, rows[unres]), (failed, rows[~unres])):
                if len(sel):
                    target.update(dict.fromkeys([names[i] for i in sel.tolist()], reason))
            reasons[reason] += len(rows)
        rejections = tuple((_REASON_NAMES.get(c, str(c)), k) for c, k in v.counts().items() if c != OK)
        if cands.unresolved:
            rejections += (("invalid_node_data", len(cands.unresolved)),)
        if self._decisions is not None:
            uid, key = _pod_key(request.pod)
            self._decisions.record_filter(uid, key, v, reasons, len(cands.unresolved), j.policy)
        # No scores are computed here, so no node is counted as scored by the load fallback.
        return Answer(
            encode_filter_result(request, passing, failed, unresolvable, memo=self._names),
            nodes=len(request.names),
            rejections=rejections,
        )

    def prioritize(self, body: bytes) -> Answer:
        j, ev = self._evaluate(body)
        request, cands = j.request, j.cands
        self._request_pods.remember(request.pod)
        scores = np.zeros(len(request.names), np.int64)
        scores[cands.rows] = ev.scores
        if self._decisions is not None:
            uid, key = _pod_key(request.pod)
            self._decisions.record_prioritize(uid, key, ev, cands.table, j.demand, j.policy)
        return Answer(
            encode_host_priorities(request.names, scores, self._names),
            nodes=len(request.names),
            fallback_nodes=int(ev.fallback.sum()),
        )

    def explain(self, body: bytes, only: list[str] | None = None) -> Answer:
        """The extender's own debugging verb: the ExtenderArgs of a filter or prioritize call
        in, why each node (or each node named in ``only``) scores what it scores out, best
        first. Same decode, node source and evaluation as the verbs, so it cannot disagree.
        At most ``max_nodes`` names in ``only`` (``?node=``), as in the body."""
        if only is not None and self._max_nodes is not None and len(only) > self._max_nodes:
            raise TooManyNodes(len(only), self._max_nodes, "?node=")
        j, ev = self._evaluate(body)
        request, cands = j.request, j.cands
        order = ranking(ev)
        rows = explain(ev, pod=j.demand, nodes=cands.table, policy=j.policy.policy, only=only)
        by_name = {row["node"]: row for row in rows}
        nodes = [by_name[cands.table.names[i]] for i in order if cands.table.names[i] in by_name]
        wanted = None if only is None else set(only)
        for name, reason in cands.unresolved.items():
            if wanted is None or name in wanted:
                nodes.append({"node": name, "score": 0, "verdict": "invalid_node_data", "reason": reason})
        return Answer(
            encode_explanation(_pod_key(request.pod)[1], self._source.mode, j.policy.version, nodes),
            nodes=len(request.names),
        )

    def bind(self, body: bytes) -> Answer:
        req = decode_binding_request(body)
        pod = self._request_pods.take(req.pod_uid) if req.pod_uid else None
        result = self._binder.bind(
            BindTarget(
                pod_name=req.pod_name, namespace=req.namespace, pod_uid=req.pod_uid, node=req.node, pod=pod
            )
        )
        if self._decisions is not None:
            self._decisions.record_bind(
                req.pod_uid, f"{req.namespace}/{req.pod_name}", req.node, result.error
            )
        return Answer(encode_error(result.error), nodes=1, outcome=result.outcome.name.lower())

    def preempt(self, body: bytes) -> Answer:
        """Keep the candidates on which the pod would pass our filter once the victims are
        gone; drop the others. Candidates the source knows nothing about are kept."""
        policy = self._policies.current().policy
        req = decode_preemption_request(body, max_nodes=self._max_nodes)
        if req.meta_form and self._source.mode == "stateless":
            raise NamesFormUnsupported(
                "NodeNameToMetaVictims (nodeCacheCapable: true) needs the cluster cache, but this "
                "extender runs in stateless mode"
            )
        resources = requested_resources(req.pod)
        demand = pod_demand(req.pod, resources)
        names = list(req.candidates)
        cands = self._source.known_nodes(names, resources)
        ev = self._evaluate_after_eviction(req, demand, cands, policy)
        judged = {cands.table.names[i]: bool(ok) for i, ok in enumerate(ev.verdict.feasible)}
        kept = {n: v for n, v in req.candidates.items() if judged.get(n, True)}
        return Answer(
            encode_preemption_result(kept),
            nodes=len(names),
            outcome="ok" if len(kept) == len(names) else "pruned",
        )

    def _evaluate_after_eviction(
        self, req: PreemptionRequest, demand: PodDemand, cands: Candidates, policy: Policy
    ) -> Evaluation:
        table = cands.table
        r = len(table.resources)
        freed_req, freed_use, freed_lim = (np.zeros((len(table), r)) for _ in range(3))
        factors = policy.estimator.estimatedScalingFactors
        victim = getattr(self._source, "victim", None)  # the cache knows pods by UID
        for i, name in enumerate(table.names):
            victims = req.candidates[name]
            if victims.pods:
                for v in victims.pods:
                    d = pod_demand(v, table.resources, containers=False, assigned=True)  # pods on nodes
                    freed_req[i] += d.requests
                    freed_lim[i] += np.maximum(d.limits, d.requests)  # NodeTable.limits semantics
                    freed_use[i] += estimate_usage(d.requests, d.limits, table.resources, factors)
            elif victim is not None:
                for uid in victims.uids:
                    vectors = victim(uid, table.resources)
                    if vectors is not None:  # a victim the cache no longer counts frees nothing
                        freed_req[i] += vectors[0]
                        freed_lim[i] += vectors[1]
                        freed_use[i] += vectors[2]
        after = release(table, freed_requests=freed_req, freed_usage=freed_use, freed_limits=freed_lim)
        return evaluate(pod=demand, nodes=after, policy=policy)
