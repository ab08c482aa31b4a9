"""``python -m benchmarks fuzz``: a coverage-guided fuzz (atheris, libFuzzer) of everything a
request's bytes reach: the decoders, the pod's demand, the node data, the scoring and the
encoders, through ``Verbs`` as the server calls them, in both request forms.

Why beside the suite's hypothesis fuzz (tests/test_never_500.py) and schemathesis
(tests/test_openapi_schemathesis.py): those mutate bytes blindly or follow the API's schema;
libFuzzer keeps the inputs that reach new branches of the Python code, so it finds the input
that only a deep path rejects badly. A crash is any exception other than the ones the server
answers with a 4xx or 503 (the server would answer it with a 500), or an answer that is not
UTF-8 JSON; libFuzzer saves the input under ``--out`` and stops.

atheris is not a dependency of the suite (a 35 MB wheel; 3.0.0 is the last with a CPython 3.11
wheel): ``.venv/bin/pip install atheris==3.0.0`` first. Seeds: the golden requests.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
CLOCK = 1_795_780_800.0  # 2026-11-27T12:00:00Z: the golden requests' load data is 30 s old
# (form, verb); an input's first byte picks one, the rest is the request body
TARGETS = (
    ("nodes", "filter"),
    ("nodes", "prioritize"),
    ("nodes", "explain"),
    ("nodes", "preempt"),
    ("names", "filter"),
    ("names", "prioritize"),
    ("names", "explain"),
    ("names", "preempt"),
    ("names", "bind"),
)
SEEDS = {
    "filter-nodes": ("nodes", ("filter", "prioritize", "explain")),
    "prioritize-nodes": ("nodes", ("prioritize",)),
    "preempt-victims": ("nodes", ("preempt",)),
    "filter-names": ("names", ("filter", "prioritize", "explain")),
    "prioritize-names": ("names", ("prioritize",)),
    "preempt-meta": ("names", ("preempt",)),
    "bind": ("names", ("bind",)),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=int, default=60, help="how long to fuzz (default 60)")
    p.add_argument("--out", default="benchmarks/results/fuzz", help="where a crashing input is saved")
    p.add_argument("libfuzzer", nargs="*", help="more libFuzzer options, e.g. -runs=100000 (after --)")


def run(args: argparse.Namespace) -> int:
    """Fuzz the verbs for ``--seconds``; exit 0 when nothing crashed (libFuzzer's status)."""
    try:
        import atheris  # optional: see the module docstring
    except ImportError:
        print("atheris is not installed: .venv/bin/pip install atheris==3.0.0", file=sys.stderr)
        return 2
    one_input = _harness()
    atheris.instrument_all()  # every Python function loaded: the extender's and scoring's
    corpus = Path(tempfile.mkdtemp(prefix="extender-fuzz-"))
    for name, (form, verbs) in SEEDS.items():
        body = (GOLDEN / f"{name}.request.json").read_bytes()
        for verb in verbs:
            (corpus / f"{name}-{verb}").write_bytes(bytes([TARGETS.index((form, verb))]) + body)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.argv[0],
        str(corpus),
        f"-max_total_time={args.seconds}",
        f"-artifact_prefix={out}/",
        "-rss_limit_mb=4096",
        "-timeout=20",
        "-print_final_stats=1",
        *args.libfuzzer,
    ]
    print(f"fuzzing {len(TARGETS)} (form, verb) targets for {args.seconds} s; corpus {corpus}")
    atheris.Setup(argv, one_input)
    atheris.Fuzz()  # exits the process with libFuzzer's status
    return 0


def _harness() -> Callable[[bytes], None]:
    """``one_input(data)``: the verb the first byte picks, on the rest; raises on a crash."""
    from extender.kube.bind import BindOutcome, BindResult, BindTarget
    from extender.kube.objects import BadRequest
    from extender.policy_file import load_policy
    from extender.protocol.wire import decode_scheduling_request
    from extender.settings import DEFAULT_POLICY_PATH
    from extender.verbs.source import CacheNotReady, Candidates, NamesFormUnsupported, StatelessSource
    from extender.verbs.verbs import Verbs

    class Binder:
        def bind(self, target: BindTarget) -> BindResult:
            return BindResult(BindOutcome.BOUND, "")

    class NamesSource:
        """A names-form source (as the cluster cache is) over the golden nodes."""

        mode = "cache"

        def __init__(self) -> None:
            self._inner = StatelessSource(clock=lambda: CLOCK)
            self._nodes = decode_scheduling_request((GOLDEN / "filter-nodes.request.json").read_bytes())

        def candidates(self, request: Any, resources: tuple[str, ...]) -> Candidates:
            self._inner.candidates(self._nodes, resources)
            return self._inner.known_nodes(request.names, resources)

        def known_nodes(self, names: Any, resources: tuple[str, ...]) -> Candidates:
            self._inner.candidates(self._nodes, resources)
            return self._inner.known_nodes(names, resources)

        def readiness(self) -> tuple[bool, str]:
            return True, "fuzz"

    log = logging.getLogger("extender-fuzz")
    log.setLevel(logging.CRITICAL)
    policy = load_policy(DEFAULT_POLICY_PATH)
    verbs = {
        "nodes": Verbs(
            policy=policy, source=StatelessSource(clock=lambda: CLOCK), binder=Binder(), logger=log
        ),
        "names": Verbs(policy=policy, source=NamesSource(), binder=Binder(), logger=log),
    }
    refused = (BadRequest, NamesFormUnsupported, CacheNotReady)  # 4xx and 503: what the server answers

    def one_input(data: bytes) -> None:
        if not data:
            return
        form, verb = TARGETS[data[0] % len(TARGETS)]
        body = data[1:]
        try:
            answer = verbs[form].explain(body) if verb == "explain" else getattr(verbs[form], verb)(body)
        except refused:
            return
        json.loads(answer.body.decode("utf-8"))  # what kube-scheduler must be able to read

    return one_input
