"""config/scheduler: the KubeSchedulerConfiguration files, checked field by field, offline.

kube-scheduler decodes its configuration strictly (an unknown or miscased key fails start-up)
and then validates it (k/k pkg/scheduler/apis/config/validation/validation.go). This test does
the same without a scheduler:

* config/scheduler/kubescheduler-config.v1.schema.json, written field by field from the v1 Go
  types (k/k staging/src/k8s.io/kube-scheduler/config/v1/types.go and component-base
  config/v1alpha1/types.go), every object closed (additionalProperties: false), keys
  case-sensitive; integers must be integers (Go will not decode 1.5 or "1" into an int64).
* The validation rules that matter for extenders: weight > 0 wherever prioritizeVerb is set,
  at most one bindVerb, unique managed resources, httpTimeout a Go duration; and for a
  secondary scheduler, a lease of its own.
* Against the app: urlPrefix + each verb is a POST route of the Flask app (built from
  extender.server.app.create_app, so a renamed route breaks this test), on the port and prefix the
  sidecar is configured with (config/deploy/deployment.yaml, defaults from extender/settings.py);
  for the TLS variant (secondary-scheduler-tls.yaml), through the Service to the extender
  Deployment's verbs port, a host name its serving certificate carries, and tlsConfig files that
  are the keys of the client certificate Secret kube-scheduler mounts.
"""

from __future__ import annotations

import copy
import json
import re
import urllib.parse
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from extender.server.app import VERBS, create_app
from extender.settings import Settings
from tests.test_config_manifests import (
    COMPONENTS,
    DEPLOY,
    DEPLOY_TLS,
    SCHEDULER_DIR,
    Obj,
    deploy_objects,
    deployment,
    env_of,
    extender_container,
    extender_deployment,
    kustomization,
    load_docs,
    load_one,
    pod_spec,
    scheduler_container,
    setting,
    the,
    tls_extender_container,
    tls_objects,
)

SCHEMA_PATH = SCHEDULER_DIR / "kubescheduler-config.v1.schema.json"
SECONDARY = SCHEDULER_DIR / "secondary-scheduler.yaml"
STATELESS = SCHEDULER_DIR / "secondary-scheduler-stateless.yaml"
EXISTING = SCHEDULER_DIR / "existing-scheduler-extender.yaml"
TLS = SCHEDULER_DIR / "secondary-scheduler-tls.yaml"
LOOPBACK_FILES = [SECONDARY, STATELESS, EXISTING]  # the extender beside kube-scheduler
CONFIG_FILES = [*LOOPBACK_FILES, TLS]

DEFAULT_SCHEDULER = "default-scheduler"
# component-base RecommendedDefaultLeaderElectionConfiguration + kube-scheduler's defaults
# (k/k pkg/scheduler/apis/config/v1/defaults.go).
DEFAULT_LEASE = ("kube-system", "kube-scheduler")

_UNIT_S = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def go_duration_s(text: str) -> float:
    """Seconds of a Go duration string (time.ParseDuration), for the values used here."""
    if text == "0":
        return 0.0
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(body):
        assert m.start() == pos, f"not a Go duration: {text!r}"
        total += float(m[1]) * _UNIT_S[m[2]]
        pos = m.end()
    assert pos == len(body) and body, f"not a Go duration: {text!r}"
    return sign * total


def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    base = jsonschema.Draft202012Validator
    base.check_schema(schema)
    # Go decodes JSON numbers into int32/int64 only when they are written as integers.
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _checker, v: isinstance(v, int) and not isinstance(v, bool)
    )
    return jsonschema.validators.extend(base, type_checker=checker)(schema)


VALIDATOR = _validator()


