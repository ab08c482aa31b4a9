"""The shipped policy file: what it enables parses, and what it documents in comments is valid."""

from __future__ import annotations

from pathlib import Path

import yaml

from scoring import parse_policy
from scoring.policy import BALANCED_FORMULAS, DEFAULT_BALANCED_FORMULA, STRATEGIES, BalancedAllocationArgs

SHIPPED = Path(__file__).resolve().parent.parent / "config" / "extender-policy.yaml"
KUSTOMIZATION = SHIPPED.parent / "deploy" / "kustomization.yaml"


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


def _release(version: str) -> tuple[int, int]:
    """(major, minor) of ``v1.36`` or ``v1.36.4``."""
    major, minor = version.removeprefix("v").split(".")[:2]
    return int(major), int(minor)


def test_balanced_allocation_follows_the_deployed_kube_scheduler() -> None:
    """The default formula, and the shipped file's, is the newest one a release not newer than
    the kube-scheduler image config/deploy runs has (kustomization's ``images`` set the tag):
    moving the image to an older minor release fails here until the default moves too."""
    images = yaml.safe_load(KUSTOMIZATION.read_text())["images"]
    tag = next(i["newTag"] for i in images if i["name"] == "registry.k8s.io/kube-scheduler")
    carried = [f for f in BALANCED_FORMULAS if _release(f) <= _release(tag)]
    assert carried, f"no BalancedAllocation formula for kube-scheduler {tag}"
    assert DEFAULT_BALANCED_FORMULA == max(carried, key=_release)
    shipped = [
        s.args
        for s in parse_policy(yaml.safe_load(SHIPPED.read_text())).strategies
        if isinstance(s.args, BalancedAllocationArgs)
    ]
    assert [a.formula for a in shipped] == [DEFAULT_BALANCED_FORMULA]
