"""Cluster-cache mode (``nodeCacheCapable: true``) over HTTP: ``python -m benchmarks names``.

What kube-scheduler pays per filter / prioritize call when it sends node names only, and
whether the watch-fed cache keeps up with pod churn while it serves.

Per size N: a fake Kubernetes API server (``tests.kubeapi.FakeKubeAPI``, real HTTP, real REST
paths and chunked watch streams) in a *separate process* holds N realistic Nodes (fresh load
annotations) and ``--pods-per-node`` running Pods bound to each; the real extender
(``python -m extender serve --kubeconfig ...``, gunicorn) lists and watches it. We time the
extender's readiness (list + decode of every Node and Pod), then filter and prioritize calls
with all N names, one at a time on one keep-alive connection, first on a still cluster
(steady), then while a driver in the fake's process adds, updates and deletes pods at
``--events-per-s`` (churn). See benchmarks/README.md ("names") for the method and how to read
the figures.

The fake is subclassed here (``make_bench_api``) for scale only: the test fake deep-copies every
object of a kind on each list page and scans its whole watch history on each wake-up, which is
right for tests with dozens of objects and hopeless at 300,000 pods. The subclass keeps each
object as its encoded JSON, serves list pages from a snapshot taken at the first page, and
keeps the watch history as an rv-ordered log; HTTP handling, routing, the watch framing and
the audit log are the test fake's own.

``--profile`` adds, per size, the server's work for the same requests in this process
(``create_app`` on the same fake): stage timings, cProfile, and pod events applied from a
thread while the main thread serves.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import contextlib
import cProfile
import datetime
import gc
import io
import json
import math
import multiprocessing
import os
import pstats
import random
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from benchmarks import k8s_objects
from benchmarks.latency import (
    DEFAULT_OUT,
    BenchmarkError,
    Client,
    Reply,
    Server,
    _command,
    _ms,
    _non_negative,
    _positive,
    _rfc3339,
    _sizes,
    _write,
    check_prioritize,
    decode_filter,
    facts_lines,
    machine_facts,
    pct,
    proc_counters,
    running_server,
    runqueue_wait_s,
)
from benchmarks.sampling import num_feasible_nodes_to_find

DEFAULT_SIZES = (1000, 5000, 10000)
DEFAULT_PODS_PER_NODE = 30
DEFAULT_EVENTS_PER_S = 5000
DEFAULT_CHURN_S = 10.0
WARMUP_CALLS = 3
SAMPLE_EVERY_S = 0.5  # /metrics (and the fake's counters) between calls, at most this often
RESTAMP_AFTER_S = 60.0  # older load stamps are renewed before the steady phase (stale at 180 s)
TARGET = {"nodes": 5000, "p50_ms": 3.0, "p99_ms": 6.0, "events_per_s": 5000.0, "p99_ratio": 2.0}
_SEL = re.compile(r"\S")
_RV = re.compile(rb'"resourceVersion":"\d*"')


def default_calls(nodes: int) -> int:
    """Timed calls per verb and phase: 200 up to 5,000 nodes, 100 above."""
    return 200 if nodes <= 5000 else 100


# --- objects ------------------------------------------------------------------------------------

# (cpu, memory) requests and how often they occur: a mix of small services and a few big ones.
_SHAPES = (("50m", "64Mi", 15), ("100m", "128Mi", 25), ("250m", "256Mi", 25), ("500m", "512Mi", 20),
           ("1", "1Gi", 10), ("2", "4Gi", 5))
_SHAPE_TABLE = [i for i, (_, _, w) in enumerate(_SHAPES) for _ in range(w)]
_DOUBLE = {"50m": "100m", "100m": "200m", "250m": "500m", "500m": "1", "1": "2", "2": "4",
           "64Mi": "128Mi", "128Mi": "256Mi", "256Mi": "512Mi", "512Mi": "1Gi", "1Gi": "2Gi", "4Gi": "8Gi"}
_TOLERATIONS = [{"key": f"node.kubernetes.io/{k}", "operator": "Exists", "effect": "NoExecute",
                 "tolerationSeconds": 300} for k in ("not-ready", "unreachable")]
_PROBE = {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "timeoutSeconds": 1,
          "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
_ENV = [{"name": "LOG_LEVEL", "value": "info"}, {"name": "GOMAXPROCS", "value": "2"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}]
_SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass(slots=True)
class PodParams:
    """What identifies one bench pod; ``pod_object`` renders it (``gen`` changes its status)."""

    index: int
    node: int
    shape: int
    flavour: int  # 0..99: limits (< 40), a second container (< 20 or >= 90), init containers (>= 90)
    gen: int = 0


def pod_object(p: PodParams) -> dict[str, Any]:
    """A running Pod as the API server lists it (managedFields included), ~3.5 KB of JSON.
    Deployment-style names, requests from ``_SHAPES``, 40 % with limits, 20 % with a sidecar
    container, 10 % with an init container (3 % of them a restartable sidecar init container),
    5 % BestEffort."""
    i, node = p.index, f"node-{p.node:05d}"
    app, team, rs_hash, name = _pod_names(i)
    uid = f"{i:08x}-5b1e-4c2a-9d3f-{p.node:012x}"
    cpu, mem, _ = _SHAPES[p.shape]
    resources: dict[str, Any] = {}
    if p.flavour % 20 != 7:  # 5 % BestEffort
        resources["requests"] = {"cpu": cpu, "memory": mem}
        if p.flavour < 40:
            resources["limits"] = {"cpu": _DOUBLE[cpu], "memory": mem if p.flavour < 20 else _DOUBLE[mem]}
    ip = f"10.{64 + p.node // 256 % 64}.{p.node % 256}.{i % 250 + 2}"
    mounts = [{"name": f"kube-api-access-{i % 99991:05d}", "readOnly": True, "mountPath": _SA_MOUNT}]
    containers = [{"name": "app", "image": f"registry.example.com/{team}/{app}:v1.{i % 40}.0",
                   "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}], "env": _ENV,
                   "resources": resources, "volumeMounts": mounts, "livenessProbe": _PROBE,
                   "readinessProbe": _PROBE, "terminationMessagePath": "/dev/termination-log",
                   "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}]
    if p.flavour < 20 or p.flavour >= 90:
        containers.append({"name": "proxy", "image": "registry.example.com/mesh/proxy:1.22.3",
                           "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                           "volumeMounts": mounts, "terminationMessagePath": "/dev/termination-log",
                           "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"})
    spec: dict[str, Any] = {
        "volumes": [{"name": mounts[0]["name"], "projected": {"sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}],
            "defaultMode": 420}}],
        "containers": containers}
    if p.flavour >= 90:
        init: dict[str, Any] = {"name": "init-config", "image": "registry.example.com/tools/init:2.1",
                                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                                "terminationMessagePath": "/dev/termination-log",
                                "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}
        if p.flavour >= 97:
            init["restartPolicy"] = "Always"
        spec["initContainers"] = [init]
    spec.update({"restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                 "serviceAccountName": "default", "serviceAccount": "default", "nodeName": node,
                 "securityContext": {}, "schedulerName": "default-scheduler", "tolerations": _TOLERATIONS,
                 "priority": 0, "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority"})
    started = "2026-11-27T08:00:00Z"
    qos = ("BestEffort" if "requests" not in resources else
           "Guaranteed" if resources.get("limits") == resources["requests"] else "Burstable")
    return {
        "metadata": {
            "name": name, "generateName": f"{app}-{rs_hash}-", "namespace": team, "uid": uid,
            "resourceVersion": "0", "creationTimestamp": started,
            "labels": {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": team,
                       "pod-template-hash": rs_hash},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{app}-{rs_hash}",
                                 "uid": f"{i % 997:08x}-0000-4000-8000-000000000000", "controller": True,
                                 "blockOwnerDeletion": True}],
            "managedFields": [
                {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                 "time": started, "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {
                     "f:generateName": {}, "f:labels": {".": {}, "f:app.kubernetes.io/name": {},
                                                        "f:pod-template-hash": {}},
                     "f:ownerReferences": {".": {}, f"k:{{\"uid\":\"{i % 997:08x}\"}}": {}}}}},
                {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": started,
                 "fieldsType": "FieldsV1", "subresource": "status", "fieldsV1": {"f:status": {
                     "f:conditions": {}, "f:containerStatuses": {}, "f:hostIP": {}, "f:phase": {},
                     "f:podIP": {}, "f:startTime": {}}}}]},
        "spec": spec,
        "status": {
            "phase": "Running",
            "conditions": [{"type": t, "status": "True", "lastProbeTime": None,
                            "lastTransitionTime": started}
                           for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                                     "PodScheduled")],
            "hostIP": f"10.1.{p.node // 256 % 256}.{p.node % 256}", "podIP": ip, "podIPs": [{"ip": ip}],
            "startTime": started,
            "containerStatuses": [{"name": c["name"], "state": {"running": {"startedAt": started}},
                                   "lastState": {}, "ready": True, "restartCount": p.gen,
                                   "image": c["image"], "imageID": f"{c['image']}@sha256:{i:064x}",
                                   "containerID": f"containerd://{i:060x}{k:04x}", "started": True}
                                  for k, c in enumerate(containers)],
            "qosClass": qos}}


def _pod_names(i: int) -> tuple[str, str, str, str]:
    """(app, team = namespace, ReplicaSet hash, pod name) of bench pod ``i``."""
    app, team = f"svc-{i % 997}", f"team-{i % 23}"
    rs_hash = f"{(i % 997) * 2654435761 % 16**9:09x}"
    return app, team, rs_hash, f"{app}-{rs_hash}-{i:06x}"


def pod_key(p: PodParams) -> tuple[str, str]:
    """(namespace, name): the fake's store key of ``pod_object(p)``."""
    _, team, _, name = _pod_names(p.index)
    return team, name


