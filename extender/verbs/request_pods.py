"""The Pods that the last scheduling requests carried, by UID, for the bind that follows.

kube-scheduler's ``ExtenderBindingArgs`` names a pod (UID, namespace, name) but does not carry
it. The cluster cache counts a bound pod from its watched spec; when the watch has not shown
the pod yet (a new pod, a slow watch), the spec of the filter or prioritize request that
preceded the bind is the only one there is, and without it the bind could not be counted at
once. One owner (``Verbs``), key the pod UID, entries taken by the bind or dropped oldest
first beyond ``capacity``.
"""

from __future__ import annotations

import collections
import threading

from extender.kube.objects import Pod

CAPACITY = 256  # pods between their scheduling cycle and their bind (kube-scheduler binds in parallel)


class RequestPods:
    """A bounded map UID -> Pod, safe for the serving threads."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._pods: collections.OrderedDict[str, Pod] = collections.OrderedDict()
        self._lock = threading.Lock()

    def remember(self, pod: Pod) -> None:
        uid = pod.metadata.uid if pod.metadata is not None else ""
        if not uid:
            return
        with self._lock:
            self._pods[uid] = pod
            self._pods.move_to_end(uid)
            while len(self._pods) > self._capacity:
                self._pods.popitem(last=False)

    def take(self, uid: str) -> Pod | None:
        """The pod last seen with ``uid``, forgotten here (its bind has come)."""
        with self._lock:
            return self._pods.pop(uid, None)

    def __len__(self) -> int:
        return len(self._pods)
