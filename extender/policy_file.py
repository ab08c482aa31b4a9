"""Reading the policy file (YAML) into a validated ``scoring.Policy``: at start-up, and again
whenever the file changes while the server runs (``PolicyFile``).

A ConfigMap mounted as a volume changes by a symlink swap (the kubelet writes the new version
into a new directory and renames a ``..data`` symlink onto it); a file on a developer's disk
changes in place. Either way ``PolicyFile`` sees a new identity, reads the bytes, validates
them and swaps the policy in force, between calls: a call takes the policy once when it
starts (``extender.verbs.policy``). A file that does not validate keeps the policy in force,
is logged with the faulty field (``PolicyError``'s message) and counted (``on_reload``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from extender.verbs.policy import VersionedPolicy
from scoring import Policy, PolicyError, parse_policy

RACY_S = 2.0
"""A file modified less than this before it was looked at may change again within the same
modification time (file systems keep it at a coarse clock's resolution): its identity is not
trusted yet, and it is read again at the next look (the bytes decide whether it changed)."""

# The outcomes of a look at a changed file (``extender_policy_reload_total{outcome}``).
RELOADED = "reloaded"  # a valid new policy is in force
UNCHANGED = "unchanged"  # a new file with the same bytes (a ConfigMap update of another key)
INVALID = "invalid"  # not YAML, or not a valid policy: the policy in force stays
UNREADABLE = "unreadable"  # gone, or cannot be read: the policy in force stays


def policy_version(data: bytes) -> str:
    """The version a policy file's bytes are known by: the first 12 hex digits of their SHA-256."""
    return hashlib.sha256(data).hexdigest()[:12]


def load_policy(path: Path) -> Policy:
    """Parse and validate ``path``; PolicyError names the file and the field."""
    return parse_policy_bytes(path, read_policy_bytes(path))


def read_policy_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy file: {exc.strerror}") from None


def parse_policy_bytes(path: Path, data: bytes, *, empty_ok: bool = True) -> Policy:
    """The policy ``data`` (the bytes of ``path``) says. An empty document means every default,
    unless ``empty_ok`` is false (a file emptied under a running server is far more likely a
    write in progress than a wish for the defaults)."""
    try:
        doc = yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path}: not UTF-8 text: {exc}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from None
    if doc is None and not empty_ok:
        raise PolicyError(f"{path}: empty policy file (a write in progress?)")
    try:
        return parse_policy(doc if doc is not None else {})
    except PolicyError as exc:
        raise PolicyError(f"{path}: {exc}") from None


_Identity = tuple[str, int, int, int, int]  # resolved path, device, inode, size, mtime (ns)


class PolicyFile:
    """The policy in force, read from ``path`` at start and again when the file changes.

    Owner: whichever call finds the last look at least ``interval_s`` old (``current()``; one
    thread looks, under a lock it does not wait for: the others go on with the policy in force).
    Key: the file's identity, the path its symlinks resolve to (the kubelet's ``..data`` target)
    and the (device, inode, size, mtime) of what it leads to. Invalidation: another identity
    (or one younger than ``RACY_S``), looked at most once per ``interval_s``; the bytes then
    decide (same SHA-256: unchanged). ``interval_s`` 0: read once, never again.

    ``on_reload(outcome, current)`` is told every outcome (``RELOADED``, ``UNCHANGED``,
    ``INVALID``, ``UNREADABLE``) with the policy in force after it; set it before serving."""

    def __init__(
        self,
        path: Path,
        *,
        interval_s: float,
        logger: logging.Logger | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.path = path
        self.on_reload: Callable[[str, VersionedPolicy], object] = lambda outcome, current: None
        self._interval_s = interval_s
        self._log = logger or logging.getLogger("extender")
        self._monotonic = monotonic
        self._wall_ns = wall_ns
        try:
            identity: _Identity | None = self._identity()  # before the read: a change after it shows
        except OSError:
            identity = None
        data = read_policy_bytes(path)
        self._current = VersionedPolicy(parse_policy_bytes(path, data), policy_version(data))
        self._key = self._trusted(identity)
        self._seen = identity  # the identity of the last look, trusted or not
        self._failed = ""  # the version of the last bytes that did not validate
        self._lock = threading.Lock()
        self._due = monotonic() + interval_s
        self._log.info(
            "policy %s: version %s (%s)",
            path,
            self._current.version,
            f"looked at again every {interval_s:g} s" if interval_s > 0 else "read at start only",
        )

    def current(self) -> VersionedPolicy:
        """The policy in force; looks at the file first when the last look is ``interval_s`` old."""
        if self._interval_s > 0 and self._monotonic() >= self._due and self._lock.acquire(blocking=False):
            try:
                if self._monotonic() >= self._due:
                    self.check()
                    self._due = self._monotonic() + self._interval_s
            finally:
                self._lock.release()
        return self._current

    def check(self) -> str | None:
        """Look at the file now: the outcome, or None when nothing changed."""
        why = ""
        try:
            identity: _Identity | None = self._identity()
        except OSError as exc:
            identity, why = None, exc.strerror or type(exc).__name__
        if identity is not None and identity == self._key:
            return None
        again = identity == self._seen  # the same file again: it was too young to trust
        self._seen, self._key = identity, self._trusted(identity)
        if identity is None:
            return None if again else self._unreadable(why)
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            return None if again else self._unreadable(exc.strerror or type(exc).__name__)
        version = policy_version(data)
        if version == self._current.version:
            return None if again else self._report(UNCHANGED)
        if version == self._failed:  # the same invalid bytes: counted and logged once
            return None
        try:
            policy = parse_policy_bytes(self.path, data, empty_ok=False)
        except PolicyError as exc:
            self._failed = version
            self._log.error(
                "policy file changed but is invalid; still serving policy version %s: %s",
                self._current.version,
                exc,
            )
            return self._report(INVALID)
        old, self._current = self._current, VersionedPolicy(policy, version)
        self._failed = ""
        self._log.info(
            "policy reloaded from %s: version %s (was %s) strategies=%s",
            self.path,
            version,
            old.version,
            ",".join(f"{s.name}x{s.weight:g}" for s in policy.strategies),
        )
        return self._report(RELOADED)

    def _unreadable(self, why: str) -> str:
        self._log.error(
            "policy file %s: %s; still serving policy version %s", self.path, why, self._current.version
        )
        return self._report(UNREADABLE)

    def _report(self, outcome: str) -> str:
        try:
            self.on_reload(outcome, self._current)
        except Exception:  # noqa: BLE001 - a metric or a cache hand-off must not fail a call
            self._log.exception("policy reload: reporting %s failed", outcome)
        return outcome

    def _identity(self) -> _Identity:
        st = os.stat(self.path)  # follows the symlinks: the data, not the links
        return (os.path.realpath(self.path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _trusted(self, identity: _Identity | None) -> _Identity | None:
        """``identity`` as the key, unless its modification time is too recent to trust."""
        if identity is None or self._wall_ns() - identity[4] < RACY_S * 1e9:
            return None
        return identity
