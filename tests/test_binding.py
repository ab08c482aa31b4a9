"""Binder against the fake API server, through a real ApiClient over HTTP."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from extender.kube.bind import BindOutcome, BindResult, BindTarget
from extender.kube.binding import Binder
from extender.kube.client import load_api_client
from tests.kubeapi import FakeKubeAPI

BIND = r"/binding$"


@pytest.fixture()
def api_client(api: FakeKubeAPI) -> Iterator[client.ApiClient]:
    """conftest's client, with a bearer token (the binder must send it)."""
    cfg = client.Configuration(host=api.url)
    cfg.api_key = {"BearerToken": "s3cr3t-token"}
    cfg.api_key_prefix = {"BearerToken": "Bearer"}
    with client.ApiClient(configuration=cfg) as c:
        yield c


@pytest.fixture()
def binder(api_client: client.ApiClient) -> Iterator[Binder]:
    b = Binder(api_client, timeout_s=2.0)
    yield b
    b.close()


def _add_pod(api: FakeKubeAPI, name: str = "web-0", ns: str = "shop") -> BindTarget:
    pod = api.add_pod(
        {
            "metadata": {"name": name, "namespace": ns},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        }
    )
    return BindTarget(pod_name=name, namespace=ns, pod_uid=pod["metadata"]["uid"], node="node-a")


def _node_of(api: FakeKubeAPI, t: BindTarget) -> str | None:
    pod = api.get_pod(t.namespace, t.pod_name)
    assert pod is not None
    return pod["spec"].get("nodeName")


def _statuses(api: FakeKubeAPI) -> list[int]:
    return [e.status for e in api.requests("POST", BIND)]


@pytest.mark.timeout(20)
def test_bind_success(api: FakeKubeAPI, binder: Binder, caplog: pytest.LogCaptureFixture) -> None:
    t = _add_pod(api)
    with caplog.at_level(logging.DEBUG):
        assert binder.bind(t) == BindResult(BindOutcome.BOUND, "")
    assert _node_of(api, t) == "node-a"
    (post,) = api.requests("POST", BIND)
    assert post.path == "/api/v1/namespaces/shop/pods/web-0/binding" and post.status == 201
    assert post.body == {
        "metadata": {"name": "web-0", "uid": t.pod_uid},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"},
    }
    ours = [r for r in caplog.records if r.name == "extender.binding"]
    assert len(ours) == 1
    line = ours[0].getMessage()
    for part in (
        "pod=shop/web-0",
        f"uid={t.pod_uid}",
        "node=node-a",
        "outcome=bound",
        "status=201",
        "duration_ms=",
    ):
        assert part in line
    assert "s3cr3t" not in caplog.text


@pytest.mark.timeout(20)
def test_retry_after_success_is_already_bound(api: FakeKubeAPI, binder: Binder) -> None:
    t = _add_pod(api)
    assert binder.bind(t).outcome is BindOutcome.BOUND
    assert binder.bind(t) == BindResult(BindOutcome.ALREADY_BOUND, "")
    assert _statuses(api) == [201, 409]
    assert len(api.requests("GET", "/pods/web-0$")) == 1


@pytest.mark.timeout(20)
def test_bind_elsewhere_after_success_is_conflict(api: FakeKubeAPI, binder: Binder) -> None:
    t = _add_pod(api)
    assert binder.bind(t).outcome is BindOutcome.BOUND
    res = binder.bind(BindTarget(t.pod_name, t.namespace, t.pod_uid, "node-b"))
    assert res.outcome is BindOutcome.CONFLICT
    assert "shop/web-0" in res.error and "node-a" in res.error and "node-b" in res.error
    assert _node_of(api, t) == "node-a"


@pytest.mark.timeout(20)
def test_uid_mismatch_is_conflict(api: FakeKubeAPI, binder: Binder) -> None:
    t = _add_pod(api)
    res = binder.bind(BindTarget(t.pod_name, t.namespace, "uid-of-an-older-pod", t.node))
    assert res.outcome is BindOutcome.CONFLICT
    assert "UID" in res.error and "uid-of-an-older-pod" in res.error and t.pod_uid in res.error
    assert _node_of(api, t) is None


