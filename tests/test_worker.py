"""The gunicorn worker class (extender/server/worker.py): a pool thread stays on its connection for the
next request, without ever holding up a request on another connection."""

from __future__ import annotations

import http.client
import io
import os
import socket
import subprocess
import sys
import threading
import time
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import gunicorn
import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers.gthread import TConn, ThreadWorker

from extender.cli import GUNICORN_ARGS
from extender.server.worker import GUNICORN_MIN, LingeringThreadWorker, _Pipe, check_gunicorn
from extender.settings import Settings, SettingsError
from tests.conftest import running_extender

LINGER = "3"  # seconds: far longer than any answer here, so a request stuck behind a linger shows


def _get(conn: http.client.HTTPConnection, path: str = "/livez") -> float:
    """One GET on ``conn``; its wall time in seconds."""
    t0 = time.perf_counter()
    conn.request("GET", path)
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 200
    return time.perf_counter() - t0


def _connect(url: str) -> http.client.HTTPConnection:
    u = urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=10)


def test_a_lingering_thread_never_holds_up_another_connection() -> None:
    """Two threads: the first connection's thread lingers, the second connection's must not
    (the last free thread), so a third connection is answered at once too."""
    with running_extender("--no-api", "--threads", "2", env={"EXTENDER_LINGER_S": LINGER}) as url:
        a, b, c = _connect(url), _connect(url), _connect(url)
        try:
            _get(a)  # a's thread now waits on a for up to 3 s
            assert _get(b) < 1.0
            assert _get(c) < 1.0  # would wait for a linger to end if b's thread had lingered too
            sock_a = a.sock
            assert _get(a) < 1.0 and a.sock is sock_a  # served on the same kept-alive connection
            assert _get(b) < 1.0 and _get(c) < 1.0
        finally:
            for conn in (a, b, c):
                conn.close()


def test_one_thread_never_lingers() -> None:
    with running_extender("--no-api", "--threads", "1", env={"EXTENDER_LINGER_S": LINGER}) as url:
        a, b = _connect(url), _connect(url)
        try:
            _get(a)
            assert _get(b) < 1.0
            assert _get(a) < 1.0
        finally:
            a.close()
            b.close()


def test_connection_kept_after_the_linger_ends() -> None:
    """After the linger the connection is back in gthread's poller, still alive."""
    with running_extender("--no-api", env={"EXTENDER_LINGER_S": "0.2"}) as url:
        a = _connect(url)
        try:
            _get(a)
            sock = a.sock
            time.sleep(0.6)
            _get(a)
            assert a.sock is sock
        finally:
            a.close()


# --- the mechanism, without gunicorn's process around it ---------------------------------------


REQ = b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"  # a whole request


