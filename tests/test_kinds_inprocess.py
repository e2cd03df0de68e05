"""Fast tests of the entity kinds and OpenGPTs' graphs, in this process: an EntityTable over the
in-memory store (which passes the same conformance suite as SQLite and PostgreSQL), the
built-in model, no Ray, no HTTP. The real-store, real-Ray tests stay beside these."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

import actors  # noqa: F401  (registers the kinds)
from actors.gpts import documents as docs
from actors.gpts.messages import add_messages, normalize
from llm.router import ModelRouter
from runtime.host import EntityTable, ErrorReply
from runtime.services import Services
from runtime.stores.memory import MemoryEventStore

USER = "u-1"


def _table(calls: int | None = None) -> EntityTable:
    store = MemoryEventStore(f"kinds-{uuid.uuid4().hex}")
    models = ModelRouter({"providers": {"slow": {"type": "builtin", "delay": 0.01}},
                          "aliases": {"slow": "slow"}},
                         None if calls is None else (lambda spec: calls))
    return EntityTable(store, services=Services(store, models=models))


async def _thread(table: EntityTable, tid: str, assistant_id: str | None = None) -> None:
    reply = await table.ask("thread", tid, {"type": "put", "user_id": USER, "name": "t",
                                            "assistant_id": assistant_id, "metadata": None,
                                            "at": "now"})
    assert not isinstance(reply, ErrorReply)


def _run(bot: dict[str, Any], text: str | None, **extra: Any) -> dict[str, Any]:
    return {"type": "run", "user_id": USER, "run_id": str(uuid.uuid4()), "bot": bot,
            "input": None if text is None else [{"type": "human", "content": text}],
            "dict_state": bot["type"] == "chat_retrieval", "at": "now", **extra}


def test_messages_reducer_replaces_by_id_and_appends_the_rest():
    a, b = normalize({"type": "human", "content": "a", "id": "1"}), \
        normalize({"type": "ai", "content": "b", "id": "2"})
    edited = normalize({"type": "human", "content": "a2", "id": "1"})
    out = add_messages([a, b], [edited, normalize({"type": "human", "content": "c"})])
    assert [m["content"] for m in out] == ["a2", "b", "c"]
    assert normalize({"type": "AIMessageChunk", "content": "x"})["type"] == "ai"


def test_documents_chunk_with_overlap_and_bm25_finds_the_right_one():
    text = " ".join(f"word{i}" for i in range(600))
    chunks = docs.chunk(text)
    assert len(chunks) > 1 and all(len(c) <= docs.CHUNK_SIZE for c in chunks)
    assert chunks[0][-50:] in chunks[1]  # 200 characters overlap
    corpus = [{"text": t, "source": s, "namespace": "n"} for s, t in (
        ("a", "apples are red"), ("b", "the sky is blue"), ("c", "grass grows green"),
        ("d", "snow falls white"), ("e", "coal burns black"))]
    assert docs.search(corpus, "what colour is the sky")[0]["source"] == "b"
    assert docs.search(corpus, "green grass")[0]["source"] == "c"


def test_a_chatbot_run_commits_each_step_and_answers():
    async def main() -> None:
        table = _table()
        await _thread(table, "t")
        outcome = await table.ask("thread", "t", _run({"type": "chatbot", "model": "x"},
                                                      "hello, my name is Ada"))
        assert [e.type for e in outcome.events] == ["run_started", "messages_written",
                                                    "messages_written", "run_finished"]
        _, state = await table.state("thread", "t")
        assert [m["type"] for m in state["messages"]] == ["human", "ai"]
        assert state["next"] == [] and state["run"]["status"] == "done"

    asyncio.run(main())


def test_an_agent_interrupted_before_its_tool_resumes_with_null_input():
    async def main() -> None:
        table = _table()
        await _thread(table, "t")
        bot = {"type": "agent", "model": "x", "tools": ["retrieval"],
               "interrupt_before_action": True}
        await table.ask("thread", "t", _run(bot, "search for the manual"))
        _, state = await table.state("thread", "t")
        assert state["next"] == ["action"] and state["messages"][-1]["tool_calls"]
        await table.ask("thread", "t", _run(bot, None))
        _, state = await table.state("thread", "t")
        assert [m["type"] for m in state["messages"]] == ["human", "ai", "tool", "ai"]
        assert state["next"] == []
        nothing = await table.ask("thread", "t", _run(bot, None))
        assert isinstance(nothing, ErrorReply) and nothing.code == "no_input"

    asyncio.run(main())


def test_retrieval_reads_the_visible_assistants_documents_only():
    async def main() -> None:
        table = _table()
        put = {"type": "put", "user_id": "owner", "name": "a", "config": {},
               "public": False, "at": "now"}
        assert not isinstance(await table.ask("assistant", "a", put), ErrorReply)
        await table.ask("documents", "assistant/a@1", {
            "type": "ingest", "user_id": "owner", "source": "s",
            "chunks": ["the code is 4711"], "at": "now"})
        await _thread(table, "t", assistant_id="a")
        bot = {"type": "chat_retrieval", "model": "x"}
        items: list[Any] = []
        queue: asyncio.Queue = asyncio.Queue()
        await table.ask("thread", "t", _run(bot, "what is the code?", assistant_id="a"),
                        progress=queue)
        while not queue.empty():
            items.append(queue.get_nowait())
        assert "4711" not in repr(items)  # USER may not see owner's private assistant
        await table.ask("assistant", "a", {**put, "public": True})
        await table.ask("thread", "t", _run(bot, "what is the code?", assistant_id="a"),
                        progress=queue)
        while not queue.empty():
            items.append(queue.get_nowait())
        assert "4711" in repr(items)

    asyncio.run(main())


@pytest.mark.parametrize("reason", ["cancelled", "deadline"])
def test_a_run_stopped_mid_answer_keeps_its_input_and_resumes(reason):
    async def main() -> None:
        table = _table()
        await _thread(table, "t")
        bot = {"type": "chatbot", "model": "slow"}
        words = " ".join(f"w{i}" for i in range(200))
        deadline = 0.3 if reason == "deadline" else None
        task = asyncio.ensure_future(table.ask("thread", "t", _run(bot, f"repeat {words}"),
                                               deadline=deadline))
        if reason == "cancelled":
            while table.cancel("thread", "t")["cancelled"] is False:
                await asyncio.sleep(0.01)
        outcome = await task
        assert outcome.events[-1].type == "run_cancelled"
        assert outcome.events[-1].data["reason"] == reason
        _, state = await table.state("thread", "t")
        assert [m["type"] for m in state["messages"]] == ["human"]
        assert state["next"] == ["chatbot"] and state["run"]["status"] == "cancelled"
        await table.ask("thread", "t", _run({"type": "chatbot", "model": "x"}, None))
        _, state = await table.state("thread", "t")
        assert [m["type"] for m in state["messages"]] == ["human", "ai"]

    asyncio.run(main())


def test_the_model_gate_queues_calls_beyond_its_limit():
    async def main() -> None:
        table = _table(calls=1)
        gate = table.services.models.gates["slow"]
        bot = {"type": "chatbot", "model": "slow"}
        for i in range(3):
            await _thread(table, f"t{i}")
        runs = [asyncio.ensure_future(table.ask("thread", f"t{i}", _run(bot, "say w1 w2 w3")))
                for i in range(3)]
        seen_waiting = 0
        while not all(r.done() for r in runs):
            assert gate.running <= 1
            seen_waiting = max(seen_waiting, gate.waiting)
            await asyncio.sleep(0.005)
        assert seen_waiting == 2
        assert all(r.result().events[-1].type == "run_finished" for r in runs)
        assert gate.stats() == {"limit": 1, "running": 0, "waiting": 0}

    asyncio.run(main())
