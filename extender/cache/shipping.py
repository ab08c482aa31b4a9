"""Snapshots across a process boundary, without copying them through a pipe.

The cache process (``extender.cache.process``) writes each new ``Snapshot``'s arrays once into a
file of its own on a memory-backed file system (``/dev/shm``) and sends the serving process a
small ``Shipped`` message: where each array lies in the file, and the node names only when the
node set changed. The serving process maps the file read-only, faults its pages in outside the
interpreter lock (``_fault_in``; not left to the first verb that reads them), unlinks it, and
makes arrays over the mapping. The arrays cannot be written (the mapping
is read-only), and the mapping lives as long as any array over it.

Why not pickle through the pipe: at 5,000 nodes a snapshot is ~3.5 MB of arrays, shipped up to
five times a second and after each bind. Unpickling copies every byte while holding the
serving process's interpreter lock, which is what moving the cache out was meant to free.
"""

from __future__ import annotations

import dataclasses
import math
import mmap
import os
import time
from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt

from extender.cache.snapshot import Snapshot

ALIGN = 64  # each array starts on a cache line
_PAD = bytes(ALIGN)

Layout = tuple[tuple[str, int, tuple[int, ...]], ...]  # (key, byte offset, shape) of float64 arrays
REUSED = -1  # the offset of an array taken, under the same key, from the snapshot ``Shipped.base``


@dataclasses.dataclass(frozen=True)
class Shipped:
    """One snapshot in transit: everything but the array data, which is in the file at ``path``
    or, for the keys at offset ``REUSED``, under the same key in the snapshot shipped just
    before (generation ``base``). Layout keys: ``arrays/<field>``, ``newest``, ``by_node``,
    ``patched/<position>``; arrays the snapshot shares between fields (the NaN block of the
    absent load fields) are written once and listed under each key."""

    generation: int
    built_at: float
    path: str
    size: int
    resources: tuple[str, ...]
    layout: Layout
    pods: int
    compensated_pods: int
    names: tuple[str, ...] | None  # None: the node set of the previous shipped snapshot
    base: int | None = None  # the generation REUSED entries refer to; None when there are none

    def reused(self) -> set[str]:
        """The keys whose array is the base's."""
        return {key for key, offset, _ in self.layout if offset == REUSED}


WHOLE_EVERY_S = 10.0  # at least this often a snapshot is written whole (see SnapshotWriter)


