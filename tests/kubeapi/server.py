"""A fake Kubernetes API server that the REAL `kubernetes` client can talk to over HTTP.

Why: no kube-apiserver can run in this environment, and mocking the client hides exactly the
behaviour we need to test (status-code handling, urllib3 timeouts and retries, watch stream
parsing, 410 handling, python#825 binding replies).  This server speaks the real REST paths and
JSON shapes for the small API surface the extender uses (nodes, pods, binding, events,
metrics.k8s.io, and the Prometheus instant-query API), keeps an in-memory store with a global
`resourceVersion`, and has fault switches so tests can provoke the failure modes on purpose.
Everything is stdlib: `http.server.ThreadingHTTPServer` with daemon threads, HTTP/1.1 keep-alive
and chunked watch streams.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, Self
from urllib.parse import parse_qsl, urlsplit

JSON = dict[str, Any]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects

_KINDS: dict[str, tuple[str, str]] = {"nodes": ("Node", "NodeList"), "pods": ("Pod", "PodList")}


class AuditEntry(NamedTuple):
    """One request, logged on arrival; `status` stays 0 while unanswered or if the connection was dropped."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int


@dataclass
class _Fault:
    """A one-shot (or n-shot) misbehaviour, consumed by matching requests."""

    kind: str  # fail | delay | drop | w_close | w_410 | w_http410 | w_malformed | w_stall | l_410
    method: str
    path_re: re.Pattern[str]
    times: int
    status: int = 500
    retry_after: float | str | None = None  # sent as str(value): "1e10", "soon", ...
    seconds: float = 0.0
    after: bool = False
    n_events: int = 0


@dataclass
class _Event:
    rv: int
    type: str
    obj: JSON
    prev: JSON | None


class _Reply(Exception):
    """Raised inside route handlers to answer with an error `Status`."""

    def __init__(self, code: int, reason: str, message: str, details: JSON | None = None) -> None:
        super().__init__(message)
        self.body = status_body(code, reason, message, details)


def status_body(code: int, reason: str, message: str, details: JSON | None = None) -> JSON:
    """A `metav1.Status` failure as the apiserver writes it."""
    body: JSON = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


