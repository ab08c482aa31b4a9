"""config/deploy/components/monitoring: the Grafana dashboard, the alerts and the ServiceMonitor.

Offline:
* The component renders with either variant (``kubectl kustomize``), every object validates
  (the Prometheus Operator's kinds against monitoring.coreos.com.v1.schema.json, strict, which
  rejects what the Operator's CRDs would), the ServiceMonitor reaches the operations port of the
  metrics Service, the dashboard ConfigMap is the file, labelled for Grafana's sidecar.
* The dashboard is Grafana JSON with its data source a variable, panels that do not overlap,
  and the latency panel's threshold at kube-scheduler's httpTimeout (config/scheduler/).
* Each alert has a severity, a summary, a description, and a runbook_url whose anchor is a
  section of config/README.md (and each runbook section an alert); each threshold has a comment.
* Every PromQL expression parses (tests/promql.py) and names only metrics the extender registers.

Against a running extender (cluster-cache mode, its cache in a process of its own, fed by the
in-test API server, with traffic that makes every series the queries read): every metric each
query reads is in /metrics, every label it matches or groups by is a label of that metric, every
value it compares a label with is one the metric takes, every ``{{label}}`` of a legend is one the
query returns. Renaming a metric or a label fails this test.
"""

from __future__ import annotations

import copy
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.harness import running_server
from extender.kube.bind import BindOutcome
from extender.metrics import CHILD_RESTART_REASONS, Metrics, cache_child_restarts_counter
from extender.server.reading import REFUSALS
from tests import promql
from tests.conftest import write_kubeconfig
from tests.kubeapi import FakeKubeAPI
from tests.test_cache_mode import args, bind, call, node_obj, pod_obj, wait_ready
from tests.test_config_manifests import (
    COMPONENTS,
    CONFIG,
    DEPLOY,
    DEPLOY_TLS,
    ROOT,
    Obj,
    env_of,
    extender_container,
    find,
    kustomize_build,
    load_one,
    schema_errors,
    setting,
    the,
    validation_versions,
)
from tests.test_config_scheduler import CONFIG_FILES, go_duration_s

MONITORING = COMPONENTS / "monitoring"
DASHBOARD = MONITORING / "grafana-dashboard.json"
RULES = MONITORING / "prometheusrule.yaml"
SERVICE_MONITOR = MONITORING / "servicemonitor.yaml"
README = CONFIG / "README.md"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RUNBOOK_BASE = "https://git.example.com/load-aware-extender/blob/main/config/README.md#"


def dashboard() -> Obj:
    loaded: Obj = json.loads(DASHBOARD.read_text())
    return loaded


def panels(board: Obj | None = None) -> list[Obj]:
    """Every panel, those of collapsed rows included; rows themselves too."""
    out = []
    for panel in (board or dashboard())["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def alerts(rule: Obj | None = None) -> list[Obj]:
    rule = rule or load_one(RULES)
    return [r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]


def queries() -> list[tuple[str, str, str | None]]:
    """(where, PromQL, legend) of every query the dashboard and the rules run."""
    out: list[tuple[str, str, str | None]] = []
    for panel in panels():
        for target in panel.get("targets", []):
            out.append(
                (f"panel {panel['title']!r} {target['refId']}", target["expr"], target.get("legendFormat"))
            )
    for rule in alerts():
        out.append((f"alert {rule['alert']} ({rule['labels']['severity']})", rule["expr"], None))
    return out


def variable_queries() -> list[tuple[str, str, str]]:
    """(variable, selector, label) of the dashboard's ``label_values`` variables."""
    out = []
    for var in dashboard()["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            parsed = promql.label_values_query(query)
            assert parsed is not None, f"variable {var['name']}: not a label_values query: {query}"
            out.append((var["name"], *parsed))
    return out


def http_timeout_s() -> float:
    """kube-scheduler's extender httpTimeout, the same in every configuration of config/scheduler/."""
    timeouts = {
        go_duration_s(ext["httpTimeout"]) for path in CONFIG_FILES for ext in load_one(path)["extenders"]
    }
    assert len(timeouts) == 1, f"the scheduler configurations disagree on httpTimeout: {timeouts}"
    return timeouts.pop()


# ---- the component, rendered ---------------------------------------------------------------------


def _overlay(tmp: Path, base: Path) -> Path:
    (tmp / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(base, tmp)],
                "components": [os.path.relpath(MONITORING, tmp)],
            }
        )
    )
    return tmp


