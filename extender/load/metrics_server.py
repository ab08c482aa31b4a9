"""The ``metrics-server`` load source: polls ``metrics.k8s.io/v1beta1`` NodeMetrics into the window.

Through the official client with urllib3 retries off (one attempt per poll, bounded by
``timeout_s``), with ``_preload_content=False`` and msgspec decoding of the few fields needed
(the client's model deserialisation is slow and CustomObjectsApi returns plain dicts anyway).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

import msgspec
from kubernetes import client as k8s_client

from extender.kube.client import no_retry_client
from extender.kube.quantity import QuantityError, base_units, cpu_millis
from extender.kube.timestamps import parse_rfc3339
from extender.load.poller import PollError, _Poller
from extender.load.sources import METRICS_SERVER
from extender.load.window import _MAX_MESSAGE, LoadWindow


class _Meta(msgspec.Struct):
    name: str = ""


class _NodeMetrics(msgspec.Struct):
    metadata: _Meta = msgspec.field(default_factory=_Meta)
    timestamp: str = ""
    window: str = ""
    usage: dict[str, str | int | float] = {}


class _NodeMetricsList(msgspec.Struct):
    items: list[msgspec.Raw] = []


_NODE_METRICS_LIST = msgspec.json.Decoder(_NodeMetricsList)
_NODE_METRICS = msgspec.json.Decoder(_NodeMetrics)


def _to_units(resource: str, quantity: str | int | float) -> float:
    return cpu_millis(quantity) if resource == "cpu" else base_units(quantity)


class MetricsServerSource(_Poller):
    """Polls ``metrics.k8s.io/v1beta1`` NodeMetrics (metrics-server) into the window.

    Each item's ``timestamp`` is the sample time (the end of the ``window`` over which
    metrics-server measured), not the poll time, so repeated polls of one scrape deduplicate.
    Usage quantities are parsed exactly (``cpu_millis`` for cpu, ``base_units`` otherwise).
    Malformed items (no name, bad timestamp, bad quantity, wrong JSON types) are skipped and
    counted in ``skipped_total``; a body that is not a NodeMetricsList fails the poll.
    The caller's ApiClient is not modified: the source builds its own from a copy of its
    configuration with urllib3 retries off.
    """

    source = METRICS_SERVER

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        window: LoadWindow,
        *,
        interval_s: float = 15.0,
        timeout_s: float = 5.0,
        on_poll: Callable[[str, bool], None] | None = None,
        logger: logging.Logger | None = None,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
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
        # one attempt per poll, bounded by timeout_s; the poller retries
        self._api = k8s_client.CustomObjectsApi(no_retry_client(api_client))
        self.skipped_total = 0  # malformed items over all polls
        self.last_skipped = 0  # malformed items in the last successful poll

    def close(self) -> None:
        self._api.api_client.close()

    def _fetch(self) -> int:
        resp: Any = self._api.list_cluster_custom_object(
            "metrics.k8s.io",
            "v1beta1",
            "nodes",
            _preload_content=False,
            _request_timeout=self.timeout_s,
        )
        try:
            body = resp.data
        finally:
            resp.release_conn()
        try:
            listing = _NODE_METRICS_LIST.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise PollError(f"metrics.k8s.io answer is not a NodeMetricsList: {exc}") from None
        samples: list[tuple[str, float, dict[str, float]]] = []
        skipped, first_reason = 0, ""
        tracked = self.window.resources
        for raw in listing.items:
            try:
                item = _NODE_METRICS.decode(raw)
                if not item.metadata.name:
                    raise ValueError("no metadata.name")
                t = parse_rfc3339(item.timestamp)
                values = {res: _to_units(res, q) for res, q in item.usage.items() if res in tracked}
                if not values:
                    raise ValueError(f"no usage of {', '.join(tracked)}")
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError, QuantityError) as exc:
                skipped += 1
                first_reason = first_reason or f"{exc}"
                continue
            samples.append((item.metadata.name, t, values))
        accepted = self.window.record_many(self.source, samples, now=self._clock())
        self.skipped_total += skipped
        self.last_skipped = skipped
        if skipped:
            self._log.warning(
                "load source %s: skipped %d malformed NodeMetrics item(s) of %d, e.g.: %s",
                self.source,
                skipped,
                len(listing.items),
                first_reason[:_MAX_MESSAGE],
            )
        return accepted
