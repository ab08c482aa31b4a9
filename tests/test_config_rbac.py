"""The extender's RBAC covers every Kubernetes API call its code makes, and nothing more.

The code in extender/ and its subpackages is read (ast), not run: every reference to a method of a
Kubernetes API
class of the official client (``CoreV1Api.list_node``, ``CustomObjectsApi.list_cluster_custom_object``,
...) is found, whether called directly or named in a string (cache/informer.py picks its list method
from a table with ``getattr``). The API class is the one the module constructs. Each method maps
to (apiGroup, resource, verb) through the table below; a list method in a module that also
passes ``watch=True`` is a watch too. The table is deliberately explicit: a method it does not
know fails the test, to be added with its RBAC meaning.

Then, both ways, against config/deploy: rbac-extender.yaml (always installed) must grant the
calls of the cluster cache and of binding, components/metrics-server the metrics.k8s.io call,
components/stateless only what binding calls; no rule may grant anything no call needs.

And against config/deploy-tls, rendered: the extender's own ServiceAccount holds exactly those
grants (with its metrics-server component, the metrics.k8s.io call too) and is bound to no other
role; kube-scheduler's ServiceAccount keeps its own roles and none of the extender's.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import functools
import importlib.util
import re
from pathlib import Path

import pytest

from tests.test_config_manifests import (
    COMPONENTS,
    DEPLOY,
    DEPLOY_TLS,
    ROOT,
    TLS_COMPONENTS,
    Obj,
    deploy_objects,
    deployment,
    extender_deployment,
    kustomization,
    kustomize_build,
    load_docs,
    load_file,
    load_one,
    overlay_with_components,
    pod_spec,
    the,
    tls_objects,
)

EXTENDER = ROOT / "extender"

Grant = tuple[str, str, str]  # (apiGroup, resource, verb)

# (API class, method) -> what RBAC must allow. "custom" methods take (group, version, plural)
# as their first three arguments, which must be string literals at the call.
METHOD_GRANTS: dict[tuple[str, str], list[Grant] | str] = {
    ("CoreV1Api", "list_node"): [("", "nodes", "list")],
    ("CoreV1Api", "read_node"): [("", "nodes", "get")],
    ("CoreV1Api", "list_pod_for_all_namespaces"): [("", "pods", "list")],
    ("CoreV1Api", "list_namespaced_pod"): [("", "pods", "list")],
    ("CoreV1Api", "read_namespaced_pod"): [("", "pods", "get")],
    ("CoreV1Api", "create_namespaced_pod_binding"): [("", "pods/binding", "create")],
    ("CoreV1Api", "create_namespaced_binding"): [("", "bindings", "create")],
    ("CoreV1Api", "create_namespaced_event"): [("", "events", "create")],
    ("CoreV1Api", "patch_namespaced_event"): [("", "events", "patch")],
    ("EventsV1Api", "create_namespaced_event"): [("events.k8s.io", "events", "create")],
    ("CustomObjectsApi", "list_cluster_custom_object"): "custom:list",
    ("CustomObjectsApi", "get_cluster_custom_object"): "custom:get",
}
_VERB_PREFIX = re.compile(r"^(list|read|create|replace|patch|delete|connect|get)_")
_WITH_INFO = "_with_http_info"  # the generated twin of every method


@functools.cache
def api_methods() -> dict[str, frozenset[str]]:
    """API class name -> its request methods, read from the installed client's source
    (kubernetes/client/api/*_api.py, one class each). Importing the 66 classes would cost
    seconds; their text gives the same names."""
    spec = importlib.util.find_spec("kubernetes.client.api")
    assert spec and spec.submodule_search_locations
    out = {}
    for path in sorted(Path(spec.submodule_search_locations[0]).glob("*_api.py")):
        text = path.read_text()
        classes = re.findall(r"^class (\w+)\b", text, re.M)
        assert len(classes) == 1, f"{path}: expected one API class, found {classes}"
        out[classes[0]] = frozenset(
            m for m in re.findall(r"^    def (\w+)\(", text, re.M) if _VERB_PREFIX.match(m)
        )
    assert "list_node" in out.get("CoreV1Api", ()), "the kubernetes client's layout changed"
    return out


@dataclasses.dataclass(frozen=True)
class ApiCall:
    module: str
    line: int
    api: str
    method: str
    enclosing_class: str
    args: tuple[object, ...]  # literal positional arguments (None where not a literal)
    watch: bool  # the module passes watch=True somewhere


def _enclosing_classes(tree: ast.Module) -> dict[ast.AST, str]:
    owner: dict[ast.AST, str] = {}
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        for n in ast.walk(cls):
            owner[n] = cls.name  # inner classes are walked later and win
    return owner


def _module(path: Path) -> str:
    """The path under extender/ (``kube/binding.py``), or the file name of a file elsewhere."""
    return path.relative_to(EXTENDER).as_posix() if path.is_relative_to(EXTENDER) else path.name


def api_calls(path: Path) -> list[ApiCall]:
    tree = ast.parse(path.read_text())
    owner = _enclosing_classes(tree)
    methods = api_methods()
    all_calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    call_of = {id(c.func): c for c in all_calls}
    constructed = {
        c.func.attr if isinstance(c.func, ast.Attribute) else c.func.id
        for c in all_calls
        if isinstance(c.func, (ast.Attribute, ast.Name))
        and (c.func.attr if isinstance(c.func, ast.Attribute) else c.func.id) in methods
    }
    watch = any(
        isinstance(n, ast.keyword)
        and n.arg == "watch"
        and isinstance(n.value, ast.Constant)
        and n.value.value is True
        for n in ast.walk(tree)
    )
    all_methods = set().union(*methods.values())
    calls = []
    for node in ast.walk(tree):
        name, args = None, ()
        if isinstance(node, ast.Attribute) and node.attr.removesuffix(_WITH_INFO) in all_methods:
            name = node.attr.removesuffix(_WITH_INFO)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in all_methods:
            name = node.value
        if name is None:
            continue
        if isinstance(node, ast.Attribute) and (call := call_of.get(id(node))) is not None:
            args = tuple(a.value if isinstance(a, ast.Constant) else None for a in call.args)
        classes = sorted(c for c in constructed if name in methods[c])
        assert len(classes) == 1, (
            f"{path.name}:{node.lineno}: {name!r} belongs to "
            f"{classes or 'no API class this module constructs'}; "
            "teach tests/test_config_rbac.py which API it calls"
        )
        calls.append(ApiCall(_module(path), node.lineno, classes[0], name, owner.get(node, ""), args, watch))
    return calls


def grants_of(call: ApiCall) -> set[Grant]:
    entry = METHOD_GRANTS.get((call.api, call.method))
    assert entry is not None, (
        f"extender/{call.module}:{call.line} calls {call.api}.{call.method}, which the RBAC test's table "
        "does not know: add it to METHOD_GRANTS with its (apiGroup, resource, verb), then grant it"
    )
    if isinstance(entry, str):
        group, _version, plural = (call.args + (None, None, None))[:3]
        assert all(isinstance(x, str) for x in (group, _version, plural)), (
            f"extender/{call.module}:{call.line}: {call.method} without literal group/version/plural"
        )
        out = {(str(group), str(plural), entry.removeprefix("custom:"))}
    else:
        out = set(entry)
    if call.watch:
        out |= {(g, r, "watch") for g, r, v in out if v == "list"}
    return out


@functools.cache
def _extender_calls() -> tuple[ApiCall, ...]:
    return tuple(c for path in sorted(EXTENDER.rglob("*.py")) for c in api_calls(path))


def extender_calls() -> list[ApiCall]:
    return list(_extender_calls())


def _raw_api_access(path: Path) -> list[str]:
    """Calls that bypass the typed API classes (no way to tell the resource)."""
    tree = ast.parse(path.read_text())
    bad = [
        f"{path.name}:{n.lineno} {n.attr}"
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and n.attr in ("call_api", "DynamicClient")
    ]
    bad += [
        f"{path.name}:{n.lineno} import {n.module}"
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom)
        and n.module
        and n.module.startswith(("kubernetes.dynamic", "kubernetes.stream"))
    ]
    return bad


def rules_grants(rules: list[Obj]) -> set[Grant]:
    out = set()
    for rule in rules:
        assert not rule.get("resourceNames") and not rule.get("nonResourceURLs"), rule
        for g in rule["apiGroups"]:
            for r in rule["resources"]:
                for v in rule["verbs"]:
                    assert "*" not in (g, r, v), f"wildcard in the extender's role: {rule}"
                    out.add((g, r, v))
    return out


def _bound_to_pod_sa(objs: list[Obj], role: str) -> bool:
    dep = deployment()
    sa = {
        "kind": "ServiceAccount",
        "name": pod_spec(dep)["serviceAccountName"],
        "namespace": dep["metadata"]["namespace"],
    }
    return any(
        b["kind"] == "ClusterRoleBinding"
        and b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}
        and sa in b["subjects"]
        for b in objs
    )


# ---- the scan itself ----------------------------------------------------------------------------


def test_the_scan_sees_the_known_calls() -> None:
    """Guards the scanner: these calls exist today (a silent scan would pass any role)."""
    found = {(c.module, c.api, c.method) for c in extender_calls()}
    assert {
        ("cache/informer.py", "CoreV1Api", "list_node"),
        ("cache/informer.py", "CoreV1Api", "list_pod_for_all_namespaces"),
        ("kube/binding.py", "CoreV1Api", "create_namespaced_pod_binding"),
        ("kube/binding.py", "CoreV1Api", "read_namespaced_pod"),
        ("load/metrics_server.py", "CustomObjectsApi", "list_cluster_custom_object"),
    } <= found, found


def test_no_untyped_api_access() -> None:
    bad = [b for path in sorted(EXTENDER.rglob("*.py")) for b in _raw_api_access(path)]
    assert not bad, f"API access the RBAC test cannot map: {bad}"


def test_the_extender_creates_no_events() -> None:
    """Issue 5 expected `create events`; the code creates none, so none is granted."""
    assert not any(g[1] == "events" for c in extender_calls() for g in grants_of(c))


# ---- both ways against the roles -----------------------------------------------------------------


def needed(calls: list[ApiCall]) -> set[Grant]:
    return set().union(*(grants_of(c) for c in calls))


def test_base_role_grants_exactly_the_cache_and_bind_calls() -> None:
    calls = [c for c in extender_calls() if c.enclosing_class != "MetricsServerSource"]
    want = needed(calls)
    role = [o for o in load_file(DEPLOY / "rbac-extender.yaml") if o["kind"] == "ClusterRole"][0]
    have = rules_grants(role["rules"])
    assert not want - have, f"calls not granted by {role['metadata']['name']}: {sorted(want - have)}"
    assert not have - want, f"granted but never called (least privilege): {sorted(have - want)}"
    assert _bound_to_pod_sa(deploy_objects(), role["metadata"]["name"])


def test_metrics_server_component_grants_exactly_its_call() -> None:
    calls = [c for c in extender_calls() if c.enclosing_class == "MetricsServerSource"]
    assert calls, "MetricsServerSource makes no API call any more: drop components/metrics-server's role"
    want = needed(calls)
    assert all(g[0] == "metrics.k8s.io" for g in want), want
    objs = [
        o
        for r in kustomization(COMPONENTS / "metrics-server")["resources"]
        for o in load_file(COMPONENTS / "metrics-server" / r)
    ]
    role = [o for o in objs if o["kind"] == "ClusterRole"][0]
    assert rules_grants(role["rules"]) == want
    assert _bound_to_pod_sa(objs, role["metadata"]["name"])
    # and the base role does not already grant it
    base = [o for o in load_file(DEPLOY / "rbac-extender.yaml") if o["kind"] == "ClusterRole"][0]
    assert not rules_grants(base["rules"]) & want


def test_stateless_component_grants_exactly_what_binding_calls() -> None:
    """In stateless mode only the Binder talks to the API (no informers, no load pollers)."""
    want = needed([c for c in extender_calls() if c.module == "kube/binding.py"])
    patches = [
        p for entry in kustomization(COMPONENTS / "stateless")["patches"] for p in load_docs(entry["patch"])
    ]
    role = [p for p in patches if p["kind"] == "ClusterRole"][0]
    assert role["metadata"]["name"] == "load-aware-extender"
    assert rules_grants(role["rules"]) == want


@pytest.mark.parametrize("method", ["create_namespaced_event", "read_node"])
def test_an_unexpected_call_would_fail(tmp_path: Path, method: str) -> None:
    """A new call in the code shows up as a grant the role lacks."""
    src = tmp_path / "new.py"
    src.write_text(f"from kubernetes import client\napi = client.CoreV1Api()\napi.{method}('x', 'y')\n")
    calls = api_calls(src)
    assert [(c.api, c.method) for c in calls] == [("CoreV1Api", method)]
    base = [o for o in load_file(DEPLOY / "rbac-extender.yaml") if o["kind"] == "ClusterRole"][0]
    assert needed(calls) - rules_grants(base["rules"])


# ---- the TLS variant: two identities ----------------------------------------------------------

# kube-scheduler's own roles, from config/deploy/rbac-scheduler.yaml. system:kube-scheduler
# includes pods/binding create: kube-scheduler binds every pod no extender binds (its
# DefaultBinder), so it keeps that right in every variant; what the TLS variant takes from it
# is the extender's ClusterRole, and what it takes from the extender is kube-scheduler's roles.
SCHEDULER_ROLES = {
    ("ClusterRole", "system:kube-scheduler"),
    ("ClusterRole", "system:volume-scheduler"),
    ("Role", "load-aware-scheduler-leader-election"),
    ("Role", "extension-apiserver-authentication-reader"),
}


@pytest.fixture(scope="module")
def rendered_tls() -> list[Obj]:
    return kustomize_build(DEPLOY_TLS)


def service_account(dep: Obj) -> Obj:
    return {
        "kind": "ServiceAccount",
        "name": pod_spec(dep)["serviceAccountName"],
        "namespace": dep["metadata"]["namespace"],
    }


def bound_roles(objs: list[Obj], sa: Obj) -> set[tuple[str, str]]:
    return {
        (b["roleRef"]["kind"], b["roleRef"]["name"])
        for b in objs
        if b["kind"] in ("ClusterRoleBinding", "RoleBinding") and sa in b.get("subjects", [])
    }


def least_privilege_problems(objs: list[Obj], sa: Obj, want: set[Grant]) -> list[str]:
    """What is wrong with ``sa``'s rights in ``objs`` if it should hold exactly ``want``: a role
    that ``objs`` does not define (a bootstrap role such as system:kube-scheduler grants more
    than anyone can read here), a call not granted, a grant no call needs."""
    roles = {(o["kind"], o["metadata"]["name"]): o for o in objs if o["kind"] in ("ClusterRole", "Role")}
    bound = bound_roles(objs, sa)
    problems = [f"bound to {kind} {name}, not defined here" for kind, name in sorted(bound - roles.keys())]
    have = set().union(*(rules_grants(roles[r]["rules"]) for r in bound & roles.keys()))
    problems += [f"not granted: {g}" for g in sorted(want - have)]
    problems += [f"granted but never called: {g}" for g in sorted(have - want)]
    return problems


def _base_calls() -> list[ApiCall]:
    return [c for c in extender_calls() if c.enclosing_class != "MetricsServerSource"]


def test_tls_extender_has_exactly_what_its_code_calls(rendered_tls: list[Obj]) -> None:
    ext_sa = service_account(extender_deployment(rendered_tls))
    sched_sa = service_account(deployment(rendered_tls))
    assert ext_sa != sched_sa, "the extender must not share kube-scheduler's identity here"
    assert the(rendered_tls, "ServiceAccount", ext_sa["name"])
    assert least_privilege_problems(rendered_tls, ext_sa, needed(_base_calls())) == []


def test_tls_extender_with_metrics_server_has_exactly_what_its_code_calls(tmp_path: Path) -> None:
    objs = kustomize_build(overlay_with_components(tmp_path, "metrics-server", base=DEPLOY_TLS))
    ext_sa = service_account(extender_deployment(objs))
    assert least_privilege_problems(objs, ext_sa, needed(extender_calls())) == []
    assert bound_roles(objs, service_account(deployment(objs))) == SCHEDULER_ROLES


def test_tls_scheduler_keeps_its_own_roles_and_none_of_the_extenders(rendered_tls: list[Obj]) -> None:
    assert bound_roles(rendered_tls, service_account(deployment(rendered_tls))) == SCHEDULER_ROLES
    # in the sidecar variant the shared identity holds both (the reason for this variant)
    base = bound_roles(deploy_objects(), service_account(deployment()))
    assert base == SCHEDULER_ROLES | {("ClusterRole", "load-aware-extender")}


def test_least_privilege_check_sees_an_extra_grant_and_a_foreign_role(rendered_tls: list[Obj]) -> None:
    objs = copy.deepcopy(rendered_tls)
    ext_sa = service_account(extender_deployment(objs))
    the(objs, "ClusterRole", "load-aware-extender")["rules"].append(
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}
    )
    the(objs, "ClusterRoleBinding", "load-aware-scheduler-as-kube-scheduler")["subjects"].append(ext_sa)
    problems = least_privilege_problems(objs, ext_sa, needed(_base_calls()))
    assert "granted but never called: ('', 'secrets', 'get')" in problems
    assert "bound to ClusterRole system:kube-scheduler, not defined here" in problems


def test_tls_sources_bind_the_extenders_roles_to_its_own_account() -> None:
    """The same without kustomize: the binding patch and the component's binding name the
    ServiceAccount the extender Deployment runs as, and the component grants exactly the
    metrics.k8s.io call."""
    ext_sa = service_account(extender_deployment())
    assert (
        the(tls_objects(), "ServiceAccount", ext_sa["name"])["metadata"]["namespace"] == ext_sa["namespace"]
    )
    patch = load_one(DEPLOY_TLS / "patch-extender-rbac.yaml")
    base_role = [o for o in load_file(DEPLOY / "rbac-extender.yaml") if o["kind"] == "ClusterRole"][0]
    assert (
        patch["kind"] == "ClusterRoleBinding" and patch["metadata"]["name"] == base_role["metadata"]["name"]
    )
    assert patch["subjects"] == [ext_sa]
    comp = TLS_COMPONENTS / "metrics-server"
    objs = [o for r in kustomization(comp)["resources"] for o in load_file(comp / r)]
    role = the(objs, "ClusterRole")
    assert rules_grants(role["rules"]) == needed(
        [c for c in extender_calls() if c.enclosing_class == "MetricsServerSource"]
    )
    binding = the(objs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"] and binding["subjects"] == [ext_sa]