def scheduler_config_problems(cfg: Any) -> list[str]:
    """What kube-scheduler would refuse (strict decoding, then validation), plus the rules this
    project adds for its extender entries. Empty when the configuration is fine."""
    problems = [
        f"{'.'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
        for e in sorted(VALIDATOR.iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if problems:
        return problems
    extenders = cfg.get("extenders", [])
    binders = [i for i, e in enumerate(extenders) if e.get("bindVerb")]
    if len(binders) > 1:
        problems.append(f"extenders{binders}: only one extender can implement bind")
    managed: set[str] = set()
    for i, ext in enumerate(extenders):
        where = f"extenders[{i}]"
        if ext.get("prioritizeVerb") and not ext.get("weight", 0) > 0:
            problems.append(
                f"{where}.weight: must have a positive weight applied to it (prioritizeVerb is set)"
            )
        for r in ext.get("managedResources", []):
            if r["name"] in managed:
                problems.append(
                    f"{where}.managedResources: duplicate extender managed resource name {r['name']!r}"
                )
            managed.add(r["name"])
        if "httpTimeout" not in ext:
            problems.append(f"{where}.httpTimeout: set it explicitly (0 means the scheduler's 5 s default)")
        elif not go_duration_s(ext["httpTimeout"]) > 0:
            problems.append(f"{where}.httpTimeout: must be > 0")
        if ext.get("enableHTTPS") and ext["urlPrefix"].startswith("http://"):
            problems.append(f"{where}: enableHTTPS does not change the scheme; the urlPrefix is http://")
        problems += _tls_problems(where, ext)
        if not any(ext.get(v) for v in ("filterVerb", "prioritizeVerb", "bindVerb", "preemptVerb")):
            problems.append(f"{where}: no verb set, the extender would never be called")
    names = [p.get("schedulerName", DEFAULT_SCHEDULER) for p in cfg.get("profiles", [{}])]
    if len(names) != len(set(names)):
        problems.append(f"profiles: duplicate schedulerName in {names}")
    if any(n != DEFAULT_SCHEDULER for n in names):  # a secondary scheduler
        if DEFAULT_SCHEDULER in names:
            problems.append("profiles: a secondary scheduler must not also serve 'default-scheduler'")
        le = cfg.get("leaderElection", {})
        lease = (le.get("resourceNamespace", DEFAULT_LEASE[0]), le.get("resourceName", DEFAULT_LEASE[1]))
        if le.get("leaderElect", True) and lease == DEFAULT_LEASE:
            problems.append(
                "leaderElection: a secondary scheduler on the default lease "
                "kube-system/kube-scheduler joins the default scheduler's election; "
                "set resourceName"
            )
        if le.get("leaderElect", True) and le.get("resourceLock", "leases") != "leases":
            problems.append("leaderElection.resourceLock: must be leases")
    return problems


def _tls_problems(where: str, ext: Obj) -> list[str]:
    """This project's rules for an HTTPS extender entry: kube-scheduler skips verifying the
    extender's certificate when enableHTTPS is set without a CA (k/k pkg/scheduler/extender.go,
    makeTransport), or with insecure; and scheme and enableHTTPS must agree."""
    tls = ext.get("tlsConfig", {})
    https = ext["urlPrefix"].startswith("https://")
    problems = []
    if https and not ext.get("enableHTTPS"):
        problems.append(f"{where}: an https:// urlPrefix without enableHTTPS: true")
    if ext.get("enableHTTPS") and not (tls.get("caFile") or tls.get("caData")):
        problems.append(
            f"{where}.tlsConfig: enableHTTPS without caFile or caData: the extender is not verified"
        )
    if tls.get("insecure"):
        problems.append(f"{where}.tlsConfig.insecure: the extender's certificate would not be verified")
    if bool(tls.get("certFile") or tls.get("certData")) != bool(tls.get("keyFile") or tls.get("keyData")):
        problems.append(f"{where}.tlsConfig: a client certificate needs both its certificate and its key")
    return problems


def secondary_config() -> Obj:
    return load_one(SECONDARY)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_configuration_is_accepted(path: Path) -> None:
    problems = scheduler_config_problems(load_one(path))
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def _mutated(mutate: Any) -> Obj:
    cfg = copy.deepcopy(secondary_config())
    mutate(cfg)
    return cfg


def _rename(d: Obj, old: str, new: str) -> None:
    d[new] = d.pop(old)


BROKEN = {
    "unknown top-level key": lambda c: c.update(extenderz=[]),
    "miscased urlPrefix": lambda c: _rename(c["extenders"][0], "urlPrefix", "urlprefix"),
    "legacy enableHttps casing": lambda c: c["extenders"][0].update(enableHttps=False),
    "miscased nodeCacheCapable": lambda c: _rename(c["extenders"][0], "nodeCacheCapable", "NodeCacheCapable"),
    "unknown key in leaderElection": lambda c: c["leaderElection"].update(leaseName="x"),
    "unknown key in a profile": lambda c: c["profiles"][0].update(extenders=[]),
    "unknown key in tlsConfig": lambda c: c["extenders"][0].update(tlsConfig={"caCert": "x"}),
    "httpTimeout as a number": lambda c: c["extenders"][0].update(httpTimeout=5),
    "httpTimeout in words": lambda c: c["extenders"][0].update(httpTimeout="5 seconds"),
    "httpTimeout zero": lambda c: c["extenders"][0].update(httpTimeout="0s"),
    "httpTimeout missing": lambda c: c["extenders"][0].pop("httpTimeout"),
    "weight 0 with prioritizeVerb": lambda c: c["extenders"][0].update(weight=0),
    "weight missing with prioritizeVerb": lambda c: c["extenders"][0].pop("weight"),
    "fractional weight": lambda c: c["extenders"][0].update(weight=1.5),
    "weight as a string": lambda c: c["extenders"][0].update(weight="3"),
    "nodeCacheCapable as a string": lambda c: c["extenders"][0].update(nodeCacheCapable="true"),
    "two binders": lambda c: c["extenders"].append(
        dict(c["extenders"][0], urlPrefix="http://127.0.0.1:9999")
    ),
    "default lease name": lambda c: c["leaderElection"].update(
        resourceName="kube-scheduler", resourceNamespace="kube-system"
    ),
    "default lease by omission": lambda c: c.pop("leaderElection"),
    "duplicate profile": lambda c: c["profiles"].append(dict(c["profiles"][0])),
    "secondary also default": lambda c: c["profiles"].append({"schedulerName": "default-scheduler"}),
    "wrong apiVersion": lambda c: c.update(apiVersion="kubescheduler.config.k8s.io/v1beta3"),
    "urlPrefix without scheme": lambda c: c["extenders"][0].update(urlPrefix="127.0.0.1:8888"),
    "enableHTTPS on http": lambda c: c["extenders"][0].update(enableHTTPS=True),
}

BROKEN_TLS = {
    "no CA": lambda c: c["extenders"][0]["tlsConfig"].pop("caFile"),
    "insecure": lambda c: c["extenders"][0]["tlsConfig"].update(insecure=True),
    "https without enableHTTPS": lambda c: c["extenders"][0].pop("enableHTTPS"),
    "http scheme": lambda c: c["extenders"][0].update(
        urlPrefix=c["extenders"][0]["urlPrefix"].replace("https://", "http://")
    ),
    "certificate without key": lambda c: c["extenders"][0]["tlsConfig"].pop("keyFile"),
    "miscased caFile": lambda c: _rename(c["extenders"][0]["tlsConfig"], "caFile", "cafile"),
    "CA as a list": lambda c: c["extenders"][0]["tlsConfig"].update(caFile=["/x"]),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_configuration_is_refused(name: str) -> None:
    assert scheduler_config_problems(_mutated(BROKEN[name])), f"{name}: not detected"


@pytest.mark.parametrize("name", list(BROKEN_TLS))
def test_broken_tls_configuration_is_refused(name: str) -> None:
    cfg = copy.deepcopy(load_one(TLS))
    BROKEN_TLS[name](cfg)
    assert scheduler_config_problems(cfg), f"{name}: not detected"


def test_go_durations() -> None:
    assert go_duration_s("5s") == 5.0
    assert go_duration_s("1m30s") == 90.0
    assert go_duration_s("1.5h") == 5400.0
    assert go_duration_s("250ms") == 0.25
    for bad in ("5", "5 s", "s", "5sec", ""):
        with pytest.raises(AssertionError):
            go_duration_s(bad)


def test_httptimeout_outlasts_the_extenders_bind_budget() -> None:
    """A bind the scheduler gave up on may still land; the extender's own deadline (retry
    included) must end first."""
    for path in CONFIG_FILES:
        container = (
            tls_extender_container(extender_deployment()) if path == TLS else extender_container(deployment())
        )
        budget = setting(env_of(container), "bind_timeout_s")
        for ext in load_one(path).get("extenders", []):
            if ext.get("bindVerb"):
                assert go_duration_s(ext["httpTimeout"]) > budget, path.name


# ---- against the app and the sidecar ---------------------------------------------------------


@pytest.fixture(scope="module")
def routes() -> dict[str, set[str]]:
    app = create_app(Settings(api_access=False))
    out: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        out.setdefault(rule.rule, set()).update(rule.methods or ())
    return out


def sidecar_port_and_prefix() -> tuple[int, str]:
    env = env_of(extender_container(deployment()))
    defaults = Settings()
    return int(env.get("EXTENDER_PORT", defaults.port)), env.get("EXTENDER_URL_PREFIX", defaults.url_prefix)


def _verbs_are_served(path: Path, ext: Obj, prefix: str, routes: dict[str, set[str]]) -> None:
    url = urllib.parse.urlsplit(ext["urlPrefix"])
    assert not url.query and not url.fragment
    base = url.path.rstrip("/")  # kube-scheduler: TrimRight(urlPrefix, "/") + "/" + verb
    assert base == prefix, f"urlPrefix path {base!r} but the extender's url prefix is {prefix!r}"
    for field in ("filterVerb", "prioritizeVerb", "bindVerb", "preemptVerb"):
        if verb := ext.get(field):
            route = f"{base}/{verb}"
            assert "POST" in routes.get(route, set()), f"{path.name}: {field} -> POST {route} is not served"


@pytest.mark.parametrize("path", LOOPBACK_FILES, ids=lambda p: p.name)
def test_url_prefix_and_verbs_are_routes_the_sidecar_serves(path: Path, routes: dict[str, set[str]]) -> None:
    port, prefix = sidecar_port_and_prefix()
    for ext in load_one(path)["extenders"]:
        url = urllib.parse.urlsplit(ext["urlPrefix"])
        assert url.scheme == "http", "the sidecar's verbs listener serves plain HTTP (loopback only)"
        assert url.hostname == "127.0.0.1", "the sidecar is called over IPv4 loopback"
        assert url.port == port, f"urlPrefix port {url.port} but the sidecar listens on {port}"
        _verbs_are_served(path, ext, prefix, routes)


def test_tls_url_prefix_reaches_the_extender_deployment(routes: dict[str, set[str]]) -> None:
    """https://SERVICE.NAMESPACE.svc:PORT: a Service of config/deploy-tls whose port leads to
    the extender Deployment's verbs listener, a name the serving certificate carries."""
    objs = tls_objects()
    env = env_of(tls_extender_container(extender_deployment(objs)))
    (ext,) = load_one(TLS)["extenders"]
    url = urllib.parse.urlsplit(ext["urlPrefix"])
    assert url.scheme == "https"
    assert url.hostname and url.port
    service, namespace, svc = url.hostname.split(".")
    assert svc == "svc", "the cluster's own DNS name of the Service, not a guess at its domain"
    svc_obj = the(objs, "Service", service)
    assert svc_obj["metadata"]["namespace"] == namespace
    pod_labels = extender_deployment(objs)["spec"]["template"]["metadata"]["labels"]
    assert svc_obj["spec"]["selector"].items() <= pod_labels.items()
    target = [p["targetPort"] for p in svc_obj["spec"]["ports"] if p["port"] == url.port]
    assert target == [setting(env, "port")], (
        f"port {url.port} of {service} does not lead to the verbs listener"
    )
    serving = the(objs, "Certificate", "load-aware-extender-serving")
    assert url.hostname in serving["spec"]["dnsNames"], (
        "the handshake would fail: the name is not in the certificate"
    )
    _verbs_are_served(TLS, ext, setting(env, "url_prefix"), routes)


def test_tls_config_files_are_the_mounted_client_certificate() -> None:
    """tlsConfig's files are tls.crt, tls.key and ca.crt of the Secret that the client
    Certificate fills, mounted in kube-scheduler's container by the TLS variant's patch."""
    tls = load_one(TLS)["extenders"][0]["tlsConfig"]
    patch = load_one(DEPLOY_TLS / "patch-scheduler-deployment.yaml")
    sched = scheduler_container(patch)
    volumes = {v["name"]: v for v in pod_spec(patch)["volumes"]}
    client = the(tls_objects(), "Certificate", "load-aware-scheduler-extender-client")
    for field, key in (("certFile", "tls.crt"), ("keyFile", "tls.key"), ("caFile", "ca.crt")):
        path = Path(tls[field])
        assert path.name == key, f"tlsConfig.{field}: cert-manager writes {key}, not {path.name}"
        mounts = [m for m in sched["volumeMounts"] if Path(m["mountPath"]) == path.parent]
        assert len(mounts) == 1, f"tlsConfig.{field}: nothing mounted at {path.parent}"
        assert mounts[0].get("readOnly") is True and "subPath" not in mounts[0], (
            "subPath mounts are never updated"
        )
        assert volumes[mounts[0]["name"]]["secret"]["secretName"] == client["spec"]["secretName"]
    assert f"--config=/etc/load-aware-scheduler/{TLS.name}" in sched["args"]


def test_the_secondary_scheduler_uses_every_verb_the_app_serves() -> None:
    ext = secondary_config()["extenders"][0]
    assert {ext.get(f"{v}Verb") for v in VERBS} == set(VERBS)


def test_sidecar_port_probes_and_metrics_service(routes: dict[str, set[str]]) -> None:
    port, _ = sidecar_port_and_prefix()
    ext = extender_container(deployment())
    assert port == Settings().port, "EXTENDER_PORT differs from the extender's default (the image's EXPOSE)"
    ops = setting(env_of(ext), "ops_port")
    for container in (ext, tls_extender_container(extender_deployment())):
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = container[probe]["httpGet"]
            assert get["port"] == ops, f"{probe} not on the operations port"
            assert "GET" in routes.get(get["path"], set()), f"{probe}: GET {get['path']} is not served"
    svc = the(deploy_objects(), "Service")
    assert [p["targetPort"] for p in svc["spec"]["ports"]] == [ops]
    assert "GET" in routes["/metrics"]
    assert svc["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"


def _inline_patches(component: str) -> list[Obj]:
    return [
        p
        for entry in kustomization(COMPONENTS / component).get("patches", [])
        for p in load_docs(entry["patch"])
    ]


def _config_arg(container: Obj) -> str:
    args = [a for a in container["args"] if a.startswith("--config=")]
    assert len(args) == 1
    return args[0].removeprefix("--config=")


def test_deployment_runs_the_cache_mode_configuration() -> None:
    dep = deployment()
    sched = scheduler_container(dep)
    cfg_path = _config_arg(sched)
    mounts = {m["mountPath"]: m["name"] for m in sched["volumeMounts"]}
    volume = {v["name"]: v for v in pod_spec(dep)["volumes"]}[mounts[str(Path(cfg_path).parent)]]
    gen = kustomization(SCHEDULER_DIR)["configMapGenerator"]
    assert [g["name"] for g in gen] == [volume["configMap"]["name"]]
    assert Path(cfg_path).name in gen[0]["files"]
    cfg = load_one(SCHEDULER_DIR / Path(cfg_path).name)
    assert cfg["extenders"][0]["nodeCacheCapable"] is True
    assert env_of(extender_container(dep)).get("EXTENDER_CACHE", "true") == "true"
    verbosity = [int(a.removeprefix("--v=")) for a in sched["args"] if a.startswith("--v=")]
    assert verbosity and verbosity[0] >= 2, "--v=2 logs 'Creating extender' (the README's check)"


def test_stateless_component_switches_both_sides() -> None:
    dep_patch = [p for p in _inline_patches("stateless") if p["kind"] == "Deployment"][0]
    env = env_of(extender_container(dep_patch))
    assert env["EXTENDER_CACHE"] == "false"
    cfg_name = Path(_config_arg(scheduler_container(dep_patch))).name
    assert cfg_name == STATELESS.name
    assert cfg_name in kustomization(SCHEDULER_DIR)["configMapGenerator"][0]["files"]
    assert load_one(STATELESS)["extenders"][0]["nodeCacheCapable"] is False
    # apart from its --config, the patch keeps the base's arguments
    base_args = [a for a in scheduler_container(deployment())["args"] if not a.startswith("--config=")]
    assert [a for a in scheduler_container(dep_patch)["args"] if not a.startswith("--config=")] == base_args


def test_variants_differ_from_the_main_configuration_only_where_they_say() -> None:
    main = secondary_config()
    for path, differs in (
        (STATELESS, {"nodeCacheCapable"}),
        (TLS, {"urlPrefix", "enableHTTPS", "tlsConfig"}),
    ):
        variant = load_one(path)
        assert variant.keys() == main.keys(), path.name
        assert variant["leaderElection"] == main["leaderElection"], path.name
        assert variant["profiles"] == main["profiles"], path.name
        diff = {
            k
            for k in main["extenders"][0].keys() | variant["extenders"][0].keys()
            if main["extenders"][0].get(k) != variant["extenders"][0].get(k)
        }
        assert diff == differs, path.name
    existing = load_one(EXISTING)
    assert "profiles" not in existing and "leaderElection" not in existing, (
        "the existing-scheduler entry must not change that scheduler's name or lease"
    )
    assert existing["extenders"][0]["ignorable"] is True, "a default scheduler must survive the extender"
    assert not existing["extenders"][0].get("bindVerb")
    assert main["extenders"][0]["ignorable"] is False


def test_the_lease_is_granted_to_the_pods_service_account() -> None:
    le = secondary_config()["leaderElection"]
    objs = deploy_objects()
    dep = deployment(objs)
    sa = pod_spec(dep)["serviceAccountName"]
    ns = dep["metadata"]["namespace"]
    assert le["resourceNamespace"] == ns
    roles = {
        o["metadata"]["name"]: o for o in objs if o["kind"] == "Role" and o["metadata"]["namespace"] == ns
    }
    bound = [
        b["roleRef"]["name"]
        for b in objs
        if b["kind"] == "RoleBinding"
        and b["metadata"]["namespace"] == ns
        and b["roleRef"]["kind"] == "Role"
        and {"kind": "ServiceAccount", "name": sa, "namespace": ns} in b["subjects"]
    ]
    grants = {
        (v, name)
        for r in bound
        for rule in roles[r]["rules"]
        if "coordination.k8s.io" in rule["apiGroups"] and "leases" in rule["resources"]
        for v in rule["verbs"]
        for name in rule.get("resourceNames", ["*"])
    }
    assert {("get", le["resourceName"]), ("update", le["resourceName"]), ("create", "*")} <= grants
    cluster_roles = {
        b["roleRef"]["name"]
        for b in objs
        if b["kind"] == "ClusterRoleBinding"
        and {"kind": "ServiceAccount", "name": sa, "namespace": ns} in b["subjects"]
    }
    assert {"system:kube-scheduler", "system:volume-scheduler"} <= cluster_roles


def test_schema_file_lists_the_extender_fields_of_the_v1_types() -> None:
    """The Extender fields of types.go, json tags verbatim (a drifted schema would accept a
    wrong key or refuse a right one)."""
    schema = json.loads(SCHEMA_PATH.read_text())
    assert set(schema["$defs"]["Extender"]["properties"]) == {
        "urlPrefix",
        "filterVerb",
        "preemptVerb",
        "prioritizeVerb",
        "weight",
        "bindVerb",
        "enableHTTPS",
        "tlsConfig",
        "httpTimeout",
        "nodeCacheCapable",
        "managedResources",
        "ignorable",
    }
    assert set(schema["$defs"]["LeaderElectionConfiguration"]["properties"]) == {
        "leaderElect",
        "leaseDuration",
        "renewDeadline",
        "retryPeriod",
        "resourceLock",
        "resourceName",
        "resourceNamespace",
    }
    assert set(schema["$defs"]["ExtenderTLSConfig"]["properties"]) == {
        "insecure",
        "serverName",
        "certFile",
        "keyFile",
        "caFile",
        "certData",
        "keyData",
        "caData",
    }
    assert DEPLOY.is_dir()
