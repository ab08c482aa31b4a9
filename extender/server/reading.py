"""gthread, with every request read whole by the event loop before a pool thread sees it.

In gunicorn's gthread a pool thread takes a connection as soon as it is readable and parses
from the socket with blocking reads: a client that sends its headers or body a byte at a time
holds that thread for as long as it likes (header reads have no deadline), and with a handful
of such clients every thread is held while kube-scheduler's own calls wait (issue 17: 6
connections dripping header bytes kept a filter unanswered for 30-40 s; the scheduler gives up
after 5 s). ``EventLoopReading`` moves the reading into the worker's main thread, which already
waits on every socket: it reads what is there without blocking, asks ``RequestScan``
(``extender/server/front.py``) whether the request is whole, and only then hands the
connection, with its bytes in gunicorn's parser buffer, to the pool. A thread then parses from
memory and never waits on a client. What a slow or idle client costs is a buffer and a
deadline:

- no bytes: the connection waits in the poller for ``keepalive`` seconds (gthread's idle
  limit), then is closed; no thread;
- headers must be whole within ``header_timeout_s`` of their first byte, the body within
  ``read_timeout_s`` of the headers; late requests are answered 408 and closed;
- request bytes held by the loop, all connections together, stay within ``budget_bytes``
  (four bodies at the limit); beyond it the request that has been arriving longest is answered
  503 (Retry-After) and closed, until the bytes fit: a client holding the budget with bodies
  that never finish loses it to the next request, which a whole request never does (its bytes
  go to a thread as soon as they are in);
- at the connection limit (``worker_connections``) the oldest idle connection is closed to
  accept a new one, as nginx does, instead of no longer accepting: idle clients cannot lock the
  scheduler out;
- HTTPS (verbs listener, ``extender/server/tls.py``): the handshake is non-blocking in the loop
  too, and must end within ``header_timeout_s``;
- a thread writing an answer or reading what the scan handed over early waits at most
  ``header_timeout_s + read_timeout_s`` per socket call (``SO_SNDTIMEO``/``SO_RCVTIMEO``).

Each connection closed here is counted in ``extender_connections_closed_total{reason}`` and
logged (one line per reason and second at most). gthread internals used, beyond those
``extender/server/worker.py`` lists: ``accept``, ``poller``, ``nr_conns``, ``keepalived_conns``,
``murder_pending`` and ``set_accept_enabled`` (gunicorn 27.0); tests/test_reading.py runs them
under real gunicorn.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import selectors
import socket
import ssl
import struct
import time
from functools import partial
from http import HTTPStatus
from typing import Any

from gunicorn import http
from gunicorn.workers.gthread import TConn, ThreadWorker

from extender.server.front import HEADER_LIMIT, RequestScan, Verdict, too_large_message
from extender.server.tls import TLSFiles
from extender.settings import Settings

READ_SIZE = 256 * 1024  # bytes per recv() in the loop
BUDGET_BODIES = 4  # request bytes the loop may hold, in bodies at the limit
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
REFUSALS = {
    "header_timeout": (408, "request headers not received within EXTENDER_HEADER_TIMEOUT_S"),
    "body_timeout": (408, "request body not received within EXTENDER_READ_TIMEOUT_S of its headers"),
    "incomplete": (
        400,
        "connection closed before the request was whole (shorter than its Content-Length, or "
        "chunked without its last, zero-size, chunk)",
    ),
    "headers_too_large": (431, f"request line and headers larger than {HEADER_LIMIT} bytes"),
    "body_too_large": (413, ""),  # too_large_message(body_limit)
    "over_budget": (503, "too many request bytes in flight; retry"),
}


class _Reading:
    """The loop's state for one connection whose request is not whole yet."""

    __slots__ = ("body_started", "buf", "deadline", "handshaking", "registered", "scan", "started")

    def __init__(self, buf: bytes, scan: RequestScan, deadline: float, handshaking: bool) -> None:
        self.buf = bytearray(buf)
        self.scan = scan
        self.deadline = deadline
        self.handshaking = handshaking
        self.registered = 0  # the selector events it waits for (0: not in the poller)
        self.body_started = False  # headers whole: the body's deadline runs
        self.started = 0.0  # monotonic time of the request's first byte


