"""schemathesis against the real server: generated requests, valid and invalid, never get a 5xx,
and every answer is one the OpenAPI description (extender/protocol/openapi.yaml) documents.

The server is the one users run (``python -m extender serve`` under gunicorn), in each mode:
stateless (``--no-api``) and with the cluster cache of the in-test API server; with the debug
endpoints on and, once the listeners are split, everything on one port (``EXTENDER_OPS_PORT=0``).
schemathesis runs its examples phase (the description's own examples: the happy path), its
coverage phase (boundary values, missing and mistyped keys, methods a path does not take) and a
bounded fuzzing phase, each in positive and negative mode.

Checks, each a promise of the API: no 5xx (``not_a_server_error``); the status code, the
Content-Type, the JSON body and the documented headers as described; every invalid request
refused with a 4xx (``negative_data_rejection``: the description is as strict as the decoder);
405 with ``Allow`` for a method a path does not take; every answer within ``MAX_RESPONSE_S``.
Left out: ``positive_data_acceptance``, since a request valid by the schema may still be one
this server must refuse (a NodeNames request to a stateless extender, an int64 overflow in a
quantity, two nodes of one name), and the stateful and auth checks (no resources, no auth).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import hypothesis
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from extender.protocol import OPENAPI_PATH
from tests.conftest import running_extender, write_kubeconfig
from tests.kubeapi import FakeKubeAPI
from tests.test_cache_mode import node_obj, wait_ready

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
"""Fuzzing examples per operation and mode (CI: 25; set SCHEMATHESIS_MAX_EXAMPLES for a longer
hunt): with the examples and coverage phases (most of it) about 4,100 requests per mode over
the ten operations, ~20 s a mode on two cores."""
MAX_RESPONSE_S = 5.0
"""Every answer within kube-scheduler's default extender timeout (5 s for the whole exchange);
the requests are small, so they take milliseconds: a slower one is a stall."""


CONFIG = SchemathesisConfig.from_dict(
    {
        # the same requests every run, so that a failure in CI is one to reproduce
        "seed": int(os.environ.get("SCHEMATHESIS_SEED", "17")),
        "request-timeout": 10,
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES},
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            "positive_data_acceptance": {"enabled": False},
            "max_response_time": MAX_RESPONSE_S,
        },
    }
)
# Loaded at import, as schemathesis' pytest plugin makes one test per operation at collection;
# the server's URL comes with each call (``from_fixture`` would load it from a fixture, but reads
# a private attribute pytest 9 no longer has).
schema = schemathesis.openapi.from_path(OPENAPI_PATH, config=CONFIG)


@pytest.fixture(scope="module", params=["stateless", "cluster-cache"])
def base_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real server in each mode: stateless (the Nodes form) and with the cluster cache of
    the in-test API server (the NodeNames form, and binds that reach an API)."""
    env = {"EXTENDER_OPS_PORT": "0", "EXTENDER_DEBUG_ENDPOINTS": "true"}
    if request.param == "stateless":
        with running_extender("--no-api", env=env) as url:
            yield url
        return
    with FakeKubeAPI() as api:
        for name in ("n1", "n2", "n4"):  # the names of the description's example
            api.add_node(node_obj(name))
        kubeconfig = write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig", api.url)
        with running_extender("--kubeconfig", str(kubeconfig), env=env) as url:
            wait_ready(url)
            yield url


@pytest.mark.timeout(120)
@schema.parametrize()
@hypothesis.settings(max_examples=MAX_EXAMPLES, deadline=None)
def test_every_answer_is_documented_and_none_is_a_5xx(case: schemathesis.Case, base_url: str) -> None:
    case.call_and_validate(base_url=base_url)
