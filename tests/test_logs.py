"""What the extender logs, from start to stop, in either format.

* ``extender starting`` when the app is built; ``extender ready: <why>`` once it can answer (in
  cluster-cache mode after the first sync, not before), then one line per change of readiness
  (``extender not ready: <why>``, ``extender ready again: <why>``); ``extender_ready`` follows.
* A clean stop logs no ERROR: SIGTERM to gunicorn's master (Kubernetes), or to every process
  of the group at once (a terminal, a service manager), with the cache in its own process or not.
* ``--log-format json`` / ``EXTENDER_LOG_FORMAT=json``: every line one JSON object (time, level,
  logger, message, extra fields, the traceback), gunicorn's and the cache process's included;
  ``text`` stays the default.
"""

from __future__ import annotations

import contextlib
import gc
import http.client
import json
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge

from benchmarks.harness import Server, children_of, running_server
from extender.logs import JsonFormatter, make_formatter
from extender.server.readiness import ReadinessWatch
from extender.settings import Settings, SettingsError
from tests.conftest import write_kubeconfig
from tests.kubeapi import FakeKubeAPI
from tests.test_cache_mode import call, node_obj, wait_ready
from tests.test_cache_process import alive, cache_pid, wait_until

TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} level=(DEBUG|INFO|WARNING|ERROR|CRITICAL) logger=\S+ "
)
JSON_KEYS = ("time", "level", "logger", "message")


# ---- the formats ----------------------------------------------------------------------------------


def _record(msg: str, *args: Any, exc: bool = False, **extra: Any) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("extender.test", logging.WARNING, __file__, 1, msg, args, exc_info)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_time_level_logger_message_extras_and_the_traceback() -> None:
    line = JsonFormatter().format(_record("bind pod=%s\nsecond line", "a/b", exc=True, node="n1", took=1.5))
    assert "\n" not in line, "one object per line"
    entry = json.loads(line)
    assert list(entry)[:4] == list(JSON_KEYS)
    assert entry["level"] == "WARNING" and entry["logger"] == "extender.test"
    assert entry["message"] == "bind pod=a/b\nsecond line"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"]), entry["time"]
    assert entry["node"] == "n1" and entry["took"] == 1.5
    assert "ValueError: boom" in entry["exception"] and "Traceback" in entry["exception"]
    odd = json.loads(JsonFormatter().format(_record("x", obj=object())))
    assert odd["obj"].startswith("<object object"), "what JSON cannot encode is its str"
    for name in ("args", "msg", "levelno", "pathname", "thread", "exc_info"):
        assert name not in entry, f"{name}: the record's own fields are not extras"


def test_text_stays_the_default_format() -> None:
    assert Settings().log_format == "text"
    line = make_formatter("text").format(_record("hello %s", "there"))
    assert TEXT_LINE.match(line) and line.endswith("hello there")


def test_the_log_format_setting_is_validated() -> None:
    assert Settings.from_env({"EXTENDER_LOG_FORMAT": "json"}).log_format == "json"
    with pytest.raises(SettingsError, match="EXTENDER_LOG_FORMAT: one of text, json"):
        Settings.from_env({"EXTENDER_LOG_FORMAT": "xml"})


def test_the_command_line_refuses_an_unknown_format(capsys: pytest.CaptureFixture[str]) -> None:
    from extender.cli import main

    with pytest.raises(SystemExit):
        main(["serve", "--log-format", "yaml"])
    assert "--log-format" in capsys.readouterr().err


# ---- readiness: the gauge and one line per change -------------------------------------------------


