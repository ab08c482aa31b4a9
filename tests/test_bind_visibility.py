"""A bind is seen by the very next call: the burst of issue 16, as kube-scheduler plays it,
against the real extender under gunicorn, the official client and the in-test API server.

40 nodes of 8 CPU without load data (the requests-based fallback ranks them), 8 pods of 3 CPU
placed one after the other with no wait between calls: each pod's filter and prioritize must
see every pod bound before it, so no node takes a second pod while an empty one is offered.
Run in every order of events the API server can produce: its watch event for the bound pod
before its answer to the Binding (its default), and the watch held back for the whole burst
(the bind answers first, and the cache has never seen the pods it binds: only the requests
carried them)."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from tests.kubeapi import FakeKubeAPI
from tests.test_cache_mode import bind, call, metric, node_obj, pod_obj, start, wait_ready

NODES = [f"node-{i}" for i in range(40)]
OFFERED = NODES[10:20]


def place(url: str, api: FakeKubeAPI, k: int, *, with_filter: bool) -> str:
    """One scheduling cycle as kube-scheduler runs it for pod ``k``: create, (filter,)
    prioritize, bind the best node (the first of equals, as the test's tie rule)."""
    pod = api.add_pod(pod_obj(f"burst-{k}", cpu="3", memory="1Gi"))
    names = OFFERED
    if with_filter:
        status, answer = call(f"{url}/filter", json.dumps({"Pod": pod, "NodeNames": names}).encode())
        assert status == 200 and not answer["Error"], answer
        names = answer["NodeNames"]
    status, prio = call(f"{url}/prioritize", json.dumps({"Pod": pod, "NodeNames": names}).encode())
    assert status == 200, prio
    best = max(prio, key=lambda h: (h["Score"], -names.index(h["Host"])))["Host"]
    assert bind(url, pod["metadata"]["name"], pod["metadata"]["uid"], best) == {"Error": ""}
    return best


@pytest.mark.timeout(120)
@pytest.mark.parametrize("watch", ["live", "held"])
@pytest.mark.parametrize("with_filter", [True, False], ids=["filter", "no-filter"])
def test_a_burst_lands_one_pod_per_node(
    api: FakeKubeAPI, tmp_path: Path, cache_env: dict[str, str], watch: str, with_filter: bool
) -> None:
    for name in NODES:
        api.add_node(node_obj(name, cpu="8", usage_cpu=None))
    with start(api, tmp_path, env=cache_env) as url:
        wait_ready(url)
        if watch == "held":
            api.hold_watch("pods")
        placed: collections.Counter[str] = collections.Counter()
        order = [place(url, api, k, with_filter=with_filter) for k in range(8)]
        placed.update(order)
        assert order == OFFERED[:8], order  # one per node, in the tie order
        assert max(placed.values()) == 1, placed
        if watch == "held":  # nothing was invisible: every bound pod was counted at its bind
            assert metric(url, "extender_bind_visibility_total", '{outcome="unknown_pod"}') in (None, 0.0)
            api.release_watch("pods")
        assert (metric(url, "extender_bind_visibility_total", '{outcome="counted"}') or 0) + (
            metric(url, "extender_bind_visibility_total", '{outcome="known"}') or 0
        ) == 8
