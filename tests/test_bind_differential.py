"""Differential test of the cluster cache's answers: the live extender against a rebuild.

A hypothesis state machine plays an API server, its watch (events queued, delivered late, in
order, or replaced by a relist), kube-scheduler (filter and prioritize with random node
lists, byte-identical repeats included, then a bind) and a load source, and after every
step asks the live extender's verbs (``Verbs`` over ``CacheSource`` over the ``ClusterState``
the events went into, binds through ``CachedBinder``) and a cache built from scratch from
the same state for filter and prioritize, and requires the same answers.

What the rebuild is given is what the live cache owes its callers:

* every watch event delivered so far (each delivery is followed by a publisher round, as the
  publisher's 200 ms interval would; an event still queued is the watch's lag, not owed);
* every bind the extender answered with success, whether or not its watch event has been
  delivered: the promise of issue 16 ("a bind is seen by the very next call");
* the same load samples, and for compensation the time each bound pod was first counted
  (its bind, or the watch event that showed it bound).

A bind's watch event can come before the Binding's answer (the fake API delivers it from
inside the call, after a publisher round), after it, or never before a relist; a bind can
fail; a pod can be bound that the watch never showed (only the scheduling request carried
it). ``TestBindsInTheCacheProcess`` runs the same kind of check against the real cache
process (fewer examples).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import json
import logging
import random
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from extender.cache.node_source import CachedBinder, CacheSource
from extender.cache.store import ClusterState, CompensationSpec
from extender.kube.bind import BindOutcome, BindResult, BindTarget
from extender.load.window import LoadWindow
from extender.policy_file import load_policy
from extender.verbs.verbs import Verbs
from tests.conftest import running_extender, write_kubeconfig
from tests.kubeapi import FakeKubeAPI
from tests.test_cache_mode import bind, call, metric, wait_ready
from tests.test_cache_mode import node_obj as server_node_obj

ROOT = Path(__file__).resolve().parent.parent
POLICY = load_policy(ROOT / "config" / "extender-policy.yaml")
FACTORS = POLICY.estimator.estimatedScalingFactors
COMPENSATION = CompensationSpec(report_lag_s=60.0, max_s=300.0)
NODE_NAMES = [f"n{i}" for i in range(6)]
CPUS = ["500m", "1", "1500m", "2", "3"]  # binary fractions of a core: sums are exact
MEMS = ["256Mi", "1Gi", "2Gi", "4Gi"]


class _Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class _Cache:
    """What ``CacheSource`` reads of a cache, over a ``ClusterState`` fed by hand."""

    state: ClusterState
    synced: bool = True

    def readiness(self) -> tuple[bool, str]:
        return True, "synced"


def _raw(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


def node_obj(name: str, cpu: int, mem_gi: int) -> dict[str, Any]:
    res = {"cpu": str(cpu), "memory": f"{mem_gi}Gi", "pods": "110"}
    return {
        "metadata": {"name": name, "uid": f"node-{name}"},
        "status": {"allocatable": res, "capacity": res},
    }


def pod_obj(uid: str, cpu: str, mem: str) -> dict[str, Any]:
    return {
        "metadata": {"name": f"pod-{uid}", "namespace": "default", "uid": uid},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]},
        "status": {"phase": "Pending"},
    }


TALLY: Counter[str] = Counter()
"""What the machines exercised, summed over every example of the run (hypothesis's own
statistics give the share of examples, not counts); printed at the module's end with ``-s``:
the README's bind-fault figures."""


def _note(what: str) -> None:
    event(what)
    TALLY[what] += 1


@pytest.fixture(scope="module", autouse=True)
def _print_tally() -> Iterator[None]:
    yield
    if TALLY:
        print("\nbind differential tally: " + ", ".join(f"{k}: {v}" for k, v in sorted(TALLY.items())))