@pytest.mark.parametrize("base", [DEPLOY, DEPLOY_TLS], ids=["sidecar", "tls"])
def test_the_component_renders_with_either_variant_and_scrapes_the_operations_port(
    base: Path, tmp_path: Path
) -> None:
    objs = kustomize_build(_overlay(tmp_path, base))
    for version in validation_versions():
        problems = [err for obj in objs if (err := schema_errors(obj, version))]
        assert not problems, f"{base.name} + monitoring against Kubernetes {version}:\n" + "\n".join(problems)
    monitor = the(objs, "ServiceMonitor")
    rule = the(objs, "PrometheusRule")
    services = [
        s
        for s in find(objs, "Service")
        if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
    ]
    assert [s["metadata"]["name"] for s in services] == ["load-aware-extender-metrics"]
    service = services[0]
    assert (
        monitor["metadata"]["namespace"] == service["metadata"]["namespace"] == rule["metadata"]["namespace"]
    )
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in ports, (
        f"the ServiceMonitor scrapes port {endpoint['port']!r}, not a port of the Service"
    )
    # the Service's pods serve the operations listener on that port's targetPort
    pods = [
        d
        for d in find(objs, "Deployment")
        if service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert len(pods) == 1
    spec = pods[0]["spec"]["template"]["spec"]
    (extender,) = [
        c for c in [*spec.get("initContainers", []), *spec["containers"]] if c["name"] == "extender"
    ]
    assert ports[endpoint["port"]]["targetPort"] == setting(env_of(extender), "ops_port")
    assert endpoint["path"] == "/metrics" and endpoint.get("scheme", "http") == "http"
    assert go_duration_s(endpoint["scrapeTimeout"]) < go_duration_s(endpoint["interval"])
    # the job label the ExtenderDown alert selects is the Service's name (no jobLabel set)
    assert "jobLabel" not in monitor["spec"]
    down = [r for r in alerts(rule) if r["alert"] == "ExtenderDown"]
    assert [f'job="{service["metadata"]["name"]}"' in r["expr"] for r in down] == [True]
    (board,) = [c for c in find(objs, "ConfigMap") if "grafana-dashboard.json" in c.get("data", {})]
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert board["metadata"]["name"] == "load-aware-extender-dashboard", "no hash suffix: replaced in place"
    assert board["data"]["grafana-dashboard.json"] == DASHBOARD.read_text()


def test_the_sidecar_exposes_the_port_the_service_monitor_names() -> None:
    """Without kustomize: the metrics Service's port named as the ServiceMonitor says is the
    sidecar's operations port."""
    service = load_one(DEPLOY / "service.yaml")
    (endpoint,) = load_one(SERVICE_MONITOR)["spec"]["endpoints"]
    (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
    assert port["targetPort"] == setting(
        env_of(extender_container(load_one(DEPLOY / "deployment.yaml"))), "ops_port"
    )


def test_the_monitoring_schema_is_strict() -> None:
    """The schema rejects what the Operator's CRDs (or its admission webhook) would."""
    monitor, rule = load_one(SERVICE_MONITOR), load_one(RULES)
    version = validation_versions()[0]
    assert schema_errors(monitor, version) is None and schema_errors(rule, version) is None

    def first_alert(r: Obj) -> Obj:
        found: Obj = r["spec"]["groups"][0]["rules"][0]
        return found

    broken_monitor = {
        "misspelt endpoint field": lambda m: m["spec"]["endpoints"][0].update(scrapeInterval="30s"),
        "interval in words": lambda m: m["spec"]["endpoints"][0].update(interval="30 seconds"),
        "unknown scheme": lambda m: m["spec"]["endpoints"][0].update(scheme="tcp"),
        "no selector": lambda m: m["spec"].pop("selector"),
        "miscased matchLabels": lambda m: m["spec"]["selector"].update(MatchLabels={}),
        "unknown spec field": lambda m: m["spec"].update(endpoint=[]),
        "wrong group version": lambda m: m.update(apiVersion="monitoring.coreos.com/v1alpha1"),
    }
    broken_rule = {
        "alert and record": lambda r: first_alert(r).update(record="x:y"),
        "no expr": lambda r: first_alert(r).pop("expr"),
        "for as a number": lambda r: first_alert(r).update({"for": 300}),
        "misspelt rule field": lambda r: first_alert(r).update(annotation={}),
        "label value not a string": lambda r: first_alert(r)["labels"].update(page=True),
        "group without a name": lambda r: r["spec"]["groups"][0].pop("name"),
        "unknown group field": lambda r: r["spec"]["groups"][0].update(rule=[]),
    }
    for base, broken in ((monitor, broken_monitor), (rule, broken_rule)):
        for what, mutate in broken.items():
            obj = copy.deepcopy(base)
            mutate(obj)
            assert schema_errors(obj, version) is not None, what


# ---- the dashboard -------------------------------------------------------------------------------


def test_the_dashboard_is_grafana_json_on_a_templated_data_source() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 39 and board["uid"] and board["title"]
    assert board.get("id") is None, "an exported id would clash on import"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    boxes = []
    for panel in panels(board):
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, panel["title"]
        boxes.append((panel["title"], pos["x"], pos["y"], pos["x"] + pos["w"], pos["y"] + pos["h"]))
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, f"{panel['title']}: data source not ${{datasource}}"
        assert panel.get("description"), f"{panel['title']}: say what it shows"
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, f"{panel['title']} {target['refId']}"
            assert "$namespace" in target["expr"] and "$pod" in target["expr"], (
                f"{panel['title']} {target['refId']}: not filtered by the namespace and replica variables"
            )
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            overlap = a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]
            assert not overlap, f"panels {a[0]!r} and {b[0]!r} overlap"
    for var in variables.values():
        if var["type"] == "query":
            assert var["datasource"] == DATASOURCE, var["name"]


def test_the_latency_panel_draws_the_schedulers_http_timeout() -> None:
    timeout = http_timeout_s()
    latency = [
        p
        for p in panels()
        if p["type"] == "timeseries"
        and any("extender_request_duration_seconds_bucket" in t["expr"] for t in p.get("targets", []))
    ]
    assert latency, "no latency panel"
    for panel in latency:
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults["unit"] == "s"
        steps = [s["value"] for s in defaults["thresholds"]["steps"]]
        assert timeout in steps, f"{panel['title']}: no threshold at the httpTimeout {timeout:g} s: {steps}"
        assert "line" in defaults["custom"]["thresholdsStyle"]["mode"], (
            f"{panel['title']}: the threshold is not drawn"
        )
        legends = {t["legendFormat"] for t in panel["targets"]}
        assert {"p99 {{verb}}", "p50 {{verb}}"} <= legends, legends
    # the latency alerts fire below the timeout
    for rule in alerts():
        if "extender_request_duration_seconds_bucket" in rule["expr"]:
            threshold = float(rule["expr"].rsplit(">", 1)[1])
            assert 0 < threshold < timeout, rule["alert"]


# ---- the alerts ------------------------------------------------------------------------------------


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def readme_anchors() -> set[str]:
    return {github_anchor(m[1]) for m in re.finditer(r"^#{1,6} (.+)$", README.read_text(), re.M)}


def runbook_sections() -> list[str]:
    """The headings under config/README.md's "Runbooks"."""
    text = README.read_text()
    start = text.index("\n### Runbooks\n")
    end = text.find("\n## ", start)
    return re.findall(r"^#### (\S+)$", text[start : end if end >= 0 else None], re.M)


def test_every_alert_has_a_severity_text_and_a_runbook_in_config_readme() -> None:
    rule = load_one(RULES)
    names = [g["name"] for g in rule["spec"]["groups"]]
    assert len(names) == len(set(names)), "rule group names must be unique"
    anchors = readme_anchors()
    found = alerts(rule)
    assert len(found) >= 10
    for r in found:
        where = r["alert"]
        assert r["labels"]["severity"] in ("warning", "critical"), where
        assert r["annotations"]["summary"] and r["annotations"]["description"], where
        url = r["annotations"]["runbook_url"]
        assert url.startswith(RUNBOOK_BASE), f"{where}: runbook_url {url} not under {RUNBOOK_BASE}"
        anchor = url.removeprefix(RUNBOOK_BASE)
        assert anchor in anchors, f"{where}: config/README.md has no heading with anchor #{anchor}"
        assert anchor == github_anchor(where), f"{where}: its runbook is #{github_anchor(where)}"
    assert sorted(runbook_sections()) == sorted({r["alert"] for r in found}), (
        "config/README.md's runbooks and the alerts differ"
    )


def test_every_alert_says_why_its_threshold_is_what_it_is() -> None:
    """A comment right above each alert (the threshold's reason)."""
    lines = RULES.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith("- alert:"):
            assert lines[i - 1].lstrip().startswith("#"), f"line {i + 1}: {line.strip()}: no comment above it"


def test_the_anchor_reading_matches_github() -> None:
    assert github_anchor("ExtenderNotReady") == "extendernotready"
    assert github_anchor("The TLS variant (`deploy-tls/`)") == "the-tls-variant-deploy-tls"
    assert "the-operations-port" in readme_anchors()


# ---- PromQL: parsing, and the names the code registers ----------------------------------------------


def registered_series() -> dict[str, promql.Series]:
    """The series names the extender's registries can expose (the serving process's with the
    cache metrics, the cache process's restarts counter and process collector), labels unknown."""
    metrics = Metrics(mode="cache", cache=True)
    cache_child_restarts_counter(metrics.registry)
    from prometheus_client import ProcessCollector

    child = CollectorRegistry()
    ProcessCollector(namespace="extender_cache", registry=child)
    names: set[str] = set()
    for registry in (metrics.registry, child):
        for family in registry.collect():
            suffixes = {
                "counter": ("_total", "_created"),
                "histogram": ("_bucket", "_count", "_sum", "_created"),
                "gauge": ("",),
                "info": ("_info",),
            }.get(family.type, ("",))
            names |= {family.name + s for s in suffixes}
            names |= {s.name for s in family.samples}
    return promql.exposition_series((name, {}) for name in names)


def test_every_query_parses_and_reads_only_registered_metrics() -> None:
    known = registered_series()
    seen = set()
    for where, expr, _ in queries():
        parsed = promql.parse(expr)
        for sel in parsed.selectors:
            assert sel.name in known, f"{where}: {sel.name} is no metric of the extender"
            seen.add(sel.name)
    for name, selector, _ in variable_queries():
        for sel in promql.parse(selector).selectors:
            assert sel.name in known, f"variable {name}: {sel.name}"
    assert {"extender_request_duration_seconds_bucket", "extender_ready", "extender_bind_total"} <= seen


def test_the_promql_reader_catches_renamed_metrics_and_labels() -> None:
    series = promql.exposition_series(
        [
            ("extender_requests_total", {"verb": "filter", "code": "200"}),
            ("extender_request_duration_seconds_bucket", {"verb": "filter", "le": "0.5"}),
            ("extender_bind_total", {"outcome": "bound"}),
        ]
    )
    good = (
        "histogram_quantile(0.99, sum by (le, verb) "
        '(rate(extender_request_duration_seconds_bucket{pod=~"$pod"}[5m])))'
    )
    assert promql.problems(good, series) == []
    cases = {
        "sum(rate(extender_request_total[5m]))": "no series extender_request_total",
        "sum by (verb, status) (rate(extender_requests_total[5m]))": "by (status)",
        'sum(rate(extender_requests_total{method="POST"}[5m]))': "no label 'method'",
        'sum(rate(extender_bind_total{outcome="ok"}[5m]))': "never takes ['ok']",
        'sum(rate(extender_bind_total{outcome!~"bound|done"}[5m]))': "never takes ['done']",
        "sum by (le) (rate(extender_requests_total[5m]))": "by (le)",
        "extender_requests_total / on (verb, outcome) extender_bind_total": "on (verb)",
        'label_replace(extender_requests_total, "x", "$1", "verb", "(.*)")': "label_replace",
        "sum(extender_requests_total": "unclosed",
        '{__name__="extender_requests_total"}': "without a metric name",
    }
    for expr, expected in cases.items():
        found = promql.problems(expr, series)
        assert any(expected in p for p in found), f"{expr}: {found}"
    assert (
        promql.problems(
            'extender_bind_total{outcome="api_error"}',
            series,
            {("extender_bind_total", "outcome"): ["api_error"]},
        )
        == []
    )
    assert promql.result_labels("sum by (verb) (rate(extender_requests_total[5m]))", series) == {"verb"}


# ---- against a running extender --------------------------------------------------------------------


def _stall_headers(host: str, port: int) -> None:
    """A request whose headers never end: closed as header_timeout (extender_connections_closed_total)."""
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"POST /filter HTTP/1.1\r\nHost: x\r\n")
        s.settimeout(10)
        while s.recv(4096):
            pass


