"""Shared fixtures: a real gunicorn server started through the command line users run."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from benchmarks.harness import running_server
from tests.kubeapi import FakeKubeAPI

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def running_extender(*args: str, env: dict[str, str] | None = None,
                     timeout_s: float = 30.0) -> Iterator[str]:
    """Start ``python -m extender serve`` on a free loopback port; yield its base URL."""
    with running_server(*args, env=env, timeout_s=timeout_s) as server:
        yield server.url


def write_kubeconfig(path: Path, server_url: str) -> Path:
    """A kubeconfig for the in-test API server (token auth, plain HTTP)."""
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": server_url}}],
        "users": [{"name": "u", "user": {"token": "test-token"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "u"}}]}))
    return path


@pytest.fixture(scope="session")
def extender_url() -> Iterator[str]:
    """One stateless extender under real gunicorn for the whole session (no API access)."""
    with running_extender("--no-api") as url:
        yield url


@pytest.fixture()
def api() -> Iterator[FakeKubeAPI]:
    """The in-test Kubernetes API server (tests/kubeapi), one per test."""
    with FakeKubeAPI() as server:
        yield server


@pytest.fixture()
def api_client(api: FakeKubeAPI) -> Iterator[client.ApiClient]:
    """The official client, configured for ``api``."""
    with client.ApiClient(configuration=client.Configuration(host=api.url)) as c:
        yield c


@pytest.fixture(params=["in-process", "cache-process"])
def cache_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Each test runs with the cache in the serving process and in a process of its own
    (``EXTENDER_CACHE_PROCESS``): the same answers are owed either way."""
    return {"EXTENDER_CACHE_PROCESS": "true" if request.param == "cache-process" else "false"}
