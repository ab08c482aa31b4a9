"""The cluster cache in a process of its own (``EXTENDER_CACHE_PROCESS``).

Why: in one process, the pods informer's decoding and accounting (~20 us an event, thousands of
events a second under churn) and the publisher's copies take the interpreter lock from the
threads answering kube-scheduler. On two cores that waiting is most of what churn adds to a
verb's p99 (``benchmarks/README.md``, "names"). Here a spawned child runs the whole ``Cache``
(informers, load pollers, store, publisher) unchanged, and the serving process keeps only what
the verbs read: the latest ``Snapshot``, mapped from shared memory (``extender.cache.shipping``).

The serving side (``CacheProcess``) looks to ``CacheSource`` and ``CachedBinder`` like the
in-process ``Cache``: ``synced``, ``readiness()`` and a ``state`` with ``snapshot``,
``assume``, ``forget`` and ``pod_vectors``. The last three are calls to the child over a pipe;
a bind waits until the snapshot with its pod is installed, so the next filter sees it.

Two pipes: ``push`` (child to parent, one receiver thread) carries snapshots and, until the
first sync, readiness text, in the order they were written, so a snapshot that shares the
previous one's node names always arrives after it; ``rpc`` carries calls and their replies.
Calls share ``rpc`` without waiting for each other: each is sent under a short lock and waits,
within its own timeout, for its own reply, which a reader thread (``_read_replies``) hands out
by call id; the child answers ``metrics`` and ``readiness`` on threads of their own. So a child
that stops answering costs each call its own timeout only, never the sum of those queued before
it.

The heartbeat: a thread of the serving process asks the child every ``HEARTBEAT_S`` (1 s) whether
its cache is current (the ``readiness`` call, waiting ``READINESS_CALL_S``, 1 s), whether or not
anyone probes, scrapes or binds. ``readiness()`` answers from its last answer without a call of
its own, and is false once that answer is older than ``HEARTBEAT_FRESH_S`` (3 s): a stopped or
deadlocked child turns ``/readyz`` false within 3 s. A child that has answered no call for
``EXTENDER_CACHE_PROCESS_TIMEOUT_S`` (30 s; a new one gets ``CHILD_START_S``, 60 s, to answer
its first) is killed (SIGKILL: a stopped process cannot act on anything gentler), and replaced
as below.

The price: a bind makes two calls to the child and waits for its snapshot to be mapped,
about twice the bind's p99 of the in-worker cache in ``benchmarks latency --forms names``;
``EXTENDER_CACHE_PROCESS=false`` keeps the cache in the worker (benchmarks/README.md has both).

When the child dies (or is killed) the receiver thread sees the pipe close: the cache is not
ready (filter answers ``Error``, ``/readyz`` fails, saying why) until a new child, started after
a backoff (1 s doubling to 30 s, from 1 s again after a child that ran 5 minutes), has listed
everything again. A child that cannot be started (or a failure while following one) is the
same: logged, not ready, tried again after the backoff, for the life of the worker. Each
replacement is counted in ``extender_cache_child_restarts_total{reason}``. When the serving
process dies, the child sees its pipe close and exits; when it exits, it ends the child first
(``stop()``, at exit), and the child ignores SIGTERM and SIGINT meanwhile (a process group's
stop signal reaches both), so that a shutdown is not taken for a crash.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import itertools
import logging
import multiprocessing
import multiprocessing.util  # its exit handler registered now, so that ours (start()) runs before it
import os
import random
import select
import shutil
import signal
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

from extender.cache.config import CachePolicy, cache_config
from extender.cache.feed import Cache
from extender.cache.gate import CallGate
from extender.cache.node_source import FORGET_RESERVE_S
from extender.cache.shipping import Shipped, SnapshotReader, SnapshotWriter
from extender.cache.snapshot import Snapshot
from extender.cache.store import Assumption
from extender.kube.client import load_api_client
from extender.kube.objects import Pod
from extender.logs import configure as configure_logging
from extender.metrics import CacheMetrics, Metrics, cache_child_restarts_counter, snapshot_age_gauge
from extender.policy_file import load_policy
from extender.settings import Settings
from extender.verbs.source import CacheNotReady
from scoring import Policy

CALL_TIMEOUT_S = 2.0  # a call to the child: its threads answer in microseconds
READINESS_CALL_S = 1.0  # the heartbeat's call: are the child's informers current?
HEARTBEAT_S = 1.0  # the serving process asks the child that this often, whoever else calls it
# /readyz trusts the heartbeat's last answer this long: a period, the call's wait, and 1 s for
# a busy machine; older, the child is not answering (stopped, deadlocked)
HEARTBEAT_FRESH_S = HEARTBEAT_S + READINESS_CALL_S + 1.0
# a new child answers nothing before it has imported numpy and the kubernetes client and built
# its cache (seconds on two busy cores): not taken for hung before this
CHILD_START_S = 60.0
METRICS_CALL_S = 0.5  # a /metrics scrape's call for the child's exposition: else without it
# A bind's count in the child and the install of the snapshot that shows it, together: the
# Binding request gets the rest of EXTENDER_BIND_TIMEOUT_S.
VISIBILITY_BUDGET_S = 1.0
# undoing a failed bind's count, after the Binding (see RemoteState.forget): CachedBinder keeps
# it out of the Binding's share of the bind's budget
FORGET_BUDGET_S = FORGET_RESERVE_S
RESTART_BACKOFF_S = (1.0, 30.0)  # first and longest wait before starting a new child
SHM_DIR = "/dev/shm"


class CacheProcess:
    """The serving process's handle on the cache child: starts it, installs what it ships,
    restarts it when it dies."""

    def __init__(
        self,
        settings: Settings,
        *,
        policy: Policy | CachePolicy | None = None,
        metrics: Metrics | None = None,
        logger: logging.Logger | None = None,
        gate: CallGate | None = None,
    ) -> None:
        self._settings = settings
        # what the cache takes from the policy in force (None: the policy file's): each child
        # starts with it, and the heartbeat hands a new one (use_policy) to the running child
        if policy is None:
            policy = load_policy(settings.policy)
        self._policy = policy if isinstance(policy, CachePolicy) else CachePolicy.of(policy)
        self._child_policy: CachePolicy | None = None  # what the current child has (heartbeat's)
        self._gate = gate  # scheduling calls in flight: a snapshot is installed between them
        self._log = logger or logging.getLogger("extender.cache")
        self._ctx = multiprocessing.get_context("spawn")
        shm = SHM_DIR if os.access(SHM_DIR, os.W_OK) else None  # else the temp dir: a disk, slower
        self._dir = tempfile.mkdtemp(prefix="extender-cache-", dir=shm)
        # removed when the worker exits; files of a snapshot in transit too
        weakref.finalize(self, shutil.rmtree, self._dir, ignore_errors=True)
        self._reader = SnapshotReader()
        self._installed = threading.Condition()
        self._synced = False
        self._base = 0  # added to the child's generation numbers (see _receive_loop)
        self._waiting = "cluster cache: waiting for the first sync (the cache process is starting)"
        self._rpc: Any = None  # the pipe of calls to the current child
        # _rpc, _process, _waiting_calls, _last_answer, _answered, _killed
        self._calls_lock = threading.Lock()
        self._send_lock = threading.Lock()  # one message at a time on the pipe: held only to send
        self._waiting_calls: dict[int, _Call] = {}
        self._last_answer = 0.0  # monotonic: the current child's last reply (its start before one)
        self._answered = False  # whether the current child has answered any call
        self._killed: Any = None  # the child the heartbeat killed, so that its restart says why
        self._ids = itertools.count(1)
        self._process: Any = None
        self._stopping = threading.Event()
        self._receiver = threading.Thread(target=self._receive_loop, name="cache-receiver", daemon=True)
        # The heartbeat's last answer: written by its thread only, read by readiness(); used
        # while younger than HEARTBEAT_FRESH_S and sent after the current child synced
        self._beat: _Beat | None = None
        self._synced_at = 0.0  # monotonic: the current child's first snapshot installed
        self._beat_now = threading.Event()  # wakes the heartbeat early (the first sync, stop())
        self._heartbeat = threading.Thread(target=self._heartbeat_loop, name="cache-heartbeat", daemon=True)
        self._timeout_s = settings.cache_process_timeout_s
        self._restarts = cache_child_restarts_counter(metrics.registry) if metrics is not None else None
        self.state = RemoteState(self)
        if metrics is not None:
            metrics.add_exposition(self._child_metrics)
            # the snapshot this process serves, not the child's newest: a snapshot that could
            # not be shipped shows here as age
            snapshot_age_gauge(metrics.registry).set_function(self._snapshot_age)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """The receiver thread, which starts the child and a new one whenever it dies, and the
        heartbeat, for the life of the worker. The child ends with the worker: ``stop()`` at the
        interpreter's exit (before multiprocessing's own exit handler, which would SIGTERM the
        child, which ignores it, and wait for it), so that its end is no crash to log."""
        atexit.register(self.stop)
        self._receiver.start()
        self._heartbeat.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Start no new child and end the current one (SIGKILL: it ignores SIGTERM and holds
        nothing to save), without a word in the log: at the worker's exit, and in tests."""
        atexit.unregister(self.stop)
        self._stopping.set()
        self._beat_now.set()
        with self._calls_lock:
            process = self._process
        if process is not None and process.is_alive():
            process.kill()
        self._receiver.join(timeout)
        if self._heartbeat.is_alive():
            self._heartbeat.join(timeout)

    def _spawn(self) -> Any:
        """A new child and its pipes; returns the parent's end of ``push``."""
        push_r, push_w = self._ctx.Pipe(duplex=False)
        rpc_parent, rpc_child = self._ctx.Pipe(duplex=True)
        try:
            process = self._ctx.Process(
                target=_child_main,
                name="extender-cache",
                daemon=True,
                args=(self._settings, rpc_child, push_w, self._dir, self._policy),
            )
            self._child_policy = self._policy
            process.start()
        except BaseException:
            for end in (push_r, push_w, rpc_parent, rpc_child):
                end.close()
            raise
        push_w.close()
        rpc_child.close()
        with self._calls_lock:
            self._process = process
        self._attach_rpc(rpc_parent)
        self._log.info("cache process started: pid=%d snapshots=%s", process.pid, self._dir)
        return push_r

    def _receive_loop(self) -> None:
        """Start a child, follow it until it dies, back off, again: for the life of the worker.
        Nothing ends this loop but ``stop()``: a child that cannot be started is retried too."""
        backoff = RESTART_BACKOFF_S[0]
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                reason, what = self._run_child()
            except Exception as exc:  # noqa: BLE001 - restarts must never stop for good
                reason, what = "start_failed", f"could not be started ({type(exc).__name__}: {exc})"
                self._log.exception("cache process %s", what)
            with self._installed:
                # the next child counts its generations from 1 again: number them after ours,
                # so CacheSource never takes a new snapshot for one it built a table from
                if self.state.snapshot is not None:
                    self._base = self.state.snapshot.generation
                self._synced = False
                self._waiting = f"cluster cache: the cache process {what}; waiting for a new one's first sync"
                self._installed.notify_all()  # readiness() waits for this when the pipe closed
            if self._stopping.is_set():
                return
            if self._restarts is not None:
                self._restarts.labels(reason).inc()
            self._log.error("cache process %s; restarting in %.1f s", what, backoff)
            if time.monotonic() - started > 10 * RESTART_BACKOFF_S[1]:
                backoff = RESTART_BACKOFF_S[0]  # it had run a long while: not a crash loop
            if self._stopping.wait(backoff * random.uniform(0.5, 1.0)):
                return
            backoff = min(backoff * 2, RESTART_BACKOFF_S[1])

    def _run_child(self) -> tuple[str, str]:
        """Start a child and follow it until it ends; returns the reason for the restart metric
        (``CHILD_RESTART_REASONS``) and what happened, for the log and ``/readyz``."""
        try:
            push = self._spawn()
        except Exception as exc:  # noqa: BLE001 - logged, and tried again after the backoff
            what = f"could not be started ({type(exc).__name__}: {exc})"
            self._log.exception("cache process %s", what)
            return "start_failed", what
        process = self._process
        try:
            code = self._follow_child(push)
        except Exception as exc:  # noqa: BLE001 - as above
            what = f"could not be followed ({type(exc).__name__}: {exc})"
            self._log.exception("cache process %s", what)
            return "start_failed", what
        with self._calls_lock:
            killed = self._killed is process
        if killed:
            return "unresponsive", (
                f"was killed (code {code}): it answered nothing for {self._timeout_s:g} s "
                "(EXTENDER_CACHE_PROCESS_TIMEOUT_S)"
            )
        return "exited", f"exited (code {code})"

    def _follow_child(self, push: Any) -> Any:
        """Install what the child just started ships on ``push`` until its pipe closes; returns
        its exit code. Whatever ends this, the child is gone when it returns: never two children."""
        process = self._process
        if self._stopping.is_set():  # stop() came while it started
            process.kill()
        turn = self._gate.feeder() if self._gate is not None else None
        try:
            while True:
                msg = push.recv()
                if turn is not None and msg[0] == "snapshot":
                    turn()  # mapping, faulting in and the old one's unmapping: not during a call
                self._handle(msg)
        except (EOFError, OSError):
            pass
        finally:
            push.close()
            process.join(1)
            if process.is_alive():  # its pipe broke, yet it runs (SIGTERM it ignores)
                process.kill()
                process.join(5)
        return process.exitcode

    def _handle(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "snapshot":
            self._install(msg[1])
        elif kind == "status":
            with self._installed:
                self._waiting = msg[1]

    def _install(self, shipped: Shipped) -> None:
        try:
            snap = self._reader.read(shipped)
        except (OSError, ValueError):
            self._log.exception("cannot map snapshot %d; waiting for the next one", shipped.generation)
            return
        snap = dataclasses.replace(snap, generation=self._base + snap.generation)
        with self._installed:
            current = self.state.snapshot
            if current is None or snap.generation > current.generation:
                self.state.snapshot = snap
            if not self._synced:  # this child's first: the heartbeat asks it at once
                self._synced_at = time.monotonic()
                self._beat_now.set()
            self._synced = True
            self._installed.notify_all()

    def wait_installed(self, generation: int, timeout: float) -> bool:
        """Wait until the child's snapshot ``generation`` (its numbering) or a later one is
        installed."""
        generation += self._base

        def done() -> bool:
            snap = self.state.snapshot
            return snap is not None and snap.generation >= generation

        with self._installed:
            return self._installed.wait_for(done, timeout)

    # --- calls to the child ------------------------------------------------------------------

    def _attach_rpc(self, conn: Any) -> None:
        """Use ``conn`` for calls to the child, its replies read by a thread of its own."""
        with self._calls_lock:
            self._rpc = conn
            self._last_answer = time.monotonic()
            self._answered = False
        threading.Thread(target=self._read_replies, args=(conn,), name="cache-replies", daemon=True).start()

    def _read_replies(self, conn: Any) -> None:
        """Hand each reply to the call waiting for it, until the pipe closes; then every call
        still waiting on this pipe learns the child is gone."""
        try:
            while True:
                call_id, ok, value = conn.recv()
                with self._calls_lock:
                    self._last_answer = time.monotonic()
                    self._answered = True
                    waiter = self._waiting_calls.pop(call_id, None)
                if waiter is not None:  # else a call that gave up: its late reply is dropped
                    waiter.answer(ok, value)
        except (EOFError, OSError) as exc:
            gone = exc
        with contextlib.suppress(OSError):
            conn.close()
        with self._calls_lock:
            if self._rpc is conn:
                self._rpc = None
            stranded = [w for w in self._waiting_calls.values() if w.conn is conn]
            for w in stranded:
                self._waiting_calls.pop(w.call_id, None)
        for w in stranded:
            w.gone(gone)

    def call(self, op: str, *args: Any, timeout_s: float = CALL_TIMEOUT_S) -> Any:
        """``op`` run in the child; CacheNotReady when the child cannot answer within
        ``timeout_s``, is gone, or the call failed there. Calls do not wait for each other:
        each is sent under a short lock and waits only for its own reply (``_read_replies``)."""
        deadline = time.monotonic() + timeout_s
        with self._calls_lock:
            conn = self._rpc
            if conn is None:
                raise CacheNotReady("cluster cache: the cache process has not started or is gone")
            waiter = _Call(next(self._ids), conn)
            self._waiting_calls[waiter.call_id] = waiter
        try:
            # a stopped child leaves its pipe full: wait for room within the deadline, never
            # longer (a message up to PIPE_BUF bytes fits once select says writable)
            untaken = f"cluster cache: the cache process did not take {op} within {timeout_s} s"
            if not self._send_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise CacheNotReady(untaken)
            try:
                _, writable, _ = select.select([], [conn.fileno()], [], max(0.0, deadline - time.monotonic()))
                if not writable:
                    raise CacheNotReady(untaken)
                conn.send((waiter.call_id, op, args))
            except (EOFError, OSError, ValueError) as exc:
                raise CacheNotReady(f"cluster cache: the cache process is gone ({exc!r})") from None
            finally:
                self._send_lock.release()
            if not waiter.done.wait(max(0.0, deadline - time.monotonic())):
                raise CacheNotReady(
                    f"cluster cache: the cache process did not answer {op} within {timeout_s} s"
                )
        finally:
            with self._calls_lock:
                self._waiting_calls.pop(waiter.call_id, None)
        if waiter.error is not None:
            raise CacheNotReady(f"cluster cache: the cache process is gone ({waiter.error!r})")
        if not waiter.ok:
            raise CacheNotReady(f"cluster cache: {op} failed in the cache process: {waiter.value}")
        return waiter.value

    # --- the heartbeat -------------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        """Every ``HEARTBEAT_S``: ask the child whether it is current, and kill one that has
        answered nothing for too long. For the life of the worker: a failure is logged only."""
        while not self._stopping.is_set():
            self._beat_now.wait(HEARTBEAT_S)
            self._beat_now.clear()
            if self._stopping.is_set():
                return
            try:
                self._beat_once()
            except Exception:  # noqa: BLE001 - the heartbeat must outlive any bug of its own
                self._log.exception("cache process heartbeat failed")

    def _beat_once(self) -> None:
        with self._calls_lock:
            conn, process = self._rpc, self._process
        if conn is None:  # no child, or its pipe closed: the receiver restarts it
            return
        sent = time.monotonic()  # the answer is at least this fresh
        try:
            current, why = self.call("readiness", timeout_s=READINESS_CALL_S)
        except CacheNotReady:
            pass
        else:
            self._beat = _Beat(sent, bool(current), str(why))
            self._hand_policy()
            return
        with self._calls_lock:
            if self._rpc is not conn:  # another child meanwhile
                return
            silent = time.monotonic() - self._last_answer
            limit = self._timeout_s if self._answered else max(self._timeout_s, CHILD_START_S)
            if silent <= limit or not process.is_alive():
                return
            self._killed = process
        self._log.error(
            "cache process pid=%d answered nothing for %.1f s (limit %g s): killing it to start a new one",
            process.pid,
            silent,
            limit,
        )
        process.kill()  # SIGKILL: a stopped or deadlocked process cannot act on SIGTERM

    def use_policy(self, policy: Policy | CachePolicy, version: str = "") -> None:
        """A new policy: the next heartbeat hands what the cache takes from it to the child
        (within ``HEARTBEAT_S``), and every child started from now on starts with it."""
        self._policy = policy if isinstance(policy, CachePolicy) else CachePolicy.of(policy, version)
        self._beat_now.set()

    def _hand_policy(self) -> None:
        """Owner: the heartbeat thread. The child's cache applies it in its publisher's next round."""
        wanted = self._policy
        if wanted == self._child_policy:
            return
        try:
            self.call("policy", wanted, timeout_s=READINESS_CALL_S)
        except CacheNotReady:
            return  # tried again at the next beat (or the next child starts with it)
        self._child_policy = wanted

    def silent_for(self) -> float:
        """Seconds since the child last answered a call (0 with no child)."""
        with self._calls_lock:
            return 0.0 if self._rpc is None else time.monotonic() - self._last_answer

    def _snapshot_age(self) -> float:
        snap = self.state.snapshot
        return max(0.0, time.time() - snap.built_at) if snap is not None else 0.0

    def _child_metrics(self) -> bytes:
        try:
            exposition: bytes = self.call("metrics", timeout_s=METRICS_CALL_S)
            return exposition
        except CacheNotReady:
            return b""  # the scrape still gets the serving process's own metrics

    # --- what CacheSource reads ----------------------------------------------------------------

    @property
    def synced(self) -> bool:
        return self._synced

    def readiness(self) -> tuple[bool, str]:
        """From the heartbeat's last answer (no call of its own: a probe never waits on the
        child): not ready before the child's first sync, when the child says its informers are
        not current, or when it has not answered for ``HEARTBEAT_FRESH_S``."""
        snap = self.state.snapshot
        if not self._synced or snap is None:
            return False, self._waiting
        with self._installed:  # its pipe closed: the receiver is about to say how it ended
            if self._rpc is None and self._installed.wait_for(lambda: not self._synced, READINESS_CALL_S):
                return False, self._waiting
        beat, now = self._beat, time.monotonic()
        if beat is None or beat.sent < self._synced_at:  # none since the sync: the sync is the answer
            beat = _Beat(self._synced_at, True, "")
        if now - beat.sent > HEARTBEAT_FRESH_S:
            process = self._process
            pid = process.pid if process is not None else None
            return False, (
                f"cluster cache: the cache process did not answer its heartbeat for {now - beat.sent:.1f} s "
                f"(pid {pid}; it is replaced after {self._timeout_s:g} s without an answer)"
            )
        if not beat.current:
            return False, beat.why
        return True, f"cluster cache synced: {len(snap.names)} nodes, {snap.pods} pods (cache process)"


@dataclasses.dataclass(frozen=True)
class _Beat:
    """One answer of the child to the heartbeat."""

    sent: float  # monotonic: when it was asked (the answer is at least this fresh)
    current: bool
    why: str


class _Call:
    """One call to the child waiting for its reply."""

    def __init__(self, call_id: int, conn: Any) -> None:
        self.call_id = call_id
        self.conn = conn
        self.done = threading.Event()
        self.ok = False
        self.value: Any = None
        self.error: BaseException | None = None

    def answer(self, ok: bool, value: Any) -> None:
        self.ok, self.value = ok, value
        self.done.set()

    def gone(self, error: BaseException) -> None:
        self.error = error
        self.done.set()


class RemoteState:
    """What the verbs use of ``ClusterState``, answered from the installed snapshot or by the child."""

    def __init__(self, owner: CacheProcess) -> None:
        self._owner = owner
        self.snapshot: Snapshot | None = None  # replaced whole by the receiver thread

    def assume(
        self, *, uid: str, node: str, pod: Pod | None = None, timeout_s: float | None = None
    ) -> Assumption:
        """The child counts the pod on ``node`` (``ClusterState.assume``); returns once the
        snapshot showing it is installed here, or, ``late``, when that takes longer than
        ``VISIBILITY_BUDGET_S`` or ``timeout_s`` if less (the call to the child included)."""
        budget = VISIBILITY_BUDGET_S if timeout_s is None else max(0.0, min(timeout_s, VISIBILITY_BUDGET_S))
        deadline = time.monotonic() + budget
        seen: Assumption
        generation: int | None
        seen, generation = self._owner.call("assume", uid, node, pod, timeout_s=budget)
        if seen and not self._installed(generation, deadline):
            logging.getLogger("extender.cache").warning(
                "bind of pod uid=%s to %s: its snapshot %s was not installed within %.1f s",
                uid,
                node,
                generation,
                budget,
            )
            return dataclasses.replace(seen, late=True)
        return seen

    def forget(self, uid: str, *, timeout_s: float | None = None) -> bool:
        """The child uncounts a pod whose bind failed (``ClusterState.forget``); returns once
        the snapshot without it is installed, or after ``FORGET_BUDGET_S`` (``timeout_s`` if
        less: what is left of the bind's budget), and a pod counted a moment too long only
        repels."""
        budget = FORGET_BUDGET_S if timeout_s is None else max(0.0, min(timeout_s, FORGET_BUDGET_S))
        deadline = time.monotonic() + budget
        undone, generation = self._owner.call("forget", uid, timeout_s=budget)
        return bool(undone) and self._installed(generation, deadline)

    def _installed(self, generation: int | None, deadline: float) -> bool:
        """Whether the child's snapshot ``generation`` (None: the child had not synced, so
        nothing to wait for) is installed here before ``deadline``."""
        return generation is None or self._owner.wait_installed(
            generation, max(0.0, deadline - time.monotonic())
        )

    def pod_vectors(self, uid: str, resources: Sequence[str]) -> tuple[np.ndarray, ...] | None:
        vectors: tuple[np.ndarray, ...] | None = self._owner.call("pod_vectors", uid, tuple(resources))
        return vectors


# --- the child ---------------------------------------------------------------------------------


class _Shipper:
    """Writes each new snapshot and sends it on ``push``, once the first sync is complete;
    before that, the readiness text whenever it changes. Called by the publisher after each
    round and by ``assume``; one at a time, so messages leave in the order written."""

    def __init__(self, push: Any, directory: str) -> None:
        self._push = push
        self._writer = SnapshotWriter(directory)
        self._lock = threading.Lock()
        self._shipped = -1
        self._status = ""
        self.cache: Cache | None = None

    def published(self, _snap: Snapshot | None = None) -> int | None:
        """Ship the current snapshot if it is new; its generation, None before the first sync.
        The publisher's ``_snap`` is not used: a bind may have derived a newer one since."""
        cache = self.cache
        assert cache is not None
        with self._lock:
            if not cache.synced:  # the first True publishes the whole first sync
                status = cache.readiness()[1]
                if status != self._status:
                    self._status = status
                    self._push.send(("status", status))
                return None
            snap = cache.state.snapshot
            if snap.generation != self._shipped:
                self._push.send(("snapshot", self._writer.write(snap)))
                self._shipped = snap.generation
            return snap.generation

    def assume(self, uid: str, node: str, pod: Pod | None) -> tuple[Assumption, int | None]:
        """``ClusterState.assume``, and the generation of the snapshot that shows it, shipped."""
        cache = self.cache
        assert cache is not None
        with self._lock:
            seen = cache.state.assume(uid=uid, node=node, pod=pod)
        return seen, self.published()

    def forget(self, uid: str) -> tuple[bool, int | None]:
        cache = self.cache
        assert cache is not None
        with self._lock:
            undone = cache.state.forget(uid)
        return undone, self.published()


