"""Chats whose log says a message is running, closed when the service starts.

A message cut by a crash is closed as interrupted by its chat's recovery, which runs when the
chat is next activated. Waiting for the chat to be used again would leave /history showing a
message that never ends; so at start every chat with a message under way is activated (its
host's recovery then writes message_interrupted, or, if the message really runs on a live host,
nothing). Which chats those are comes from a checkpointed projection of the chats' message
events, so a start reads only what came after the last checkpoint."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from api.runtime import Runtime
from runtime.events import Event, split_stream_id
from runtime.projection import Projection, ProjectionRunner, one_per_store

__all__ = ["OpenChats", "close_interrupted"]

log = logging.getLogger("ray.serve")
_ENDS = ("message_ended", "message_failed", "message_stopped", "message_interrupted")
AT_ONCE = 16  # activations at once: a start after a crash of thousands of chats is bounded


class OpenChats(Projection):
    """The ids of chats whose last message has not ended."""

    name = "agent-chat-open"
    kinds = ("chat",)
    types = ("user_message", *_ENDS)

    def __init__(self) -> None:
        self.open: set[str] = set()

    def apply(self, event: Event) -> None:
        chat_id = split_stream_id(event.stream)[1]
        if event.type == "user_message":
            self.open.add(chat_id)
        else:
            self.open.discard(chat_id)

    def dump(self) -> Any:
        return sorted(self.open)

    def load(self, data: Any) -> None:
        self.open = set(data)


async def close_interrupted(rt: Runtime) -> int:
    """Activate every chat with a message under way; returns how many were looked at."""
    runner = one_per_store("agent-chat-open", rt.store,
                           lambda store: ProjectionRunner(store, OpenChats()))
    await runner.catch_up()
    gate = asyncio.Semaphore(AT_ONCE)

    async def one(chat_id: str) -> None:
        async with gate:
            try:
                await rt.client.ref("chat", chat_id).astate()  # activation runs recovery
            except Exception:  # noqa: BLE001 - one chat's trouble must not stop the rest
                log.exception("agent chat: could not recover chat %s", chat_id)

    chats = sorted(runner.projection.open)
    await asyncio.gather(*(one(c) for c in chats))
    if chats:
        log.info("agent chat: %d chats with a message under way looked at", len(chats))
    return len(chats)
