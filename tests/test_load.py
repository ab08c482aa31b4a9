"""Live load windows and their pollers (metrics-server, Prometheus) against real HTTP servers."""

from __future__ import annotations

import json
import logging
import math
import random
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes import client

from extender.kube.timestamps import parse_rfc3339
from extender.load import window as load
from extender.load.metrics_server import MetricsServerSource
from extender.load.prometheus import DEFAULT_PROM_QUERIES, PrometheusSource, PromQuery, default_prom_queries
from extender.load.sources import parse_load_sources
from extender.load.window import LoadWindow
from tests.kubeapi import FakeKubeAPI

RES = ("cpu", "memory")
METRICS = r"^/apis/metrics\.k8s\.io/v1beta1/nodes$"
QUERY = r"^/api/v1/query$"
NAN = math.nan


# ---- a plain-Python model of the window ------------------------------------------------------


class Reference:
    """What LoadWindow promises, written the slow obvious way."""

    def __init__(self, max_samples: int, window_s: float) -> None:
        self.max_samples = max_samples
        self.window_s = window_s
        self.rings: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
        self.last: dict[tuple[str, str, str], float] = {}
        self.nodes: set[str] = set()

    def record(self, node: str, t: float, values: dict[str, float], source: str) -> None:
        for res, v in values.items():
            if res not in RES or not (v >= 0 and math.isfinite(v)):
                continue
            self.nodes.add(node)
            if t <= self.last.get((node, res, source), -math.inf):
                continue
            ring = self.rings[(node, res)]
            if len(ring) < self.max_samples:
                ring.append((t, v))
            else:
                oldest = min(range(len(ring)), key=lambda i: ring[i][0])
                if ring[oldest][0] > t:
                    continue
                ring[oldest] = (t, v)
            self.last[(node, res, source)] = t

    def forget(self, node: str) -> None:
        self.nodes.discard(node)
        for key in [k for k in self.rings if k[0] == node]:
            del self.rings[key]
        for key in [k for k in self.last if k[0] == node]:
            del self.last[key]

    def inside(self, node: str, res: str, now: float) -> list[tuple[float, float]]:
        return [(t, v) for t, v in self.rings.get((node, res), []) if t >= now - self.window_s]

    def stats(self, node: str, res: str, now: float) -> tuple[float, float, float, float]:
        """latest, mean, population std, p95 (numpy's linear interpolation, by hand)."""
        samples = self.inside(node, res, now)
        if not samples:
            return NAN, NAN, NAN, NAN
        values = [v for _, v in samples]
        n = len(values)
        latest = max(samples)[1]
        mean = math.fsum(values) / n
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / n) if n >= 2 else NAN
        ordered = sorted(values)
        pos = (n - 1) * 0.95
        lo = math.floor(pos)
        hi = min(lo + 1, n - 1)
        p95 = ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
        return latest, mean, std, p95

    def newest(self, node: str, now: float) -> float:
        times = [t for res in RES for t, _ in self.inside(node, res, now)]
        return max(times, default=-math.inf)


def check_view(w: LoadWindow, ref: Reference, names: list[str], now: float) -> None:
    asked = ("memory", "gpu", "cpu")  # order differs from the window's; gpu is not tracked
    view = w.view(names + ["ghost"], asked, now)
    assert view.usage.shape == (len(names) + 1, 3) and view.newest.shape == (len(names) + 1,)
    for i, node in enumerate(names):
        assert view.newest[i] == ref.newest(node, now)
        for j, res in enumerate(asked):
            got = (view.usage[i, j], view.usage_avg[i, j], view.usage_std[i, j], view.usage_p95[i, j])
            if res == "gpu":
                assert all(math.isnan(x) for x in got)
                continue
            latest, mean, std, p95 = ref.stats(node, res, now)
            scale = max((abs(v) for _, v in ref.inside(node, res, now)), default=1.0)
            assert got[0] == latest or (math.isnan(got[0]) and math.isnan(latest))
            assert got[1] == pytest.approx(mean, rel=1e-12, abs=1e-12 * scale, nan_ok=True)
            assert got[2] == pytest.approx(std, rel=1e-9, abs=1e-9 * scale, nan_ok=True)
            assert got[3] == pytest.approx(p95, rel=1e-12, abs=1e-12 * scale, nan_ok=True)
            values = [v for _, v in ref.inside(node, res, now)]
            if values:  # bit-for-bit numpy's default percentile
                assert got[3] == np.percentile(values, 95)
    ghost = len(names)
    assert np.isnan(view.usage[ghost]).all() and view.newest[ghost] == -math.inf


