"""HTTPS for the verbs listener: the serving certificate, client certificates, and reloading both.

kube-scheduler reaches an extender over HTTPS when its entry says ``enableHTTPS: true``; its
``tlsConfig`` (certFile/keyFile: a client certificate; caFile: the CA of ours) becomes a Go
``tls.Config`` through client-go's ``rest.TLSConfigFor``. What that client does, and what
this side therefore offers:

- TLS 1.2 at least (Go's client default minimum); TLS 1.3 when both have it.
- ALPN: Go's transport offers ``h2`` and ``http/1.1``; we offer only ``http/1.1``, so it falls
  back to HTTP/1.1, which gunicorn's worker serves (and which kube-scheduler's extender client
  uses in its plain-HTTP form too).
- With ``client_ca_file``, a client certificate signed by that CA is required: a client with
  none, or with one from another CA, fails the handshake and never reaches a verb.

The files are re-read when they change (cert-manager renews a certificate by rewriting its
Secret, which the kubelet updates in the pod through a symlink swap): ``TLSFiles.context()``
checks the files' identity at most once per ``RECHECK_S`` and builds a new context when it
changed. A connection keeps the context it was accepted with. A change that does not load (a
key that does not match its certificate, a half-written file) keeps the last good context,
logs one error, and is tried again when the files change again; ``on_reload`` reports each
outcome for the metrics.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import Callable
from pathlib import Path

RECHECK_S = 1.0
"""How often, at most, the files are looked at again (one stat() per file)."""


def server_context(cert_file: Path, key_file: Path, client_ca_file: Path | None) -> ssl.SSLContext:
    """A server context as kube-scheduler's Go client expects it (see the module docstring)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    ctx.set_alpn_protocols(["http/1.1"])
    if client_ca_file is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=str(client_ca_file))
    return ctx


class TLSFiles:
    """The current server context for a set of PEM files. Owner: the worker's event loop (the
    only caller; no lock). Key: the files' (device, inode, size, mtime). Invalidation: any of
    them changes, looked at once per ``RECHECK_S``."""

    def __init__(
        self,
        cert_file: Path,
        key_file: Path,
        client_ca_file: Path | None = None,
        *,
        on_reload: Callable[[str], None] = lambda outcome: None,
        logger: logging.Logger | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._files = (cert_file, key_file, client_ca_file)
        self._on_reload = on_reload
        self._log = logger or logging.getLogger("extender")
        self._monotonic = monotonic
        self._stamp = self._identity()
        self._failed: tuple[tuple[int, int, int, int] | None, ...] | None = None  # files that did not load
        self._ctx = server_context(*self._files)  # at start a bad file is an error, not a retry
        self._checked = monotonic()

    def context(self) -> ssl.SSLContext:
        now = self._monotonic()
        if now - self._checked >= RECHECK_S:
            self._checked = now
            self._maybe_reload()
        return self._ctx

    def _identity(self) -> tuple[tuple[int, int, int, int] | None, ...]:
        out: list[tuple[int, int, int, int] | None] = []
        for path in self._files:
            if path is None:
                out.append(None)
                continue
            try:
                st = os.stat(path)  # follows the kubelet's symlinks: the data, not the link
            except OSError:
                out.append(None)
                continue
            out.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(out)

    def _maybe_reload(self) -> None:
        stamp = self._identity()
        if stamp in (self._stamp, self._failed):
            return
        try:
            ctx = server_context(*self._files)
        except (OSError, ssl.SSLError, ValueError) as exc:
            self._on_reload("error")
            self._log.error(
                "TLS files changed but do not load; still serving the previous certificate: %s: %s",
                type(exc).__name__,
                exc,
            )
            self._failed = stamp
            return
        self._ctx, self._stamp = ctx, stamp
        self._on_reload("reloaded")
        self._log.info("TLS certificate reloaded from %s", self._files[0])
