"""Service settings: one frozen object, read once at start from ``EXTENDER_*`` variables.

The command line (``python -m extender serve``) turns its flags into the same variables before
it starts gunicorn, so the container (which sets them in its manifest) and a developer's shell
run the very same configuration path. Validation happens here, at boot, with messages that
name the variable.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from extender.verbs.source import DEFAULT_ANNOTATION_PREFIX

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
INSTALLED_POLICY_PATH = Path(__file__).resolve().parent / "_config" / "extender-policy.yaml"
"""Where ``pip install`` puts config/extender-policy.yaml (pyproject.toml maps config/ to the
package ``extender._config``); absent in a checkout and in the image."""
DEFAULT_POLICY_PATH = (
    INSTALLED_POLICY_PATH
    if INSTALLED_POLICY_PATH.is_file()
    else PACKAGE_ROOT / "config" / "extender-policy.yaml"
)
"""The shipped policy: the repository's (a checkout, the image's /app) or the installed copy."""
ENV_PREFIX = "EXTENDER_"
MiB = 1024 * 1024
BODY_WORKING_SET_FACTOR = 32
"""Peak memory of one call per body byte, worst case: a filter in the Nodes form of many tiny
nodes (100,000 nodes, a 3.4 MB body, peaked at 30x its size under tracemalloc; the issue's 120 MiB
body peaked at 2.5 GB RSS, 21x). The body limit is the memory budget divided by this."""
NODE_WORKING_SET_BYTES = 8 * 1024
"""What one node of a call may cost (decoded, looked up, judged): a NodeNames list of 1,000,000
short names is 11 MB of body but 126 B per name to decode alone, a node table row ~270 B more.
The nodes per call are the memory budget divided by this (98,304 of 768 MiB, beyond the largest
clusters Kubernetes supports)."""
DECISION_LOG_SHARE = 16
"""The decision log may hold at most this fraction (1/16) of the memory budget."""


class SettingsError(ValueError):
    """A setting is invalid; the message names the variable."""


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    """Listen address. Loopback by default: the extender runs as a sidecar of kube-scheduler."""
    port: int = 8888
    """The scheduling verbs' listener (filter, prioritize, bind, preempt) and nothing else."""
    ops_host: str = "127.0.0.1"
    """Listen address of the operations listener: ``/livez``, ``/readyz``, ``/metrics`` and, when
    ``debug_endpoints``, ``/debug/*`` and ``/explain``. The manifests set the pod IP's 0.0.0.0
    here (kubelet probes, Prometheus) and keep the verbs on loopback."""
    ops_port: int = 8889
    """0: no second listener; the verbs listener serves the operations endpoints too (a
    developer's machine only: whoever reaches the verbs may then read ``/debug/*``)."""
    debug_endpoints: bool = False
    """Serve ``/debug/decisions`` and ``/explain`` (pod and node details) on the operations
    listener. Off by default: they show what the scheduler sees to whoever reaches the port."""
    tls_cert_file: Path | None = None
    """PEM certificate (chain) of the verbs listener; with ``tls_private_key_file`` it serves
    HTTPS (kube-scheduler's ``enableHTTPS: true``). Re-read when the file changes."""
    tls_private_key_file: Path | None = None
    client_ca_file: Path | None = None
    """PEM CA bundle: the verbs listener then requires a client certificate signed by it
    (kube-scheduler's ``tlsConfig.certFile``/``keyFile``); others are refused in the handshake."""
    header_timeout_s: float = 5.0
    """A request's line and headers must arrive within this of its first byte (408 after)."""
    url_prefix: str = ""
    """Path prefix of every route, so that ``urlPrefix: http://HOST:PORT/PREFIX`` works."""
    policy: Path = DEFAULT_POLICY_PATH
    policy_reload_s: float = 2.0
    """How often, at most, the policy file is looked at again (one stat(); read and validated only
    when it changed: a ConfigMap update's symlink swap or an edit in place). A valid new policy
    is used from the next call on; an invalid one keeps the policy in force (logged, counted in
    ``extender_policy_reload_total``). The look happens on a request (verbs, probes, scrapes),
    so a served pod sees it. 0: read at start only."""
    memory_budget_bytes: int = 768 * MiB
    """What one call's working set and the kept state may use: the manifest's 1 GiB limit less
    headroom for the interpreter, the libraries and the snapshots. The body limit
    (``body_limit``) and the decision log's byte budget (``decision_log_bytes``) derive from it."""
    max_body_bytes: int = 0
    """413 above this; 0: derived, the memory budget / ``BODY_WORKING_SET_FACTOR`` (24 MiB of 768).
    An explicit value above that is refused at start."""
    read_timeout_s: float = 10.0
    """A request body must arrive whole within this of its headers (408 after). The server reads
    requests in its event loop and gives a thread only a whole request, so a slow client never
    holds one."""
    annotation_prefix: str = DEFAULT_ANNOTATION_PREFIX
    kubeconfig: str | None = None
    """Explicit kubeconfig for bind; else in-cluster, then KUBECONFIG / ~/.kube/config."""
    api_access: bool = True
    """False: never look for API credentials (bind answers an error saying so)."""
    bind_timeout_s: float = 4.0
    """Whole bind, retries included; below kube-scheduler's default 5 s extender timeout."""
    threads: int = 4
    """gunicorn gthread threads of the single worker (benchmarks/README.md has the measurement)."""
    linger_s: float = 1.0
    """How long a worker thread that answered a request waits on its kept-alive connection for
    the next one (``extender/server/worker.py``); 0: hand it back to the poller at once, as gthread."""
    log_level: str = "info"
    log_format: str = "text"
    """``text`` (one ``key=value`` line per record) or ``json`` (one JSON object per line: time,
    level, logger, message and the extra fields), for every log line, gunicorn's included
    (``extender/logs.py``)."""
    cache: bool = True
    """With API access: keep the watch-fed cluster cache (nodeCacheCapable: true). False: stateless."""
    cache_process: bool = True
    """Run the cluster cache (informers, load pollers, store) in a child process of its own and
    map its snapshots, so that applying watch events never takes the interpreter from a verb
    (``extender/cache/process.py``). False: in the serving process, one process in all."""
    load_sources: str = "annotations"
    """Comma-separated: annotations, metrics-server, prometheus (cache mode)."""
    metrics_interval_s: float = 15.0
    """Poll period of metrics-server / Prometheus."""
    prometheus_url: str | None = None
    prometheus_node_label: str = "node"
    """Which label names the node: node, instance, or internal-ip."""
    load_window_s: float = 300.0
    """Rolling window of load samples (average, std, p95)."""
    compensation_lag_s: float = 60.0
    """A load sample must be this much newer than a bind before it is trusted to include the pod."""
    compensation_max_s: float = 300.0
    cache_unhealthy_s: float = 60.0
    """After the first sync, the cache is not ready once an informer's requests have failed for
    this long (or its thread ended): two retries at the backoff's 30 s maximum."""
    cache_process_timeout_s: float = 30.0
    """The serving process asks the cache process whether it is current every second (its
    heartbeat; ``/readyz`` fails 3 s after the last answer); one that has answered nothing for this
    many seconds (stopped, deadlocked) is killed and a new one started, which lists everything
    again. At least 3 s; a new process gets at least 60 s to answer its first call."""
    watch_timeout_s: int = 60
    """Each informer's watch asks the API server to end it after this many seconds
    (``timeoutSeconds``; kube-apiserver also sends a bookmark a minute). The client cuts a watch
    silent for 1.5 times this and resumes it, and the cache is not ready once an informer has shown
    no progress (a list page, an event, a bookmark, the server's end of a watch) for 2.5 times this
    (150 s): a watch answered and then silent, a list that never answers, a thread stuck in a call."""
    liveness_unready_s: float = 600.0
    """``/livez`` fails once the service has not been ready for this long (the cache never synced,
    or has not recovered), so the kubelet restarts it; 0: never."""
    decisions: int = 256
    """Pods kept for /debug/decisions (0: off)."""

    @property
    def body_limit(self) -> int:
        """The largest body a verb accepts (413 above): explicit, or derived from the budget."""
        return self.max_body_bytes or self.memory_budget_bytes // BODY_WORKING_SET_FACTOR

    @property
    def max_nodes(self) -> int:
        """The most nodes a filter or prioritize call may have (413 above)."""
        return self.memory_budget_bytes // NODE_WORKING_SET_BYTES

    @property
    def decision_log_bytes(self) -> int:
        """What the decision log may hold, estimated from the names and reasons it keeps."""
        return self.memory_budget_bytes // DECISION_LOG_SHARE

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, validate: bool = True) -> Settings:
        """The settings the ``EXTENDER_*`` variables of ``env`` (default: the process's) give.
        ``validate=False`` for a caller that applies more (the command line's flags) and then
        validates the whole, so that a flag can complete a variable (a client CA from the
        environment, the certificate from a flag)."""
        env = os.environ if env is None else env
        kwargs: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            key = ENV_PREFIX + field.name.upper()
            if key not in env:
                continue
            raw = env[key]
            kwargs[field.name] = _convert(key, raw, field.default)
            if str(field.type) == "Path | None":
                kwargs[field.name] = Path(raw) if raw else None
        settings = cls(**kwargs)  # type: ignore[arg-type]
        return settings.validated() if validate else settings

    def to_env(self) -> dict[str, str]:
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            out[ENV_PREFIX + field.name.upper()] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
        return out

    def validated(self) -> Settings:
        if not 0 < self.port < 65536:
            raise SettingsError(f"{ENV_PREFIX}PORT: must be 1..65535, got {self.port}")
        if not 0 <= self.ops_port < 65536:
            raise SettingsError(f"{ENV_PREFIX}OPS_PORT: must be 0..65535 (0: none), got {self.ops_port}")
        if self.ops_port and (self.ops_port, self.ops_host) == (self.port, self.host):
            raise SettingsError(
                f"{ENV_PREFIX}OPS_PORT: must differ from {ENV_PREFIX}PORT ({self.port}); 0 serves the "
                "operations endpoints on the verbs listener"
            )
        self._validate_tls()
        if self.url_prefix and (not self.url_prefix.startswith("/") or self.url_prefix.endswith("/")):
            raise SettingsError(
                f"{ENV_PREFIX}URL_PREFIX: must start with '/' and not end with it "
                f"(e.g. /scheduler), got {self.url_prefix!r}"
            )
        for name in ("memory_budget_bytes", "threads"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()}: must be >= 1")
        fits = self.memory_budget_bytes // BODY_WORKING_SET_FACTOR
        if self.max_body_bytes < 0 or self.max_body_bytes > fits:
            raise SettingsError(
                f"{ENV_PREFIX}MAX_BODY_BYTES={self.max_body_bytes} does not fit "
                f"{ENV_PREFIX}MEMORY_BUDGET_BYTES={self.memory_budget_bytes}: a call's working set is "
                f"up to {BODY_WORKING_SET_FACTOR}x its body, so at most {fits} (0: derive it)"
            )
        try:
            from extender.load.sources import parse_load_sources

            parse_load_sources(self.load_sources)
        except ValueError as exc:
            raise SettingsError(f"{ENV_PREFIX}LOAD_SOURCES: {exc}") from None
        if "prometheus" in self.load_sources and not self.prometheus_url:
            raise SettingsError(f"{ENV_PREFIX}PROMETHEUS_URL: required with load source prometheus")
        if self.prometheus_node_label not in ("node", "instance", "internal-ip"):
            raise SettingsError(f"{ENV_PREFIX}PROMETHEUS_NODE_LABEL: one of node, instance, internal-ip")
        if not 0 <= self.policy_reload_s <= 3600:
            raise SettingsError(f"{ENV_PREFIX}POLICY_RELOAD_S: must be 0..3600 seconds (0: never)")
        if not 0 <= self.linger_s <= 60:
            raise SettingsError(f"{ENV_PREFIX}LINGER_S: must be 0..60 seconds")
        if not self.cache_process_timeout_s >= 3:  # the heartbeat asks each 1 s, waiting 1 s
            raise SettingsError(f"{ENV_PREFIX}CACHE_PROCESS_TIMEOUT_S: must be >= 3 seconds")
        if not 1 <= self.watch_timeout_s <= 3600:
            raise SettingsError(f"{ENV_PREFIX}WATCH_TIMEOUT_S: must be 1..3600 seconds")
        if self.decisions < 0:
            raise SettingsError(f"{ENV_PREFIX}DECISIONS: must be >= 0")
        for name in (
            "read_timeout_s",
            "header_timeout_s",
            "bind_timeout_s",
            "metrics_interval_s",
            "load_window_s",
            "compensation_lag_s",
            "compensation_max_s",
        ):
            if not getattr(self, name) > 0:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()}: must be > 0")
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise SettingsError(f"{ENV_PREFIX}LOG_LEVEL: one of debug, info, warning, error")
        if self.log_format not in ("text", "json"):
            raise SettingsError(f"{ENV_PREFIX}LOG_FORMAT: one of text, json, got {self.log_format!r}")
        return self

    @property
    def tls(self) -> bool:
        """Whether the verbs listener serves HTTPS."""
        return self.tls_cert_file is not None

    def _validate_tls(self) -> None:
        """Both halves of the serving certificate or neither; a client CA only with them; every
        file readable now (a typo is a start-up error, not a handshake failure later)."""
        if (self.tls_cert_file is None) != (self.tls_private_key_file is None):
            raise SettingsError(
                f"{ENV_PREFIX}TLS_CERT_FILE and {ENV_PREFIX}TLS_PRIVATE_KEY_FILE: set both or neither"
            )
        if self.client_ca_file is not None and self.tls_cert_file is None:
            raise SettingsError(
                f"{ENV_PREFIX}CLIENT_CA_FILE: client certificates need HTTPS; set "
                f"{ENV_PREFIX}TLS_CERT_FILE and {ENV_PREFIX}TLS_PRIVATE_KEY_FILE too"
            )
        for name in ("tls_cert_file", "tls_private_key_file", "client_ca_file"):
            path = getattr(self, name)
            if path is not None and not os.access(path, os.R_OK):
                raise SettingsError(f"{ENV_PREFIX}{name.upper()}: cannot read {path}")


def _convert(key: str, raw: str, default: object) -> object:
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError("expected true or false")
            return raw.lower() in ("true", "1")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path):
            return Path(raw)
    except ValueError as exc:
        raise SettingsError(f"{key}={raw!r}: {exc}") from None
    return raw or None if default is None else raw
