"""The OpenGPTs entities as Python drivers use them (no HTTP): an EntityTable over a real
SQLite file. Refusals are clean ActorError-style replies, never crashes."""

from __future__ import annotations

import asyncio

import actors  # noqa: F401  (registers the kinds)
from llm.router import ModelRouter
from runtime.host import EntityTable, ErrorReply
from runtime.services import Services
from runtime.stores import open_store


def test_thread_refuses_unknown_message_types_and_strangers(tmp_path):
    async def main() -> None:
        store = open_store("sqlite://" + str(tmp_path / "e.db"))
        table = EntityTable(store, services=Services(store, models=ModelRouter()))
        put = {"type": "put", "user_id": "u", "assistant_id": "a", "name": "t",
               "metadata": None, "at": "now"}
        assert not isinstance(await table.ask("thread", "t1", put), ErrorReply)
        for bad in ("BogusMessageChunk", "bogus", None):
            reply = await table.ask("thread", "t1", {"type": "update_state", "user_id": "u",
                                                     "messages": [{"type": bad,
                                                                   "content": "x"}]})
            assert isinstance(reply, ErrorReply) and reply.code == "invalid", bad
        ok = await table.ask("thread", "t1", {"type": "update_state", "user_id": "u",
                                              "messages": [{"type": "HumanMessageChunk",
                                                            "content": "hi"}]})
        assert ok.events[0].data["messages"][0]["type"] == "human"
        stranger = await table.ask("thread", "t1", {**put, "user_id": "v"})
        assert isinstance(stranger, ErrorReply) and stranger.code == "not_found"
        assert (await table.state("thread", "t1"))[1]["owner"] == "u"
        await store.close()

    asyncio.run(main())
