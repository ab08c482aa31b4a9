"""Shared fixtures: a real gunicorn server started through the command line users run."""

from __future__ import annotations

import contextlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from benchmarks.harness import running_server
from tests.kubeapi import FakeKubeAPI

ROOT = Path(__file__).resolve().parent.parent


class FileProgress:
    """One line per test file as its last test ends, in place of a dot per passing test:
    ``[ 7/41] tests/test_worker.py: 21 passed, 14.2s``, the time its tests took (setup and
    teardown included; under pytest-xdist they may have run on several workers). Failures still
    print their letter (F, E) as they happen. Runs in the controller process under xdist."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.expected: Counter[str] = Counter()  # tests per file
        self.finished: Counter[str] = Counter()
        self.outcomes: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.seconds: Counter[str] = Counter()
        self.files_done = 0

    def _expect(self, nodeids: Iterable[str]) -> None:
        if not self.expected:  # every xdist worker reports the same collection
            self.expected.update(nodeid.split("::")[0] for nodeid in nodeids)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._expect(item.nodeid for item in session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: object, ids: list[str]) -> None:
        self._expect(ids)

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: pytest.TestReport) -> tuple[str, str, str] | None:
        if report.when == "call" and report.passed and not hasattr(report, "wasxfail"):
            return "passed", "", "PASSED"  # no dot: the file's line counts it
        return None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        path = report.nodeid.split("::")[0]
        self.seconds[path] += report.duration
        category = self.config.hook.pytest_report_teststatus(report=report, config=self.config)[0]
        if category:
            self.outcomes[path][category] += 1
        if report.when != "teardown":
            return
        self.finished[path] += 1
        if self.finished[path] == self.expected.get(path):
            self.files_done += 1
            counts = ", ".join(f"{n} {what}" for what, n in self.outcomes[path].items())
            total = len(self.expected)
            tr = self.config.pluginmanager.get_plugin("terminalreporter")
            if tr is not None:
                tr.ensure_newline()
                tr.write_line(
                    f"[{self.files_done:{len(str(total))}}/{total}] {path}: {counts},"
                    f" {self.seconds[path]:.1f}s"
                )


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and config.get_verbosity() <= 0:  # not in an xdist worker
        config.pluginmanager.register(FileProgress(config), "file-progress")


@contextlib.contextmanager
def running_extender(*args: str, env: dict[str, str] | None = None, timeout_s: float = 30.0) -> Iterator[str]:
    """Start ``python -m extender serve`` on a free loopback port; yield its base URL. One
    listener serves everything, debug endpoints included (``--ops-port 0 --debug-endpoints``,
    a developer's layout), so a test reaches verbs and probes at one URL; tests of the
    production layout (tests/test_listeners.py) use ``running_server`` itself."""
    with running_server(
        "--ops-port", "0", "--debug-endpoints", *args, env=env, timeout_s=timeout_s
    ) as server:
        yield server.url


def write_kubeconfig(path: Path, server_url: str) -> Path:
    """A kubeconfig for the in-test API server (token auth, plain HTTP)."""
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "fake",
                "clusters": [{"name": "fake", "cluster": {"server": server_url}}],
                "users": [{"name": "u", "user": {"token": "test-token"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "u"}}],
            }
        )
    )
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