def _internal_error_kinds() -> set[str]:
    """The ``kind`` a failing verb records: a source that raises, in an app of its own."""
    from extender.server.app import create_app
    from extender.settings import Settings
    from extender.verbs.source import StatelessSource

    class Broken(StatelessSource):
        def candidates(self, *a: Any, **k: Any) -> Any:
            raise RuntimeError("injected")

    app: Flask = create_app(Settings(api_access=False), source=Broken(clock=time.time))
    body = (ROOT / "tests" / "golden" / "filter-nodes.request.json").read_bytes()
    assert app.test_client().post("/filter", data=body).status_code == 500
    metrics: Metrics = app.extensions["extender"]["metrics"]
    return {
        s.labels["kind"]
        for f in metrics.registry.collect()
        if f.name == "extender_errors"
        for s in f.samples
        if "kind" in s.labels
    }


def known_values() -> dict[tuple[str, str], set[str]]:
    """Label values the code produces that a short test cannot all make happen: read from the
    code, so that renaming one there fails here too."""
    return {
        ("extender_bind_total", "outcome"): {o.value for o in BindOutcome},
        ("extender_cache_child_restarts_total", "reason"): set(CHILD_RESTART_REASONS),
        # the reasons the server's event loop closes a connection for (extender/server/reading.py)
        ("extender_connections_closed_total", "reason"): set(REFUSALS)
        | {"idle", "evicted_idle", "tls_handshake"},
        ("extender_errors_total", "kind"): _internal_error_kinds(),
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, promql.Series]]:
    """The series of a running extender's /metrics after calls that make every one the queries
    read: cluster-cache mode with the cache process, metrics-server as a load source, a node
    without load data (stale, scored by the fallback), a node too small (a rejection), a bind, a
    bad request, a stalled request."""
    with FakeKubeAPI() as api, running_server_for(api, tmp_path_factory.mktemp("monitoring")) as server:
        url, ops = server.url, server.ops_url
        wait_ready(ops, timeout=60)
        pod = pod_obj("incoming", cpu="2")
        pod["metadata"]["uid"] = "uid-incoming"
        names = ["n0", "n-small", "n-unmeasured"]
        assert call(f"{url}/filter", args(pod, names))[0] == 200
        assert call(f"{url}/prioritize", args(pod, names))[0] == 200
        uid = api.add_pod(pod_obj("web"))["metadata"]["uid"]
        assert bind(url, "web", uid, "n0") == {"Error": ""}
        assert call(f"{url}/filter", b"{not json")[0] == 400
        _stall_headers(server.host, server.port)
        deadline = time.monotonic() + 30
        while True:  # the readiness watch, the cache process's publisher: each within seconds
            _, text = call(f"{ops}/metrics")
            samples = [(s.name, s.labels) for f in text_string_to_metric_families(text) for s in f.samples]
            names = {name for name, _ in samples}
            wanted = {
                "extender_load_source_age_seconds",
                "extender_cache_objects",
                "extender_connections_closed_total",
            }
            if wanted <= names and re.search(r"^extender_ready 1\.0$", text, re.M):
                break
            assert time.monotonic() < deadline, f"/metrics still lacks series:\n{text}"
            time.sleep(0.5)
        yield promql.exposition_series(samples)


