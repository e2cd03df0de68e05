"""Thread state that does not grow quadratically (issue 10, part 6): messages fold in place,
documents live in a stream of their own that threads and assistants reference by generation,
and what older versions wrote (documents in a thread's own log, format-1 snapshots) still
reads. In this process, on the in-memory store."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import actors  # noqa: F401  (registers the kinds)
from actors.documents import chunks_for, documents_id
from actors.thread import thread
from llm.router import ModelRouter
from runtime.events import NewEvent, encode
from runtime.host import EntityTable, ErrorReply, replay
from runtime.services import Services
from runtime.stores.memory import MemoryEventStore

USER = "u-1"


def _table() -> tuple[EntityTable, MemoryEventStore]:
    store = MemoryEventStore(f"growth-{uuid.uuid4().hex}")
    return EntityTable(store, services=Services(store, models=ModelRouter())), store


async def _ok(reply: Any) -> Any:
    reply = await reply
    assert not isinstance(reply, ErrorReply), reply
    return reply


def _put(user: str = USER) -> dict[str, Any]:
    return {"type": "put", "user_id": user, "name": "t", "assistant_id": None,
            "metadata": None, "at": "now"}


def _say(text: str, msg_id: str | None = None) -> dict[str, Any]:
    return {"type": "update_state", "user_id": USER, "bot_type": "chatbot",
            "messages": [{"type": "human", "content": text, "id": msg_id or uuid.uuid4().hex}]}


def _retrieval_run(question: str) -> dict[str, Any]:
    return {"type": "run", "user_id": USER, "run_id": str(uuid.uuid4()),
            "bot": {"type": "chat_retrieval", "model": "x"}, "dict_state": True, "at": "now",
            "input": [{"type": "human", "content": question}]}


async def _answers(table: EntityTable, tid: str, question: str) -> str:
    queue: asyncio.Queue = asyncio.Queue()
    await _ok(table.ask("thread", tid, _retrieval_run(question), progress=queue))
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return repr(items)


def test_messages_fold_in_place_and_an_edit_replaces_by_id():
    async def main() -> None:
        table, store = _table()
        await _ok(table.ask("thread", "t", _put()))
        _, state = await table.state("thread", "t")
        messages = state["messages"]
        for i in range(50):
            await _ok(table.ask("thread", "t", _say(f"m{i}", f"id-{i}")))
        await _ok(table.ask("thread", "t", _say("edited", "id-3")))
        _, state = await table.state("thread", "t")
        assert state["messages"] is messages  # appended to, never copied
        assert len(messages) == 50 and messages[3]["content"] == "edited"
        replayed, version, _ = await replay(store, thread, "thread/t", None)
        assert [m["content"] for m in replayed["messages"]] == [m["content"] for m in messages]
        assert replayed["message_index"]["id-49"] == 49
        assert "message_index" not in thread.to_snapshot(replayed)

    asyncio.run(main())


def test_documents_are_a_stream_of_their_own_that_the_thread_refers_to():
    async def main() -> None:
        table, store = _table()
        await _ok(table.ask("thread", "t", _put()))
        target = documents_id("thread", "t", 1)
        chunk = "the launch code is 4711 " + "x" * 900
        await _ok(table.ask("documents", target, {"type": "ingest", "user_id": USER,
                                                  "source": "f.txt", "chunks": [chunk] * 50,
                                                  "at": "now"}))
        assert "4711" in await _answers(table, "t", "what is the launch code?")
        # the thread's own log holds the run (the passages it cited), not the documents
        assert "documents_ingested" not in [e.type for e in await store.read("thread/t")]
        _, state = await table.state("thread", "t")
        assert len(encode(thread.to_snapshot(state))) < 20_000
        # nobody else may add to it, and its chunks are given to their owner only
        refused = await table.ask("documents", target, {"type": "ingest", "user_id": "eve",
                                                        "source": "x", "chunks": ["x"],
                                                        "at": "now"})
        assert isinstance(refused, ErrorReply) and refused.code == "not_found"
        _, docs = await table.state("documents", target)
        assert len(chunks_for(docs, USER)) == 50 and chunks_for(docs, "eve") == []
        # deleted and created again: a new generation, none of the old documents
        await _ok(table.ask("thread", "t", {"type": "delete", "user_id": USER, "at": "now"}))
        await _ok(table.ask("thread", "t", _put()))
        _, state = await table.state("thread", "t")
        assert state["generation"] == 2
        assert "4711" not in await _answers(table, "t", "what is the launch code?")

    asyncio.run(main())


def test_what_older_versions_wrote_still_reads():
    """Documents in the thread's own log (before they had a stream) are still retrieved, and
    a format-1 snapshot (no generation) is ignored: the thread is folded from its log."""
    async def main() -> None:
        table, store = _table()
        await store.append("thread/old", [
            NewEvent("created", {"user_id": USER, "assistant_id": None, "name": "t",
                                 "metadata": None, "at": "then"}),
            NewEvent("documents_ingested", {"documents": [
                {"id": "d1", "source": "old.txt", "namespace": "old",
                 "text": "the old code is 1234"}], "at": "then"})], 0)
        await store.save_snapshot("thread/old", 2, {"exists": True, "owner": USER,
                                                    "messages": [], "documents": []})
        _, state = await table.state("thread", "old")
        assert state["generation"] == 1 and len(state["documents"]) == 1
        assert "1234" in await _answers(table, "old", "what is the old code?")

    asyncio.run(main())
