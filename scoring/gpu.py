"""GPU-aware strategies, vectorised over all candidate nodes: fragmentation gradient descent
(``GPUFragmentation``) and two of the baselines it was measured against (``GPUBestFit``,
``GPUPacking``).

Anchor: Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with
Fragmentation Gradient Descent", USENIX ATC '23, and the simulator it was evaluated with,
``hkust-adsl/kubernetes-scheduler-simulator``, read in these stored versions (the formulas are
written here from what they define; no code is copied):

* ``pkg/utils/frag.go`` @ 29a1e4c4c51130ae55bda03ea0c794d613a60295: ``NodeGpuShareFragAmount``,
  ``GetNodePodFrag``, ``CanNodeHostPodOnGpuMemory``, ``GetGpuFragMilliByNodeResAndPodRes``,
  ``FragAmountSumExceptQ3``, ``GetTypicalPods``;
* ``pkg/simulator/plugin/fgd_score.go`` @ 5b6b304d9ca2471aee1142ace87afaeb47434b67: ``Score``,
  ``calculateGpuShareFragExtendScore``; ``plugin_utils.go`` (same commit): ``sigmoid``,
  ``NormalizeScore``;
* ``pkg/simulator/plugin/best_fit_score.go`` @ 5b6b304d…: ``getBestFitScore``;
* ``pkg/simulator/plugin/gpu_packing_score.go`` @ 29a1e4c4…: ``getPackingScore``;
* ``pkg/simulator/plugin/open_gpu_share.go`` @ 29a1e4c4…: ``Filter`` (a GPU pod needs ``count``
  GPUs each with at least its share free), ``allocateGpuIdBasedOnBestFit``;
* ``pkg/type/resource.go`` @ 97f5c2c3d15f590fae6dd282fe513c56e1025b61: ``NodeResource.Sub``
  (a pod takes the GPUs with the least sufficient free share), ``GetFullyFreeGpuNum``,
  ``TargetPodList`` order; ``pkg/type/open-gpu-share/utils/const.go`` @ 5b6b304d…: ``MILLI``
  1000, ``MaxSpecCpu`` 128000, ``MaxSpecGpu`` 8000;
* ``pkg/utils/utils.go`` @ 5b6b304d…: ``GetPodResource`` (the pod's CPU: containers' non-zero
  requests), ``GetNodeResourceViaNodeInfo`` (the node's CPU left: allocatable − requested);
* ``scripts/generate_config_and_run.py`` @ c525551a3ceab528c4f69407617c96c54d1c7ace: the
  experiments' ``typicalPodsConfig`` (CPU pods included, ``podPopularityThreshold`` 95,
  ``podIncreaseStep`` 1).

State (``NodeTable``): per node the CPU left, ``c = allocatable − requested`` of ``cpu``
(millicores), and per GPU the free share ``f_g`` in thousandths (1000 = the whole GPU free):
``gpu_free``/``gpu_present``, or, for whole GPUs, derived from the GPU resource's columns (the
first ``allocatable − requested`` GPUs of a node free, 1000, the rest 0). A pod asks for ``cpu``
(its non-zero CPU requests), ``k`` GPUs and ``m`` thousandths of each (``PodDemand.gpu``, or
``k`` = its request of the GPU resource, ``m`` = 1000). A node *fits* the pod when
``c >= cpu`` and (``k = 0`` or at least ``k`` of its GPUs have ``f_g >= m``); every strategy
scores 0 where the pod does not fit (the simulator's filter removes such nodes before it
scores).

The fragmentation measure (``frag.go``). For a node and a task kind ``t`` (CPU ``c_t``, ``k_t``
GPUs of ``m_t``), with ``total = Σ_g f_g`` the node's idle GPU share:

* ``m_t = 0`` (a task without GPUs): every idle share is a fragment for it, ``frag_t = total``;
* the node fits ``t`` (``c >= c_t`` and at least ``k_t`` GPUs with ``f_g >= m_t``): only the
  GPUs too small for it, ``frag_t = Σ_{g: f_g < m_t} f_g``;
* otherwise (too little CPU, or too few GPUs with enough free): ``frag_t = total``.

The node's fragmentation is ``F = Σ_t p_t·frag_t`` over the typical tasks, ``p_t = w_t / Σ w``
(``F`` in thousandths of a GPU). ``GPUFragmentation`` scores the change the pod's placement
makes, ``ΔF = F(before) − F(after)``, as ``int64(100·σ(ΔF / 1000))`` with ``σ(x) = 1/(1 + e^-x)``
(``fgd_score.go``; no normalisation across nodes): 50 when the fragmentation does not change,
towards 0 as it grows (26 for one whole GPU more), above 50 where it falls. *After*: the node's
CPU less the pod's; a whole-GPU pod takes ``k`` fully free GPUs (``Sub``: the least sufficient
GPUs, and only a fully free GPU suffices); a pod sharing one GPU is tried on each GPU with
``f_g >= m`` and scores the best of them (the GPU FGD would then pick).

Exactness. The frequencies are integer weights (pod counts), so ``ΔF · Σw = Σ_t w_t·(frag_t −
frag'_t)`` is an exact int64 (weights below 2**40, shares below 64 000); one float division
and the sigmoid follow. The simulator sums ``p_t·frag_t`` in float64 per category and takes the
difference of the two sums; the values agree up to that rounding (which can move a score by
one where ``100·σ`` lies within ~1e-13 of an integer), and here ``ΔF`` is exactly 0 whenever no
task's fragment changes.

Typical tasks (``GetTypicalPods`` with the experiments' settings): the pods seen, grouped by kind
(CPU, GPUs, share of each; the simulator's kind also has the GPU model), sorted by count,
largest first (ties: larger CPU, then share, then GPUs first), taken one by one until they cover
``coverage`` percent of the pods; each keeps its count as its weight (the simulator's
renormalised frequency is that count over the sum of the taken counts).

Deliberate differences from the simulator:

* GPU models (``gpu_spec``, ``IsNodeAccessibleToPod``, the ``NoAccess`` fragment) are not
  modelled: a model constraint is node affinity, the filter's business, and typical tasks are
  grouped without the model.
* A node the pod does not fit scores 0 (the simulator scores only the nodes its filter kept).
* ``GPUBestFit``'s min–max normalisation runs over the nodes that pass the extender's filter and
  fit the pod (the simulator: over the nodes its filter kept).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from scoring.policy import GPUArgs, GPUFragmentationArgs
from scoring.types import (
    CPU,
    GPU_MILLI,
    MAX_NODE_GPUS,
    PODS,
    BoolArray,
    FloatArray,
    IntArray,
    NodeTable,
    PodDemand,
    TaskType,
)

MAX_NODE_SCORE = 100  # framework.MaxNodeScore
MAX_SPEC_CPU = 128_000  # open-gpu-share utils.MaxSpecCpu (millicores)
MAX_SPEC_GPU = 8_000  # open-gpu-share utils.MaxSpecGpu (thousandths of a GPU)
BEST_FIT_WEIGHTS = (0.5, 0.5)  # getBestFitScore: cpu, gpu


# --------------------------------------------------------------------------------------------
# State


@dataclasses.dataclass(frozen=True, eq=False)
class GPUState:
    """The GPUs of a node table: ``free`` (N, G) int64 thousandths free per GPU slot (0 where
    no GPU), ``present`` (N, G) bool, ``count`` (N,) GPUs per node, ``total`` (N,) idle share
    per node, ``full`` (N,) fully free GPUs per node, ``whole`` every share is 0 or 1000 (only
    whole GPUs allocated: the strategies then skip the per-GPU work), ``memo`` facts derived
    for a workload or a pod share, kept with the table."""

    free: IntArray
    present: BoolArray
    count: IntArray
    total: IntArray
    full: IntArray
    whole: bool
    memo: dict[object, object] = dataclasses.field(default_factory=dict)

    @property
    def slots(self) -> int:
        return int(self.free.shape[1])

    def sorted_free(self) -> IntArray:
        """(N, G) each node's free shares in ascending order (once per table)."""
        out = self.memo.get("sorted")
        if out is None:
            out = np.sort(self.free, axis=1)
            self.memo["sorted"] = out
        return out  # type: ignore[return-value]