_values = st.one_of(
    st.integers(0, 2**40).map(float),
    st.floats(0, 1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 7.0, 1e12]),  # ties
    st.sampled_from([-1.0, NAN, math.inf]),  # rejected
)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    max_samples = draw(st.integers(1, 10))
    window_s = draw(st.sampled_from([5.0, 30.0, 100.0, 1000.0]))
    ops: list[tuple[Any, ...]] = []
    for node in range(draw(st.integers(1, 4))):
        for t in draw(st.lists(st.integers(0, 300), max_size=25, unique=True)):  # unique: no ties in time
            present = draw(st.sets(st.sampled_from(RES + ("gpu",)), min_size=1))
            values = {res: draw(_values) for res in present}
            ops.append(("record", f"n{node}", float(t), values, draw(st.sampled_from(["a", "b"]))))
    ops = list(draw(st.permutations(ops)))
    _nows = st.one_of(st.integers(-10, 1400).map(float), st.floats(-10, 1400))
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["view", "refresh", "forget"]))
        arg: Any = f"n{draw(st.integers(0, 3))}" if kind == "forget" else draw(_nows)
        ops.insert(draw(st.integers(0, len(ops))), (kind, arg))
    return {"max_samples": max_samples, "window_s": window_s, "ops": ops, "now": draw(_nows)}


# ---- LoadWindow ------------------------------------------------------------------------------


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_statistics_match_a_plain_python_reference(sc: dict[str, Any]) -> None:
    w = LoadWindow(RES, window_s=sc["window_s"], max_samples=sc["max_samples"], initial_nodes=1)
    ref = Reference(sc["max_samples"], sc["window_s"])
    names = [f"n{i}" for i in range(4)]
    for op in sc["ops"]:
        if op[0] == "record":
            _, node, t, values, source = op
            w.record(node, t, values, source=source)
            ref.record(node, t, values, source)
        elif op[0] == "view":  # also moves the cache's cutoff back and forth
            check_view(w, ref, names, op[1])
        elif op[0] == "refresh":
            w.refresh(op[1])
        else:
            w.forget(op[1])
            ref.forget(op[1])
    check_view(w, ref, names, sc["now"])
    w.refresh(sc["now"])
    check_view(w, ref, names, sc["now"])
    all_names, everything = w.view_all(sc["now"])
    assert set(all_names) == ref.nodes
    again = w.view(list(all_names), RES, sc["now"])
    np.testing.assert_array_equal(everything.usage_p95, again.usage_p95)
    np.testing.assert_array_equal(everything.newest, again.newest)
    for node in names:
        retained = [t for res in RES for t, _ in ref.rings.get((node, res), [])]
        assert w.newest_sample_time(node) == (max(retained) if retained else None)


def test_window_expiry_is_inclusive_at_the_cutoff() -> None:
    w = LoadWindow(window_s=60.0)
    for t, cpu in ((100.0, 10.0), (130.0, 20.0), (160.0, 60.0)):
        w.record("a", t, {"cpu": cpu, "memory": 1.0}, source="s")
    v = w.view(["a"], ["cpu"], now=160.0)  # cutoff 100: all three
    assert v.usage[0, 0] == 60.0 and v.usage_avg[0, 0] == 30.0 and v.newest[0] == 160.0
    v = w.view(["a"], ["cpu"], now=160.5)  # 100 left the window
    assert v.usage_avg[0, 0] == 40.0 and v.usage_std[0, 0] == 20.0
    v = w.view(["a"], ["cpu"], now=219.0)  # one sample: no std
    assert v.usage_avg[0, 0] == 60.0 and math.isnan(v.usage_std[0, 0]) and v.usage_p95[0, 0] == 60.0
    v = w.view(["a"], ["cpu"], now=220.5)  # nothing left
    assert math.isnan(v.usage[0, 0]) and math.isnan(v.usage_avg[0, 0]) and v.newest[0] == -math.inf
    assert w.newest_sample_time("a") == 160.0  # still retained, just outside the window
    v = w.view(["a"], ["cpu"], now=160.0)  # and a view back in time sees them again
    assert v.usage_avg[0, 0] == 30.0


def test_repeated_polls_are_deduplicated_per_source() -> None:
    w = LoadWindow(window_s=100.0)
    w.record("a", 10.0, {"cpu": 1.0, "memory": 5.0}, source="metrics-server")
    w.record("a", 10.0, {"cpu": 1.0, "memory": 5.0}, source="metrics-server")  # same scrape again
    w.record("a", 9.0, {"cpu": 7.0}, source="metrics-server")  # older than the newest: ignored
    w.record("a", 10.0, {"cpu": 3.0}, source="annotations")  # another source: kept
    v = w.view(["a"], RES, now=20.0)
    assert v.usage_avg[0].tolist() == [2.0, 5.0]
    status = w.sources()
    assert status["metrics-server"].samples_total == 2 and status["metrics-server"].duplicates_total == 3
    assert status["annotations"].samples_total == 1 and status["annotations"].nodes == 1