class SnapshotWriter:
    """The cache process's side: one file per snapshot in ``directory``.

    An array the previous snapshot shipped under the same key (the same object: a bind's snapshot shares all
    but the few arrays it changed, a full build the load fields) is not written again; the
    reader takes it from that snapshot. A bind at 5,000 nodes then writes ~0.7 MB instead of
    ~3.5 (it took 5-15 ms at the p90-p99 of binds under ``benchmarks latency``, an ad-hoc
    trace). Should the reader ever miss a snapshot, what refers to it is refused, until the
    next one written whole: at least every ``WHOLE_EVERY_S``."""

    def __init__(self, directory: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._dir = directory
        self._clock = clock
        self._names: tuple[str, ...] | None = None  # the last shipped node set (by identity)
        self._prev: dict[str, npt.NDArray[np.float64]] = {}  # the last shipped snapshot's arrays by key
        self._prev_generation: int | None = None
        self._whole_at = -math.inf

    def write(self, snap: Snapshot) -> Shipped:
        parts: dict[str, npt.NDArray[np.float64]] = {f"arrays/{f}": a for f, a in snap.arrays.items()}
        parts["newest"] = snap.newest_sample
        parts["by_node"] = snap.by_node
        parts.update({f"patched/{pos}": rec for pos, rec in snap.patched.items()})
        now = self._clock()
        whole = self._prev_generation is None or now - self._whole_at >= WHOLE_EVERY_S
        prev = {} if whole else self._prev
        buffers: list[memoryview | bytes] = []
        layout: list[tuple[str, int, tuple[int, ...]]] = []
        reused = False
        placed: dict[int, int] = {}  # id(array) -> offset: shared arrays once
        size = 0
        for key, a in parts.items():
            if prev.get(key) is a:
                reused = True
                layout.append((key, REUSED, tuple(a.shape)))
                continue
            offset = placed.get(id(a))
            if offset is None:
                data = np.ascontiguousarray(a, dtype=np.float64)
                offset = placed[id(a)] = size
                if data.nbytes:  # an empty array (no nodes yet) takes no bytes
                    buffers.append(memoryview(data.reshape(-1).data).cast("B"))
                    size += data.nbytes
                if size % ALIGN:
                    buffers.append(_PAD[: ALIGN - size % ALIGN])
                    size += ALIGN - size % ALIGN
            layout.append((key, offset, tuple(a.shape)))
        path = os.path.join(self._dir, f"snapshot-{snap.generation}")
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            _write_all(fd, buffers)
        except BaseException:
            os.unlink(path)
            raise
        finally:
            os.close(fd)
        names = None if snap.names is self._names else snap.names
        msg = Shipped(
            snap.generation,
            snap.built_at,
            path,
            size,
            snap.resources,
            tuple(layout),
            snap.pods,
            snap.compensated_pods,
            names,
            self._prev_generation if reused else None,
        )
        self._names = snap.names
        self._prev = parts
        self._prev_generation = snap.generation
        if whole:
            self._whole_at = now
        return msg


def _fault_in(mapped: mmap.mmap | bytes) -> None:
    """Touch one byte per page, so that the page faults of a new mapping are taken here, not
    by the first verb that reads it. A numpy reduction releases the interpreter lock meanwhile
    (measured ad hoc at 3.5 MB: no stall of another thread over 0.33 ms); ``MAP_POPULATE`` or
    ``madvise(MADV_POPULATE_READ)`` would fault them in the mapping call, which CPython 3.11
    makes holding the lock: stalls of the serving threads of up to 4.6 ms."""
    if len(mapped):
        np.frombuffer(mapped, np.uint8)[:: mmap.PAGESIZE].max()


def _write_all(fd: int, buffers: list[memoryview | bytes]) -> None:
    """All of ``buffers`` to ``fd`` (writev writes at most IOV_MAX buffers, and may write less)."""
    pending = [memoryview(b).cast("B") for b in buffers if len(b)]
    while pending:
        written = os.writev(fd, pending[:512])
        while written and pending:
            if written >= len(pending[0]):
                written -= len(pending.pop(0))
            else:
                pending[0], written = pending[0][written:], 0


class SnapshotReader:
    """The serving process's side: a ``Shipped`` message back into a ``Snapshot``."""

    def __init__(self) -> None:
        self._names: tuple[str, ...] = ()
        self._index: Mapping[str, int] = {}
        self._parts: dict[str, npt.NDArray[np.float64]] = {}  # the last snapshot read, by key
        self._generation: int | None = None

    def read(self, msg: Shipped) -> Snapshot:
        """The snapshot of ``msg``; its file is unlinked (mapped, or unreadable, it is done).
        Raises OSError when the file cannot be read, ValueError when a message without names
        follows none that had them, or reuses arrays of a snapshot that was not the last read."""
        if msg.names is not None:  # first: a later message may share them even if this file is lost
            self._names, self._index = msg.names, {name: i for i, name in enumerate(msg.names)}
        try:
            fd = os.open(msg.path, os.O_RDONLY)
        finally:
            try:
                os.unlink(msg.path)
            except FileNotFoundError:
                pass
        if msg.base is not None and msg.base != self._generation:
            os.close(fd)
            raise ValueError(
                f"snapshot {msg.generation} reuses arrays of {msg.base}, "
                f"but the last one read is {self._generation}"
            )
        try:
            mapped = mmap.mmap(fd, msg.size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ) if msg.size else b""
        finally:
            os.close(fd)
        _fault_in(mapped)
        arrays: dict[str, npt.NDArray[np.float64]] = {}
        patched: dict[int, npt.NDArray[np.float64]] = {}
        newest = by_node = None
        parts: dict[str, npt.NDArray[np.float64]] = {}
        for key, offset, shape in msg.layout:  # in the snapshot's order: ``fields`` follows it
            if offset == REUSED:
                parts[key] = self._parts[key]
                continue
            count = int(np.prod(shape))
            a = np.frombuffer(mapped, np.float64, count, offset).reshape(shape) if count else np.zeros(shape)
            a.flags.writeable = False
            parts[key] = a
        for key, a in parts.items():
            kind, _, name = key.partition("/")
            if kind == "arrays":
                arrays[name] = a
            elif kind == "patched":
                patched[int(name)] = a
            elif kind == "newest":
                newest = a
            else:
                by_node = a
        if newest is None or by_node is None:
            raise ValueError(f"snapshot {msg.generation}: layout without newest or by_node")
        n = len(newest)
        if len(self._names) != n:
            raise ValueError(f"snapshot {msg.generation}: {n} nodes, but {len(self._names)} names known")
        self._parts, self._generation = parts, msg.generation
        return Snapshot(
            msg.generation,
            msg.built_at,
            self._names,
            self._index,
            msg.resources,
            arrays,
            newest,
            msg.pods,
            msg.compensated_pods,
            by_node,
            patched,
        )