def _state(free: IntArray, present: BoolArray) -> GPUState:
    count = present.sum(axis=1, dtype=np.int64)
    full = (free == GPU_MILLI).sum(axis=1, dtype=np.int64)
    total = free.sum(axis=1, dtype=np.int64)
    whole = bool(((free == 0) | (free == GPU_MILLI)).all())
    return GPUState(free, present, count, total, full, whole)


def gpu_state(nodes: NodeTable, resource: str) -> GPUState | None:
    """The table's GPU state: its per-GPU shares when it has them, else whole GPUs derived from
    the ``resource`` columns (the first ``allocatable − requested`` GPUs of a node free, the
    rest of its ``allocatable`` GPUs in use; at most ``MAX_NODE_GPUS`` a node), else None (the
    GPU strategies then do not apply). Computed once per table."""
    if nodes.gpu_free is not None and nodes.gpu_present is not None:
        key: tuple[str, str | None] = ("gpu", None)
    else:
        key = ("gpu", resource)
    memo = nodes.memo
    if key in memo:
        return memo[key]  # type: ignore[return-value]
    state: GPUState | None
    if nodes.gpu_free is not None and nodes.gpu_present is not None:
        state = _state(nodes.gpu_free, nodes.gpu_present)
    else:
        col = nodes.column(resource)
        if col < 0:
            state = None
        else:
            alloc = np.clip(np.floor(nodes.allocatable[:, col]), 0, MAX_NODE_GPUS).astype(np.int64)
            used = np.clip(np.ceil(nodes.requested[:, col]), 0, None)
            n_free = np.clip(alloc - used, 0, None).astype(np.int64)
            slots = np.arange(int(alloc.max()) if len(alloc) else 0)
            present = slots[None, :] < alloc[:, None]
            free = np.where(slots[None, :] < n_free[:, None], GPU_MILLI, 0).astype(np.int64)
            state = _state(free, present)
    memo[key] = state
    return state


