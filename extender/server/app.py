"""The WSGI application: routes, error mapping, health and metrics. No scoring here.

Each verb reads the body (bounded in size and time), hands the bytes to ``Verbs`` and returns
its bytes. Every failure becomes a JSON ``{"Error": "..."}`` with a 4xx status and one log
line; an unexpected exception becomes a 500 with a short message (the traceback goes to the
log, never to the client).

The scheduler's four verbs are answered by ``VerbRoutes``, plain WSGI in front of Flask: a
request context, URL routing and a Response object per call cost more than a small answer's
whole computation. Everything else (explain, debug, health, metrics, every error of routing)
is Flask's.
"""

from __future__ import annotations

import dataclasses
import http
import logging
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Flask, Response, request
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge
from werkzeug.wsgi import get_content_length, get_input_stream

from extender.cache.config import cache_config
from extender.cache.feed import Cache
from extender.cache.gate import CallGate, GatedPaths
from extender.cache.node_source import CachedBinder, CacheSource
from extender.cache.process import CacheProcess
from extender.kube.bind import PodBinder
from extender.kube.binding import Binder
from extender.kube.client import load_api_client
from extender.kube.objects import BadRequest
from extender.metrics import Metrics
from extender.policy_file import RELOADED, PolicyFile
from extender.protocol.wire import TooManyNodes, encode_error, encode_json
from extender.server.front import too_large_message
from extender.server.listeners import ListenerSplit
from extender.server.readiness import ReadinessWatch
from extender.settings import Settings
from extender.verbs.decisions import DecisionLog
from extender.verbs.policy import VersionedPolicy
from extender.verbs.source import CacheNotReady, NamesFormUnsupported, NodeSource, StatelessSource
from extender.verbs.verbs import Answer, Verbs
from scoring import Policy

JSON = "application/json"
VERBS = ("filter", "prioritize", "bind", "preempt")
Reply = tuple[int, list[tuple[str, str]], bytes]  # (status, headers, body) of one verb call