def running_server_for(api: FakeKubeAPI, tmp: Path) -> Any:
    api.add_node(node_obj("n0"))
    api.add_node(node_obj("n-small", cpu="1"))
    api.add_node(node_obj("n-unmeasured", usage_cpu=None))
    api.set_node_metrics({"n0": {"cpu": "2", "memory": "8Gi"}, "n-small": {"cpu": "100m", "memory": "1Gi"}})
    kubeconfig = write_kubeconfig(tmp / "kubeconfig", api.url)
    env = {
        "EXTENDER_CACHE_PROCESS": "true",
        "EXTENDER_LOAD_SOURCES": "annotations,metrics-server",
        "EXTENDER_HEADER_TIMEOUT_S": "0.5",
    }
    return running_server("--kubeconfig", str(kubeconfig), env=env)


@pytest.mark.timeout(180)
def test_every_metric_and_label_the_dashboard_and_the_alerts_use_is_served(
    served: dict[str, promql.Series],
) -> None:
    known = known_values()
    problems = []
    for where, expr, legend in queries():
        found = promql.problems(expr, served, known)
        problems += [f"{where}: {p}" for p in found]
        if legend and not found:
            labels = promql.result_labels(expr, served)
            problems += [
                f"{where}: legend {{{{{label}}}}} is no label of its result ({sorted(labels)})"
                for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", legend)
                if label not in labels
            ]
    for name, selector, label in variable_queries():
        problems += [f"variable {name}: {p}" for p in promql.problems(selector, served, known)]
        for sel in promql.parse(selector).selectors:
            if label not in set(served[sel.name].labels) | promql.TARGET_LABELS:
                problems.append(f"variable {name}: {sel.name} has no label {label}")
    assert not problems, "\n".join(problems)


@pytest.mark.timeout(180)
def test_the_check_against_the_server_fails_for_a_renamed_metric_or_label(
    served: dict[str, promql.Series],
) -> None:
    """The check above, with one metric and one label renamed in what the server serves."""
    renamed = dict(served)
    renamed["extender_request_total"] = renamed.pop("extender_requests_total")
    errors = copy.deepcopy(served["extender_errors_total"])
    errors.labels["reason"] = errors.labels.pop("kind")
    renamed["extender_errors_total"] = errors
    found = [p for _, expr, _ in queries() for p in promql.problems(expr, renamed, known_values())]
    assert any("no series extender_requests_total" in p for p in found), found
    assert any("extender_errors_total has no label 'kind'" in p or "by (kind)" in p for p in found), found