def pod_gpus(pod: PodDemand, resource: str) -> tuple[int, int]:
    """(k GPUs, m thousandths of each) the pod asks for: ``PodDemand.gpu``, else whole GPUs as
    many as its request of ``resource`` (0, 0 without)."""
    if pod.gpu is not None:
        return (pod.gpu.count, pod.gpu.milli if pod.gpu.count else 0)
    k = int(pod.requests[pod.resources.index(resource)]) if resource in pod.resources else 0
    return (k, GPU_MILLI if k > 0 else 0)


def _node_cpu_left(nodes: NodeTable) -> IntArray:
    """(N,) int64 millicores of CPU not requested: ``allocatable − requested`` (the simulator's
    ``MilliCpuLeft``; negative where over-committed; 0 allocatable where the table has no cpu)."""
    col = nodes.column(CPU)
    if col < 0:
        return np.zeros(len(nodes), np.int64)
    return (nodes.allocatable[:, col] - nodes.requested[:, col]).astype(np.int64)


def _pod_cpu(pod: PodDemand) -> int:
    """The pod's CPU as the simulator counts it: its containers' non-zero requests."""
    return int(pod.nonzero_requests[pod.resources.index(CPU)]) if CPU in pod.resources else 0


def _gpus_at_least(state: GPUState, m: int) -> IntArray:
    """(N,) GPUs of each node with at least ``m`` thousandths free (m >= 1)."""
    if state.whole or m == GPU_MILLI:
        return state.full if m > 0 else state.count
    out: IntArray = (state.free >= m).sum(axis=1, dtype=np.int64)
    return out


def fits(state: GPUState, cpu_left: IntArray, cpu: int, k: int, m: int) -> BoolArray:
    """(N,) the node can take the pod: ``cpu_left >= cpu`` and, for a GPU pod, at least ``k``
    GPUs with ``m`` thousandths free (open-gpu-share ``Filter`` / ``AllocateGpuId``)."""
    ok: BoolArray = cpu_left >= cpu
    if k > 0:
        ok &= _gpus_at_least(state, m) >= k
    return ok


def _has_requests(pod: PodDemand) -> bool:
    """The pod sets some request (the simulator's ``len(PodRequestsAndLimits(p)) == 0`` test)."""
    return pod.gpu is not None or any(
        v != 0 for name, v in zip(pod.resources, pod.requests.tolist(), strict=True) if name != PODS
    )


# --------------------------------------------------------------------------------------------
# Typical tasks


def typical_tasks(counts: Sequence[TaskType], coverage: int) -> tuple[TaskType, ...]:
    """The typical tasks among the pods seen (``GetTypicalPods`` with step 1): kinds by count,
    largest first (ties: larger CPU, share, GPUs first: ``TargetPodList`` reversed), taken until
    their counts reach ``coverage`` percent of all pods; each keeps its count as weight. Empty
    when nothing was seen."""
    ordered = sorted(counts, key=lambda t: (t.weight, t.cpu, t.milli, t.gpus), reverse=True)
    total = sum(t.weight for t in ordered)
    out: list[TaskType] = []
    covered = 0
    for t in ordered:
        if 100 * covered >= coverage * total:
            break
        out.append(t)
        covered += t.weight
    return tuple(out)


def workload(nodes: NodeTable, args: GPUFragmentationArgs) -> tuple[TaskType, ...]:
    """The typical tasks the strategy weighs: the policy's, else those of the pods the table
    says were seen (once per table)."""
    if args.typicalTasks:
        return args.typicalTasks
    key = ("typical", args.coverage)
    memo = nodes.memo
    if key not in memo:
        memo[key] = typical_tasks(nodes.observed_tasks, args.coverage)
    return memo[key]  # type: ignore[return-value]


