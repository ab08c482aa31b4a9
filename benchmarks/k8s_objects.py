"""Node and Pod objects encoded as kube-scheduler encodes them (Go ``encoding/json``).

Realistic sizes matter for stateless-mode figures: a kubelet reports up to 50 images per node
(``nodeStatusMaxImages``), plus conditions, addresses and node info, ~13 KB per Node here.
Keys follow the Go struct order; zero times are ``null``; ``kubeletEndpoint`` has ``Port``
(the one PascalCase key inside a Node); quantities are strings.
"""

from __future__ import annotations

import random
from typing import Any

LOAD_PREFIX = "load.extender.scheduling/"


def node(
    i: int,
    *,
    cpu: str = "32",
    memory: str = "131811256Ki",
    pods: str = "110",
    cpu_alloc: str = "31850m",
    memory_alloc: str = "129611256Ki",
    annotations: dict[str, str] | None = None,
    images: int = 50,
) -> dict[str, Any]:
    name = f"node-{i:05d}"
    cond = [
        {
            "type": t,
            "status": "True" if t == "Ready" else "False",
            "lastHeartbeatTime": "2026-11-27T10:00:00Z",
            "lastTransitionTime": "2026-11-01T08:00:00Z",
            "reason": f"Kubelet{t}",
            "message": f"kubelet condition {t}",
        }
        for t in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")
    ]
    return {
        "metadata": {
            "name": name,
            "uid": f"8c1e7a2b-0000-4000-8000-{i:012d}",
            "resourceVersion": str(100000 + i),
            "creationTimestamp": "2026-11-01T08:00:00Z",
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "m5.8xlarge",
                "topology.kubernetes.io/region": "eu-west-1",
                "topology.kubernetes.io/zone": f"eu-west-1{'abc'[i % 3]}",
            },
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                **(annotations or {}),
            },
        },
        "spec": {
            "podCIDR": f"10.{i // 256 % 256}.{i % 256}.0/24",
            "podCIDRs": [f"10.{i // 256 % 256}.{i % 256}.0/24"],
            "providerID": f"aws:///eu-west-1a/i-{i:017x}",
        },
        "status": {
            "capacity": {
                "cpu": cpu,
                "ephemeral-storage": "101430960Ki",
                "hugepages-1Gi": "0",
                "hugepages-2Mi": "0",
                "memory": memory,
                "pods": pods,
            },
            "allocatable": {
                "cpu": cpu_alloc,
                "ephemeral-storage": "93478772582",
                "hugepages-1Gi": "0",
                "hugepages-2Mi": "0",
                "memory": memory_alloc,
                "pods": pods,
            },
            "conditions": cond,
            "addresses": [
                {"type": "InternalIP", "address": f"10.1.{i // 256 % 256}.{i % 256}"},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": f"{i:032x}",
                "systemUUID": f"ec2{i:029x}",
                "bootID": f"{i:036d}",
                "kernelVersion": "6.1.112-124.190.amzn2023.x86_64",
                "osImage": "Amazon Linux 2023",
                "containerRuntimeVersion": "containerd://1.7.22",
                "kubeletVersion": "v1.33.5",
                "kubeProxyVersion": "v1.33.5",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": [
                {
                    "names": [
                        f"registry.example.com/team-{k % 7}/service-{k}@sha256:{k:064x}",
                        f"registry.example.com/team-{k % 7}/service-{k}:v1.{k}.0",
                    ],
                    "sizeBytes": 50_000_000 + 1_000_003 * k,
                }
                for k in range(images)
            ],
        },
    }


def load_annotations(
    rng: random.Random, *, cpu_millis: float, memory_bytes: float, updated: str = "2026-11-27T09:59:30Z"
) -> dict[str, str]:
    """Measured-usage annotations of stateless mode, with a random load level."""
    cpu = rng.uniform(0.05, 0.85) * cpu_millis
    mem = rng.uniform(0.10, 0.80) * memory_bytes
    return {
        f"{LOAD_PREFIX}cpu": f"{int(cpu)}m",
        f"{LOAD_PREFIX}memory": f"{int(mem) // 1024}Ki",
        f"{LOAD_PREFIX}cpu-stddev": f"{int(cpu * 0.1)}m",
        f"{LOAD_PREFIX}updated": updated,
    }


def pod(
    name: str = "web-0", *, cpu: str = "500m", memory: str = "512Mi", uid: str = "pod-uid-0"
) -> dict[str, Any]:
    """A Pod as the scheduler's informer holds it (managedFields stripped, no kind/apiVersion)."""
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": uid,
            "resourceVersion": "4242",
            "creationTimestamp": None,
            "labels": {"app": "web"},
        },
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "registry.example.com/web:1.0",
                    "resources": {"limits": {"memory": memory}, "requests": {"cpu": cpu, "memory": memory}},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                }
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "securityContext": {},
            "schedulerName": "load-aware-scheduler",
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    }


def cluster(n: int, *, seed: int = 1) -> list[dict[str, Any]]:
    """n realistic nodes with random measured load (fresh annotations)."""
    rng = random.Random(seed)
    return [
        node(i, annotations=load_annotations(rng, cpu_millis=31850, memory_bytes=129611256 * 1024))
        for i in range(n)
    ]


def extender_args(
    nodes: list[dict[str, Any]], the_pod: dict[str, Any] | None = None, *, names_form: bool = False
) -> bytes:
    """ExtenderArgs bytes in the Go field order: Pod, Nodes, NodeNames."""
    import orjson  # a benchmark dependency: the objects alone serve benchmarks.demo, in the runtime venv

    the_pod = the_pod or pod()
    if names_form:
        return orjson.dumps(
            {"Pod": the_pod, "Nodes": None, "NodeNames": [x["metadata"]["name"] for x in nodes]}
        )
    return orjson.dumps({"Pod": the_pod, "Nodes": {"metadata": {}, "items": nodes}, "NodeNames": None})
