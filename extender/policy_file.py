"""Reading the policy file (YAML) into a validated ``scoring.Policy``, once, at start-up."""

from __future__ import annotations

from pathlib import Path

import yaml

from scoring import Policy, PolicyError, parse_policy


def load_policy(path: Path) -> Policy:
    """Parse and validate ``path``; PolicyError names the file and the field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy file: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from None
    try:
        return parse_policy(doc if doc is not None else {})
    except PolicyError as exc:
        raise PolicyError(f"{path}: {exc}") from None
