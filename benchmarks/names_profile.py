"""``names --profile``: the server's work for a names-form request in this process.

``create_app`` on the same fake API server: stage timings, cProfile of the cached and rebuilt
cases, and pod events applied from a thread while the main thread serves.
"""

from __future__ import annotations

import cProfile
import gc
import io
import pstats
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from benchmarks.harness import (
    BenchmarkError,
    _ms,
    pct,
)
from benchmarks.names_client import Body
from benchmarks.names_objects import new_pod, pod_object

# --- in-process profile of one names-form request ------------------------------------------------

# (file suffix, function) -> stage label, for the cProfile breakdown
PROFILE_STAGES = (
    ("extender/protocol/wire.py", "decode_scheduling_request", "decode ExtenderArgs"),
    ("extender/protocol/wire.py", "_unique", "  of which the NodeNames duplicate check"),
    ("extender/kube/demand.py", "requested_resources", "pod demand"),
    ("extender/kube/demand.py", "pod_demand", "pod demand"),
    ("extender/cache/node_source.py", "candidates", "source: names -> snapshot rows -> NodeTable"),
    ("scoring/evaluate.py", "evaluate", "evaluate (filters + strategies)"),
    ("scoring/filters.py", "describe", "filter: failure reasons (describe)"),
    ("extender/protocol/wire.py", "encode_filter_result", "encode answer"),
    ("extender/protocol/wire.py", "encode_host_priorities", "encode answer"),
    ("extender/verbs/decisions.py", "record_filter", "decisions log"),
    ("extender/verbs/decisions.py", "record_prioritize", "decisions log"),
)


# Bytes written between calls for the profile's "CPU caches flushed" case: more than the last
# level cache of the machines we measure on, standing in for what the client, the kernel's
# network stack and other processes touch between two scheduling calls.
CACHE_FLUSH_BYTES = 64 * 1024 * 1024


