"""The policy a call is answered under, and where the verbs take it from.

The policy may change while the server runs (``extender.policy_file.PolicyFile`` re-reads its
file); a call takes the policy in force once, when it starts, and uses that one to the end, so
that no answer mixes two policies. ``version`` names it in the decision log and ``/explain``.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from scoring import Policy


@dataclasses.dataclass(frozen=True, eq=False)
class VersionedPolicy:
    """A validated policy and the version it is known by: the first 12 hex digits of the
    SHA-256 of the file it was read from ("" for a policy not read from a file)."""

    policy: Policy
    version: str = ""


class PolicySource(Protocol):
    """Where the verbs take the policy in force from, once per call."""

    def current(self) -> VersionedPolicy: ...


class FixedPolicy:
    """A policy that never changes (tests, benchmarks, a policy given as an object)."""

    def __init__(self, policy: Policy, version: str = "") -> None:
        self._current = VersionedPolicy(policy, version)

    def current(self) -> VersionedPolicy:
        return self._current
