"""List + watch of Nodes or Pods through the official `kubernetes` client, feeding a cache.

One `Informer` per kind runs a daemon thread that keeps a handler's view equal to the API
server's: a full (paged) list handed over in one `replace()`, then a watch from the list's
resourceVersion turned into `upsert()` / `delete()` calls.  The handler receives raw JSON bytes;
only `extender.kube.objects` knows the JSON keys of API objects.

Why this module looks the way it does (kubernetes client 37, urllib3 2):

* `kubernetes.watch.Watch` is not used: with `timeout_seconds` it raises ApiException(410) for an
  in-stream ERROR 410, yields None for an undecodable line and hides where the stream broke.  We
  call the generated list methods with `watch=True, _preload_content=False` and split the chunked
  body on newlines ourselves.
* urllib3's default Retry silently re-sends GETs (read timeouts, dropped connections, 429/503 with
  Retry-After), which would hide failures from our backoff and from the `on_event` counters.  The
  informer therefore builds its own ApiClient from a deep copy of the caller's Configuration with
  `retries = False` (and client-go style retries off); the caller's ApiClient is left untouched.
* A watch stream that goes silent only ends because every call carries
  `_request_timeout=(connect_timeout_s, stall_timeout_s)`: the read timeout applies to each
  socket read, so a stall surfaces as urllib3 ReadTimeoutError after `stall_timeout_s`. Each
  watch also asks the server to end it after `watch_timeout_s` (`timeoutSeconds`) and for
  bookmarks (kube-apiserver sends one a minute and one before that end), so a healthy watch is
  never silent for longer than `watch_timeout_s`: the read timeout defaults to 1.5 times that.
* Progress, as client-go's reflector shows it, is what proves the thread is moving and the
  server talking: a list page, a watch event or bookmark, or the server's own end of a watch
  (at `timeoutSeconds`). A watch the server accepted and we had to cut is not progress.
  `health()` reports an informer without progress for `stale_after_s` = `watch_timeout_s` +
  `stall_timeout_s` (150 s by default), whatever the cause: a server that answers watches and
  then says nothing, a list that never answers, or a thread stuck in a call.
* `stop()` must be prompt even while a read is blocked: it shuts the socket of the response in
  progress down (urllib3's `HTTPResponse.shutdown()`, SHUT_RD), which wakes the reader at once.
  A request still waiting for its response headers cannot be cut this way; it ends at the
  connect/read timeout, after `stop()` has returned (the thread is a daemon).
* Failures are retried forever with full-jitter exponential backoff (`backoff_base_s * 2**n`,
  capped at `backoff_max_s`, uniform in [0, cap]); Retry-After is honoured up to
  `retry_after_max_s` (30 s, our own backoff's maximum: a server asking for a day, or for 1e10 s,
  which overflowed the wait and killed the thread, gets our request every 30 s at most); the
  backoff resets after a successful list or any watch progress.  A 410 (history expired) relists
  at once the first time, and backs off when it repeats without progress in between.
* Anything that escapes the loop's own failure handling (a bug) does not end the thread: it is
  logged, counted (`on_thread_restart`, `thread_restarts`) and the loop starts over with a
  relist after a backoff.
"""

from __future__ import annotations

import enum
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, Protocol

import urllib3
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from extender.kube.client import no_retry_client, retry_after_s
from extender.kube.objects import (
    MalformedObject,
    decode_meta,
    decode_object_list,
    decode_status_code,
    decode_watch_event,
)

_LOG = logging.getLogger("extender.informer")  # its name in log lines: unchanged by the move

Kind = Literal["nodes", "pods"]
_LIST_METHOD: dict[str, str] = {"nodes": "list_node", "pods": "list_pod_for_all_namespaces"}
_CHANGES = ("ADDED", "MODIFIED", "DELETED")
_MAX_EXPONENT = 30  # 2**30 * any sane base is far past any backoff_max_s
_SHORT_WATCH_S = 1.0  # a watch that ends cleanly this fast with nothing on it counts as a failure
STALL_FACTOR = 1.5  # default read timeout / watch timeout: a silent watch is cut half a timeout late
_READ_SIZE = 1 << 16


