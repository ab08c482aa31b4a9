"""Readiness over time: the ``extender_ready`` gauge and one log line per change.

A thread asks the readiness ``/readyz`` answers with (``_Liveness.readiness`` in ``app.py``)
every ``READINESS_WATCH_S``, whether or not anything probes, and

- sets ``extender_ready`` to 1 or 0;
- logs ``extender ready: <why>`` the first time it is ready (stateless mode at once; cluster-cache
  mode once the first full sync is published), then ``extender not ready: <why>`` (WARNING) and
  ``extender ready again: <why>`` once per change, never while the state stays.

The thread holds the watch only weakly: it ends with the app that owns the watch (tests build
many), or at the interpreter's exit, before the cluster cache is stopped (so that a shutdown
does not log the cache's end as a loss of readiness).
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections.abc import Callable

from prometheus_client import Gauge

READINESS_WATCH_S = 1.0


class ReadinessWatch:
    def __init__(
        self,
        check: Callable[[], tuple[bool, str]],
        *,
        gauge: Gauge | None,
        logger: logging.Logger,
        interval_s: float = READINESS_WATCH_S,
    ) -> None:
        self._check = check
        self._gauge = gauge
        self._log = logger
        self._interval_s = interval_s
        self._lock = threading.Lock()  # one evaluation at a time: each change logged once
        self._ready: bool | None = None  # None: never ready yet
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Evaluate now and then every ``interval_s`` on a daemon thread, until ``stop()``."""
        self._thread = threading.Thread(
            target=_watch,
            args=(weakref.ref(self), self._stop, self._interval_s),
            name="readiness",
            daemon=True,
        )
        self._thread.start()
        atexit.register(_stop_at_exit, weakref.ref(self))

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def tick(self) -> None:
        """``observe()`` for the thread: a failing check is logged, and the next one comes."""
        try:
            self.observe()
        except Exception:  # noqa: BLE001 - the watch must outlive a failing check; /readyz says more
            self._log.exception("readiness check failed")

    def observe(self) -> tuple[bool, str]:
        """Evaluate readiness once: the gauge, and a log line if it changed."""
        ready, why = self._check()
        with self._lock:
            before = self._ready
            if ready or before is not None:  # not ready before the first time: still starting
                self._ready = ready
            if self._gauge is not None:
                self._gauge.set(1 if ready else 0)
            if ready and before is None:
                self._log.info("extender ready: %s", why)
            elif ready and before is False:
                self._log.info("extender ready again: %s", why)
            elif not ready and before is True:
                self._log.warning("extender not ready: %s", why)
        return ready, why


def _watch(ref: weakref.ref[ReadinessWatch], stop: threading.Event, interval_s: float) -> None:
    while True:
        watch = ref()
        if watch is None:  # its app is gone
            return
        watch.tick()
        del watch
        if stop.wait(interval_s):
            return


def _stop_at_exit(ref: weakref.ref[ReadinessWatch]) -> None:
    watch = ref()
    if watch is not None:
        watch.stop()