class EventLoopReading(ThreadWorker):
    """gthread whose pool threads only ever get whole requests (see the module docstring)."""

    settings: Settings | None = None  # gunicorn_conf's post_fork sets it; default: Settings()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading: dict[TConn, _Reading] = {}  # insertion order: oldest first
        self.buffered = 0  # request bytes held by the loop now
        self._front_log = logging.getLogger("extender.server")
        self._logged: dict[str, float] = {}
        self.tls: TLSFiles | None = None
        self._configure(Settings())  # until init_process has the real ones

    def init_process(self) -> None:
        """In the worker process, after the fork: the settings gunicorn_conf gave it."""
        self._configure(self.settings or Settings())
        s = self.settings
        if s is not None and s.tls_cert_file is not None and s.tls_private_key_file is not None:
            self.tls = TLSFiles(
                s.tls_cert_file,
                s.tls_private_key_file,
                s.client_ca_file,
                on_reload=lambda outcome: self._count("tls_reloads", outcome),
                logger=self._front_log,
            )
        super().init_process()

    def _configure(self, s: Settings) -> None:
        self.header_timeout_s, self.read_timeout_s = s.header_timeout_s, s.read_timeout_s
        self.body_limit = s.body_limit
        self.budget_bytes = BUDGET_BODIES * s.body_limit
        self.verbs_port = s.port

    # --- gthread's entry points ---------------------------------------------------------------

    def accept(self, listener: Any) -> None:
        """gthread's accept, the connection then read by the loop (and wrapped for TLS on the
        verbs listener)."""
        try:
            sock, addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        bound = self.header_timeout_s + self.read_timeout_s
        timeval = struct.pack("ll", int(bound), int(bound % 1 * 1e6))
        with contextlib.suppress(OSError):  # not a TCP socket (a test's socketpair): unbounded
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        conn = TConn(self.cfg, sock, addr, listener.getsockname())  # non-blocking
        handshaking = False
        if self.tls is not None and _port(conn.server) == self.verbs_port:
            conn.sock = self.tls.context().wrap_socket(
                conn.sock, server_side=True, do_handshake_on_connect=False
            )
            handshaking = True
        deadline = time.monotonic() + (self.header_timeout_s if handshaking else self.cfg.keepalive)
        self.reading[conn] = _Reading(b"", RequestScan(self.body_limit), deadline, handshaking)
        self._read_safely(conn)

    def enqueue_req(self, conn: Any) -> None:
        """Every path of gthread to the pool comes here: a new connection, a kept-alive one that
        turned readable, read-ahead left in the parser. Only a whole request goes on."""
        if getattr(conn, "whole", False):
            conn.whole = False
            self.submit(conn)
            return
        if conn not in self.reading:
            held = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
            deadline = time.monotonic() + (self.header_timeout_s if held else self.cfg.keepalive)
            self.reading[conn] = _Reading(held, RequestScan(self.body_limit), deadline, False)
            self.buffered += len(held)
        self._read_safely(conn)

    def submit(self, conn: Any) -> None:
        """A whole request to the pool (gthread's ``enqueue_req``)."""
        super().enqueue_req(conn)

    def murder_pending(self) -> None:
        """Each turn of the loop: gthread's own expiries, then the deadlines of requests being read
        (and, once the worker stops, every connection that has sent nothing)."""
        super().murder_pending()
        now = time.monotonic()
        for conn, st in list(self.reading.items()):
            try:
                if now >= st.deadline:
                    self._refuse(conn, st, self._late(st))
                elif not self.alive and not st.buf:
                    self._close(conn)
            except Exception:  # noqa: BLE001 - as in _read_safely: never the loop
                self._front_log.exception("internal error closing a late connection")
                with contextlib.suppress(Exception):
                    self._close(conn)

    def set_accept_enabled(self, enabled: bool) -> None:
        """At the connection limit, close the oldest idle connection and go on accepting."""
        if not enabled and self.alive and self._evict_idle():
            return
        super().set_accept_enabled(enabled)

    # --- the reading ------------------------------------------------------------------------

    def _read(self, conn: Any) -> None:
        st = self.reading[conn]
        verdict = st.scan.feed(st.buf) if st.buf else Verdict.MORE
        try:
            conn.sock.setblocking(False)
            if st.handshaking:
                conn.sock.do_handshake()
                st.handshaking = False
                st.deadline = time.monotonic() + self.cfg.keepalive
            while verdict is Verdict.MORE:
                data = conn.sock.recv(READ_SIZE)
                if not data:  # the client closed (its writing half at least)
                    if st.buf:
                        self._refuse(conn, st, "incomplete")
                    else:
                        self._close(conn)
                    return
                self._take(conn, st, data)
                if self.buffered > self.budget_bytes and self._over_budget(conn):
                    return
                verdict = st.scan.feed(st.buf)
                if verdict is Verdict.MORE and st.scan.header_end >= 0 and not st.body_started:
                    self._body_started(conn, st)
        except ssl.SSLWantWriteError:
            self._wait(conn, st, selectors.EVENT_WRITE)
            return
        except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
            self._wait(conn, st, selectors.EVENT_READ)
            return
        except (OSError, ValueError) as exc:  # reset, a failed handshake (ssl.SSLError is an OSError)
            if st.handshaking:
                self._count("connections_closed", "tls_handshake")
                self._note("tls_handshake", f"TLS handshake failed from {_peer(conn)}: {exc}")
            self._close(conn)
            return
        if verdict in (Verdict.WHOLE, Verdict.PARSER):
            self._hand_over(conn, st)
        else:
            self._refuse(conn, st, verdict.value)

    def _take(self, conn: Any, st: _Reading, data: bytes) -> None:
        if not st.buf:  # a request's first byte: its headers' deadline starts
            st.started = time.monotonic()
            st.deadline = st.started + self.header_timeout_s
        st.buf += data
        self.buffered += len(data)

    def _over_budget(self, conn: Any) -> bool:
        """Refuse the requests that have been arriving longest until the bytes held fit the
        budget; True when ``conn``'s own was one of them."""
        refused_own = False
        while self.buffered > self.budget_bytes:
            victim = min(
                (c for c, st in self.reading.items() if st.buf), key=lambda c: self.reading[c].started
            )
            self._refuse(victim, self.reading[victim], "over_budget")
            refused_own = refused_own or victim is conn
        return refused_own

    def _body_started(self, conn: Any, st: _Reading) -> None:
        """Headers whole, body not: the body's own deadline; a 100 Continue if the client waits
        for one (curl does for bodies over 1 MiB). gunicorn may send its own as well when the
        app reads the body: a client takes any number of 1xx answers (RFC 9110 section 15.2)."""
        st.body_started = True
        st.deadline = time.monotonic() + self.read_timeout_s
        if st.scan.expects_continue:
            with contextlib.suppress(OSError):
                conn.sock.send(CONTINUE)

    def _hand_over(self, conn: Any, st: _Reading) -> None:
        self._forget(conn, st)
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(bytes(st.buf))
        conn.data_ready = True  # gthread's handle must not wait for the socket: the bytes are here
        self.submit(conn)

    def _wait(self, conn: Any, st: _Reading, events: int) -> None:
        if st.registered == events:
            return
        if st.registered:
            self.poller.modify(conn.sock, events, partial(self._ready, conn))
        else:
            self.poller.register(conn.sock, events, partial(self._ready, conn))
        st.registered = events

    def _ready(self, conn: Any, _sock: Any) -> None:
        if conn in self.reading:
            self._read_safely(conn)

    def _read_safely(self, conn: Any) -> None:
        """``_read``, and a bug in it costs that connection, not the loop: an exception out of a
        callback of gthread's main loop ends the worker process, and every connection with it."""
        try:
            self._read(conn)
        except Exception:  # noqa: BLE001 - one connection's bug must not end the worker
            self._front_log.exception(
                "internal error reading a request from %s; connection closed", _peer(conn)
            )
            with contextlib.suppress(Exception):
                self._close(conn)

    def _forget(self, conn: Any, st: _Reading) -> None:
        """Out of the loop's hands: no longer polled, its bytes no longer counted here."""
        if st.registered:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(conn.sock)
            st.registered = 0
        self.buffered -= len(st.buf)
        self.reading.pop(conn, None)

    def _close(self, conn: Any) -> None:
        st = self.reading.get(conn)
        if st is not None:
            self._forget(conn, st)
        elif getattr(conn, "closed_by_loop", False):
            return  # closed once already
        conn.closed_by_loop = True
        self.nr_conns -= 1
        conn.close()

    def _late(self, st: _Reading) -> str:
        if st.handshaking:
            return "tls_handshake"
        if not st.buf:
            return "idle"
        return "header_timeout" if st.scan.header_end < 0 else "body_timeout"

    def _refuse(self, conn: Any, st: _Reading, reason: str) -> None:
        """Answer what the loop can answer itself (408, 413, 431, 503) and close; close quietly a
        connection that sent nothing or never finished its handshake."""
        self._count("connections_closed", reason)
        if reason in REFUSALS:
            status, message = REFUSALS[reason]
            message = message or too_large_message(self.body_limit)
            self._note(reason, f"closed a connection from {_peer(conn)}: {status} {message}")
            body = json.dumps({"Error": message}).encode()
            retry = "Retry-After: 1\r\n" if status == 503 else ""
            head = (
                f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n{retry}\r\n"
            )
            with contextlib.suppress(OSError, ValueError):
                conn.sock.setblocking(False)
                conn.sock.send(head.encode() + body)
                # Closing with unread bytes in the receive buffer makes the kernel answer with a
                # reset, which can overtake the answer: read them first (a few reads at most).
                for _ in range(4):
                    if not conn.sock.recv(READ_SIZE):
                        break
        elif reason == "tls_handshake":
            self._note(reason, f"TLS handshake from {_peer(conn)} not finished in time")
        self._close(conn)

    def _evict_idle(self) -> bool:
        """Close the oldest connection that holds no request: kept alive between requests, or
        open and silent. False when every connection is busy."""
        victim = None
        if self.keepalived_conns:
            victim = self.keepalived_conns.popleft()
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(victim.sock)
        else:
            victim = next((c for c, st in self.reading.items() if not st.buf and not st.handshaking), None)
            if victim is None:
                return False
            self._forget(victim, self.reading[victim])
        self._count("connections_closed", "evicted_idle")
        self._note("evicted_idle", f"at the connection limit ({self.worker_connections}): closed an idle one")
        self.nr_conns -= 1
        victim.close()
        return True

    # --- metrics and logs -------------------------------------------------------------------

    def _count(self, metric: str, label: str) -> None:
        """The app's metrics (``extender.metrics.Metrics``), when it has them."""
        extensions = getattr(getattr(self, "wsgi", None), "extensions", None) or {}
        metrics = extensions.get("extender", {}).get("metrics")
        if metrics is not None:
            getattr(metrics, metric).labels(label).inc()

    def _note(self, reason: str, message: str) -> None:
        """One warning per reason and second: a flood of bad clients must not flood the log."""
        now = time.monotonic()
        if now - self._logged.get(reason, -1.0) >= 1.0:
            self._logged[reason] = now
            self._front_log.warning(
                "%s (reason=%s; counted in extender_connections_closed_total)", message, reason
            )


def _port(address: Any) -> int | None:
    return address[1] if isinstance(address, tuple) and len(address) >= 2 else None


def _peer(conn: Any) -> str:
    client = conn.client
    return f"{client[0]}:{client[1]}" if isinstance(client, tuple) and len(client) >= 2 else str(client)
