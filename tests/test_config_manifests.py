"""config/deploy: every manifest validates against the Kubernetes OpenAPI schema, offline.

* Each manifest (config/deploy, its components, the example workload) is validated strictly
  (unknown fields fail) with ``kubernetes-validate``, which bundles the JSON schemas generated
  from the Kubernetes OpenAPI spec: no network. Versions: the minor of the kube-scheduler image
  the kustomization deploys (the cluster is at least that new) and the newest bundled one.
* ``kubectl kustomize config/deploy`` (and each component on top of it) must render, and the
  rendered objects are validated the same way. kubectl may be absent in CI: those tests skip
  and say so.
* The parts that make the pod safe and correct: non-root, read-only root file system, no
  privilege escalation, all capabilities dropped, probes, resources, the default scheduler for
  the scheduler's own pods, the policy ConfigMap being the shipped policy.

The helpers here are shared by tests/test_config_scheduler.py and tests/test_config_rbac.py.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"
DEPLOY = CONFIG / "deploy"
SCHEDULER_DIR = CONFIG / "scheduler"
COMPONENTS = DEPLOY / "components"
EXAMPLE = DEPLOY / "example-workload.yaml"
SHIPPED_POLICY = CONFIG / "extender-policy.yaml"
DEPLOYED_POLICY_COPY = DEPLOY / "extender-policy.yaml"

Obj = dict[str, Any]


# ---- loading -------------------------------------------------------------------------------


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML keeps the last one silently; Kubernetes'
    strict decoders reject them)."""


def _mapping_without_duplicates(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def load_docs(text: str) -> list[Obj]:
    return [d for d in yaml.load_all(text, Loader=StrictLoader) if d is not None]


def load_file(path: Path) -> list[Obj]:
    return load_docs(path.read_text())


def load_one(path: Path) -> Obj:
    docs = load_file(path)
    assert len(docs) == 1, f"{path}: expected one YAML document, found {len(docs)}"
    return docs[0]


def kustomization(path: Path) -> Obj:
    return load_one(path / "kustomization.yaml")


def manifest_files() -> list[Path]:
    """Every file config/deploy's kustomization lists as a resource, plus the components'
    resources and the example workload (which the kustomization leaves out on purpose)."""
    files = [DEPLOY / r for r in kustomization(DEPLOY)["resources"] if (DEPLOY / r).is_file()]
    for comp in sorted(p for p in COMPONENTS.iterdir() if p.is_dir()):
        files += [comp / r for r in kustomization(comp).get("resources", [])]
    return files + [EXAMPLE]


def deploy_objects() -> list[Obj]:
    """The objects config/deploy installs, from its source files (no kustomize needed)."""
    return [
        o for r in kustomization(DEPLOY)["resources"] if (DEPLOY / r).is_file() for o in load_file(DEPLOY / r)
    ]


def find(objs: list[Obj], kind: str, name: str | None = None) -> list[Obj]:
    return [o for o in objs if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name)]


def the(objs: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = find(objs, kind, name)
    assert len(found) == 1, f"expected exactly one {kind} {name or ''}, found {len(found)}"
    return found[0]


def deployment(objs: list[Obj] | None = None) -> Obj:
    return the(deploy_objects() if objs is None else objs, "Deployment", "load-aware-scheduler")


def pod_spec(dep: Obj) -> Obj:
    return dep["spec"]["template"]["spec"]


def all_containers(dep: Obj) -> list[Obj]:
    spec = pod_spec(dep)
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def extender_container(dep: Obj) -> Obj:
    """The extender: a native sidecar (init container with restartPolicy Always)."""
    found = [c for c in pod_spec(dep).get("initContainers", []) if c["name"] == "extender"]
    assert len(found) == 1, "the Deployment has no init container named 'extender'"
    return found[0]


def scheduler_container(dep: Obj) -> Obj:
    found = [c for c in pod_spec(dep)["containers"] if c["name"] == "kube-scheduler"]
    assert len(found) == 1, "the Deployment has no container named 'kube-scheduler'"
    return found[0]


def env_of(container: Obj) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in container.get("env", []):
        assert "value" in e, f"env {e['name']}: only literal values are expected here"
        assert isinstance(e["value"], str), f"env {e['name']}: value must be a string, got {e['value']!r}"
        out[e["name"]] = e["value"]
    return out


def image_entry(name: str) -> Obj:
    entries = [i for i in kustomization(DEPLOY).get("images", []) if i["name"] == name]
    assert len(entries) == 1, f"config/deploy/kustomization.yaml: no single `images` entry named {name}"
    return entries[0]


def scheduler_minor_version() -> str:
    """The Kubernetes minor of the kube-scheduler image deployed (the cluster is at least that)."""
    tag = image_entry("registry.k8s.io/kube-scheduler")["newTag"]
    m = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)", tag)
    assert m, f"kube-scheduler image tag {tag!r} is not vMAJOR.MINOR.PATCH"
    return f"{m[1]}.{m[2]}"


