"""The log line formats (``EXTENDER_LOG_FORMAT``, ``--log-format``): ``text``, the default, one
``key=value`` line per record, or ``json``, one JSON object per line for a log pipeline (time,
level, logger, message, the record's extra fields, and the traceback, if any, as ``exception``).

Every process logs through them: gunicorn's master and worker (``gunicorn_conf.py``'s
``logconfig_dict``, which gunicorn's own lines go through too) and the cache process
(``extender.cache.process``).
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import Any

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"

# What every LogRecord carries; the rest is what a caller passed in ``extra=``.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (JSON escapes the newlines of a message or a
    traceback): ``time`` (RFC 3339, UTC, milliseconds), ``level``, ``logger``, ``message``, then
    the record's extra fields (a value JSON cannot encode as its ``str``), ``exception`` and
    ``stack`` when the record has them."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
        entry: dict[str, Any] = {
            "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def formatter_config(log_format: str) -> dict[str, Any]:
    """The ``formatters`` entry of a ``logging.config.dictConfig`` for ``log_format``."""
    if log_format == "json":
        return {"()": f"{__name__}.{JsonFormatter.__name__}"}
    return {"format": TEXT_FORMAT}


def make_formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(log_format: str, level: str) -> None:
    """The root logger of a process of ours that gunicorn does not configure (the cache
    process): stdout, ``log_format``, ``level``; urllib3 and the kubernetes client at WARNING
    (urllib3's debug lines would carry the bearer token)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(make_formatter(log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
