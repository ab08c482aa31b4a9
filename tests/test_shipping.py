"""Snapshots written by the cache process and mapped by the serving one (extender/cache/shipping.py):
what arrives equals what left, cannot be written, and shares node names only when they are
the same."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extender.cache.shipping import SnapshotReader, SnapshotWriter
from extender.cache.snapshot import Snapshot
from tests.test_cluster import assert_same_snapshot, bind_state, node, pod


def ship(writer: SnapshotWriter, reader: SnapshotReader, snap: Snapshot) -> Snapshot:
    return reader.read(writer.write(snap))


def test_a_shipped_snapshot_equals_the_original_and_its_file_is_gone(tmp_path: Path) -> None:
    s = bind_state()
    writer, reader = SnapshotWriter(str(tmp_path)), SnapshotReader()
    want = s.snapshot
    got = ship(writer, reader, want)
    assert_same_snapshot(got, want, np.random.default_rng(0))
    assert (got.generation, got.built_at, got.resources) == (want.generation, want.built_at, want.resources)
    np.testing.assert_array_equal(got.newest_sample, want.newest_sample)
    np.testing.assert_array_equal(got.by_node, want.by_node)
    assert dict(got.index) == dict(want.index)
    assert list(tmp_path.iterdir()) == []  # the reader unlinked it; the mapping lives on
    for a in (*got.arrays.values(), got.newest_sample, got.by_node):
        assert not a.flags.writeable
        with pytest.raises(ValueError):
            a[...] = 0


def test_a_bind_snapshot_ships_its_patched_node_and_shares_the_names(tmp_path: Path) -> None:
    s = bind_state()
    writer, reader = SnapshotWriter(str(tmp_path)), SnapshotReader()
    first = ship(writer, reader, s.snapshot)
    assert s.assume(uid="new-0", node="n3") and s.assume(uid="new-1", node="n7")
    msg = writer.write(s.snapshot)
    assert msg.names is None  # the same node set: names are not sent again
    got = reader.read(msg)
    assert got.names is first.names and got.index is first.index  # CacheSource's row memo holds
    assert set(got.patched) == set(s.snapshot.patched) == {s.snapshot.index["n3"], s.snapshot.index["n7"]}
    assert_same_snapshot(got, s.snapshot, np.random.default_rng(1))
    assert_same_snapshot(got, s.publish(force=True), np.random.default_rng(2))


def test_a_new_node_set_ships_its_names(tmp_path: Path) -> None:
    s = bind_state()
    writer, reader = SnapshotWriter(str(tmp_path)), SnapshotReader()
    first = ship(writer, reader, s.snapshot)
    s.nodes_handler.upsert(node("zz-new"))
    s.pods_handler.upsert(pod("on-new", "zz-new"))
    msg = writer.write(s.publish())
    assert msg.names is not None and "zz-new" in msg.names
    got = reader.read(msg)
    assert got.index is not first.index and got.index["zz-new"] == len(got.names) - 1
    assert_same_snapshot(got, s.snapshot, np.random.default_rng(3))


def test_shared_arrays_are_written_once(tmp_path: Path) -> None:
    """Without a load source the load fields are one NaN block, shared: one copy in the file."""
    from extender.cache.store import ClusterState

    s = ClusterState(estimator_factors={"cpu": 85, "memory": 70})
    s.nodes_handler.replace([node(f"n{i}") for i in range(50)])
    snap = s.publish(force=True)
    assert snap.arrays["usage"] is snap.arrays["usage_p95"]
    msg = SnapshotWriter(str(tmp_path)).write(snap)
    offsets = {key: offset for key, offset, _ in msg.layout}
    assert offsets["arrays/usage"] == offsets["arrays/usage_p95"]
    distinct = {id(a): a.nbytes for a in (*snap.arrays.values(), snap.newest_sample, snap.by_node)}
    assert msg.size < sum(a.nbytes for a in (*snap.arrays.values(), snap.newest_sample, snap.by_node))
    assert msg.size >= sum(distinct.values())
    got = SnapshotReader().read(msg)
    assert np.isnan(got.arrays["usage_p95"]).all()


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_bind_snapshot_writes_only_what_the_bind_changed(tmp_path: Path) -> None:
    s = bind_state(nodes=200)
    writer, reader = SnapshotWriter(str(tmp_path)), SnapshotReader()
    whole = writer.write(s.snapshot)
    reader.read(whole)
    assert whole.base is None and not whole.reused()
    assert s.assume(uid="new-0", node="n3")
    msg = writer.write(s.snapshot)
    reused = msg.reused()
    assert msg.base == whole.generation and {"by_node", "newest", "arrays/allocatable"} <= set(reused)
    assert "arrays/requested" not in reused and msg.size < whole.size / 3
    assert_same_snapshot(reader.read(msg), s.snapshot, np.random.default_rng(5))


@pytest.mark.parametrize("seed", range(4))
def test_chains_of_binds_events_and_builds_ship_equal_snapshots(tmp_path: Path, seed: int) -> None:
    """Whatever mix of binds (derived snapshots), events and full builds, and whole writes on
    the clock: each mapped snapshot equals the one written, fields in the same order."""
    rng = np.random.default_rng(seed)
    clock = Clock()
    s = bind_state()
    writer, reader = SnapshotWriter(str(tmp_path), clock=clock), SnapshotReader()
    k = 0
    for _ in range(40):
        step = rng.integers(4)
        if step == 0:
            assert s.assume(uid=f"new-{k}", node=f"n{int(rng.integers(12))}")
            k += 1
        elif step == 1:
            node_name, cpu = f"n{int(rng.integers(12))}", f"{int(rng.integers(1, 900))}m"
            s.pods_handler.upsert(pod(f"ev-{k}", node_name, cpu=cpu))
            k += 1
            s.publish()
        elif step == 2:
            s.publish(force=True)
        else:
            clock.t += 4.0  # a whole write every third step of this kind or so
        got = reader.read(writer.write(s.snapshot))
        assert got.fields == s.snapshot.fields
        assert_same_snapshot(got, s.snapshot, rng)


def test_a_lost_file_refuses_what_refers_to_it_until_a_whole_write(tmp_path: Path) -> None:
    from extender.cache.shipping import WHOLE_EVERY_S

    clock = Clock()
    s = bind_state()
    writer, reader = SnapshotWriter(str(tmp_path), clock=clock), SnapshotReader()
    lost = writer.write(s.snapshot)
    os.unlink(lost.path)
    with pytest.raises(OSError):
        reader.read(lost)
    s.assume(uid="new-0", node="n1")
    with pytest.raises(ValueError, match="reuses arrays of"):
        reader.read(writer.write(s.snapshot))
    clock.t += WHOLE_EVERY_S
    s.assume(uid="new-1", node="n2")
    whole = writer.write(s.snapshot)
    assert not whole.reused() and whole.names is None  # the lost message's names still hold
    assert_same_snapshot(reader.read(whole), s.snapshot, np.random.default_rng(4))
    assert list(tmp_path.iterdir()) == []  # refused or read, every file is unlinked


def test_a_snapshot_without_names_to_share_is_refused(tmp_path: Path) -> None:
    from extender.cache.shipping import WHOLE_EVERY_S

    clock = Clock()
    s = bind_state()
    writer = SnapshotWriter(str(tmp_path), clock=clock)
    writer.write(s.snapshot)
    s.assume(uid="new-0", node="n1")
    clock.t += WHOLE_EVERY_S
    with pytest.raises(ValueError, match="names"):
        SnapshotReader().read(writer.write(s.snapshot))  # a reader that never saw the first


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 40),
    r=st.integers(1, 6),
    patched=st.sets(st.integers(0, 39), max_size=8),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_snapshot_shape_round_trips(
    tmp_path_factory: pytest.TempPathFactory, n: int, r: int, patched: set[int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    names = tuple(f"node-{i}" for i in range(n))
    fields = ("allocatable", "requested", "usage")
    arrays = {f: rng.random((r, n)) for f in fields}
    by_node = np.ascontiguousarray(np.stack(list(arrays.values())).transpose(2, 0, 1))
    snap = Snapshot(
        7,
        123.5,
        names,
        {x: i for i, x in enumerate(names)},
        tuple(f"res{j}" for j in range(r)),
        arrays,
        rng.random(n),
        n * 3,
        1,
        by_node,
        {p: rng.random((len(fields), r)) for p in patched if p < n},
    )
    directory = tmp_path_factory.mktemp("ship")
    got = SnapshotReader().read(SnapshotWriter(str(directory)).write(snap))
    assert got.names == names and got.resources == snap.resources and got.fields == fields
    assert (got.pods, got.compensated_pods, got.generation, got.built_at) == (n * 3, 1, 7, 123.5)
    for f in fields:
        np.testing.assert_array_equal(got.arrays[f], arrays[f])
    np.testing.assert_array_equal(got.by_node, by_node)
    np.testing.assert_array_equal(got.newest_sample, snap.newest_sample)
    assert set(got.patched) == set(snap.patched)
    for p, rec in snap.patched.items():
        np.testing.assert_array_equal(got.patched[p], rec)