def restarted(raw: bytes, p: PodParams) -> bytes:
    """``orjson.dumps(pod_object(p))`` (any resourceVersion) turned into the encoding of the same
    pod one restart later (``p.gen + 1``): only the containers' restartCount differ, so the churn
    updates a pod without rendering it again (tests/test_benchmarks_names_smoke.py checks this)."""
    return raw.replace(b'"restartCount":%d,' % p.gen, b'"restartCount":%d,' % (p.gen + 1))


def new_pod(rng: random.Random, index: int, node: int) -> PodParams:
    return PodParams(index, node, rng.choice(_SHAPE_TABLE), rng.randrange(100))


def node_object(i: int, rng: random.Random, updated: str) -> dict[str, Any]:
    """k8s_objects.node (32 CPU, ~124 GiB, 110 pods, 50 images) with load annotations measured at
    ``updated`` (random level: 5-85 % CPU, 10-80 % memory)."""
    ann = k8s_objects.load_annotations(rng, cpu_millis=31850, memory_bytes=129611256 * 1024, updated=updated)
    return k8s_objects.node(i, annotations=ann)


def pending_pod(k: int) -> dict[str, Any]:
    """The pod being scheduled (k8s_objects.pod: 500m / 512 Mi), a new UID per scheduling cycle."""
    return k8s_objects.pod(f"web-{k}", uid=f"bench-pending-{k:06d}")


# --- the fake API server at scale (runs in its own process) ---------------------------------------


class _Log:
    """An rv-ordered log of watch lines with an absolute position (trimmed from the front once
    it holds more than ``limit`` lines; a watcher behind the trimmed part gets 410)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.base = 0  # absolute position of lines[0]
        self.rvs: list[int] = []
        self.lines: list[bytes] = []
        self.floor_rv = 0  # events with rv <= floor_rv are gone

    @property
    def end(self) -> int:
        return self.base + len(self.lines)

    def append(self, rv: int, line: bytes) -> None:
        self.rvs.append(rv)
        self.lines.append(line)
        if len(self.lines) > self.limit:
            cut = self.limit // 2
            self.floor_rv = self.rvs[cut - 1]
            del self.rvs[:cut], self.lines[:cut]
            self.base += cut


class _DecodedStore(Mapping[tuple[str, str], dict[str, Any]]):
    """One kind of the bench fake's encoded store, read as decoded objects (a fresh copy per
    read), so that the test fake's single-object handlers work on it unchanged."""

    def __init__(self, raw: dict[tuple[str, str], bytes]) -> None:
        self.raw = raw

    def __getitem__(self, key: tuple[str, str]) -> dict[str, Any]:
        return orjson.loads(self.raw[key])  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)


