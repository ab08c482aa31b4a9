"""config/deploy-tls: the extender in a Deployment of its own, called over mutual TLS, offline.

* ``kubectl kustomize config/deploy-tls`` (an overlay of config/deploy) renders, and every object
  validates strictly (Kubernetes' OpenAPI schemas; cert-manager's Certificate and Issuer against
  config/deploy-tls/cert-manager.v1.schema.json); so does its metrics-server component.
* The sidecar is gone from kube-scheduler's pod (and its volumes), which mounts the client
  certificate and runs the TLS configuration instead, with the base's other arguments.
* The extender Deployment: one replica (bind visibility, deployment.yaml), the sidecar's
  settings but for the listeners and the TLS files, its image pinned as the base pins it.
* The certificates: one CA Issuer of the namespace signs a serving certificate (server auth,
  the Service's names) and kube-scheduler's client certificate (client auth); the files the
  extender reads are the keys of the Secrets it mounts.
* Who reaches what: the verbs port only from kube-scheduler's pods, the operations port only
  from the monitoring namespace, kube-scheduler's pods from nobody; the Services select the
  extender's pods and lead to the right ports.

The RBAC of this variant is checked in tests/test_config_rbac.py, its scheduler configuration in
tests/test_config_scheduler.py.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.test_config_manifests import (
    CERT_MANAGER_SCHEMA,
    DEPLOY,
    DEPLOY_TLS,
    EXTENDER_DEPLOYMENT,
    Obj,
    admitted,
    deploy_objects,
    deployment,
    env_of,
    extender_container,
    extender_deployment,
    find,
    image_entry,
    kustomize_build,
    load_file,
    overlay_with_components,
    patch_files,
    pod_spec,
    probe_problems,
    resource_files,
    scheduler_container,
    scheduler_minor_version,
    schema_errors,
    setting,
    the,
    tls_extender_container,
    tls_objects,
    validation_versions,
)
from tests.test_config_scheduler import TLS, go_duration_s

# Where the sidecar's and the TLS extender's environments may differ.
TLS_ONLY_SETTINGS = {
    "EXTENDER_HOST",
    "EXTENDER_TLS_CERT_FILE",
    "EXTENDER_TLS_PRIVATE_KEY_FILE",
    "EXTENDER_CLIENT_CA_FILE",
}


# ---- rendering ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered_tls() -> list[Obj]:
    return kustomize_build(DEPLOY_TLS)


@pytest.mark.parametrize("version", validation_versions())
def test_kustomize_renders_config_deploy_tls_and_every_object_validates(
    rendered_tls: list[Obj], version: str
) -> None:
    problems = [err for obj in rendered_tls if (err := schema_errors(obj, version))]
    assert not problems, f"rendered config/deploy-tls against Kubernetes {version}:\n" + "\n".join(problems)
    kinds = {o["kind"] for o in rendered_tls}
    assert {"Deployment", "Service", "NetworkPolicy", "Certificate", "Issuer", "ServiceAccount"} <= kinds
    assert len(find(rendered_tls, "Deployment")) == 2


def test_every_file_of_the_overlay_is_used() -> None:
    """A manifest left out of kustomization.yaml would be read by nobody (and checked by no test
    that renders); a listed patch must be a partial object of config/deploy."""
    listed = set(resource_files(DEPLOY_TLS)) | set(patch_files(DEPLOY_TLS))
    present = {p for p in DEPLOY_TLS.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert present == listed, f"not in kustomization.yaml: {sorted(p.name for p in present - listed)}"
    base = {(o["kind"], o["metadata"]["name"]) for o in deploy_objects()}
    for path in patch_files(DEPLOY_TLS):
        for obj in load_file(path):
            assert (obj["kind"], obj["metadata"]["name"]) in base, (
                f"{path.name} patches nothing of config/deploy"
            )


def test_cert_manager_schema_is_strict() -> None:
    """The schema really rejects what cert-manager's API would (guards the check above)."""
    cert = the(tls_objects(), "Certificate", "load-aware-extender-serving")
    assert schema_errors(cert, scheduler_minor_version()) is None
    broken = {
        "misspelt field": lambda c: c["spec"].update(dnsName=["x"]),
        "unknown usage": lambda c: c["spec"].update(usages=["server authentication"]),
        "duration as a number": lambda c: c["spec"].update(duration=2160),
        "no secretName": lambda c: c["spec"].pop("secretName"),
        "miscased issuerRef": lambda c: c["spec"].update(issuerRef={"Name": "x"}),
        "wrong apiVersion group": lambda c: c.update(apiVersion="cert-manager.io/v2"),
    }
    for what, mutate in broken.items():
        obj = copy.deepcopy(cert)
        mutate(obj)
        assert schema_errors(obj, scheduler_minor_version()) is not None, what
    issuer = copy.deepcopy(the(tls_objects(), "Issuer", "load-aware-extender-ca"))
    issuer["spec"]["selfSigned"] = {}
    assert schema_errors(issuer, scheduler_minor_version()) is not None, "two kinds of issuer"
    assert CERT_MANAGER_SCHEMA.is_file()


