"""Fork (issue 22): a new entity whose log starts with another's events up to a version, then
goes on by itself. On EntityTable over the memory store (what a host runs), no Ray."""

from __future__ import annotations

import uuid

import actors  # noqa: F401  (the counter kind)
from actors.sotopia import builtin_data
from actors.sotopia.episode import EPISODE, outcome_of, should_resume
from llm.router import ModelRouter
from runtime.host import EntityTable, ErrorReply
from runtime.services import Services
from runtime.stores.memory import MemoryEventStore


def _table() -> EntityTable:
    store = MemoryEventStore(f"fork-{uuid.uuid4().hex}")
    models = ModelRouter({"providers": {"slow": {"type": "builtin", "delay": 0.001}}})
    return EntityTable(store, services=Services(store, models=models))


async def test_a_fork_copies_the_log_up_to_a_version_and_then_goes_its_own_way():
    table = _table()
    for amount in (1, 2, 3, 4):
        await table.ask("counter", "src", {"type": "add", "amount": amount})
    reply = await table.fork("counter", "copy", "src", 2)
    assert not isinstance(reply, ErrorReply), reply
    copied = await table.store.read("counter/copy", 1)
    source = await table.store.read("counter/src", 1, 2)
    assert [(e.type, e.data) for e in copied] == [(e.type, e.data) for e in source]
    assert copied[0].metadata["forked_from"] == {"stream": "counter/src", "version": 2}
    assert all(not (e.metadata or {}).get("forked_from") for e in copied[1:])
    assert (await table.state("counter", "copy"))[1] == (await table.state("counter", "src", 2))[1]
    await table.ask("counter", "copy", {"type": "add", "amount": 100})  # its own way
    assert (await table.state("counter", "copy"))[1]["total"] == 1 + 2 + 100
    assert (await table.state("counter", "src"))[1]["total"] == 1 + 2 + 3 + 4


async def test_a_fork_is_refused_onto_an_entity_with_events_or_past_the_source():
    table = _table()
    await table.ask("counter", "src", {"type": "add", "amount": 1})
    await table.ask("counter", "taken", {"type": "add", "amount": 1})
    taken = await table.fork("counter", "taken", "src", 1)
    assert isinstance(taken, ErrorReply) and taken.code == "exists"
    beyond = await table.fork("counter", "new", "src", 5)
    assert isinstance(beyond, ErrorReply) and beyond.code == "bad_request"
    assert await table.store.last_version("counter/new") == 0  # nothing written
    zero = await table.fork("counter", "new", "src", 0)
    assert isinstance(zero, ErrorReply) and zero.code == "bad_request"


def _setup() -> dict:
    return {"env_id": builtin_data.SCENARIOS[0]["pk"],
            "agent_ids": [a["pk"] for a in builtin_data.AGENTS[:2]],
            "scenario": builtin_data.SCENARIOS[0], "agents": builtin_data.AGENTS[:2],
            "models": ["builtin", "builtin", "builtin"], "max_turns": 8, "tag": "fork",
            "dimension_list": "sotopia", "dimensions": builtin_data.SOTOPIA_DIMENSIONS,
            "humans": [False, False]}


async def test_an_episode_forked_at_turn_two_with_another_model_goes_on_from_there():
    table = _table()
    await table.ask(EPISODE, "src", {"type": "start", "setup": _setup()})
    events = await table.store.read(f"{EPISODE}/src", 1)
    at = [e.seq for e in events if e.type == "turn"][1]  # after its second turn
    assert not isinstance(await table.fork(EPISODE, "fork", "src", at), ErrorReply)
    _, cut = await table.state(EPISODE, "fork")
    # the copy's open run, held for whoever forked it (never the resume sweep's to carry on)
    assert cut["status"] == "forked" and len(cut["steps"]) == 2
    assert not should_resume(outcome_of(cut), None)  # the sweep leaves it to its forker
    refused = await table.ask(EPISODE, "fork", {"type": "resume", "models": ["builtin"]})
    assert isinstance(refused, ErrorReply) and refused.code == "invalid"
    await table.ask(EPISODE, "fork", {"type": "resume",
                                      "models": ["builtin", "builtin", "slow"]})
    _, done = await table.state(EPISODE, "fork")
    assert done["status"] == "completed" and done["setup"]["models"] == [
        "builtin", "builtin", "slow"]
    assert done["steps"][:2] == (await table.state(EPISODE, "src", at))[1]["steps"]
    types = [e.type for e in await table.store.read(f"{EPISODE}/fork", 1)]
    assert types[at:at + 3] == ["forked", "models_changed", "resumed"]
    # an episode that has ended is left alone: no model changes under a finished result
    await table.ask(EPISODE, "fork", {"type": "resume", "models": ["x", "x", "x"]})
    assert (await table.state(EPISODE, "fork"))[1]["setup"]["models"][0] == "builtin"
