"""Which endpoints each listener serves, decided by the port a request came in on.

The scheduling verbs can bind any pending pod to any node with the scheduler's rights, so they
are served only on the verbs listener (``Settings.port``: loopback beside kube-scheduler, or
HTTPS with client certificates). Probes and ``/metrics`` are served only on the operations
listener (``Settings.ops_port``), where the kubelet and Prometheus reach them; ``/debug/*`` and
``/explain`` (pod and node details) there too, and only when ``Settings.debug_endpoints``.

gunicorn puts the listener's own port in ``SERVER_PORT`` (not the Host header's), so the
check cannot be steered by a client. A request on any other port (an in-process WSGI call, a
test client) is not behind either listener and gets every route.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from extender.protocol.wire import encode_error

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
OPS_PATHS = frozenset({"/livez", "/readyz", "/metrics"})
DEBUG_PREFIX = "/debug/"


class ListenerSplit:
    """WSGI middleware: 404 for a path that its listener does not serve, naming the one that does."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        verbs_port: int,
        ops_port: int,
        debug_endpoints: bool,
        verb_paths: Iterable[str],
        explain_path: str,
    ) -> None:
        self._app = app
        self._verbs_port = str(verbs_port)
        self._ops_port = str(ops_port) if ops_port else None  # None: one listener serves all
        self._debug = debug_endpoints
        self._verb_paths = frozenset(verb_paths)
        self._explain = explain_path

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        refusal = self.refusal(environ.get("SERVER_PORT", ""), environ.get("PATH_INFO", ""))
        if refusal is None:
            return self._app(environ, start_response)
        body = encode_error(refusal)
        start_response(
            "404 Not Found", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    def refusal(self, port: str, path: str) -> str | None:
        """Why ``path`` is not served on ``port`` (None: it is)."""
        debug = path == self._explain or path.startswith(DEBUG_PREFIX)
        if port == self._verbs_port and self._ops_port is not None:
            if path in self._verb_paths:
                return None
            where = f"the operations listener (port {self._ops_port})"
            if debug and not self._debug:
                where += " when EXTENDER_DEBUG_ENDPOINTS=true"
            return f"404 Not Found: {path} is not served on the verbs listener; it is on {where}"
        if port in (self._ops_port, self._verbs_port):  # the ops listener, or the only one
            if path in self._verb_paths and self._ops_port is not None:
                return (
                    f"404 Not Found: {path} is a scheduling verb, served only on the verbs listener "
                    f"(port {self._verbs_port})"
                )
            if debug and not self._debug:
                return f"404 Not Found: {path} is served only when EXTENDER_DEBUG_ENDPOINTS=true"
        return None
