"""The poller base of the load sources: a daemon thread per source, polling on an interval.

The pollers are daemon threads with full-jitter exponential backoff on errors
  (``uniform(0, min(cap, base * 2**(failures-1)))``, AWS Architecture Blog "Exponential Backoff
  And Jitter"). metrics-server goes through the official client with urllib3 retries off (one
  attempt per poll, bounded by ``timeout_s``), with ``_preload_content=False`` and msgspec
  decoding of the few fields needed (the client's model deserialisation is slow and
  CustomObjectsApi returns plain dicts anyway). Prometheus goes through a urllib3
  ``PoolManager`` (the client's own dependency), also without retries. Neither honours a
  ``Retry-After``: a refused poll is a failed poll, and the next waits by our own backoff
  (at most ``backoff_max_s``), whatever the server asked for.
A crash of the thread's loop outside a poll (a bug) does not end polling: it is logged,
counted (``thread_restarts``, ``on_thread_restart``) and the loop starts over after a backoff.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable

import msgspec
import urllib3
from kubernetes.client.exceptions import ApiException

from extender.load.window import _MAX_MESSAGE, LoadWindow

_LOG = logging.getLogger("extender.load")  # its name in log lines: unchanged by the move

# -------------------------------------------------------------------------------


class PollError(Exception):
    """A poll that failed in a way the poller describes itself (message safe to log)."""


def _describe(exc: BaseException, timeout_s: float) -> str:
    """A one-line, secret-free description of a poll failure."""
    if isinstance(exc, ApiException):
        message = ""
        try:
            doc = msgspec.json.decode(exc.body or b"")
            if isinstance(doc, dict):
                message = str(doc.get("message", ""))
        except (msgspec.DecodeError, TypeError):
            pass
        text = f"HTTP {exc.status} {exc.reason or ''}".rstrip()
        return f"{text}: {message}" if message else text
    if isinstance(exc, (urllib3.exceptions.TimeoutError, TimeoutError)):
        return f"timed out after {timeout_s:g}s ({type(exc).__name__})"
    if isinstance(exc, PollError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class _Poller:
    """A daemon thread calling ``poll_once`` every ``interval_s``, with full-jitter
    exponential backoff while polls fail. Subclasses implement ``_fetch`` (fetch and record,
    return the number of values accepted, raise on failure) and set ``source``."""

    source: str = ""

    def __init__(
        self,
        window: LoadWindow,
        *,
        interval_s: float,
        timeout_s: float,
        on_poll: Callable[[str, bool], None] | None,
        logger: logging.Logger | None,
        backoff_base_s: float,
        backoff_max_s: float,
        clock: Callable[[], float],
        rng: random.Random | None,
    ) -> None:
        for label, value in (
            ("interval_s", interval_s),
            ("timeout_s", timeout_s),
            ("backoff_base_s", backoff_base_s),
            ("backoff_max_s", backoff_max_s),
        ):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{type(self).__name__}: {label} must be a positive number, got {value!r}")
        self.window = window
        self.interval_s = float(interval_s)
        self.timeout_s = float(timeout_s)
        self.backoff_base_s = float(backoff_base_s)
        self.backoff_max_s = float(backoff_max_s)
        self.on_poll = on_poll
        self._log = logger or _LOG
        self._clock = clock
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0  # consecutive failed polls
        self.polls_total = 0
        self.errors_total = 0
        self.last_error = ""
        self.thread_restarts = 0  # times the thread's loop crashed and was started over
        # called with the thread's name on each such restart (the cache counts it in a metric)
        self.on_thread_restart: Callable[[str], None] | None = None

    @property
    def synced(self) -> bool:
        """True once a poll has succeeded."""
        return self._synced.is_set()

    def wait_synced(self, timeout: float | None = None) -> bool:
        """Block until the first successful poll or ``timeout``; returns ``synced``."""
        return self._synced.wait(timeout)

    def start(self) -> None:
        """Start polling in a daemon thread (the first poll right away). Idempotent."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"load-{self.source}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (an in-flight request ends within ``timeout_s``) and close the
        HTTP connections."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.close()

    def close(self) -> None:
        """Release HTTP connections (subclasses)."""

    def next_delay(self) -> float:
        """Seconds to wait before the next poll: ``interval_s`` while healthy, else full
        jitter ``uniform(0, min(backoff_max_s, backoff_base_s * 2**(failures-1)))``."""
        if self.failures == 0:
            return self.interval_s
        cap = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** min(self.failures - 1, 60))
        return self._rng.uniform(0.0, cap)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._loop()
            except Exception:  # noqa: BLE001 - a bug must not end polling for good
                self.thread_restarts += 1
                name = f"load-{self.source}"
                self._log.exception(
                    "load source %s: the poll loop crashed; starting it over (restart %d)",
                    self.source,
                    self.thread_restarts,
                )
                if self.on_thread_restart is not None:
                    try:
                        self.on_thread_restart(name)
                    except Exception:  # noqa: BLE001 - a metrics callback must not stop polling
                        self._log.exception("load source %s: on_thread_restart callback failed", self.source)
                exponent = min(self.thread_restarts - 1, 60)
                self._stop.wait(
                    self._rng.uniform(0.0, min(self.backoff_max_s, self.backoff_base_s * 2.0**exponent))
                )

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - a bug must not end polling for good
                self._log.exception("load source %s: poll crashed", self.source)
                self.failures += 1
            delay = self.next_delay()
            if self.failures == 0:  # fixed rate while healthy: start to start
                delay = max(0.0, delay - (time.monotonic() - started))
            self._stop.wait(delay)

    def _fetch(self) -> int:
        raise NotImplementedError

    def poll_once(self) -> bool:
        """One poll: fetch, record, report to ``window.note_poll`` and ``on_poll``, refresh
        the window's cache. Returns success; never raises for source failures. Tests and
        one-shot tools call it directly; it must not run concurrently with the thread."""
        self.polls_total += 1
        try:
            accepted = self._fetch()
        except Exception as exc:  # noqa: BLE001 - any failure of the source is a failed poll
            self.errors_total += 1
            self.failures += 1
            message = _describe(exc, self.timeout_s)[:_MAX_MESSAGE]
            self.window.note_poll(self.source, False, error=message, when=self._clock())
            level = logging.WARNING if self.failures == 1 or message != self.last_error else logging.DEBUG
            self._log.log(
                level, "load source %s: poll failed (%d in a row): %s", self.source, self.failures, message
            )
            self.last_error = message
            ok = False
        else:
            if self.failures:
                self._log.info(
                    "load source %s: recovered after %d failed poll(s)", self.source, self.failures
                )
            self.failures = 0
            self.window.note_poll(self.source, True, when=self._clock())
            if not self._synced.is_set():
                self._log.info("load source %s: first poll ok, %d value(s) recorded", self.source, accepted)
                self._synced.set()
            ok = True
        self.window.refresh(self._clock())
        if self.on_poll is not None:
            try:
                self.on_poll(self.source, ok)
            except Exception:  # noqa: BLE001 - a metrics callback must not stop polling
                self._log.exception("load source %s: on_poll callback failed", self.source)
        return ok
