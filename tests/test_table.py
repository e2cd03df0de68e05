"""EntityTable (what a host runs) in-process on a real SQLite file: the mechanisms whose
effects are hard to see through Ray: LRU order, the activation bound, subscriber overflow."""

from __future__ import annotations

import asyncio

import pytest

import actors  # noqa: F401
import runtime.host.cells as host_cells
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


async def test_an_entity_at_rest_leaves_memory_when_its_command_ends(store, monkeypatch):
    """A kind that says when a state is done with (a finished episode) gives its memory back
    at once; a later command reloads it from the log with its state intact; a tailed one
    stays until its tail ends; the command's context can no longer commit."""
    from runtime.registry import get_kind

    monkeypatch.setattr(get_kind("counter"), "at_rest", lambda state: state["total"] >= 10)
    table = EntityTable(store)
    contexts = []
    real_decide = get_kind("counter").decide

    async def decide(state, command, ctx):
        contexts.append(ctx)
        return await real_decide(state, command, ctx)

    monkeypatch.setattr(get_kind("counter"), "decide", decide)
    await table.ask("counter", "busy", {"type": "add", "amount": 3})
    await table.ask("counter", "done", {"type": "add", "amount": 10})
    assert table.resident_streams() == ["counter/busy"]
    out = await table.ask("counter", "done", {"type": "add", "amount": 1}, with_state=True)
    assert (out.version, out.state["total"]) == (2, 11)
    assert table.resident_streams() == ["counter/busy"]
    tail = table.subscribe("counter", "busy", 1)
    assert (await tail.__anext__())[1].seq == 1
    await table.ask("counter", "busy", {"type": "add", "amount": 10})
    assert table.resident_streams() == ["counter/busy"]  # tailed: stays
    await tail.aclose()
    with pytest.raises(RuntimeError, match="has ended"):
        await contexts[0].commit(NewEvent("added", {"amount": 1}))


async def test_a_tail_of_an_entity_at_rest_activates_it_once(store, monkeypatch):
    """A tail opened on an entity at rest that is not resident (a finished batch the console
    opens) activates it once and keeps it while it follows. Before, the activation released
    the cell before the tail followed it, so the cell was passivated at once and the tail
    activated its successor again and again, holding its host's event loop."""
    from runtime.registry import get_kind

    monkeypatch.setattr(get_kind("counter"), "at_rest", lambda state: state["total"] >= 10)
    table = EntityTable(store)
    await table.ask("counter", "done", {"type": "add", "amount": 10})
    assert table.resident_streams() == []
    loads, real_load = [], table._load

    async def load(cell):  # the bug never gave the loop back: fail, not hang, on a repeat
        loads.append(cell.stream)
        assert len(loads) < 5, f"activated {len(loads)} times for one tail"
        await real_load(cell)

    monkeypatch.setattr(table, "_load", load)
    before = table.counters["activations"]
    tail = table.subscribe("counter", "done", 1)
    assert (await asyncio.wait_for(tail.__anext__(), 5))[1].seq == 1
    follow = asyncio.ensure_future(tail.__anext__())  # waits for a next event
    await asyncio.sleep(0.3)
    assert table.counters["activations"] - before == 1 and loads == ["counter/done"]
    assert table.resident_streams() == ["counter/done"]
    await table.ask("counter", "done", {"type": "add", "amount": 1})
    assert (await asyncio.wait_for(follow, 5))[1].seq == 2
    await tail.aclose()


async def test_a_query_reads_the_committed_state_where_it_lives(store):
    """While a long command runs, a query answers from what it has committed so far; an
    entity not in memory is activated from its log; an unknown query is refused by name."""
    table = EntityTable(store)
    await table.ask("counter", "c", {"type": "add", "amount": 5})
    table.passivate_all()
    assert await table.query("counter", "c", "total") == 5  # from the log
    long = asyncio.ensure_future(table.ask("counter", "c", {"type": "count_to", "n": 2000}))
    await asyncio.sleep(0)
    assert await table.query("counter", "c", "total") == 5  # busy: what is committed
    assert (await long).version == 2
    assert await table.query("counter", "c", "total") == 2005
    refused = await table.query("counter", "c", "nothing")
    assert (refused.code, "'nothing'" in refused.message) == ("unknown_query", True)


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
    monkeypatch.setattr(host_cells, "SUBSCRIBER_BUFFER", 5)
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


