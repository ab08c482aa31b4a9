"""The objects of the ``names`` benchmark: realistic Nodes and Pods, pending pods to schedule.

Shared by the fake API server at scale (``benchmarks.names_fake``), the churn it drives, and
the ``latency`` benchmark's names form (its pending pods).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from benchmarks import k8s_objects

# --- objects ------------------------------------------------------------------------------------

# (cpu, memory) requests and how often they occur: a mix of small services and a few big ones.
_SHAPES = (
    ("50m", "64Mi", 15),
    ("100m", "128Mi", 25),
    ("250m", "256Mi", 25),
    ("500m", "512Mi", 20),
    ("1", "1Gi", 10),
    ("2", "4Gi", 5),
)
_SHAPE_TABLE = [i for i, (_, _, w) in enumerate(_SHAPES) for _ in range(w)]
_DOUBLE = {
    "50m": "100m",
    "100m": "200m",
    "250m": "500m",
    "500m": "1",
    "1": "2",
    "2": "4",
    "64Mi": "128Mi",
    "128Mi": "256Mi",
    "256Mi": "512Mi",
    "512Mi": "1Gi",
    "1Gi": "2Gi",
    "4Gi": "8Gi",
}
_TOLERATIONS = [
    {"key": f"node.kubernetes.io/{k}", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
    for k in ("not-ready", "unreachable")
]
_PROBE = {
    "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
    "timeoutSeconds": 1,
    "periodSeconds": 10,
    "successThreshold": 1,
    "failureThreshold": 3,
}
_ENV = [
    {"name": "LOG_LEVEL", "value": "info"},
    {"name": "GOMAXPROCS", "value": "2"},
    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
]
_SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass(slots=True)
class PodParams:
    """What identifies one bench pod; ``pod_object`` renders it (``gen`` changes its status)."""

    index: int
    node: int
    shape: int
    flavour: int  # 0..99: limits (< 40), a second container (< 20 or >= 90), init containers (>= 90)
    gen: int = 0


def pod_object(p: PodParams) -> dict[str, Any]:
    """A running Pod as the API server lists it (managedFields included), ~3.5 KB of JSON.
    Deployment-style names, requests from ``_SHAPES``, 40 % with limits, 20 % with a sidecar
    container, 10 % with an init container (3 % of them a restartable sidecar init container),
    5 % BestEffort."""
    i, node = p.index, f"node-{p.node:05d}"
    app, team, rs_hash, name = _pod_names(i)
    uid = f"{i:08x}-5b1e-4c2a-9d3f-{p.node:012x}"
    cpu, mem, _ = _SHAPES[p.shape]
    resources: dict[str, Any] = {}
    if p.flavour % 20 != 7:  # 5 % BestEffort
        resources["requests"] = {"cpu": cpu, "memory": mem}
        if p.flavour < 40:
            resources["limits"] = {"cpu": _DOUBLE[cpu], "memory": mem if p.flavour < 20 else _DOUBLE[mem]}
    ip = f"10.{64 + p.node // 256 % 64}.{p.node % 256}.{i % 250 + 2}"
    mounts = [{"name": f"kube-api-access-{i % 99991:05d}", "readOnly": True, "mountPath": _SA_MOUNT}]
    containers = [
        {
            "name": "app",
            "image": f"registry.example.com/{team}/{app}:v1.{i % 40}.0",
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
            "env": _ENV,
            "resources": resources,
            "volumeMounts": mounts,
            "livenessProbe": _PROBE,
            "readinessProbe": _PROBE,
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent",
        }
    ]
    if p.flavour < 20 or p.flavour >= 90:
        containers.append(
            {
                "name": "proxy",
                "image": "registry.example.com/mesh/proxy:1.22.3",
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                "volumeMounts": mounts,
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
            }
        )
    spec: dict[str, Any] = {
        "volumes": [
            {
                "name": mounts[0]["name"],
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {
                            "configMap": {
                                "name": "kube-root-ca.crt",
                                "items": [{"key": "ca.crt", "path": "ca.crt"}],
                            }
                        },
                        {
                            "downwardAPI": {
                                "items": [
                                    {
                                        "path": "namespace",
                                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                    }
                                ]
                            }
                        },
                    ],
                    "defaultMode": 420,
                },
            }
        ],
        "containers": containers,
    }
    if p.flavour >= 90:
        init: dict[str, Any] = {
            "name": "init-config",
            "image": "registry.example.com/tools/init:2.1",
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent",
        }
        if p.flavour >= 97:
            init["restartPolicy"] = "Always"
        spec["initContainers"] = [init]
    spec.update(
        {
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "nodeName": node,
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": _TOLERATIONS,
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        }
    )
    started = "2026-11-27T08:00:00Z"
    qos = (
        "BestEffort"
        if "requests" not in resources
        else "Guaranteed"
        if resources.get("limits") == resources["requests"]
        else "Burstable"
    )
    return {
        "metadata": {
            "name": name,
            "generateName": f"{app}-{rs_hash}-",
            "namespace": team,
            "uid": uid,
            "resourceVersion": "0",
            "creationTimestamp": started,
            "labels": {
                "app.kubernetes.io/name": app,
                "app.kubernetes.io/part-of": team,
                "pod-template-hash": rs_hash,
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{app}-{rs_hash}",
                    "uid": f"{i % 997:08x}-0000-4000-8000-000000000000",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": [
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": started,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:metadata": {
                            "f:generateName": {},
                            "f:labels": {".": {}, "f:app.kubernetes.io/name": {}, "f:pod-template-hash": {}},
                            "f:ownerReferences": {".": {}, f'k:{{"uid":"{i % 997:08x}"}}': {}},
                        }
                    },
                },
                {
                    "manager": "kubelet",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": started,
                    "fieldsType": "FieldsV1",
                    "subresource": "status",
                    "fieldsV1": {
                        "f:status": {
                            "f:conditions": {},
                            "f:containerStatuses": {},
                            "f:hostIP": {},
                            "f:phase": {},
                            "f:podIP": {},
                            "f:startTime": {},
                        }
                    },
                },
            ],
        },
        "spec": spec,
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": started}
                for t in (
                    "PodReadyToStartContainers",
                    "Initialized",
                    "Ready",
                    "ContainersReady",
                    "PodScheduled",
                )
            ],
            "hostIP": f"10.1.{p.node // 256 % 256}.{p.node % 256}",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": started,
            "containerStatuses": [
                {
                    "name": c["name"],
                    "state": {"running": {"startedAt": started}},
                    "lastState": {},
                    "ready": True,
                    "restartCount": p.gen,
                    "image": c["image"],
                    "imageID": f"{c['image']}@sha256:{i:064x}",
                    "containerID": f"containerd://{i:060x}{k:04x}",
                    "started": True,
                }
                for k, c in enumerate(containers)
            ],
            "qosClass": qos,
        },
    }


def _pod_names(i: int) -> tuple[str, str, str, str]:
    """(app, team = namespace, ReplicaSet hash, pod name) of bench pod ``i``."""
    app, team = f"svc-{i % 997}", f"team-{i % 23}"
    rs_hash = f"{(i % 997) * 2654435761 % 16**9:09x}"
    return app, team, rs_hash, f"{app}-{rs_hash}-{i:06x}"


def pod_key(p: PodParams) -> tuple[str, str]:
    """(namespace, name): the fake's store key of ``pod_object(p)``."""
    _, team, _, name = _pod_names(p.index)
    return team, name


