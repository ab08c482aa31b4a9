"""Shared fixtures: a real gunicorn server started through the command line users run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.latency import running_server

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def running_extender(*args: str, env: dict[str, str] | None = None,
                     timeout_s: float = 30.0) -> Iterator[str]:
    """Start ``python -m extender serve`` on a free loopback port; yield its base URL."""
    with running_server(*args, env=env, timeout_s=timeout_s) as server:
        yield server.url


@pytest.fixture(scope="session")
def extender_url() -> Iterator[str]:
    """One stateless extender under real gunicorn for the whole session (no API access)."""
    with running_extender("--no-api") as url:
        yield url
