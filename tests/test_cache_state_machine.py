"""The informers' stateful test (tests/test_informer.py) run against the real cluster cache:
after random adds, modifications, deletions, dropped watches, in-stream 410s and expired
history, ClusterState holds exactly the server's objects, and its per-node accounting equals a
recount from scratch of what it holds."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from extender.cache.store import ClusterState
from tests import test_informer as ti


def make_cluster_cache() -> ti.CacheHarness:
    state = ClusterState(estimator_factors={"cpu": 85, "memory": 70})
    handlers = {"nodes": state.nodes_handler, "pods": state.pods_handler}
    return ti.CacheHarness(handlers, state.objects)


class ClusterStateMachine(ti.InformerMachine):
    cache_factory = staticmethod(make_cluster_cache)


ClusterStateMachine.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestClusterStateMachine = ClusterStateMachine.TestCase
