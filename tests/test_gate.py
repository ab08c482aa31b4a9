"""CallGate: feeders (informers, publisher) step aside for scheduling calls, but never starve."""

from __future__ import annotations

import threading
import time
from typing import ClassVar

import pytest

from extender.cache.gate import CallGate


def test_a_feeder_runs_freely_without_calls() -> None:
    gate = CallGate(quantum_s=0.0, max_wait_s=1.0)
    feeder = gate.feeder()
    t0 = time.monotonic()
    assert not any(feeder() for _ in range(1000))
    assert time.monotonic() - t0 < 0.5 and feeder.waits == 0


def test_a_feeder_waits_for_the_call_to_end() -> None:
    gate = CallGate(quantum_s=0.0, max_wait_s=5.0)
    feeder = gate.feeder()
    entered, release = threading.Event(), threading.Event()

    def call() -> None:
        with gate.call():
            entered.set()
            release.wait(5)

    t = threading.Thread(target=call)
    t.start()
    entered.wait(5)
    threading.Timer(0.2, release.set).start()
    t0 = time.monotonic()
    assert feeder() is True
    waited = time.monotonic() - t0
    t.join()
    assert 0.15 <= waited < 4.0  # until the call ended, not until max_wait_s
    assert not gate.busy() and feeder() is False


def test_under_back_to_back_calls_a_feeder_keeps_its_quantum() -> None:
    """At most max_wait_s per step aside, and after a wait a whole quantum without waiting:
    the cache keeps a share of the interpreter however busy the scheduler is."""
    clock = [0.0]
    gate = CallGate(quantum_s=0.002, max_wait_s=0.001, clock=lambda: clock[0])
    feeder = gate.feeder()
    with gate.call():  # a call that never ends
        assert feeder() is True  # first step with a call in flight: steps aside (max 1 ms)
        clock[0] += 0.001
        assert feeder() is False  # inside its quantum
        clock[0] += 0.0015
        assert feeder() is True  # quantum used up: steps aside again
    assert feeder.waits == 2


def test_nested_and_concurrent_calls_keep_the_gate_busy_until_the_last_ends() -> None:
    gate = CallGate()
    with gate.call():
        with gate.call():
            assert gate.busy()
        assert gate.busy()
    assert not gate.busy()
    with pytest.raises(ValueError):
        CallGate(max_wait_s=0)


def test_each_step_aside_is_reported() -> None:
    gate = CallGate(quantum_s=0.0, max_wait_s=0.001)
    seen: list[int] = []
    feeder = gate.feeder(on_wait=lambda: seen.append(1))
    with gate.call():
        assert feeder() and feeder()
    assert not feeder()
    assert len(seen) == 2 == feeder.waits


def test_gated_paths_hold_the_gate_until_the_answer_is_closed() -> None:
    """The middleware enters the gate for the listed paths only, and leaves it when the server
    closes the response (after writing it), also when the application raises."""
    from extender.cache.gate import GatedPaths

    gate = CallGate()
    seen: list[bool] = []

    def app(environ: dict, start_response: object) -> list[bytes]:
        seen.append(gate.busy())
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("boom")
        return [b"answer"]

    wrapped = GatedPaths(app, gate, ["/filter", "/boom"])
    body = wrapped({"PATH_INFO": "/filter"}, None)
    assert seen == [True] and gate.busy()  # still busy while the server writes the answer
    assert list(body) == [b"answer"] and gate.busy()
    body.close()
    assert not gate.busy()
    wrapped({"PATH_INFO": "/metrics"}, None)
    assert seen[-1] is False
    with pytest.raises(RuntimeError):
        wrapped({"PATH_INFO": "/boom"}, None)
    assert seen[-1] is True and not gate.busy()


def test_the_app_gates_the_scheduling_verbs_only() -> None:
    """filter and prioritize are answered with the gate held (the cache's feeders step aside),
    and it is let go once the answer is closed; bind and the probes are not gated."""
    from pathlib import Path

    from extender.server.app import create_app
    from extender.settings import Settings
    from extender.verbs.source import StatelessSource

    class Spy(StatelessSource):
        gate: CallGate | None = None
        seen: ClassVar[list[bool]] = []

        def candidates(self, request, resources):
            assert self.gate is not None
            self.seen.append(self.gate.busy())
            return super().candidates(request, resources)

    source = Spy(clock=time.time)
    app = create_app(Settings(api_access=False), source=source)
    source.gate = gate = app.extensions["extender"]["gate"]
    body = (Path(__file__).parent / "golden" / "filter-nodes.request.json").read_bytes()
    client = app.test_client()
    for verb in ("filter", "prioritize"):
        with client.post(f"/{verb}", data=body) as r:
            assert r.status_code == 200 and source.seen[-1] is True
            r.get_data()
        assert not gate.busy()
    assert len(source.seen) == 2
    with client.get("/readyz") as r:
        assert r.status_code == 200 and not gate.busy()
