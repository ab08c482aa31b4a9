"""Command line: ``python -m extender serve`` and ``python -m extender check-policy``; installed
with pip, the same as the ``load-aware-extender`` command (pyproject.toml ``[project.scripts]``).

``serve`` validates its flags and the policy first (so a mistake is reported before any
process starts), then replaces itself with gunicorn running ``extender.wsgi:app`` under
``extender/gunicorn_conf.py``, the same command the container runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from extender.policy_file import load_policy, policy_version, read_policy_bytes
from extender.settings import DEFAULT_POLICY_PATH, Settings, SettingsError
from scoring import Policy, PolicyError

GUNICORN_ARGS = ("-c", "python:extender.gunicorn_conf", "extender.wsgi:app")


def _prog() -> str:
    """``load-aware-extender`` run as the installed command, ``python -m extender`` otherwise."""
    name = Path(sys.argv[0]).name
    return "python -m extender" if name in ("", "__main__.py") else name


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=_prog(), description="Load-aware kube-scheduler extender.")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the production server (gunicorn)")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="verbs listen port (default 8888)")
    serve.add_argument("--ops-host", help="operations listen address: probes, /metrics (default 127.0.0.1)")
    serve.add_argument(
        "--ops-port", type=int, help="operations listen port (default 8889; 0: on the verbs port)"
    )
    serve.add_argument(
        "--debug-endpoints",
        action="store_true",
        help="serve /debug/decisions and /explain on the operations listener (pod and node details)",
    )
    serve.add_argument("--tls-cert-file", type=Path, help="PEM certificate: the verbs listener serves HTTPS")
    serve.add_argument("--tls-private-key-file", type=Path, help="PEM private key of --tls-cert-file")
    serve.add_argument(
        "--client-ca-file", type=Path, help="PEM CA bundle: require client certificates signed by it"
    )
    serve.add_argument("--policy", type=Path, help=f"policy file (default {DEFAULT_POLICY_PATH})")
    serve.add_argument("--url-prefix", help="path prefix of the verbs, e.g. /scheduler")
    serve.add_argument("--kubeconfig", help="kubeconfig for bind (default: in-cluster, then KUBECONFIG)")
    serve.add_argument("--no-api", action="store_true", help="never use Kubernetes API credentials")
    serve.add_argument("--threads", type=int, help="worker threads (default 4)")
    serve.add_argument(
        "--no-cache",
        action="store_true",
        help="stateless mode even with API access (nodeCacheCapable: false)",
    )
    serve.add_argument("--load-sources", help="annotations,metrics-server,prometheus (default annotations)")
    serve.add_argument("--prometheus-url", help="Prometheus base URL, e.g. http://prometheus:9090")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="text: key=value lines (default); json: one JSON object per line, gunicorn's lines too",
    )
    check = sub.add_parser("check-policy", help="validate a policy file and exit")
    check.add_argument("policy", type=Path, nargs="?", default=DEFAULT_POLICY_PATH)
    return p


def _load_policy(path: Path, how: str) -> Policy:
    """The policy at ``path``; a missing default says how to name another one (``how``)."""
    if path == DEFAULT_POLICY_PATH and not path.exists():
        raise PolicyError(f"{path}: the default policy file is missing; name a policy file with {how}")
    return load_policy(path)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check-policy":
            policy = _load_policy(args.policy, "check-policy FILE")
            version = policy_version(read_policy_bytes(args.policy))  # as extender_info{policy} says
            strategies = ", ".join(f"{s.name}x{s.weight:g}" for s in policy.strategies)
            print(f"{args.policy}: ok, version {version} ({strategies})")
            return 0
        overrides = {
            k: v
            for k, v in {
                "host": args.host,
                "port": args.port,
                "ops_host": args.ops_host,
                "ops_port": args.ops_port,
                "debug_endpoints": True if args.debug_endpoints else None,
                "tls_cert_file": args.tls_cert_file,
                "tls_private_key_file": args.tls_private_key_file,
                "client_ca_file": args.client_ca_file,
                "policy": args.policy,
                "url_prefix": args.url_prefix,
                "kubeconfig": args.kubeconfig,
                "threads": args.threads,
                "log_level": args.log_level,
                "log_format": args.log_format,
                "api_access": False if args.no_api else None,
                "cache": False if args.no_cache else None,
                "load_sources": args.load_sources,
                "prometheus_url": args.prometheus_url,
            }.items()
            if v is not None
        }
        settings = dataclasses.replace(Settings.from_env(validate=False), **overrides).validated()
        _load_policy(settings.policy, "--policy FILE or EXTENDER_POLICY")
    except (SettingsError, PolicyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    env = {**os.environ, **settings.to_env()}
    os.execvpe(sys.executable, [sys.executable, "-m", "gunicorn", *GUNICORN_ARGS], env)
