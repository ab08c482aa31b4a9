"""Scheduling calls first: the cache's feeders step aside while a call is being answered.

Python runs one thread at a time (the GIL). An informer applying thousands of pod events a
second, or the publisher building a snapshot, would otherwise hold the interpreter for a whole
switch interval (5 ms) each time the call's thread wants it, multiplying the call's latency;
kube-scheduler waits on every call, while an event can wait a few milliseconds without harm.

Each feeder (an informer, the publisher) gets its own ``Feeder`` and calls it before each
step. While a call is in flight, a feeder that has run for ``quantum_s`` since it last stepped
aside waits (releasing the GIL) until no call is in flight, at most ``max_wait_s``: under
back-to-back calls the feeders keep about quantum / (quantum + max wait) of the interpreter, so
the cache never starves; with no call in flight they run freely.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from werkzeug.wsgi import ClosingIterator


class CallGate:
    """Counts the scheduling calls in flight; feeders step aside for them."""

    def __init__(
        self,
        *,
        quantum_s: float = 0.002,
        max_wait_s: float = 0.005,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if quantum_s < 0 or max_wait_s <= 0:
            raise ValueError("quantum_s must not be negative and max_wait_s must be positive")
        self.quantum_s, self.max_wait_s = quantum_s, max_wait_s
        self.clock = clock
        self._lock = threading.Lock()
        self._calls = 0
        self._idle = threading.Event()
        self._idle.set()

    def enter(self) -> None:
        """A scheduling call starts being answered."""
        with self._lock:
            self._calls += 1
            self._idle.clear()

    def leave(self) -> None:
        """The call's answer has been written (each ``enter`` is left once)."""
        with self._lock:
            self._calls -= 1
            if self._calls == 0:
                self._idle.set()

    @contextlib.contextmanager
    def call(self) -> Iterator[None]:
        """Around the answer of one scheduling call."""
        self.enter()
        try:
            yield
        finally:
            self.leave()

    def busy(self) -> bool:
        return not self._idle.is_set()

    def feeder(self, on_wait: Callable[[], None] | None = None) -> Feeder:
        """A feeder thread's handle; ``on_wait`` is called each time it steps aside (metrics)."""
        return Feeder(self, on_wait)

    def wait_idle(self) -> None:
        """Until no call is in flight, at most ``max_wait_s`` (the GIL released meanwhile)."""
        self._idle.wait(self.max_wait_s)


class Feeder:
    """One feeder thread's side of the gate: call it before each step."""

    def __init__(self, gate: CallGate, on_wait: Callable[[], None] | None = None) -> None:
        self._gate = gate
        self._on_wait = on_wait
        self._since = -float("inf")  # when it last stepped aside
        self.waits = 0

    def __call__(self) -> bool:
        """Step aside if a call is in flight and this feeder has had its quantum; True if it
        waited."""
        gate = self._gate
        if not gate.busy() or gate.clock() - self._since < gate.quantum_s:
            return False
        gate.wait_idle()
        self._since = gate.clock()
        self.waits += 1
        if self._on_wait is not None:
            self._on_wait()
        return True


class GatedPaths:
    """WSGI middleware: requests to ``paths`` count as scheduling calls from the moment the
    application is called (body read, decode, answer) until the server has written the answer
    and closed the response (PEP 3333: ``close()`` after the last byte), so the feeders also
    step aside while the answer is read and written, not only while it is computed."""

    def __init__(self, app: Callable[..., Iterable[bytes]], gate: CallGate, paths: Iterable[str]) -> None:
        self._app = app
        self._gate = gate
        self._paths = frozenset(paths)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") not in self._paths:
            return self._app(environ, start_response)
        self._gate.enter()
        try:
            body = self._app(environ, start_response)
        except BaseException:
            self._gate.leave()
            raise
        return ClosingIterator(body, self._gate.leave)
