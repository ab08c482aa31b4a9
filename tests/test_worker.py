"""The gunicorn worker class (extender/server/worker.py): a pool thread stays on its connection for the
next request, without ever holding up a request on another connection."""

from __future__ import annotations

import http.client
import io
import socket
import threading
import time
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
from gunicorn.workers.gthread import ThreadWorker

from extender.server.worker import LingeringThreadWorker, _Pipe
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

class _Calls:
    """Stands in for ThreadWorker.handle: reads one request's bytes, says keep-alive."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, conn: Any) -> Any:  # an instance attribute of the class: not bound
        self.count += 1
        conn.sock.recv(100)
        return True


def _worker(threads: int, linger_s: float, busy: int = 0) -> LingeringThreadWorker:
    w = LingeringThreadWorker.__new__(LingeringThreadWorker)  # no gunicorn arbiter here
    w._lock, w._busy, w._queued, w._lingering = threading.Lock(), busy, 1, 0  # noqa: SLF001
    w._stopping, w._yield = _Pipe(), _Pipe()  # noqa: SLF001
    w._stopping.open()  # noqa: SLF001
    w._yield.open()  # noqa: SLF001
    w.linger_s, w.alive = linger_s, True
    w.cfg = SimpleNamespace(threads=threads)
    return w


@pytest.fixture()
def conn_pair(monkeypatch: pytest.MonkeyPatch) -> Any:
    calls = _Calls()
    monkeypatch.setattr(ThreadWorker, "handle", calls)
    ours, peer = socket.socketpair()
    conn = SimpleNamespace(sock=ours, parser=SimpleNamespace(unreader=SimpleNamespace(buf=io.BytesIO())))
    yield conn, peer, calls
    ours.close()
    peer.close()


def test_the_answering_thread_serves_the_next_request(conn_pair: Any) -> None:
    conn, peer, calls = conn_pair
    w = _worker(threads=4, linger_s=0.5)
    peer.send(b"first")
    timer = threading.Timer(0.1, peer.send, (b"second",))  # arrives while the thread lingers
    timer.start()
    t0 = time.monotonic()
    assert w.handle(conn) is True
    timer.join()
    assert calls.count == 2
    assert time.monotonic() - t0 >= 0.5  # then it waited its linger for a third, in vain
    assert w._busy == 0  # noqa: SLF001


def test_no_linger_when_it_would_take_the_last_free_thread(conn_pair: Any) -> None:
    conn, peer, calls = conn_pair
    w = _worker(threads=4, linger_s=5.0, busy=3)  # three others busy: this is the last one
    peer.send(b"first")
    peer.send(b"second")  # already waiting: still not served by this thread
    t0 = time.monotonic()
    assert w.handle(conn) is True
    assert calls.count == 1 and time.monotonic() - t0 < 1.0


def test_no_linger_when_off_or_stopping(conn_pair: Any) -> None:
    conn, peer, calls = conn_pair
    for w in (_worker(threads=4, linger_s=0.0), _worker(threads=4, linger_s=5.0)):
        if w.linger_s:
            w.alive = False
        calls.count = 0
        peer.send(b"x")
        t0 = time.monotonic()
        assert w.handle(conn) is True and calls.count == 1
        assert time.monotonic() - t0 < 1.0  # a stopping worker's thread does not wait its 5 s


def test_a_stopping_worker_ends_the_linger_at_once(conn_pair: Any) -> None:
    """SIGTERM writes the stop pipe: a thread lingering on an idle connection returns it at
    once (to gthread's graceful stop) instead of after its linger."""
    conn, peer, calls = conn_pair
    w = _worker(threads=4, linger_s=5.0)
    peer.send(b"first")

    def stop() -> None:
        w.alive = False
        w._stopping.put()  # noqa: SLF001 - what handle_exit does after gthread's own

    timer = threading.Timer(0.2, stop)
    timer.start()
    t0 = time.monotonic()
    assert w.handle(conn) is True
    timer.join()
    assert calls.count == 1 and time.monotonic() - t0 < 2.0


def test_a_lingering_thread_gives_way_to_a_waiting_request(conn_pair: Any) -> None:
    conn, peer, calls = conn_pair
    w = _worker(threads=4, linger_s=5.0)
    peer.send(b"first")
    timer = threading.Timer(0.2, w._yield.put)  # noqa: SLF001 - what enqueue_req does when starved
    timer.start()
    t0 = time.monotonic()
    assert w.handle(conn) is True
    timer.join()
    assert calls.count == 1 and time.monotonic() - t0 < 2.0
    assert not w._yield.take()  # noqa: SLF001 - the byte was taken by the thread that gave way


@pytest.mark.parametrize(("busy", "lingering", "starved"), [
    (4, 1, True),  # every thread busy, one of them lingering: it must give way
    (3, 1, False),  # a thread is free for the request
    (4, 0, False),  # all busy serving: nobody to ask (no stale wake-up left behind)
])
def test_queueing_a_request_asks_a_lingerer_only_when_no_thread_is_free(
        monkeypatch: pytest.MonkeyPatch, busy: int, lingering: int, starved: bool) -> None:
    monkeypatch.setattr(ThreadWorker, "enqueue_req", lambda self, conn: None)  # no pool here
    w = _worker(threads=4, linger_s=1.0, busy=busy)
    w._queued, w._lingering = 0, lingering  # noqa: SLF001
    w.enqueue_req(object())
    assert w._yield.take() is starved  # noqa: SLF001
    assert w._queued == 1  # noqa: SLF001


def test_buffered_bytes_are_served_without_waiting(conn_pair: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bytes of the next request the parser already read count as a request waiting."""
    conn, peer, calls = conn_pair
    w = _worker(threads=4, linger_s=0.3)
    peer.send(b"a")

    def handle(worker: Any, c: Any) -> bool:
        calls.count += 1
        if calls.count == 1:  # the first request read, and the start of the next with it
            c.sock.recv(100)
            c.parser.unreader.buf = io.BytesIO(b"GET / HTTP/1.1\r\n")
        else:  # the second consumed the buffered bytes: nothing waits any more
            c.parser.unreader.buf = io.BytesIO()
        return True

    monkeypatch.setattr(ThreadWorker, "handle", handle)
    w.handle(conn)
    assert calls.count == 2


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
        assert w.alive is False and w._stopping.take()  # noqa: SLF001


def test_a_request_with_no_free_thread_makes_a_lingerer_give_way() -> None:
    """Four threads: three linger on idle connections, the fourth is held by a client that
    sends its headers and not its body. A request on a fifth connection has no free thread;
    the main thread has a lingerer give way, so it is answered at once, not after a linger."""
    with running_extender("--no-api", "--threads", "4", env={"EXTENDER_LINGER_S": LINGER}) as url:
        idle = [_connect(url) for _ in range(3)]
        late = _connect(url)
        u = urlsplit(url)
        slow: socket.socket | None = None
        try:
            for conn in idle:
                _get(conn)  # each leaves a thread lingering on it (3 of 4: one stays free)
            slow = socket.create_connection((u.hostname, u.port), timeout=10)  # after: the last thread
            slow.sendall(b"POST /filter HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n")  # the free thread now waits for a body
            time.sleep(0.3)
            assert _get(late) < 1.5  # without giving way: ~3 s, until a linger ran out
        finally:
            if slow is not None:
                slow.close()
            late.close()
            for conn in idle:
                conn.close()
