"""config/deploy: every manifest validates against the Kubernetes OpenAPI schema, offline.

* Each manifest (config/deploy, config/deploy-tls, their components, the example workload) is
  validated strictly (unknown fields fail) with ``kubernetes-validate``, which bundles the JSON
  schemas generated from the Kubernetes OpenAPI spec: no network. Versions: the minor of the
  kube-scheduler image the kustomization deploys (the cluster is at least that new) and the
  newest bundled one. cert-manager's Certificates and Issuers (config/deploy-tls) are validated
  against config/deploy-tls/cert-manager.v1.schema.json the same way, the Prometheus Operator's
  ServiceMonitor and PrometheusRule (components/monitoring) against its
  monitoring.coreos.com.v1.schema.json (tests/test_config_monitoring.py checks the rest).
* ``kubectl kustomize config/deploy`` (and each component on top of it) must render, and the
  rendered objects are validated the same way. kubectl may be absent in CI: those tests skip
  and say so.
* The parts that make the pod safe and correct: non-root, read-only root file system, no
  privilege escalation, all capabilities dropped, probes (on the operations port, timed for
  ``EXTENDER_LIVENESS_UNREADY_S``), resources, the default scheduler for the scheduler's own
  pods, the policy ConfigMap being the shipped policy; the verbs on loopback, the operations
  port alone reachable (Service, NetworkPolicy), the debug endpoints off.
* Every ``EXTENDER_*`` name a manifest (or config/README.md) uses is a setting of
  extender/settings.py, and the values the manifests write out are its defaults unless listed.

The helpers here are shared by tests/test_config_scheduler.py, tests/test_config_rbac.py and
tests/test_config_tls.py (the TLS variant's own checks).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from extender.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"
DEPLOY = CONFIG / "deploy"
SCHEDULER_DIR = CONFIG / "scheduler"
COMPONENTS = DEPLOY / "components"
EXAMPLE = DEPLOY / "example-workload.yaml"
SHIPPED_POLICY = CONFIG / "extender-policy.yaml"
DEPLOYED_POLICY_COPY = DEPLOY / "extender-policy.yaml"
DEPLOY_TLS = CONFIG / "deploy-tls"
TLS_COMPONENTS = DEPLOY_TLS / "components"
CERT_MANAGER_SCHEMA = DEPLOY_TLS / "cert-manager.v1.schema.json"
MONITORING_SCHEMA = COMPONENTS / "monitoring" / "monitoring.coreos.com.v1.schema.json"
# Custom resources, which kubernetes-validate has no schema for: API group -> our strict schema.
CRD_SCHEMAS = {"cert-manager.io": CERT_MANAGER_SCHEMA, "monitoring.coreos.com": MONITORING_SCHEMA}
EXTENDER_DEPLOYMENT = "load-aware-extender"  # the TLS variant's extender Deployment

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


def resource_files(base: Path) -> list[Path]:
    """The files a kustomization lists as resources (not the folders: those are other
    kustomizations, such as config/deploy-tls's ../deploy)."""
    return [base / r for r in kustomization(base).get("resources", []) if (base / r).is_file()]


def patch_files(base: Path) -> list[Path]:
    """The patch files a kustomization lists (partial objects: checked once rendered)."""
    return [base / p["path"] for p in kustomization(base).get("patches", []) if "path" in p]


def inline_patches(base: Path) -> list[Obj]:
    return [
        p
        for entry in kustomization(base).get("patches", [])
        if "patch" in entry
        for p in load_docs(entry["patch"])
    ]


def manifest_files() -> list[Path]:
    """Every file config/deploy's and config/deploy-tls's kustomizations list as a resource, plus
    their components' resources and the example workload (which the kustomization leaves out on
    purpose)."""
    files = resource_files(DEPLOY) + resource_files(DEPLOY_TLS)
    for comp in component_dirs():
        files += resource_files(comp)
    return files + [EXAMPLE]


def component_dirs() -> list[Path]:
    return [p for parent in (COMPONENTS, TLS_COMPONENTS) for p in sorted(parent.iterdir()) if p.is_dir()]


def deploy_objects() -> list[Obj]:
    """The objects config/deploy installs, from its source files (no kustomize needed)."""
    return [o for path in resource_files(DEPLOY) for o in load_file(path)]


def tls_objects() -> list[Obj]:
    """The objects config/deploy-tls adds to config/deploy, from its source files."""
    return [o for path in resource_files(DEPLOY_TLS) for o in load_file(path)]


def extender_deployment(objs: list[Obj] | None = None) -> Obj:
    """The TLS variant's extender Deployment."""
    return the(tls_objects() if objs is None else objs, "Deployment", EXTENDER_DEPLOYMENT)


def tls_extender_container(dep: Obj) -> Obj:
    """The extender in its own Deployment: a regular container."""
    found = [c for c in pod_spec(dep)["containers"] if c["name"] == "extender"]
    assert len(found) == 1, "the extender Deployment has no container named 'extender'"
    return found[0]


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


def image_entry(name: str, base: Path = DEPLOY) -> Obj:
    entries = [i for i in kustomization(base).get("images", []) if i["name"] == name]
    assert len(entries) == 1, (
        f"{base.relative_to(ROOT)}/kustomization.yaml: no single `images` entry named {name}"
    )
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


def overlay_with_components(tmp: Path, *components: str, base: Path = DEPLOY) -> Path:
    """A throwaway overlay of config/deploy (or ``base``) with the given components of it
    (kustomize wants relative paths)."""
    rel = os.path.relpath(base, tmp)
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


@functools.cache
def _crd_validator(path: Path) -> jsonschema.protocols.Validator:
    schema = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(obj: Obj, version: str) -> str | None:
    """Strict validation: Kubernetes' own kinds against the bundled OpenAPI schemas of
    ``version``, cert-manager's against config/deploy-tls/cert-manager.v1.schema.json, the
    Prometheus Operator's against config/deploy/components/monitoring/monitoring.coreos.com.v1.schema.json."""
    name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    crd_schema = CRD_SCHEMAS.get(str(obj.get("apiVersion", "")).split("/")[0])
    if crd_schema is not None:
        errors = sorted(
            _crd_validator(crd_schema).iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))
        )
        if errors:
            where = ".".join(str(p) for p in errors[0].absolute_path) or "(top)"
            return f"{name}: {where}: {errors[0].message}"
        return None
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path) or "(top)"
        return f"{name}: {where}: {exc.message}"
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
    for path in (DEPLOY / "deployment.yaml", DEPLOY_TLS / "deployment.yaml", EXAMPLE):
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
    # kube-scheduler starts only once the extender's cache is synced (startupProbe on /readyz)
    assert probe_problems(ext) == []
    sched = scheduler_container(deployment())
    for probe in ("livenessProbe", "readinessProbe"):
        assert sched[probe]["httpGet"]["scheme"] == "HTTPS"
        assert sched[probe]["httpGet"]["port"] == 10259