def make_bench_api(**kwargs: Any) -> Any:  # noqa: C901 - one class, kept together
    """A started-later ``FakeKubeAPI`` subclass instance (the class is built here so that
    importing this module does not import the test package)."""
    from tests.kubeapi import FakeKubeAPI
    from tests.kubeapi.server import _Handler, _Reply, status_body

    class _NoDelayHandler(_Handler):
        """TCP_NODELAY on the fake's connections, as Go's net/http has it: without it a small
        answer written in two parts (headers, then body) waits for the client's delayed ACK
        (~40 ms per pods/binding POST)."""

        disable_nagle_algorithm = True

    class _BenchKubeAPI(FakeKubeAPI):
        """FakeKubeAPI with encoded objects, snapshot list pages and an rv-ordered watch log
        (see the module docstring). Only what the extender's informers use: list (paged) and
        watch of nodes and pods, all namespaces, no selectors."""

        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            self.store: dict[str, dict[tuple[str, str], bytes]] = {"nodes": {}, "pods": {}}
            self.log: dict[str, _Log] = {"nodes": _Log(self.history_limit), "pods": _Log(self.history_limit)}
            self._snaps: dict[int, list[bytes]] = {}
            self._snap_ids = 0
            self.watch_pos: dict[str, int] = {}
            self.served = {"list_requests": 0, "list_bytes": 0, "list_s": 0.0, "watch_lines": 0}
            # the test fake's handlers that read one object (GET, pods/binding) see the encoded store
            self._objs = {kind: _DecodedStore(raw) for kind, raw in self.store.items()}  # type: ignore[misc]

        def _emit(self, kind: str, etype: str, key: tuple[str, str], obj: dict[str, Any],
                  prev: dict[str, Any] | None) -> dict[str, Any]:
            """The test fake's own writes (a pods/binding POST: ``_bind``) go through ``put``."""
            self.put(kind, obj, etype)
            self.notify()
            return obj

        def start(self) -> Any:
            out = super().start()
            assert self._httpd is not None
            self._httpd.RequestHandlerClass = _NoDelayHandler  # before any client has the URL
            return out

        # ---- the store -------------------------------------------------------------------
        def put(self, kind: str, obj: dict[str, Any], etype: str = "ADDED", *, record: bool = True) -> int:
            """Store (or, for DELETED, remove) ``obj`` at the next resourceVersion; log the
            watch line. Caller holds no lock or ``self._cond``."""
            meta = obj["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            with self._cond:
                self._rv += 1
                meta["resourceVersion"] = str(self._rv)
                return self._keep(kind, key, orjson.dumps(obj), etype, record)

        def put_raw(self, kind: str, key: tuple[str, str], raw: bytes, etype: str) -> int:
            """``put`` of an object already encoded (by ``orjson.dumps``, metadata first, so its
            first resourceVersion is the object's own), restamped with the next resourceVersion:
            what the churn sends costs a substitution instead of a render and an encode."""
            with self._cond:
                self._rv += 1
                raw = _RV.sub(b'"resourceVersion":"%d"' % self._rv, raw, count=1)
                return self._keep(kind, key, raw, etype, True)

        def _keep(self, kind: str, key: tuple[str, str], raw: bytes, etype: str, record: bool) -> int:
            """Store (or forget) ``raw`` at the current resourceVersion; the caller holds the lock."""
            if etype == "DELETED":
                self.store[kind].pop(key, None)
            else:
                self.store[kind][key] = raw
            if record:
                self.log[kind].append(self._rv, b'{"type":"%s","object":%s}\n' % (etype.encode(), raw))
            return self._rv

        def notify(self) -> None:
            with self._cond:
                self._cond.notify_all()

        # ---- list --------------------------------------------------------------------------
        def _list(self, kind: str, ns: str | None, query: dict[str, str]) -> Any:
            t0 = time.perf_counter()
            if ns is not None or _SEL.search(query.get("fieldSelector", "") + query.get("labelSelector", "")):
                raise _Reply(400, "BadRequest",
                             "the benchmark's fake serves all-namespace lists without selectors")
            limit = int(query.get("limit") or 0)
            with self._cond:
                if tok := query.get("continue"):
                    try:
                        state = json.loads(base64.urlsafe_b64decode(tok.encode()))
                        rv, sid, off = int(state["rv"]), int(state["snap"]), int(state["off"])
                        items = self._snaps[sid]
                    except (ValueError, KeyError, TypeError):
                        raise _Reply(410, "Expired",
                                     "continue token not valid (any more); list again") from None
                else:
                    rv, off = self._rv, 0
                    items = list(self.store[kind].values())
                    self._snap_ids += 1
                    sid = self._snap_ids
                    self._snaps[sid] = items
                    while len(self._snaps) > 4:
                        self._snaps.pop(min(self._snaps))
            end = off + limit if 0 < limit < len(items) - off else len(items)
            meta: dict[str, Any] = {"resourceVersion": str(rv)}
            if end < len(items):
                meta["continue"] = base64.urlsafe_b64encode(
                    json.dumps({"rv": rv, "snap": sid, "off": end}).encode()).decode()
                meta["remainingItemCount"] = len(items) - end
            else:
                self._snaps.pop(sid, None)
            head = orjson.dumps({"kind": "PodList" if kind == "pods" else "NodeList", "apiVersion": "v1",
                                 "metadata": meta})
            body = head[:-1] + b',"items":[' + b",".join(items[off:end]) + b"]}"
            self.served["list_requests"] += 1
            self.served["list_bytes"] += len(body)
            self.served["list_s"] += time.perf_counter() - t0
            return body

        @staticmethod
        def _send(h: Any, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
            if not isinstance(body, bytes):
                return FakeKubeAPI._send(h, code, body, headers)
            try:
                h.send_response(code)
                h.send_header("Content-Type", "application/json")
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                h.wfile.write(body)
                h.wfile.flush()
            except OSError:
                h.close_connection = True

        # ---- watch -------------------------------------------------------------------------
        def _watch_lines(self, kind: str, match: Any, rv_param: str, timeout: float, bookmarks: bool,
                         wf: Any) -> Iterator[bytes]:
            log = self.log[kind]

            def expired(rv: int) -> bytes:
                status = status_body(410, "Expired", f"too old resource version: {rv} ({log.floor_rv + 1})")
                return orjson.dumps({"type": "ERROR", "object": status}) + b"\n"

            now = time.monotonic()
            deadline, next_bm = now + timeout, now + self.bookmark_interval_s
            with self._cond:
                if rv_param in ("", "0"):
                    pending = [b'{"type":"ADDED","object":%s}\n' % raw for raw in self.store[kind].values()]
                    pos, sent_rv = log.end, self._rv
                else:
                    rv = int(rv_param)
                    if rv < log.floor_rv:
                        yield expired(rv)
                        return
                    pos = log.base + bisect.bisect_right(log.rvs, rv)
                    pending, sent_rv = [], rv
            while True:
                for start in range(0, len(pending), 32):  # ~100 KB chunks, like Go's buffered writer
                    yield b"".join(pending[start:start + 32])
                self.served["watch_lines"] += len(pending)
                self.watch_pos[kind] = pos
                now = time.monotonic()
                if now >= deadline:
                    return
                if bookmarks and now >= next_bm:  # every event of this kind up to sent_rv was sent
                    yield orjson.dumps({"type": "BOOKMARK", "object": {
                        "kind": "Pod" if kind == "pods" else "Node", "apiVersion": "v1",
                        "metadata": {"resourceVersion": str(sent_rv)}}}) + b"\n"
                    next_bm = now + self.bookmark_interval_s
                with self._cond:
                    while not self._closing.is_set() and pos >= log.end:
                        now = time.monotonic()
                        wake = min(deadline, next_bm) if bookmarks else deadline
                        if now >= wake:
                            break
                        self._cond.wait(wake - now)
                    if self._closing.is_set():
                        return
                    if pos < log.base:
                        yield expired(log.floor_rv)
                        return
                    pending = log.lines[pos - log.base:]
                    pos, sent_rv = log.end, self._rv

    return _BenchKubeAPI(**kwargs)


class _Churn:
    """Pod events at a fixed rate, in batches every few ms: 50 % status updates (MODIFIED), 25 %
    new pods bound to a random node (ADDED), 25 % deletions (DELETED) of random pods.

    The fake shares the machine's two cores with the extender, and a real API server does not:
    rendering a pod and encoding it costs the fake 45-70 us (``rendered_ahead_s`` in the stats,
    over the pods rendered ahead), a third of a core if every one of 5,000 events/s rendered.
    So the new pods are rendered ahead (``prepare``, before the steady phase, for ``seconds``
    of churn; any beyond are rendered on the spot and counted), and an update or a deletion
    restamps the pod's stored encoding (``restarted``, ``put_raw``). What the extender
    receives is the same as rendering each event would give."""

    def __init__(self, api: Any, live: list[PodParams], nodes: int, rate: float, seed: int,
                 seconds: float = 0.0) -> None:
        self.api, self.live, self.nodes, self.rate = api, live, nodes, rate
        self.rng = random.Random(seed)
        self.new_rng = random.Random(seed + 1)  # the new pods' draws, apart: they are made ahead
        self.next_index = max((p.index for p in live), default=0) + 1
        self.counts = {"ADDED": 0, "MODIFIED": 0, "DELETED": 0}
        self.emitted = self.rendered_live = 0
        self.started = self.stopped = 0.0
        self.ahead: list[tuple[PodParams, bytes]] = []
        self.prepare_s = 0.0
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="churn", daemon=True)
        if seconds > 0:
            self.prepare(int(rate * seconds * 0.25 * 1.05) + 100)

    def prepare(self, count: int) -> None:
        """Render ``count`` new pods ahead (taken in order by the ADDED events)."""
        t0 = time.perf_counter()
        made = [self._new() for _ in range(count)]
        self.ahead = [(p, orjson.dumps(pod_object(p))) for p in reversed(made)]  # popped from the end
        self.prepare_s = time.perf_counter() - t0

    def _new(self) -> PodParams:
        p = new_pod(self.new_rng, self.next_index, self.new_rng.randrange(self.nodes))
        self.next_index += 1
        return p

    def _one(self) -> None:
        rng, live, api = self.rng, self.live, self.api
        r = rng.random()
        if r < 0.25 or not live:
            if self.ahead:
                p, raw = self.ahead.pop()
            else:
                p = self._new()
                raw = orjson.dumps(pod_object(p))
                self.rendered_live += 1
            live.append(p)
            api.put_raw("pods", pod_key(p), raw, "ADDED")
            self.counts["ADDED"] += 1
            return
        k = rng.randrange(len(live))
        p = live[k]
        key = pod_key(p)
        raw = api.store["pods"][key]
        if r < 0.5:
            live[k] = live[-1]
            live.pop()
            etype = "DELETED"
        else:
            raw = restarted(raw, p)
            p.gen += 1
            etype = "MODIFIED"
        api.put_raw("pods", key, raw, etype)
        self.counts[etype] += 1

    def _run(self) -> None:
        self.started = time.monotonic()
        batch_cap = max(1, int(self.rate * 0.05))
        while not self.stop_event.is_set():
            due = int((time.monotonic() - self.started) * self.rate) - self.emitted
            if due <= 0:
                self.stop_event.wait(0.002)
                continue
            for _ in range(min(due, batch_cap)):
                self._one()
            self.emitted += min(due, batch_cap)
            self.api.notify()
        self.stopped = time.monotonic()

    def stats(self) -> dict[str, Any]:
        end = self.stopped or time.monotonic()
        elapsed = end - self.started if self.started else 0.0
        return {"target_per_s": self.rate, "emitted": self.emitted, "seconds": elapsed,
                "emitted_per_s": self.emitted / elapsed if elapsed > 0 else None,
                "by_type": dict(self.counts), "rendered_ahead_s": self.prepare_s,
                "rendered_live": self.rendered_live}


def _fake_main(conn: Any, nodes: int, pods_per_node: int, seed: int, history: int, pending: int = 0) -> None:
    """The fake API server's process: build, serve, take commands from ``conn`` until told to
    exit or the parent goes away (EOF). ``pending``: also that many unbound pods
    ``pending_pod(0..pending-1)``, waiting to be scheduled (and bound through pods/binding)."""
    rng = random.Random(seed)
    t0 = time.perf_counter()
    api = make_bench_api(history_limit=history, bookmark_interval_s=5.0, default_watch_timeout_s=600.0)
    live = [new_pod(rng, n * pods_per_node + k, n) for n in range(nodes) for k in range(pods_per_node)]
    for p in live:
        api.put("pods", pod_object(p), record=False)
    for k in range(pending):
        api.put("pods", pending_pod(k), record=False)
    updated = _rfc3339(time.time())  # nodes last: their load stamps are as fresh as possible
    node_objs = [node_object(i, rng, updated) for i in range(nodes)]
    for obj in node_objs:
        api.put("nodes", obj, record=False)
    gc.collect()
    gc.freeze()  # the store is long-lived: keep the collector from walking it during the churn
    build_s = time.perf_counter() - t0
    sizes = {kind: sum(map(len, api.store[kind].values())) for kind in ("nodes", "pods")}
    api.start()
    conn.send({"url": api.url, "build_s": build_s, "json_bytes": sizes, "load_updated": updated,
               "pods": len(api.store["pods"]), "pending": pending, "nodes": len(api.store["nodes"]),
               "pid": os.getpid()})
    churn: _Churn | None = None
    try:
        while True:
            try:
                cmd, *args = conn.recv()
            except (EOFError, OSError):
                return
            if cmd == "prepare_churn":  # rate, seed, seconds: the new pods rendered now
                churn = _Churn(api, live, nodes, float(args[0]), int(args[1]), float(args[2]))
                conn.send(churn.prepare_s)
            elif cmd == "churn":
                if churn is None or churn.started:
                    churn = _Churn(api, live, nodes, float(args[0]), int(args[1]))
                churn.thread.start()
                conn.send(None)
            elif cmd == "stop_churn":
                if churn is not None:
                    churn.stop_event.set()
                    churn.thread.join(10)
                conn.send(_fake_stats(api, churn))
            elif cmd == "stats":
                conn.send(_fake_stats(api, churn))
            elif cmd == "restamp":  # the load annotations measured again, now (MODIFIED nodes)
                updated = _rfc3339(time.time())
                for obj in node_objs:
                    obj["metadata"]["annotations"][k8s_objects.LOAD_PREFIX + "updated"] = updated
                    api.put("nodes", obj, "MODIFIED")
                api.notify()
                conn.send(updated)
            elif cmd == "exit":
                conn.send(None)
                return
    finally:
        if churn is not None:
            churn.stop_event.set()
        api.stop()


def _fake_stats(api: Any, churn: _Churn | None) -> dict[str, Any]:
    with api._cond:
        log = api.log["pods"]
        backlog = log.end - api.watch_pos.get("pods", log.end)
        pods = len(api.store["pods"])
    return {"churn": churn.stats() if churn is not None else None, "served": dict(api.served),
            "pods": pods, "watch_backlog": backlog, "cpu_s": sum(os.times()[:2])}


class FakeAPIProcess:
    """The fake API server in a child process (spawned: its own interpreter and GIL)."""

    def __init__(self, nodes: int, pods_per_node: int, *, seed: int = 11, timeout_s: float = 900.0,
                 history: int = 100_000, pending: int = 0) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_fake_main,
                                 args=(child, nodes, pods_per_node, seed, history, pending),
                                 name=f"fake-kube-api-{nodes}", daemon=True)
        self._proc.start()
        child.close()
        try:
            self.info: dict[str, Any] = self._recv(timeout_s, "start")
        except BaseException:
            self.close()
            raise
        self.url: str = self.info["url"]

    def _recv(self, timeout_s: float, what: str) -> Any:
        if not self._conn.poll(timeout_s):
            raise BenchmarkError(f"fake API server: no answer to {what} within {timeout_s:.0f} s")
        try:
            return self._conn.recv()
        except EOFError:
            raise BenchmarkError(f"fake API server exited (code {self._proc.exitcode}) "
                                 f"during {what}") from None

    def call(self, *cmd: Any, timeout_s: float = 30.0) -> Any:
        self._conn.send(cmd)
        return self._recv(timeout_s, cmd[0])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._proc.is_alive():
                self.call("exit", timeout_s=10)
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self._conn.close()