def test_every_volume_is_mounted_and_every_mount_has_a_volume(rendered_tls: list[Obj]) -> None:
    for dep in find(rendered_tls, "Deployment"):
        spec = pod_spec(dep)
        volumes = {v["name"] for v in spec.get("volumes", [])}
        mounted = {
            m["name"]
            for c in spec.get("initContainers", []) + spec["containers"]
            for m in c.get("volumeMounts", [])
        }
        assert mounted == volumes, (
            f"{dep['metadata']['name']}: volumes {sorted(volumes)}, mounted {sorted(mounted)}"
        )


def test_the_scheduler_runs_without_the_sidecar(rendered_tls: list[Obj]) -> None:
    dep = deployment(rendered_tls)
    assert not pod_spec(dep).get("initContainers"), "the sidecar is still in kube-scheduler's pod"
    assert [c["name"] for c in pod_spec(dep)["containers"]] == ["kube-scheduler"]
    args = scheduler_container(dep)["args"]
    assert f"--config=/etc/load-aware-scheduler/{TLS.name}" in args
    base_args = [a for a in scheduler_container(deployment())["args"] if not a.startswith("--config=")]
    assert [a for a in args if not a.startswith("--config=")] == base_args, "the patch dropped an argument"
    cm = {o["metadata"]["name"]: o for o in find(rendered_tls, "ConfigMap")}
    volume = {v["name"]: v for v in pod_spec(dep)["volumes"]}["scheduler-config"]
    assert cm[volume["configMap"]["name"]]["data"][TLS.name] == TLS.read_text()
    # Unchanged from config/deploy: two replicas, one leader, the PodDisruptionBudget.
    assert dep["spec"]["replicas"] == deployment()["spec"]["replicas"]
    assert the(rendered_tls, "PodDisruptionBudget")


def test_the_extender_image_is_pinned_as_in_the_base(rendered_tls: list[Obj]) -> None:
    base, tls = image_entry("load-aware-extender"), image_entry("load-aware-extender", DEPLOY_TLS)
    assert tls == base, "config/deploy-tls/kustomization.yaml pins another extender image than config/deploy"
    ext = tls_extender_container(extender_deployment(rendered_tls))
    assert ext["image"] == f"{base['newName']}:{base['newTag']}"
    policy = {o["metadata"]["name"]: o for o in find(rendered_tls, "ConfigMap")}
    volume = {v["name"]: v for v in pod_spec(extender_deployment(rendered_tls))["volumes"]}["extender-policy"]
    assert volume["configMap"]["name"] in policy, "the policy ConfigMap's generated name was not followed"


def test_component_metrics_server_renders_for_the_tls_variant(tmp_path: Path) -> None:
    objs = kustomize_build(overlay_with_components(tmp_path, "metrics-server", base=DEPLOY_TLS))
    env = env_of(tls_extender_container(extender_deployment(objs)))
    assert env["EXTENDER_LOAD_SOURCES"].split(",") == ["annotations", "metrics-server"]
    assert not pod_spec(deployment(objs)).get("initContainers")
    problems = [err for obj in objs if (err := schema_errors(obj, scheduler_minor_version()))]
    assert not problems, problems


