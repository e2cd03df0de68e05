"""EntityTable (what a host runs) in-process on a real SQLite file: the mechanisms whose
effects are hard to see through Ray: LRU order, the activation bound, subscriber overflow."""

from __future__ import annotations

import asyncio

import pytest

import actors  # noqa: F401
import runtime.host as host_module
from runtime.events import NewEvent
from runtime.host import EntityTable
from runtime.stores.sqlite import SQLiteEventStore


@pytest.fixture
async def store(tmp_path):
    s = SQLiteEventStore(tmp_path / "events.db")
    yield s
    await s.close()


async def test_eviction_is_least_recently_used(store):
    table = EntityTable(store, max_resident=3)
    for name in ("a", "b", "c"):
        await table.ask("counter", name, {"type": "add", "amount": 1})
    await table.ask("counter", "a", {"type": "add", "amount": 1})  # a is now the freshest
    await table.ask("counter", "d", {"type": "add", "amount": 1})
    assert table.resident_streams() == ["counter/c", "counter/a", "counter/d"]
    assert table.counters["evictions"] == 1
    # the evicted entity comes back with its state
    assert (await table.ask("counter", "b", {"type": "add", "amount": 1})).version == 2


async def test_idle_passivation_spares_busy_and_tailed_entities(store):
    table = EntityTable(store, idle_seconds=10)
    await table.ask("counter", "idle", {"type": "add", "amount": 1})
    await table.ask("counter", "tailed", {"type": "add", "amount": 1})
    tail = table.subscribe("counter", "tailed", 1)
    assert (await tail.__anext__())[1].seq == 1
    assert table.passivate_idle(now=10**12) == 1
    assert table.resident_streams() == ["counter/tailed"]
    await tail.aclose()
    assert table.subscribers == 0


class SlowSnapshots(SQLiteEventStore):
    """The real store, with a slow disk for snapshot loads, counting how many overlap."""

    def __init__(self, path):
        super().__init__(path)
        self.active = self.peak = 0

    async def load_snapshot(self, stream, max_seq=None):
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(0.01)
            return await super().load_snapshot(stream, max_seq)
        finally:
            self.active -= 1


async def test_concurrent_activations_are_bounded(tmp_path):
    store = SlowSnapshots(tmp_path / "events.db")
    table = EntityTable(store, max_concurrent_activations=4)
    await asyncio.gather(*(table.activate("counter", f"e{i}") for i in range(40)))
    assert store.peak == 4
    assert table.counters["activations"] == 40
    await store.close()


async def test_concurrent_commands_on_a_new_entity_activate_it_once(store):
    await store.append("counter/once", [NewEvent("added", {"amount": 5})], 0)
    table = EntityTable(store)
    outcomes = await asyncio.gather(*(table.ask("counter", "once", {"type": "add", "amount": 1})
                                      for _ in range(20)))
    assert [o.version for o in outcomes] == list(range(2, 22))  # arrival order, in one loop
    assert table.counters["activations"] == 1


async def test_a_slow_subscriber_overflows_to_the_store_and_loses_nothing(store, monkeypatch):
    monkeypatch.setattr(host_module, "SUBSCRIBER_BUFFER", 5)
    table = EntityTable(store)
    await table.ask("counter", "flood", {"type": "add", "amount": 1})
    tail = table.subscribe("counter", "flood", 1)
    seen = [(await tail.__anext__())[1].seq]
    for _ in range(50):  # far more than the buffer, while the subscriber reads nothing
        await table.ask("counter", "flood", {"type": "add", "amount": 1})
    while len(seen) < 51:
        seen.append((await tail.__anext__())[1].seq)
    assert seen == list(range(1, 52))
    await tail.aclose()


async def test_store_failure_is_an_error_reply_and_the_entity_recovers(store):
    table = EntityTable(store)
    await table.ask("counter", "sf", {"type": "add", "amount": 1})
    real = store.append

    async def failing(*args, **kwargs):
        from runtime.stores.base import StoreError

        raise StoreError("disk full")

    store.append = failing
    reply = await table.ask("counter", "sf", {"type": "add", "amount": 1})
    assert reply.code == "unavailable" and "disk full" in reply.message
    store.append = real
    assert (await table.ask("counter", "sf", {"type": "add", "amount": 1})).version == 2


async def test_at_the_cap_with_every_entity_busy_a_new_one_still_activates(store):
    table = EntityTable(store, max_resident=2)
    tails = [table.subscribe("counter", name, 1) for name in ("t1", "t2")]
    for name in ("t1", "t2"):
        await table.ask("counter", name, {"type": "add", "amount": 1})
    for tail in tails:
        await tail.__anext__()  # both tailed: neither may be evicted
    outcome = await asyncio.wait_for(table.ask("counter", "new", {"type": "add", "amount": 1}), 5)
    assert outcome.version == 1 and table.resident == 3  # above the cap, not stuck
    for tail in tails:
        await tail.aclose()