@dataclasses.dataclass(frozen=True, eq=False)
class _Mix:
    """A workload prepared for G GPU slots. ``weight`` Σ w over all tasks; ``milli`` (M,) the
    distinct shares of the GPU tasks, ascending; ``cpus`` (C,) their distinct CPUs, ascending;
    ``table`` (M, G + 1, C + 1) int64, flattened in ``flat``: ``table[i, n, j]`` = Σ w_t over the
    GPU tasks of share ``milli[i]`` with ``k_t <= n`` and ``c_t <= cpus[j − 1]`` (``j`` = how
    many of ``cpus`` are at most the node's CPU left): the weight of the tasks of that share a
    node with ``n`` GPUs of enough free share fits; ``whole`` the same summed over the shares,
    (G + 1) x (C + 1) flattened (a node with whole GPUs only has the same ``n`` for every
    share)."""

    weight: int
    milli: IntArray
    cpus: IntArray
    slots: int
    flat: IntArray
    whole: IntArray

    @property
    def stride(self) -> int:
        """Flat distance between ``n`` and ``n + 1``."""
        return len(self.cpus) + 1

    def planes(self, n: IntArray) -> IntArray:
        """(M, X) flat offsets of ``table[i, n[i, x], 0]``, for ``n`` (M, X) in 0..G."""
        base = np.arange(len(self.milli), dtype=np.int64) * ((self.slots + 1) * self.stride)
        out: IntArray = n * self.stride + base[:, None]
        return out

    def fitting(self, planes: IntArray, cpu_left: IntArray, shift: int = 0) -> IntArray:
        """(M, X) ``table[i, n[i, x] − shift, j(cpu_left[x])]`` with ``planes`` from
        ``planes(n)``: per share and node, the weight of the tasks of that share the node fits
        with ``shift`` GPUs fewer reaching each share. ``n − shift`` must not be negative where
        the value is used (elsewhere the index is only kept inside the table)."""
        j = np.searchsorted(self.cpus, cpu_left, side="right")
        idx = planes + (j - shift * self.stride)[None, :]
        return np.take(self.flat, idx, mode="clip")

    @functools.cached_property
    def reached(self) -> IntArray:
        """(1001,) how many of the task shares a free share of 0..1000 reaches."""
        out: IntArray = np.searchsorted(self.milli, np.arange(GPU_MILLI + 1), side="right")
        return out

    def fitting_whole(self, n: IntArray, cpu_left: IntArray) -> IntArray:
        """(X,) the weight of the GPU tasks a node with ``n`` fully free GPUs (and nothing else
        free) and ``cpu_left`` fits."""
        j = np.searchsorted(self.cpus, cpu_left, side="right")
        return np.take(self.whole, np.clip(n, 0, self.slots) * self.stride + j)


def _mix(tasks: tuple[TaskType, ...], slots: int) -> _Mix:
    gpu_tasks = [t for t in tasks if t.gpus > 0]
    milli = np.array(sorted({t.milli for t in gpu_tasks}), dtype=np.int64)
    cpus = np.array(sorted({t.cpu for t in gpu_tasks}), dtype=np.int64)
    delta = np.zeros((len(milli), slots + 1, len(cpus) + 1), dtype=np.int64)
    # more GPUs than any node has: fits nowhere, never counted
    kept = np.array([(t.milli, t.gpus, t.cpu, t.weight) for t in gpu_tasks if t.gpus <= slots], np.int64)
    if len(kept):
        i = np.searchsorted(milli, kept[:, 0])
        j = np.searchsorted(cpus, kept[:, 2]) + 1
        np.add.at(delta, (i, kept[:, 1], j), kept[:, 3])
    table = delta.cumsum(axis=1).cumsum(axis=2)
    return _Mix(
        sum(t.weight for t in tasks),
        milli,
        cpus,
        slots,
        np.ascontiguousarray(table).ravel(),
        np.ascontiguousarray(table.sum(axis=0)).ravel(),
    )


@dataclasses.dataclass(frozen=True, eq=False)
class _Prepared:
    """A workload prepared for a table's GPU state: the mix, and per share ``milli[i]`` and
    node (M, N) ``at_least`` GPUs with at least that share free (as ``planes``: the flat
    offsets of ``table[i, at_least, 0]``) and ``below`` the free share on the GPUs with less
    (share-major: the sums over shares and the prefix sums run over contiguous rows). A state
    of whole GPUs needs neither for its own fragmentation (every share's ``at_least`` is the
    fully free GPUs, ``below`` 0): they are made on demand. ``memo`` keeps, for shared-GPU
    pods, the prefix sums of the nodes as they are (see ``_shared_fgd``)."""

    mix: _Mix
    state: GPUState
    memo: dict[str, npt.NDArray[np.generic]] = dataclasses.field(default_factory=dict)

    def counts(self) -> tuple[IntArray, IntArray]:
        """(planes, below), (M, N) each."""
        if "planes" not in self.memo:
            mix, state = self.mix, self.state
            n, m = len(state.total), len(mix.milli)
            if state.whole:
                at_least = np.repeat(state.full[None, :], m, axis=0)
                below = np.zeros((m, n), np.int64)
            else:
                # each node's shares ascending, offset by node so that all of them are one
                # ascending run: one search finds, per node and task share, how many GPUs fall
                # short of it, and a running sum their free share
                srt = state.sorted_free()
                g = srt.shape[1]
                offset = np.arange(n, dtype=np.int64) * (2 * GPU_MILLI)
                keys = (srt + offset[:, None]).ravel()
                short = np.searchsorted(keys, (offset[:, None] + mix.milli[None, :]).ravel())
                running = np.concatenate([np.zeros(1, np.int64), np.cumsum(srt.ravel())])
                row_start = np.repeat(np.arange(n, dtype=np.int64) * g, m)
                at_least = (g - (short - row_start)).reshape(n, m).T
                below = (running[short] - running[row_start]).reshape(n, m).T
            self.memo["planes"] = np.ascontiguousarray(mix.planes(at_least))
            self.memo["below"] = np.ascontiguousarray(below)
        return self.memo["planes"], self.memo["below"]  # type: ignore[return-value]


