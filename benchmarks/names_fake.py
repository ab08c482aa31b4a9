"""The fake Kubernetes API server of the ``names`` benchmark, at scale, in a process of its own
(``FakeAPIProcess``), with the driver of its pod churn (``_Churn``).

The test fake (``tests.kubeapi.FakeKubeAPI``) is subclassed here (``make_bench_api``) for scale
only: the test fake deep-copies every object of a kind on each list page and scans its whole
watch history on each wake-up, which is right for tests with dozens of objects and hopeless at
300,000 pods. The subclass keeps each object as its encoded JSON, serves list pages from a
snapshot taken at the first page, and keeps the watch history as an rv-ordered log; HTTP
handling, routing, the watch framing and the audit log are the test fake's own.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import gc
import json
import multiprocessing
import os
import random
import re
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from benchmarks import k8s_objects
from benchmarks.harness import (
    BenchmarkError,
    _rfc3339,
)
from benchmarks.names_objects import (
    PodParams,
    new_pod,
    node_object,
    pending_pod,
    pod_key,
    pod_object,
    restarted,
)

_SEL = re.compile(r"\S")
_RV = re.compile(rb'"resourceVersion":"\d*"')


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


def make_bench_api(**kwargs: Any) -> Any:
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

        def _emit(
            self,
            kind: str,
            etype: str,
            key: tuple[str, str],
            obj: dict[str, Any],
            prev: dict[str, Any] | None,
        ) -> dict[str, Any]:
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
                raise _Reply(
                    400, "BadRequest", "the benchmark's fake serves all-namespace lists without selectors"
                )
            limit = int(query.get("limit") or 0)
            with self._cond:
                if tok := query.get("continue"):
                    try:
                        state = json.loads(base64.urlsafe_b64decode(tok.encode()))
                        rv, sid, off = int(state["rv"]), int(state["snap"]), int(state["off"])
                        items = self._snaps[sid]
                    except (ValueError, KeyError, TypeError):
                        raise _Reply(
                            410, "Expired", "continue token not valid (any more); list again"
                        ) from None
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
                    json.dumps({"rv": rv, "snap": sid, "off": end}).encode()
                ).decode()
                meta["remainingItemCount"] = len(items) - end
            else:
                self._snaps.pop(sid, None)
            head = orjson.dumps(
                {"kind": "PodList" if kind == "pods" else "NodeList", "apiVersion": "v1", "metadata": meta}
            )
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
        def _watch_lines(
            self, kind: str, match: Any, rv_param: str, timeout: float, bookmarks: bool, wf: Any
        ) -> Iterator[bytes]:
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
                    yield b"".join(pending[start : start + 32])
                self.served["watch_lines"] += len(pending)
                self.watch_pos[kind] = pos
                now = time.monotonic()
                if now >= deadline:
                    return
                if bookmarks and now >= next_bm:  # every event of this kind up to sent_rv was sent
                    yield (
                        orjson.dumps(
                            {
                                "type": "BOOKMARK",
                                "object": {
                                    "kind": "Pod" if kind == "pods" else "Node",
                                    "apiVersion": "v1",
                                    "metadata": {"resourceVersion": str(sent_rv)},
                                },
                            }
                        )
                        + b"\n"
                    )
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
                    pending = log.lines[pos - log.base :]
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

    def __init__(
        self, api: Any, live: list[PodParams], nodes: int, rate: float, seed: int, seconds: float = 0.0
    ) -> None:
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
        return {
            "target_per_s": self.rate,
            "emitted": self.emitted,
            "seconds": elapsed,
            "emitted_per_s": self.emitted / elapsed if elapsed > 0 else None,
            "by_type": dict(self.counts),
            "rendered_ahead_s": self.prepare_s,
            "rendered_live": self.rendered_live,
        }


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
    conn.send(
        {
            "url": api.url,
            "build_s": build_s,
            "json_bytes": sizes,
            "load_updated": updated,
            "pods": len(api.store["pods"]),
            "pending": pending,
            "nodes": len(api.store["nodes"]),
            "pid": os.getpid(),
        }
    )
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
    return {
        "churn": churn.stats() if churn is not None else None,
        "served": dict(api.served),
        "pods": pods,
        "watch_backlog": backlog,
        "cpu_s": sum(os.times()[:2]),
    }


class FakeAPIProcess:
    """The fake API server in a child process (spawned: its own interpreter and GIL)."""

    def __init__(
        self,
        nodes: int,
        pods_per_node: int,
        *,
        seed: int = 11,
        timeout_s: float = 900.0,
        history: int = 100_000,
        pending: int = 0,
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_fake_main,
            args=(child, nodes, pods_per_node, seed, history, pending),
            name=f"fake-kube-api-{nodes}",
            daemon=True,
        )
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
            raise BenchmarkError(
                f"fake API server exited (code {self._proc.exitcode}) during {what}"
            ) from None

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
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "fake",
                "clusters": [{"name": "fake", "cluster": {"server": url}}],
                "users": [{"name": "bench", "user": {"token": "dummy-benchmark-token"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "bench"}}],
            }
        )
    )
    return path
