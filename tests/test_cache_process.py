"""The cluster cache in a process of its own (EXTENDER_CACHE_PROCESS): what happens when either
process dies. The answers themselves are tested in both layouts by tests/test_cache_mode.py."""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.harness import Server, children_of, running_server
from extender.cache import process
from extender.cache.process import CacheProcess
from extender.metrics import Metrics
from extender.settings import Settings
from extender.verbs.source import CacheNotReady
from tests.conftest import write_kubeconfig
from tests.kubeapi import FakeKubeAPI
from tests.test_cache_mode import args, bind, call, metric, node_obj, pod_obj, wait_ready

ENV = {"EXTENDER_CACHE_PROCESS": "true"}


def cache_pid(worker: int) -> int:
    """The worker's spawned child (multiprocessing's resource tracker is not: it is not spawned
    by ``Process``, and runs ``resource_tracker``)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for pid in children_of(worker):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                return pid
        time.sleep(0.1)
    raise AssertionError(f"no cache process under worker {worker}")


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@contextlib.contextmanager
def serving(api: FakeKubeAPI, tmp_path: Path, env: dict[str, str]) -> Iterator[Server]:
    """The extender under gunicorn, its cache fed by ``api``, once ready."""
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
    with running_server("--kubeconfig", str(kubeconfig), env=env) as server:
        wait_ready(server.ops_url)
        yield server


def child_metric(ops: str, name: str, labels: str = "") -> float:
    """A sample the cache process exports: a scrape appends the child's part only when it
    answers within 0.5 s (a scrape never waits on it longer), which a loaded machine can miss;
    polled until a scrape has it."""
    deadline = time.monotonic() + 20
    while (value := metric(ops, name, labels)) is None:
        assert time.monotonic() < deadline, f"{name}{labels} never exported"
        time.sleep(0.2)
    return value


def wait_until(check, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.timeout(120)
def test_a_dead_cache_process_is_replaced_and_binds_go_on_meanwhile(api: FakeKubeAPI, tmp_path: Path) -> None:
    api.add_node(node_obj("n0"))
    api.add_node(node_obj("n1"))
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
    with running_server("--kubeconfig", str(kubeconfig), env=ENV) as server:
        url, ops = server.url, server.ops_url  # verbs; probes and metrics
        wait_ready(ops)
        status, text = call(f"{ops}/readyz")
        assert "2 nodes, 0 pods (cache process)" in text
        assert child_metric(ops, "extender_informer_events_total", '{kind="nodes",what="relist"}') == 1
        _, text = call(f"{ops}/metrics")
        families = re.findall(r"^# TYPE (\S+)", text, re.M)
        assert len(families) == len(set(families)), "a metric family exported twice"
        assert {"extender_cache_snapshot_age_seconds", "process_resident_memory_bytes"} <= set(families)
        assert child_metric(ops, "extender_cache_process_resident_memory_bytes") > 10e6  # the child's own
        assert metric(ops, "extender_cache_snapshot_age_seconds") < 30
        worker = server.worker_pid()
        assert worker is not None
        first = cache_pid(worker)
        # the API server stops answering lists: the new child cannot sync while we look
        api.fail("GET", r"/api/v1/pods$", status=500, times=10**6)
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: call(f"{ops}/readyz")[0] == 503)
        status, text = call(f"{ops}/readyz")
        assert "the cache process exited (code -9)" in text
        status, answer = call(f"{url}/filter", args(pod_obj("p"), ["n0"]))
        assert status == 200 and "cache process exited" in answer["Error"]
        # a bind goes through the API without the cache's checks (the UID precondition stands)
        uid = api.add_pod(pod_obj("web"))["metadata"]["uid"]
        assert bind(url, "web", uid, "n1") == {"Error": ""}
        assert api.get_pod("default", "web")["spec"]["nodeName"] == "n1"
        assert server.worker_pid() == worker  # the serving process stayed
        api.clear_faults()
        wait_ready(ops, timeout=40)
        second = cache_pid(worker)
        assert second != first and not alive(first)
        status, text = call(f"{ops}/readyz")
        assert "2 nodes, 1 pods" in text  # the new child listed the pod bound meanwhile
        status, answer = call(f"{url}/filter", args(pod_obj("p"), ["n0", "n1"]))
        assert status == 200 and answer["NodeNames"] == ["n0", "n1"], answer
        assert bind(url, "web", uid, "n0")["Error"].startswith("pod default/web is already bound to node n1")
        restarts = "extender_cache_child_restarts_total"
        assert metric(ops, restarts, '{reason="exited"}') == 1
        assert (
            metric(ops, restarts, '{reason="unresponsive"}')
            == metric(ops, restarts, '{reason="start_failed"}')
            == 0
        )


@pytest.mark.timeout(120)
def test_the_cache_process_ends_with_its_serving_process(api: FakeKubeAPI, tmp_path: Path) -> None:
    api.add_node(node_obj("n0"))
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
    with running_server("--kubeconfig", str(kubeconfig), env=ENV) as server:
        wait_ready(server.ops_url)
        worker = server.worker_pid()
        assert worker is not None
        child = cache_pid(worker)
        os.kill(worker, signal.SIGKILL)  # gunicorn starts a new worker, which starts a new child
        wait_until(lambda: not alive(child))
        wait_until(lambda: server.worker_pid() not in (None, worker))
        wait_ready(server.ops_url, timeout=40)
        assert cache_pid(server.worker_pid()) != child
        dirs = re.findall(r"cache process started: pid=\d+ snapshots=(\S+)", server.log_tail(100_000))
        assert len(dirs) == 2 and all(Path(d).is_dir() for d in dirs[-1:])
    assert not alive(child)
    # the first child removed its worker's directory when that worker died; the second
    # worker removed its own at exit
    assert not any(Path(d).exists() for d in dirs)


class _StartFails:
    """A multiprocessing context whose first ``times`` ``Process`` objects cannot be started."""

    def __init__(self, real: Any, times: int) -> None:
        self._real = real
        self._times = times
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def Process(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 - multiprocessing's name
        made = self._real.Process(*args, **kwargs)
        if self.failures < self._times:
            self.failures += 1

            def refuse() -> None:
                raise OSError("injected: cannot start the cache process")

            made.start = refuse
        return made


@pytest.mark.timeout(90)
def test_a_child_that_cannot_be_started_is_tried_again(
    api: FakeKubeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # issue 17: an exception from starting a child ended the receiver thread: no cache, for good
    api.add_node(node_obj("n0"))
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
    monkeypatch.setattr(process, "RESTART_BACKOFF_S", (0.05, 0.2))
    metrics = Metrics(mode="cache", cache=False)
    cache = CacheProcess(Settings(kubeconfig=str(kubeconfig)), metrics=metrics)
    ctx = cache._ctx = _StartFails(cache._ctx, times=3)
    with caplog.at_level(logging.ERROR, logger="extender.cache"):
        cache.start()
        try:
            wait_until(lambda: "could not be started" in cache.readiness()[1], timeout=10)
            wait_until(lambda: cache.readiness()[0], timeout=60)  # a later child synced
            assert "1 nodes, 0 pods (cache process)" in cache.readiness()[1]
        finally:
            cache.stop()
    assert ctx.failures == 3
    restarts = "extender_cache_child_restarts_total"
    assert metrics.registry.get_sample_value(restarts, {"reason": "start_failed"}) == 3
    assert any("injected: cannot start" in r.getMessage() for r in caplog.records)
    assert not cache._receiver.is_alive()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cache_process", ["true", "false"])
def test_a_cache_that_cannot_stay_current_turns_unready_then_not_live(
    cache_process: str, api: FakeKubeAPI, tmp_path: Path
) -> None:
    # issue 17: a cache whose watches could not resume stayed ready; one that never synced left
    # /livez 200 for ever, so the kubelet never restarted it
    api.add_node(node_obj("n0"))
    env = {
        "EXTENDER_CACHE_PROCESS": cache_process,
        "EXTENDER_CACHE_UNHEALTHY_S": "1",
        "EXTENDER_LIVENESS_UNREADY_S": "4",
    }
    with serving(api, tmp_path, env) as server:
        ops = server.ops_url  # probes and metrics
        assert call(f"{ops}/livez")[0] == 200
        api.fail("GET", r"^/api/v1/(nodes|pods)$", status=503, times=10**6)
        api.drop_watches()
        wait_until(lambda: call(f"{ops}/readyz")[0] == 503)
        _, text = call(f"{ops}/readyz")
        assert "no list or watch has succeeded for" in text
        assert call(f"{ops}/livez")[0] == 200  # a short outage: still live
        wait_until(lambda: call(f"{ops}/livez")[0] == 503)
        assert "not ready for" in call(f"{ops}/livez")[1]
        api.clear_faults()
        wait_ready(ops, timeout=60)
        assert call(f"{ops}/livez")[0] == 200


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cache_process", ["true", "false"])
def test_a_silent_watch_turns_the_service_unready_naming_the_informer_until_it_speaks(
    cache_process: str, api: FakeKubeAPI, tmp_path: Path
) -> None:
    # issue 17: the API server accepting the watches and then saying nothing (no event, no
    # bookmark, no end at timeoutSeconds) left /readyz 200 while the cache went stale
    api.add_node(node_obj("n0"))
    env = {"EXTENDER_CACHE_PROCESS": cache_process, "EXTENDER_WATCH_TIMEOUT_S": "1"}  # limit 2.5 s
    with serving(api, tmp_path, env) as server:
        ops = server.ops_url  # probes and metrics
        api.silence_watches(r"^/api/v1/pods$")
        api.drop_watches(r"^/api/v1/pods$")
        t_fault = time.monotonic()
        api.add_pod(pod_obj("missed", node="n0"))
        wait_until(lambda: call(f"{ops}/readyz")[0] == 503, timeout=15)
        t_unready = time.monotonic()
        _, text = call(f"{ops}/readyz")
        assert "informer-pods: no progress" in text, text
        assert call(f"{ops}/livez")[0] == 200
        api.release_watches()
        wait_ready(ops, timeout=15)
        t_ready = time.monotonic()
        # the pod added meanwhile (shipped by the cache process's next publisher round)
        wait_until(lambda: "1 nodes, 1 pods" in call(f"{ops}/readyz")[1], timeout=5)
        print(
            f"silent pods watch (cache process {cache_process}, watch timeout 1 s): unready after "
            f"{t_unready - t_fault:.1f} s, ready {t_ready - t_unready:.1f} s after the watch spoke again"
        )


@pytest.mark.timeout(120)
def test_a_stopped_cache_process_keeps_binds_inside_their_budget_and_turns_unready(
    api: FakeKubeAPI, tmp_path: Path
) -> None:
    # issue 17: with the child stopped (SIGSTOP), /readyz stayed 200 and concurrent binds queued
    # behind each other's calls to it (10, 12, 14, 16 s against the scheduler's 5 s)
    api.add_node(node_obj("n0"))
    env = {**ENV, "EXTENDER_THREADS": "8", "EXTENDER_BIND_TIMEOUT_S": "4"}
    with serving(api, tmp_path, env) as server:
        url, ops = server.url, server.ops_url  # verbs; probes and metrics
        uids = [api.add_pod(pod_obj(f"w{i}"))["metadata"]["uid"] for i in range(4)]
        worker = server.worker_pid()
        assert worker is not None
        child = cache_pid(worker)
        os.kill(child, signal.SIGSTOP)
        try:

            def timed_bind(i: int) -> tuple[float, dict[str, Any]]:
                start = time.monotonic()
                answer = bind(url, f"w{i}", uids[i], "n0")
                return time.monotonic() - start, answer

            with concurrent.futures.ThreadPoolExecutor(6) as pool:
                scrape = pool.submit(call, f"{ops}/metrics")
                binds = list(pool.map(timed_bind, range(4)))
                assert scrape.result()[0] == 200
            took = [round(t, 2) for t, _ in binds]
            assert all(answer == {"Error": ""} for _, answer in binds), binds
            print("bind seconds", took)
            assert max(took) < 4.0 + 0.5, took
            for i in range(4):
                assert api.get_pod("default", f"w{i}")["spec"]["nodeName"] == "n0"
            wait_until(lambda: call(f"{ops}/readyz")[0] == 503, timeout=5)
            assert "did not answer" in call(f"{ops}/readyz")[1]
            assert call(f"{ops}/livez")[0] == 200  # liveness follows the unready time
        finally:
            os.kill(child, signal.SIGCONT)
        wait_ready(ops, timeout=20)


@pytest.mark.timeout(120)
def test_a_stopped_cache_process_is_killed_by_the_heartbeat_and_replaced_without_any_call(
    api: FakeKubeAPI, tmp_path: Path
) -> None:
    # issue 17: a stopped (or deadlocked) child stayed, unready, until /livez restarted the
    # whole container 10 minutes later; only calls to it noticed it at all
    api.add_node(node_obj("n0"))
    with serving(api, tmp_path, {**ENV, "EXTENDER_CACHE_PROCESS_TIMEOUT_S": "3"}) as server:
        ops = server.ops_url  # probes and metrics
        worker = server.worker_pid()
        assert worker is not None
        child = cache_pid(worker)
        os.kill(child, signal.SIGSTOP)
        t_stop = time.monotonic()
        try:
            wait_until(lambda: call(f"{ops}/readyz")[0] == 503, timeout=10)
            t_unready = time.monotonic()
            assert "did not answer" in call(f"{ops}/readyz")[1]
            # from here on nobody calls the server: the serving process acts on its own
            wait_until(lambda: not alive(child), timeout=15)
            t_killed = time.monotonic()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGCONT)
        wait_ready(ops, timeout=30)
        t_ready = time.monotonic()
        assert cache_pid(worker) != child and server.worker_pid() == worker
        restarts = "extender_cache_child_restarts_total"
        assert metric(ops, restarts, '{reason="unresponsive"}') == 1
        assert metric(ops, restarts, '{reason="exited"}') == 0
        assert "answered nothing for" in server.log_tail(100_000)
        print(
            f"stopped cache process: unready after {t_unready - t_stop:.1f} s, killed after "
            f"{t_killed - t_stop:.1f} s (EXTENDER_CACHE_PROCESS_TIMEOUT_S=3), ready again "
            f"{t_ready - t_stop:.1f} s after the stop"
        )


def test_a_slow_call_to_the_child_does_not_hold_up_another(monkeypatch: pytest.MonkeyPatch) -> None:
    # a /metrics scrape's call used to hold the one pipe's lock while it waited, and a bind's
    # call waited behind it
    parent, child = multiprocessing.Pipe(duplex=True)
    cache = CacheProcess(Settings())
    cache._attach_rpc(parent)  # the pipe without a child process

    def fake_child() -> None:
        lock = threading.Lock()

        def answer(call_id: int, op: str) -> None:
            if op == "metrics":
                time.sleep(1.5)
            with lock, contextlib.suppress(OSError):  # closed: the test is over
                child.send((call_id, True, op))

        while True:
            try:
                call_id, op, _args = child.recv()
            except (EOFError, OSError):
                return
            threading.Thread(target=answer, args=(call_id, op), daemon=True).start()

    threading.Thread(target=fake_child, daemon=True).start()
    scrape = threading.Thread(target=cache.call, args=("metrics",), kwargs={"timeout_s": 2.0})
    scrape.start()
    time.sleep(0.1)
    start = time.monotonic()
    assert cache.call("pod_vectors", timeout_s=1.0) == "pod_vectors"
    assert time.monotonic() - start < 0.5
    scrape.join()
    # a call that gets no answer waits for its own deadline only
    start = time.monotonic()
    with pytest.raises(CacheNotReady, match="did not answer"):
        cache.call("metrics", timeout_s=0.3)
    assert time.monotonic() - start < 0.6
    parent.close()
    child.close()
