"""The agent chat family's routes.

WebSocket /chat/{chat_id}
- In: {"type": "client", "message", "message_id"} (a frame without "type" is a client message
  too, as the original's clients send); {"type": "get_history"}; {"type": "stop",
  "message_id"} (ours) stops that message's run.
- Out: {"type": "agent_step", "step_type", "message", "message_id", "chat_id"} per step, then
  {"type": "message_end", "message_id", "chat_id"}. message_id is the client's. Every client
  connected to a chat sees its steps live; the sender's hang-up does not stop its message.
- Errors: {"type": "agent_error", "error", "chat_id", "message_id"?}, then message_end when the
  error ends a message, so a client's spinner always stops. Bad JSON, missing fields, a binary
  or oversized frame: an agent_error, and the socket stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, WebSocket

from actors.agent.memory import shown
from actors.chat import MAX_MESSAGE_CHARS
from api.agent_chat import service
from api.commands import Refused
from api.edge import EdgeRoute, detail_responses
from api.kit import Refusals
from api.runtime import Runtime, current, get_runtime
from api.ws import WebSocketSession
from runtime.events import Event
from schemas.agent_chat import (AgentError, AgentStep, ChatHistory, HistoryRow, MessageEnd,
                                RunRequest, RunStep)

__all__ = ["REFUSALS", "router"]

#: the service's refusals as this document's statuses (FastAPI's {"detail"} shape)
REFUSALS = Refusals({"invalid": 422, "deadline": 504})
router = APIRouter(tags=["agent chat"], route_class=EdgeRoute.refusing(REFUSALS),
                   responses=detail_responses(404, 422, 504))
Rt = Annotated[Runtime, Depends(get_runtime)]
_CHAT_ID = re.compile(r"^[^\x00-\x1f/]{1,256}$")


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


#: how a message that did not finish ends in its history: a row of its own, so a client
#: reading the history sees the message ended (and why) rather than a run that never stops
_UNFINISHED = ("message_failed", "message_stopped", "message_interrupted")


def history_rows(events: list[Event]) -> list[HistoryRow]:
    rows = []
    for e in events:
        if e.type == "user_message":
            rows.append(HistoryRow(role="user", content=e.data["message"], step_type=None,
                                   timestamp=_when(e.timestamp)))
        elif e.type == "agent_step":
            rows.append(HistoryRow(role="agent", content=shown(e.data["message"]),
                                   step_type=e.data["step_type"],
                                   timestamp=_when(e.timestamp)))
        elif e.type in _UNFINISHED:
            rows.append(HistoryRow(role="agent", step_type=e.type,
                                   content=e.data.get("error") or e.data.get("reason") or "",
                                   timestamp=_when(e.timestamp)))
    return rows


async def _history(rt: Runtime, chat_id: str) -> list[HistoryRow]:
    return history_rows(await service.events(rt, chat_id))


@router.get("/history/{chat_id}", response_model=list[HistoryRow])
async def get_history(chat_id: str, rt: Rt) -> list[HistoryRow]:
    """The chat's messages and steps in order; an unknown chat has none ([])."""
    return await _history(rt, chat_id)


# ------------------------------------------------------------------ stateless runs

@router.post("/agent/run", response_model=list[RunStep])
async def run_stateless(body: RunRequest, rt: Rt) -> list[RunStep]:
    """The agent on ``task`` alone: no memory read or written, nothing in any log. Bounded by
    ACTORLOG_AGENT_RUN_SECONDS (120): past it the run is stopped and the answer is a 504."""
    return [RunStep(step_type=r["step_type"], content=r["message"])
            for r in await service.run_task(rt, body.task)]


# ------------------------------------------------------------------ the chat socket