def test_the_schedulers_own_pods_are_placed_by_the_default_scheduler() -> None:
    for dep in (deployment(), extender_deployment()):
        spec = pod_spec(dep)
        assert spec.get("schedulerName", "default-scheduler") == "default-scheduler", dep["metadata"]["name"]


def test_the_scheduling_path_runs_at_system_cluster_critical_priority() -> None:
    """kube-scheduler and its extender (the sidecar; the TLS variant's Deployment of its own) run
    at the priority of kube-system's add-ons: on a full cluster they preempt workloads instead of
    leaving every pod of their profile Pending behind them (config/deploy/deployment.yaml)."""
    for dep in (deployment(), extender_deployment()):
        assert pod_spec(dep).get("priorityClassName") == "system-cluster-critical", dep["metadata"]["name"]


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


def test_a_policy_change_updates_the_mounted_file_in_place(rendered: list[Obj]) -> None:
    """The extender reloads its policy file (EXTENDER_POLICY_RELOAD_S): the ConfigMap keeps its
    name, so an apply updates it in place and the kubelet swaps the mounted file, instead of a
    new hashed name rolling the scheduler's pods. Mounted as a directory: a ``subPath`` mount
    is never updated by the kubelet."""
    (policy_cm,) = [o for o in find(rendered, "ConfigMap") if "extender-policy" in o["metadata"]["name"]]
    assert policy_cm["metadata"]["name"] == "load-aware-extender-policy"
    ext = extender_container(deployment(rendered))
    (mount,) = [m for m in ext["volumeMounts"] if m["name"] == "extender-policy"]
    assert "subPath" not in mount
    assert float(env_of(ext).get("EXTENDER_POLICY_RELOAD_S", Settings().policy_reload_s)) > 0


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