class InformerHandler(Protocol):
    """Where an Informer delivers the objects; called from the informer's thread only."""

    def replace(self, items: Sequence[bytes]) -> None: ...  # after a (re)list: all raw objects

    def upsert(self, raw: bytes) -> None: ...  # ADDED / MODIFIED (raw JSON of the object)

    def delete(self, raw: bytes) -> None: ...  # DELETED

    # Optional, together: ``decode(raw)`` gives the typed object (with ``metadata``), and
    # ``upsert_decoded(obj)`` / ``delete_decoded(obj)`` take it. With them the informer decodes
    # each watch object once, reading its resourceVersion from the result, instead of decoding
    # the metadata for itself and the handler the whole object again.
    # Optional with those: ``decode_line(line)`` gives (event type, typed object) in one pass
    # over the whole watch line, or None where that does not apply (ERROR, a null or odd
    # object, bad JSON); the informer then takes the general path, which judges the line.


class _Phase(enum.Enum):
    LIST = "list"
    WATCH = "watch"  # the watch request, until its response headers arrived
    STREAM = "stream"  # reading the watch body


class _Stop(Exception):
    """stop() was called: unwind to the thread's exit."""


class _HandlerFailed(Exception):
    """The handler raised; the cache may be inconsistent, so the informer relists."""


class _BadLine(Exception):
    """A watch line that is not a well-formed watch event (or one we cannot resume from)."""


class _WatchError(Exception):
    """An in-stream ERROR event other than 410."""

    def __init__(self, code: int) -> None:
        super().__init__(f"watch ERROR event with status code {code}")
        self.code = code


