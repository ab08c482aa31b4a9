"""RFC 3339 times as the API server and metrics-server write them, to Unix seconds.

Kubernetes timestamps (``metav1.Time``, NodeMetrics ``timestamp``, the load annotations'
times) are RFC 3339; ``datetime.fromisoformat`` alone rejects some of their spellings (a
lower-case ``z``, a space for ``T``, more than six fractional digits). Memoised: the same
stamps recur on every poll and watch event.
"""

from __future__ import annotations

import datetime
import functools
import re

_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})")


@functools.lru_cache(maxsize=4096)
def parse_rfc3339(text: str) -> float:
    """RFC 3339 date-time -> Unix seconds (fractions beyond microseconds are truncated);
    ValueError for anything else, including a time without offset."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {text[:64]!r}")
    date, clock, frac, zone = m.groups()
    iso = f"{date}T{clock}{'.' + frac[:6].ljust(6, '0') if frac else ''}"
    iso += "+00:00" if zone in ("Z", "z") else zone
    return datetime.datetime.fromisoformat(iso).timestamp()
