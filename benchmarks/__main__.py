"""``python -m benchmarks <benchmark>``: run one benchmark and write its figures.

Each benchmark is a subcommand whose module provides ``add_arguments(parser)`` and
``run(args) -> int``; ``main`` only dispatches. Run from the repository root (the benchmarks
start the extender with ``python -m extender serve`` there).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from benchmarks import abuse, core, fuzz, latency, memory, names, placement, workers


def _add(
    sub: Any,
    name: str,
    run: Callable[[argparse.Namespace], int],
    add_arguments: Callable[[argparse.ArgumentParser], None],
    help_text: str,
) -> None:
    parser = sub.add_parser(
        name, help=help_text, description=run.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    parser.set_defaults(run=run)


def _all_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="each benchmark's --quick mode")
    p.add_argument("--out", default="benchmarks/results", help="results folder (default benchmarks/results)")


def _run_all(args: argparse.Namespace) -> int:
    """Run ``latency`` and then ``placement`` with their own defaults (or ``--quick``); the
    exit status is non-zero if either failed."""
    status = 0
    for name in ("latency", "placement"):
        sub = _parse([name, "--out", args.out, *(["--quick"] if args.quick else [])])
        status |= int(sub.run(sub))
    return status


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks of the load-aware extender (see benchmarks/README.md).",
    )
    sub = p.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")

    _add(
        sub,
        "latency",
        latency.run_latency,
        latency.add_latency_arguments,
        "kube-scheduler's cycle (sampling, filter, prioritize, bind) against the extender in both "
        "forms at 100..10,000 nodes: per-verb latency, calls/s, body sizes, server CPU, orjson floor",
    )
    _add(
        sub,
        "workers",
        workers.run_workers,
        workers.add_workers_arguments,
        "filter latency while a slow bind is in flight, gunicorn --threads 1 vs the default 4",
    )
    _add(
        sub,
        "core",
        core.run,
        core.add_arguments,
        "the numpy scoring core per strategy and for the default policy at 100..10,000 nodes, "
        "against the scalar reference",
    )
    _add(
        sub,
        "names",
        names.run,
        names.add_arguments,
        "cluster-cache mode (NodeNames only): readiness, latency steady and under pod churn",
    )

    _add(
        sub,
        "abuse",
        abuse.run,
        abuse.add_arguments,
        "names-form filter latency while idle connections and clients sending a byte a second "
        "are open, with this extender's worker and gunicorn's gthread",
    )
    _add(
        sub,
        "memory",
        memory.run,
        memory.add_arguments,
        "the largest requests the default memory budget accepts, per shape: the worker's RSS "
        "before, at its peak and after",
    )
    _add(
        sub,
        "fuzz",
        fuzz.run,
        fuzz.add_arguments,
        "a coverage-guided fuzz (atheris) of the verbs, both request forms, from the golden requests: "
        "any exception the server would answer with a 500 is a crash (needs pip install atheris)",
    )
    _add(
        sub,
        "all",
        _run_all,
        _all_arguments,
        "latency, then placement (the issue-6 harness), each with its defaults or --quick",
    )
    _add(
        sub,
        "placement",
        placement.run,
        placement.add_arguments,
        "placement quality: the openb trace replayed under kube-scheduler's defaults, Trimaran, "
        "Koordinator and this extender's default policy",
    )
    return p


def _parse(argv: list[str]) -> argparse.Namespace:
    """The parsed arguments, with ``argv`` kept: the report records the command from them
    (``harness._command``), the one this benchmark ran with whoever called it."""
    args = _parser().parse_args(argv)
    args.argv = list(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