# ---- listeners, probes and who reaches them ------------------------------------------------------


def setting(env: dict[str, str], name: str) -> Any:
    """The value a container's environment gives a setting (its default when unset)."""
    key = ENV_PREFIX + name.upper()
    return getattr(Settings.from_env({key: env[key]}) if key in env else Settings(), name)


def probe_problems(container: Obj) -> list[str]:
    """The extender's probes: /readyz to start (the sidecar's kube-scheduler waits for it),
    /livez to live, /readyz to be ready, all on the operations listener; and timed so that the
    kubelet restarts a never-ready extender no sooner than its own EXTENDER_LIVENESS_UNREADY_S
    would (the startupProbe stands in for liveness until it passes), nor much later."""
    env = env_of(container)
    ops_port = setting(env, "ops_port")
    problems = []
    for probe, path in (
        ("startupProbe", "/readyz"),
        ("livenessProbe", "/livez"),
        ("readinessProbe", "/readyz"),
    ):
        get = container[probe]["httpGet"]
        if (get["path"], get["port"], get.get("scheme", "HTTP")) != (path, ops_port, "HTTP"):
            problems.append(f"{probe}: {get} is not HTTP GET {path} on the operations port {ops_port}")

    def window(probe: str) -> int:
        p = container[probe]
        return int(p.get("failureThreshold", 3)) * int(p.get("periodSeconds", 10))

    unready = setting(env, "liveness_unready_s")
    if unready > 0 and not unready <= window("startupProbe") <= unready + window("livenessProbe"):
        problems.append(
            f"startupProbe gives up after {window('startupProbe')} s: the extender's own limit is "
            f"EXTENDER_LIVENESS_UNREADY_S={unready:g} s, which the livenessProbe acts on within "
            f"{window('livenessProbe')} s; the startup window must lie between the two"
        )
    if unready > 0 and window("livenessProbe") >= unready:
        problems.append(
            f"livenessProbe window {window('livenessProbe')} s is not short next to {unready:g} s"
        )
    return problems


def test_probe_checks_catch_wrong_ports_and_timings() -> None:
    ext = copy.deepcopy(extender_container(deployment()))
    assert probe_problems(ext) == []
    ext["livenessProbe"]["httpGet"]["port"] = setting(env_of(ext), "port")  # the verbs port
    ext["startupProbe"]["failureThreshold"] = 150  # 300 s: restarts before the extender's 600 s
    problems = probe_problems(ext)
    assert any("livenessProbe" in p and "operations port" in p for p in problems), problems
    assert any("startupProbe gives up after 300 s" in p for p in problems), problems


def test_the_sidecar_serves_verbs_on_loopback_and_operations_on_the_pod_ip() -> None:
    env = env_of(extender_container(deployment()))
    assert setting(env, "host") == "127.0.0.1", "kube-scheduler calls the verbs over the pod's loopback"
    assert setting(env, "ops_host") == "0.0.0.0", "probes and Prometheus reach the pod IP"
    assert setting(env, "ops_port") not in (0, setting(env, "port")), (
        "the operations need a listener of their own"
    )


def test_the_tls_extender_listens_on_the_pod_ip_with_client_certificates() -> None:
    env = env_of(tls_extender_container(extender_deployment()))
    assert setting(env, "host") == "0.0.0.0", "kube-scheduler runs in another pod"
    assert setting(env, "ops_host") == "0.0.0.0"
    assert setting(env, "ops_port") not in (0, setting(env, "port"))
    for key in ("EXTENDER_TLS_CERT_FILE", "EXTENDER_TLS_PRIVATE_KEY_FILE", "EXTENDER_CLIENT_CA_FILE"):
        assert env.get(key), f"{key} unset: the verbs would be plain HTTP, or accept any client"