@pytest.mark.timeout(20)
def test_empty_uid_sends_no_precondition(api: FakeKubeAPI, binder: Binder) -> None:
    t = _add_pod(api)
    assert binder.bind(BindTarget(t.pod_name, t.namespace, "", t.node)).outcome is BindOutcome.BOUND
    assert api.requests("POST", BIND)[0].body["metadata"] == {"name": "web-0"}


@pytest.mark.timeout(20)
def test_missing_pod_is_not_found(api: FakeKubeAPI, binder: Binder) -> None:
    res = binder.bind(BindTarget("ghost", "shop", "", "node-a"))
    assert res == BindResult(BindOutcome.NOT_FOUND, "pod shop/ghost not found")


@pytest.mark.timeout(20)
def test_single_500_is_retried_once(api: FakeKubeAPI, binder: Binder) -> None:
    t = _add_pod(api)
    api.fail("POST", BIND, status=500)
    assert binder.bind(t) == BindResult(BindOutcome.BOUND, "")
    assert _statuses(api) == [500, 201]
    assert _node_of(api, t) == "node-a"


@pytest.mark.timeout(20)
def test_persistent_500_is_api_error(api: FakeKubeAPI, binder: Binder) -> None:
    t = _add_pod(api)
    api.fail("POST", BIND, status=500, times=10)
    res = binder.bind(t)
    assert res.outcome is BindOutcome.API_ERROR and "500" in res.error and "shop/web-0" in res.error
    assert _statuses(api) == [500, 500]  # exactly one retry
    assert _node_of(api, t) is None


@pytest.mark.timeout(20)
def test_4xx_is_not_retried(api: FakeKubeAPI, binder: Binder) -> None:
    t = _add_pod(api)
    api.fail("POST", BIND, status=403)
    res = binder.bind(t)
    assert res.outcome is BindOutcome.API_ERROR and "403" in res.error
    assert _statuses(api) == [403]


@pytest.mark.parametrize("retry_after", ["1e10", "inf", "86400", "-5", "nan", "soon"])
def test_any_retry_after_keeps_the_bind_within_its_deadline(
    retry_after: str, api: FakeKubeAPI, binder: Binder
) -> None:
    api.fail("POST", BIND, status=503, retry_after=retry_after)
    t0 = time.monotonic()
    result = binder.bind(_add_pod(api))
    assert time.monotonic() - t0 < 2.0  # the binder's timeout_s
    if retry_after in ("-5", "nan", "soon"):  # now, or our own short pause: the retry binds
        assert result.outcome is BindOutcome.BOUND
    else:  # a wait past the deadline is not waited: the bind fails at once
        assert result.outcome is BindOutcome.API_ERROR and time.monotonic() - t0 < 1.0


@pytest.mark.timeout(20)
def test_429_retry_after_honoured_only_within_budget(api: FakeKubeAPI, binder: Binder) -> None:
    t = _add_pod(api)
    api.fail("POST", BIND, status=429, retry_after=30)
    t0 = time.monotonic()
    res = binder.bind(t)
    assert res.outcome is BindOutcome.API_ERROR and "429" in res.error
    assert time.monotonic() - t0 < 1.0 and _statuses(api) == [429]

    api.fail("POST", BIND, status=503, retry_after=1)
    t0 = time.monotonic()
    assert binder.bind(t).outcome is BindOutcome.BOUND
    assert 0.9 <= time.monotonic() - t0 < 2.5
    assert _statuses(api) == [429, 503, 201]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("after_processing", [False, True], ids=["slow-before-apply", "reply-lost"])
def test_timeout_then_later_retry(
    api: FakeKubeAPI, api_client: client.ApiClient, after_processing: bool
) -> None:
    binder = Binder(api_client, timeout_s=1.0)
    t = _add_pod(api)
    api.delay("POST", BIND, 1.6, after_processing=after_processing)
    t0 = time.monotonic()
    res = binder.bind(t)
    elapsed = time.monotonic() - t0
    assert res.outcome is BindOutcome.API_ERROR and "timed out" in res.error
    assert 0.9 < elapsed < 1.0 + 1.0
    assert len(api.requests("POST", BIND)) == 1  # a timeout is not retried inside bind
    # The scheduler retries later; by then the delayed first POST has been handled by the server.
    assert api.wait_until(lambda: api.requests("POST", BIND)[0].status != 0, timeout=5)
    again = binder.bind(t)
    assert again.outcome in (BindOutcome.ALREADY_BOUND, BindOutcome.BOUND) and again.error == ""
    assert _node_of(api, t) == "node-a"
    assert _statuses(api).count(201) == 1


