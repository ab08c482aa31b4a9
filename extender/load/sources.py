"""The names of the load sources (``EXTENDER_LOAD_SOURCES``) and their parser.

A module of its own so that ``extender.settings``, which the gunicorn master and
``check-policy`` load, validates the setting without importing the window or any poller.
"""

from __future__ import annotations

from typing import Final

ANNOTATIONS: Final = "annotations"
METRICS_SERVER: Final = "metrics-server"
PROMETHEUS: Final = "prometheus"
LOAD_SOURCES: Final[tuple[str, ...]] = (ANNOTATIONS, METRICS_SERVER, PROMETHEUS)


def parse_load_sources(spec: str) -> tuple[str, ...]:
    """Validate a comma-separated list of load sources, e.g. ``"annotations,metrics-server"``.

    Entries are trimmed and case-insensitive; the result is in canonical spelling and in the
    order given. A blank spec means no live load source (``()``). Raises ``ValueError`` naming
    the bad entry for an unknown, empty or repeated one.
    """
    if not spec.strip():
        return ()
    out: list[str] = []
    for position, raw in enumerate(spec.split(","), start=1):
        entry = raw.strip().lower()
        if not entry:
            raise ValueError(f"load sources {spec!r}: entry {position} is empty")
        if entry not in LOAD_SOURCES:
            raise ValueError(
                f"load sources {spec!r}: unknown source {raw.strip()!r} "
                f"(expected one of: {', '.join(LOAD_SOURCES)})"
            )
        if entry in out:
            raise ValueError(f"load sources {spec!r}: {entry!r} is listed twice")
        out.append(entry)
    return tuple(out)
