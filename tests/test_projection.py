"""The projection runner (issue 10, part 2): it reads only the kinds and types it folds, keeps
a durable checkpoint a restarted reader resumes from, reads its own writes, and upcasts old
events. On SQLite files (real restarts: a new store instance on the same file)."""

from __future__ import annotations

from typing import Any

import pytest

from api.opengpts.directory import DirectoryModel
from runtime.events import Event, NewEvent
from runtime.projection import Projection, ProjectionRunner
from runtime.stores.sqlite import SQLiteEventStore


class Names(Projection):
    name = "names"
    kinds = ("person",)
    types = ("named",)

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.seen: list[int] = []

    def apply(self, event: Event) -> None:
        self.names[event.stream] = event.data["name"]
        self.seen.append(event.position)

    def dump(self) -> Any:
        return self.names

    def load(self, data: Any) -> None:
        self.names = dict(data)


async def _noise(store: SQLiteEventStore, n: int) -> None:
    await store.append("counter/noise", [NewEvent("added", {"n": i}) for i in range(n)], -1)


async def test_a_restarted_reader_resumes_from_its_checkpoint(tmp_path):
    path = tmp_path / "events.db"
    store = SQLiteEventStore(path)
    await _noise(store, 300)
    for i in range(5):
        await store.append(f"person/{i}", [NewEvent("named", {"name": f"p{i}"}),
                                           NewEvent("aged", {"age": i})], 0)
    await _noise(store, 300)
    first = ProjectionRunner(store, Names(), checkpoint_every=1)
    await first.catch_up()
    assert first.projection.names == {f"person/{i}": f"p{i}" for i in range(5)}
    assert first.events_read == 5  # not the 610 others
    assert first.position == await store.last_position()
    await first.checkpoint_now()
    await store.append("person/9", [NewEvent("named", {"name": "late"})], 0)
    await store.close()

    store = SQLiteEventStore(path)  # a restarted replica
    try:
        again = ProjectionRunner(store, Names())
        await again.catch_up()
        assert again.resumed_from == first.position
        assert again.events_read == 1 and again.projection.seen == [
            await store.last_position()]
        assert again.projection.names["person/9"] == "late"
        assert len(again.projection.names) == 6
        # read-your-writes: an append acknowledged before catch_up is in the model after it
        await store.append("person/10", [NewEvent("named", {"name": "now"})], 0)
        await again.catch_up()
        assert again.projection.names["person/10"] == "now"
    finally:
        await store.close()


async def test_a_checkpoint_of_another_version_is_ignored_and_the_model_rebuilt(tmp_path):
    store = SQLiteEventStore(tmp_path / "events.db")
    try:
        await store.append("person/a", [NewEvent("named", {"name": "A"})], 0)
        await store.save_checkpoint("names", 1, {"version": 99, "model": {"wrong": "shape"}})
        runner = ProjectionRunner(store, Names())
        await runner.catch_up()
        assert runner.resumed_from == 0 and runner.projection.names == {"person/a": "A"}
    finally:
        await store.close()


@pytest.mark.parametrize("checkpointed", [False, True])
async def test_the_opengpts_directory_rebuilt_and_resumed_agree(tmp_path, checkpointed):
    store = SQLiteEventStore(tmp_path / "events.db")
    try:
        await _noise(store, 50)
        await store.append("assistant/a1", [NewEvent("created", {"user_id": "u", "public": 1,
                                                                 "name": "a"})], 0)
        await store.append("thread/t1", [NewEvent("created", {"user_id": "u",
                                                              "assistant_id": "a1"}),
                                         NewEvent("run_started", {"run_id": "r1"}),
                                         NewEvent("messages_written", {"messages": []})], 0)
        one = ProjectionRunner(store, DirectoryModel(), checkpoint_every=10**9,
                               checkpoint_seconds=10**9)
        await one.catch_up()
        if checkpointed:
            await one.checkpoint_now()
        await store.append("assistant/a1", [NewEvent("deleted", {})], 1)
        two = ProjectionRunner(store, DirectoryModel())
        await two.catch_up()
        await one.catch_up()
        assert two.projection.dump() == one.projection.dump()
        assert two.projection.dump()["assistants"] == {}
        assert two.projection.runs == {"r1": "t1"}
        assert two.events_read == (1 if checkpointed else 4)
    finally:
        await store.close()