class Informer:
    """List+watch of one kind (`nodes` or `pods`, all namespaces) feeding `handler`.

    `on_event(kind, what)` is called for: ``relist`` (every list handed to replace(), the first
    one included), ``restart`` (a watch that broke - read stall, dropped connection - resumed from
    the last resourceVersion), ``event`` (ADDED/MODIFIED/DELETED delivered), ``bookmark``,
    ``error`` (a failed request, a watch ERROR event, a handler exception) and ``malformed``
    (an undecodable watch line).  It runs on the informer thread and must be quick.
    """

    def __init__(
        self,
        kind: Kind,
        api_client: k8s_client.ApiClient,
        handler: InformerHandler,
        *,
        page_size: int = 500,
        watch_timeout_s: int = 60,
        stall_timeout_s: float | None = None,
        connect_timeout_s: float = 5.0,
        resync_s: float = 0.0,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        retry_after_max_s: float = 30.0,
        on_event: Callable[[str, str], None] | None = None,
        on_thread_restart: Callable[[str], None] | None = None,
        before_line: Callable[[], object] | None = None,
        logger: logging.Logger | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if kind not in _LIST_METHOD:
            raise ValueError(f"kind must be 'nodes' or 'pods', not {kind!r}")
        if page_size < 1 or watch_timeout_s < 1:
            raise ValueError("page_size and watch_timeout_s must be at least 1")
        if stall_timeout_s is None:  # the server ends a watch, or bookmarks, within watch_timeout_s
            stall_timeout_s = STALL_FACTOR * watch_timeout_s
        if stall_timeout_s <= 0 or connect_timeout_s <= 0 or resync_s < 0:
            raise ValueError("timeouts must be positive and resync_s not negative")
        if not all(math.isfinite(v) and v >= 0 for v in (backoff_base_s, backoff_max_s, retry_after_max_s)):
            raise ValueError("backoff times must be finite and not negative")
        self._kind: str = kind
        self._handler = handler
        self._decode = getattr(handler, "decode", None)  # see InformerHandler
        self._decode_line = getattr(handler, "decode_line", None) if self._decode is not None else None
        # with ``decode``, the handler takes decoded objects too (InformerHandler)
        self._upsert_decoded: Callable[[Any], None] | None = getattr(handler, "upsert_decoded", None)
        self._delete_decoded: Callable[[Any], None] | None = getattr(handler, "delete_decoded", None)
        self._page_size = int(page_size)
        self._watch_timeout_s = int(watch_timeout_s)
        self._timeouts = (float(connect_timeout_s), float(stall_timeout_s))
        self.stall_timeout_s = float(stall_timeout_s)
        """Client read timeout of every request (each socket read), seconds."""
        self.stale_after_s = self._watch_timeout_s + self.stall_timeout_s
        """``health()`` reports the informer after this long without progress, seconds: a healthy
        watch shows some within ``watch_timeout_s``, and one silent for ``stall_timeout_s`` is cut."""
        self._resync_s = float(resync_s)
        self._backoff_base_s = float(backoff_base_s)
        self._backoff_max_s = float(backoff_max_s)
        self._retry_after_max_s = float(retry_after_max_s)
        self._on_event = on_event
        self._on_thread_restart = on_thread_restart
        self.thread_restarts = 0  # times the loop crashed and was started over
        self._before_line = before_line  # e.g. a gate.Feeder: scheduling calls first
        self._log = logger or _LOG
        self._rng = rng or random.Random()

        # Our own ApiClient: urllib3 must not retry behind our back, and the caller's client
        # (shared with other users) must not change.
        self._api_client = no_retry_client(api_client)
        core = k8s_client.CoreV1Api(self._api_client)
        self._list_fn: Callable[..., Any] = getattr(core, _LIST_METHOD[kind])

        self._stopping = threading.Event()
        self._synced = threading.Event()
        self._thread: threading.Thread | None = None
        self._resp_lock = threading.Lock()
        self._resp: Any = None  # the urllib3 response being read, so stop() can cut it
        self._rv = ""
        self._last_sync: float | None = None
        self._next_resync = math.inf
        self._attempt = 0  # failures since the last success (backoff exponent)
        self._expired_streak = 0  # 410s since the last watch progress
        self._failing_since: float | None = None  # monotonic: first failure since the last success
        # monotonic: the last list page, watch event, bookmark or server-ended watch (start():
        # the thread's start); written by the informer thread only, read by health()
        self._progress_at = time.monotonic()
        self._phase = _Phase.LIST

    # ---- public surface ------------------------------------------------------------------------
    @property
    def synced(self) -> bool:
        """True once the first full list was handed to replace()."""
        return self._synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    @property
    def resource_version(self) -> str:
        """The resourceVersion the cache is current at ("" before the first list)."""
        return self._rv

    @property
    def last_sync_monotonic(self) -> float | None:
        """time.monotonic() of the last completed list (None before the first)."""
        return self._last_sync

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"informer-{self._kind} was already started")
        self._progress_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"informer-{self._kind}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread: wakes a pause, cuts a watch or list body being read, then joins."""
        self._stopping.set()
        with self._resp_lock:
            resp = self._resp
        if resp is not None:
            _cut(resp)
        thread = self._thread
        if thread is None:  # never started: nothing runs, only our connection pool to free
            self._api_client.close()
        elif thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                self._log.warning(
                    "informer-%s did not stop within %.1fs (request in flight); "
                    "it exits at its request timeout",
                    self._kind,
                    timeout,
                )

    # ---- the loop ------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self._loop()
                    return
                except _Stop:
                    return
                except Exception as exc:  # noqa: BLE001 - a bug must not end the informer for good
                    if self._stopping.is_set():
                        return
                    self._restart_after_crash(exc)
        finally:
            self._api_client.close()

    def _restart_after_crash(self, exc: Exception) -> None:
        """Log and count a crash of the loop, then back off (full jitter, at most backoff_max_s)."""
        self._failing()
        self.thread_restarts += 1
        name = f"informer-{self._kind}"
        self._log.error(
            "%s: the list/watch loop crashed in %s; starting it over with a list (restart %d)",
            name,
            self._phase.value,
            self.thread_restarts,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        if self._on_thread_restart is not None:
            try:
                self._on_thread_restart(name)
            except Exception:  # noqa: BLE001 - a broken counter must not stop the informer
                self._log.exception("%s: on_thread_restart callback failed", name)
        cap = min(
            self._backoff_max_s, self._backoff_base_s * 2 ** min(self.thread_restarts - 1, _MAX_EXPONENT)
        )
        self._stopping.wait(self._rng.uniform(0.0, cap))

    def _loop(self) -> None:
        """List, then watch, until stopped (returns or raises _Stop); a failure the loop does
        not handle itself (a crash inside ``_recover``) escapes to ``_run``."""
        need_list = True
        while not self._stopping.is_set():
            try:
                if need_list or time.monotonic() >= self._next_resync:
                    self._list_and_replace()
                    need_list = False
                need_list = self._watch_once()
            except _Stop:
                return
            except Exception as exc:  # noqa: BLE001 - the thread must survive everything
                if self._stopping.is_set():
                    return
                need_list = self._recover(exc, need_list)

    def _recover(self, exc: Exception, need_list: bool) -> bool:
        """Log and count a failure, pause as needed; returns whether the next step is a list."""
        kind, phase = self._kind, self._phase
        if not (phase is _Phase.STREAM and isinstance(exc, (urllib3.exceptions.HTTPError, OSError))):
            self._failing()  # a watch the server answered that then broke or went silent: resumed
        if isinstance(exc, _HandlerFailed):
            cause = exc.__cause__ or exc
            self._log.error(
                "informer-%s: handler failed in %s; relisting",
                kind,
                exc,
                exc_info=(type(cause), cause, cause.__traceback__),
            )
            self._emit("error")
            self._pause()
            return True
        if isinstance(exc, _BadLine):
            self._log.warning(
                "informer-%s: malformed watch line (%s); rewatching from resourceVersion %s",
                kind,
                exc,
                self._rv,
            )
            self._emit("malformed")
            self._pause()
            return False
        if isinstance(exc, _WatchError):
            self._log.warning("informer-%s: %s; rewatching from resourceVersion %s", kind, exc, self._rv)
            self._emit("error")
            self._pause()
            return False
        if isinstance(exc, ApiException) and exc.status == 410:
            what = "list continue token" if phase is _Phase.LIST else "watch resourceVersion"
            self._log.info("informer-%s: %s expired (HTTP 410); listing again", kind, what)
            self._expired()
            return True
        if isinstance(exc, ApiException) and exc.status:
            self._log.warning(
                "informer-%s: %s failed: HTTP %d %s", kind, phase.value, exc.status, exc.reason or ""
            )
            self._emit("error")
            self._pause(retry_after_s(exc, self._retry_after_max_s))
            return need_list
        if isinstance(exc, (urllib3.exceptions.HTTPError, OSError, ApiException)):
            # a watch that stalled or was cut (even before its headers) is resumed: "restart";
            # a server we cannot reach, or a failed list, is an "error"
            broke = phase is _Phase.STREAM or (
                phase is _Phase.WATCH
                and isinstance(exc, (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ProtocolError))
            )
            self._log.warning(
                "informer-%s: %s %s (%s)",
                kind,
                phase.value,
                "broke; rewatching" if broke else "failed",
                _describe(exc),
            )
            self._emit("restart" if broke else "error")
            self._pause()
            return need_list
        if isinstance(exc, MalformedObject):  # a list answer we cannot read
            self._log.warning("informer-%s: unreadable list answer (%s)", kind, exc)
            self._emit("error")
            self._pause()
            return True
        self._log.error(
            "informer-%s: unexpected failure in %s; relisting",
            kind,
            phase.value,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        self._emit("error")
        self._pause()
        return True

    def _expired(self) -> None:
        """A 410: relist now the first time, back off when it repeats without progress between."""
        self._expired_streak += 1
        if self._expired_streak > 1:
            self._pause()

    def _pause(self, retry_after: float | None = None) -> None:
        cap = min(self._backoff_max_s, self._backoff_base_s * 2 ** min(self._attempt, _MAX_EXPONENT))
        delay = self._rng.uniform(0.0, cap)
        if retry_after is not None:
            delay = max(delay, retry_after)
        self._attempt += 1
        if delay > 0:
            self._log.debug("informer-%s: backing off %.3fs (attempt %d)", self._kind, delay, self._attempt)
        if self._stopping.wait(delay):
            raise _Stop

    def _progress(self) -> None:
        """A watch event or bookmark applied, or a watch the server ended itself."""
        self._progress_at = time.monotonic()
        self._attempt = 0
        self._expired_streak = 0
        self._failing_since = None

    def _failing(self) -> None:
        if self._failing_since is None:
            self._failing_since = time.monotonic()

    def health(self, limit_s: float, now: float | None = None) -> str | None:
        """Why this informer cannot be trusted to keep the cache current, or None: its thread
        ended, or its requests have failed (no list, no watch answered) for more than
        ``limit_s``, or it has shown no progress (a list page, an event, a bookmark, the
        server's end of a watch) for more than ``stale_after_s``: a watch answered and then
        silent, a list that never answers, a thread stuck in a call. A watch the server
        answered that then broke or went silent (cut after ``stall_timeout_s``) is resumed and
        not counted as failing: only its failing to resume, or to show progress, is."""
        name = f"informer-{self._kind}"
        thread = self._thread
        if thread is None or self._stopping.is_set():
            return None
        if not thread.is_alive():
            return f"{name}: its thread has ended"
        now = time.monotonic() if now is None else now
        since = self._failing_since
        if since is not None and now - since > limit_s:
            return f"{name}: no list or watch has succeeded for {now - since:.0f} s (limit {limit_s:g} s)"
        quiet = now - self._progress_at
        if quiet > self.stale_after_s:
            return (
                f"{name}: no progress (list page, event, bookmark or the server's end of a watch) "
                f"for {quiet:.0f} s (limit {self.stale_after_s:g} s), in {self._phase.value}"
            )
        return None

    # ---- list ----------------------------------------------------------------------------------
    def _list_and_replace(self) -> None:
        self._phase = _Phase.LIST
        items: list[bytes] = []
        rv = ""
        token = ""
        pages = 0
        while True:
            if self._stopping.is_set():
                raise _Stop
            kwargs: dict[str, Any] = {"limit": self._page_size}
            if token:
                kwargs["_continue"] = token
            page = decode_object_list(self._read_all(self._call(**kwargs)))
            self._progress_at = time.monotonic()
            pages += 1
            rv = rv or page.resource_version
            items.extend(page.items)
            token = page.continue_token
            if not token:
                break
        if not rv:
            raise MalformedObject("list answer without a resourceVersion")
        try:
            self._handler.replace(items)
        except Exception as exc:
            raise _HandlerFailed("replace()") from exc
        now = time.monotonic()
        self._rv = rv
        self._last_sync = now
        self._next_resync = now + self._resync_s if self._resync_s > 0 else math.inf
        self._attempt = 0
        self._failing_since = None
        self._synced.set()
        self._log.info(
            "informer-%s: listed %d objects in %d page(s) at resourceVersion %s",
            self._kind,
            len(items),
            pages,
            rv,
        )
        self._emit("relist")

    def _read_all(self, resp: Any) -> bytes:
        self._hold(resp)
        try:
            return bytes(resp.read())
        finally:
            self._release(resp)

    # ---- watch ---------------------------------------------------------------------------------
    def _watch_once(self) -> bool:
        """One watch request, streamed to the handler; returns True when a relist is needed."""
        timeout = self._watch_timeout_s
        if self._next_resync < math.inf:  # let the server end the watch when the resync is due
            timeout = max(1, min(timeout, math.ceil(self._next_resync - time.monotonic())))
        self._phase = _Phase.WATCH
        started = time.monotonic()
        resp = self._call(
            watch=True, allow_watch_bookmarks=True, resource_version=self._rv, timeout_seconds=timeout
        )
        # Never reuse a watch's connection: the server (or a proxy) may close it right after
        # the stream's end without saying so, and with urllib3 retries off the next request
        # would fail on it.
        conn = resp.connection
        self._hold(resp)
        self._phase = _Phase.STREAM
        lines = 0
        try:
            for line in _lines(resp):
                lines += 1
                if self._before_line is not None:
                    self._before_line()
                if self._handle_line(line):
                    self._expired()
                    return True
                if self._stopping.is_set():
                    raise _Stop
                if time.monotonic() >= self._next_resync:
                    return True
        finally:
            self._release(resp)
            if conn is not None:
                conn.close()  # back in our own pool as a closed connection: reopened on next use
        if lines == 0 and time.monotonic() - started < _SHORT_WATCH_S:
            self._log.warning("informer-%s: watch ended at once without events", self._kind)
            self._failing()
            self._emit("error")
            self._pause()
        else:
            self._progress()
        return False

    def _handle_line(self, line: bytes) -> bool:
        """Apply one watch line; True for an ERROR 410 (relist)."""
        fast = self._decode_line(line) if self._decode_line is not None else None
        if fast is not None:  # the common case: one pass over the line, type and object
            etype, obj = fast
            meta = obj.metadata
            raw, rv = b"", (meta.resourceVersion if meta is not None else "")
        else:
            decoded = self._decode_general(line)
            if decoded is None:
                return True
            etype, obj, raw, rv = decoded
        if not rv:
            raise _BadLine(f"{etype} event without a resourceVersion")
        return self._apply(etype, obj, raw, rv)

    def _decode_general(self, line: bytes) -> tuple[str, Any, bytes, str] | None:
        """(type, typed object or None, raw object, resourceVersion) of any watch line; None
        for an ERROR 410 (relist); _BadLine / _WatchError for what cannot be applied."""
        try:
            ev = decode_watch_event(line)
        except MalformedObject as exc:
            raise _BadLine(f"{exc}; {len(line)} bytes") from None
        if ev.type == "ERROR":
            code = decode_status_code(ev.raw)
            if code == 410:
                self._log.info(
                    "informer-%s: watch from resourceVersion %s expired (ERROR 410); listing again",
                    self._kind,
                    self._rv,
                )
                return None
            raise _WatchError(code)
        if ev.type not in _CHANGES and ev.type != "BOOKMARK":
            raise _BadLine(f"unknown event type {ev.type[:40]!r}")
        obj = None
        try:
            if self._decode is not None:
                obj = self._decode(ev.raw)
                meta = obj.metadata
                rv = meta.resourceVersion if meta is not None else ""
            else:
                rv = decode_meta(ev.raw).resourceVersion
        except MalformedObject as exc:
            raise _BadLine(f"{ev.type} {exc}") from None
        return ev.type, obj, ev.raw, rv

    def _apply(self, etype: str, obj: Any, raw: bytes, rv: str) -> bool:
        """Hand one change (or bookmark) to the handler and move the resourceVersion on."""
        if etype == "BOOKMARK":
            self._rv = rv
            self._progress()
            self._emit("bookmark")
            return False
        try:
            if obj is not None:
                apply = self._delete_decoded if etype == "DELETED" else self._upsert_decoded
                assert apply is not None  # obj is decoded only when the handler has decode (and these)
                apply(obj)
            elif etype == "DELETED":
                self._handler.delete(raw)
            else:
                self._handler.upsert(raw)
        except Exception as exc:
            raise _HandlerFailed("delete()" if etype == "DELETED" else "upsert()") from exc
        self._rv = rv
        self._progress()
        self._emit("event")
        return False

    # ---- plumbing ------------------------------------------------------------------------------
    def _call(self, **kwargs: Any) -> Any:
        """The kind's list method, raw (urllib3 response), with our connect/read timeouts."""
        return self._list_fn(_preload_content=False, _request_timeout=self._timeouts, **kwargs)

    def _hold(self, resp: Any) -> None:
        with self._resp_lock:
            self._resp = resp
        if self._stopping.is_set():  # stop() may have looked before we registered
            self._release(resp)
            raise _Stop

    def _release(self, resp: Any) -> None:
        with self._resp_lock:
            if self._resp is resp:
                self._resp = None
        try:
            resp.close()  # an unfinished body makes the connection unusable: never pool it as is
            resp.release_conn()
        except Exception:  # noqa: BLE001 - best effort; the connection is dropped either way
            pass

    def _emit(self, what: str) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(self._kind, what)
        except Exception:  # noqa: BLE001 - a broken counter must not stop the informer
            self._log.exception("informer-%s: on_event callback failed", self._kind)


def _lines(resp: Any) -> Iterator[bytes]:
    """The non-blank newline-terminated lines of a streamed body, as they arrive."""
    if resp.chunked and resp.supports_chunked_reads():
        chunks: Iterator[bytes] = resp.read_chunked(None)
    else:
        chunks = iter(lambda: bytes(resp.read1(_READ_SIZE)), b"")
    pending = b""
    for chunk in chunks:
        parts = (pending + chunk).split(b"\n")
        pending = parts.pop()
        for part in parts:
            if part.strip():
                yield part
    if pending.strip():  # a last line without its newline: still judged, never dropped
        yield pending


def _cut(resp: Any) -> None:
    """Wake a reader blocked on `resp` from another thread (SHUT_RD on its socket)."""
    try:
        resp.shutdown()
    except Exception:  # noqa: BLE001 - already closed or released: nothing to wake
        pass


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    return type(exc).__name__
