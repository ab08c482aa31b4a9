"""What a bind asks for and how it ended: data only, shared by the verbs and the binders.

The verbs (``extender.verbs.verbs``) speak these types to whatever binder the app gives them
(``extender.kube.binding.Binder``, the official client; ``extender.cache.cache.CachedBinder``
around it in cluster-cache mode), so they never import the Kubernetes client.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Protocol

from extender.kube.objects import Pod


class BindOutcome(enum.Enum):
    """How a bind ended; only BOUND and ALREADY_BOUND are successes."""

    BOUND = "bound"
    ALREADY_BOUND = "already_bound"
    CONFLICT = "conflict"
    NOT_FOUND = "not_found"
    API_ERROR = "api_error"
    NO_API = "no_api"


@dataclasses.dataclass(frozen=True)
class BindResult:
    """Outcome plus a human message for the scheduler's ExtenderBindingResult.Error ("" on success)."""

    outcome: BindOutcome
    error: str

    @property
    def ok(self) -> bool:
        return self.outcome in (BindOutcome.BOUND, BindOutcome.ALREADY_BOUND)


@dataclasses.dataclass(frozen=True)
class BindTarget:
    """What the scheduler asked for (ExtenderBindingArgs: PodName, PodNamespace, PodUID, Node),
    and the Pod its scheduling request carried, when one did (``extender.verbs.request_pods``)."""

    pod_name: str
    namespace: str
    pod_uid: str
    node: str
    pod: Pod | None = None


class PodBinder(Protocol):
    """Whatever binds a pod for the verbs: ``extender.kube.binding.Binder`` (the API) or
    ``extender.cache.node_source.CachedBinder`` (the cache, then the API)."""

    def bind(self, target: BindTarget) -> BindResult: ...


class DeadlineBinder(Protocol):
    """A binder with a budget that its caller may shorten: ``extender.kube.binding.Binder``,
    which ``CachedBinder`` wraps and gives what the cache's count left of the bind's budget."""

    @property
    def timeout_s(self) -> float: ...

    def bind(self, target: BindTarget, *, timeout_s: float | None = None) -> BindResult: ...