# ---- kustomize -----------------------------------------------------------------------------


def _kustomize_command() -> list[str] | None:
    if kubectl := os.environ.get("KUBECTL") or shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build"]
    return None


def kustomize_build(path: Path) -> list[Obj]:
    cmd = _kustomize_command()
    if cmd is None:
        pytest.skip(
            "neither kubectl nor kustomize is on PATH: the kustomize rendering of config/deploy is "
            "not checked here (the manifests' schema checks ran on the source files)"
        )
    proc = subprocess.run([*cmd, str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, f"`{' '.join(cmd)} {path}` failed:\n{proc.stderr}"
    return load_docs(proc.stdout)


def overlay_with_components(tmp: Path, *components: str) -> Path:
    """A throwaway overlay of config/deploy with the given components (kustomize wants
    relative paths)."""
    rel = os.path.relpath(DEPLOY, tmp)
    (tmp / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [rel],
                "components": [f"{rel}/components/{c}" for c in components],
            }
        )
    )
    return tmp


@pytest.fixture(scope="module")
def rendered() -> list[Obj]:
    return kustomize_build(DEPLOY)


# ---- OpenAPI schema validation ----------------------------------------------------------------


def validation_versions() -> list[str]:
    newest = kubernetes_validate.utils.latest_version()
    return sorted({scheduler_minor_version(), ".".join(newest.split(".")[:2])})


def schema_errors(obj: Obj, version: str) -> str | None:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path) or "(top)"
        return f"{obj['kind']}/{obj['metadata'].get('name')}: {where}: {exc.message}"
    return None


def _file_objects() -> Iterator[tuple[str, Obj]]:
    for path in manifest_files():
        for obj in load_file(path):
            yield f"{path.relative_to(ROOT)}:{obj['kind']}/{obj['metadata']['name']}", obj


@pytest.mark.parametrize("version", validation_versions())
def test_every_manifest_validates_strictly_against_the_openapi_schema(version: str) -> None:
    problems = []
    checked = 0
    for where, obj in _file_objects():
        if err := schema_errors(obj, version):
            problems.append(f"{where}: {err}")
        checked += 1
    assert checked >= 15, f"only {checked} objects found: is manifest_files() missing some?"
    assert not problems, f"against Kubernetes {version}:\n" + "\n".join(problems)


def test_schema_validation_catches_a_misspelled_field() -> None:
    """The strict schema really rejects unknown keys (guards the check above)."""
    dep = copy.deepcopy(deployment())
    extender_container(dep)["securityContext"]["readOnlyRootFileSystem"] = True  # wrong case
    assert schema_errors(dep, scheduler_minor_version()) is not None
    dep = copy.deepcopy(deployment())
    pod_spec(dep)["schedulername"] = "default-scheduler"
    assert schema_errors(dep, scheduler_minor_version()) is not None


def test_no_duplicate_keys_are_accepted() -> None:
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key"):
        load_docs("a: 1\nb: 2\na: 3\n")