def test_invalid_values_are_ignored_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    w = LoadWindow()
    with caplog.at_level(logging.WARNING, logger="extender.load"):
        w.record("a", 1.0, {"cpu": -5.0, "memory": NAN}, source="s")
        w.record("a", NAN, {"cpu": 5.0}, source="s")
        w.record("b", 1.0, {"cpu": math.inf, "memory": "x"}, source="s")  # type: ignore[dict-item]
    assert w.sources()["s"].rejected_total == 5 and w.sources()["s"].samples_total == 0
    assert w.view_all(2.0)[0] == ()  # no accepted value, no row
    assert len([r for r in caplog.records if "invalid value" in r.getMessage()]) == 1  # rate-limited


def test_forget_drops_the_node_and_reuses_its_row() -> None:
    w = LoadWindow(initial_nodes=2)
    w.record("a", 1.0, {"cpu": 1.0}, source="s")
    w.record("b", 1.0, {"cpu": 2.0}, source="s")
    w.forget("a")
    w.forget("nobody")
    assert w.newest_sample_time("a") is None and w.nodes() == ("b",)
    assert math.isnan(w.view(["a"], ["cpu"], 2.0).usage[0, 0])
    w.record("c", 1.0, {"cpu": 3.0}, source="s")  # takes a's row
    w.record("a", 1.0, {"cpu": 4.0}, source="s")  # a is new again: not a duplicate
    v = w.view(["a", "b", "c"], ["cpu"], 2.0)
    assert v.usage[:, 0].tolist() == [4.0, 2.0, 3.0]
    assert w.sources()["s"].nodes == 3


def test_growth_beyond_the_initial_capacity() -> None:
    w = LoadWindow(window_s=1000.0, max_samples=4, initial_nodes=1)
    names = [f"node-{i}" for i in range(300)]
    for k in range(6):  # more samples than the ring holds: the oldest are overwritten
        w.record_many(
            "s", [(n, float(k), {"cpu": float(i + k), "memory": float(i)}) for i, n in enumerate(names)]
        )
    v = w.view(names, RES, now=10.0)
    i = np.arange(300.0)
    np.testing.assert_array_equal(v.usage[:, 0], i + 5)
    np.testing.assert_array_equal(v.usage_avg[:, 0], i + 3.5)  # samples 2..5
    np.testing.assert_array_equal(v.usage_avg[:, 1], i)
    np.testing.assert_array_equal(v.newest, np.full(300, 5.0))
    assert w.view_all(10.0)[0] == tuple(names)


def test_untracked_resources_and_unknown_nodes_are_nan() -> None:
    w = LoadWindow(("cpu",))
    w.record("a", 1.0, {"cpu": 1.0, "memory": 9.0, "nvidia.com/gpu": 1.0}, source="s")
    v = w.view(["a", "zz"], ["memory", "cpu"], 2.0)
    assert np.isnan(v.usage[:, 0]).all() and v.usage[0, 1] == 1.0 and math.isnan(v.usage[1, 1])
    assert v.newest.tolist() == [1.0, -math.inf]
    assert v.usage.flags.f_contiguous
    assert w.view([], ["cpu"], 2.0).usage.shape == (0, 1)


def test_a_refreshed_cache_serves_the_next_expiry_without_recomputing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = LoadWindow(window_s=95.0, max_samples=16)
    names = tuple(f"n{i}" for i in range(50))
    for t in range(10):
        w.record_many(
            "s",
            [(n, float(t), {"cpu": float(t * i), "memory": 1.0}) for i, n in enumerate(names)],
            now=float(t),
        )
    w.refresh(100.0)  # cutoff 5: samples 5..9
    calls: list[int] = []
    real = load._stats

    def counting(*args: Any) -> Any:
        calls.append(len(args[0]))
        return real(*args)

    monkeypatch.setattr(load, "_stats", counting)
    before = w.view(names, RES, 100.0)
    after = w.view(names, RES, 100.5)  # sample 5 left the window: the precomputed next state
    assert calls == []
    np.testing.assert_array_equal(before.usage_avg[:, 0], np.arange(50) * 7.0)
    np.testing.assert_array_equal(after.usage_avg[:, 0], np.arange(50) * 7.5)
    w.view(names, RES, 101.5)  # the state after that one was not precomputed: recomputed once
    w.view(names, RES, 101.5)
    assert sum(calls) == 100


