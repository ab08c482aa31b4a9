"""The shipped policy file: what it enables parses, and what it documents in comments is valid."""

from __future__ import annotations

from pathlib import Path

import yaml

from scoring import parse_policy
from scoring.policy import STRATEGIES

SHIPPED = Path(__file__).resolve().parent.parent / "config" / "extender-policy.yaml"


def _commented_strategies(text: str) -> list[dict]:
    """The commented-out strategy examples, uncommented (the block after 'Other strategies')."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "Other strategies" in line) + 1
    block = []
    for line in lines[start:]:
        if not line.startswith("  # "):
            break
        block.append("  " + line[4:].split("  #")[0].split("   #")[0])
    return yaml.safe_load("\n".join(block))


def test_every_strategy_is_documented_in_the_shipped_file_and_the_examples_are_valid() -> None:
    text = SHIPPED.read_text()
    active = [s.name for s in parse_policy(yaml.safe_load(text)).strategies]
    examples = _commented_strategies(text)
    assert {e["name"] for e in examples} | set(active) == set(STRATEGIES)
    for example in examples:
        policy = parse_policy({"strategies": [example]})
        assert policy.strategies[0].name == example["name"]