@contextlib.contextmanager
def fake_api(nodes: int, pods_per_node: int, **kw: Any) -> Iterator[FakeAPIProcess]:
    proc = None
    try:
        proc = FakeAPIProcess(nodes, pods_per_node, **kw)
        yield proc
    finally:
        if proc is not None:
            proc.close()


def _kubeconfig(path: Path, url: str) -> Path:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": url}}],
        "users": [{"name": "bench", "user": {"token": "dummy-benchmark-token"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "bench"}}]}))
    return path


# --- the client side ------------------------------------------------------------------------------


def check_names_filter(reply: Reply, names: frozenset[str]) -> dict[str, int]:
    """HTTP 200, ``Nodes`` null, no Error; NodeNames, FailedNodes and FailedAndUnresolvableNodes
    name every request node exactly once between them (``latency.decode_filter``)."""
    return decode_filter(reply, names, names_form=True).counts()


def metrics_snapshot(server: Server) -> dict[str, float]:
    """Every sample of /metrics, keyed by ``name{labels}`` as exposed."""
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[key] = float(value)
    return out


POD_EVENTS = 'extender_informer_events_total{kind="pods",what="event"}'
SNAPSHOT_AGE = "extender_cache_snapshot_age_seconds"
FALLBACK = "extender_load_fallback_nodes_total"


def _informer(m: dict[str, float], what: str) -> float:
    return sum(m.get(f'extender_informer_events_total{{kind="{k}",what="{what}"}}', 0.0)
               for k in ("nodes", "pods"))


@dataclass
class Phase:
    """One measurement (steady or churn) at one size: per verb, client and server ms."""

    nodes: int
    phase: str
    client_ms: dict[str, list[float]] = field(default_factory=lambda: {"filter": [], "prioritize": []})
    server_ms: dict[str, list[float]] = field(default_factory=lambda: {"filter": [], "prioritize": []})
    # the answering thread's CPU (Server-Timing cpu): server ms well above it is time spent waiting
    server_cpu_ms: dict[str, list[float]] = field(default_factory=lambda: {"filter": [], "prioritize": []})
    answer: dict[str, dict[str, int]] = field(default_factory=dict)
    unresolvable_max: int = 0
    seconds: float = 0.0
    samples: list[dict[str, Any]] = field(default_factory=list)  # periodic /metrics (+ fake) readings
    extender_cpu_s: float | None = None
    extender_wait_s: float | None = None  # the worker's threads runnable but without a CPU
    cache_process_cpu_s: float | None = None  # the worker's children (EXTENDER_CACHE_PROCESS)
    fallback_nodes: float | None = None
    events_base: float = 0.0  # the extender's pod event counter just before the churn started

    def verb_summary(self, verb: str) -> dict[str, Any]:
        c, s, cpu = self.client_ms[verb], self.server_ms[verb], self.server_cpu_ms[verb]
        return {"nodes": self.nodes, "phase": self.phase, "verb": verb, "calls": len(c),
                "client_ms": {"p50": statistics.median(c), "p99": pct(c, 99), "max": max(c)},
                "server_ms": ({"p50": statistics.median(s), "p99": pct(s, 99), "max": max(s)} if s else None),
                "server_cpu_ms": ({"p50": statistics.median(cpu), "p99": pct(cpu, 99)} if cpu else None),
                "answer": self.answer.get(verb, {})}


Body = Callable[[int], tuple[bytes, frozenset[str]]]


def _bodies(names: Sequence[str], percentage: int = 100) -> Body:
    """(ExtenderArgs in the NodeNames form, Go field order Pod, Nodes, NodeNames; the names it
    carries) for cycle k. ``percentage`` 100: every node in every call (kube-scheduler with
    ``percentageOfNodesToScore: 100``), the same list each time; otherwise kube-scheduler's
    sample (``benchmarks.sampling``; 0 = its adaptive default): ``numFeasibleNodesToFind`` names
    from a start that moves on by as many each cycle (every node fits the benchmark's pod, so
    the search examines exactly that many), a different list every call."""
    n = len(names)
    want = n if percentage == 100 else num_feasible_nodes_to_find(n, percentage)
    if want >= n:
        tail, every = orjson.dumps(list(names)), frozenset(names)

        def body(k: int) -> tuple[bytes, frozenset[str]]:
            return b'{"Pod":' + orjson.dumps(pending_pod(k)) + b',"Nodes":null,"NodeNames":' + tail + b"}", every
        return body

    def sampled(k: int) -> tuple[bytes, frozenset[str]]:
        start = k * want % n
        window = [names[(start + i) % n] for i in range(want)]
        return (b'{"Pod":' + orjson.dumps(pending_pod(k)) + b',"Nodes":null,"NodeNames":' + orjson.dumps(window)
                + b"}", frozenset(window))
    return sampled


def _run_phase(server: Server, client: Client, fake: FakeAPIProcess | None, phase: Phase,
               names: Sequence[str], body: Body, first_cycle: int, calls: int,
               min_seconds: float, max_seconds: float = math.inf) -> int:
    """``calls`` filter + prioritize pairs (and more until ``min_seconds`` passed; fewer if
    ``max_seconds`` passed first), checking each answer; /metrics (and the fake's counters)
    sampled between calls. Returns the next cycle."""
    worker = server.worker_pid()
    cpu0, wait0 = proc_counters(worker), runqueue_wait_s(worker)
    helpers = server.cache_pids()
    helpers_cpu0 = _cpu_s(helpers)
    k = first_cycle
    start = last_sample = time.monotonic()
    _sample(server, fake, phase, 0.0)
    done = 0
    while done == 0 or ((done < calls or time.monotonic() - start < min_seconds)
                        and time.monotonic() - start < max_seconds):
        data, name_set = body(k)
        k += 1
        for verb in ("filter", "prioritize"):
            reply = client.post(f"/{verb}", data)
            if verb == "filter":
                answer = check_names_filter(reply, name_set)
                phase.unresolvable_max = max(phase.unresolvable_max, answer["unresolvable"])
            else:
                answer = check_prioritize(reply, name_set)
            phase.answer[verb] = answer
            phase.client_ms[verb].append(reply.wall_ms)
            if reply.server_ms is not None:
                phase.server_ms[verb].append(reply.server_ms)
            if reply.server_cpu_ms is not None:
                phase.server_cpu_ms[verb].append(reply.server_cpu_ms)
        done += 1
        now = time.monotonic()
        if now - last_sample >= SAMPLE_EVERY_S:
            _sample(server, fake, phase, now - start)
            last_sample = now
    phase.seconds = time.monotonic() - start
    _sample(server, fake, phase, phase.seconds)
    cpu1, wait1 = proc_counters(worker), runqueue_wait_s(worker)
    if cpu0 is not None and cpu1 is not None:
        phase.extender_cpu_s = (cpu1.user_s + cpu1.system_s) - (cpu0.user_s + cpu0.system_s)
    if wait0 is not None and wait1 is not None:
        phase.extender_wait_s = wait1 - wait0
    if helpers:
        phase.cache_process_cpu_s = _cpu_s(helpers) - helpers_cpu0
    first, last = phase.samples[0]["metrics"], phase.samples[-1]["metrics"]
    if FALLBACK in first and FALLBACK in last:
        phase.fallback_nodes = last[FALLBACK] - first[FALLBACK]
    return k


