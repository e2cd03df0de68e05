"""Events that evolve (issue 10, part 4): a stream written with version 1 of an event is read
by the kind at version 2 through its upcaster; snapshots carry their format's version; an event
this code cannot read is an error naming stream, seq and type, never skipped. In this process,
on the in-memory store that passes the conformance suite."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from runtime import registry
from runtime.entity import EntityKind, Unreadable
from runtime.events import Event, NewEvent
from runtime.host import EntityTable, ErrorReply, replay
from runtime.stores.memory import MemoryEventStore


def _v1(snapshot_every: int = 100) -> EntityKind:
    kind = EntityKind("profile", lambda: {"name": None, "renames": 0},
                      snapshot_every=snapshot_every)

    @kind.command("rename")
    def rename(state: dict, cmd: dict, ctx: Any) -> NewEvent:
        return NewEvent("renamed", {"name": cmd["name"]})

    @kind.event("renamed")
    def renamed(state: dict, data: dict) -> dict:
        return {"name": data["name"], "renames": state["renames"] + 1}

    return kind


def _v2(snapshot_upcaster: bool = False) -> EntityKind:
    """Version 2 splits the name; its state keeps first and last (snapshot format 2)."""
    kind = EntityKind("profile", lambda: {"first": None, "last": None, "renames": 0},
                      snapshot_version=2)

    @kind.command("rename")
    def rename(state: dict, cmd: dict, ctx: Any) -> NewEvent:
        return NewEvent("renamed", {"first": cmd["first"], "last": cmd["last"]})

    @kind.event("renamed", version=2)
    def renamed(state: dict, data: dict) -> dict:
        return {"first": data["first"], "last": data["last"], "renames": state["renames"] + 1}

    @kind.upcaster("renamed", 1)
    def split_name(data: dict) -> dict:
        first, _, last = data["name"].partition(" ")
        return {"first": first, "last": last}

    if snapshot_upcaster:
        @kind.snapshot_upcaster(1)
        def split_state(state: dict) -> dict:
            first, _, last = (state["name"] or "").partition(" ")
            return {"first": first, "last": last, "renames": state["renames"]}

    return kind


def _store() -> MemoryEventStore:
    return MemoryEventStore(f"versions-{uuid.uuid4().hex}")


async def _write_v1(store: MemoryEventStore, monkeypatch, names: list[str],
                    snapshot_every: int = 100) -> None:
    monkeypatch.setitem(registry._KINDS, "profile", _v1(snapshot_every))
    table = EntityTable(store)
    for name in names:
        assert not isinstance(await table.ask("profile", "p", {"type": "rename", "name": name}),
                              ErrorReply)


async def test_a_stream_written_at_version_1_is_read_by_the_kind_at_version_2(monkeypatch):
    store = _store()
    await _write_v1(store, monkeypatch, ["Ada Lovelace", "Grace Hopper"])
    assert [e.schema_version for e in await store.read("profile/p")] == [1, 1]
    monkeypatch.setitem(registry._KINDS, "profile", _v2())
    table = EntityTable(store)
    version, state = await table.state("profile", "p")
    assert (version, state) == (2, {"first": "Grace", "last": "Hopper", "renames": 2})
    # new events are written at version 2, and the stream folds as a mix of both
    await table.ask("profile", "p", {"type": "rename", "first": "Alan", "last": "Turing"})
    events = await store.read("profile/p")
    assert [e.schema_version for e in events] == [1, 1, 2]
    assert events[-1].data == {"first": "Alan", "last": "Turing"}  # the log is not rewritten
    assert events[0].data == {"name": "Ada Lovelace"}
    state, version, _ = await replay(store, _v2(), "profile/p", None)
    assert state == {"first": "Alan", "last": "Turing", "renames": 3}


@pytest.mark.parametrize("upcast", [False, True])
async def test_a_snapshot_of_an_older_format_is_upcast_or_ignored(monkeypatch, upcast):
    store = _store()
    await _write_v1(store, monkeypatch, ["Ada Lovelace", "Grace Hopper", "Edsger Dijkstra"],
                    snapshot_every=2)
    for _ in range(100):  # the snapshot is written in the background
        snap = await store.load_snapshot("profile/p")
        if snap is not None:
            break
        await asyncio.sleep(0.01)
    assert (snap.seq, snap.version) == (2, 1)
    kind = _v2(snapshot_upcaster=upcast)
    state, version, base = await replay(store, kind, "profile/p", None)
    assert state == {"first": "Edsger", "last": "Dijkstra", "renames": 3} and version == 3
    assert base == (2 if upcast else 0)  # without an upcaster the log is folded from seq 1


async def test_an_ignored_snapshot_over_deleted_events_is_an_error_not_a_wrong_state(
        monkeypatch):
    store = _store()
    await _write_v1(store, monkeypatch, ["Ada Lovelace", "Grace Hopper", "Alan Turing"])
    await store.save_snapshot("profile/p", 2, {"name": "Grace Hopper", "renames": 2})
    await store.delete_events("profile/p", 2)
    with pytest.raises(Unreadable, match="profile/p seq 3"):
        await replay(store, _v2(), "profile/p", None)


async def test_an_event_type_the_kind_does_not_know_is_an_error_naming_stream_seq_type(
        monkeypatch):
    store = _store()
    await store.append("profile/p", [NewEvent("renamed", {"name": "Ada Lovelace"}),
                                     NewEvent("mystery", {"x": 1})], 0)
    monkeypatch.setitem(registry._KINDS, "profile", _v1())
    reply = await EntityTable(store).state("profile", "p")
    assert isinstance(reply, ErrorReply) and reply.code == "unreadable"
    assert "profile/p seq 2" in reply.message and "'mystery'" in reply.message
    reply = await EntityTable(store).ask("profile", "p", {"type": "rename", "name": "x"})
    assert isinstance(reply, ErrorReply) and reply.code == "unreadable"
    assert len(await store.read("profile/p")) == 2  # nothing was written over it


def test_a_newer_version_than_the_code_folds_and_a_missing_upcaster_are_errors():
    v1, v2 = _v1(), _v2()
    newer = Event("profile/p", 4, "renamed", {"first": "A", "last": "B"}, 0.0, 9, None, None, 2)
    with pytest.raises(Unreadable, match="newer than"):
        v1.fold(v1.initial_state(), [newer])
    v3 = EntityKind("profile", dict)
    v3.event("renamed", version=3)(lambda s, d: s)
    v3.upcaster("renamed", 2)(lambda d: d)
    old = Event("profile/p", 1, "renamed", {"name": "A B"}, 0.0, 1, None, None, 1)
    with pytest.raises(Unreadable, match="no upcaster from 1"):
        v3.fold({}, [old])
    assert v2.fold(v2.initial_state(), [old])["first"] == "A"