class FakeAPI:
    """The API server's truth and its watch: a queue of events per kind, in order."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, dict[str, Any]] = {}  # uid -> Pod
        self.queue: list[tuple[str, str, dict[str, Any]]] = []  # (kind, type, object)
        self.fail_next_bind = False
        self.deliver_during_bind = False  # the bound event reaches the cache before the answer
        self.during_bind: Any = None  # called with nothing when it does (set by the machine)

    def emit(self, kind: str, etype: str, obj: dict[str, Any]) -> None:
        self.queue.append((kind, etype, copy.deepcopy(obj)))


class FakeBinder:
    """The Binding subresource as the API server answers it (``extender.kube.binding.Binder``'s
    outcomes): 404 for a pod that is gone, success for a pod already on that node, conflict
    for one on another node; ``fail_next_bind`` makes the next one fail (a 500 or timeout)."""

    timeout_s = 4.0

    def __init__(self, api: FakeAPI) -> None:
        self.api = api
        self.requests: Counter[str] = Counter()  # Binding requests that reached the API, per pod UID

    def bind(self, target: BindTarget, *, timeout_s: float | None = None) -> BindResult:
        api = self.api
        self.requests[target.pod_uid] += 1
        pod = api.pods.get(target.pod_uid)
        if pod is None:
            return BindResult(BindOutcome.NOT_FOUND, "pod not found")
        on = pod["spec"].get("nodeName", "")
        if on == target.node:
            return BindResult(BindOutcome.ALREADY_BOUND, "")
        if on:
            return BindResult(BindOutcome.CONFLICT, f"already assigned to {on}")
        if api.fail_next_bind:
            api.fail_next_bind = False
            return BindResult(BindOutcome.API_ERROR, "injected failure")
        pod["spec"]["nodeName"] = target.node
        pod["status"] = {"phase": "Running"}
        api.emit("pods", "MODIFIED", pod)
        if api.deliver_during_bind and api.during_bind is not None:
            api.during_bind()
        return BindResult(BindOutcome.BOUND, "")


class Live:
    """The extender under test: the store the events go into, its verbs, its binder."""

    def __init__(self, api: FakeAPI, clock: _Clock) -> None:
        self.window = LoadWindow(("cpu", "memory"))
        self.state = ClusterState(
            estimator_factors=FACTORS, load=self.window, compensation=COMPENSATION, clock=clock
        )
        self.api_binder = FakeBinder(api)
        binder = CachedBinder(self.api_binder, self.state)
        self.verbs = Verbs(
            policy=POLICY,
            source=CacheSource(_Cache(self.state), clock=clock),
            binder=binder,
            logger=logging.getLogger("test"),
        )


def rebuild(
    nodes: dict[str, dict[str, Any]],
    pods: dict[str, dict[str, Any]],
    counted_at: dict[str, float],
    samples: list[tuple[str, float, dict[str, float]]],
    clock: _Clock,
) -> Verbs:
    """A cache built from scratch: the load samples, the nodes, the pending pods, then each
    bound pod at the time the live cache first counted it (its compensation starts there)."""
    now = clock.now
    window = LoadWindow(("cpu", "memory"))
    for node, t, values in samples:
        window.record(node, t, values, source="metrics-server")
    at = _Clock()
    state = ClusterState(estimator_factors=FACTORS, load=window, compensation=COMPENSATION, clock=at)
    at.now = now
    state.nodes_handler.replace([_raw(n) for n in nodes.values()])
    state.pods_handler.replace([_raw(p) for p in pods.values() if not p["spec"].get("nodeName")])
    bound = [p for p in pods.values() if p["spec"].get("nodeName")]
    for p in sorted(bound, key=lambda p: counted_at[p["metadata"]["uid"]]):
        at.now = counted_at[p["metadata"]["uid"]]
        state.pods_handler.upsert(_raw(p))
    at.now = now
    state.publish(force=True)
    return Verbs(
        policy=POLICY,
        source=CacheSource(_Cache(state), clock=clock),
        binder=None,  # type: ignore[arg-type]
        logger=logging.getLogger("test"),
    )


class BindMachine(RuleBasedStateMachine):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = _Clock()
        self.api = FakeAPI()
        self.api.during_bind = self._deliver_during_bind
        self.live = Live(self.api, self.clock)
        # what the watch has delivered (the rebuild's view) and what the live cache owes beyond it
        self.view_nodes: dict[str, dict[str, Any]] = {}
        self.view_pods: dict[str, dict[str, Any]] = {}
        self.bound_by_us: dict[str, dict[str, Any]] = {}  # uid -> the bound Pod: bind OK, event not delivered
        self.counted_at: dict[str, float] = {}  # uid -> when the live cache first counted it bound
        self.samples: list[tuple[str, float, dict[str, float]]] = []
        self.uids = itertools.count()
        self.last_list: list[str] | None = None
        self.rng = random.Random(0)

    @initialize(seed=st.integers(0, 2**32 - 1), nodes=st.integers(2, 5))
    def setup(self, seed: int, nodes: int) -> None:
        self.rng = random.Random(seed)
        for name in NODE_NAMES[:nodes]:
            self.api.nodes[name] = node_obj(name, cpu=8, mem_gi=32)
            self.api.emit("nodes", "ADDED", self.api.nodes[name])
        self._relist()  # the first list

    # --- the watch ----------------------------------------------------------------------------

    def _apply(self, kind: str, etype: str, obj: dict[str, Any]) -> None:
        handler = self.live.state.nodes_handler if kind == "nodes" else self.live.state.pods_handler
        (handler.delete if etype == "DELETED" else handler.upsert)(_raw(obj))
        if kind == "nodes":
            name = obj["metadata"]["name"]
            if etype == "DELETED":
                self.view_nodes.pop(name, None)
                self._forget_samples(name)
            else:
                self.view_nodes[name] = obj
            return
        uid = obj["metadata"]["uid"]
        gone = etype == "DELETED" or obj.get("status", {}).get("phase") in ("Succeeded", "Failed")
        if gone:
            self.view_pods.pop(uid, None)
            self.counted_at.pop(uid, None)
            self.bound_by_us.pop(uid, None)
            return
        self.view_pods[uid] = obj
        if obj["spec"].get("nodeName"):
            self.bound_by_us.pop(uid, None)
            self.counted_at.setdefault(uid, self.clock.now)

    def _forget_samples(self, node: str) -> None:
        self.samples = [s for s in self.samples if s[0] != node]

    def _deliver(self, k: int) -> None:
        batch, self.api.queue = self.api.queue[:k], self.api.queue[k:]
        for kind, etype, obj in batch:
            self._apply(kind, etype, obj)
        self.live.state.publish()  # the publisher's next round

    def _deliver_during_bind(self) -> None:
        """The watch shows the bind before its answer: what was queued before it is delivered
        and published, then the bound pod's event is applied without a publisher round."""
        *before, last = self.api.queue
        self.api.queue = list(before)
        self._deliver(len(before))
        self.api.queue = []
        self._apply(*last)

    def _relist(self) -> None:
        self.api.queue = []
        nodes = copy.deepcopy(self.api.nodes)
        pods = copy.deepcopy(self.api.pods)
        for name in set(self.view_nodes) - set(nodes):
            self._forget_samples(name)
        self.live.state.nodes_handler.replace([_raw(n) for n in nodes.values()])
        self.live.state.pods_handler.replace([_raw(p) for p in pods.values()])
        self.view_nodes, self.view_pods = nodes, pods
        self.bound_by_us = {}
        self.counted_at = {u: t for u, t in self.counted_at.items() if u in pods}
        for uid, p in pods.items():
            if p["spec"].get("nodeName"):
                self.counted_at.setdefault(uid, self.clock.now)
            else:
                self.counted_at.pop(uid, None)
        self.live.state.publish()

    @rule(k=st.integers(1, 6))
    def deliver(self, k: int) -> None:
        self._deliver(k)

    @rule()
    def relist(self) -> None:
        self._relist()

    # --- the API server's objects ---------------------------------------------------------------

    @rule(name=st.sampled_from(NODE_NAMES), cpu=st.sampled_from([4, 8, 16]), mem=st.sampled_from([8, 32]))
    def put_node(self, name: str, cpu: int, mem: int) -> None:
        etype = "MODIFIED" if name in self.api.nodes else "ADDED"
        self.api.nodes[name] = node_obj(name, cpu, mem)
        self.api.emit("nodes", etype, self.api.nodes[name])

    @precondition(lambda self: len(self.api.nodes) > 1)
    @rule(data=st.data())
    def delete_node(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.api.nodes)))
        self.api.emit("nodes", "DELETED", self.api.nodes.pop(name))

    @rule(cpu=st.sampled_from(CPUS), mem=st.sampled_from(MEMS))
    def create_pod(self, cpu: str, mem: str) -> None:
        uid = f"u{next(self.uids)}"
        self.api.pods[uid] = pod_obj(uid, cpu, mem)
        self.api.emit("pods", "ADDED", self.api.pods[uid])

    @precondition(lambda self: bool(self.api.pods))
    @rule(data=st.data(), how=st.sampled_from(["delete", "finish", "bound elsewhere"]))
    def change_pod(self, data: st.DataObject, how: str) -> None:
        uid = data.draw(st.sampled_from(sorted(self.api.pods)))
        pod = self.api.pods[uid]
        if how == "delete":
            self.api.emit("pods", "DELETED", self.api.pods.pop(uid))
        elif how == "finish" and pod["spec"].get("nodeName"):
            pod["status"] = {"phase": "Succeeded"}
            self.api.emit("pods", "MODIFIED", pod)
            del self.api.pods[uid]  # a finished pod counts nowhere: as good as gone for the machine
        elif how == "bound elsewhere" and not pod["spec"].get("nodeName") and self.api.nodes:
            pod["spec"]["nodeName"] = data.draw(st.sampled_from(sorted(self.api.nodes)))
            pod["status"] = {"phase": "Running"}
            self.api.emit("pods", "MODIFIED", pod)

    @rule(
        node=st.sampled_from(NODE_NAMES),
        cpu=st.integers(0, 16),
        mem=st.integers(0, 32),
        age=st.sampled_from([0.0, 30.0, 90.0, 200.0]),
    )
    def load_sample(self, node: str, cpu: int, mem: int, age: float) -> None:
        t = self.clock.now - age
        values = {"cpu": cpu * 500.0, "memory": mem * 2.0**30}
        newest = max((s[1] for s in self.samples if s[0] == node), default=-1.0)
        self.live.window.record(node, t, values, source="metrics-server")
        if t > newest:  # the window keeps only samples newer than the source's last (as recorded here)
            self.samples.append((node, t, values))
        self.live.state.publish()

    @rule(dt=st.sampled_from([10.0, 45.0, 120.0, 400.0]))
    def tick(self, dt: float) -> None:
        """Time passes (at least the window statistics' refresh interval): the publisher runs."""
        self.clock.now += dt
        self.live.state.publish()

    # --- kube-scheduler -------------------------------------------------------------------------

    def _names(self) -> list[str]:
        if self.last_list is not None and self.rng.random() < 0.3:
            return self.last_list  # byte-identical repeat: the memos' case
        pool = sorted(set(self.api.nodes) | set(self.view_nodes)) + ["ghost"]
        names = self.rng.sample(pool, self.rng.randint(1, len(pool)))
        self.last_list = names
        return names

    def _bind(self, pod: dict[str, Any], node: str) -> dict[str, Any]:
        """kube-scheduler's bind call for ``pod`` to ``node``, through the live verbs."""
        meta = pod["metadata"]
        args = {"PodName": meta["name"], "PodNamespace": "default", "PodUID": meta["uid"], "Node": node}
        answer: dict[str, Any] = json.loads(self.live.verbs.bind(_raw(args)).body)
        return answer

    @precondition(lambda self: bool(self.api.pods) and bool(self.api.nodes))
    @rule(data=st.data(), watch_first=st.booleans(), fail=st.booleans(), retry=st.booleans())
    def schedule_and_bind(self, data: st.DataObject, watch_first: bool, fail: bool, retry: bool) -> None:
        """A scheduling cycle for a pod the API server has (whether or not the watch showed
        it): prioritize (its request carries the pod), then bind to a node."""
        uid = data.draw(st.sampled_from(sorted(self.api.pods)))
        pod = copy.deepcopy(self.api.pods[uid])
        node = data.draw(st.sampled_from(sorted(self.api.nodes)))
        body = _raw({"Pod": pod, "NodeNames": self._names()})
        assert self.live.verbs.prioritize(body).status == 200
        self.api.fail_next_bind, self.api.deliver_during_bind = fail, watch_first
        unseen = uid not in self.view_pods
        answer = self._bind(pod, node)
        self.api.fail_next_bind = self.api.deliver_during_bind = False
        _note("bind: API failure injected" if fail else "bind: accepted")
        if answer["Error"]:
            return
        _note("bind: watch event before the answer" if watch_first else "bind: watch event after the answer")
        if unseen:
            _note("bind: a pod the watch had not shown")
        assert self.api.pods[uid]["spec"]["nodeName"] == node
        if self.view_pods.get(uid, {}).get("spec", {}).get("nodeName") != node:  # owed beyond the watch
            self.bound_by_us[uid] = copy.deepcopy(self.api.pods[uid])
            self.counted_at.setdefault(uid, self.clock.now)
        if retry:  # the scheduler's retry of a bind whose answer it lost: the same answer, no change
            sent = self.live.api_binder.requests[uid]
            again = self._bind(pod, node)
            assert again == {"Error": ""}
            assert self.live.api_binder.requests[uid] == sent, (
                "a retry sent a second Binding"
            )  # none duplicated
            _note("bind: retried by the scheduler (no second Binding)")

    # --- the check ------------------------------------------------------------------------------

    @invariant()
    def answers_equal_a_rebuild(self) -> None:
        pods = copy.deepcopy(self.view_pods)
        pods.update(copy.deepcopy(self.bound_by_us))
        reference = rebuild(self.view_nodes, pods, self.counted_at, self.samples, self.clock)
        probe = pod_obj("probe", self.rng.choice(CPUS), self.rng.choice(MEMS))
        body = _raw({"Pod": probe, "NodeNames": self._names()})
        for verb in ("filter", "prioritize"):
            got = json.loads(getattr(self.live.verbs, verb)(body).body)
            want = json.loads(getattr(reference, verb)(body).body)
            assert got == want, (verb, got, want)


BindMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestBinds = BindMachine.TestCase


# --- the same promise from the real server, with the cache in its own process ---------------------


class ServerMachine(RuleBasedStateMachine):
    """The extender under gunicorn with the cache process (``EXTENDER_CACHE_PROCESS=true``) and
    the in-test API server. The watch is real, so its order is the server's: every step but a
    bind waits until the answers equal a rebuild from the API server's objects (the watch
    catches up); a bind must be equal at once, with the pods watch live (its event races the
    answer) or held back (the bind answers first; ``fresh``: the cache has never seen the pod)."""

    def __init__(self) -> None:
        super().__init__()
        self._stack = contextlib.ExitStack()
        self.api = self._stack.enter_context(FakeKubeAPI())
        self.tmp = Path(self._stack.enter_context(tempfile.TemporaryDirectory()))
        self.url = ""
        self.rng = random.Random(0)
        self.last_list: list[str] | None = None
        self.uids = itertools.count()

    @initialize(seed=st.integers(0, 2**32 - 1), nodes=st.integers(2, 4))
    def start(self, seed: int, nodes: int) -> None:
        self.rng = random.Random(seed)
        for name in NODE_NAMES[:nodes]:
            self.api.add_node(server_node(name, 8))
        kubeconfig = write_kubeconfig(self.tmp / "kubeconfig", self.api.url)
        self.url = self._stack.enter_context(
            running_extender("--kubeconfig", str(kubeconfig), env={"EXTENDER_CACHE_PROCESS": "true"})
        )
        wait_ready(self.url, timeout=60)  # the suite runs on every core: starting can be slow

    def teardown(self) -> None:
        self._stack.close()

    def _names(self) -> list[str]:
        if self.last_list is not None and self.rng.random() < 0.3:
            return self.last_list
        pool = sorted(n["metadata"]["name"] for n in self.api.nodes()) + ["ghost"]
        self.last_list = self.rng.sample(pool, self.rng.randint(1, len(pool)))
        return self.last_list

    def _differences(self, every_size: bool = False) -> list[tuple[str, Any, Any]]:
        """Where the extender's filter and prioritize differ from a rebuild of the API's truth,
        for a probe pod of a random size, or (``every_size``) of the smallest and the largest
        sizes too: one random probe can score a stale node the same as the current one (a 16-CPU
        node and a 4-CPU one alike for a small pod), so a settle on it alone could pass before
        the extender has seen a node update, which the next step then blames on itself."""
        nodes = {n["metadata"]["name"]: n for n in self.api.nodes()}
        pods = {p["metadata"]["uid"]: p for p in self.api.pods()}
        reference = rebuild(nodes, pods, dict.fromkeys(pods, 0.0), [], _Clock())
        sizes = [(self.rng.choice(CPUS), self.rng.choice(MEMS))]
        if every_size:
            sizes += [(CPUS[0], MEMS[0]), (CPUS[-1], MEMS[-1])]
        out = []
        for cpu, mem in sizes:
            body = _raw({"Pod": pod_obj("probe", cpu, mem), "NodeNames": self._names()})
            for verb in ("filter", "prioritize"):
                status, got = call(f"{self.url}/{verb}", body)
                want = json.loads(getattr(reference, verb)(body).body)
                if status != 200 or got != want:
                    out.append((verb, got, want))
        return out

    def _said_so(self) -> float:
        """Binds the extender reported it could not make visible: late or not_ready."""
        return sum(
            metric(self.url, "extender_bind_visibility_total", f'{{outcome="{o}"}}') or 0.0
            for o in ("late", "not_ready")
        )

    def _settle(self) -> None:
        deadline = time.monotonic() + 30
        while (diff := self._differences(every_size=True)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not diff, diff

    @rule(name=st.sampled_from(NODE_NAMES), cpu=st.sampled_from([4, 8, 16]))
    def put_node(self, name: str, cpu: int) -> None:
        if any(n["metadata"]["name"] == name for n in self.api.nodes()):
            self.api.update_node(server_node(name, cpu))
        else:
            self.api.add_node(server_node(name, cpu))
        self._settle()

    @rule(cpu=st.sampled_from(CPUS), mem=st.sampled_from(MEMS))
    def create_pod(self, cpu: str, mem: str) -> None:
        self.api.add_pod(pod_obj(f"s{next(self.uids)}", cpu, mem))
        self._settle()

    @precondition(lambda self: bool(self.url))
    @rule(data=st.data())
    def delete_pod(self, data: st.DataObject) -> None:
        pods = self.api.pods()
        if pods:
            p = data.draw(st.sampled_from(pods))
            self.api.delete_pod("default", p["metadata"]["name"])
        self._settle()

    @precondition(lambda self: bool(self.url))
    @rule(data=st.data(), watch=st.sampled_from(["live", "held", "fresh"]), fail=st.booleans())
    def schedule_and_bind(self, data: st.DataObject, watch: str, fail: bool) -> None:
        if watch != "live":
            self.api.hold_watch("pods")
        try:
            if watch == "fresh":
                self.api.add_pod(pod_obj(f"s{next(self.uids)}", self.rng.choice(CPUS), self.rng.choice(MEMS)))
            pending = [p for p in self.api.pods() if not p["spec"].get("nodeName")]
            if not pending:
                return
            pod = data.draw(st.sampled_from(pending))
            node = data.draw(st.sampled_from(sorted(n["metadata"]["name"] for n in self.api.nodes())))
            status, _ = call(f"{self.url}/prioritize", _raw({"Pod": pod, "NodeNames": self._names()}))
            assert status == 200
            if fail:
                self.api.fail("POST", r"/binding$", status=500, times=2)  # the binder's one retry too
            before = self._said_so()
            answer = bind(self.url, pod["metadata"]["name"], pod["metadata"]["uid"], node)
            self.api.clear_faults()
            assert bool(answer["Error"]) == fail, answer
            _note(f"server bind ({watch} watch): " + ("API failure injected" if fail else "accepted"))
            # A successful bind is owed at once (no waiting for the watch), unless the extender
            # itself said it could not: "late" (its snapshot not installed within the budget)
            # or "not_ready" (the cache process did not answer in time: a loaded machine). A
            # failed bind's uncount is owed within FORGET_BUDGET_S, so the settle below checks it.
            if not fail and (diff := self._differences()):
                assert self._said_so() > before, (watch, diff)
                _note("server bind: not shown at once, and the extender said so (late/not_ready)")
        finally:
            self.api.release_watch("pods")
        self._settle()


def server_node(name: str, cpu: int) -> dict[str, Any]:
    return server_node_obj(name, cpu=str(cpu), usage_cpu=None)


ServerMachine.TestCase.settings = settings(
    max_examples=6,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestBindsInTheCacheProcess = ServerMachine.TestCase