def _cpu_s(pids: Sequence[int]) -> float:
    """CPU seconds (user + system) of ``pids``, summed; a process that is gone counts 0."""
    counters = [proc_counters(pid) for pid in pids]
    return sum(c.user_s + c.system_s for c in counters if c is not None)


def _sample(server: Server, fake: FakeAPIProcess | None, phase: Phase, t: float) -> None:
    m = metrics_snapshot(server)
    entry: dict[str, Any] = {"t": t, "metrics": {
        key: m.get(key) for key in (POD_EVENTS, SNAPSHOT_AGE, FALLBACK)}}
    entry["metrics"].update({f"informer_{w}": _informer(m, w)
                             for w in ("relist", "restart", "error", "malformed")})
    if fake is not None:
        entry["fake"] = fake.call("stats")
    phase.samples.append(entry)


# --- one size -----------------------------------------------------------------------------------


def _server_env(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.startswith("EXTENDER_"):
        raise argparse.ArgumentTypeError(f"expected EXTENDER_NAME=VALUE, got {text!r}")
    return key, value


def _measure_size(n: int, args: argparse.Namespace, facts_box: dict[str, Any],
                  command: str) -> dict[str, Any]:
    calls = args.calls or default_calls(n)
    print(f"{n:,} nodes x {args.pods_per_node} pods: building the fake API server ...", flush=True)
    # the fake keeps every event of the churn phase: a slow watcher lags, it is never cut off (410)
    history = int(args.events_per_s * (args.churn_max_seconds + 5) * 1.2) + 10_000
    with fake_api(n, args.pods_per_node, timeout_s=args.ready_timeout, history=history) as fake, \
            tempfile.TemporaryDirectory(prefix="extender-bench-") as tmp:
        info = fake.info
        mb = {kind: info["json_bytes"][kind] / 1e6 for kind in ("nodes", "pods")}
        print(f"  fake API server: {info['nodes']:,} nodes ({mb['nodes']:.0f} MB JSON), "
              f"{info['pods']:,} pods ({mb['pods']:.0f} MB) built in {info['build_s']:.1f} s", flush=True)
        kubeconfig = _kubeconfig(Path(tmp) / "kubeconfig", fake.url)
        started = time.monotonic()
        with running_server("--kubeconfig", str(kubeconfig), "--log-level", "warning",
                            env=dict(args.server_env), timeout_s=args.ready_timeout) as server:
            live_s = time.monotonic() - started
            ready_s, ready_text = _wait_ready(server, started, args.ready_timeout)
            served = fake.call("stats")["served"]
            print(f"  extender ready after {ready_s:.1f} s ({ready_text}); pages served by the fake: "
                  f"{served['list_requests']} ({served['list_bytes'] / 1e6:.0f} MB, "
                  f"{served['list_s']:.1f} s of its time)", flush=True)
            if not facts_box:
                facts_box.update(machine_facts(server))
                print("\n".join(facts_lines(command, facts_box)), flush=True)
            expected = f"{n} nodes, {info['pods']} pods"
            if expected not in ready_text:
                raise BenchmarkError(f"the extender's cache holds {ready_text!r}, expected {expected}")
            restamped = _restamp_if_old(server, fake, info, n, args.ready_timeout)
            names = [f"node-{i:05d}" for i in range(n)]
            random.Random(n).shuffle(names)
            body = _bodies(names, args.percentage)
            client = Client(server.host, server.port, timeout_s=60)
            try:
                k = 0
                for _ in range(args.warmup):
                    data, sent = body(k)
                    k += 1
                    check_names_filter(client.post("/filter", data), sent)
                    check_prioritize(client.post("/prioritize", data), sent)
                # the churn's new pods rendered now, while nothing is measured (see _Churn)
                fake.call("prepare_churn", args.events_per_s, n, args.churn_max_seconds + 2, timeout_s=300)
                steady = Phase(n, "steady")
                k = _run_phase(server, client, None, steady, names, body, k, calls, 0.0)
                _print_phase(steady)
                churn = Phase(n, "churn")
                churn.events_base = metrics_snapshot(server).get(POD_EVENTS) or 0.0
                fake.call("churn", args.events_per_s, n)
                try:
                    time.sleep(0.3)  # the driver is up to speed before the first timed call
                    k = _run_phase(server, client, fake, churn, names, body, k, calls, args.churn_seconds,
                                   args.churn_max_seconds)
                finally:
                    stopped = fake.call("stop_churn")
                drain = _drain(server, fake, churn.events_base, stopped["churn"]["emitted"],
                               timeout_s=args.drain_timeout)
                _print_phase(churn)
            finally:
                client.close()
            tail = server.log_tail(2000)
        profile = None
        if args.profile:  # after the server stopped: nothing else runs on the machine but the fake
            print("  profiling in-process ...", flush=True)
            fake.call("restamp", timeout_s=args.ready_timeout)  # fresh load, as in the measurement
            profile = profile_in_process(kubeconfig, names, body, k, args.profile_calls, args.ready_timeout)
    return {"nodes": n, "pods": info["pods"], "pods_per_node": args.pods_per_node, "calls": calls,
            "fake": {k: info[k] for k in ("build_s", "json_bytes", "load_updated")},
            "live_s": live_s, "ready_s": ready_s, "restamped": restamped, "ready_text": ready_text,
            "list_served": served,
            "steady": steady, "churn": churn, "churn_stats": stopped, "drain": drain, "profile": profile,
            "server_log_tail": tail if ("WARNING" in tail or "ERROR" in tail) else ""}


def _restamp_if_old(server: Server, fake: FakeAPIProcess, info: dict[str, Any], n: int,
                    timeout_s: float) -> dict[str, Any] | None:
    """Renew the nodes' load stamps when the first sync took so long that they would go stale
    (180 s) before the measurement ends; wait until the extender has applied all N node events."""
    stamp = datetime.datetime.fromisoformat(info["load_updated"]).timestamp()
    age = time.time() - stamp
    if age < RESTAMP_AFTER_S:
        return None
    key = 'extender_informer_events_total{kind="nodes",what="event"}'
    before = metrics_snapshot(server).get(key) or 0.0
    t0 = time.monotonic()
    updated = fake.call("restamp", timeout_s=timeout_s)
    while (metrics_snapshot(server).get(key) or 0.0) - before < n:
        if time.monotonic() - t0 > timeout_s:
            raise BenchmarkError(f"the extender did not apply the {n} node updates within {timeout_s:.0f} s")
        time.sleep(0.1)
    seconds = time.monotonic() - t0
    print(f"  load stamps were {age:.0f} s old: renewed ({n:,} node updates applied in {seconds:.1f} s)",
          flush=True)
    return {"old_age_s": age, "updated": updated, "seconds": seconds}


def _wait_ready(server: Server, started: float, timeout_s: float) -> tuple[float, str]:
    deadline = started + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{server.url}/readyz", timeout=10) as r:
                if r.status == 200:
                    return time.monotonic() - started, r.read().decode().strip()
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise BenchmarkError(f"extender not ready after {timeout_s:.0f} s:\n{server.log_tail()}")
        time.sleep(0.05)


def _drain(server: Server, fake: FakeAPIProcess, events_base: float, emitted: int,
           timeout_s: float) -> dict[str, Any]:
    """After the driver stopped: how long until the extender has applied every emitted event
    (its pod event counter reaches ``events_base + emitted``)."""
    t0 = time.monotonic()
    trace = []
    relists0 = None
    while True:
        m = metrics_snapshot(server)
        applied = (m.get(POD_EVENTS) or 0.0) - events_base
        relists = _informer(m, "relist")
        relists0 = relists if relists0 is None else relists0
        t = time.monotonic() - t0
        trace.append((round(t, 2), int(applied)))
        if applied >= emitted:
            return {"seconds": t, "complete": True, "relists": relists - relists0, "trace": trace}
        if t > timeout_s:
            return {"seconds": t, "complete": False, "left": int(emitted - applied),
                    "relists": relists - relists0, "fake_backlog": fake.call("stats")["watch_backlog"],
                    "trace": trace}
        time.sleep(0.25)


def _print_phase(p: Phase) -> None:
    parts = []
    for verb in ("filter", "prioritize"):
        s = p.verb_summary(verb)
        srv, cpu = s["server_ms"] or {}, s["server_cpu_ms"] or {}
        parts.append(f"{verb} p50 {_ms(s['client_ms']['p50'])} / p99 {_ms(s['client_ms']['p99'])} ms "
                     f"(server {_ms(srv.get('p50'))} / {_ms(srv.get('p99'))}, "
                     f"its CPU {_ms(cpu.get('p50'))} / {_ms(cpu.get('p99'))})")
    print(f"  {p.phase}: {len(p.client_ms['filter'])} cycles in {p.seconds:.1f} s; " + "; ".join(parts),
          flush=True)


# --- in-process profile of one names-form request ------------------------------------------------

# (file suffix, function) -> stage label, for the cProfile breakdown
PROFILE_STAGES = (
    ("extender/wire.py", "decode_scheduling_request", "decode ExtenderArgs"),
    ("extender/wire.py", "_unique", "  of which the NodeNames duplicate check"),
    ("extender/demand.py", "requested_resources", "pod demand"),
    ("extender/demand.py", "pod_demand", "pod demand"),
    ("extender/cache.py", "candidates", "source: names -> snapshot rows -> NodeTable"),
    ("scoring/evaluate.py", "evaluate", "evaluate (filters + strategies)"),
    ("scoring/filters.py", "describe", "filter: failure reasons (describe)"),
    ("extender/wire.py", "encode_filter_result", "encode answer"),
    ("extender/wire.py", "encode_host_priorities", "encode answer"),
    ("extender/decisions.py", "record_filter", "decisions log"),
    ("extender/decisions.py", "record_prioritize", "decisions log"),
)


# Bytes written between calls for the profile's "CPU caches flushed" case: more than the last
# level cache of the machines we measure on, standing in for what the client, the kernel's
# network stack and other processes touch between two scheduling calls.
CACHE_FLUSH_BYTES = 64 * 1024 * 1024


def profile_in_process(kubeconfig: Path, names: Sequence[str], body: Body, first_cycle: int,
                       calls: int, ready_timeout_s: float = 600.0) -> dict[str, Any]:
    """The server's work for names-form calls without HTTP: ``create_app`` in this process with
    a cache of its own on the same fake API, then ``Verbs.filter`` / ``Verbs.prioritize`` on the
    request bytes. Wall medians with the source's table cached (a still cluster), rebuilt on every
    call (what each call pays under churn, when every publish is a new snapshot), and with the
    decisions log off; then cProfile of the cached and rebuilt cases, summed per stage."""
    import dataclasses as _dc

    from extender.app import create_app
    from extender.settings import Settings

    # the cache in this process (EXTENDER_CACHE_PROCESS=false): the profile times its event
    # application and publisher too, which a cache process would hide from cProfile
    settings = _dc.replace(Settings(), kubeconfig=str(kubeconfig), log_level="warning", cache_process=False)
    app = create_app(settings)
    ext = app.extensions["extender"]
    verbs, source, cache = ext["verbs"], ext["source"], ext["cache"]
    try:
        deadline = time.monotonic() + ready_timeout_s
        while not source.readiness()[0]:
            if time.monotonic() > deadline:
                raise BenchmarkError("in-process cache not ready for the profile")
            time.sleep(0.1)
        k = first_cycle
        data = [body(k + i)[0] for i in range(calls)]

        flush = np.ones(CACHE_FLUSH_BYTES // 8)

        def wall(verb: str, *, cold: bool, flushed: bool = False) -> list[float]:
            fn = getattr(verbs, verb)
            out = []
            for d in data:
                if cold:
                    source._last = None  # noqa: SLF001 - the per-snapshot table cache, as after a publish
                if flushed:  # what else runs between two calls evicts the CPU caches (see CACHE_FLUSH_BYTES)
                    flush[::8] += 1.0
                t0 = time.perf_counter()
                fn(d)
                out.append((time.perf_counter() - t0) * 1e3)
            return out

        result: dict[str, Any] = {"calls": calls, "wall_ms": {}, "stages_ms": {}, "top": {}}
        http = app.test_client()
        for verb in ("filter", "prioritize"):
            wall(verb, cold=False)  # warm-up
            result["wall_ms"][f"{verb} cached table"] = statistics.median(wall(verb, cold=False))
            timings = []
            for d in data:
                r = http.post(f"/{verb}", data=d, content_type="application/json")
                timings.append(float(r.headers["Server-Timing"].split("dur=")[1]))
            result["wall_ms"][f"{verb} cached table through Flask (Server-Timing)"] = \
                statistics.median(timings)
            result["wall_ms"][f"{verb} table rebuilt"] = statistics.median(wall(verb, cold=True))
            result["wall_ms"][f"{verb} cached table, CPU caches flushed before each call"] = statistics.median(
                wall(verb, cold=False, flushed=True))
            decisions, verbs._decisions = verbs._decisions, None  # noqa: SLF001
            try:
                result["wall_ms"][f"{verb} cached table, no decisions log"] = statistics.median(
                    wall(verb, cold=False))
            finally:
                verbs._decisions = decisions  # noqa: SLF001
            for cold in (False, True):
                label = f"{verb} {'table rebuilt' if cold else 'cached table'}"
                prof = cProfile.Profile()
                prof.enable()
                wall(verb, cold=cold)
                prof.disable()
                st = pstats.Stats(prof)
                total = sum(v[2] for v in st.stats.values())  # type: ignore[attr-defined]
                stages: dict[str, float] = {"(all, under the profiler)": total * 1e3 / calls}
                stages.update((stage, 0.0) for _, _, stage in PROFILE_STAGES)
                raw_stats = st.stats  # type: ignore[attr-defined]
                for (fname, _line, func), (_cc, _nc, _tt, ct, _callers) in raw_stats.items():
                    for suffix, name, stage in PROFILE_STAGES:
                        if func == name and fname.endswith(suffix):
                            stages[stage] += ct * 1e3 / calls
                result["stages_ms"][label] = stages
                buf = io.StringIO()
                pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(15)
                result["top"][label] = buf.getvalue()
        result["gc_ms"] = _gc_pause_ms()
        result["events"] = _events_in_process(cache, verbs, data, len(names))
        return result
    finally:
        if cache is not None:
            cache.stop()


def _gc_pause_ms() -> dict[str, float]:
    """A full cyclic collection with the cache's objects unfrozen (as before the extender froze
    them after its first sync) and frozen (as it runs): the pause a call pays when it triggers
    one."""
    gc.unfreeze()
    t0 = time.perf_counter()
    gc.collect()
    unfrozen = (time.perf_counter() - t0) * 1e3
    gc.freeze()
    t0 = time.perf_counter()
    gc.collect()
    return {"unfrozen": unfrozen, "frozen": (time.perf_counter() - t0) * 1e3}


def _events_in_process(cache: Any, verbs: Any, data: Sequence[bytes], nodes: int) -> dict[str, Any]:
    """Pod watch lines through the pods informer's own line handler (decode, cache update,
    counter), from a thread of this process as fast as it goes: alone for 2 s, then while
    the main thread calls filter and prioritize (no HTTP, no other busy process: they share
    the GIL and the cache, whose publisher runs as in the server)."""
    rng = random.Random(5)
    lines = []
    for j in range(4000):
        obj = pod_object(new_pod(rng, 50_000_000 + j, rng.randrange(nodes)))
        obj["metadata"]["resourceVersion"] = str(10**9 + j)
        lines.append(b'{"type":"MODIFIED","object":' + orjson.dumps(obj) + b"}")
    handle = cache.informers["pods"]._handle_line  # noqa: SLF001 - the informer's per-line work
    stop = threading.Event()
    count = [0]

    def apply() -> None:
        i = 0
        while not stop.is_set():
            handle(lines[i % len(lines)])
            i += 1
        count[0] = i

    def run(work: Callable[[], Any]) -> tuple[float, float, Any]:
        stop.clear()
        thread = threading.Thread(target=apply, name="bench-events")
        t0 = time.perf_counter()
        thread.start()
        out = work()
        stop.set()
        thread.join()
        seconds = time.perf_counter() - t0
        return count[0] / seconds, seconds, out

    def publish_ms() -> dict[str, float]:
        state = cache.state
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            state.publish(force=True)
            times.append((time.perf_counter() - t0) * 1e3)
        return {"ms": statistics.median(times), "recent_pods": len(getattr(state, "_recent", ()))}

    publish_before = publish_ms()
    alone, _, _ = run(lambda: time.sleep(2.0))

    def serve() -> dict[str, float]:
        walls: dict[str, list[float]] = {"filter": [], "prioritize": []}
        for d in data:
            for verb in ("filter", "prioritize"):
                t0 = time.perf_counter()
                getattr(verbs, verb)(d)
                walls[verb].append((time.perf_counter() - t0) * 1e3)
        return {f"{v} p50": statistics.median(w) for v, w in walls.items()} | {
            f"{v} p99": pct(w, 99) for v, w in walls.items()}

    serving, seconds, walls = run(serve)
    return {"publish": {"before": publish_before, "after": publish_ms()},
            "events_per_s_alone": alone, "events_per_s_while_serving": serving, "serving_s": seconds,
            "wall_ms_while_applying": walls, "switch_interval_s": sys.getswitchinterval()}


def profile_lines(nodes: int, prof: dict[str, Any]) -> list[str]:
    out = [f"in-process profile at {nodes:,} nodes ({prof['calls']} calls per case; wall medians, ms): " +
           ", ".join(f"{k} {_ms(v)}" for k, v in prof["wall_ms"].items())]
    for label, stages in prof["stages_ms"].items():
        out.append(f"  cProfile {label} (ms per call, cumulative; the profiler inflates Python-heavy "
                   "code): " + ", ".join(f"{k} {_ms(v)}" for k, v in stages.items()))
    if "gc_ms" in prof:
        out.append(f"  full GC collection: {_ms(prof['gc_ms']['unfrozen'])} ms with the cache's objects unfrozen, "
                   f"{_ms(prof['gc_ms']['frozen'])} ms frozen (as the extender runs after its first sync)")
    ev = prof.get("events")
    if ev:
        out.append("  pod events through the informer's line handler in-process: "
                   f"{ev['events_per_s_alone']:,.0f}/s alone, {ev['events_per_s_while_serving']:,.0f}/s "
                   "while serving; meanwhile (ms) " +
                   ", ".join(f"{k} {_ms(v)}" for k, v in ev["wall_ms_while_applying"].items()))
        pub = ev["publish"]
        out.append(f"  snapshot publish: {_ms(pub['before']['ms'])} ms with {pub['before']['recent_pods']:,} "
                   f"recently bound pods, {_ms(pub['after']['ms'])} ms with {pub['after']['recent_pods']:,} "
                   "after the event flood (at most every 200 ms, when anything it copies changed)")
    return out


# --- the whole benchmark ----------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", type=_sizes, default=DEFAULT_SIZES,
                   help="node counts (default 1000,5000,10000)")
    p.add_argument("--pods-per-node", type=_positive, default=DEFAULT_PODS_PER_NODE,
                   help="running pods bound to each node (default 30)")
    p.add_argument("--calls", type=_positive, help="timed filter + prioritize pairs per phase and size "
                   "(default 200 up to 5,000 nodes, 100 above)")
    p.add_argument("--warmup", type=_non_negative, default=WARMUP_CALLS,
                   help="untimed pairs first (default 3)")
    p.add_argument("--events-per-s", type=float, default=DEFAULT_EVENTS_PER_S,
                   help="pod events per second the fake emits during the churn phase (default 5000)")
    p.add_argument("--churn-seconds", type=float, default=DEFAULT_CHURN_S,
                   help="the churn phase lasts at least this long, calling all the while (default 10)")
    p.add_argument("--churn-max-seconds", type=float, default=60.0,
                   help="... and at most this long, even if fewer than --calls pairs were made (default 60)")
    p.add_argument("--ready-timeout", type=float, default=900.0,
                   help="seconds to wait for the fake to build and for the extender's first sync "
                   "(default 900)")
    p.add_argument("--drain-timeout", type=float, default=60.0,
                   help="seconds to wait after the churn for the extender to apply the backlog (default 60)")
    p.add_argument("--percentage", type=int, default=100, choices=range(0, 101), metavar="0..100",
                   help="percentageOfNodesToScore: 100 (default) sends every node in every call, the "
                        "worst case; 0 sends kube-scheduler's adaptive sample (500 of 5,000 nodes), "
                        "a different window each call")
    p.add_argument("--server-env", action="append", default=[], metavar="EXTENDER_NAME=VALUE",
                   type=_server_env, help="a setting for the extender under test, e.g. "
                   "EXTENDER_LINGER_S=0 (repeatable; the caller's own EXTENDER_* are not passed on)")
    p.add_argument("--profile", action="store_true",
                   help="also time the server's stages in-process and cProfile them (per size)")
    p.add_argument("--profile-calls", type=_positive, default=50,
                   help="calls per verb for --profile (default 50)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for the JSON and Markdown "
                   "results (default benchmarks/results/, gitignored)")


def run(args: argparse.Namespace) -> int:
    """Cluster-cache mode: filter and prioritize with node names only against the real extender
    fed by a fake API server (in its own process) holding N nodes and N x pods-per-node pods;
    readiness time, steady latency, and latency plus the cache's event rate under pod churn."""
    command = _command()
    facts: dict[str, Any] = {}
    results = []
    # SIGTERM unwinds like Ctrl-C, so that the extender and the fake API server are stopped
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        for n in args.sizes:
            results.append(_measure_size(n, args, facts, command))
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    rows = [r[ph].verb_summary(v) for r in results for ph in ("steady", "churn")
            for v in ("filter", "prioritize")]
    cache_rows = [_cache_row(r) for r in results]
    text = "\n".join(["", latency_table(rows, cache_rows), "", cache_table(cache_rows), "",
                      *target_lines(rows, cache_rows), *_notes(results, cache_rows), ""])
    print(text)
    record = {"benchmark": "names", "command": command, "machine": facts,
              "config": {"sizes": list(args.sizes), "pods_per_node": args.pods_per_node, "calls": args.calls,
                         "warmup": args.warmup, "events_per_s": args.events_per_s,
                         "churn_seconds": args.churn_seconds, "churn_max_seconds": args.churn_max_seconds,
                         "server_env": dict(args.server_env), "target": TARGET},
              "rows": rows, "cache": cache_rows,
              "sizes": [_size_record(r) for r in results]}
    markdown = "\n".join(["```", *facts_lines(command, facts), "```", text])
    json_path, md_path = _write(args.out, "names", record, markdown)
    print(f"written: {json_path} and {md_path}")
    return 0


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def _cache_row(r: dict[str, Any]) -> dict[str, Any]:
    churn: Phase = r["churn"]
    stats = r["churn_stats"]["churn"]
    first, last = churn.samples[0], churn.samples[-1]
    applied = (last["metrics"][POD_EVENTS] or 0) - (first["metrics"][POD_EVENTS] or 0)
    span = last["t"] - first["t"]
    emitted_in_span = last["fake"]["churn"]["emitted"] - first["fake"]["churn"]["emitted"]
    # events emitted by the fake and not yet applied by the extender, at each sample
    backlog = [int(s["fake"]["churn"]["emitted"] - ((s["metrics"][POD_EVENTS] or 0) - churn.events_base))
               for s in churn.samples]
    ages = [s["metrics"][SNAPSHOT_AGE] for s in churn.samples if s["metrics"][SNAPSHOT_AGE] is not None]
    relists = last["metrics"]["informer_relist"] - first["metrics"]["informer_relist"]
    trouble = sum(last["metrics"][f"informer_{w}"] - first["metrics"][f"informer_{w}"]
                  for w in ("restart", "error", "malformed"))
    p99 = {v: r["churn"].verb_summary(v)["client_ms"]["p99"] / r["steady"].verb_summary(v)["client_ms"]["p99"]
           for v in ("filter", "prioritize")}
    srv_p99 = {}
    for v in ("filter", "prioritize"):
        a, b = r["churn"].verb_summary(v)["server_ms"], r["steady"].verb_summary(v)["server_ms"]
        srv_p99[v] = a["p99"] / b["p99"] if a and b else None
    return {
        "nodes": r["nodes"], "pods": r["pods"], "pods_json_mb": r["fake"]["json_bytes"]["pods"] / 1e6,
        "ready_s": r["ready_s"], "target_per_s": stats["target_per_s"] if stats else None,
        "emitted_per_s": emitted_in_span / span if span > 0 else None,
        "applied_per_s": applied / span if span > 0 else None,
        "span_s": span, "emitted": emitted_in_span, "applied": applied,
        "backlog_max": max(backlog) if backlog else None, "backlog_end": backlog[-1] if backlog else None,
        # the age of the oldest event not yet applied when the churn ended (events leave the fake at a
        # steady rate): how far behind the API server the extender's picture was at that moment
        "lag_end_s": (backlog[-1] / stats["emitted_per_s"]) if backlog and stats and stats["emitted_per_s"]
        else None,
        "drain_s": r["drain"]["seconds"], "drain_complete": r["drain"]["complete"],
        "drain_left": r["drain"].get("left", 0),
        "snapshot_age_s": {"p50": statistics.median(ages), "max": max(ages)} if ages else None,
        "relists": relists, "informer_trouble": trouble,
        "p99_ratio_client": p99, "p99_ratio_server": srv_p99,
        "extender_cpu_per_s": {ph: (r[ph].extender_cpu_s / r[ph].seconds if r[ph].extender_cpu_s is not None
                                    and r[ph].seconds > 0 else None) for ph in ("steady", "churn")},
        "cache_process_cpu_per_s": {ph: (r[ph].cache_process_cpu_s / r[ph].seconds
                                         if r[ph].cache_process_cpu_s is not None and r[ph].seconds > 0
                                         else None) for ph in ("steady", "churn")},
        "fake_cpu_per_s": ((last["fake"]["cpu_s"] - first["fake"]["cpu_s"]) / span if span > 0 else None),
        # per filter or prioritize call: how long the worker's threads waited for a core
        "extender_wait_ms_per_call": {ph: (r[ph].extender_wait_s * 1e3 / (2 * len(r[ph].client_ms["filter"]))
                                           if r[ph].extender_wait_s is not None and r[ph].client_ms["filter"]
                                           else None) for ph in ("steady", "churn")},
        "fallback_nodes": {ph: r[ph].fallback_nodes for ph in ("steady", "churn")},
        "unresolvable_max": max(r["steady"].unresolvable_max, r["churn"].unresolvable_max),
    }


def _size_record(r: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in r.items() if k not in ("steady", "churn")}
    for ph in ("steady", "churn"):
        p: Phase = r[ph]
        out[ph] = {"seconds": p.seconds, "extender_cpu_s": p.extender_cpu_s, "extender_wait_s": p.extender_wait_s,
                   "cache_process_cpu_s": p.cache_process_cpu_s,
                   "fallback_nodes": p.fallback_nodes, "events_base": p.events_base,
                   "unresolvable_max": p.unresolvable_max, "client_ms": p.client_ms, "server_ms": p.server_ms,
                   "server_cpu_ms": p.server_cpu_ms,
                   "samples": p.samples}
    return out


LATENCY_HEADER = ("| nodes | phase | verb | calls | client p50 ms | client p99 ms | client max ms "
                  "| server p50 ms | server p99 ms | server max ms | server CPU p50 / p99 ms "
                  "| p99 churn/steady (client, server) |\n"
                  "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def latency_table(rows: Sequence[dict[str, Any]], cache_rows: Sequence[dict[str, Any]]) -> str:
    ratios = {c["nodes"]: c for c in cache_rows}
    lines = [LATENCY_HEADER]
    for r in rows:
        srv, cpu = r["server_ms"] or {}, r["server_cpu_ms"] or {}
        ratio = ""
        if r["phase"] == "churn":
            c = ratios[r["nodes"]]
            s = c["p99_ratio_server"][r["verb"]]
            ratio = f"{c['p99_ratio_client'][r['verb']]:.2f}, {'n/a' if s is None else f'{s:.2f}'}"
        lines.append(f"| {r['nodes']:,} | {r['phase']} | {r['verb']} | {r['calls']} "
                     f"| {_ms(r['client_ms']['p50'])} | {_ms(r['client_ms']['p99'])} "
                     f"| {_ms(r['client_ms']['max'])} | {_ms(srv.get('p50'))} "
                     f"| {_ms(srv.get('p99'))} | {_ms(srv.get('max'))} "
                     f"| {_ms(cpu.get('p50'))} / {_ms(cpu.get('p99'))} | {ratio} |")
    return "\n".join(lines)


CACHE_HEADER = ("| nodes | pods | pods JSON MB | ready s | events/s target | emitted/s | applied/s "
                "| backlog at end | lag at end s | drained after s | snapshot age p50 / max s | relists "
                "| extender CPU steady / churn | cache process CPU steady / churn | fake CPU churn "
                "| extender wait for a core per call ms steady / churn |\n"
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def cache_table(cache_rows: Sequence[dict[str, Any]]) -> str:
    lines = [CACHE_HEADER]
    for c in cache_rows:
        age = c["snapshot_age_s"]
        cpu, wait = c["extender_cpu_per_s"], c["extender_wait_ms_per_call"]
        helper = c["cache_process_cpu_per_s"]
        lines.append(
            f"| {c['nodes']:,} | {c['pods']:,} | {c['pods_json_mb']:,.0f} | {c['ready_s']:.1f} "
            f"| {c['target_per_s']:,.0f} | {_rate(c['emitted_per_s'])} | {_rate(c['applied_per_s'])} "
            f"| {c['backlog_end']:,} | {_num(c['lag_end_s'])} | {_drained(c)} "
            f"| {_age(age)} | {c['relists']:.0f} "
            f"| {_pct_cpu(cpu['steady'])} / {_pct_cpu(cpu['churn'])} "
            f"| {_pct_cpu(helper['steady'])} / {_pct_cpu(helper['churn'])} | {_pct_cpu(c['fake_cpu_per_s'])} "
            f"| {_ms(wait['steady'])} / {_ms(wait['churn'])} |")
    return "\n".join(lines)


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def _drained(c: dict[str, Any]) -> str:
    if c["drain_complete"]:
        return f"{c['drain_s']:.1f}"
    return f"not in {c['drain_s']:.0f} ({c['drain_left']:,} left)"


def _age(age: dict[str, float] | None) -> str:
    return "n/a" if age is None else f"{age['p50']:.3f} / {age['max']:.3f}"


def _rate(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def _pct_cpu(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.0f} %"


def target_lines(rows: Sequence[dict[str, Any]], cache_rows: Sequence[dict[str, Any]]) -> list[str]:
    n = TARGET["nodes"]
    at = [r for r in rows if r["nodes"] == n and r["phase"] == "steady"]
    if not at:
        return [f"targets at {n:,} nodes: not measured"]
    out = []
    for r in at:
        parts = []
        for label, stats in (("client", r["client_ms"]), ("server", r["server_ms"])):
            if stats is None:
                parts.append(f"{label} n/a")
                continue
            ok = stats["p50"] <= TARGET["p50_ms"] and stats["p99"] <= TARGET["p99_ms"]
            parts.append(f"{label} p50 {_ms(stats['p50'])} / p99 {_ms(stats['p99'])} ms "
                         f"({'met' if ok else 'MISSED'})")
        out.append(f"target {r['verb']} at {n:,} nodes (p50 <= {TARGET['p50_ms']:g} ms, p99 <= "
                   f"{TARGET['p99_ms']:g} ms): " + ", ".join(parts))
    c = next((c for c in cache_rows if c["nodes"] == n), None)
    if c is not None:
        # 1 % tolerance: the fake paces its emission to within about that (4,999/s for 5,000)
        rate_ok = (c["applied_per_s"] or 0) >= 0.99 * TARGET["events_per_s"]
        ratio = max(c["p99_ratio_client"].values())
        out.append(f"target churn at {n:,} nodes: applied {_rate(c['applied_per_s'])} pod events/s "
                   f"(>= {TARGET['events_per_s']:,.0f} within 1 %: {'met' if rate_ok else 'MISSED'}; the fake emitted "
                   f"{_rate(c['emitted_per_s'])}/s), client p99 churn/steady up to {ratio:.2f} "
                   f"(<= {TARGET['p99_ratio']:g}: {'met' if ratio <= TARGET['p99_ratio'] else 'MISSED'})")
    return out


def _notes(results: Sequence[dict[str, Any]], cache_rows: Sequence[dict[str, Any]]) -> list[str]:
    notes = []
    for r, c in zip(results, cache_rows, strict=True):
        if any(c["fallback_nodes"].values()):
            notes.append(f"warning: {r['nodes']:,} nodes: the stale-load fallback was used "
                         f"({c['fallback_nodes']}); load stamps from {r['fake']['load_updated']}")
        if c["unresolvable_max"]:
            notes.append(f"warning: {r['nodes']:,} nodes: up to {c['unresolvable_max']} nodes unresolvable")
        if c["relists"] or c["informer_trouble"]:
            notes.append(f"warning: {r['nodes']:,} nodes: {c['relists']:.0f} relists, "
                         f"{c['informer_trouble']:.0f} watch restarts/errors during the churn")
        if not c["drain_complete"]:
            notes.append(f"note: {r['nodes']:,} nodes: {c['drain_left']:,} events were still not applied "
                         f"{c['drain_s']:.0f} s after the churn stopped")
        if r["drain"].get("relists"):
            notes.append(f"warning: {r['nodes']:,} nodes: the extender relisted after the churn")
        if r["server_log_tail"]:
            notes.append(f"extender log ({r['nodes']:,} nodes) has warnings; see the JSON")
    for r in results:
        if r["profile"]:
            notes.extend(profile_lines(r["nodes"], r["profile"]))
    return notes
