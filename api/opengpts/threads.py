"""/threads: list, create (POST), get, upsert (PUT), delete; state (current era), messages
(the older era's shapes) and history. State and history are replays of the thread's log."""

from __future__ import annotations

from typing import Annotated, AsyncIterator

import orjson
from fastapi import Depends, HTTPException, Query
from fastapi.responses import StreamingResponse

from api.opengpts import service
from api.opengpts.auth import User, authed_user
from api.opengpts.common import JSON, ClientId, messages_from, thread_view
from api.opengpts.common import router as family_router
from api.runtime import Runtime, get_runtime
from schemas.opengpts import (CheckpointRef, HistoryQuery, LegacyMessages, LegacyMessagesPost,
                              Status, Thread, ThreadFork, ThreadPayload, ThreadState,
                              ThreadStatePost)

router = family_router("/threads", "opengpts: threads")

Me = Annotated[User, Depends(authed_user)]
Rt = Annotated[Runtime, Depends(get_runtime)]


async def _put(rt: Runtime, me: User, tid: str, body: ThreadPayload, create_only: bool) -> JSON:
    # an assistant missing or private: not_found (OpenGPTs: a 500, or a thread nobody can run)
    return JSON(thread_view(tid, await service.put_thread(
        rt, me.user_id, tid, body.assistant_id, body.name, create_only)))


@router.get("/", response_model=list[Thread])
async def list_threads(me: Me, rt: Rt) -> JSON:
    directory = await service.directory(rt)
    return JSON([thread_view(i, d) for i, d in directory.threads_of(me.user_id)])


@router.post("", response_model=Thread)
async def create_thread(body: ThreadPayload, me: Me, rt: Rt) -> JSON:
    return await _put(rt, me, service.new_id(), body, create_only=True)


@router.get("/{tid}", response_model=Thread)
async def get_thread(tid: str, me: Me, rt: Rt) -> JSON:
    """A thread whose assistant was deleted names none (null), as in OpenGPTs."""
    return JSON(thread_view(tid, await service.thread(rt, me.user_id, tid)))


@router.put("/{tid}", response_model=Thread)
async def upsert_thread(tid: ClientId, body: ThreadPayload, me: Me, rt: Rt) -> JSON:
    """Creates under a client-chosen id, or renames / re-attaches one of the caller's own
    threads (the UI re-attaches orphans this way). Another user's id is 404, not a takeover."""
    return await _put(rt, me, tid, body, create_only=False)


@router.delete("/{tid}", response_model=Status)
async def delete_thread(tid: str, me: Me, rt: Rt) -> JSON:
    await service.delete_own(rt, "thread", tid, me.user_id)
    return JSON({"status": "ok"})


@router.get("/{tid}/state", response_model=ThreadState)
async def get_state(tid: str, me: Me, rt: Rt) -> JSON:
    thread, _ = await service.runnable(rt, me.user_id, tid)
    return JSON({"values": service.current_values(thread), "next": thread["next"]})


@router.post("/{tid}/state", response_model=None)
async def post_state(tid: str, body: ThreadStatePost, me: Me, rt: Rt) -> JSON:
    """Messages with a known id replace it (an edit), others are appended. The thread is the
    one in the path: a thread_id in ``config`` cannot redirect the write (OpenGPTs let it)."""
    _, assistant = await service.runnable(rt, me.user_id, tid)
    if isinstance(body.values, list):
        messages = [m.to_dict() for m in body.values]
    else:
        raw = body.values.get("messages")
        if not isinstance(raw, list):
            raise HTTPException(422, [{"type": "missing", "loc": ["body", "values", "messages"],
                                       "msg": "values must be a list of messages or "
                                              "{\"messages\": [...]}", "input": body.values}])
        messages = messages_from(raw, ["body", "values", "messages"])
    await service.write_messages(rt, me.user_id, tid, messages, assistant)
    return JSON(None)


@router.post("/{tid}/fork", response_model=Thread)
async def fork_thread(tid: str, body: ThreadFork, me: Me, rt: Rt) -> JSON:
    """Ours: a new thread of the caller's whose log is this one's up to ``checkpoint_id`` (a
    checkpoint of its history; the fork's first event says forked_from), with ``messages``
    written to it: one with a message's id replaces it, an edit to run again from there."""
    new, state = await service.fork_thread(rt, me.user_id, tid, body.checkpoint_id,
                                           [m.to_dict() for m in body.messages])
    return JSON(thread_view(new, state))


@router.get("/{tid}/messages", response_model=LegacyMessages)
async def get_messages(tid: str, me: Me, rt: Rt) -> JSON:
    """The older era: {"messages": [...], "resumeable": bool}."""
    thread = await service.settled_thread(rt, me.user_id, tid)
    return JSON({"messages": thread["messages"], "resumeable": bool(thread["next"])})


@router.post("/{tid}/messages")
async def post_messages(tid: str, body: LegacyMessagesPost, me: Me, rt: Rt) -> JSON:
    thread = await service.owned_thread(rt, me.user_id, tid)
    assistant = await service.visible_assistant(rt, me.user_id, thread["assistant_id"]) or {}
    await service.write_messages(rt, me.user_id, tid, [m.to_dict() for m in body.messages],
                                 assistant)
    return JSON(None)


HISTORY_DEFAULT, HISTORY_MAX = 10, 1000


def _before_id(before: str | CheckpointRef | None) -> str | None:
    """LangGraph's ``before``: a checkpoint id, or a config {"configurable":
    {"checkpoint_id": ...}} as its SDK sends it (the body's model checked which)."""
    if isinstance(before, CheckpointRef):
        return before.configurable.checkpoint_id
    return before or None


async def _history(rt: Runtime, me: User, tid: str, limit: int, before: str | None
                   ) -> StreamingResponse:
    """The service's page of versions, newest first, streamed out one entry at a time."""
    kept = await service.history(rt, me.user_id, tid, limit, before)

    async def body() -> AsyncIterator[bytes]:
        yield b"["
        for i, entry in enumerate(kept):
            yield (b"," if i else b"") + orjson.dumps(entry)
        yield b"]"

    return StreamingResponse(body(), media_type="application/json")


@router.get("/{tid}/history", response_class=StreamingResponse,
            responses={200: {"content": {"application/json": {}}}})
async def get_history(tid: str, me: Me, rt: Rt,
                      limit: Annotated[int, Query(ge=1, le=HISTORY_MAX)] = HISTORY_DEFAULT,
                      before: Annotated[str | None, Query(max_length=200)] = None
                      ) -> StreamingResponse:
    """One entry per version of the thread, newest first, ``limit`` at a time; the next page
    is ``before`` = the last entry's config.configurable.checkpoint_id."""
    return await _history(rt, me, tid, limit, before)


@router.post("/{tid}/history", response_class=StreamingResponse,
             responses={200: {"content": {"application/json": {}}}})
async def post_history(tid: str, body: HistoryQuery, me: Me, rt: Rt) -> StreamingResponse:
    """LangGraph's POST form: {"limit", "before"} in the body."""
    return await _history(rt, me, tid, body.limit, _before_id(body.before))