def _prepared(state: GPUState, tasks: tuple[TaskType, ...]) -> _Prepared:
    """The workload prepared for the table (once per table and workload)."""
    key = ("mix", tasks)
    got = state.memo.get(key)
    if got is None:
        got = _Prepared(_mix(tasks, state.slots), state)
        state.memo[key] = got
    return got  # type: ignore[return-value]


def _weighted_frag(
    mix: _Mix, total: IntArray, cpu_left: IntArray, planes: IntArray, below: IntArray, shift: int = 0
) -> IntArray:
    """``Σ_t w_t·frag_t`` of nodes in the given state, exact int64: every task counts the whole
    idle share but the GPU tasks the node fits, which count only the share below theirs.
    ``total``/``cpu_left`` (X,), ``planes``/``below`` (M, X) (``shift`` GPUs fewer reaching
    each share than ``planes`` says)."""
    out: IntArray = mix.weight * total
    if len(mix.milli):
        fitting = mix.fitting(planes, cpu_left, shift)
        out = out - (fitting * (total[None, :] - below)).sum(axis=0)
    return out


def _weighted_frag_whole(mix: _Mix, total: IntArray, cpu_left: IntArray, full: IntArray) -> IntArray:
    """``_weighted_frag`` of nodes whose free GPUs are all fully free (``total`` = 1000·``full``):
    nothing is below any share, so ``total · (W − the weight of the GPU tasks it fits)``."""
    out: IntArray = total * (mix.weight - mix.fitting_whole(full, cpu_left))
    return out


def _sigmoid_score(diff: IntArray, weight: int) -> IntArray:
    """``int64(100·σ(ΔF / 1000))`` with ``ΔF = diff / weight`` (``fgd_score.go``)."""
    x = diff.astype(np.float64) / float(GPU_MILLI * weight)
    return np.trunc(1.0 / (1.0 + np.exp(-x)) * float(MAX_NODE_SCORE)).astype(np.int64)


def _before(state: GPUState, prep: _Prepared, cpu_left: IntArray) -> IntArray:
    """(N,) ``Σ_t w_t·frag_t`` of the nodes as they are."""
    if state.whole:
        return _weighted_frag_whole(prep.mix, state.total, cpu_left, state.full)
    return _weighted_frag(prep.mix, state.total, cpu_left, *prep.counts())


def fragmentation(nodes: NodeTable, state: GPUState, tasks: tuple[TaskType, ...]) -> FloatArray:
    """(N,) each node's fragmentation ``F = Σ_t p_t·frag_t`` in thousandths of a GPU (for the
    harness and the explanation; the strategy works on its exact integer form)."""
    prep = _prepared(state, tasks)
    return _before(state, prep, _node_cpu_left(nodes)) / float(prep.mix.weight)


def fgd_scores(
    state: GPUState,
    tasks: tuple[TaskType, ...],
    cpu_left: IntArray,
    cpu: int,
    k: int,
    m: int,
    *,
    before: IntArray | None = None,
) -> IntArray:
    """(N,) int64 ``GPUFragmentation`` of a pod asking ``cpu`` millicores and ``k`` GPUs of
    ``m`` thousandths, 0 where it does not fit (see the module docstring). ``before``: the
    nodes' ``Σ_t w_t·frag_t`` as they are, when the caller keeps it."""
    prep = _prepared(state, tasks)
    mix = prep.mix
    if before is None:
        before = _before(state, prep, cpu_left)
    if k == 1 and m < GPU_MILLI:  # a node fits when its CPU does and it has a candidate GPU
        return np.where(cpu_left >= cpu, _shared_fgd(state, prep, before, cpu_left, cpu, m), 0)
    # CPU (and k fully free GPUs, which no task share finds too small afterwards) taken
    ok = fits(state, cpu_left, cpu, k, m)
    total, cpu_after = state.total - k * m, cpu_left - cpu
    if state.whole:
        after = _weighted_frag_whole(mix, total, cpu_after, state.full - k)
    else:  # every share is reached by the fully free GPUs, so at_least - k >= 0 where it fits
        after = _weighted_frag(mix, total, cpu_after, *prep.counts(), shift=k)
    return np.where(ok, _sigmoid_score(before - after, mix.weight), 0)


