"""``python -m benchmarks <benchmark>``: run one benchmark and write its figures.

Each benchmark is a subcommand whose module provides ``add_arguments(parser)`` and
``run(args) -> int``; ``main`` only dispatches. Run from the repository root (the benchmarks
start the extender with ``python -m extender serve`` there).
"""

from __future__ import annotations

import argparse
import sys

from benchmarks import latency


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks",
                                description="Benchmarks of the load-aware extender (see benchmarks/README.md).")
    sub = p.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")

    lat = sub.add_parser("latency", help="stateless-mode HTTP latency of filter and prioritize "
                         "(full Node objects) against the orjson.loads floor",
                         description=latency.run_latency.__doc__,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    latency.add_latency_arguments(lat)
    lat.set_defaults(run=latency.run_latency)

    workers = sub.add_parser("workers", help="filter latency while a slow bind is in flight, "
                             "gunicorn --threads 1 vs the default 4",
                             description=latency.run_workers.__doc__,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    latency.add_workers_arguments(workers)
    workers.set_defaults(run=latency.run_workers)

    # Further benchmarks register here, each as one subparser with its own module:
    #   placement  - placement quality of the scores on a simulated cluster (not written yet)
    #   all        - every benchmark in turn with its default arguments (once placement exists)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
