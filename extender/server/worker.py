"""gunicorn's gthread worker, with a thread that stays on a busy connection.

In gthread every request on a kept-alive connection crosses three threads: the main thread's
poller sees the socket readable and submits the connection to the pool, a pool thread parses
and answers, and hands the connection back to the main thread through a pipe, which registers
it with the poller again. Each crossing is a wake-up and a fresh claim on the GIL. On the two
shared cores we measure on, a trivial WSGI app answered in ~0.65 ms under gthread and ~0.45 ms
with this worker (an ad-hoc check), and the hand-offs cost more when the cache's informer
threads hold the interpreter (``benchmarks/README.md``, "names", has the project's A/B).

kube-scheduler calls one extender over few kept-alive connections, back to back while it has
pods to place: filter, prioritize, bind, then the next pod's filter. ``LingeringThreadWorker``
lets the pool thread that answered a request wait on that connection for the next one, up to
``linger_s``, and answer it itself: one wake-up per request, no main thread. It lingers only
while at least one other pool thread stays free, so a bind on another connection finds a
thread (with ``threads = 1`` it never lingers: plain gthread). When the linger ends (no
request in time, the worker stopping, the connection closing) the connection goes back to
gthread's poller exactly as before. Parsing, the WSGI call, errors, keep-alive
and its limits are gthread's own code (``ThreadWorker.handle``).

It relies on gthread internals that gunicorn does not promise: ``ThreadWorker.handle`` runs in a
pool thread and returns ``True`` for a connection to keep (gunicorn 24.0.0 on; 23 returned a
``(keepalive, conn)`` tuple, and this worker would never linger), ``enqueue_req`` submits a
connection to the pool, and ``conn.parser.unreader.buf`` holds bytes read ahead.
``check_config`` refuses a gunicorn older than ``GUNICORN_MIN`` at start; tests/test_worker.py
runs the real ``ThreadWorker.handle`` to check the rest on the gunicorn installed.
"""

from __future__ import annotations

import contextlib
import os
import select
import ssl
import threading
import time
from typing import Any

import gunicorn

from extender.server.front import RequestScan, Verdict
from extender.server.reading import READ_SIZE, EventLoopReading

LINGER_S = 1.0  # how long a pool thread waits on its connection for the next request
# (gunicorn_conf's post_fork sets each worker's from Settings.linger_s)
GUNICORN_MIN = (24, 0, 0)  # the first gunicorn whose ThreadWorker.handle returns True to keep
GUNICORN_TESTED_BELOW = (28, 0, 0)  # requirements.txt's ceiling: a newer major is untested


def check_gunicorn(version: tuple[int, ...] | None = None) -> None:
    """Raise RuntimeError on a gunicorn this worker cannot linger on (default: the one imported)."""
    version = tuple(gunicorn.version_info if version is None else version)
    if version[:3] < GUNICORN_MIN:
        raise RuntimeError(
            "extender.server.worker.LingeringThreadWorker needs gunicorn >= "
            f"{'.'.join(map(str, GUNICORN_MIN))}"
            f" (its ThreadWorker.handle returning True to keep a connection), found"
            f" {'.'.join(map(str, version))}; install from constraints.txt"
        )