_PREFIX_PARTS = np.array([0, 1, 1, 1, 2, 3, 2, 3])[:, None]  # which of the four sums, see below


def _prefix(prep: _Prepared, rows: IntArray, cpu_after: IntArray) -> IntArray:
    """(R, M + 1, 4) flattened: for the nodes ``rows`` with ``cpu_after`` CPU left, prefix sums
    over the shares (ascending) of ``P_s``, ``P_s·(T − B_s)``, ``Q_s``, ``Q_s·(T − B_s)`` (see
    ``_shared_fgd``), summed a share at a time over all nodes (faster than a cumsum along
    short rows), then stored node by node (a candidate's eight reads close together)."""
    mix, state = prep.mix, prep.state
    planes, below = prep.counts()
    mm, nr = len(mix.milli), len(rows)
    planes_rows = np.take(planes, rows, axis=1)
    p_s = mix.fitting(planes_rows, cpu_after)
    # one GPU fewer: used only for shares a candidate GPU reaches, so at_least >= 1 there
    q_s = mix.fitting(planes_rows, cpu_after, 1)
    left = state.total[rows][None, :] - np.take(below, rows, axis=1)
    prefix = np.empty((mm + 1, 4, nr), np.int64)
    prefix[0] = 0
    prefix[1:, 0] = p_s
    np.multiply(p_s, left, out=prefix[1:, 1])
    prefix[1:, 2] = q_s
    np.multiply(q_s, left, out=prefix[1:, 3])
    for i in range(mm):
        prefix[i + 1] += prefix[i]
    out: IntArray = np.ascontiguousarray(prefix.transpose(2, 0, 1)).ravel()  # (R, M + 1, 4)
    return out


def _shared_fgd(
    state: GPUState, prep: _Prepared, before: IntArray, cpu_left: IntArray, cpu: int, m: int
) -> IntArray:
    """A pod sharing one GPU: the best score over the GPUs with ``m`` free, one candidate per
    distinct free share on a node (equal shares give equal scores); 0 without a candidate.

    A candidate GPU with ``f`` free keeps ``f − m``; the node keeps ``T − m`` idle and its CPU
    less the pod's. The fitting tasks of a share ``s`` then count (``Σ_t w_t·frag_t`` = W·(T − m)
    − Σ_s of these): ``s <= f − m``, the GPU still reaches ``s``, ``P_s·(T − m − B_s)``;
    ``f − m < s <= f``, it no longer does and its ``f − m`` falls below, ``Q_s·(T − B_s − f)``;
    ``s > f``, it was and stays below, with ``m`` less, ``P_s·(T − B_s)``; ``P_s``/``Q_s`` the
    weight of the tasks of share ``s`` the node fits with its GPUs reaching ``s`` as they are /
    one fewer, ``B_s`` the free share below ``s`` as it is. The shares are sorted, so the three
    cases are three runs of them: prefix sums over the shares make each candidate O(1), the
    same integers as computing its state in full. ``P_s`` and ``Q_s`` depend on the CPU only
    through how many task CPUs it reaches: the prefix sums of the nodes as they are are kept
    with the table, and only the nodes where the pod's CPU crosses a task's are redone."""
    mix = prep.mix
    n, mm = len(state.total), len(mix.milli)
    if state.whole:
        node = np.flatnonzero(state.full > 0)
        f = np.full(len(node), GPU_MILLI, np.int64)
    else:
        srt = state.sorted_free()
        if "distinct" not in prep.memo:
            first = np.ones(srt.shape, bool)
            first[:, 1:] = srt[:, 1:] != srt[:, :-1]
            prep.memo["distinct"] = first
        distinct: BoolArray = prep.memo["distinct"]  # type: ignore[assignment]
        cells = np.flatnonzero(distinct & (srt >= m))  # row-major: grouped by node, ascending
        node, f = cells // srt.shape[1], srt.ravel()[cells]
    out = np.zeros(n, np.int64)
    if len(node) == 0:
        return out
    starts = np.flatnonzero(np.r_[True, node[1:] != node[:-1]])
    idle = state.total[node] - m
    if mm == 0:
        after = mix.weight * idle
    else:
        cached = prep.memo.get("prefix cpu")
        if cached is None or not np.array_equal(cached, cpu_left):
            prep.memo["prefix cpu"] = cpu_left.copy()
            prep.memo["prefix j"] = np.searchsorted(mix.cpus, cpu_left, side="right")
            prep.memo["prefix"] = _prefix(prep, np.arange(n), cpu_left)
        flat0, j0 = prep.memo["prefix"], prep.memo["prefix j"]
        reached = mix.reached
        a = reached[f - m]  # shares the GPU still reaches
        b = reached[f]  # ... and reached before
        e = np.full(len(node), mm)
        # the prefix sums needed, at once: rows P(a), P·left(a), P·left(b), P·left(end),
        # Q(a), Q·left(a), Q(b), Q·left(b)
        pos = np.stack([a, a, b, e, a, a, b, b]) * 4 + _PREFIX_PARTS
        vals = flat0[pos + (node * (4 * (mm + 1)))[None, :]]  # node-major: a node's sums together
        j_after = np.searchsorted(mix.cpus, cpu_left[node] - cpu, side="right")
        redo = np.flatnonzero(j_after != j0[node])  # the pod's CPU changes which tasks fit
        if len(redo):
            redo_nodes = node[redo]
            redo_rows = redo_nodes[np.r_[True, redo_nodes[1:] != redo_nodes[:-1]]]
            flat1 = _prefix(prep, redo_rows, cpu_left[redo_rows] - cpu)
            r1 = np.searchsorted(redo_rows, redo_nodes)
            vals[:, redo] = flat1[pos[:, redo] + (r1 * (4 * (mm + 1)))[None, :]]
        cp_a, cu_a, cu_b, cu_e, cq_a, cv_a, cq_b, cv_b = vals
        # Σ_a P·(T − B) − m·Σ_a P  +  Σ_b Q·(T − B) − f·Σ_b Q  +  Σ_c P·(T − B)
        fits_weighted = (cu_a - m * cp_a) + ((cv_b - cv_a) - f * (cq_b - cq_a)) + (cu_e - cu_b)
        after = mix.weight * idle - fits_weighted
    # the score rises with the fall in fragmentation: the node's best GPU is its largest fall
    best = np.maximum.reduceat(before[node] - after, starts)
    out[node[starts]] = _sigmoid_score(best, mix.weight)
    return out