@pytest.mark.parametrize("version", validation_versions())
def test_kustomize_renders_config_deploy_and_every_object_validates(
    rendered: list[Obj], version: str
) -> None:
    problems = [err for obj in rendered if (err := schema_errors(obj, version))]
    assert not problems, f"rendered config/deploy against Kubernetes {version}:\n" + "\n".join(problems)
    kinds = sorted({o["kind"] for o in rendered})
    assert kinds == sorted(
        [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "ConfigMap",
            "Deployment",
            "PodDisruptionBudget",
            "Service",
            "NetworkPolicy",
        ]
    ), kinds


def test_rendered_configmaps_are_the_repository_files_and_are_mounted(rendered: list[Obj]) -> None:
    dep = deployment(rendered)
    volumes = {v["name"]: v for v in pod_spec(dep)["volumes"]}
    by_name = {o["metadata"]["name"]: o for o in find(rendered, "ConfigMap")}
    for v in volumes.values():
        if "configMap" in v:
            assert v["configMap"]["name"] in by_name, (
                f"volume {v['name']} names a ConfigMap kustomize did not render"
            )
    sched_cm = by_name[volumes["scheduler-config"]["configMap"]["name"]]
    for key in kustomization(SCHEDULER_DIR)["configMapGenerator"][0]["files"]:
        assert sched_cm["data"][key] == (SCHEDULER_DIR / key).read_text(), key
    policy_cm = by_name[volumes["extender-policy"]["configMap"]["name"]]
    assert policy_cm["data"]["extender-policy.yaml"] == SHIPPED_POLICY.read_text()
    for cm in by_name.values():
        assert cm["metadata"]["namespace"] == dep["metadata"]["namespace"]


def test_rendered_images_are_overridable_placeholders(rendered: list[Obj]) -> None:
    dep = deployment(rendered)
    ext = image_entry("load-aware-extender")
    assert extender_container(dep)["image"] == f"{ext['newName']}:{ext['newTag']}"
    sched = image_entry("registry.k8s.io/kube-scheduler")
    assert scheduler_container(dep)["image"] == f"registry.k8s.io/kube-scheduler:{sched['newTag']}"


def test_component_metrics_server_renders(tmp_path: Path) -> None:
    objs = kustomize_build(overlay_with_components(tmp_path, "metrics-server"))
    env = env_of(extender_container(deployment(objs)))
    assert env["EXTENDER_LOAD_SOURCES"].split(",") == ["annotations", "metrics-server"]
    assert the(objs, "ClusterRole", "load-aware-extender-metrics")
    binding = the(objs, "ClusterRoleBinding", "load-aware-extender-metrics")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "load-aware-scheduler", "namespace": "load-aware-scheduler"}
    ]
    problems = [err for obj in objs if (err := schema_errors(obj, scheduler_minor_version()))]
    assert not problems, problems


def test_component_stateless_renders(tmp_path: Path) -> None:
    objs = kustomize_build(overlay_with_components(tmp_path, "stateless"))
    dep = deployment(objs)
    assert env_of(extender_container(dep))["EXTENDER_CACHE"] == "false"
    args = scheduler_container(dep)["args"]
    assert "--config=/etc/load-aware-scheduler/secondary-scheduler-stateless.yaml" in args
    assert any(re.fullmatch(r"--v=\d+", a) for a in args), "the stateless patch dropped --v"
    problems = [err for obj in objs if (err := schema_errors(obj, scheduler_minor_version()))]
    assert not problems, problems


# ---- what the pod must be -----------------------------------------------------------------------


def test_every_container_is_locked_down() -> None:
    for path in (DEPLOY / "deployment.yaml", EXAMPLE):
        dep = load_one(path)
        pod_sc = pod_spec(dep)["securityContext"]
        assert pod_sc["runAsNonRoot"] is True, path
        assert isinstance(pod_sc.get("runAsUser"), int) and pod_sc["runAsUser"] > 0, path
        assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault", path
        for c in all_containers(dep):
            sc = c["securityContext"]
            where = f"{path.name}: container {c['name']}"
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert not sc["capabilities"].get("add"), where
            assert sc.get("privileged") in (None, False), where
            assert sc.get("runAsUser", pod_sc["runAsUser"]) != 0, where
            res = c["resources"]
            assert {"cpu", "memory"} <= set(res["requests"]), where
            assert "memory" in res["limits"], where
        assert not pod_spec(dep).get("hostNetwork") and not pod_spec(dep).get("hostPID"), path