def test_readiness_is_logged_once_ready_and_once_per_change(caplog: pytest.LogCaptureFixture) -> None:
    states = iter(
        [
            (False, "waiting for the first sync"),
            (False, "waiting for the first sync of pods informer"),
            (True, "synced: 2 nodes"),
            (True, "synced: 3 nodes"),
            (False, "informer-pods: no progress"),
            (False, "informer-pods: no progress for longer"),
            (True, "synced: 3 nodes"),
        ]
    )
    registry = CollectorRegistry()
    gauge = Gauge("extender_ready", "test", registry=registry)
    watch = ReadinessWatch(lambda: next(states), gauge=gauge, logger=logging.getLogger("extender.test"))
    seen = []
    with caplog.at_level(logging.INFO, logger="extender.test"):
        for _ in range(7):
            watch.observe()
            seen.append(registry.get_sample_value("extender_ready"))
    assert seen == [0, 0, 1, 1, 0, 0, 1]
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "extender ready: synced: 2 nodes"),
        ("WARNING", "extender not ready: informer-pods: no progress"),
        ("INFO", "extender ready again: synced: 3 nodes"),
    ]


def _readiness_threads() -> int:
    return sum(t.name == "readiness" for t in threading.enumerate())


def _ready_without_a_probe() -> None:
    """An app whose extender_ready turns 1 though nothing calls /readyz; dropped on return."""
    from extender.server.app import create_app

    registry = create_app(Settings(api_access=False)).extensions["extender"]["metrics"].registry
    wait_until(lambda: registry.get_sample_value("extender_ready") == 1, timeout=5)


def test_the_watch_runs_on_its_own_and_ends_with_its_app() -> None:
    before = _readiness_threads()
    _ready_without_a_probe()
    gc.collect()
    wait_until(lambda: _readiness_threads() <= before, timeout=5)


# ---- a real server, from start to stop ------------------------------------------------------------


def log_lines(server: Server) -> list[str]:
    return [line for line in server.log_tail(10_000_000).splitlines() if line.strip()]


def messages(server: Server, fmt: str) -> list[tuple[str, str]]:
    """(level, message) of every line, each checked to be of format ``fmt``."""
    out = []
    for line in log_lines(server):
        if fmt == "json":
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                raise AssertionError(f"not a JSON line: {line!r}") from None
            assert isinstance(entry, dict) and all(k in entry for k in JSON_KEYS), line
            out.append((entry["level"], entry["message"]))
        else:
            m = TEXT_LINE.match(line)
            assert m, f"not a text log line: {line!r}"
            out.append((m[1], line[m.end() :]))
    return out


def index_of(found: list[tuple[str, str]], prefix: str) -> int:
    hits = [i for i, (_, msg) in enumerate(found) if msg.startswith(prefix)]
    assert hits, f"no line starting {prefix!r} in {[m for _, m in found]}"
    return hits[0]


def count(found: list[tuple[str, str]], prefix: str) -> int:
    return sum(msg.startswith(prefix) for _, msg in found)


def group_of(server: Server) -> list[int]:
    """gunicorn's master, its worker, the worker's children (cache process, resource tracker)."""
    workers = children_of(server.master_pid)
    return [server.master_pid, *workers, *(c for w in workers for c in children_of(w))]