# --------------------------------------------------------------------------------------------
# Baselines


def best_fit_raw(total: IntArray, cpu_left: IntArray, cpu: int, gpu_total: int) -> IntArray:
    """(N,) ``getBestFitScore`` before normalisation: ``int64((1 − (0.5·(c − cpu)/128000 +
    0.5·(total − k·m)/8000))·100)``, in Go's float64 order (truncation toward zero)."""
    score = (cpu_left - cpu).astype(np.float64) / float(MAX_SPEC_CPU) * BEST_FIT_WEIGHTS[0]
    score = score + (total - gpu_total).astype(np.float64) / float(MAX_SPEC_GPU) * BEST_FIT_WEIGHTS[1]
    return np.trunc((1.0 - score) * float(MAX_NODE_SCORE)).astype(np.int64)


def normalize_scores(raw: IntArray, counted: BoolArray) -> IntArray:
    """``NormalizeScore`` over the ``counted`` nodes: ``(s − lo)·100 / (hi − lo)`` in int64
    (all 0 when ``hi == lo``); 0 elsewhere."""
    out = np.zeros(len(raw), np.int64)
    if not counted.any():
        return out
    lo, hi = int(raw[counted].min()), int(raw[counted].max())
    if hi > lo:
        out[counted] = (raw[counted] - lo) * MAX_NODE_SCORE // (hi - lo)
    return out