def test_namespace_enforces_the_restricted_pod_security_standard() -> None:
    ns = the(deploy_objects(), "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert ns["metadata"]["name"] == deployment()["metadata"]["namespace"]


def test_the_extender_is_a_native_sidecar_with_probes() -> None:
    ext = extender_container(deployment())
    assert ext["restartPolicy"] == "Always", "a plain init container would block kube-scheduler forever"
    assert ext["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert ext["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # kube-scheduler starts only once the extender's cache is synced
    assert ext["startupProbe"]["httpGet"]["path"] == "/readyz"
    sched = scheduler_container(deployment())
    for probe in ("livenessProbe", "readinessProbe"):
        assert sched[probe]["httpGet"]["scheme"] == "HTTPS"
        assert sched[probe]["httpGet"]["port"] == 10259


def test_the_schedulers_own_pods_are_placed_by_the_default_scheduler() -> None:
    spec = pod_spec(deployment())
    assert spec.get("schedulerName", "default-scheduler") == "default-scheduler"


def test_example_workload_opts_in() -> None:
    from tests.test_config_scheduler import secondary_config

    profiles = [p["schedulerName"] for p in secondary_config()["profiles"]]
    assert pod_spec(load_one(EXAMPLE))["schedulerName"] in profiles
    assert "example-workload.yaml" not in kustomization(DEPLOY)["resources"], (
        "the example workload must not be installed with the scheduler"
    )


def test_selectors_of_pdb_service_and_networkpolicy_match_the_pods() -> None:
    objs = deploy_objects()
    dep = deployment(objs)
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    pdb = the(objs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert dep["spec"]["replicas"] >= 2, "with one replica the PDB blocks every drain or protects nothing"
    svc = the(objs, "Service")
    assert svc["spec"]["selector"].items() <= labels.items()
    netpol = the(objs, "NetworkPolicy")
    assert netpol["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    for o in objs:
        if (
            o["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding")
            and o["metadata"]["name"] != "load-aware-scheduler-extension-apiserver-authentication-reader"
        ):
            assert o["metadata"]["namespace"] == dep["metadata"]["namespace"], o["metadata"]["name"]


def test_policy_configmap_is_the_shipped_policy() -> None:
    """kustomize cannot read config/extender-policy.yaml from config/deploy (files above the
    kustomization root are refused), so config/deploy keeps a copy: it must be identical."""
    assert DEPLOYED_POLICY_COPY.read_bytes() == SHIPPED_POLICY.read_bytes(), (
        "config/deploy/extender-policy.yaml differs from config/extender-policy.yaml; "
        "run: cp config/extender-policy.yaml config/deploy/extender-policy.yaml"
    )
    gen = [
        g for g in kustomization(DEPLOY)["configMapGenerator"] if g["name"] == "load-aware-extender-policy"
    ]
    assert gen and gen[0]["files"] == ["extender-policy.yaml"]


def test_extender_policy_env_points_at_the_mounted_policy() -> None:
    dep = deployment()
    ext = extender_container(dep)
    mounts = {m["name"]: m for m in ext["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(dep)["volumes"]}
    policy_volume = [
        n for n, v in volumes.items() if v.get("configMap", {}).get("name") == "load-aware-extender-policy"
    ]
    assert len(policy_volume) == 1
    mount = mounts[policy_volume[0]]
    assert mount.get("readOnly") is True
    assert env_of(ext)["EXTENDER_POLICY"] == f"{mount['mountPath']}/extender-policy.yaml"
    # read-only root file system: /tmp must be a volume
    assert any(m["mountPath"] == "/tmp" and "emptyDir" in volumes[m["name"]] for m in ext["volumeMounts"])