# ---- the extender Deployment --------------------------------------------------------------------


def test_one_extender_replica() -> None:
    """Binds are counted in the process that made them before the watch shows them: every call
    must reach one process (deployment.yaml explains; the Service keeps affinity for upgrades)."""
    dep = extender_deployment()
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}, (
        "no gap at upgrades"
    )
    assert the(tls_objects(), "Service", EXTENDER_DEPLOYMENT)["spec"]["sessionAffinity"] == "ClientIP"
    assert not find(tls_objects(), "PodDisruptionBudget"), (
        "a PDB of one replica blocks drains or protects nothing"
    )


def test_the_extender_has_the_sidecars_settings_but_listeners_and_tls() -> None:
    sidecar, own = extender_container(deployment()), tls_extender_container(extender_deployment())
    env_s, env_t = env_of(sidecar), env_of(own)
    differ = {k for k in env_s.keys() | env_t.keys() if env_s.get(k) != env_t.get(k)}
    assert differ <= TLS_ONLY_SETTINGS, (
        f"settings that differ from the sidecar's: {sorted(differ - TLS_ONLY_SETTINGS)}"
    )
    for key in ("startupProbe", "livenessProbe", "readinessProbe", "resources", "securityContext"):
        assert own[key] == sidecar[key], key
    assert pod_spec(extender_deployment())["securityContext"] == pod_spec(deployment())["securityContext"]
    assert probe_problems(own) == []
    ports = {p["containerPort"] for p in own["ports"]}
    assert ports == {setting(env_t, "port"), setting(env_t, "ops_port")}


def test_the_extender_reads_its_certificate_from_the_serving_secret() -> None:
    objs = tls_objects()
    dep = extender_deployment(objs)
    ext = tls_extender_container(dep)
    env = env_of(ext)
    volumes = {v["name"]: v for v in pod_spec(dep)["volumes"]}
    serving = the(objs, "Certificate", "load-aware-extender-serving")
    for key, file in (
        ("EXTENDER_TLS_CERT_FILE", "tls.crt"),
        ("EXTENDER_TLS_PRIVATE_KEY_FILE", "tls.key"),
        ("EXTENDER_CLIENT_CA_FILE", "ca.crt"),
    ):
        path = Path(env[key])
        assert path.name == file, f"{key}: cert-manager writes {file}, not {path.name}"
        mounts = [m for m in ext["volumeMounts"] if Path(m["mountPath"]) == path.parent]
        assert len(mounts) == 1 and "subPath" not in mounts[0], (
            f"{key}: no single whole-volume mount at {path.parent}"
        )
        assert volumes[mounts[0]["name"]]["secret"]["secretName"] == serving["spec"]["secretName"], key


# ---- the certificates ---------------------------------------------------------------------------


def _issuer_chain(objs: list[Obj], cert: Obj) -> Obj:
    ref = cert["spec"]["issuerRef"]
    assert ref.get("kind", "Issuer") == "Issuer" and ref.get("group", "cert-manager.io") == "cert-manager.io"
    return the(objs, "Issuer", ref["name"])