def test_concurrent_writer_and_readers_see_consistent_snapshots() -> None:
    w = LoadWindow(window_s=1e9, max_samples=8, initial_nodes=2)
    names = tuple(f"n{i}" for i in range(40))
    stop = threading.Event()
    failures: list[str] = []
    views = [0]

    def writer() -> None:
        k = 0
        while not stop.is_set():
            k += 1  # each node's cpu and memory arrive in one call, value == time == k
            w.record_many(
                "s", [(n, float(k), {"cpu": float(k), "memory": float(k)}) for n in names], now=float(k)
            )
            if k % 7 == 0:
                w.forget(names[k % len(names)])
            if k % 5 == 0:
                w.refresh(float(k))

    def reader() -> None:
        newest = np.full(len(names), -math.inf)
        while not stop.is_set():
            v = w.view(names, RES, now=1e6)
            views[0] += 1
            if not np.array_equal(v.usage[:, 0], v.usage[:, 1], equal_nan=True):
                failures.append("cpu and memory of one record seen apart")
            if not np.array_equal(v.usage_avg[:, 0], v.usage_avg[:, 1], equal_nan=True):
                failures.append("averages apart")
            known = ~np.isnan(v.usage[:, 0])
            if not (
                np.array_equal(v.usage[known, 0], v.newest[known])
                and (v.usage_p95[known, 0] <= v.newest[known]).all()
            ):
                failures.append("latest is not the newest sample")
            if (v.newest[known] < newest[known]).any():
                failures.append("a view went back in time")
            newest = np.where(known, v.newest, newest)
            _, everything = w.view_all(1e6)
            if not np.array_equal(everything.usage[:, 0], everything.usage[:, 1], equal_nan=True):
                failures.append("view_all apart")

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(2)]
    for th in threads:
        th.start()
    time.sleep(0.7)
    stop.set()
    for th in threads:
        th.join(10)
    assert not failures, failures[:3]
    assert views[0] > 10


def test_view_of_10000_nodes_is_fast() -> None:
    """A smoke bound for the request path (the design target is well under 5 ms; the bound is
    loose so that a loaded CI machine does not fail it)."""
    w = LoadWindow(window_s=300.0, max_samples=64)
    names = tuple(f"node-{i:05d}" for i in range(10_000))
    for k in range(8):
        w.record_many(
            "s",
            [(n, 1000.0 + 15 * k, {"cpu": float(i % 997), "memory": float(k)}) for i, n in enumerate(names)],
            now=1000.0 + 15 * k,
        )
    w.refresh(1110.0)
    times = []
    for _ in range(15):
        start = time.perf_counter()
        w.view(list(names), RES, 1110.0)
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.05


def test_constructor_and_source_list_validation() -> None:
    for bad in ({"resources": ()}, {"resources": ("cpu", "cpu")}, {"window_s": 0.0}, {"max_samples": 0}):
        with pytest.raises(ValueError):
            LoadWindow(**bad)
    assert parse_load_sources("annotations, Metrics-Server,prometheus") == (
        "annotations",
        "metrics-server",
        "prometheus",
    )
    assert parse_load_sources("  ") == ()
    with pytest.raises(ValueError, match="'promethus'"):
        parse_load_sources("annotations,promethus")
    with pytest.raises(ValueError, match="listed twice"):
        parse_load_sources("prometheus,prometheus")
    with pytest.raises(ValueError, match="entry 2 is empty"):
        parse_load_sources("annotations,,prometheus")


def test_rfc3339_parsing() -> None:
    assert parse_rfc3339("2024-01-02T03:04:05Z") == 1704164645.0
    assert parse_rfc3339("2024-01-02T03:04:05.250000000Z") == 1704164645.25
    assert parse_rfc3339("2024-01-02T05:04:05+02:00") == 1704164645.0
    for bad in ("2024-01-02T03:04:05", "2024-01-02", "yesterday", ""):
        with pytest.raises(ValueError):
            parse_rfc3339(bad)


# ---- pollers: shared fixtures ------------------------------------------------------------------


# `api` (FakeKubeAPI) and `api_client` come from tests/conftest.py.


@pytest.fixture()
def closing() -> Iterator[Callable[[Any], Any]]:
    """Register pollers to be stopped (threads joined, connections closed) after the test."""
    made: list[Any] = []
    yield lambda poller: made.append(poller) or poller
    for poller in made:
        poller.stop()


