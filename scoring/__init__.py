"""Pure numpy scoring core of the load-aware extender: arrays in, arrays out, no I/O.

Public surface: ``NodeTable`` and ``PodDemand`` (inputs), ``parse_policy`` / ``Policy``
(validated settings), ``evaluate`` (filter + score in one call), ``feasibility`` (the filter
half alone), ``release`` (what-if after evictions, for preemption), ``describe`` (a node's
filter verdict as a sentence).
"""

from scoring.evaluate import (
    MAX_EXTENDER_PRIORITY,
    Evaluation,
    Feasibility,
    evaluate,
    feasibility,
    release,
    to_extender_scores,
)
from scoring.filters import Verdict, describe
from scoring.policy import Policy, PolicyError, parse_policy
from scoring.types import BASE_RESOURCES, CPU, MEMORY, PODS, NodeTable, PodDemand

__all__ = [
    "BASE_RESOURCES",
    "CPU",
    "MAX_EXTENDER_PRIORITY",
    "MEMORY",
    "PODS",
    "Evaluation",
    "Feasibility",
    "NodeTable",
    "PodDemand",
    "Policy",
    "PolicyError",
    "Verdict",
    "describe",
    "evaluate",
    "feasibility",
    "parse_policy",
    "release",
    "to_extender_scores",
]