def admitted(policy: Obj) -> set[tuple[int, str]]:
    """(port, source) pairs a NetworkPolicy's ingress admits. Port 0: every port; source
    'anyone' for a rule without ``from``, else 'namespace:NAME' or 'pods:K=V,...' (same
    namespace), or the selector as written when it is neither."""
    out = set()
    for rule in policy["spec"].get("ingress") or []:
        ports = [int(p["port"]) for p in rule.get("ports", [])] or [0]
        sources = []
        for peer in rule.get("from") or [{}]:
            ns, pods = peer.get("namespaceSelector"), peer.get("podSelector")
            if not peer:
                sources.append("anyone")
            elif (
                ns is not None
                and pods is None
                and set(ns.get("matchLabels", {})) == {"kubernetes.io/metadata.name"}
                and len(ns) == 1
            ):
                sources.append(f"namespace:{ns['matchLabels']['kubernetes.io/metadata.name']}")
            elif pods is not None and ns is None and len(pods) == 1 and pods.get("matchLabels"):
                sources.append("pods:" + ",".join(f"{k}={v}" for k, v in sorted(pods["matchLabels"].items())))
            else:
                sources.append(json.dumps(peer, sort_keys=True))
        out |= {(port, src) for port in ports for src in sources}
    return out


def test_networkpolicy_reading_sees_every_opening() -> None:
    netpol = copy.deepcopy(the(deploy_objects(), "NetworkPolicy"))
    assert admitted(netpol) == {(8889, "namespace:monitoring")}
    netpol["spec"]["ingress"].append({"ports": [{"port": 8888}]})
    netpol["spec"]["ingress"].append({"from": [{"podSelector": {}, "namespaceSelector": {}}]})
    assert (8888, "anyone") in admitted(netpol)
    assert any(port == 0 for port, _ in admitted(netpol))


def test_only_the_operations_port_of_the_sidecar_is_reachable() -> None:
    """The Service, its Prometheus annotations, the container's ports and the NetworkPolicy
    name the operations port and nothing else; the verbs port is not reachable from other pods
    (it listens on loopback) and no object opens it."""
    objs = deploy_objects()
    ext = extender_container(deployment(objs))
    env = env_of(ext)
    ops, verbs = setting(env, "ops_port"), setting(env, "port")
    assert [(p["name"], p["containerPort"]) for p in ext["ports"]] == [("ops", ops)]
    svc = the(objs, "Service", "load-aware-extender-metrics")
    assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(ops, ops)]
    assert svc["metadata"]["annotations"]["prometheus.io/port"] == str(ops)
    assert svc["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    assert admitted(the(objs, "NetworkPolicy")) == {(ops, "namespace:monitoring")}
    assert verbs not in {p for p, _ in admitted(the(objs, "NetworkPolicy"))}


# ---- the settings the manifests use -------------------------------------------------------------

SETTING_NAMES = frozenset(ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Settings))
_SETTING_TOKEN = re.compile(r"\bEXTENDER_[A-Z0-9_]*[A-Z0-9]\b")
# Set by a manifest on purpose to something else than the extender's default (the rest of what
# the manifests write out are the defaults, shown so that an operator sees what to tune).
NOT_DEFAULTS = {
    "EXTENDER_HOST": "the TLS variant's verbs listen on the pod IP (the sidecar's on the default loopback)",
    "EXTENDER_OPS_HOST": "probes and Prometheus reach the pod IP",
    "EXTENDER_POLICY": "the policy ConfigMap's mount",
    "EXTENDER_TLS_CERT_FILE": "the serving certificate's Secret (TLS variant)",
    "EXTENDER_TLS_PRIVATE_KEY_FILE": "the serving certificate's Secret (TLS variant)",
    "EXTENDER_CLIENT_CA_FILE": "the CA of kube-scheduler's client certificate (TLS variant)",
    "EXTENDER_CACHE": "components/stateless turns the cache off",
    "EXTENDER_LOAD_SOURCES": "components/metrics-server adds a source",
}