def frames_of(chat_id: str, event: Event) -> list[dict[str, Any]]:
    """The frames an event of the chat's log becomes."""
    data, mid = event.data, event.data.get("message_id")
    if event.type == "agent_step":
        return [AgentStep(step_type=data["step_type"], message=shown(data["message"]),
                          message_id=mid, chat_id=chat_id).model_dump()]
    if event.type == "message_ended":
        return [MessageEnd(message_id=mid, chat_id=chat_id).model_dump()]
    if event.type in ("message_failed", "message_stopped", "message_interrupted"):
        return failure_frames(chat_id, data.get("error") or data.get("reason") or "stopped",
                              mid)
    return []


def failure_frames(chat_id: str, error: str, message_id: str | None) -> list[dict[str, Any]]:
    """agent_error, then message_end when the error ends a message: a client's spinner always
    stops."""
    frames = [AgentError(error=error, chat_id=chat_id, message_id=message_id).model_dump()]
    if message_id is not None:
        frames.append(MessageEnd(message_id=message_id, chat_id=chat_id).model_dump())
    return frames


@router.websocket("/chat/{chat_id}")
async def chat_socket(websocket: WebSocket, chat_id: str) -> None:
    if not _CHAT_ID.match(chat_id):
        await websocket.close(code=1008, reason="invalid chat id")  # refused at the handshake
        return
    rt = current()

    def error(text: str, message_id: str | None = None) -> dict[str, Any]:
        return AgentError(error=text, chat_id=chat_id, message_id=message_id).model_dump()

    def fail(text: str, message_id: str | None) -> None:
        for frame in failure_frames(chat_id, text, message_id):
            session.push(frame)

    session = WebSocketSession(websocket, lambda code, text: error(text), text_only=True)
    await session.accept()
    start = await service.next_seq(rt, chat_id)
    pending: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize=64)

    async def follow() -> None:
        # Steps reach every client of the chat from its log, live: the sender's included.
        async with contextlib.aclosing(service.follow(rt, chat_id, start)) as events:
            async for event in events:
                for frame in frames_of(chat_id, event):
                    if not session.push(frame):
                        return

    async def submit() -> None:
        # One at a time, each once it is in the log: the chat runs them in the order sent.
        while True:
            message_id, text = await pending.get()
            try:
                if await service.send(rt, chat_id, message_id, text, _when(time.time())):
                    # a resend: the first's frames that this socket's tail began after
                    for e in await service.events_before(rt, chat_id, message_id, start):
                        for frame in frames_of(chat_id, e):
                            session.push(frame)
            except Refused as exc:
                fail(str(REFUSALS.error(exc).detail), message_id)

    async def read() -> None:
        while (frame := await session.receive()) is not None:
            await _handle(frame)

    async def _handle(frame: Any) -> None:
        if not isinstance(frame, dict):
            session.push(error("a frame is a JSON object"))
            return
        kind = frame.get("type", "client")
        if kind == "get_history":
            session.push(ChatHistory(chat_id=chat_id,
                                     history=await _history(rt, chat_id)).model_dump())
            return
        message_id = frame.get("message_id")
        message_id = message_id if isinstance(message_id, str) and message_id else None
        if kind == "stop":
            if message_id is None:
                session.push(error("stop needs the message_id of the message to stop"))
                return
            await service.stop(rt, chat_id, message_id)
            return
        if kind != "client":
            session.push(error(f"unknown frame type {kind!r}: send client, get_history or "
                               "stop", message_id))
            return
        text = frame.get("message")
        if message_id is None or not isinstance(text, str) or len(message_id) > 256:
            fail("Missing fields in JSON: a client frame needs message (a string) and "
                 "message_id (a non-empty string)", message_id)
            return
        if len(text) > MAX_MESSAGE_CHARS:
            fail(f"a message has at most {MAX_MESSAGE_CHARS} characters", message_id)
            return
        try:
            pending.put_nowait((message_id, text))
        except asyncio.QueueFull:
            fail("too many messages waiting on this connection", message_id)

    await session.run_until_gone(follow(), submit(), read(), reading=True)