class Calls:
    """An on_poll callback that remembers its calls."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []

    def __call__(self, source: str, ok: bool) -> None:
        self.seen.append((source, ok))


# ---- metrics-server ----------------------------------------------------------------------------


def test_metrics_server_samples_use_the_item_timestamps(
    api: FakeKubeAPI, api_client: client.ApiClient, closing: Callable[[Any], Any]
) -> None:
    api.set_node_metrics(
        {"node-a": {"cpu": "250m", "memory": "1Gi"}, "node-b": {"cpu": "123456789n", "memory": "2048Ki"}},
        window="20s",
    )
    w = LoadWindow()
    calls = Calls()
    src = closing(MetricsServerSource(api_client, w, timeout_s=2.0, on_poll=calls, clock=lambda: 5e9))
    before = time.time()
    assert src.poll_once() and src.synced and src.wait_synced(0)
    after = time.time()
    v = w.view(["node-a", "node-b"], RES, now=after)
    assert v.usage.tolist() == [[250.0, 1073741824.0], [124.0, 2097152.0]]
    for newest in v.newest:  # the item's timestamp (whole seconds), not the poll's clock
        assert newest == int(newest) and before - 1 <= newest <= after
    (req,) = api.requests("GET", METRICS)
    assert req.status == 200
    status = w.sources()["metrics-server"]
    assert status.last_success == 5e9 and status.nodes == 2 and status.samples_total == 4
    assert calls.seen == [("metrics-server", True)]


def test_metrics_server_malformed_items_are_skipped_and_counted(
    api: FakeKubeAPI,
    api_client: client.ApiClient,
    closing: Callable[[Any], Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    api.set_node_metrics(
        {
            "good": {"cpu": "1", "memory": "1Mi"},
            "bad-quantity": {"cpu": "1 core", "memory": "1Mi"},
            "no-usage": {},
            "wrong-type": {"cpu": ["1"], "memory": "1Mi"},  # type: ignore[dict-item]
            "negative": {"cpu": "-1", "memory": "1Mi"},  # parsed, then rejected by the window
        }
    )
    w = LoadWindow()
    src = closing(MetricsServerSource(api_client, w))
    with caplog.at_level(logging.WARNING, logger="extender.load"):
        assert src.poll_once()
    assert src.skipped_total == 3 and src.last_skipped == 3
    assert sorted(w.nodes()) == ["good", "negative"]
    assert w.sources()["metrics-server"].rejected_total == 1
    assert any("skipped 3 malformed" in r.getMessage() for r in caplog.records)


def test_metrics_server_errors_back_off_and_recover(
    api: FakeKubeAPI, api_client: client.ApiClient, closing: Callable[[Any], Any]
) -> None:
    api.set_node_metrics({"node-a": {"cpu": "1", "memory": "1Gi"}})
    w = LoadWindow()
    calls = Calls()
    src = closing(
        MetricsServerSource(
            api_client,
            w,
            timeout_s=0.5,
            on_poll=calls,
            backoff_base_s=2.0,
            backoff_max_s=5.0,
            rng=random.Random(7),
        )
    )
    api.fail("GET", METRICS, status=500)
    assert not src.poll_once()
    status = w.sources()["metrics-server"]
    assert "HTTP 500" in status.last_error and "injected fault" in status.last_error
    assert status.consecutive_failures == 1 and status.last_success is None and not src.synced
    assert 0.0 <= src.next_delay() <= 2.0
    api.delay("GET", METRICS, seconds=2.0)
    assert not src.poll_once()
    assert "timed out after 0.5s" in w.sources()["metrics-server"].last_error
    assert 0.0 <= src.next_delay() <= 4.0 and src.failures == 2
    api.drop("GET", METRICS)
    assert not src.poll_once()
    delays = [src.next_delay() for _ in range(200)]
    assert max(delays) <= 5.0 and min(delays) < 1.0 < max(delays)  # capped, fully jittered
    assert len(api.requests("GET", METRICS)) == 3  # urllib3 retries are off: one request per poll
    assert src.poll_once()
    status = w.sources()["metrics-server"]
    assert status.consecutive_failures == 0 and status.last_success is not None
    assert "timed out" not in status.last_error  # the last error is kept for reading
    assert src.next_delay() == src.interval_s
    assert calls.seen == [("metrics-server", False)] * 3 + [("metrics-server", True)]
    assert w.view(["node-a"], ["cpu"], time.time()).usage[0, 0] == 1000.0


def test_metrics_server_poller_thread_retries_until_synced(
    api: FakeKubeAPI, api_client: client.ApiClient, closing: Callable[[Any], Any]
) -> None:
    api.set_node_metrics({"node-a": {"cpu": "2", "memory": "1Gi"}})
    api.fail("GET", METRICS, status=503, times=3)
    w = LoadWindow()
    calls = Calls()
    src = closing(
        MetricsServerSource(
            api_client,
            w,
            interval_s=0.05,
            timeout_s=1.0,
            on_poll=calls,
            backoff_base_s=0.02,
            backoff_max_s=0.1,
        )
    )
    src.start()
    src.start()  # idempotent
    assert src.wait_synced(10)
    assert [ok for _, ok in calls.seen[:4]] == [False, False, False, True]
    assert api.wait_until(lambda: len(api.requests("GET", METRICS)) >= 6, timeout=10)  # keeps polling
    src.stop()
    n = len(api.requests("GET", METRICS))
    time.sleep(0.2)
    assert len(api.requests("GET", METRICS)) == n  # stopped
    assert w.view(["node-a"], ["cpu"], time.time()).usage[0, 0] == 2000.0


def test_a_crash_of_the_poll_loop_restarts_it_and_is_counted(
    api: FakeKubeAPI,
    api_client: client.ApiClient,
    closing: Callable[[Any], Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # issue 17: a failure outside poll_once (here: the delay) used to end the thread for good
    api.set_node_metrics({"node-a": {"cpu": "2", "memory": "1Gi"}})
    src = closing(
        MetricsServerSource(api_client, LoadWindow(), interval_s=0.05, backoff_base_s=0.02, backoff_max_s=0.1)
    )
    real_delay = src.next_delay
    crashes: list[int] = []

    def delay_once() -> float:
        if not crashes:
            crashes.append(1)
            raise RuntimeError("injected crash in the poll loop")
        return real_delay()

    monkeypatch.setattr(src, "next_delay", delay_once)
    restarts: list[str] = []
    src.on_thread_restart = restarts.append
    with caplog.at_level(logging.ERROR, logger="extender.load"):
        src.start()
        assert api.wait_until(lambda: len(api.requests("GET", METRICS)) >= 3, timeout=10)  # polls on
    assert restarts == ["load-metrics-server"] and src.thread_restarts == 1
    assert any("poll loop crashed" in r.getMessage() for r in caplog.records)


def test_metrics_server_poller_does_not_touch_the_callers_client(
    api: FakeKubeAPI, api_client: client.ApiClient, closing: Callable[[Any], Any]
) -> None:
    api_client.configuration.retries = 3
    closing(MetricsServerSource(api_client, LoadWindow()))
    assert api_client.configuration.retries == 3


# ---- Prometheus: FakeKubeAPI's /api/v1/query ------------------------------------------------------

QUERIES = {"cpu": PromQuery("cpu_busy", 1000.0), "memory": PromQuery("mem_used", 1.0)}


def series(labels: dict[str, str], t: float, value: str) -> dict[str, Any]:
    return {"metric": labels, "value": [t, value]}


def test_prometheus_node_label(api: FakeKubeAPI, closing: Callable[[Any], Any]) -> None:
    api.set_prom_result(
        "cpu_busy",
        [
            series({"node": "n1"}, 1700000000.5, "1.25"),
            series({"node": "n2"}, 1700000000.5, "0.5"),
            series({"instance": "x:9100"}, 1700000000.5, "3"),
        ],
    )  # no node label
    api.set_prom_result("mem_used", [series({"node": "n1", "job": "node-exporter"}, 1700000000.5, "1e9")])
    w = LoadWindow()
    calls = Calls()
    src = closing(PrometheusSource(api.url + "/", w, queries=QUERIES, timeout_s=2.0, on_poll=calls))
    assert src.poll_once() and src.synced
    v = w.view(["n1", "n2"], RES, now=1700000001.0)
    assert v.usage[0].tolist() == [1250.0, 1e9]
    assert v.usage[1, 0] == 500.0 and math.isnan(v.usage[1, 1])  # partial: n2 has no memory series
    assert v.newest.tolist() == [1700000000.5, 1700000000.5]  # the value's timestamp
    assert src.series_skipped["no_label"] == 1
    assert [e.query["query"] for e in api.requests("GET", QUERY)] == ["cpu_busy", "mem_used"]
    assert calls.seen == [("prometheus", True)]
    assert src.poll_once()  # the same evaluation again: deduplicated
    assert w.sources()["prometheus"].samples_total == 3


def test_prometheus_instance_label(api: FakeKubeAPI, closing: Callable[[Any], Any]) -> None:
    by_ip = {"10.0.0.7": "n7", "fd00::9": "n9"}
    api.set_prom_result(
        "cpu_busy",
        [
            series({"instance": "n1:9100"}, 100.0, "1"),  # a node name with a port
            series({"instance": "n2"}, 100.0, "2"),  # without a port
            series({"instance": "10.0.0.7:9100"}, 100.0, "7"),  # an IP: mapped
            series({"instance": "[fd00::9]:9100"}, 100.0, "9"),  # IPv6: mapped
            series({"instance": "10.0.0.8:9100"}, 100.0, "8"),  # an IP nobody knows: skipped
        ],
    )
    w = LoadWindow()
    src = closing(
        PrometheusSource(
            api.url, w, queries={"cpu": QUERIES["cpu"]}, node_label="instance", node_by_ip=by_ip.get
        )
    )
    assert src.poll_once()
    names, v = w.view_all(100.0)
    assert dict(zip(names, v.usage[:, 0].tolist(), strict=True)) == {
        "n1": 1000.0,
        "n2": 2000.0,
        "n7": 7000.0,
        "n9": 9000.0,
    }
    assert src.series_skipped["unmapped"] == 1


def test_prometheus_internal_ip_label(api: FakeKubeAPI, closing: Callable[[Any], Any]) -> None:
    addresses = {"10.0.0.1": "node-a", "10.0.0.2": "node-b"}
    seen: list[str] = []

    def node_by_ip(ip: str) -> str | None:
        seen.append(ip)
        return addresses.get(ip)

    api.set_prom_result(
        "mem_used",
        [
            series({"instance": "10.0.0.1:9100"}, 50.0, "100"),
            series({"instance": "10.0.0.2:9100"}, 50.0, "200"),
            series({"instance": "node-c:9100"}, 50.0, "300"),  # not an address we know: skipped
            series({"job": "x"}, 50.0, "400"),  # no instance label: skipped
        ],
    )
    w = LoadWindow()
    src = closing(
        PrometheusSource(
            api.url, w, queries={"memory": QUERIES["memory"]}, node_label="internal-ip", node_by_ip=node_by_ip
        )
    )
    assert src.poll_once()
    assert w.view(["node-a", "node-b"], ["memory"], 60.0).usage[:, 0].tolist() == [100.0, 200.0]
    assert seen == ["10.0.0.1", "10.0.0.2", "node-c"]
    assert src.series_skipped["unmapped"] == 1 and src.series_skipped["no_label"] == 1
    with pytest.raises(ValueError, match="node_by_ip"):
        PrometheusSource(api.url, w, node_label="internal-ip")


def test_prometheus_skips_values_that_are_not_numbers(
    api: FakeKubeAPI, closing: Callable[[Any], Any]
) -> None:
    api.set_prom_result(
        "cpu_busy",
        [
            series({"node": "nan"}, 10.0, "NaN"),
            series({"node": "inf"}, 10.0, "+Inf"),
            series({"node": "text"}, 10.0, "abc"),
            {"metric": {"node": "histogram"}, "histogram": [10.0, {"count": "3", "sum": "1"}]},
            {"metric": {"node": "malformed"}, "value": [10.0, 1.5]},  # the value must be a string
            series({"node": "ok"}, 10.0, "0.001"),
            series({"node": "ok"}, 10.0, "5"),  # a second series for the same node
            series({"node": "negative"}, 10.0, "-1"),  # rejected by the window
        ],
    )
    w = LoadWindow()
    src = closing(PrometheusSource(api.url, w, queries={"cpu": QUERIES["cpu"]}))
    assert src.poll_once()
    assert w.nodes() == ("ok",)
    assert w.view(["ok"], ["cpu"], 10.0).usage[0, 0] == 1.0
    assert src.series_skipped == {
        "no_label": 0,
        "unmapped": 0,
        "not_a_number": 4,
        "duplicate": 1,
        "malformed": 1,
    }
    assert w.sources()["prometheus"].rejected_total == 1


def test_prometheus_failed_query_keeps_the_others(api: FakeKubeAPI, closing: Callable[[Any], Any]) -> None:
    api.set_prom_result("cpu_busy", [series({"node": "n1"}, 10.0, "1")])
    api.set_prom_result("mem_used", [series({"node": "n1"}, 10.0, "64")])
    w = LoadWindow()
    calls = Calls()
    src = closing(
        PrometheusSource(
            api.url, w, queries=QUERIES, timeout_s=0.5, on_poll=calls, backoff_base_s=0.5, backoff_max_s=1.0
        )
    )
    api.fail("GET", QUERY, status=503)  # the first query of the poll (cpu)
    assert not src.poll_once()
    status = w.sources()["prometheus"]
    assert status.last_error.startswith("query for cpu: HTTP 503") and status.consecutive_failures == 1
    v = w.view(["n1"], RES, 10.0)
    assert math.isnan(v.usage[0, 0]) and v.usage[0, 1] == 64.0  # memory recorded all the same
    assert not src.synced and 0.0 <= src.next_delay() <= 0.5
    api.delay("GET", QUERY, seconds=1.5, times=2)
    assert not src.poll_once()
    assert "query for cpu: timed out after 0.5s" in w.sources()["prometheus"].last_error
    assert "query for memory: timed out" in w.sources()["prometheus"].last_error
    assert src.poll_once() and src.synced
    assert w.view(["n1"], RES, 10.0).usage[0].tolist() == [1000.0, 64.0]
    assert calls.seen == [("prometheus", False), ("prometheus", False), ("prometheus", True)]


def test_prometheus_default_queries(api: FakeKubeAPI, closing: Callable[[Any], Any]) -> None:
    assert DEFAULT_PROM_QUERIES["cpu"].scale == 1000.0 and DEFAULT_PROM_QUERIES["memory"].scale == 1.0
    assert DEFAULT_PROM_QUERIES["cpu"].promql.startswith("sum by (node) (rate(node_cpu_seconds_total{")
    assert "by (instance)" in default_prom_queries("instance")["memory"].promql
    with pytest.raises(ValueError):
        default_prom_queries("not a label")
    api.set_prom_result(DEFAULT_PROM_QUERIES["cpu"].promql, [series({"node": "n1"}, 10.0, "0.75")])
    api.set_prom_result(DEFAULT_PROM_QUERIES["memory"].promql, [series({"node": "n1"}, 10.0, "2147483648")])
    w = LoadWindow()
    src = closing(PrometheusSource(api.url, w))
    assert src.poll_once()
    assert w.view(["n1"], RES, 10.0).usage[0].tolist() == [750.0, 2147483648.0]


def test_prometheus_configuration_errors() -> None:
    w = LoadWindow(("cpu",))
    with pytest.raises(ValueError, match="does not track"):
        PrometheusSource("http://prom:9090", w)  # the default queries include memory
    with pytest.raises(ValueError, match="http"):
        PrometheusSource("prom:9090", w, queries={"cpu": QUERIES["cpu"]})
    with pytest.raises(ValueError):
        PromQuery("up", scale=0.0)
    with pytest.raises(ValueError):
        PrometheusSource("http://prom:9090", w, queries={"cpu": QUERIES["cpu"]}, interval_s=0)


# ---- Prometheus: answers FakeKubeAPI cannot give ---------------------------------------------------


class PromStub:
    """A tiny HTTP server that answers every request with the next queued (status, body) and
    records the request headers (FakeKubeAPI answers only success vectors and keeps no headers)."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, bytes]] = []
        self.headers: list[dict[str, str]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                stub.headers.append(dict(self.headers))
                status, body = stub.answers.pop(0) if stub.answers else (404, b"no answer queued")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, status: int, body: Any) -> None:
        self.answers.append((status, body if isinstance(body, bytes) else json.dumps(body).encode()))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture()
