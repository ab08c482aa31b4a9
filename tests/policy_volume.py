"""A policy file as the kubelet mounts a ConfigMap, and policies that answer differently.

The kubelet's AtomicWriter (``pkg/volume/util/atomic_writer.go``) writes each version of the
ConfigMap into a new hidden directory, points a ``..data`` symlink at it by renaming a new
symlink over the old one, and removes the old directory; the file the container reads is a
symlink ``KEY -> ..data/KEY`` made once. ``edit_in_place`` rewrites the file the links lead to
(what a developer's editor does on a plain file)."""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

KEY = "extender-policy.yaml"

_SHIPPED_STRATEGIES = """\
strategies:
  - name: LoadAware
    weight: {load_aware}
    args:
      resourceWeights: {{cpu: 1, memory: 1}}
      estimatedScalingFactors: {{cpu: 85, memory: 70}}
  - name: LeastAllocated
    weight: {least}
    args:
      resources: [{{name: cpu, weight: 1}}, {{name: memory, weight: 1}}]
  - name: BalancedAllocation
    weight: {balanced}
    args:
      resources: [{{name: cpu, weight: 1}}, {{name: memory, weight: 1}}]
load:
  staleAfterSeconds: 180
  fallback: requests
"""


def policy(
    *, cpu: int = 80, memory: str = "memory", load_aware: int = 2, least: int = 1, balanced: int = 1
) -> str:
    """The shipped policy's shape with other thresholds and weights (``memory``: the key the
    memory threshold is spelt with)."""
    filters = f"filters:\n  resourceFit: true\n  usageThresholds:\n    cpu: {cpu}\n    {memory}: 90\n"
    return filters + _SHIPPED_STRATEGIES.format(load_aware=load_aware, least=least, balanced=balanced)


POLICY_A = policy()  # the shipped policy: the golden answers
POLICY_B = policy(cpu=90, load_aware=1, least=3)  # n2 (86 % CPU) passes; requests weigh more
POLICY_C = policy(load_aware=1, least=0, balanced=4)
POLICY_INVALID = policy(memory="memroy")  # PolicyError names filters.usageThresholds.memroy


class KubeletVolume:
    """A ConfigMap volume holding one key, updated as the kubelet updates it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._versions = itertools.count(1)
        self.path = root / KEY  # what --policy names: KEY -> ..data/KEY

    def publish(self, text: str) -> None:
        """A ConfigMap update: a new timestamped directory, ``..data`` swapped atomically to
        it, the old directory removed."""
        version = self.root / f"..2026_01_01_00_00_{next(self._versions):02d}.000000001"
        version.mkdir()
        (version / KEY).write_text(text)
        data = self.root / "..data"
        old = os.readlink(data) if data.is_symlink() else None
        tmp = self.root / "..data_tmp"
        os.symlink(version.name, tmp)
        os.replace(tmp, data)
        if not self.path.is_symlink():
            os.symlink(f"..data/{KEY}", self.path)
        if old is not None:
            shutil.rmtree(self.root / old)

    def edit_in_place(self, text: str) -> None:
        """Rewrite the file the links lead to: same inode, new bytes."""
        with open(self.path.resolve(), "r+", encoding="utf-8") as f:
            f.write(text)
            f.truncate()
