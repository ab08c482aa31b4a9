"""What a pod asks for, from the decoded wire object: kube-scheduler's PodRequests semantics
and the per-container values TargetLoadPacking predicts from."""

from __future__ import annotations

import msgspec
import numpy as np

from extender.demand import pod_demand
from extender.wire import Pod
from scoring import trimaran


def decode(doc: dict) -> Pod:
    return msgspec.json.decode(msgspec.json.encode(doc), type=Pod)


POD = decode({"spec": {
    "containers": [
        {"name": "app", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2"}}},
        {"name": "side", "resources": {"requests": {"cpu": "100m"}}},
        {"name": "bare"},
    ],
    "initContainers": [{"name": "init", "resources": {"requests": {"cpu": "3", "memory": "64Mi"}}}],
    "overhead": {"cpu": "50m"},
}})


def test_requests_follow_pod_requests_and_the_non_zero_defaults() -> None:
    d = pod_demand(POD, ("cpu", "memory", "pods"))
    # max(containers 600m, init 3000m) + overhead 50m; memory max(1Gi, 64Mi)
    assert d.requests.tolist() == [3050.0, 1024.0**3, 1.0]
    # non-zero: "bare" counts 100m / 200 MiB, "side" 200 MiB of memory
    assert d.nonzero_requests.tolist() == [3050.0, 1024.0**3 + 400 * 1024**2, 1.0]
    assert d.limits.tolist() == [2050.0, 0.0, 0.0]
    assert d.qos == "Burstable"


def test_containers_and_overhead_feed_target_load_packing() -> None:
    d = pod_demand(POD, ("cpu", "memory", "pods"))
    assert d.container_requests[:, 0].tolist() == [500.0, 100.0, 0.0]
    assert d.container_limits[:, 0].tolist() == [2000.0, 0.0, 0.0]
    assert d.overhead.tolist() == [50.0, 0.0, 0.0]
    # TLP: limit 2000 + round(100 x 1.5) + default 1000 for "bare" + overhead 50; init ignored
    assert trimaran.tlp_predicted_cpu(d.container_requests[:, 0], d.container_limits[:, 0],
                                      float(d.overhead[0])) == 3200.0


def test_a_pod_without_containers_is_one_empty_container() -> None:
    d = pod_demand(decode({"spec": {}}), ("cpu", "memory"))
    assert d.container_requests.shape == (1, 2) and not np.any(d.container_requests)
    assert d.qos == "BestEffort"
