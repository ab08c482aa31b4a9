"""gunicorn configuration shared by the container and ``python -m extender serve``.

One worker process, several threads (gthread, with the pool thread staying on a busy
connection: ``extender/server/worker.py``): kube-scheduler sends filter and prioritize one pod at a
time, but bind arrives concurrently with them (binding cycles are asynchronous), so a slow
bind must not hold up the next filter. One process keeps one node source, one
metrics registry and, with the cluster cache, one view of recent binds; more replicas of the
scheduler pod, not more workers, scale it. Measured in benchmarks/ (worker-model table).
"""

from typing import Any

from gunicorn.glogging import Logger

from extender.logs import formatter_config
from extender.settings import Settings


class QuietAccessLogger(Logger):
    """gunicorn's logger without the access log. gunicorn turns access logging on whenever a
    logging configuration is given (``logconfig_dict`` below), and then builds every request's
    log fields (dates, headers) before the logger's level drops the line, for every request."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None


_settings = Settings.from_env()


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# The verbs listener first, then the operations listener (extender/server/listeners.py decides
# which routes each serves, by port).
bind = [_address(_settings.host, _settings.port)]
if _settings.ops_port:
    bind.append(_address(_settings.ops_host, _settings.ops_port))
workers = 1
worker_class = "extender.server.worker.LingeringThreadWorker"  # gthread, see extender/server/worker.py
threads = _settings.threads
# kube-scheduler's HTTP client keeps idle connections for 90 s (Go IdleConnTimeout) and does not
# retry a POST on a connection the server closed; keep ours open longer than that.
keepalive = 120
timeout = 30  # worker heartbeat; longer than the scheduler's 5 s default extender timeout
graceful_timeout = 10
max_requests = 0  # no recycling: keeps caches warm
worker_tmp_dir = "/dev/shm"
# gunicorn 27's control socket wants a writable home directory; the container's root file
# system is read-only, and nothing here uses the socket.
control_socket_disable = True
accesslog = None  # probes and scrapes would swamp the log; the metrics count requests
logger_class = QuietAccessLogger
loglevel = _settings.log_level
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    # EXTENDER_LOG_FORMAT: key=value text, or one JSON object per line (gunicorn's own lines too)
    "formatters": {"line": formatter_config(_settings.log_format)},
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "formatter": "line", "stream": "ext://sys.stdout"}
    },
    "root": {"level": _settings.log_level.upper(), "handlers": ["stdout"]},
    "loggers": {
        "gunicorn.error": {"level": _settings.log_level.upper(), "handlers": ["stdout"], "propagate": False},
        # urllib3 at debug level would print request headers, bearer token included.
        "urllib3": {"level": "WARNING"},
        "kubernetes": {"level": "WARNING"},
    },
}


def post_fork(server: Any, worker: Any) -> None:
    """The worker's settings (deadlines, TLS, the linger: 0 turns it off) before it serves anything."""
    worker.settings = _settings
    worker.linger_s = _settings.linger_s