class _Calls:
    """Stands in for ThreadWorker.handle: takes one request's bytes (from the parser's buffer,
    where the linger leaves them, else from the socket), says keep-alive."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, conn: Any) -> Any:  # an instance attribute of the class: not bound
        self.count += 1
        if not conn.parser.unreader.take_buffered():
            conn.sock.recv(100)
        return True


def _worker(threads: int, linger_s: float, busy: int = 0) -> LingeringThreadWorker:
    w = LingeringThreadWorker.__new__(LingeringThreadWorker)  # no gunicorn arbiter here
    w._lock, w._busy, w._queued, w._lingering = threading.Lock(), busy, 1, 0
    w._stopping, w._yield = _Pipe(), _Pipe()
    w._stopping.open()
    w._yield.open()
    w.linger_s, w.alive = linger_s, True
    w.cfg = SimpleNamespace(threads=threads)
    w.body_limit = 1 << 20
    return w


@pytest.fixture()
def conn_pair(monkeypatch: pytest.MonkeyPatch) -> Any:
    calls = _Calls()
    monkeypatch.setattr(ThreadWorker, "handle", calls)
    ours, peer = socket.socketpair()
    conn = SimpleNamespace(sock=ours, parser=SimpleNamespace(unreader=SocketUnreader(ours)))
    yield conn, peer, calls
    ours.close()
    peer.close()


def test_the_answering_thread_serves_the_next_request(conn_pair: Any) -> None:
    conn, peer, calls = conn_pair
    w = _worker(threads=4, linger_s=0.5)
    peer.send(REQ)
    timer = threading.Timer(0.1, peer.send, (REQ,))  # arrives while the thread lingers
    timer.start()
    t0 = time.monotonic()
    assert w.handle(conn) is True
    timer.join()
    assert calls.count == 2
    assert time.monotonic() - t0 >= 0.5  # then it waited its linger for a third, in vain
    assert w._busy == 0


def test_no_linger_when_it_would_take_the_last_free_thread(conn_pair: Any) -> None:
    conn, peer, calls = conn_pair
    w = _worker(threads=4, linger_s=5.0, busy=3)  # three others busy: this is the last one
    peer.send(REQ)
    peer.send(REQ)  # already waiting: still not served by this thread
    t0 = time.monotonic()
    assert w.handle(conn) is True
    assert calls.count == 1 and time.monotonic() - t0 < 1.0


def test_no_linger_when_off_or_stopping(conn_pair: Any) -> None:
    conn, peer, calls = conn_pair
    for w in (_worker(threads=4, linger_s=0.0), _worker(threads=4, linger_s=5.0)):
        if w.linger_s:
            w.alive = False
        calls.count = 0
        peer.send(REQ)
        t0 = time.monotonic()
        assert w.handle(conn) is True and calls.count == 1
        assert time.monotonic() - t0 < 1.0  # a stopping worker's thread does not wait its 5 s


def test_a_stopping_worker_ends_the_linger_at_once(conn_pair: Any) -> None:
    """SIGTERM writes the stop pipe: a thread lingering on an idle connection returns it at
    once (to gthread's graceful stop) instead of after its linger."""
    conn, peer, calls = conn_pair
    w = _worker(threads=4, linger_s=5.0)
    peer.send(REQ)

    def stop() -> None:
        w.alive = False
        w._stopping.put()

    timer = threading.Timer(0.2, stop)
    timer.start()
    t0 = time.monotonic()
    assert w.handle(conn) is True
    timer.join()
    assert calls.count == 1 and time.monotonic() - t0 < 2.0


def test_a_lingering_thread_gives_way_to_a_waiting_request(conn_pair: Any) -> None:
    conn, peer, calls = conn_pair
    w = _worker(threads=4, linger_s=5.0)
    peer.send(REQ)
    timer = threading.Timer(0.2, w._yield.put)
    timer.start()
    t0 = time.monotonic()
    assert w.handle(conn) is True
    timer.join()
    assert calls.count == 1 and time.monotonic() - t0 < 2.0
    assert not w._yield.take()


@pytest.mark.parametrize(
    ("busy", "lingering", "starved"),
    [
        (4, 1, True),  # every thread busy, one of them lingering: it must give way
        (3, 1, False),  # a thread is free for the request
        (4, 0, False),  # all busy serving: nobody to ask (no stale wake-up left behind)
    ],
)
def test_queueing_a_request_asks_a_lingerer_only_when_no_thread_is_free(
    monkeypatch: pytest.MonkeyPatch, busy: int, lingering: int, starved: bool
) -> None:
    monkeypatch.setattr(ThreadWorker, "enqueue_req", lambda self, conn: None)  # no pool here
    w = _worker(threads=4, linger_s=1.0, busy=busy)
    w._queued, w._lingering = 0, lingering
    w.enqueue_req(SimpleNamespace(whole=True))  # a whole request, read by the event loop
    assert w._yield.take() is starved
    assert w._queued == 1


def test_buffered_bytes_are_served_without_waiting(conn_pair: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole next request the parser already read is served at once, without the socket."""
    conn, peer, calls = conn_pair
    w = _worker(threads=4, linger_s=0.3)
    peer.send(REQ)

    def handle(worker: Any, c: Any) -> bool:
        calls.count += 1
        if calls.count == 1:  # the first request read, and the whole next one with it
            c.sock.recv(100)
            c.parser.unreader.buf = io.BytesIO(REQ)
        else:  # the second consumed the buffered bytes: nothing waits any more
            c.parser.unreader.buf = io.BytesIO()
        return True

    monkeypatch.setattr(ThreadWorker, "handle", handle)
    w.handle(conn)
    assert calls.count == 2


def test_a_slow_next_request_goes_back_to_the_event_loop(conn_pair: Any) -> None:
    """A next request dripping in during the linger is not read by the thread past the linger:
    the thread returns the connection with the bytes so far in the parser's buffer (where
    gthread's finish_request finds them and hands them to the event loop). Before issue 17 the
    thread parsed from the socket with blocking reads and stayed as long as the drip lasted."""
    conn, peer, calls = conn_pair
    w = _worker(threads=4, linger_s=0.3)
    peer.send(REQ)
    stop = threading.Event()

    def drip() -> None:
        for byte in REQ:
            if stop.wait(0.1):
                return
            peer.send(bytes([byte]))

    dripper = threading.Thread(target=drip)
    dripper.start()
    try:
        t0 = time.monotonic()
        assert w.handle(conn) is True
        took = time.monotonic() - t0
    finally:
        stop.set()
        dripper.join()
    assert calls.count == 1 and took < 1.5
    held = conn.parser.unreader.take_buffered()
    assert held and REQ.startswith(held)


@pytest.mark.parametrize("value", ["-1", "61", "x"])
def test_linger_setting_validated(value: str) -> None:
    with pytest.raises(SettingsError, match="LINGER_S"):
        Settings.from_env({"EXTENDER_LINGER_S": value})


def test_signals_wake_the_lingering_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM (graceful) and SIGQUIT (immediate) both end every linger at once: the stop pipe
    is written after gthread's own handling (stubbed here: it would exit the process)."""
    monkeypatch.setattr(ThreadWorker, "handle_exit", lambda self, sig, frame: setattr(self, "alive", False))
    monkeypatch.setattr(ThreadWorker, "handle_quit", lambda self, sig, frame: None)
    for stop in ("handle_exit", "handle_quit"):
        w = _worker(threads=4, linger_s=5.0)
        getattr(w, stop)(None, None)
        assert w.alive is False and w._stopping.take()


def test_a_request_with_no_free_thread_makes_a_lingerer_give_way() -> None:
    """Four threads: three linger on idle connections, and a client sends its headers and not
    its body. Before issue 17 that client held the fourth thread, so a request on a fifth
    connection had no free thread and was answered at once only because the main thread had
    a lingerer give way. Now the event loop holds the slow client's bytes and no thread, and
    the request is answered at once either way."""
    with running_extender("--no-api", "--threads", "4", env={"EXTENDER_LINGER_S": LINGER}) as url:
        idle = [_connect(url) for _ in range(3)]
        late = _connect(url)
        u = urlsplit(url)
        slow: socket.socket | None = None
        try:
            for conn in idle:
                _get(conn)  # each leaves a thread lingering on it (3 of 4: one stays free)
            slow = socket.create_connection((u.hostname, u.port), timeout=10)  # after: the last thread
            slow.sendall(
                b"POST /filter HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n"
            )  # the event loop waits for its body; no thread does
            time.sleep(0.3)
            assert _get(late) < 1.5  # without giving way: ~3 s, until a linger ran out
        finally:
            if slow is not None:
                slow.close()
            late.close()
            for conn in idle:
                conn.close()


# --- the gunicorn it runs on ---------------------------------------------------------------------


def _response(f: Any) -> tuple[bytes, bytes]:
    """One HTTP/1.1 response read off ``f``: its status code and body (Content-Length framed)."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = f.readline()
        assert line, f"connection closed after {head!r}"
        head += line
    length = next(
        int(h.split(b":", 1)[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")
    )
    return head.split(b" ", 2)[1], f.read(length)


def test_the_installed_gthread_handle_lets_the_thread_linger() -> None:
    """gthread's own ``ThreadWorker.handle`` (no stub): one pool thread answers three requests
    on its connection, which needs handle to return True for a kept connection and the parser's
    read-ahead buffer where the worker looks. On gunicorn 23 (handle returned a tuple) the
    thread returns after the first answer and the second request is never read."""

    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    cfg = Config()
    cfg.set("threads", 2)
    w = LingeringThreadWorker(0, 0, [], SimpleNamespace(), 30, cfg, Logger(cfg))
    w.wsgi, w.linger_s, w.alive = app, 5.0, True
    w._stopping.open()
    w._yield.open()
    w._queued = 1
    ours, peer = socket.socketpair()
    conn = TConn(cfg, ours, ("127.0.0.1", 1), ("127.0.0.1", 2))
    conn.init()
    kept: list[Any] = []
    thread = threading.Thread(target=lambda: kept.append(w.handle(conn)))
    request = b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"
    peer.settimeout(10)
    answers = peer.makefile("rb")
    try:
        thread.start()
        for _ in range(3):
            peer.sendall(request)
            assert _response(answers) == (b"200", b"ok")  # a timeout here: the thread did not linger
        assert thread.is_alive() and w.nr == 3  # still waiting on the connection for a fourth
        w._stopping.put()
        thread.join(10)
        assert kept == [True]  # the connection goes back to gthread's poller, kept
    finally:
        w._stopping.put()
        answers.close()
        peer.close()
        ours.close()
        w.tmp.close()  # the heartbeat file gunicorn's Worker opens
        for fd in (w._stopping.r, w._stopping.w, w._yield.r, w._yield.w):
            os.close(fd)


def test_gunicorn_floor() -> None:
    check_gunicorn()  # the installed one
    check_gunicorn(GUNICORN_MIN)
    check_gunicorn((27, 0, 1))
    with pytest.raises(RuntimeError, match=r"needs gunicorn >= 24\.0\.0 .* found 23\.0\.0"):
        check_gunicorn((23, 0, 0))


def test_a_newer_major_gunicorn_is_warned_about(monkeypatch: pytest.MonkeyPatch) -> None:
    warnings: list[Any] = []
    log = SimpleNamespace(warning=lambda *a: warnings.append(a))
    LingeringThreadWorker.check_config(Config(), log)
    assert warnings == []
    monkeypatch.setattr(gunicorn, "version_info", (28, 0, 0))
    LingeringThreadWorker.check_config(Config(), log)
    assert len(warnings) == 1 and "newer than the versions tested" in warnings[0][0]


def test_gunicorn_too_old_refuses_to_start() -> None:
    """The extender's gunicorn command, on a gunicorn that says it is 23.0.0: it exits at once
    with the reason instead of serving without the linger."""
    code = (
        "import sys, gunicorn; gunicorn.version_info = (23, 0, 0); from gunicorn.app.wsgiapp import run;"
        f" sys.argv = ['gunicorn', *{list(GUNICORN_ARGS)!r}, '--bind', '127.0.0.1:0']; run()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done
    assert "needs gunicorn >= 24.0.0" in done.stderr, done.stderr
