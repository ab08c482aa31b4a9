"""The Kubernetes API client: one ``ApiClient`` from in-cluster config or kubeconfig, and copies
of it with urllib3's retries off.

The only place that builds API clients; the binder (``extender.kube.binding``), the informers
(``extender.cache.informer``) and the metrics-server poller (``extender.load.metrics_server``)
take theirs from here. urllib3's default retry policy silently re-sends GETs up to 3 times on
read timeouts and drops (and honours Retry-After), which would blow the scheduler's deadlines,
so every caller that must bound its time gets a ``no_retry_client`` copy and makes its own
retry decisions; ``retry_after_s`` reads a refusal's Retry-After for them, within a cap each
states (issue 17: ``Retry-After: 1e10`` once killed an informer thread, ``86400`` parked it).
"""

from __future__ import annotations

import copy
import logging
import math
import os
from typing import Any

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

_LOG = logging.getLogger("extender.binding")  # its name in log lines: unchanged by the move


def no_retry_client(api_client: k8s_client.ApiClient) -> k8s_client.ApiClient:
    """A new ApiClient from a deep copy of ``api_client``'s configuration (cookie and default
    headers kept) with urllib3's retries off: every user that decides its own retries and
    deadlines (binder, informers, metrics poller) gets its own, and the caller's client is left
    as it was."""
    cfg = copy.deepcopy(api_client.configuration)
    cfg.retries = False
    cfg.client_go_retries = False
    own = k8s_client.ApiClient(configuration=cfg, cookie=api_client.cookie)
    own.default_headers.update(api_client.default_headers)
    return own


def retry_after_s(exc: Any, cap_s: float) -> float | None:
    """The ``Retry-After`` of an ``ApiException`` in seconds, within ``[0, cap_s]``.

    None when there is none or it is not a number of seconds (an HTTP-date, garbage, NaN): the
    caller's own backoff applies. A negative value is 0; a huge or infinite one is ``cap_s``, so
    no server can make a caller wait longer than it chose (or overflow a wait's timeout)."""
    headers = getattr(exc, "headers", None)
    value = headers.get("Retry-After") if headers else None
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(seconds):
        return None
    return min(max(0.0, seconds), max(0.0, cap_s))


def load_api_client(*, kubeconfig: str | None = None) -> k8s_client.ApiClient | None:
    """An ApiClient from in-cluster config, else kubeconfig; None when neither is usable.

    In-cluster config is tried first unless `kubeconfig` is given explicitly.  Kubeconfig
    resolution: the explicit file, else $KUBECONFIG (read now, not at import), else
    ~/.kube/config.  A fresh Configuration is filled and passed in, so the client library's
    process-global default configuration is never touched.
    """
    if kubeconfig is None:
        cfg = k8s_client.Configuration()
        try:
            k8s_config.load_incluster_config(client_configuration=cfg)
        except k8s_config.ConfigException:
            pass
        else:
            _LOG.info("kubernetes API access: in-cluster service account")
            return k8s_client.ApiClient(configuration=cfg)
    source = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    cfg = k8s_client.Configuration()
    try:
        k8s_config.load_kube_config(config_file=source, client_configuration=cfg, persist_config=False)
    except Exception as exc:  # noqa: BLE001 - any loader failure means "no API"; message may hold secrets
        _LOG.info(
            "bind unavailable: no in-cluster config and no usable kubeconfig (%s: %s)",
            source,
            type(exc).__name__,
        )
        return None
    _LOG.info("kubernetes API access: kubeconfig %s", source)
    return k8s_client.ApiClient(configuration=cfg)
