"""A discrete-time cluster that kube-scheduler places pods on, one policy at a time.

What it emulates, per pod (k/k ``pkg/scheduler/schedule_one.go``):

1. **In-tree filters**: NodeResourcesFit (requests of CPU, memory and the pod count against
   allocatable minus requested; the core's ``resourceFit`` filter) and the GPU devices (below);
   for a policy whose filters are framework plugins (Koordinator's usage thresholds) those too.
2. **Node sampling** (``findNodesThatPassFilters``): the search starts where the previous one
   stopped (``nextStartNodeIndex``) and stops after ``numFeasibleNodesToFind`` feasible nodes
   (adaptive ``percentageOfNodesToScore``).
3. **Extender filter** (``findNodesThatPassExtenders``), for the extender contender: our policy's
   verdict on the sampled nodes only. An empty result leaves the pod unschedulable even when
   nodes outside the sample would pass (kubernetes/kubernetes#122057), as in a real cluster.
4. **Score**: the framework's sum of ``weight * plugin score`` (0..100 each), plus
   ``extender score * weight * 10`` for the extender (``prioritizeNodes``); skipped when one
   node is left. The highest total wins, ties broken uniformly at random (``selectHost``).
5. **Bind** at once (no binding latency).

Pods that fit nowhere wait in a backlog and are retried whenever a pod leaves or new load data
arrives (kube-scheduler requeues on cluster events), until the trace deletes them.

GPU pods: openb nodes carry 0-8 GPUs and pods ask for ``gpus`` GPUs with ``gpu_milli``/1000 of
each (a share of one GPU when < 1000). Each GPU's free share is tracked; a node fits when it has
``gpus`` GPUs with at least ``gpu_milli`` free each, and the pod takes the fullest such GPUs
(best fit). A GPU pod with a ``gpu_spec`` (GPU models, ``|``-separated) fits only nodes whose
``model`` is one of them, as the trace's own simulator filters (hkust-adsl/kubernetes-scheduler-
simulator ``open_gpu_share.go`` ``Filter`` and ``IsNodeAccessibleToPodByType``, against the node
label ``alibabacloud.com/gpu-card-model``, the node list's ``model``). The same device
allocator serves every policy (it stands for the device plugin and a GPU-sharing filter such
as gpushare's; no policy here scores GPUs). CPU and memory are scored as on any node.

Load as the schedulers see it: every ``report_interval_s`` the node's measured usage is the
mean of its true usage over the contender's ``load_window_s`` before the report: the preceding
interval (60 s, metrics-server's window) for most, 300 s for Koordinator (koordlet's NodeMetric
average), so it lags by 0-1 interval plus the window. Pods bound since are added back with
their predicted usage (``pending``: the extender's recent-bind compensation and Koordinator's
assign cache with Koordinator's estimator, Trimaran's recent-bind cache with TargetLoadPacking's
``PredictUtilisation``: ``Contender.recent_binds``) until a report at least
``compensation_lag_s`` after the bind is out.

The pods the schedulers see carry what the trace gives: requests, and limits (= requests) for
Guaranteed pods only; the load model's per-class cap on demand is no limit
(``benchmarks/loadmodel.py``).
"""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.loadmodel import Usage
from benchmarks.sampling import find_feasible, next_start_index, num_feasible_nodes_to_find
from benchmarks.trace import QOS_CLASSES, Nodes, Pods
from scoring import Policy, trimaran
from scoring.evaluate import MAX_EXTENDER_PRIORITY, MAX_NODE_SCORE, Evaluation, evaluate
from scoring.policy import TargetLoadPackingArgs
from scoring.types import CPU, MEMORY, PODS, NodeTable, PodDemand

RESOURCES = (CPU, MEMORY, PODS)
MAX_PODS_PER_NODE = 110.0  # kubelet's default maxPods
DEFAULT_MEMORY_REQUEST = 200.0 * 1024 * 1024  # k/k DefaultMemoryRequest, for the non-zero sums


RECENT_BINDS = ("estimator", "tlp")