def stub() -> Iterator[PromStub]:
    s = PromStub()
    yield s
    s.close()


def _vector(*items: dict[str, Any]) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector", "result": list(items)}}


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (
            400,
            {
                "status": "error",
                "errorType": "bad_data",
                "error": 'invalid parameter "query": 1:5: parse error',
            },
            "HTTP 400 bad_data: invalid parameter",
        ),
        (
            422,
            {"status": "error", "errorType": "execution", "error": "expanding series: too many samples"},
            "HTTP 422 execution: expanding series",
        ),
        (
            503,
            {"status": "error", "errorType": "timeout", "error": "query timed out in query execution"},
            "HTTP 503 timeout: query timed out",
        ),
        (502, b"<html>Bad Gateway</html>", "HTTP 502: <html>Bad Gateway</html>"),
        (
            200,
            {"status": "success", "data": {"resultType": "scalar", "result": [1, "2"]}},
            "expected an instant vector, got 'scalar'",
        ),
        (200, b"not json", "answer is not a Prometheus API response"),
        (
            200,
            {"status": "success", "data": {"resultType": "vector", "result": {"a": 1}}},
            "data.result is not a list",
        ),
    ],
)
def test_prometheus_error_answers(
    stub: PromStub, closing: Callable[[Any], Any], status: int, body: Any, message: str
) -> None:
    w = LoadWindow()
    src = closing(PrometheusSource(stub.url, w, queries={"cpu": QUERIES["cpu"]}))
    stub.answer(status, body)
    assert not src.poll_once()
    assert w.sources()["prometheus"].last_error.startswith(f"query for cpu: {message}")


