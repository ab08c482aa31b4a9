"""In-test fake Kubernetes API server (real HTTP, real REST paths) for driving the official client."""

from .server import AuditEntry, FakeKubeAPI

__all__ = ["AuditEntry", "FakeKubeAPI"]