@dataclasses.dataclass(frozen=True)
class Contender:
    """One way of scheduling: a policy file of the scoring core, run either as the framework
    runs plugins (``mode="plugins"``: filters before sampling, scores summed with their
    weights) or as our extender behind kube-scheduler's defaults (``mode="extender"``).

    ``recent_binds``: how a pod bound since the last load report is counted until a report
    shows it: ``estimator``, the policy's Koordinator estimator (our extender, Koordinator's
    assign cache), or ``tlp``, TargetLoadPacking's ``PredictUtilisation`` (Trimaran's
    recent-bind cache). ``load_window_s``: the window the reported load is averaged over."""

    name: str
    title: str
    policy: Policy
    mode: str
    extender_weight: int = 0
    in_tree: Policy | None = None  # the default plugins the extender is added to
    recent_binds: str = "estimator"
    load_window_s: float = 60.0

    def __post_init__(self) -> None:
        if self.recent_binds not in RECENT_BINDS:
            raise ValueError(f"recent_binds must be one of {RECENT_BINDS}, got {self.recent_binds!r}")
        if not self.load_window_s > 0:
            raise ValueError(f"load_window_s must be positive, got {self.load_window_s!r}")


@dataclasses.dataclass(frozen=True)
class SimParams:
    tick_s: float = 15.0
    report_interval_s: float = 60.0
    compensation_lag_s: float = 60.0
    hotspot_utilisation: float = 0.80
    tail_s: float = 3600.0  # simulated after the last arrival
    percentage_of_nodes_to_score: int = 0  # 0 = kube-scheduler's adaptive default

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class RunResult:
    """One contender, one seed."""

    contender: str
    seed: int
    pods: int
    placed_first_try: int
    placed_after_wait: int
    unschedulable: int
    wait_s_mean: float
    hotspot_node_minutes: float
    hotspot_node_minutes_single_pod: float  # of which on nodes running one pod only
    unmet_cpu_core_minutes: float
    util_p50_mean: float
    util_p95_mean: float
    util_max_mean: float
    util_max_peak: float
    nodes_in_use_mean: float
    nodes_in_use_peak: int
    decide_ms_p50: float
    decide_ms_p99: float
    decide_ms_mean: float
    wall_s: float
    series: dict[str, list[float]]

    def summary(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("series")
        return d


def ticks_for(pods: Pods, params: SimParams) -> int:
    return int(np.ceil((float(pods.arrival.max()) + params.tail_s) / params.tick_s)) + 1


class Cluster:
    """The mutable state of one run. Arrays are (N, 3) over RESOURCES, Fortran order so that
    NodeTable takes them without conversion. ``load_window_s``: what each load report
    averages (default: the report interval)."""

    def __init__(
        self, nodes: Nodes, pods: Pods, usage: Usage, params: SimParams, *, load_window_s: float | None = None
    ) -> None:
        n = len(nodes.names)
        self.nodes, self.pods, self.usage, self.params = nodes, pods, usage, params
        self.alloc = np.asfortranarray(np.stack([nodes.cpu, nodes.memory, np.full(n, MAX_PODS_PER_NODE)], 1))
        self.requested = np.zeros((n, 3), order="F")
        self.nonzero = np.zeros((n, 3), order="F")
        self.limits = np.zeros((n, 3), order="F")
        self.pending = np.zeros((n, 3), order="F")
        slots = max(1, int(nodes.gpus.max()) if n else 1)
        self.gpu_free = np.where(np.arange(slots)[None, :] < nodes.gpus[:, None], 1000, -1).astype(np.int64)
        self.pod_node = np.full(len(pods), -1, dtype=np.int64)
        self.pod_gpus: dict[int, npt.NDArray[np.int64]] = {}
        self.pod_req = np.stack([pods.cpu, pods.memory, np.ones(len(pods))], 1)
        self.pod_nonzero = self.pod_req.copy()
        self.pod_nonzero[:, 1] = np.where(pods.memory > 0, pods.memory, DEFAULT_MEMORY_REQUEST)
        # limits as the schedulers see them: the trace has requests only; Guaranteed pods have
        # limits = requests (CPU and memory), the others none (benchmarks/loadmodel.py, cap_q)
        guaranteed = pods.qos == QOS_CLASSES.index("Guaranteed")
        self.pod_lim = np.zeros((len(pods), 3))
        self.pod_lim[guaranteed, :2] = self.pod_req[guaranteed, :2]
        self.pod_lim_sum = np.maximum(self.pod_lim, self.pod_req)  # Trimaran SetMaxLimits per pod
        self._gpu_models: dict[str, npt.NDArray[np.bool_]] = {}
        # the latest load report, read-only: a new array per report, shared by every table
        self.reported = np.zeros((n, 3), order="F")
        self.reported[:, 2] = np.nan
        self.reported.flags.writeable = False
        self.report_time = 0.0
        # the measured (CPU, memory) of the last `load_window_s` of ticks, a ring
        window = params.report_interval_s if load_window_s is None else load_window_s
        self.history = np.zeros((max(1, round(window / params.tick_s)), n, 2))
        self.measured_ticks = 0
        self.comp: dict[int, tuple[int, npt.NDArray[np.float64]]] = {}
        self.comp_queue: collections.deque[tuple[float, int]] = collections.deque()
        self.start = 0
        self.nan = np.full((n, 3), np.nan, order="F")
        for a in (self.alloc, self.nan):
            a.flags.writeable = False

    # --- what the schedulers see ---------------------------------------------------------

    def table(self, now: float) -> NodeTable:
        """The node table as the scheduler sees it at ``now`` (copies of the mutable state)."""
        n = len(self.nodes.names)
        requested = self.requested.copy(order="F")
        return NodeTable(
            names=self.nodes.names,
            resources=RESOURCES,
            allocatable=self.alloc,
            capacity=self.alloc,
            requested=requested,
            nonzero_requested=self.nonzero.copy(order="F"),
            limits=self.limits.copy(order="F"),
            usage=self.reported,
            usage_avg=self.nan,
            usage_std=self.nan,
            usage_p95=self.nan,
            load_age_s=np.full(n, now - self.report_time),
            pending=self.pending.copy(order="F"),
            threshold_override=self.nan,
        )

    def gpu_fit(self, pod: int) -> npt.NDArray[np.bool_]:
        """Nodes with the pod's GPUs free, of a model its ``gpu_spec`` allows (if it has one)."""
        g = int(self.pods.gpus[pod])
        if g == 0:
            return np.ones(len(self.nodes.names), bool)
        fit = (self.gpu_free >= self.pods.gpu_milli[pod]).sum(axis=1) >= g
        spec = self.pods.gpu_spec[pod] if self.pods.gpu_spec else ""
        return fit & self.gpu_model_fit(spec) if spec else fit

    def gpu_model_fit(self, spec: str) -> npt.NDArray[np.bool_]:
        """Nodes whose GPU model is in ``spec`` (``|``-separated models; empty entries ignored,
        no entry: every node), computed once per distinct spec."""
        mask = self._gpu_models.get(spec)
        if mask is None:
            wanted = {m for m in spec.split("|") if m}
            models = self.nodes.model or ("",) * len(self.nodes.names)
            mask = np.array([m in wanted for m in models], bool) if wanted else np.ones(len(models), bool)
            self._gpu_models[spec] = mask
        return mask

    def request_fit(self, pod: int, gpu: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        """Requests and devices (``gpu``: ``gpu_fit(pod)``) fit: a cheap test before a full cycle."""
        free = self.alloc - self.requested
        return (free >= self.pod_req[pod]).all(axis=1) & gpu

    # --- changes ---------------------------------------------------------------------------

    def bind(self, pod: int, node: int, now: float, estimate: npt.NDArray[np.float64]) -> None:
        self.pod_node[pod] = node
        self.requested[node] += self.pod_req[pod]
        self.nonzero[node] += self.pod_nonzero[pod]
        self.limits[node] += self.pod_lim_sum[pod]
        g = int(self.pods.gpus[pod])
        if g:
            need = int(self.pods.gpu_milli[pod])
            free = self.gpu_free[node]
            slots = np.flatnonzero(free >= need)
            take = slots[np.argsort(free[slots], kind="stable")[:g]]
            free[take] -= need
            self.pod_gpus[pod] = take
        est = np.array([estimate[0], estimate[1], 0.0])
        self.pending[node] += est
        self.comp[pod] = (node, est)
        self.comp_queue.append((now, pod))

    def release(self, pod: int) -> None:
        node = int(self.pod_node[pod])
        self.pod_node[pod] = -1
        self.requested[node] -= self.pod_req[pod]
        self.nonzero[node] -= self.pod_nonzero[pod]
        self.limits[node] -= self.pod_lim_sum[pod]
        take = self.pod_gpus.pop(pod, None)
        if take is not None:
            self.gpu_free[node, take] += int(self.pods.gpu_milli[pod])
        self._uncompensate(pod)

    def _uncompensate(self, pod: int) -> None:
        entry = self.comp.pop(pod, None)
        if entry is not None:
            node, est = entry
            self.pending[node] = np.maximum(self.pending[node] - est, 0.0)

    # --- time --------------------------------------------------------------------------------

    def measure(self, tick: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], int]:
        """True CPU demand and used CPU and memory per node at ``tick``; adds to the report
        window. Returns (cpu demand (N,), cpu used (N,), nodes in use)."""
        n = len(self.nodes.names)
        running = np.flatnonzero(self.pod_node >= 0)
        where = self.pod_node[running]
        cpu = self.usage.cpu_fraction[tick, running] * self.pods.cpu[running]
        mem = self.usage.memory_fraction[running] * self.pods.memory[running]
        demand = np.bincount(where, weights=cpu, minlength=n)
        used = np.minimum(demand, self.nodes.cpu)
        mem_used = np.minimum(np.bincount(where, weights=mem, minlength=n), self.nodes.memory)
        row = self.history[self.measured_ticks % len(self.history)]
        row[:, 0] = used
        row[:, 1] = mem_used
        self.measured_ticks += 1
        return demand, used, int(np.count_nonzero(np.bincount(where, minlength=n)))

    def publish(self, now: float) -> None:
        """A new load report: the mean of the ticks measured in the load window (fewer at the
        start: koordlet and metrics-server average what they have); compensation the report
        covers ends."""
        k = min(self.measured_ticks, len(self.history))
        if k:
            size = len(self.history)
            total = self.history[(self.measured_ticks - k) % size].copy()
            for j in range(self.measured_ticks - k + 1, self.measured_ticks):  # oldest first
                total += self.history[j % size]
            reported = self.reported.copy(order="F")
            reported[:, :2] = total / k
            reported.flags.writeable = False
            self.reported = reported
        self.report_time = now
        lag = self.params.compensation_lag_s
        while self.comp_queue and self.comp_queue[0][0] + lag <= now:
            _, pod = self.comp_queue.popleft()
            self._uncompensate(pod)


def _demand(pods: Pods, cluster: Cluster, pod: int) -> PodDemand:
    qos = "Guaranteed" if QOS_CLASSES[int(pods.qos[pod])] == "Guaranteed" else "Burstable"
    return PodDemand(
        resources=RESOURCES,
        requests=cluster.pod_req[pod].copy(),
        nonzero_requests=cluster.pod_nonzero[pod].copy(),
        limits=cluster.pod_lim[pod].copy(),
        qos=qos,
    )


def plugin_total(ev: Evaluation, policy: Policy) -> npt.NDArray[np.int64]:
    """The framework's score: sum over plugins of weight x score (0..100); a plugin that does
    not apply to the pod (None) adds nothing."""
    total = np.zeros(len(ev.combined), np.int64)
    for spec in policy.strategies:
        c = ev.components[spec.name]
        if c is not None and spec.weight:
            total += spec.weight * c
    return total


EXTENDER_SCALE = MAX_NODE_SCORE // MAX_EXTENDER_PRIORITY  # k/k extender.go: score * weight * 10


class Scheduler:
    """One contender's scheduling cycle over a Cluster."""

    def __init__(self, contender: Contender, cluster: Cluster, seed: int) -> None:
        self.c = contender
        self.cluster = cluster
        self.rng = np.random.default_rng(seed + 7919)
        self.want = num_feasible_nodes_to_find(
            len(cluster.nodes.names), cluster.params.percentage_of_nodes_to_score
        )
        self.tlp = next(
            (s.args for s in contender.policy.strategies if isinstance(s.args, TargetLoadPackingArgs)),
            TargetLoadPackingArgs(),
        )

    def recent_bind_estimate(self, pod: int, own: Evaluation) -> npt.NDArray[np.float64]:
        """(CPU, memory) a pod just bound counts for until a load report shows it.

        ``tlp``: Trimaran's recent-bind cache counts each pod with TargetLoadPacking's
        ``PredictUtilisation`` per container (the CPU limit if set, else
        ``int64(math.Round(request x defaultRequestsMultiplier))`` (1.5), else
        ``defaultRequests.cpu`` (1000m)), plus the pod's overhead (none here): CPU only, TLP
        reads nothing else. kubernetes-sigs/scheduler-plugins
        ``pkg/trimaran/targetloadpacking/targetloadpacking.go`` (``Score``, the
        ``missingCPUUtilMillis`` loop, and ``PredictUtilisation``): identical at master commit
        0404cc6 (the ``Score(nodeInfo)`` framework API) and at the older 2bf86fe
        (``Score(nodeName)``); defaults ``apis/config/v1/defaults.go``
        (``DefaultRequestsMultiplier = "1.5"``, ``DefaultRequestsMilliCores = 1000``).
        ``estimator``: the policy's Koordinator estimator, as the pod was scored (our extender's
        compensation; Koordinator's assign cache, ``load_aware.go`` ``estimatedAssignedPodUsed``).
        """
        if self.c.recent_binds == "tlp":
            lim = self.cluster.pod_lim[pod, 0]
            cpu = trimaran.tlp_predicted_cpu(
                [self.cluster.pod_req[pod, 0]],
                [lim],
                0.0,
                multiplier=self.tlp.defaultRequestsMultiplier,
                default_millis=self.tlp.defaultRequestsCpuMillis,
            )
            return np.array([cpu, 0.0])
        return own.estimate[:2]

    def schedule(self, pod: int, now: float) -> bool:
        """One cycle; True when the pod was bound."""
        cl, c = self.cluster, self.c
        gpu = cl.gpu_fit(pod)
        if not cl.request_fit(pod, gpu).any():
            return False
        table = cl.table(now)
        demand = _demand(cl.pods, cl, pod)
        in_tree_policy = c.policy if c.in_tree is None else c.in_tree
        in_tree = evaluate(pod=demand, nodes=table, policy=in_tree_policy)
        own = in_tree if c.in_tree is None else evaluate(pod=demand, nodes=table, policy=c.policy)
        search = find_feasible(in_tree.verdict.feasible & gpu, cl.start, self.want)
        sample = search.rows
        cl.start = next_start_index(cl.start, search.processed, len(gpu))
        if c.mode == "extender":
            sample = sample[own.verdict.feasible[sample]]
        if len(sample) == 0:
            return False
        if len(sample) == 1:
            chosen = int(sample[0])
        else:
            total = plugin_total(in_tree, in_tree_policy)[sample]
            if c.mode == "extender":
                total = total + own.scores[sample] * c.extender_weight * EXTENDER_SCALE
            best = np.flatnonzero(total == total.max())
            chosen = int(sample[best[self.rng.integers(len(best))]])
        cl.bind(pod, chosen, now, self.recent_bind_estimate(pod, own))
        return True


def _series_row(cl: Cluster, tick: int, now: float, hot: float) -> tuple[float, ...]:
    demand, used, in_use = cl.measure(tick)
    util = used / cl.nodes.cpu
    busy = util[cl.requested[:, 2] > 0]
    p50, p95, mx = np.percentile(busy, [50, 95, 100]) if len(busy) else (0.0, 0.0, 0.0)
    total_cpu = float(cl.nodes.cpu.sum())
    hot_nodes = util > hot
    return (
        now,
        float(p50),
        float(p95),
        float(mx),
        float(np.count_nonzero(hot_nodes)),
        float(np.count_nonzero(hot_nodes & (cl.requested[:, 2] == 1))),
        float(in_use),
        float(cl.requested[:, 0].sum()) / total_cpu,
        float(used.sum()) / total_cpu,
        float(np.maximum(demand - cl.nodes.cpu, 0.0).sum()) / 1000.0,
    )


SERIES = (
    "t_s",
    "util_p50",
    "util_p95",
    "util_max",
    "hotspot_nodes",
    "hotspot_single_pod",
    "nodes_in_use",
    "requested_cpu",
    "used_cpu",
    "unmet_cpu_cores",
)


def run(
    contender: Contender, nodes: Nodes, pods: Pods, usage: Usage, params: SimParams, seed: int
) -> RunResult:
    """Replay every pod of ``pods`` under ``contender``; the usage draws of ``seed``."""
    started = time.perf_counter()
    cl = Cluster(nodes, pods, usage, params, load_window_s=contender.load_window_s)
    sched = Scheduler(contender, cl, seed)
    ticks = usage.cpu_fraction.shape[0]
    report_every = max(1, round(params.report_interval_s / params.tick_s))
    by_departure = np.argsort(pods.departure, kind="stable")
    arrived = departed = 0
    backlog: dict[int, float] = {}  # pod -> arrival, in arrival order
    first_try = after_wait = unschedulable = 0
    waits: list[float] = []
    decide: list[float] = []
    rows: list[tuple[float, ...]] = []
    for k in range(ticks):
        now = k * params.tick_s
        published = k > 0 and k % report_every == 0
        if published:
            cl.publish(now)
        while arrived < len(pods) and pods.arrival[arrived] <= now:
            t0 = time.perf_counter()
            ok = sched.schedule(arrived, now)
            decide.append(time.perf_counter() - t0)
            if ok:
                first_try += 1
            else:
                backlog[arrived] = float(pods.arrival[arrived])
            arrived += 1
        freed = False
        while departed < len(pods) and pods.departure[by_departure[departed]] <= now:
            p = int(by_departure[departed])
            departed += 1
            if cl.pod_node[p] >= 0:
                cl.release(p)
                freed = True
            elif backlog.pop(p, None) is not None:
                unschedulable += 1
        if backlog and (freed or published):
            for p in list(backlog):
                if sched.schedule(p, now):
                    waits.append(now - backlog.pop(p))
                    after_wait += 1
        rows.append(_series_row(cl, k, now, params.hotspot_utilisation))
    unschedulable += len(backlog)
    series = {name: [r[i] for r in rows] for i, name in enumerate(SERIES)}
    return _result(
        contender,
        seed,
        len(pods),
        first_try,
        after_wait,
        unschedulable,
        waits,
        decide,
        series,
        params,
        time.perf_counter() - started,
    )


def _result(
    contender: Contender,
    seed: int,
    n_pods: int,
    first_try: int,
    after_wait: int,
    unschedulable: int,
    waits: list[float],
    decide: list[float],
    series: dict[str, list[float]],
    params: SimParams,
    wall_s: float,
) -> RunResult:
    minutes = params.tick_s / 60.0
    in_use = np.array(series["nodes_in_use"])
    busy = in_use > 0
    mean = lambda name: float(np.array(series[name])[busy].mean()) if busy.any() else 0.0  # noqa: E731
    ms = np.array(decide) * 1000.0
    return RunResult(
        contender=contender.name,
        seed=seed,
        pods=n_pods,
        placed_first_try=first_try,
        placed_after_wait=after_wait,
        unschedulable=unschedulable,
        wait_s_mean=float(np.mean(waits)) if waits else 0.0,
        hotspot_node_minutes=float(np.sum(series["hotspot_nodes"])) * minutes,
        hotspot_node_minutes_single_pod=float(np.sum(series["hotspot_single_pod"])) * minutes,
        unmet_cpu_core_minutes=float(np.sum(series["unmet_cpu_cores"])) * minutes,
        util_p50_mean=mean("util_p50"),
        util_p95_mean=mean("util_p95"),
        util_max_mean=mean("util_max"),
        util_max_peak=float(np.max(series["util_max"])),
        nodes_in_use_mean=float(in_use[busy].mean()) if busy.any() else 0.0,
        nodes_in_use_peak=int(in_use.max()),
        decide_ms_p50=float(np.percentile(ms, 50)),
        decide_ms_p99=float(np.percentile(ms, 99)),
        decide_ms_mean=float(ms.mean()),
        wall_s=wall_s,
        series=series,
    )