# ---------------------------------------------------------------- long work: commits, recovery

async def test_a_job_commits_its_steps_as_it_goes(store):
    table = EntityTable(store)
    tail = table.subscribe("counter", "j1", 1)
    job = asyncio.create_task(table.ask("counter", "j1",
                                        {"type": "job", "steps": 3, "interval": 0.05}))
    seen = [(await asyncio.wait_for(tail.__anext__(), 5))[1].type for _ in range(2)]
    assert seen == ["job_started", "job_step"] and not job.done()  # durable before the end
    outcome = await job
    assert [e.type for e in outcome.events] == ["job_started", "job_step", "job_step",
                                                "job_step", "job_finished"]
    assert [e.seq for e in outcome.events] == [1, 2, 3, 4, 5] and outcome.version == 5
    assert [e.type for e in await store.read("counter/j1")] == [e.type for e in outcome.events]
    assert (await table.state("counter", "j1"))[1]["job"]["status"] == "finished"
    await tail.aclose()


async def test_a_job_whose_activation_died_is_marked_interrupted_by_the_next(store):
    dead = EntityTable(store)
    job = asyncio.create_task(dead.ask("counter", "j2",
                                       {"type": "job", "steps": 50, "interval": 0.02}))
    while await store.last_version("counter/j2") < 3:
        await asyncio.sleep(0.01)
    job.cancel()  # the host is gone mid-job: nothing closes it
    with pytest.raises(asyncio.CancelledError):
        await job
    stored = await store.read("counter/j2")
    assert stored[-1].type == "job_step"

    table = EntityTable(store)  # the host that takes over: a plain read brings it back
    version, state = await table.state("counter", "j2")
    assert state["job"]["status"] == "interrupted" and version == len(stored) + 1
    last = (await store.read("counter/j2"))[-1]
    assert (last.type, last.data) == ("job_interrupted",
                                       {"job": 1, "step": stored[-1].data["step"]})
    assert table.counters["recoveries"] == 1
    # once closed, later activations store nothing more
    again = EntityTable(store)
    assert (await again.state("counter", "j2"))[0] == version
    assert again.counters["recoveries"] == 0
    # and a new job runs normally
    outcome = await table.ask("counter", "j2", {"type": "job", "steps": 1})
    assert outcome.events[0].data == {"job": 2, "steps": 1}


async def test_a_fenced_job_stops_at_its_next_commit(store):
    """Two activations of one entity (the old host alive behind a partition): the new one's
    recovery closes the job, and the old one's next commit is refused. Nothing forks."""
    old, new = EntityTable(store), EntityTable(store)
    job = asyncio.create_task(old.ask("counter", "j3",
                                      {"type": "job", "steps": 200, "interval": 0.01}))
    while await store.last_version("counter/j3") < 3:
        await asyncio.sleep(0.01)
    assert (await new.state("counter", "j3"))[1]["job"]["status"] == "interrupted"
    reply = await asyncio.wait_for(job, 10)
    assert reply.code == "conflict"
    types = [e.type for e in await store.read("counter/j3")]
    assert types[-1] == "job_interrupted" and types.count("job_interrupted") == 1
    assert "job_finished" not in types
    seqs = [e.seq for e in await store.read("counter/j3")]
    assert seqs == list(range(1, len(seqs) + 1))
    # the old activation reloads: it sees the job closed and takes new commands
    outcome = await old.ask("counter", "j3", {"type": "add", "amount": 1})
    assert outcome.version == len(seqs) + 1


async def test_bad_job_arguments_are_refused_and_store_nothing(store):
    table = EntityTable(store)
    for bad in ({"steps": 0}, {"steps": "3"}, {"steps": 2, "interval": -1},
                {"steps": 2, "interval": True}, {}):
        reply = await table.ask("counter", "j4", {"type": "job", **bad})
        assert reply.code == "invalid", bad
    assert await store.last_version("counter/j4") == 0
