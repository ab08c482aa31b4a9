"""The ``prometheus`` load source: polls the Prometheus instant-query API into the window.

Through a urllib3 ``PoolManager`` (the Kubernetes client's own dependency), without retries.

Prometheus answers are handled as the HTTP API documents them
(https://prometheus.io/docs/prometheus/latest/querying/api/): ``status`` "success" or "error"
with ``errorType``/``error`` (HTTP 400 bad parameters, 422 unexecutable expression, 503 timeout
or abort; other codes may come from proxies in front, with any body); ``warnings`` (partial
answers, e.g. from Thanos/Mimir store failures) are logged; ``data.resultType`` must be
``vector``, each ``result[]`` has ``metric`` (labels) and ``value = [unix_time, "value"]``
(a string, which may be "NaN" or "+Inf"); native-histogram series (``histogram`` instead of
``value``) are skipped.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import math
import random
import re
import time
import types
from collections.abc import Callable, Mapping
from typing import Final

import msgspec
import urllib3

from extender.load.poller import PollError, _Poller
from extender.load.sources import PROMETHEUS
from extender.load.window import _MAX_MESSAGE, LoadWindow

# ---- Prometheus ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PromQuery:
    """An instant query giving one series per node, and the factor from its unit to the
    scheduler's (e.g. 1000 for CPU cores -> millicores)."""

    promql: str
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not self.promql.strip():
            raise ValueError("PromQuery.promql is empty")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"PromQuery.scale must be a positive number, got {self.scale!r}")


def default_prom_queries(label: str = "node") -> Mapping[str, PromQuery]:
    """The default queries for node-exporter metrics, aggregated by ``label``.

    * cpu: ``sum by (<label>) (rate(node_cpu_seconds_total{mode!~"idle|iowait|steal"}[2m]))``,
      busy cores, scale 1000 (cores -> millicores). iowait and steal are idle time as far as
      the node's own work goes (metrics-server's cgroup CPU usage excludes them too). The 2 m
      range holds 4 scrapes at the common 30 s scrape interval, so one missed scrape does
      not drop the node.
    * memory: ``max by (<label>) (node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes)``,
      bytes in use, scale 1 (close to metrics-server's working set). ``max`` rather than ``sum``
      so that a node scraped by two jobs is not counted twice.

    ``label`` must hold the node's name (mode "node"), or its address for modes "instance" /
    "internal-ip" (then pass ``"instance"``).
    """
    if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", label):
        raise ValueError(f"not a Prometheus label name: {label!r}")
    return types.MappingProxyType(
        {
            "cpu": PromQuery(
                f'sum by ({label}) (rate(node_cpu_seconds_total{{mode!~"idle|iowait|steal"}}[2m]))', 1000.0
            ),
            "memory": PromQuery(
                f"max by ({label}) (node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes)", 1.0
            ),
        }
    )


# For node-exporter series that carry a ``node`` label with the Kubernetes node name, e.g. from
# a scrape config relabelling ``__meta_kubernetes_pod_node_name`` (or
# ``__meta_kubernetes_endpoint_node_name``) to ``node``.
DEFAULT_PROM_QUERIES: Final[Mapping[str, PromQuery]] = default_prom_queries("node")

_NODE_LABEL_MODES: Final = ("node", "instance", "internal-ip")


class _PromData(msgspec.Struct):
    resultType: str = ""
    result: msgspec.Raw = msgspec.Raw(b"null")


class _PromAnswer(msgspec.Struct):
    status: str = ""
    data: _PromData | None = None
    errorType: str = ""
    error: str = ""
    warnings: list[str] = []


class _PromSeries(msgspec.Struct):
    metric: dict[str, str] = {}
    value: tuple[float, str] | None = None


_PROM_ANSWER = msgspec.json.Decoder(_PromAnswer)
_PROM_RESULT = msgspec.json.Decoder(list[msgspec.Raw])
_PROM_SERIES = msgspec.json.Decoder(_PromSeries)