def test_one_ca_of_the_namespace_signs_both_leaf_certificates() -> None:
    objs = tls_objects()
    serving = the(objs, "Certificate", "load-aware-extender-serving")
    client = the(objs, "Certificate", "load-aware-scheduler-extender-client")
    issuer = _issuer_chain(objs, serving)
    assert _issuer_chain(objs, client) is issuer, (
        "the extender trusts the CA of its own serving Secret's ca.crt"
    )
    ca_cert = [
        c for c in find(objs, "Certificate") if c["spec"]["secretName"] == issuer["spec"]["ca"]["secretName"]
    ]
    assert len(ca_cert) == 1 and ca_cert[0]["spec"]["isCA"] is True
    assert "selfSigned" in _issuer_chain(objs, ca_cert[0])["spec"]
    assert (
        set(serving["spec"]["usages"]) >= {"server auth"} and "client auth" not in serving["spec"]["usages"]
    )
    assert set(client["spec"]["usages"]) >= {"client auth"} and "server auth" not in client["spec"]["usages"]
    namespace = deployment()["metadata"]["namespace"]
    for cert in find(objs, "Certificate") + find(objs, "Issuer"):
        assert cert["metadata"]["namespace"] == namespace
    for cert in find(objs, "Certificate"):
        duration = go_duration_s(cert["spec"].get("duration", "2160h"))
        renew = go_duration_s(cert["spec"].get("renewBefore", "0s")) or duration / 3
        assert duration >= 3600 and 300 <= renew < duration, cert["metadata"]["name"]


def test_the_serving_certificate_names_the_service() -> None:
    objs = tls_objects()
    svc = the(objs, "Service", EXTENDER_DEPLOYMENT)
    name = f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc"
    dns = the(objs, "Certificate", "load-aware-extender-serving")["spec"]["dnsNames"]
    assert name in dns and f"{name}.cluster.local" in dns


# ---- who reaches what ---------------------------------------------------------------------------


def _pods(dep: Obj) -> str:
    labels = dep["spec"]["template"]["metadata"]["labels"]
    return "pods:app.kubernetes.io/name=" + labels["app.kubernetes.io/name"]


def test_the_verbs_port_admits_only_the_scheduler_pods() -> None:
    objs = tls_objects()
    env = env_of(tls_extender_container(extender_deployment(objs)))
    policy = the(objs, "NetworkPolicy", EXTENDER_DEPLOYMENT)
    labels = extender_deployment(objs)["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert admitted(policy) == {
        (setting(env, "port"), _pods(deployment())),
        (setting(env, "ops_port"), "namespace:monitoring"),
    }
    # the scheduler's pods are not selected by the extender's policy, nor the reverse
    sched_labels = deployment()["spec"]["template"]["metadata"]["labels"]
    assert not policy["spec"]["podSelector"]["matchLabels"].items() <= sched_labels.items()


def test_the_scheduler_pods_admit_nobody(rendered_tls: list[Obj]) -> None:
    policy = the(rendered_tls, "NetworkPolicy", "load-aware-scheduler")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert admitted(policy) == set()


def test_the_services_lead_to_the_extender_ports(rendered_tls: list[Obj]) -> None:
    dep = extender_deployment(rendered_tls)
    labels = dep["spec"]["template"]["metadata"]["labels"]
    env = env_of(tls_extender_container(dep))
    verbs = the(rendered_tls, "Service", EXTENDER_DEPLOYMENT)
    metrics = the(rendered_tls, "Service", "load-aware-extender-metrics")
    for svc in (verbs, metrics):
        assert svc["spec"]["selector"].items() <= labels.items(), svc["metadata"]["name"]
    assert [(p["port"], p["targetPort"]) for p in verbs["spec"]["ports"]] == [(443, setting(env, "port"))]
    assert [p["targetPort"] for p in metrics["spec"]["ports"]] == [setting(env, "ops_port")]
    assert metrics["metadata"]["annotations"]["prometheus.io/port"] == str(setting(env, "ops_port"))
    sched_labels = deployment()["spec"]["template"]["metadata"]["labels"]
    assert not any(
        s["spec"]["selector"].items() <= sched_labels.items() for s in find(rendered_tls, "Service")
    )


def test_source_objects_are_namespaced_and_labelled() -> None:
    namespace = deployment()["metadata"]["namespace"]
    for path in sorted(DEPLOY_TLS.glob("*.yaml")):
        for obj in load_file(path):
            if obj.get("kind") in ("Kustomization", "ClusterRole", "ClusterRoleBinding"):
                continue
            assert obj["metadata"].get("namespace") == namespace, f"{path.name}: {obj['kind']}"
    assert the(deploy_objects(), "Namespace")["metadata"]["name"] == namespace
    assert DEPLOY.is_dir()