_ASIDE = frozenset({"metrics", "readiness"})  # answered on a thread of their own in the child


def _child_main(settings: Settings, rpc: Any, push: Any, directory: str, policy: CachePolicy) -> None:
    """The cache process: the whole ``Cache``, its snapshots shipped, calls answered. ``policy``
    is the serving process's (never the file read again: it may have changed, or be invalid)."""
    # A terminal's ^C, or a SIGTERM to the whole process group (a service manager's stop, `kill
    # -- -PGID`), stops the server, which ends us (CacheProcess.stop) when it exits; were we to
    # die first, the serving process would take it for a crash (an ERROR line, a new child
    # started while it shuts down). SIGKILL replaces us; the pipe's end (the server gone) ends us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure_logging(settings.log_format, settings.log_level)  # as gunicorn_conf configures the worker
    log = logging.getLogger("extender.cache")
    registry = CollectorRegistry(auto_describe=True)
    # this process's resident memory and CPU (the worker's own are process_*): the store of
    # every node and pod lives here
    ProcessCollector(namespace="extender_cache", registry=registry)
    shipper = _Shipper(push, directory)
    try:
        client = load_api_client(kubeconfig=settings.kubeconfig)
        if client is None:
            raise RuntimeError("no Kubernetes API access (in-cluster config or kubeconfig)")
        metrics = CacheMetrics(registry, snapshot_age=False)  # the worker reports what it serves
        cache = Cache(
            client, policy, cache_config(settings), metrics=metrics, logger=log, on_publish=shipper.published
        )
    except Exception:
        log.exception("cache process: cannot start")
        sys.exit(2)
    shipper.cache = cache
    cache.start()
    log.info("cache process running: pid=%d", os.getpid())
    ops: dict[str, Callable[..., Any]] = {
        "assume": shipper.assume,
        "forget": shipper.forget,
        "pod_vectors": cache.state.pod_vectors,
        "policy": cache.use_policy,
        "readiness": cache.readiness,
        "metrics": lambda: generate_latest(registry),
    }
    replies = threading.Lock()  # one reply at a time on the pipe

    def answer(call_id: int, op: str, args: tuple[Any, ...]) -> None:
        try:
            reply = (call_id, True, ops[op](*args))
        except Exception as exc:  # the caller gets the error; the child goes on
            log.exception("cache process: %s failed", op)
            reply = (call_id, False, f"{type(exc).__name__}: {exc}")
        with replies, contextlib.suppress(OSError):
            rpc.send(reply)

    while True:
        try:
            call_id, op, args = rpc.recv()
        except (EOFError, OSError):
            break  # the serving process is gone
        if op in _ASIDE:  # a scrape's exposition or a probe must not hold up a bind's call
            threading.Thread(target=answer, args=(call_id, op, args), name=f"cache-{op}", daemon=True).start()
        else:
            answer(call_id, op, args)
    cache.stop()
    shutil.rmtree(directory, ignore_errors=True)  # the serving process is gone: nobody else will