def _strip_port(address: str) -> str:
    """``10.0.0.5:9100`` -> ``10.0.0.5``, ``[fd00::5]:9100`` -> ``fd00::5``, ``node-a:9100`` ->
    ``node-a``; a bare IPv6 address or a value without a port is returned unchanged."""
    if address.startswith("["):
        end = address.find("]")
        return address[1:end] if end > 0 else address
    host, sep, port = address.rpartition(":")
    if sep and host and ":" not in host and port.isdigit():
        return host
    return address


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class PrometheusSource(_Poller):
    """Polls the Prometheus instant-query API (``GET {base_url}/api/v1/query``) into the window.

    ``queries`` maps each resource to a ``PromQuery`` (every key must be tracked by the window).
    ``node_label`` says how a series names its node:

    * ``"node"`` (or any other label name): the label's value is the node name;
    * ``"instance"``: the ``instance`` label with a trailing ``:port`` removed; a node name, or
      an IP address mapped through ``node_by_ip`` (an IP it cannot map is skipped);
    * ``"internal-ip"``: the ``ip_label`` label (default ``instance``), port removed, mapped
      through ``node_by_ip`` (required).

    The sample time is the value's timestamp (Prometheus' evaluation time). Series without the
    label, with an unmapped address, a non-numeric / NaN / infinite value, or a duplicate node
    within one answer are skipped and counted (``series_skipped``). A poll fails if any query
    fails, but the samples of the queries that succeeded are kept.

    TLS: ``ca_file`` verifies the server with that bundle; ``insecure_skip_verify`` turns
    verification off (urllib3 then warns on each request). ``bearer_token`` or
    ``bearer_token_file`` (re-read every poll, as projected service-account tokens rotate)
    sends ``Authorization: Bearer``; ``headers`` adds any others (e.g. ``X-Scope-OrgID``).
    """

    source = PROMETHEUS

    def __init__(
        self,
        base_url: str,
        window: LoadWindow,
        *,
        queries: Mapping[str, PromQuery] = DEFAULT_PROM_QUERIES,
        node_label: str = "node",
        node_by_ip: Callable[[str], str | None] | None = None,
        ip_label: str = "instance",
        interval_s: float = 30.0,
        timeout_s: float = 5.0,
        bearer_token: str | None = None,
        bearer_token_file: str | None = None,
        ca_file: str | None = None,
        insecure_skip_verify: bool = False,
        headers: Mapping[str, str] | None = None,
        on_poll: Callable[[str, bool], None] | None = None,
        logger: logging.Logger | None = None,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 120.0,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            window,
            interval_s=interval_s,
            timeout_s=timeout_s,
            on_poll=on_poll,
            logger=logger,
            backoff_base_s=backoff_base_s,
            backoff_max_s=backoff_max_s,
            clock=clock,
            rng=rng,
        )
        url = urllib3.util.parse_url(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"Prometheus URL must be http(s)://host[:port][/prefix], got {base_url!r}")
        if url.query or url.fragment:
            raise ValueError(f"Prometheus URL must not carry a query or fragment: {base_url!r}")
        if not queries:
            raise ValueError("PrometheusSource needs at least one query")
        untracked = [r for r in queries if r not in window.resources]
        if untracked:
            raise ValueError(f"PrometheusSource queries for resources the window does not track: {untracked}")
        if node_label == "internal-ip" and node_by_ip is None:
            raise ValueError('node_label="internal-ip" needs node_by_ip (address -> node name)')
        if not node_label:
            raise ValueError("node_label is empty")
        if bearer_token is not None and bearer_token_file is not None:
            raise ValueError("give bearer_token or bearer_token_file, not both")
        self.url = base_url.rstrip("/") + "/api/v1/query"
        self.queries = dict(queries)
        self.node_label = node_label
        self.ip_label = ip_label
        self.node_by_ip = node_by_ip
        self._token = bearer_token
        self._token_file = bearer_token_file
        self._headers = {"Accept": "application/json", **dict(headers or {})}
        self._pool = urllib3.PoolManager(
            num_pools=2,
            maxsize=2,
            retries=False,
            timeout=urllib3.Timeout(total=self.timeout_s),
            cert_reqs="CERT_NONE" if insecure_skip_verify else "CERT_REQUIRED",
            ca_certs=ca_file,
        )
        self.series_skipped: dict[str, int] = {
            "no_label": 0,
            "unmapped": 0,
            "not_a_number": 0,
            "duplicate": 0,
            "malformed": 0,
        }

    def close(self) -> None:
        self._pool.clear()

    def _request_headers(self) -> dict[str, str]:
        headers = dict(self._headers)
        token = self._token
        if self._token_file is not None:
            try:
                with open(self._token_file, encoding="utf-8") as fh:
                    token = fh.read().strip()
            except OSError as exc:
                raise PollError(f"cannot read bearer token file: {type(exc).__name__}") from None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _query(self, promql: str, headers: dict[str, str]) -> list[msgspec.Raw]:
        """The instant vector of ``promql`` as raw series; PollError for any failure."""
        try:
            resp = self._pool.request(
                "GET",
                self.url,
                fields={"query": promql, "timeout": f"{self.timeout_s:g}"},
                headers=headers,
                retries=False,
                timeout=urllib3.Timeout(total=self.timeout_s),
            )
        except urllib3.exceptions.TimeoutError as exc:
            raise PollError(f"timed out after {self.timeout_s:g}s ({type(exc).__name__})") from None
        except urllib3.exceptions.HTTPError as exc:
            raise PollError(f"{type(exc).__name__}: {exc}") from None
        body = resp.data
        try:
            answer = _PROM_ANSWER.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            if not 200 <= resp.status < 300:
                snippet = body[:120].decode("utf-8", "replace").strip()
                raise PollError(f"HTTP {resp.status}: {snippet}") from None
            raise PollError(f"answer is not a Prometheus API response: {exc}") from None
        for warning in answer.warnings:
            self._log.warning(
                "load source %s: Prometheus warns (partial answer?): %s", self.source, warning[:_MAX_MESSAGE]
            )
        if answer.status != "success" or not 200 <= resp.status < 300:
            if answer.status == "error":
                raise PollError(f"HTTP {resp.status} {answer.errorType or 'error'}: {answer.error}")
            raise PollError(f"HTTP {resp.status}, status {answer.status!r}")
        if answer.data is None or answer.data.resultType != "vector":
            got = answer.data.resultType if answer.data is not None else "no data"
            raise PollError(f"expected an instant vector, got {got!r}")
        try:
            return _PROM_RESULT.decode(answer.data.result)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise PollError(f"data.result is not a list: {exc}") from None

    def _node_of(self, labels: Mapping[str, str]) -> str | None:
        """The node a series belongs to; None (and a counted reason) when it has none."""
        mode = self.node_label
        label = self.ip_label if mode == "internal-ip" else mode
        value = labels.get(label, "")
        if not value:
            self.series_skipped["no_label"] += 1
            return None
        if mode not in ("instance", "internal-ip"):
            return value
        address = _strip_port(value)
        if mode == "internal-ip" or _is_ip(address):
            node = self.node_by_ip(address) if self.node_by_ip is not None else None
            if not node:
                self.series_skipped["unmapped"] += 1
                return None
            return node
        return address

    def _fetch(self) -> int:
        headers = self._request_headers()
        accepted = 0
        errors: list[str] = []
        for resource, query in self.queries.items():
            try:
                series = self._query(query.promql, headers)
            except PollError as exc:
                errors.append(f"query for {resource}: {exc}")
                continue
            batch: list[tuple[str, float, dict[str, float]]] = []
            seen: set[str] = set()
            for raw in series:
                try:
                    item = _PROM_SERIES.decode(raw)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    self.series_skipped["malformed"] += 1
                    continue
                node = self._node_of(item.metric)
                if node is None:
                    continue
                if item.value is None:  # a native histogram
                    self.series_skipped["not_a_number"] += 1
                    continue
                t, text = item.value
                try:
                    x = float(text)
                except ValueError:
                    x = math.nan
                if not (math.isfinite(x) and math.isfinite(t)):
                    self.series_skipped["not_a_number"] += 1
                    continue
                if node in seen:
                    self.series_skipped["duplicate"] += 1
                    continue
                seen.add(node)
                batch.append((node, t, {resource: x * query.scale}))
            accepted += self.window.record_many(self.source, batch, now=self._clock())
        if errors:
            raise PollError("; ".join(errors))
        return accepted