def packing_scores(state: GPUState, ok: BoolArray, k: int, m: int) -> IntArray:
    """(N,) int64 ``getPackingScore`` for a pod of ``k`` GPUs of ``m`` thousandths (k >= 1),
    0 where it does not fit:

    * every GPU of the node fully free: ``max(33 − free GPUs, free GPUs)``;
    * else the pod takes the ``k`` GPUs with the least sufficient free share; some of them fully
      free: ``max(50 − fully free GPUs taken, 33)``;
    * none fully free (shared GPUs): ``max(100 − (Σ_taken int(f·100/1000)) / 10, 50)``.
    """
    third, half = MAX_NODE_SCORE // 3, MAX_NODE_SCORE // 2
    all_free = state.full == state.count
    case3 = np.maximum(third - state.full, state.full)
    if state.whole or m == GPU_MILLI:
        # only fully free GPUs have enough: the pod takes k of them
        case2 = np.full(len(ok), max(half - k, third), np.int64)
        score = np.where(all_free, case3, case2)
    else:
        srt = state.sorted_free()
        g = srt.shape[1]
        start = g - (srt >= m).sum(axis=1)  # the sufficient GPUs are a suffix of each row
        pos = np.arange(g)[None, :]
        taken = (pos >= start[:, None]) & (pos < start[:, None] + k)
        full_taken = (taken & (srt == GPU_MILLI)).sum(axis=1)
        pct = (np.where(taken, srt, 0) * MAX_NODE_SCORE // GPU_MILLI).sum(axis=1)
        case1 = np.maximum(MAX_NODE_SCORE - pct // 10, half)
        case2 = np.maximum(half - full_taken, third)
        score = np.where(all_free, case3, np.where(full_taken > 0, case2, case1))
    return np.where(ok, score, 0).astype(np.int64)


# --------------------------------------------------------------------------------------------
# The strategies


def gpu_fragmentation(
    pod: PodDemand, nodes: NodeTable, args: GPUFragmentationArgs, *, feasible: BoolArray
) -> IntArray | None:
    """GPUFragmentation (FGD: ``fgd_score.go``, the measure of ``frag.go``):
    ``int64(100·σ((F_before − F_after)/1000))`` per node, ``F = Σ_t p_t·frag_t`` over the typical
    tasks, 0 where the pod does not fit. None (takes no part) when the table has no GPU state,
    when there is no workload (no ``typicalTasks`` and no pods seen), and for a pod without any
    request (the simulator scores 100 everywhere)."""
    state = gpu_state(nodes, args.resource)
    tasks = workload(nodes, args)
    if state is None or not tasks or not _has_requests(pod):
        return None
    k, m = pod_gpus(pod, args.resource)
    cpu_left = _node_cpu_left(nodes)
    key = ("fgd before", args.resource, tasks)  # the nodes as they are: once per table
    before = nodes.memo.get(key)
    if before is None:
        before = _before(state, _prepared(state, tasks), cpu_left)
        nodes.memo[key] = before
    return fgd_scores(state, tasks, cpu_left, _pod_cpu(pod), k, m, before=before)  # type: ignore[arg-type]


def gpu_best_fit(pod: PodDemand, nodes: NodeTable, args: GPUArgs, *, feasible: BoolArray) -> IntArray | None:
    """GPUBestFit (``best_fit_score.go``): ``int64((1 − (0.5·(c − cpu)/128000 + 0.5·(total −
    k·m)/8000))·100)``, the CPU and GPU share left after the pod over the simulator's largest
    node, lower is better, reversed; then ``NormalizeScore`` (min–max to 0..100, int64) over the
    nodes that pass the filter and fit the pod; 0 elsewhere. None when the table has no GPU
    state."""
    state = gpu_state(nodes, args.resource)
    if state is None:
        return None
    k, m = pod_gpus(pod, args.resource)
    cpu_left, cpu = _node_cpu_left(nodes), _pod_cpu(pod)
    ok = fits(state, cpu_left, cpu, k, m)
    return normalize_scores(best_fit_raw(state.total, cpu_left, cpu, k * m), ok & feasible)


def gpu_packing(pod: PodDemand, nodes: NodeTable, args: GPUArgs, *, feasible: BoolArray) -> IntArray | None:
    """GPUPacking (``gpu_packing_score.go``): shared GPUs first (100 − their free percent / 10,
    at least 50), then fully free GPUs on a node in use (50 − how many, at least 33), then a
    node with every GPU free (33 − its free GPUs, or that number if larger); 0 where the pod does
    not fit. None for a pod without GPUs (the simulator scores 0 everywhere) and when the table
    has no GPU state."""
    state = gpu_state(nodes, args.resource)
    k, m = pod_gpus(pod, args.resource)
    if state is None or k == 0:
        return None
    return packing_scores(state, fits(state, _node_cpu_left(nodes), _pod_cpu(pod), k, m), k, m)


def not_applicable(name: str, pod: PodDemand, nodes: NodeTable, args: GPUArgs) -> str:
    """Why a GPU strategy takes no part, in a sentence (for the explanation)."""
    if gpu_state(nodes, args.resource) is None:
        return f"does not apply: no GPU state (no per-GPU shares and no {args.resource} column)"
    if name == "GPUPacking":
        return "does not apply to this pod: it asks for no GPU"
    if isinstance(args, GPUFragmentationArgs) and not workload(nodes, args):
        return "does not apply: no typical tasks (none in the policy and no pods seen)"
    return "does not apply to this pod: it sets no request"


def node_gpu_facts(nodes: NodeTable, resource: str, i: int) -> dict[str, object] | None:
    """One node's GPU state as plain data (for the explanation), None without GPU state."""
    state = gpu_state(nodes, resource)
    if state is None:
        return None
    present = state.present[i]
    return {
        "gpus": int(state.count[i]),
        "fullyFree": int(state.full[i]),
        "freeMilli": [int(v) for v in state.free[i][present].tolist()],
    }
