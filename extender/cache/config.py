"""The cluster cache's settings, as one frozen value both of its homes read.

Kept apart from ``extender.cache.feed`` (the in-process cache) and ``extender.cache.process``
(the cache in a child process) so that each reads its configuration without importing the
other.
"""

from __future__ import annotations

import dataclasses

from extender.cache.store import CompensationSpec
from extender.load.sources import parse_load_sources
from extender.settings import Settings
from scoring import Policy


@dataclasses.dataclass(frozen=True)
class CacheConfig:
    load_sources: tuple[str, ...] = ("annotations",)
    annotation_prefix: str = "load.extender.scheduling/"
    metrics_interval_s: float = 15.0
    prometheus_url: str | None = None
    prometheus_node_label: str = "node"
    load_window_s: float = 300.0
    compensation: CompensationSpec = dataclasses.field(default_factory=CompensationSpec)
    publish_interval_s: float = 0.2  # binds through the extender publish at once
    resync_s: float = 0.0
    unhealthy_after_s: float = 60.0  # an informer failing this long makes the cache not ready
    watch_timeout_s: int = 60  # the informers' timeoutSeconds; their progress limit derives from it


@dataclasses.dataclass(frozen=True)
class CachePolicy:
    """What the cluster cache takes from the policy, as plain values (sent to the cache
    process): the estimator's scaling factors, for the estimated usage of every pod it counts
    (the compensation of recent binds in ``pending``, and preempt's victims given by UID), and
    ``load.staleAfterSeconds``, for the ``extender_load_stale_nodes`` gauge. Everything else
    in the policy is the verbs'. ``version``: the policy's (``extender.policy_file``)."""

    estimator_factors: tuple[tuple[str, float], ...]
    stale_after_s: float
    version: str = ""

    @classmethod
    def of(cls, policy: Policy, version: str = "") -> CachePolicy:
        factors = tuple(sorted((k, float(v)) for k, v in policy.estimator.estimatedScalingFactors.items()))
        return cls(factors, float(policy.load.staleAfterSeconds), version)


def cache_config(settings: Settings) -> CacheConfig:
    """The CacheConfig of the service's Settings."""
    s = settings
    return CacheConfig(
        load_sources=parse_load_sources(s.load_sources),
        annotation_prefix=s.annotation_prefix,
        metrics_interval_s=s.metrics_interval_s,
        prometheus_url=s.prometheus_url,
        prometheus_node_label=s.prometheus_node_label,
        load_window_s=s.load_window_s,
        compensation=CompensationSpec(s.compensation_lag_s, s.compensation_max_s),
        unhealthy_after_s=s.cache_unhealthy_s,
        watch_timeout_s=s.watch_timeout_s,
    )
