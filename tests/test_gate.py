"""CallGate: feeders (informers, publisher) step aside for scheduling calls, but never starve."""

from __future__ import annotations

import threading
import time

import pytest

from extender.gate import CallGate


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
