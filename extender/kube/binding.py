"""The extender's `bind` verb: POST a v1 Binding through the official `kubernetes` client.

The client comes from ``extender.kube.client``; what a bind asks for and its outcome are the
data types of ``extender.kube.bind``.

Why this module looks the way it does:

* The reply to a successful binding is a `Status` object, not a `Binding`; the client's model
  deserialisation of it fails (kubernetes-client/python#825, #547; with client 37 it is a pydantic
  `ValidationError` raised *after* the pod was bound).  So we always call with
  `_preload_content=False` and judge by HTTP status code alone.
* The scheduler gives the extender 5 s per bind call.  A bind whose reply was lost (timeout,
  dropped connection) may still have landed; the scheduler (or our own single retry) then gets
  409 "already assigned".  Reporting that as an error would fail a pod that is in fact placed
  where we asked (kubernetes/kubernetes#96579), so on 409 we read the pod back and report
  ALREADY_BOUND when it already sits on the requested node with the requested UID.
* urllib3's default retry policy silently re-sends GETs up to 3 times on read timeouts and drops
  (and honours Retry-After), which would blow the scheduler's deadline.  The Binder therefore uses
  its own ApiClient built from a *copy* of the caller's configuration with urllib3 retries off,
  and makes every retry decision itself, bounded by `timeout_s`.
* Never log tokens, headers, request bodies or the configuration: one line per bind, with pod,
  UID, node, outcome, HTTP status and duration.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from typing import Any

import urllib3
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from extender.kube.bind import BindOutcome, BindResult, BindTarget
from extender.kube.client import no_retry_client, retry_after_s

_LOG = logging.getLogger("extender.binding")  # its name in log lines: unchanged by the move

_MIN_ATTEMPT_S = 0.2  # never start an HTTP request with less time than this left
_RETRY_PAUSE_S = 0.1  # pause before the single retry when the server gave no Retry-After
_MAX_MESSAGE = 300  # cap on API messages copied into errors


@dataclasses.dataclass
class _Attempt:
    """Mutable per-bind bookkeeping for the log line (local to one bind call)."""

    status: int = 0  # last HTTP status seen from the binding POST; 0 = no HTTP reply
    attempts: int = 0


class Binder:
    """Binds pods to nodes via POST .../pods/{name}/binding, within `timeout_s` overall."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient | None,
        *,
        timeout_s: float = 4.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._log = logger or _LOG
        self._api: k8s_client.CoreV1Api | None = None
        if api_client is not None:
            # urllib3 must not re-send behind our back (deadline, POST semantics)
            self._api = k8s_client.CoreV1Api(no_retry_client(api_client))

    def close(self) -> None:
        """Release the Binder's connection pool."""
        if self._api is not None:
            self._api.api_client.close()

    @property
    def timeout_s(self) -> float:
        return self._timeout_s

    def bind(self, target: BindTarget, *, timeout_s: float | None = None) -> BindResult:
        """Bind `target`; never raises for API/transport failures, always within ~timeout_s
        (the Binder's own, or less when the caller has spent part of the bind's budget)."""
        start = time.monotonic()
        att = _Attempt()
        result = self._bind(target, start + (self._timeout_s if timeout_s is None else timeout_s), att)
        ms = (time.monotonic() - start) * 1000.0
        level = logging.INFO if result.ok else logging.WARNING
        self._log.log(
            level,
            "bind pod=%s/%s uid=%s node=%s outcome=%s status=%d attempts=%d duration_ms=%.1f%s",
            target.namespace,
            target.pod_name,
            target.pod_uid or "-",
            target.node,
            result.outcome.value,
            att.status,
            att.attempts,
            ms,
            f" error={result.error!r}" if result.error else "",
        )
        return result

    def _bind(self, t: BindTarget, deadline: float, att: _Attempt) -> BindResult:
        if self._api is None:
            return BindResult(
                BindOutcome.NO_API,
                "extender has no Kubernetes API access; run with in-cluster config or --kubeconfig",
            )
        pod = f"{t.namespace}/{t.pod_name}"
        body = k8s_client.V1Binding(
            metadata=k8s_client.V1ObjectMeta(name=t.pod_name, uid=t.pod_uid or None),
            target=k8s_client.V1ObjectReference(api_version="v1", kind="Node", name=t.node),
        )
        while True:
            remaining = deadline - time.monotonic()
            att.attempts += 1
            retry_after: float | None = None
            try:
                # _preload_content=False returns the raw urllib3 response (the stubs say V1Binding).
                resp: Any = self._api.create_namespaced_pod_binding(
                    t.pod_name,
                    t.namespace,
                    body,
                    _preload_content=False,
                    _request_timeout=max(remaining, 0.01),
                )
                att.status = int(resp.status)
                _drain(resp)
                return BindResult(BindOutcome.BOUND, "")
            except ApiException as exc:
                att.status = int(exc.status or 0)
                if att.status == 409:
                    return self._after_conflict(t, deadline, _api_message(exc))
                if att.status == 404:
                    return BindResult(BindOutcome.NOT_FOUND, f"pod {pod} not found")
                message = f"binding pod {pod} to node {t.node} failed: HTTP {att.status}"
                if exc.reason:
                    message += f" {exc.reason}"
                if detail := _api_message(exc):
                    message += f": {detail}"
                retryable = att.status >= 500 or att.status == 429
                # capped at the time left: a pause that leaves no attempt ends the bind now
                retry_after = retry_after_s(exc, deadline - time.monotonic())
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                retryable, message = _transport_error(exc, pod, t.node, remaining)
            pause = _RETRY_PAUSE_S if retry_after is None else retry_after
            if not retryable or att.attempts > 1 or deadline - time.monotonic() - pause < _MIN_ATTEMPT_S:
                return BindResult(BindOutcome.API_ERROR, message)
            time.sleep(pause)

    def _after_conflict(self, t: BindTarget, deadline: float, api_message: str) -> BindResult:
        """409: find out whether the pod is already where we wanted it (a retried, landed bind)."""
        assert self._api is not None
        pod = f"{t.namespace}/{t.pod_name}"
        conflict = BindResult(
            BindOutcome.CONFLICT, f"binding pod {pod} to node {t.node} conflicted: {api_message}"
        )
        remaining = deadline - time.monotonic()
        if remaining < _MIN_ATTEMPT_S / 2:
            return conflict
        try:
            resp: Any = self._api.read_namespaced_pod(
                t.pod_name, t.namespace, _preload_content=False, _request_timeout=remaining
            )
            current: dict[str, Any] = json.loads(resp.data)
        except ApiException as exc:
            if exc.status == 404:
                return BindResult(BindOutcome.NOT_FOUND, f"pod {pod} not found")
            return conflict
        except (urllib3.exceptions.HTTPError, OSError, ValueError):
            return conflict
        uid = str((current.get("metadata") or {}).get("uid") or "")
        on_node = str((current.get("spec") or {}).get("nodeName") or "")
        if t.pod_uid and uid != t.pod_uid:
            return BindResult(
                BindOutcome.CONFLICT,
                f"pod {pod} UID mismatch: scheduler asked for UID {t.pod_uid}, "
                f"the pod now has UID {uid} (pod was recreated)",
            )
        if on_node == t.node:
            return BindResult(BindOutcome.ALREADY_BOUND, "")
        if on_node:
            return BindResult(
                BindOutcome.CONFLICT,
                f"pod {pod} is already bound to node {on_node}, not to requested node {t.node}",
            )
        return conflict


def _drain(resp: Any) -> None:
    """Read and release a raw urllib3 response so its connection goes back to the pool."""
    try:
        resp.read()
    except (urllib3.exceptions.HTTPError, OSError):
        pass  # the status line already told us the outcome
    finally:
        resp.release_conn()


def _api_message(exc: ApiException) -> str:
    """The `message` of the apiserver's Status body (never the raw body), shortened."""
    try:
        doc = json.loads(exc.body or "")
    except (TypeError, ValueError):
        return ""
    message = doc.get("message", "") if isinstance(doc, dict) else ""
    return str(message)[:_MAX_MESSAGE]


def _transport_error(exc: BaseException, pod: str, node: str, timeout: float) -> tuple[bool, str]:
    """(retryable, message) for a failure below HTTP: timeouts are final, connection failures are not."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    what = f"binding pod {pod} to node {node}"
    if isinstance(exc, urllib3.exceptions.NewConnectionError):  # a ConnectTimeoutError subclass: check first
        return True, f"{what} failed: cannot connect to the API server ({type(exc).__name__})"
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return False, (
            f"{what} timed out after {timeout:.1f}s ({type(exc).__name__}); the API server may still apply it"
        )
    return True, f"{what} failed: connection error ({type(exc).__name__})"
