"""The agent chat family's operations, callable from Python with no HTTP: a chat's log read,
a message sent (durable before it is acknowledged; it runs on in the chat's host) or stopped,
the agent run on a task with no chat, and, at start, chats a crash left with a message under
way closed. Refusals are api/commands.py's Refused; the routes and the socket
(api/agent_chat/routes.py) turn them into the document's errors and frames.

A message cut by a crash is closed as interrupted by its chat's recovery, which runs when the
chat is next activated. Waiting for the chat to be used again would leave /history showing a
message that never ends; so at start every chat with a message under way is activated (its
host's recovery then writes message_interrupted, or, if the message really runs on a live host,
nothing). Which chats those are comes from a checkpointed projection of the chats' message
events, so a start reads only what came after the last checkpoint."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator

from actors.agent.memory import record_of
from actors.agent.service import agent_tools
from actors.agent.settings import AgentSettings
from api.commands import Refused, refused
from api.runtime import Runtime, section
from llm.service import model_port
from runtime.client import ActorError, OutcomeUnknown, Unavailable
from runtime.events import Event, split_stream_id, stream_id
from runtime.projection import Projection, ProjectionRunner, one_per_store

__all__ = ["OpenChats", "close_interrupted", "events", "events_before", "follow",
           "next_seq", "run_task", "send", "stop"]

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


# ------------------------------------------------------------------ chats

def model_name() -> str | None:
    """The model agent chats use (ACTORLOG_AGENT_MODEL), or the default's."""
    return section(AgentSettings).model or None


async def events(rt: Runtime, chat_id: str, to_seq: int | None = None) -> list[Event]:
    """The chat's log (up to ``to_seq``); an unknown chat has none."""
    return [e async for e in rt.store.iter_stream(stream_id("chat", chat_id), to_seq=to_seq)]


async def next_seq(rt: Runtime, chat_id: str) -> int:
    """The seq the chat's next event will have: where a live tail starts."""
    return await rt.store.last_version(stream_id("chat", chat_id)) + 1


async def follow(rt: Runtime, chat_id: str, from_seq: int) -> AsyncIterator[Event]:
    """The chat's events from ``from_seq``, stored then live, with no gap."""
    subscription = rt.client.ref("chat", chat_id).asubscribe(from_seq)
    try:
        async for _what, event in subscription:
            yield event
    finally:
        await subscription.aclose()


async def events_before(rt: Runtime, chat_id: str, message_id: str, before: int
                        ) -> list[Event]:
    """The events of the last message sent as ``message_id``, before seq ``before``."""
    if before <= 1:
        return []
    found = await events(rt, chat_id, before - 1)
    sent = [i for i, e in enumerate(found)
            if e.type == "user_message" and e.data.get("message_id") == message_id]
    if not sent:
        return []
    return [e for e in found[sent[-1] + 1:] if e.data.get("message_id") == message_id]


async def send(rt: Runtime, chat_id: str, message_id: str, text: str, at: str) -> bool:
    """The message, in the chat's log before this returns; it runs on in the chat's host.
    True when it was a resend of one already taken (nothing new runs)."""
    stream = rt.client.ref("chat", chat_id).aask_stream({
        "type": "message", "message_id": message_id, "message": text, "model": model_name(),
        "at": at})
    try:
        _what, item = await anext(stream)  # {"accepted"}: durable; it runs on
    except (ActorError, OutcomeUnknown, Unavailable) as exc:
        raise refused(exc) from None
    except StopAsyncIteration:  # pragma: no cover - a host always ends with an outcome
        raise Refused("unavailable", "the message was not taken") from None
    finally:
        await stream.aclose()
    return isinstance(item, dict) and bool(item.get("duplicate"))


async def stop(rt: Runtime, chat_id: str, message_id: str) -> None:
    """Stop that message's run (only that one: a late signal never stops the next)."""
    await rt.client.ref("chat", chat_id).acancel("cancelled", where={"message_id": message_id})


# ------------------------------------------------------------------ runs with no chat

_LOCAL: dict[str, Any] = {}


def _local_services(rt: Runtime) -> tuple[Any, list[Any]]:
    """This process's model port and tools, for runs that belong to no entity."""
    if "models" not in _LOCAL:
        _LOCAL["models"] = model_port(rt.settings, rt.store)["models"]
        _LOCAL["tools"] = agent_tools(rt.settings, rt.store)["agent_tools"]
    return _LOCAL["models"], _LOCAL["tools"]


async def run_task(rt: Runtime, task: str) -> list[dict[str, Any]]:
    """The agent on ``task`` alone: its steps as records, no memory read or written, nothing
    in any log. Past ACTORLOG_AGENT_RUN_SECONDS it is stopped: Refused("deadline")."""
    from actors.agent.model import agent_for  # smolagents: imported on first use

    models, tools = _local_services(rt)
    agent = agent_for(models, tools, model_name(), asyncio.get_running_loop())

    def work() -> list[dict[str, Any]]:
        return [r for r in map(record_of, agent.run(task, stream=True, reset=True)) if r]

    seconds = section(AgentSettings).run_seconds
    try:
        return await asyncio.wait_for(asyncio.to_thread(work), seconds)
    except asyncio.TimeoutError:
        agent.interrupt()
        raise Refused("deadline", f"the agent did not finish within {seconds:g} s") from None
