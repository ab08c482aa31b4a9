"""kube-scheduler's extender protocol (``wire``): the only module that knows its keys. Imports
no Kubernetes client. ``openapi.yaml`` beside it describes the whole HTTP API (``OPENAPI_PATH``)."""

from pathlib import Path

OPENAPI_PATH = Path(__file__).resolve().parent / "openapi.yaml"
"""The OpenAPI 3.1 description of the HTTP API: the verbs, the operations and debug endpoints."""