def restarted(raw: bytes, p: PodParams) -> bytes:
    """``orjson.dumps(pod_object(p))`` (any resourceVersion) turned into the encoding of the same
    pod one restart later (``p.gen + 1``): only the containers' restartCount differ, so the churn
    updates a pod without rendering it again (tests/test_benchmarks_names_smoke.py checks this)."""
    return raw.replace(b'"restartCount":%d,' % p.gen, b'"restartCount":%d,' % (p.gen + 1))


def new_pod(rng: random.Random, index: int, node: int) -> PodParams:
    return PodParams(index, node, rng.choice(_SHAPE_TABLE), rng.randrange(100))


def node_object(i: int, rng: random.Random, updated: str) -> dict[str, Any]:
    """k8s_objects.node (32 CPU, ~124 GiB, 110 pods, 50 images) with load annotations measured at
    ``updated`` (random level: 5-85 % CPU, 10-80 % memory)."""
    ann = k8s_objects.load_annotations(rng, cpu_millis=31850, memory_bytes=129611256 * 1024, updated=updated)
    return k8s_objects.node(i, annotations=ann)


def pending_pod(k: int) -> dict[str, Any]:
    """The pod being scheduled (k8s_objects.pod: 500m / 512 Mi), a new UID per scheduling cycle."""
    return k8s_objects.pod(f"web-{k}", uid=f"bench-pending-{k:06d}")