class LingeringThreadWorker(EventLoopReading):
    """gthread that reads requests whole in its event loop (``extender/server/reading.py``), with
    the pool thread that answered a request serving its connection's next request too while
    requests keep coming (see the module docstring)."""

    linger_s = LINGER_S

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        """At start, in gunicorn's master: a RuntimeError here makes gunicorn print it and exit 1."""
        check_gunicorn()
        if tuple(gunicorn.version_info[:3]) >= GUNICORN_TESTED_BELOW:
            log.warning(
                "extender.server.worker: gunicorn %s is newer than the versions tested (< %s)",
                gunicorn.__version__,
                ".".join(map(str, GUNICORN_TESTED_BELOW)),
            )
        super().check_config(cfg, log)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._busy = 0  # pool threads serving or lingering on a connection
        self._queued = 0  # connections submitted to the pool, not yet taken by a thread
        self._lingering = 0
        self._stopping = _Pipe()  # written once, when the worker stops: wakes every lingerer
        self._yield = _Pipe()  # a byte per request waiting for a thread: one lingerer gives way

    def init_process(self) -> None:
        self._stopping.open()  # in the worker process, after the fork
        self._yield.open()
        super().init_process()

    def handle_exit(self, sig: Any, frame: Any) -> None:
        """SIGTERM: gthread's graceful stop; lingering threads stop waiting at once, so their
        connections get the stop's short keep-alive instead of a whole linger."""
        super().handle_exit(sig, frame)
        self._stopping.put()

    def handle_quit(self, sig: Any, frame: Any) -> None:
        """SIGQUIT / SIGINT: gthread's immediate stop; the interpreter's exit joins the pool's
        threads, so the lingering ones must not wait out their linger first."""
        self.alive = False
        self._stopping.put()
        super().handle_quit(sig, frame)

    def submit(self, conn: Any) -> None:
        """Main thread: a whole request for the pool. If no thread is free for it while some are
        lingering, one of them gives way. (Should the lingerer see a request on its own
        connection first, the byte stays and the next linger ends at once: one linger lost.)"""
        with self._lock:
            self._queued += 1
            starved = self._busy + self._queued > self.cfg.threads and self._lingering > 0
        super().submit(conn)
        if starved:
            self._yield.put()

    def handle(self, conn: Any) -> Any:
        with self._lock:
            self._queued -= 1
            self._busy += 1
        try:
            keep = super().handle(conn)
            while keep is True and self._may_linger() and self._next_request(conn):
                keep = super().handle(conn)
            return keep
        finally:
            with self._lock:
                self._busy -= 1

    def _may_linger(self) -> bool:
        """Wait on this connection only if another pool thread stays free meanwhile."""
        return self.linger_s > 0 and self.alive and self._busy < self.cfg.threads

    def _next_request(self, conn: Any) -> bool:
        """True when the connection's next request is whole in the parser's buffer within the
        linger (or is one the parser answers without reading on, or the socket closed or
        failed: ``handle`` then ends the connection as it would have from the poller). False
        when it is not whole in time, the worker is stopping, or this thread gave way to a
        request waiting for one; the bytes read meanwhile go back to the parser's buffer, where
        gthread's ``finish_request`` finds them and gives the connection to the event loop, which
        reads on without a thread (its header deadline starts then: a client gets at most the
        linger more). The thread reads without blocking: a slow client cannot hold it longer
        than the linger."""
        scan = RequestScan(self.body_limit)
        buf = bytearray(conn.parser.unreader.take_buffered())
        deadline = time.monotonic() + self.linger_s
        try:
            conn.sock.setblocking(False)
            while True:
                verdict = scan.feed(buf) if buf else Verdict.MORE
                if verdict in (Verdict.WHOLE, Verdict.PARSER):
                    return True
                if verdict is not Verdict.MORE:
                    return False  # too large: the event loop answers it
                try:
                    data = conn.sock.recv(READ_SIZE)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
                    if not self._wait_readable(conn, deadline):
                        return False
                    continue
                except (OSError, ValueError):
                    return True
                if not data:
                    return True
                buf += data
        finally:
            conn.parser.unreader.unread(bytes(buf))
            with contextlib.suppress(OSError, ValueError):
                conn.sock.setblocking(True)

    def _wait_readable(self, conn: Any, deadline: float) -> bool:
        """Until ``deadline``: True once the socket is readable (or closed, or failed); False when
        the time is up, the worker stops, or this thread gives way."""
        try:
            poller = select.poll()
            poller.register(conn.sock, select.POLLIN)
        except (OSError, ValueError):
            return True
        for pipe in (self._stopping, self._yield):
            if pipe.r >= 0:
                poller.register(pipe.r, select.POLLIN)
        with self._lock:
            self._lingering += 1
        try:
            while (left := deadline - time.monotonic()) > 0:
                ready = {fd for fd, _ in poller.poll(left * 1e3)}
                if ready - {self._stopping.r, self._yield.r}:
                    return True
                if self._stopping.r in ready or (self._yield.r in ready and self._yield.take()):
                    return False
                # else another lingerer took the byte first: this one waits on
            return False  # nothing came within the linger
        finally:
            with self._lock:
                self._lingering -= 1


class _Pipe:
    """A non-blocking pipe used as a wake-up: readable while it holds bytes."""

    def __init__(self) -> None:
        self.r = self.w = -1

    def open(self) -> None:
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        os.set_blocking(self.w, False)

    def put(self) -> None:
        with contextlib.suppress(OSError):  # full (or not open): enough wake-ups are pending
            os.write(self.w, b"x")

    def take(self) -> bool:
        """One byte, if another reader has not taken it first."""
        try:
            return bool(os.read(self.r, 1))
        except OSError:  # EAGAIN: taken
            return False