def profile_in_process(
    kubeconfig: Path,
    names: Sequence[str],
    body: Body,
    first_cycle: int,
    calls: int,
    ready_timeout_s: float = 600.0,
) -> dict[str, Any]:
    """The server's work for names-form calls without HTTP: ``create_app`` in this process with
    a cache of its own on the same fake API, then ``Verbs.filter`` / ``Verbs.prioritize`` on the
    request bytes. Wall medians with the source's table cached (a still cluster), rebuilt on every
    call (what each call pays under churn, when every publish is a new snapshot), and with the
    decisions log off; then cProfile of the cached and rebuilt cases, summed per stage."""
    import dataclasses as _dc

    from extender.server.app import create_app
    from extender.settings import Settings

    # the cache in this process (EXTENDER_CACHE_PROCESS=false): the profile times its event
    # application and publisher too, which a cache process would hide from cProfile
    settings = _dc.replace(Settings(), kubeconfig=str(kubeconfig), log_level="warning", cache_process=False)
    app = create_app(settings)
    ext = app.extensions["extender"]
    verbs, source, cache = ext["verbs"], ext["source"], ext["cache"]
    try:
        deadline = time.monotonic() + ready_timeout_s
        while not source.readiness()[0]:
            if time.monotonic() > deadline:
                raise BenchmarkError("in-process cache not ready for the profile")
            time.sleep(0.1)
        k = first_cycle
        data = [body(k + i)[0] for i in range(calls)]

        flush = np.ones(CACHE_FLUSH_BYTES // 8)

        def wall(verb: str, *, cold: bool, flushed: bool = False) -> list[float]:
            fn = getattr(verbs, verb)
            out = []
            for d in data:
                if cold:
                    source._last = None
                if flushed:  # what else runs between two calls evicts the CPU caches (see CACHE_FLUSH_BYTES)
                    flush[::8] += 1.0
                t0 = time.perf_counter()
                fn(d)
                out.append((time.perf_counter() - t0) * 1e3)
            return out

        result: dict[str, Any] = {"calls": calls, "wall_ms": {}, "stages_ms": {}, "top": {}}
        http = app.test_client()
        for verb in ("filter", "prioritize"):
            wall(verb, cold=False)  # warm-up
            result["wall_ms"][f"{verb} cached table"] = statistics.median(wall(verb, cold=False))
            timings = []
            for d in data:
                r = http.post(f"/{verb}", data=d, content_type="application/json")
                timings.append(float(r.headers["Server-Timing"].split("dur=")[1]))
            result["wall_ms"][f"{verb} cached table through Flask (Server-Timing)"] = statistics.median(
                timings
            )
            result["wall_ms"][f"{verb} table rebuilt"] = statistics.median(wall(verb, cold=True))
            result["wall_ms"][f"{verb} cached table, CPU caches flushed before each call"] = (
                statistics.median(wall(verb, cold=False, flushed=True))
            )
            decisions, verbs._decisions = verbs._decisions, None
            try:
                result["wall_ms"][f"{verb} cached table, no decisions log"] = statistics.median(
                    wall(verb, cold=False)
                )
            finally:
                verbs._decisions = decisions
            for cold in (False, True):
                label = f"{verb} {'table rebuilt' if cold else 'cached table'}"
                prof = cProfile.Profile()
                prof.enable()
                wall(verb, cold=cold)
                prof.disable()
                st = pstats.Stats(prof)
                total = sum(v[2] for v in st.stats.values())  # type: ignore[attr-defined]
                stages: dict[str, float] = {"(all, under the profiler)": total * 1e3 / calls}
                stages.update((stage, 0.0) for _, _, stage in PROFILE_STAGES)
                raw_stats = st.stats  # type: ignore[attr-defined]
                for (fname, _line, func), (_cc, _nc, _tt, ct, _callers) in raw_stats.items():
                    for suffix, name, stage in PROFILE_STAGES:
                        if func == name and fname.endswith(suffix):
                            stages[stage] += ct * 1e3 / calls
                result["stages_ms"][label] = stages
                buf = io.StringIO()
                pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(15)
                result["top"][label] = buf.getvalue()
        result["gc_ms"] = _gc_pause_ms()
        result["events"] = _events_in_process(cache, verbs, data, len(names))
        return result
    finally:
        if cache is not None:
            cache.stop()


def _gc_pause_ms() -> dict[str, float]:
    """A full cyclic collection with the cache's objects unfrozen (as before the extender froze
    them after its first sync) and frozen (as it runs): the pause a call pays when it triggers
    one."""
    gc.unfreeze()
    t0 = time.perf_counter()
    gc.collect()
    unfrozen = (time.perf_counter() - t0) * 1e3
    gc.freeze()
    t0 = time.perf_counter()
    gc.collect()
    return {"unfrozen": unfrozen, "frozen": (time.perf_counter() - t0) * 1e3}


def _events_in_process(cache: Any, verbs: Any, data: Sequence[bytes], nodes: int) -> dict[str, Any]:
    """Pod watch lines through the pods informer's own line handler (decode, cache update,
    counter), from a thread of this process as fast as it goes: alone for 2 s, then while
    the main thread calls filter and prioritize (no HTTP, no other busy process: they share
    the GIL and the cache, whose publisher runs as in the server)."""
    rng = random.Random(5)
    lines = []
    for j in range(4000):
        obj = pod_object(new_pod(rng, 50_000_000 + j, rng.randrange(nodes)))
        obj["metadata"]["resourceVersion"] = str(10**9 + j)
        lines.append(b'{"type":"MODIFIED","object":' + orjson.dumps(obj) + b"}")
    handle = cache.informers["pods"]._handle_line
    stop = threading.Event()
    count = [0]

    def apply() -> None:
        i = 0
        while not stop.is_set():
            handle(lines[i % len(lines)])
            i += 1
        count[0] = i

    def run(work: Callable[[], Any]) -> tuple[float, float, Any]:
        stop.clear()
        thread = threading.Thread(target=apply, name="bench-events")
        t0 = time.perf_counter()
        thread.start()
        out = work()
        stop.set()
        thread.join()
        seconds = time.perf_counter() - t0
        return count[0] / seconds, seconds, out

    def publish_ms() -> dict[str, float]:
        state = cache.state
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            state.publish(force=True)
            times.append((time.perf_counter() - t0) * 1e3)
        return {"ms": statistics.median(times), "recent_pods": len(getattr(state, "_recent", ()))}

    publish_before = publish_ms()
    alone, _, _ = run(lambda: time.sleep(2.0))

    def serve() -> dict[str, float]:
        walls: dict[str, list[float]] = {"filter": [], "prioritize": []}
        for d in data:
            for verb in ("filter", "prioritize"):
                t0 = time.perf_counter()
                getattr(verbs, verb)(d)
                walls[verb].append((time.perf_counter() - t0) * 1e3)
        return {f"{v} p50": statistics.median(w) for v, w in walls.items()} | {
            f"{v} p99": pct(w, 99) for v, w in walls.items()
        }

    serving, seconds, walls = run(serve)
    return {
        "publish": {"before": publish_before, "after": publish_ms()},
        "events_per_s_alone": alone,
        "events_per_s_while_serving": serving,
        "serving_s": seconds,
        "wall_ms_while_applying": walls,
        "switch_interval_s": sys.getswitchinterval(),
    }


def profile_lines(nodes: int, prof: dict[str, Any]) -> list[str]:
    out = [
        f"in-process profile at {nodes:,} nodes ({prof['calls']} calls per case; wall medians, ms): "
        + ", ".join(f"{k} {_ms(v)}" for k, v in prof["wall_ms"].items())
    ]
    for label, stages in prof["stages_ms"].items():
        out.append(
            f"  cProfile {label} (ms per call, cumulative; the profiler inflates Python-heavy "
            "code): " + ", ".join(f"{k} {_ms(v)}" for k, v in stages.items())
        )
    if "gc_ms" in prof:
        out.append(
            f"  full GC collection: {_ms(prof['gc_ms']['unfrozen'])} ms with the cache's objects unfrozen, "
            f"{_ms(prof['gc_ms']['frozen'])} ms frozen (as the extender runs after its first sync)"
        )
    ev = prof.get("events")
    if ev:
        out.append(
            "  pod events through the informer's line handler in-process: "
            f"{ev['events_per_s_alone']:,.0f}/s alone, {ev['events_per_s_while_serving']:,.0f}/s "
            "while serving; meanwhile (ms) "
            + ", ".join(f"{k} {_ms(v)}" for k, v in ev["wall_ms_while_applying"].items())
        )
        pub = ev["publish"]
        out.append(
            f"  snapshot publish: {_ms(pub['before']['ms'])} ms with {pub['before']['recent_pods']:,} "
            f"recently bound pods, {_ms(pub['after']['ms'])} ms with {pub['after']['recent_pods']:,} "
            "after the event flood (at most every 200 ms, when anything it copies changed)"
        )
    return out