def create_app(
    settings: Settings,
    *,
    source: NodeSource | None = None,
    binder: PodBinder | None = None,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
) -> Flask:
    """Build the WSGI app. ``source`` and ``binder`` are seams for tests and for the cluster
    cache; by default the stateless source and a binder with whatever API access exists.
    ``monotonic`` times how long the service has not been ready (``/livez``)."""
    log = logging.getLogger("extender")
    policies = PolicyFile(settings.policy, interval_s=settings.policy_reload_s, logger=log)
    policy = policies.current().policy
    gate = CallGate()  # filter, prioritize and preempt before the cache's event application
    wired = _wire_node_data(settings, policy, source, binder, gate, log, clock)
    source, binder, cache, metrics = wired.source, wired.binder, wired.cache, wired.metrics
    policies.on_reload = _policy_reloaded(metrics, cache)  # before any look: the cache hears of each
    metrics.policy_in_force(policies.current().version)
    decisions = (
        DecisionLog(capacity=settings.decisions, max_bytes=settings.decision_log_bytes, clock=clock)
        if settings.decisions
        else None
    )
    verbs = Verbs(
        policy=policies,  # each call takes the policy in force once
        source=source,
        binder=binder,
        logger=log,
        decisions=decisions,
        max_nodes=settings.max_nodes,
    )
    log.info(
        "extender starting: mode=%s (%s) policy=%s strategies=%s prefix=%r",
        source.mode,
        _mode_text(settings, source, cache),
        settings.policy,
        ",".join(s.name for s in policy.strategies),
        settings.url_prefix or "/",
    )
    if cache is not None:
        cache.start()

    app = Flask("extender")
    app.config["MAX_CONTENT_LENGTH"] = settings.body_limit
    app.extensions["extender"] = {
        "settings": settings,
        "metrics": metrics,
        "source": source,
        "verbs": verbs,
        "policies": policies,
        "cache": cache,
        "decisions": decisions,
        "gate": gate,
    }

    def serve(verb: str, handler: Callable[[bytes], Answer], environ: dict[str, Any]) -> Reply:
        start = time.perf_counter()
        cpu_start = time.thread_time()
        status, kind = 200, ""
        try:
            body = _read_body(environ, settings.body_limit, settings.read_timeout_s)
            answer = handler(body)
            status = answer.status
            _record_answer(metrics, verb, answer)
            # Server-Timing (W3C): the server's own time for this answer, for benchmarks and
            # for operators comparing it with the scheduler's view of the call; ``cpu`` is the
            # CPU the answering thread used meanwhile. app well above cpu: the call waited (for
            # the interpreter or a core), it did not compute.
            cpu_ms = (time.thread_time() - cpu_start) * 1e3
            timing = f"app;dur={(time.perf_counter() - start) * 1e3:.3f}, cpu;dur={cpu_ms:.3f}"
            return status, [("Content-Type", JSON), ("Server-Timing", timing)], answer.body
        except CacheNotReady as exc:
            status, kind, message = 503, "cache_not_ready", str(exc)
        except NamesFormUnsupported as exc:
            status, kind, message = 400, "names_without_cache", str(exc)
        except TooManyNodes as exc:
            status, kind, message = 413, "too_many_nodes", str(exc)
        except BadRequest as exc:
            status, kind, message = 400, "bad_request", str(exc)
        except HTTPException as exc:  # 413 from max_body_bytes, 408 from a stalled body
            status, kind, message = exc.code or 400, _kind_of(exc), exc.description or exc.name
        except Exception as exc:  # a bug: log the traceback, answer without it
            log.exception("internal error verb=%s", verb)
            status, kind, message = (
                500,
                "internal",
                f"internal error ({type(exc).__name__}); see extender log",
            )
        finally:
            metrics.latency.labels(verb).observe(time.perf_counter() - start)
            metrics.requests.labels(verb, str(status)).inc()
        metrics.errors.labels(verb, kind).inc()
        if status < 500:
            log.warning("rejected request verb=%s status=%d kind=%s error=%s", verb, status, kind, message)
        # gunicorn decides about the connection itself: it drains an unread body before the next
        # request, and an idle or stalled connection waits in its poller, not in a thread.
        return status, [("Content-Type", JSON)], encode_error(message)

    prefix = settings.url_prefix
    routes: dict[str, Route] = {}
    for verb in VERBS:  # VerbRoutes answers their POSTs; Flask's routing knows them too (405, route list)
        routes[f"{prefix}/{verb}"] = route = _route(serve, verb, getattr(verbs, verb))
        app.add_url_rule(f"{prefix}/{verb}", f"verb_{verb}", _flask_view(route), methods=["POST"])

    # Not a scheduler verb: POST the ExtenderArgs of a filter/prioritize call (optionally
    # ?node=NAME, repeatable) to see each node's verdict, strategy scores and inputs.
    app.add_url_rule(
        f"{prefix}/explain",
        "explain",
        _flask_view(
            lambda environ: serve(
                "explain", lambda body: verbs.explain(body, request.args.getlist("node") or None), environ
            )
        ),
        methods=["POST"],
    )

    @app.before_request
    def look_at_the_policy_file() -> None:  # probes and scrapes too: an idle extender follows the file
        policies.current()

    @app.get("/debug/decisions")
    def decisions_list() -> Response:
        return Response(encode_json({"decisions": decisions.list() if decisions else []}), mimetype=JSON)

    @app.get("/debug/decisions/<uid>")
    def decisions_one(uid: str) -> Response:
        found = decisions.get(uid) if decisions else None
        if found is None:
            return Response(encode_error(f"no decision kept for pod uid {uid!r}"), status=404, mimetype=JSON)
        return Response(encode_json(found), mimetype=JSON)

    liveness = _Liveness(source, settings.liveness_unready_s, monotonic)
    # extender_ready and the "extender ready" log line (once ready, and at each change after)
    readiness = app.extensions["extender"]["readiness"] = ReadinessWatch(
        liveness.readiness, gauge=metrics.ready, logger=log
    )
    readiness.start()

    @app.get("/livez")
    def livez() -> Response:
        live, why = liveness.check()
        return Response(
            f"{'ok' if live else 'not live'}{why}\n", status=200 if live else 503, mimetype="text/plain"
        )

    @app.get("/readyz")
    def readyz() -> Response:
        ready, why = liveness.readiness()
        return Response(
            f"{'ok' if ready else 'not ready'}: {why}\n", status=200 if ready else 503, mimetype="text/plain"
        )

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.exposition(), mimetype="text/plain; version=0.0.4; charset=utf-8")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:  # unknown paths, wrong methods
        return Response(
            encode_error(f"{exc.code} {exc.name}: {request.method} {request.path}"),
            status=exc.code or 400,
            # werkzeug's own headers but its HTML Content-Type: a 405's Allow (RFC 9110 requires it)
            headers=[(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"],
            mimetype=JSON,
        )

    app.wsgi_app = ListenerSplit(  # type: ignore[method-assign]  # Flask's documented way to wrap it
        GatedPaths(VerbRoutes(routes, app.wsgi_app), gate, (f"{prefix}/{verb}" for verb in GATED_VERBS)),
        verbs_port=settings.port,
        ops_port=settings.ops_port,
        debug_endpoints=settings.debug_endpoints,
        verb_paths=routes,
        explain_path=f"{prefix}/explain",
    )
    return app


@dataclasses.dataclass(frozen=True)
class _Wired:
    """Where node data comes from and what binds: the app's choice of concrete classes."""

    source: NodeSource
    binder: PodBinder
    cache: Cache | CacheProcess | None
    metrics: Metrics


def _wire_node_data(
    settings: Settings,
    policy: Policy,
    source: NodeSource | None,
    binder: PodBinder | None,
    gate: CallGate,
    log: logging.Logger,
    clock: Callable[[], float],
) -> _Wired:
    """The node source, the binder and the cluster cache (if any): the cache when there is API
    access and no source was given (in a process of its own unless settings say otherwise),
    else the stateless source; the API binder, behind ``CachedBinder`` with a cache."""
    client = None
    if binder is None or source is None:
        client = load_api_client(kubeconfig=settings.kubeconfig) if settings.api_access else None
    cache: Cache | CacheProcess | None = None
    cached = source is None and client is not None and settings.cache
    metrics = Metrics(
        mode="cache" if cached else getattr(source, "mode", "stateless"),
        cache=not (cached and settings.cache_process),
    )
    if cached and settings.cache_process:
        cache = CacheProcess(settings, policy=policy, metrics=metrics, logger=log, gate=gate)
    elif cached:
        assert client is not None  # cached needs API access
        cache = Cache(
            client, policy, cache_config(settings), metrics=metrics.cache, logger=log, clock=clock, gate=gate
        )
    if cache is not None:
        source = CacheSource(cache, clock=clock)
    source = source or StatelessSource(annotation_prefix=settings.annotation_prefix, clock=clock)
    if binder is None:
        api_binder = Binder(client, timeout_s=settings.bind_timeout_s, logger=log)
        binder = api_binder
        if cache is not None:
            binder = CachedBinder(
                api_binder,
                cache.state,
                logger=log,
                on_visibility=lambda outcome: metrics.bind_visibility.labels(outcome).inc(),
            )
    return _Wired(source, binder, cache, metrics)


def _policy_reloaded(
    metrics: Metrics, cache: Cache | CacheProcess | None
) -> Callable[[str, VersionedPolicy], None]:
    """What a look at a changed policy file does besides the swap: counts its outcome, labels
    ``extender_info`` with the version in force, and hands a new policy to the cache."""

    def reloaded(outcome: str, current: VersionedPolicy) -> None:
        metrics.policy_reloads.labels(outcome).inc()
        if outcome == RELOADED:
            metrics.policy_in_force(current.version)
            if cache is not None:
                cache.use_policy(current.policy, current.version)

    return reloaded


def _mode_text(settings: Settings, source: NodeSource, cache: Cache | CacheProcess | None) -> str:
    """How the extender gets node data, for the start-up log line."""
    if cache is not None:
        process = " in its own process" if settings.cache_process else ""
        return f"watch-fed cluster cache{process}, nodeCacheCapable: true"
    if source.mode == "stateless":
        return "node data from each request, nodeCacheCapable: false"
    return "custom"


# The calls kube-scheduler waits on in its scheduling cycle; bind runs in its binding cycle and
# mostly waits on the API server, so the cache need not step aside for it.
GATED_VERBS = frozenset({"filter", "prioritize", "preempt", "explain"})


Route = Callable[[dict[str, Any]], Reply]


def _route(
    serve: Callable[[str, Callable[[bytes], Answer], dict[str, Any]], Reply],
    verb: str,
    handler: Callable[[bytes], Answer],
) -> Route:
    return lambda environ: serve(verb, handler, environ)


def _flask_view(route: Route) -> Callable[[], Response]:
    def view() -> Response:
        status, headers, body = route(request.environ)
        return Response(body, status=status, headers=headers)

    return view


class VerbRoutes:
    """WSGI: a POST to one of ``routes``' paths is answered by its route, without Flask;
    anything else goes to ``app`` (Flask: its routing errors, 405 for another method, and
    every other path)."""

    def __init__(self, routes: Mapping[str, Route], app: Callable[..., Iterable[bytes]]) -> None:
        self._routes = dict(routes)
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        route = self._routes.get(environ.get("PATH_INFO", ""))
        if route is None or environ.get("REQUEST_METHOD") != "POST":
            return self._app(environ, start_response)
        status, headers, body = route(environ)
        start_response(
            f"{status} {http.HTTPStatus(status).phrase}", [*headers, ("Content-Length", str(len(body)))]
        )
        return [body]


class _BodyTimeout(HTTPException):
    code = 408
    description = (
        "request body not received in time (or shorter than its Content-Length, "
        "or chunked without its last, zero-size, chunk)"
    )


_READ_PIECE = 1024 * 1024


class _BodyTooLarge(HTTPException):
    code = 413

    def __init__(self, max_bytes: int) -> None:
        super().__init__(too_large_message(max_bytes))


def _read_body(environ: dict[str, Any], max_bytes: int, timeout_s: float) -> bytes:
    """The whole body, bounded by ``max_bytes`` (413) and by ``timeout_s`` per read (408);
    werkzeug's guarded stream, as Flask's ``request.get_data`` reads it. Under the extender's
    worker the body is already in memory (the event loop read it whole, under its own deadline:
    ``extender/server/reading.py``); the per-read bound is for any other WSGI server."""
    sock = environ.get("gunicorn.socket")
    if isinstance(sock, socket.socket):
        sock.settimeout(timeout_s)  # gunicorn restores blocking mode for the next request
    try:
        if get_content_length(environ) is not None or "wsgi.input_terminated" not in environ:
            return get_input_stream(environ, max_content_length=max_bytes).read()  # 413 above max
        # chunked (gunicorn de-chunks it): read in pieces, at most one byte past the limit, since
        # werkzeug's limited stream answers an unsized read() with the first max_bytes, silently
        stream, parts, total = environ["wsgi.input"], [], 0
        while part := _read_piece(stream, min(_READ_PIECE, max_bytes + 1 - total)):
            total += len(part)
            if total > max_bytes:
                raise _BodyTooLarge(max_bytes)
            parts.append(part)
        return b"".join(parts)
    except RequestEntityTooLarge:  # from Content-Length, or while reading a chunked body
        raise _BodyTooLarge(max_bytes) from None
    except (TimeoutError, ClientDisconnected):  # gunicorn ends a timed-out read early
        raise _BodyTimeout() from None
    except ParseException as exc:  # gunicorn reads chunked framing as the body is read: bad chunk size, ...
        raise BadRequest(f"request body framing is invalid: {type(exc).__name__}: {exc}") from None


def _read_piece(stream: Any, size: int) -> bytes:
    try:
        return bytes(stream.read(size))
    except (OSError, ValueError):  # as werkzeug's stream: gunicorn's NoMoreData, a closed socket
        raise ClientDisconnected() from None


def _kind_of(exc: HTTPException) -> str:
    return {413: "too_large", 408: "timeout"}.get(exc.code or 0, "http")


def _record_answer(metrics: Metrics, verb: str, answer: Answer) -> None:
    metrics.nodes.labels(verb).observe(answer.nodes)
    for reason, count in answer.rejections:
        metrics.rejections.labels(reason).inc(count)
    if answer.fallback_nodes:
        metrics.fallback.inc(answer.fallback_nodes)
    if verb == "bind":
        metrics.binds.labels(answer.outcome).inc()


class _Liveness:
    """``/livez``: up while the service has been ready within ``limit_s`` (0: always up).

    Readiness fails while the cluster cache is syncing or not current; a short API outage only
    makes the service unready. Not ready for longer than ``limit_s`` (the cache never synced,
    or has not recovered: a dead child, a watch that cannot resume) fails liveness, so the
    kubelet restarts the container."""

    def __init__(self, source: NodeSource, limit_s: float, monotonic: Callable[[], float]) -> None:
        self._source = source
        self._limit_s = limit_s
        self._monotonic = monotonic
        self._last_ready = monotonic()  # the start counts as ready: the first sync gets limit_s

    def readiness(self) -> tuple[bool, str]:
        ready, why = self._source.readiness()
        if ready:
            self._last_ready = self._monotonic()
        return ready, why

    def check(self) -> tuple[bool, str]:
        if self._limit_s <= 0:
            return True, ""
        ready, why = self.readiness()
        unready_s = self._monotonic() - self._last_ready
        if ready or unready_s <= self._limit_s:
            return True, ""
        return False, f": not ready for {unready_s:.0f} s (limit {self._limit_s:g} s): {why}"