_REASONS = {
    400: "BadRequest",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _field(obj: JSON, dotted: str) -> str:
    cur: Any = obj
    for part in dotted.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return "" if cur is None else (str(cur).lower() if isinstance(cur, bool) else str(cur))


def _terms(selector: str, what: str) -> list[tuple[str, str, str]]:
    """Parse `a=b,c!=d,e` into (key, op, value) ANDed terms; set-based syntax is refused (400)."""
    out: list[tuple[str, str, str]] = []
    for term in filter(None, (t.strip() for t in selector.split(","))):
        m = re.fullmatch(r"(!?)([^=!\s]+)\s*(?:(==|!=|=)\s*(.*))?", term)
        if not m or "(" in term:
            raise _Reply(400, "BadRequest", f"unable to parse requirement: invalid {what}: {term!r}")
        neg, key, op, val = m.groups()
        out.append(
            (key, "absent" if neg else ("exists" if op is None else ("!=" if op == "!=" else "=")), val or "")
        )
    return out


class _Filter:
    """Namespace + fieldSelector + labelSelector predicate shared by list and watch."""

    def __init__(self, namespace: str | None, query: dict[str, str]) -> None:
        self.ns = namespace
        self.fields = _terms(query.get("fieldSelector", ""), "field selector")
        self.labels = _terms(query.get("labelSelector", ""), "label selector")

    def __call__(self, obj: JSON | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata", {})
        if self.ns is not None and meta.get("namespace", "") != self.ns:
            return False
        for key, op, val in self.fields:
            if (_field(obj, key) == val) != (op == "="):
                return False
        labels: dict[str, str] = meta.get("labels") or {}
        for key, op, val in self.labels:
            ok = {
                "exists": key in labels,
                "absent": key not in labels,
                "=": labels.get(key) == val,
                "!=": labels.get(key) != val,
            }[op]
            if not ok:
                return False
        return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: FakeKubeAPI

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-reply (timeouts, watch.stop()) are normal here: stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive + chunked watch streams, like the apiserver
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.api._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        self.server.api._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # stdlib's signature
        """Silence per-request stderr logging; the audit log is the record."""

    def do_GET(self) -> None:
        self.server.api._dispatch(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def send_json(self, code: int, body: JSON, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


class FakeKubeAPI:
    """In-memory core/v1 Nodes+Pods store behind real REST paths, with faults and an audit log.

    Use as `with FakeKubeAPI() as api:` and point `kubernetes.client.Configuration(host=api.url)`
    at it.  `history_limit` bounds the per-kind event history (older watches get 410 Expired),
    `bookmark_interval_s` paces BOOKMARK events, `default_watch_timeout_s` caps watches without
    `timeoutSeconds` (stop() ends them anyway).
    """

    def __init__(
        self,
        *,
        history_limit: int = 256,
        bookmark_interval_s: float = 0.5,
        default_watch_timeout_s: float = 300.0,
    ) -> None:
        self.history_limit = history_limit
        self.bookmark_interval_s = bookmark_interval_s
        self.default_watch_timeout_s = default_watch_timeout_s
        self._cond = threading.Condition(threading.RLock())
        self._rv = 0
        self._objs: dict[str, dict[Key, JSON]] = {k: {} for k in _KINDS}
        self._hist: dict[str, deque[_Event]] = {k: deque() for k in _KINDS}
        self._floor: dict[str, int] = {k: 0 for k in _KINDS}  # history holds every event with rv > floor
        self._faults: list[_Fault] = []
        self._events: list[JSON] = []
        self._metrics: tuple[dict[str, dict[str, str]], str] = ({}, "30s")
        self._prom: dict[str, list[JSON]] = {}
        self._conns: set[socket.socket] = set()
        self._closing = threading.Event()
        self._watching: dict[socket.socket, str] = {}  # connections streaming a watch -> path
        self._held: set[str] = set()  # kinds whose watch events are held back (hold_watch)
        # paths whose watches are answered then silent (silence_watches), whose lists are held
        # unanswered (hang_lists)
        self._stuck: dict[str, list[re.Pattern[str]]] = {"watch": [], "list": []}
        self.audit: list[AuditEntry] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> Self:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.api = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-kube-api",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """End watches, stop accepting, and shut every open connection so no handler lingers."""
        self._closing.set()
        with self._cond:
            self._cond.notify_all()
            conns = list(self._conns)
        if self._httpd is not None:
            self._httpd.shutdown()
            for conn in conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._cond:
            (self._conns.add if add else self._conns.discard)(conn)

    # ---- store helpers for tests -----------------------------------------------------------
    @property
    def resource_version(self) -> str:
        with self._cond:
            return str(self._rv)

    def _emit(self, kind: str, etype: str, key: Key, obj: JSON, prev: JSON | None) -> JSON:
        with self._cond:
            self._rv += 1
            obj["metadata"]["resourceVersion"] = str(self._rv)
            if etype == "DELETED":
                self._objs[kind].pop(key, None)
            else:
                self._objs[kind][key] = obj
            hist = self._hist[kind]
            hist.append(_Event(self._rv, etype, copy.deepcopy(obj), prev))
            while len(hist) > self.history_limit:
                self._floor[kind] = hist.popleft().rv
            self._cond.notify_all()
            return copy.deepcopy(obj)

    def _add(self, kind: str, obj: JSON) -> JSON:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        obj.setdefault("kind", _KINDS[kind][0])
        obj.setdefault("apiVersion", "v1")
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
        if kind == "pods":
            meta.setdefault("namespace", "default")
            obj.setdefault("spec", {})
            obj.setdefault("status", {}).setdefault("phase", "Pending")
        key = (meta.get("namespace", ""), meta["name"])
        with self._cond:
            if key in self._objs[kind]:
                raise ValueError(f"{kind} {key} already exists")
            return self._emit(kind, "ADDED", key, obj, None)

    def _update(self, kind: str, obj: JSON) -> JSON:
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        key = (meta.get("namespace", "default" if kind == "pods" else ""), meta["name"])
        with self._cond:
            old = self._objs[kind][key]  # KeyError if absent, on purpose
            for k in ("uid", "creationTimestamp", "namespace"):
                if k in old["metadata"]:
                    meta.setdefault(k, old["metadata"][k])
            obj.setdefault("kind", old.get("kind"))
            obj.setdefault("apiVersion", "v1")
            return self._emit(kind, "MODIFIED", key, obj, copy.deepcopy(old))

    def _delete(self, kind: str, key: Key) -> JSON:
        with self._cond:
            old = self._objs[kind][key]
            return self._emit(kind, "DELETED", key, copy.deepcopy(old), copy.deepcopy(old))

    def add_node(self, obj: JSON) -> JSON:
        return self._add("nodes", obj)

    def update_node(self, obj: JSON) -> JSON:
        return self._update("nodes", obj)

    def delete_node(self, name: str) -> JSON:
        return self._delete("nodes", ("", name))

    def add_pod(self, obj: JSON) -> JSON:
        return self._add("pods", obj)

    def update_pod(self, obj: JSON) -> JSON:
        return self._update("pods", obj)

    def delete_pod(self, namespace: str, name: str) -> JSON:
        return self._delete("pods", (namespace, name))

    def get_pod(self, namespace: str, name: str) -> JSON | None:
        with self._cond:
            pod = self._objs["pods"].get((namespace, name))
            return copy.deepcopy(pod) if pod is not None else None

    def pods(self) -> list[JSON]:
        with self._cond:
            return [copy.deepcopy(o) for _, o in sorted(self._objs["pods"].items())]

    def nodes(self) -> list[JSON]:
        with self._cond:
            return [copy.deepcopy(o) for _, o in sorted(self._objs["nodes"].items())]

    def events(self) -> list[JSON]:
        """Events POSTed by clients (core/v1 or events.k8s.io/v1), in arrival order."""
        with self._cond:
            return copy.deepcopy(self._events)

    def expire_history(self, kind: str | None = None) -> None:
        """Forget all watch history (like etcd compaction): any watch from an older rv gets 410."""
        with self._cond:
            for k in [kind] if kind else list(_KINDS):
                self._hist[k].clear()
                self._floor[k] = self._rv

    def set_node_metrics(self, usage: dict[str, dict[str, str]], window: str = "30s") -> None:
        with self._cond:
            self._metrics = (copy.deepcopy(usage), window)

    def set_prom_result(self, query: str, result: list[JSON]) -> None:
        with self._cond:
            self._prom[query] = copy.deepcopy(result)

    # ---- faults ------------------------------------------------------------------------------
    def clear_faults(self) -> None:
        """Forget every fault switch still armed, silenced watches and hung lists included."""
        with self._cond:
            self._faults = []
            self._stuck = {what: [] for what in self._stuck}
            self._cond.notify_all()

    def _add_fault(self, kind: str, method: str, path_regex: str, times: int, **kw: Any) -> None:
        with self._cond:
            self._faults.append(_Fault(kind, method.upper(), re.compile(path_regex), times, **kw))

    def fail(
        self,
        method: str,
        path_regex: str,
        status: int = 500,
        times: int = 1,
        retry_after: float | str | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` and a Status body."""
        self._add_fault("fail", method, path_regex, times, status=status, retry_after=retry_after)

    def delay(
        self, method: str, path_regex: str, seconds: float, times: int = 1, after_processing: bool = False
    ) -> None:
        """Hold matching requests; `after_processing=True` applies the change first (a lost reply)."""
        self._add_fault("delay", method, path_regex, times, seconds=seconds, after=after_processing)

    def drop(self, method: str, path_regex: str, times: int = 1, after_processing: bool = False) -> None:
        """Close the connection without any response (optionally after applying the change)."""
        self._add_fault("drop", method, path_regex, times, after=after_processing)

    def watch_close_after(self, n_events: int, path_regex: str = ".*", times: int = 1) -> None:
        self._add_fault("w_close", "GET", path_regex, times, n_events=n_events)

    def watch_inject_error_410(self, path_regex: str = ".*", times: int = 1) -> None:
        """Start the next watch with an in-stream ERROR 410 Expired event, then end it."""
        self._add_fault("w_410", "GET", path_regex, times)

    def watch_http_410(self, path_regex: str = ".*", times: int = 1) -> None:
        """Refuse the next watch request with HTTP 410 and a Status body (no stream)."""
        self._add_fault("w_http410", "GET", path_regex, times)

    def watch_inject_malformed_line(self, path_regex: str = ".*", times: int = 1) -> None:
        self._add_fault("w_malformed", "GET", path_regex, times)

    def drop_watches(self, path_regex: str = ".*") -> int:
        """Cut every watch stream in progress now, without the clean end of the chunked body
        (an apiserver restart, a proxy's idle cut); returns how many were cut."""
        with self._cond:
            conns = [c for c, p in self._watching.items() if re.search(path_regex, p)]
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return len(conns)

    def list_continue_expired(self, path_regex: str = ".*", times: int = 1) -> None:
        """Answer the next `times` list requests that carry a `continue` token with 410 Expired
        (the token outlived etcd compaction); the client must restart its list."""
        self._add_fault("l_410", "GET", path_regex, times)

    def watch_stall(self, seconds: float, path_regex: str = ".*", times: int = 1) -> None:
        """Send headers, then nothing for `seconds`, before the first event."""
        self._add_fault("w_stall", "GET", path_regex, times, seconds=seconds)

    def silence_watches(self, path_regex: str = ".*") -> None:
        """From now on, answer every matching watch with its headers (200, chunked) and then
        nothing at all: no event, no bookmark, no end at ``timeoutSeconds``, the connection left
        open (a wedged apiserver or proxy) until ``release_watches`` or ``clear_faults``; a
        watch silenced so far then streams as usual from its resourceVersion. Watches already
        streaming are not touched (``drop_watches`` cuts them)."""
        self._stick("watch", path_regex)

    def release_watches(self) -> None:
        """Undo ``silence_watches``."""
        self._stick("watch", None)

    def hang_lists(self, path_regex: str = ".*") -> None:
        """From now on, hold every matching list request (GET without ``watch``) before any
        byte of its answer, until ``release_lists`` or ``clear_faults`` (an apiserver stuck
        on etcd); the request then gets its answer as usual, if its client still waits."""
        self._stick("list", path_regex)

    def release_lists(self) -> None:
        """Undo ``hang_lists``."""
        self._stick("list", None)

    def _stick(self, what: str, path_regex: str | None) -> None:
        """Add a path pattern to ``what`` ("watch", "list") is stuck on; None: release them all."""
        with self._cond:
            if path_regex is None:
                self._stuck[what] = []
                self._cond.notify_all()
            else:
                self._stuck[what].append(re.compile(path_regex))

    def _wait_while_stuck(self, what: str, path: str) -> None:
        """Block while a pattern ``what`` is stuck on matches ``path`` (re-read on every change)."""
        with self._cond:
            while not self._closing.is_set() and any(p.search(path) for p in self._stuck[what]):
                self._cond.wait(0.5)

    def hold_watch(self, kind: str) -> None:
        """Hold back every watch event of ``kind`` (nodes, pods) from now on: the store and the
        REST answers move on, the watches deliver nothing (a slow or congested watch) until
        ``release_watch``, then everything held, in order."""
        with self._cond:
            self._held.add(kind)

    def release_watch(self, kind: str) -> None:
        with self._cond:
            self._held.discard(kind)
            self._cond.notify_all()

    def _take(self, kinds: tuple[str, ...], method: str, path: str) -> dict[str, _Fault]:
        """Consume at most one fault of each kind in `kinds` matching this request."""
        got: dict[str, _Fault] = {}
        with self._cond:
            for f in self._faults:
                slot = "fail" if f.kind == "drop" else f.kind
                if (
                    f.kind in kinds
                    and slot not in got
                    and f.times > 0
                    and f.method in (method, "*")
                    and f.path_re.search(path)
                ):
                    f.times -= 1
                    got[slot] = f
            self._faults = [f for f in self._faults if f.times > 0]
        return got

    # ---- audit ---------------------------------------------------------------------------------
    def _audit(self, idx: int, status: int) -> None:
        """Stamp the status on the entry logged at arrival (before the reply is written)."""
        with self._cond:
            self.audit[idx] = self.audit[idx]._replace(status=status)
            self._cond.notify_all()

    def requests(self, method: str | None = None, path_regex: str = ".*") -> list[AuditEntry]:
        """Audit entries whose method matches (None = any) and whose path matches the regex."""
        with self._cond:
            return [
                e
                for e in self.audit
                if (method is None or e.method == method.upper()) and re.search(path_regex, e.path)
            ]

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Block until `predicate()` holds, re-checked on every store/audit change; False on timeout."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    # ---- request handling ----------------------------------------------------------------------
    def _dispatch(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        path, query = split.path, dict(parse_qsl(split.query, keep_blank_values=True))
        n = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(n) if n else b""
        body: Any = None
        if raw and "x-www-form-urlencoded" in (h.headers.get("Content-Type") or ""):
            body = dict(parse_qsl(raw.decode()))
        elif raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        method = h.command
        with self._cond:  # logged on arrival so in-flight (delayed) requests are visible too
            idx = len(self.audit)
            self.audit.append(AuditEntry(method, path, dict(query), body, 0))
            self._cond.notify_all()
        faults = self._take(("fail", "drop", "delay"), method, path)
        delay = faults.get("delay")
        if delay and not delay.after:
            self._closing.wait(delay.seconds)
        failure = faults.get("fail")
        if failure and not failure.after:
            if failure.kind == "drop":
                h.close_connection = True
                return
            code = failure.status
            hdrs = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            self._audit(idx, code)
            return self._send(
                h,
                code,
                status_body(code, _REASONS.get(code, "InternalError"), f"injected fault: {code}"),
                hdrs,
            )
        is_watch = method == "GET" and query.get("watch") in ("true", "1")
        if method == "GET" and not is_watch:
            self._wait_while_stuck("list", path)
        try:
            if is_watch:
                return self._watch(h, path, query, idx)
            code, reply = self._route(method, path, query, body)
        except _Reply as r:
            code, reply = r.body["code"], r.body
        if delay and delay.after:
            self._closing.wait(delay.seconds)
        if failure and failure.after:  # a drop after the change was applied: the reply is lost
            h.close_connection = True
            return
        self._audit(idx, code)
        self._send(h, code, reply)

    @staticmethod
    def _send(h: _Handler, code: int, body: JSON, headers: dict[str, str] | None = None) -> None:
        try:
            h.send_json(code, body, headers)
        except OSError:
            h.close_connection = True

    _LIST_RE = re.compile(r"/api/v1/(?:namespaces/([^/]+)/)?(nodes|pods)")

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, JSON]:
        m = self._LIST_RE.fullmatch(path)
        if m and method == "GET" and not (m.group(1) and m.group(2) == "nodes"):
            if query.get("continue") and self._take(("l_410",), "GET", path):
                raise _Reply(
                    410,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter.",
                )
            return 200, self._list(m.group(2), m.group(1), query)
        m2 = re.fullmatch(r"/api/v1/(?:namespaces/([^/]+)/)?(pods|nodes)/([^/]+)", path)
        if m2 and method == "GET":
            ns, kind, name = m2.group(1) or "", m2.group(2), m2.group(3)
            with self._cond:
                obj = self._objs[kind].get((ns, name))
                if obj is None:
                    raise _Reply(404, "NotFound", f'{kind} "{name}" not found', {"name": name, "kind": kind})
                return 200, copy.deepcopy(obj)
        if (
            m2 := re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/binding", path)
        ) and method == "POST":
            return self._bind(m2.group(1), m2.group(2), body if isinstance(body, dict) else {})
        events_re = r"/api(?:/v1|s/events\.k8s\.io/v1)/namespaces/([^/]+)/events"
        if method == "POST" and (m2 := re.fullmatch(events_re, path)):
            ev = copy.deepcopy(body) if isinstance(body, dict) else {}
            meta = ev.setdefault("metadata", {})
            meta.update(namespace=m2.group(1), uid=str(uuid.uuid4()), creationTimestamp=_now())
            with self._cond:
                self._rv += 1
                meta["resourceVersion"] = str(self._rv)
                self._events.append(ev)
            return 201, ev
        if path.startswith("/apis/metrics.k8s.io/v1beta1/nodes") and method == "GET":
            return self._node_metrics(path.removeprefix("/apis/metrics.k8s.io/v1beta1/nodes").strip("/"))
        if path == "/api/v1/query" and method in ("GET", "POST"):
            q = query.get("query") or (body.get("query", "") if isinstance(body, dict) else "")
            with self._cond:
                result = copy.deepcopy(self._prom.get(q, []))
            return 200, {"status": "success", "data": {"resultType": "vector", "result": result}}
        if m or m2:
            raise _Reply(
                405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
            )
        raise _Reply(404, "NotFound", "the server could not find the requested resource")

    def _list(self, kind: str, ns: str | None, query: dict[str, str]) -> JSON:
        match = _Filter(ns, query)
        start: Key | None = None
        with self._cond:
            rv = self._rv
            if tok := query.get("continue"):
                try:
                    state = json.loads(base64.urlsafe_b64decode(tok.encode()))
                    rv, start = int(state["rv"]), (state["start"][0], state["start"][1])
                except (ValueError, KeyError, TypeError, IndexError):
                    raise _Reply(400, "BadRequest", "continue key is not valid") from None
            items = [
                (k, o)
                for k, o in sorted(self._objs[kind].items())
                if (start is None or k > start) and match(o)
            ]
            items = [(k, copy.deepcopy(o)) for k, o in items]
        limit = int(query.get("limit") or 0)
        meta: JSON = {"resourceVersion": str(rv)}
        if 0 < limit < len(items):
            last = items[limit - 1][0]
            meta["continue"] = base64.urlsafe_b64encode(
                json.dumps({"rv": rv, "start": last}).encode()
            ).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        out = []
        for _, o in items:  # the apiserver omits kind/apiVersion on list items
            o.pop("kind", None)
            o.pop("apiVersion", None)
            out.append(o)
        return {"kind": _KINDS[kind][1], "apiVersion": "v1", "metadata": meta, "items": out}

    def _bind(self, ns: str, name: str, b: JSON) -> tuple[int, JSON]:
        """Mirror pkg/registry/core/pod/storage BindingREST.Create + assignPod semantics."""
        meta, target = b.get("metadata") or {}, b.get("target") or {}
        details = {"name": name, "kind": "pods"}
        if meta.get("name", name) != name:
            raise _Reply(400, "BadRequest", "name in URL does not match name in Binding object")
        if not target.get("name") or target.get("kind", "") not in ("", "Node"):
            raise _Reply(
                422,
                "Invalid",
                f'Binding.core "{name}" is invalid: target: must name a Node',
                {"name": name, "kind": "Binding"},
            )
        with self._cond:
            pod = self._objs["pods"].get((ns, name))
            if pod is None:
                raise _Reply(404, "NotFound", f'pods "{name}" not found', details)
            uid = pod["metadata"].get("uid", "")
            if meta.get("uid") and meta["uid"] != uid:
                raise _Reply(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on pods/binding "{name}": '
                    f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {uid}",
                    details,
                )
            if pod["metadata"].get("deletionTimestamp"):
                raise _Reply(
                    409, "Conflict", f"pod {name} is being deleted, cannot be assigned to a host", details
                )
            if pod.get("spec", {}).get("nodeName"):
                raise _Reply(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on pods/binding "{name}": pod {name} '
                    f'is already assigned to node "{pod["spec"]["nodeName"]}"',
                    details,
                )
            new = copy.deepcopy(pod)
            new.setdefault("spec", {})["nodeName"] = target["name"]
            if meta.get("annotations"):
                new["metadata"].setdefault("annotations", {}).update(meta["annotations"])
            conds = [
                c
                for c in new.setdefault("status", {}).get("conditions", [])
                if c.get("type") != "PodScheduled"
            ]
            new["status"]["conditions"] = conds + [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": _now()}
            ]
            self._emit("pods", "MODIFIED", (ns, name), new, copy.deepcopy(pod))
        return 201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    def _node_metrics(self, name: str) -> tuple[int, JSON]:
        with self._cond:
            usage, window = copy.deepcopy(self._metrics)
        ts = _now()
        items: list[JSON] = [
            {"metadata": {"name": n, "creationTimestamp": ts}, "timestamp": ts, "window": window, "usage": u}
            for n, u in sorted(usage.items())
        ]
        if name:
            for item in items:
                if item["metadata"]["name"] == name:
                    return 200, {"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1", **item}
            raise _Reply(404, "NotFound", f'nodemetrics.metrics.k8s.io "{name}" not found')
        return 200, {
            "kind": "NodeMetricsList",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {},
            "items": items,
        }

    # ---- watch ---------------------------------------------------------------------------------
    def _watch(self, h: _Handler, path: str, query: dict[str, str], idx: int) -> None:
        m = self._LIST_RE.fullmatch(path)
        if not m or (m.group(1) and m.group(2) == "nodes"):
            raise _Reply(404, "NotFound", "the server could not find the requested resource")
        kind, ns = m.group(2), m.group(1)
        match = _Filter(ns, query)
        wf = self._take(("w_close", "w_410", "w_http410", "w_malformed", "w_stall"), "GET", path)
        if "w_http410" in wf:
            raise _Reply(410, "Expired", "too old resource version: injected")
        rv_param = query.get("resourceVersion", "")
        if rv_param not in ("", "0") and not rv_param.isdigit():
            raise _Reply(400, "BadRequest", f"invalid resource version {rv_param!r}")
        timeout = float(query.get("timeoutSeconds") or self.default_watch_timeout_s)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        with self._cond:  # registered before the audit says 200, so drop_watches() can see it
            self._watching[h.connection] = path
        self._audit(idx, 200)
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Transfer-Encoding", "chunked")
            h.send_header("Connection", "close")  # the connection ends with the watch: say so
            h.end_headers()
            h.close_connection = True
            h.wfile.flush()
            self._wait_while_stuck("watch", path)
            for line in self._watch_lines(kind, match, rv_param, timeout, bookmarks, wf):
                h.write_chunk(line)
            h.write_chunk(b"")  # clean end of the chunked stream
        except OSError:
            pass  # client went away
        finally:
            with self._cond:
                self._watching.pop(h.connection, None)

    def _watch_lines(
        self,
        kind: str,
        match: Callable[[JSON | None], bool],
        rv_param: str,
        timeout: float,
        bookmarks: bool,
        wf: dict[str, _Fault],
    ) -> Iterator[bytes]:
        def line(etype: str, obj: JSON) -> bytes:
            return json.dumps({"type": etype, "object": obj}).encode() + b"\n"

        def expired(rv: int) -> bytes:
            message = f"too old resource version: {rv} ({self._floor[kind] + 1})"
            return line("ERROR", status_body(410, "Expired", message))

        if "w_stall" in wf:
            self._closing.wait(wf["w_stall"].seconds)
        if "w_malformed" in wf:
            yield b'{"type":"MODIFIED","object":{not json\n'
        if "w_410" in wf:
            yield expired(int(rv_param or 0))
            return
        close_after = wf["w_close"].n_events if "w_close" in wf else None
        sent = 0
        now = time.monotonic()
        deadline, next_bm = now + timeout, now + self.bookmark_interval_s
        with self._cond:
            if rv_param in ("", "0"):  # "any version": synthetic ADDED for the current state
                cursor = self._rv
                pending = [
                    _Event(cursor, "ADDED", copy.deepcopy(o), None)
                    for _, o in sorted(self._objs[kind].items())
                ]
            else:
                cursor, pending = int(rv_param), []
            too_old = cursor < self._floor[kind]
        while True:
            if too_old:  # asked for (or fell behind) history we no longer keep
                yield expired(cursor)
                return
            for ev in pending:
                etype, obj = ev.type, ev.obj
                new_ok, old_ok = match(ev.obj), match(ev.prev)
                if etype == "MODIFIED" and new_ok != old_ok:  # object moved in/out of the selection
                    etype = "ADDED" if new_ok else "DELETED"
                    if not new_ok:
                        obj = copy.deepcopy(ev.prev or {})
                        obj.setdefault("metadata", {})["resourceVersion"] = str(ev.rv)
                elif not new_ok:
                    continue
                yield line(etype, obj)
                sent += 1
                if close_after is not None and sent >= close_after:
                    return
            now = time.monotonic()
            if now >= deadline:
                return
            if bookmarks and now >= next_bm:
                yield line(
                    "BOOKMARK",
                    {
                        "kind": _KINDS[kind][0],
                        "apiVersion": "v1",
                        "metadata": {"resourceVersion": str(cursor)},
                    },
                )
                next_bm = now + self.bookmark_interval_s
            with self._cond:
                while not self._closing.is_set():
                    too_old = cursor < self._floor[kind]
                    held = kind in self._held
                    pending = [] if held else [e for e in self._hist[kind] if e.rv > cursor]
                    now = time.monotonic()
                    wake = min(deadline, next_bm) if bookmarks else deadline
                    if too_old or pending or now >= wake:
                        break
                    self._cond.wait(wake - now)
                if self._closing.is_set():
                    return
                if not too_old and not held:
                    cursor = max(cursor, self._rv)  # every event of this kind up to _rv is in `pending`
