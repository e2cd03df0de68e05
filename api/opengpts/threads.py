"""/threads: list, create (POST), get, upsert (PUT), delete; state (current era), messages
(the older era's shapes) and history. State and history are replays of the thread's log."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, AsyncIterator

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse

from actors.thread import CHECKPOINTS, values
from api.edge import EdgeRoute
from api.opengpts.auth import User, authed_user
from api.opengpts.common import (JSON, RESPONSES, bot_type, command, configurable, delete_own,
                                 ClientId, messages_from, now_iso, owned_thread, read,
                                 settled_thread, thread_view, valid_id, visible_assistant)
from api.opengpts.directory import directory_for
from api.runtime import Runtime, get_runtime
from runtime.events import stream_id
from runtime.registry import get_kind
from schemas.opengpts import (CheckpointRef, HistoryQuery, LegacyMessages, LegacyMessagesPost,
                              Status, Thread, ThreadPayload, ThreadState, ThreadStatePost)

router = APIRouter(prefix="/threads", tags=["opengpts: threads"],
                   route_class=EdgeRoute, responses=RESPONSES)

Me = Annotated[User, Depends(authed_user)]
Rt = Annotated[Runtime, Depends(get_runtime)]


async def _put(rt: Runtime, me: User, tid: str, body: ThreadPayload,
               create_only: bool) -> dict[str, Any]:
    assistant = await visible_assistant(rt, me.user_id, body.assistant_id)
    if assistant is None:  # OpenGPTs: a 500 (missing) or a thread nobody can run (private)
        raise HTTPException(404, "Assistant not found")
    at = now_iso()
    metadata = {"assistant_type": configurable(assistant).get("type") or "chatbot"}
    await command(rt, "thread", tid, {
        "type": "put", "user_id": me.user_id, "assistant_id": body.assistant_id,
        "name": body.name, "metadata": metadata, "at": at, "create_only": create_only})
    return thread_view(tid, {"user_id": me.user_id, "assistant_id": body.assistant_id,
                             "name": body.name, "at": at, "metadata": metadata})


@router.get("/", response_model=list[Thread])
async def list_threads(me: Me, rt: Rt) -> JSON:
    directory = directory_for(rt.store)
    await directory.catch_up()
    return JSON([thread_view(i, d) for i, d in directory.threads_of(me.user_id)])


@router.post("", response_model=Thread)
async def create_thread(body: ThreadPayload, me: Me, rt: Rt) -> JSON:
    return JSON(await _put(rt, me, str(uuid.uuid4()), body, create_only=True))


@router.get("/{tid}", response_model=Thread)
async def get_thread(tid: str, me: Me, rt: Rt) -> JSON:
    """A thread whose assistant was deleted names none (null), as in OpenGPTs."""
    thread = await owned_thread(rt, me.user_id, tid)
    aid = thread["assistant_id"]
    if aid and not (valid_id(aid) and (await read(rt, "assistant", aid))["exists"]):
        thread = {**thread, "assistant_id": None}
    return JSON(thread_view(tid, thread))


@router.put("/{tid}", response_model=Thread)
async def upsert_thread(tid: ClientId, body: ThreadPayload, me: Me, rt: Rt) -> JSON:
    """Creates under a client-chosen id, or renames / re-attaches one of the caller's own
    threads (the UI re-attaches orphans this way). Another user's id is 404, not a takeover."""
    return JSON(await _put(rt, me, tid, body, create_only=False))


@router.delete("/{tid}", response_model=Status)
async def delete_thread(tid: str, me: Me, rt: Rt) -> JSON:
    await delete_own(rt, "thread", tid, me.user_id)
    return JSON({"status": "ok"})


async def _runnable(rt: Runtime, me: User, tid: str) -> tuple[dict, dict]:
    """The caller's thread and its assistant; 400 when the assistant is gone."""
    thread = await settled_thread(rt, me.user_id, tid)
    assistant = await visible_assistant(rt, me.user_id, thread["assistant_id"])
    if assistant is None:
        raise HTTPException(400, "Thread has no assistant")
    return thread, assistant


def _current_values(thread: dict[str, Any]) -> Any:
    v = values(thread) if thread["checkpoints"] else None
    return v or None


@router.get("/{tid}/state", response_model=ThreadState)
async def get_state(tid: str, me: Me, rt: Rt) -> JSON:
    thread, _ = await _runnable(rt, me, tid)
    return JSON({"values": _current_values(thread), "next": thread["next"]})