@pytest.mark.timeout(20)
def test_dropped_connection_retried_once(api: FakeKubeAPI, binder: Binder) -> None:
    t = _add_pod(api)
    api.drop("POST", BIND)  # lost before the server applied it: the retry binds
    assert binder.bind(t) == BindResult(BindOutcome.BOUND, "")
    assert _statuses(api) == [0, 201]

    t2 = _add_pod(api, name="web-1")
    api.drop("POST", BIND, after_processing=True)  # applied, reply lost: the retry sees 409 -> read back
    assert binder.bind(t2) == BindResult(BindOutcome.ALREADY_BOUND, "")
    assert _statuses(api)[2:] == [0, 409]
    assert _node_of(api, t2) == "node-a"


@pytest.mark.timeout(20)
def test_conflict_with_unreadable_pod_stays_conflict(api: FakeKubeAPI, binder: Binder) -> None:
    t = _add_pod(api)
    assert binder.bind(t).outcome is BindOutcome.BOUND
    api.fail("GET", "/pods/web-0$", status=500)
    res = binder.bind(t)
    assert res.outcome is BindOutcome.CONFLICT and "already assigned" in res.error
    assert len(api.requests("GET", "/pods/web-0$")) == 1  # urllib3 retries are off for the Binder


@pytest.mark.timeout(20)
def test_unreachable_api_is_api_error_quickly(api_client: client.ApiClient, api: FakeKubeAPI) -> None:
    api.stop()
    binder = Binder(api_client, timeout_s=2.0)
    t0 = time.monotonic()
    res = binder.bind(BindTarget("web-0", "shop", "", "node-a"))
    assert res.outcome is BindOutcome.API_ERROR and "connect" in res.error
    assert time.monotonic() - t0 < 1.5


@pytest.mark.timeout(20)
def test_no_api(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        res = Binder(None).bind(BindTarget("web-0", "shop", "u", "node-a"))
    assert res.outcome is BindOutcome.NO_API
    assert "in-cluster" in res.error and "--kubeconfig" in res.error
    assert len([r for r in caplog.records if r.name == "extender.binding"]) == 1


@pytest.mark.timeout(20)
def test_load_api_client_none_without_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with caplog.at_level(logging.INFO, logger="extender.binding"):
        assert load_api_client() is None
    assert len(caplog.records) == 1 and "bind unavailable" in caplog.records[0].getMessage()


@pytest.mark.timeout(20)
def test_load_api_client_from_kubeconfig(
    api: FakeKubeAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
        f"clusters: [{{name: fake, cluster: {{server: '{api.url}'}}}}]\n"
        "users: [{name: u, user: {token: very-secret-token}}]\n"
        "contexts: [{name: fake, context: {cluster: fake, user: u}}]\n"
    )
    default_before = client.Configuration.get_default_copy().host
    with caplog.at_level(logging.DEBUG):
        api_client = load_api_client(kubeconfig=str(kubeconfig))
    assert api_client is not None and api_client.configuration.host == api.url
    assert client.Configuration.get_default_copy().host == default_before  # global default untouched
    assert "very-secret-token" not in caplog.text
    t = _add_pod(api)
    try:
        assert Binder(api_client).bind(t).outcome is BindOutcome.BOUND
    finally:
        api_client.close()


@pytest.mark.timeout(20)
def test_load_api_client_prefers_in_cluster(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from kubernetes.config import incluster_config

    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("in-cluster-secret")
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    default_before = client.Configuration.get_default_copy().host
    with caplog.at_level(logging.DEBUG):
        api_client = load_api_client()
    assert api_client is not None
    assert api_client.configuration.host == "https://10.0.0.1:443"
    assert api_client.configuration.api_key["BearerToken"] == "bearer in-cluster-secret"
    assert client.Configuration.get_default_copy().host == default_before
    assert "in-cluster-secret" not in caplog.text
    api_client.close()