def test_prometheus_warnings_bearer_token_and_headers(
    stub: PromStub, closing: Callable[[Any], Any], tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    w = LoadWindow()
    src = closing(
        PrometheusSource(
            stub.url,
            w,
            queries={"cpu": QUERIES["cpu"]},
            bearer_token="s3cr3t",
            headers={"X-Scope-OrgID": "tenant-1"},
        )
    )
    answer = _vector(series({"node": "n1"}, 20.0, "0.5"))
    answer["warnings"] = ["store unavailable: partial response"]
    stub.answer(200, answer)
    with caplog.at_level(logging.WARNING, logger="extender.load"):
        assert src.poll_once()
    assert w.view(["n1"], ["cpu"], 20.0).usage[0, 0] == 500.0
    assert any("partial response" in r.getMessage() for r in caplog.records)
    assert not any("s3cr3t" in r.getMessage() for r in caplog.records)
    (headers,) = stub.headers
    assert headers["Authorization"] == "Bearer s3cr3t" and headers["X-Scope-OrgID"] == "tenant-1"

    token = tmp_path / "token"
    token.write_text("first\n")
    src2 = closing(
        PrometheusSource(stub.url, w, queries={"cpu": QUERIES["cpu"]}, bearer_token_file=str(token))
    )
    stub.answer(200, _vector())
    assert src2.poll_once()
    token.write_text("rotated")
    stub.answer(200, _vector())
    assert src2.poll_once()
    assert [h["Authorization"] for h in stub.headers[1:]] == ["Bearer first", "Bearer rotated"]


def test_the_row_memo_follows_the_node_rows_for_the_same_tuple() -> None:
    """``LoadWindow.view`` keeps the rows of the last names tuple (key: that tuple, by identity,
    and the row generation): a node that gets its first sample, or is forgotten, after the
    tuple was looked up must be seen in the next view of the very same tuple."""
    w = LoadWindow(("cpu",), window_s=300.0)
    names = ("a", "b")
    w.record("a", 100.0, {"cpu": 1.0}, source="s")
    first = w.view(names, ("cpu",), now=100.0)
    assert first.usage[0, 0] == 1.0 and np.isnan(first.usage[1, 0])
    w.record("b", 100.0, {"cpu": 2.0}, source="s")  # b gets a row
    assert w.view(names, ("cpu",), now=100.0).usage[1, 0] == 2.0
    w.forget("a")
    w.record("c", 100.0, {"cpu": 3.0}, source="s")  # may reuse a's row
    assert np.isnan(w.view(names, ("cpu",), now=100.0).usage[0, 0])