async def _write(rt: Runtime, me: User, tid: str, messages: list[dict[str, Any]],
                 assistant: dict[str, Any]) -> None:
    kind = bot_type(configurable(assistant))
    await command(rt, "thread", tid, {"type": "update_state", "user_id": me.user_id,
                                      "messages": messages, "bot_type": kind,
                                      "dict_state": kind == "chat_retrieval"})


@router.post("/{tid}/state", response_model=None)
async def post_state(tid: str, body: ThreadStatePost, me: Me, rt: Rt) -> JSON:
    """Messages with a known id replace it (an edit), others are appended. The thread is the
    one in the path: a thread_id in ``config`` cannot redirect the write (OpenGPTs let it)."""
    _, assistant = await _runnable(rt, me, tid)
    if isinstance(body.values, list):
        messages = [m.to_dict() for m in body.values]
    else:
        raw = body.values.get("messages")
        if not isinstance(raw, list):
            raise HTTPException(422, [{"type": "missing", "loc": ["body", "values", "messages"],
                                       "msg": "values must be a list of messages or "
                                              "{\"messages\": [...]}", "input": body.values}])
        messages = messages_from(raw, ["body", "values", "messages"])
    await _write(rt, me, tid, messages, assistant)
    return JSON(None)


@router.get("/{tid}/messages", response_model=LegacyMessages)
async def get_messages(tid: str, me: Me, rt: Rt) -> JSON:
    """The older era: {"messages": [...], "resumeable": bool}."""
    thread = await settled_thread(rt, me.user_id, tid)
    return JSON({"messages": thread["messages"], "resumeable": bool(thread["next"])})


@router.post("/{tid}/messages")
async def post_messages(tid: str, body: LegacyMessagesPost, me: Me, rt: Rt) -> JSON:
    thread = await owned_thread(rt, me.user_id, tid)
    assistant = await visible_assistant(rt, me.user_id, thread["assistant_id"]) or {}
    await _write(rt, me, tid, [m.to_dict() for m in body.messages], assistant)
    return JSON(None)


def _checkpoint(tid: str, seq: int) -> dict[str, Any]:
    return {"configurable": {"thread_id": tid, "checkpoint_ns": "",
                             "checkpoint_id": str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                             f"thread/{tid}#{seq}"))}}


HISTORY_DEFAULT, HISTORY_MAX = 10, 1000


def _before_id(before: str | CheckpointRef | None) -> str | None:
    """LangGraph's ``before``: a checkpoint id, or a config {"configurable":
    {"checkpoint_id": ...}} as its SDK sends it (the body's model checked which)."""
    if isinstance(before, CheckpointRef):
        return before.configurable.checkpoint_id
    return before or None


async def _history(rt: Runtime, me: User, tid: str, limit: int, before: str | None
                   ) -> StreamingResponse:
    """Versions of the thread, newest first: at most ``limit``, older than checkpoint
    ``before`` when given (LangGraph's paging). Two passes over the log: the first finds the
    checkpoints the page holds, the second folds up to the newest of them and copies the
    values at those only (the fold works in place, so a copy per checkpoint of a long thread
    would make the whole history quadratic). Memory is bounded by the page; it is streamed
    out one entry at a time."""
    await _runnable(rt, me, tid)
    stream = stream_id("thread", tid)
    checkpoints: list[int] = []  # seqs of checkpoint events, oldest first
    async for event in rt.store.iter_stream(stream):
        if event.type in CHECKPOINTS:
            if before is not None and _checkpoint(tid, event.seq)["configurable"][
                    "checkpoint_id"] == before:
                break
            checkpoints.append(event.seq)
    else:
        if before is not None:
            raise HTTPException(404, "Checkpoint not found")
    page = checkpoints[-limit:]
    wanted = set(page)
    parents = {seq: (_checkpoint(tid, checkpoints[i - 1]) if i else None)
               for i, seq in enumerate(checkpoints) if seq in wanted}
    kept: list[dict[str, Any]] = []
    if page:
        kind = get_kind("thread")
        state = kind.initial_state()
        async for event in rt.store.iter_stream(stream, page[-1]):
            state = kind.apply(state, event)
            if event.seq in wanted:
                shown = values(state)
                shown = list(shown) if isinstance(shown, list) else {
                    **shown, "messages": list(shown["messages"])}
                kept.append({"values": shown, "next": list(state["next"]),
                             "config": _checkpoint(tid, event.seq),
                             "parent": parents[event.seq]})

    async def body() -> AsyncIterator[bytes]:
        yield b"["
        for i, entry in enumerate(reversed(kept)):
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
