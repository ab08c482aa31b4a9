"""Shared fixtures: a real gunicorn server started through the command line users run."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_extender(*args: str, env: dict[str, str] | None = None,
                     timeout_s: float = 30.0) -> Iterator[str]:
    """Start ``python -m extender serve`` on a free loopback port; yield its base URL."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("EXTENDER_")}
    full_env.update(env or {})
    log = tempfile.TemporaryFile()  # a pipe nobody reads would fill up and block the server
    proc = subprocess.Popen([sys.executable, "-m", "extender", "serve", "--host", "127.0.0.1",
                             "--port", str(port), *args], cwd=ROOT, env=full_env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"extender exited: {log.read().decode(errors='replace')}")
            try:
                with urllib.request.urlopen(f"{url}/livez", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def extender_url() -> Iterator[str]:
    """One stateless extender under real gunicorn for the whole session (no API access)."""
    with running_extender("--no-api") as url:
        yield url