def stop(server: Server, pids: list[int], sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` to ``pids`` and wait for the master to exit (it stays a zombie of ours),
    with a kept-alive connection open on each listener meanwhile, as kube-scheduler and
    Prometheus keep theirs: the worker's graceful stop then takes a while (without one, a
    worker that exits at once hides what its cache does meanwhile)."""
    held = []
    for port, path, body in ((server.port, "/filter", b"{}"), (server.ops_port, "/metrics", None)):
        conn = http.client.HTTPConnection(server.host, port, timeout=10)
        conn.request("POST" if body else "GET", path, body=body)
        conn.getresponse().read()
        held.append(conn)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    wait_until(lambda: not alive(server.master_pid), timeout=30)
    for conn in held:
        conn.close()


@contextlib.contextmanager
def cache_server(tmp_path: Path, env: dict[str, str], *args: str) -> Iterator[tuple[FakeKubeAPI, Server]]:
    with FakeKubeAPI() as api:
        api.add_node(node_obj("n0"))
        api.add_node(node_obj("n1"))
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
        with running_server("--kubeconfig", str(kubeconfig), *args, env=env) as server:
            yield api, server


def ready_logged(server: Server, fmt: str) -> bool:
    return any(msg.startswith("extender ready: ") for _, msg in messages(server, fmt))


@pytest.mark.timeout(120)
def test_json_logs_ready_after_the_sync_each_change_and_a_stop_of_the_whole_group_without_error(
    tmp_path: Path,
) -> None:
    env = {"EXTENDER_CACHE_PROCESS": "true", "EXTENDER_LOG_FORMAT": "json", "EXTENDER_CACHE_UNHEALTHY_S": "1"}
    with cache_server(tmp_path, env) as (api, server):
        wait_ready(server.ops_url, timeout=60)
        wait_until(lambda: ready_logged(server, "json"))
        found = messages(server, "json")
        starting, ready = (
            index_of(found, "extender starting: mode=cache"),
            index_of(found, "extender ready: "),
        )
        assert starting < index_of(found, "informer-pods: listed") < ready, found
        assert "cluster cache synced: 2 nodes, 0 pods" in found[ready][1]
        # unready: the API server fails; ready again when it answers
        api.fail("GET", r"^/api/v1/(nodes|pods)$", status=503, times=10**6)
        api.drop_watches()
        wait_until(lambda: count(messages(server, "json"), "extender not ready: ") == 1, timeout=30)
        assert call(f"{server.ops_url}/readyz")[0] == 503
        _, metrics_text = call(f"{server.ops_url}/metrics")
        assert re.search(r"^extender_ready 0\.0$", metrics_text, re.M)
        api.clear_faults()
        wait_ready(server.ops_url, timeout=60)
        wait_until(lambda: count(messages(server, "json"), "extender ready again: ") == 1, timeout=10)
        child = cache_pid(server.worker_pid() or 0)
        stop(server, group_of(server))  # as a service manager or a terminal stops a process group
        found = messages(server, "json")
        assert count(found, "extender ready: ") == 1 and count(found, "extender not ready: ") == 1
        assert count(found, "extender ready again: ") == 1
        assert "Starting gunicorn" in found[0][1], "gunicorn's own lines are JSON too"
        assert count(found, "cache process running") == 1, "the cache process's lines are JSON too"
        assert [m for level, m in found if level in ("ERROR", "CRITICAL")] == []
        assert found[-1][1] == "Shutting down: Master"
        wait_until(lambda: not alive(child), timeout=10)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cache_process", ["true", "false"])
def test_sigterm_to_the_master_stops_without_an_error_in_text(cache_process: str, tmp_path: Path) -> None:
    with cache_server(tmp_path, {"EXTENDER_CACHE_PROCESS": cache_process}) as (_, server):
        wait_ready(server.ops_url, timeout=60)
        wait_until(lambda: ready_logged(server, "text"))
        children = [c for w in children_of(server.master_pid) for c in children_of(w)]
        stop(server, [server.master_pid])  # Kubernetes: SIGTERM to the container's first process
        found = messages(server, "text")
        assert count(found, "extender starting: mode=cache") == 1 and count(found, "extender ready: ") == 1
        assert count(found, "extender not ready") == 0, "the stop is no loss of readiness"
        assert [m for level, m in found if level in ("ERROR", "CRITICAL")] == []
        assert found[-1][1] == "Shutting down: Master"
        wait_until(lambda: not any(alive(c) for c in children), timeout=10)


@pytest.mark.timeout(60)
def test_log_format_flag_and_stateless_readiness() -> None:
    with running_server("--no-api", "--log-format", "json") as server:
        wait_until(lambda: ready_logged(server, "json"))
        found = messages(server, "json")
        assert index_of(found, "extender starting: mode=stateless") < index_of(
            found, "extender ready: stateless"
        )
        stop(server, group_of(server), signal.SIGINT)  # ^C in a terminal
        found = messages(server, "json")
        assert [m for level, m in found if level in ("ERROR", "CRITICAL")] == []