def _containers(obj: Obj) -> list[Obj]:
    spec = (obj.get("spec") or {}).get("template", {}).get("spec", {})
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def manifest_envs() -> list[tuple[str, Obj]]:
    """(where, container) for every container of every YAML file under config/: resources,
    patch files, and the inline patches of kustomizations and components."""
    out = []
    for path in sorted(CONFIG.rglob("*.yaml")):
        objs = inline_patches(path.parent) if path.name == "kustomization.yaml" else load_file(path)
        out += [(str(path.relative_to(ROOT)), c) for o in objs for c in _containers(o)]
    return out


def unknown_setting_names(text: str) -> set[str]:
    return set(_SETTING_TOKEN.findall(text)) - SETTING_NAMES


def test_every_extender_variable_is_a_setting() -> None:
    """A misspelt variable is not an error for the extender (it reads the names it knows): it
    would silently keep the default. Every EXTENDER_* name set in a container, or written in
    config/ (comments and README included) or the Dockerfile, must be a field of Settings."""
    envs = manifest_envs()
    assert len({w for w, _ in envs}) >= 5, f"containers found in only {sorted({w for w, _ in envs})}"
    set_names = {
        (w, e["name"]) for w, c in envs for e in c.get("env", []) if e["name"].startswith(ENV_PREFIX)
    }
    assert {"EXTENDER_OPS_PORT", "EXTENDER_CLIENT_CA_FILE", "EXTENDER_LOAD_SOURCES"} <= {
        n for _, n in set_names
    }
    bad = sorted((w, n) for w, n in set_names if n not in SETTING_NAMES)
    assert not bad, f"not settings of extender/settings.py: {bad}"
    files = [p for p in sorted(CONFIG.rglob("*")) if p.is_file()] + [ROOT / "Dockerfile"]
    bad_text = {str(p.relative_to(ROOT)): u for p in files if (u := unknown_setting_names(p.read_text()))}
    assert not bad_text, f"EXTENDER_* names that are no setting: {bad_text}"


def test_a_misspelt_variable_is_found() -> None:
    text = "env:\n- name: EXTENDER_BIND_TIMEOUT\n  value: '4'\n# see EXTENDER_OPS_PORT and EXTENDER_*\n"
    assert unknown_setting_names(text) == {"EXTENDER_BIND_TIMEOUT"}


def test_written_out_settings_are_the_defaults() -> None:
    """The values both extender containers spell out are Settings' defaults (so a changed
    default is not silently pinned by the manifests), except those set on purpose."""
    containers = {
        "config/deploy": extender_container(deployment()),
        "config/deploy-tls": tls_extender_container(extender_deployment()),
    }
    for where, container in containers.items():
        for key, value in env_of(container).items():
            if key in NOT_DEFAULTS:
                continue
            name = key.removeprefix(ENV_PREFIX).lower()
            assert setting({key: value}, name) == getattr(Settings(), name), (
                f"{where}: {key}={value!r} is not the default {getattr(Settings(), name)!r}; "
                "change the default in extender/settings.py, or list the key in NOT_DEFAULTS with why"
            )
    for key in (
        "EXTENDER_BIND_TIMEOUT_S",
        "EXTENDER_HEADER_TIMEOUT_S",
        "EXTENDER_READ_TIMEOUT_S",
        "EXTENDER_CACHE_UNHEALTHY_S",
        "EXTENDER_LIVENESS_UNREADY_S",
    ):
        assert key in env_of(containers["config/deploy"]), f"{key}: an operator's knob, write it out"


def test_the_debug_endpoints_are_off_in_every_manifest() -> None:
    """/debug/decisions and /explain show pod and node details to whoever reaches the
    operations port: off unless an operator turns them on (config/README.md)."""
    for where, container in manifest_envs():
        value = {e["name"]: e.get("value") for e in container.get("env", [])}.get("EXTENDER_DEBUG_ENDPOINTS")
        assert value is None or setting({"EXTENDER_DEBUG_ENDPOINTS": value}, "debug_endpoints") is False, (
            where
        )
