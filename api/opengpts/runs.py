"""/runs: start a run in its thread actor, in the background (POST /runs) or streamed as
server-sent events (POST /runs/stream); the three schema documents; /ingest.

A run lives in the thread's actor, not in the request: POST /runs answers at once, and a
stream whose client goes away leaves the run going to its end. Either way the thread's log has
every step and the outcome.

Stream framing (data events):
- "list", the current era (OpenGPTs since 2024-04): a JSON array of the messages that are new
  or changed; the first holds the whole thread; tokens come as the accumulated message.
- "object", the first era (and API.md's example, which reads json["messages"][-1]): an object
  {"messages": [the whole thread so far]}.
Choose with ?stream_format=list|object or the X-Stream-Format header. Without either, a body
in the first era's shape (an assistant_id and {"messages": [...]} input, which no client of
the current era sends) gets "object"; everything else gets "list".
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Annotated, Any, AsyncIterator

import orjson
from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent

from actors.gpts.documents import UnsupportedFile, chunk, parse
from api.opengpts.auth import User, authed_user
from api.opengpts.common import (JSON, bot_type, command, configurable, messages_from, now_iso,
                                 owned_thread, valid_id, visible_assistant)
from api.runtime import Runtime, get_runtime
from runtime.client import ActorError, OutcomeUnknown, Unavailable
from schemas.opengpts import (CreateRunPayload, config_schema, input_schema, output_schema,
                              tool_type)

router = APIRouter(prefix="/runs", tags=["opengpts: runs"])
ingest_router = APIRouter(tags=["opengpts: runs"])

Me = Annotated[User, Depends(authed_user)]
Rt = Annotated[Runtime, Depends(get_runtime)]

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
SSE_HEADERS = {"Cache-Control": "no-cache", "Connection": "keep-alive",
               "X-Accel-Buffering": "no"}
_background: set[asyncio.Task] = set()


def _bot(conf: dict[str, Any]) -> dict[str, Any]:
    """The run's bot from the merged configurable (OpenGPTs' "type==<type>/<field>" keys)."""
    kind = bot_type(conf)
    prefix = f"type=={kind}/"
    model = conf.get(prefix + ("agent_type" if kind == "agent" else "llm_type")) \
        or "GPT 3.5 Turbo"
    bot: dict[str, Any] = {"type": kind, "model": model,
                           "system_message": conf.get(prefix + "system_message")
                           or "You are a helpful assistant."}
    if kind == "agent":
        tools = [tool_type(t) for t in conf.get(prefix + "tools") or []]
        bot.update(tools=[t for t in tools if t is not None],
                   interrupt_before_action=bool(conf.get(prefix + "interrupt_before_action")),
                   retrieval_description=conf.get(prefix + "retrieval_description"))
    return bot


def _input_messages(raw: Any) -> list[dict[str, Any]] | None:
    """None (resume), or the new messages: from a list, {"messages": [...]}, a single message,
    or {} (no new message, as an omitted input means)."""
    if raw is None:
        return None
    if isinstance(raw, list):
        return [m.to_dict() for m in raw]
    if not raw:
        return []
    if "messages" in raw and isinstance(raw["messages"], list):
        items, loc = raw["messages"], ["body", "input", "messages"]
    elif "type" in raw or "role" in raw:
        items, loc = [raw], ["body", "input"]
    else:
        raise RequestValidationError([{
            "type": "value_error", "loc": ["body", "input"], "input": raw,
            "msg": 'input must be a list of messages, {"messages": [...]}, or null'}])
    return messages_from(items, loc)


async def _prepare(body: CreateRunPayload, me: User, rt: Runtime) -> dict[str, Any]:
    thread = await owned_thread(rt, me.user_id, body.thread_id)
    aid = body.assistant_id or thread["assistant_id"]
    if not aid:
        raise HTTPException(400, "Thread has no assistant")
    assistant = await visible_assistant(rt, me.user_id, aid)
    if assistant is None:
        raise HTTPException(404, "Assistant not found")
    run_conf = (body.config or {}).get("configurable") or {}
    conf = {**configurable(assistant), **(run_conf if isinstance(run_conf, dict) else {})}
    bot = _bot(conf)
    return {"type": "run", "user_id": me.user_id, "run_id": str(uuid.uuid4()),
            "input": _input_messages(body.input), "bot": bot,
            "dict_state": bot["type"] == "chat_retrieval", "at": now_iso()}


@router.post("")
async def create_run(body: CreateRunPayload, me: Me, rt: Rt) -> JSON:
    """Starts the run and answers at once; the run goes on in the thread's actor."""
    run_command = await _prepare(body, me, rt)
    ref = rt.client.ref("thread", body.thread_id)

    async def run() -> None:
        with contextlib.suppress(ActorError, OutcomeUnknown, Unavailable):
            await ref.aask(run_command)  # its outcome is in the thread's log

    task = asyncio.ensure_future(run())
    _background.add(task)
    task.add_done_callback(_background.discard)
    return JSON({"status": "ok"})


def _framing(request: Request, body: CreateRunPayload) -> str:
    chosen = request.query_params.get("stream_format") or request.headers.get("x-stream-format")
    if chosen in ("list", "object"):
        return chosen
    if chosen is not None:
        raise HTTPException(422, "stream_format must be 'list' or 'object'")
    first_era = body.assistant_id is not None and isinstance(body.input, dict) \
        and "messages" in body.input
    return "object" if first_era else "list"


def _data(payload: Any) -> ServerSentEvent:
    return ServerSentEvent(data=orjson.dumps(payload).decode(), event="data")


async def _events(rt: Runtime, thread_id: str, run_command: dict[str, Any], framing: str
                  ) -> AsyncIterator[ServerSentEvent]:
    yield ServerSentEvent(data=orjson.dumps({"run_id": run_command["run_id"]}).decode(),
                          event="metadata")
    thread: dict[str, dict[str, Any]] = {}  # id -> message, in first-seen order (object framing)
    try:
        async for what, item in rt.client.ref("thread", thread_id).aask_stream(run_command):
            if what != "progress":
                continue
            if "error" in item:
                yield ServerSentEvent(data=orjson.dumps(item["error"]).decode(), event="error")
            elif framing == "list":
                yield _data(item["messages"])
            else:
                for m in item["messages"]:
                    thread[m["id"]] = m
                yield _data({"messages": list(thread.values())})
    except ActorError as exc:
        status = {"not_found": 404, "no_input": 400, "invalid": 422}.get(exc.code, 500)
        yield ServerSentEvent(data=orjson.dumps({"status_code": status,
                                                 "message": exc.message}).decode(),
                              event="error")
    except (OutcomeUnknown, Unavailable):
        yield ServerSentEvent(data=orjson.dumps({
            "status_code": 503, "message": "the server running this thread stopped mid-run; "
            "the thread's state says how far it got"}).decode(), event="error")
    yield ServerSentEvent(event="end")


@router.post("/stream")
async def stream_run(body: CreateRunPayload, request: Request, me: Me, rt: Rt
                     ) -> EventSourceResponse:
    framing = _framing(request, body)
    run_command = await _prepare(body, me, rt)
    return EventSourceResponse(_events(rt, body.thread_id, run_command, framing),
                               headers=SSE_HEADERS, ping=15)


@router.get("/input_schema")
async def get_input_schema() -> JSON:
    return JSON(input_schema())


@router.get("/output_schema")
async def get_output_schema() -> JSON:
    return JSON(output_schema())


@router.get("/config_schema")
async def get_config_schema() -> JSON:
    return JSON(config_schema())


@ingest_router.post("/ingest")
async def ingest(me: Me, rt: Rt, files: Annotated[list[UploadFile], File()],
                 config: Annotated[str, Form()]) -> JSON:
    """Files are parsed (text, markdown, HTML, PDF), chunked, and stored as events of the
    assistant or thread named in ``config``: {"configurable": {"assistant_id" | "thread_id"}}.
    Answers one list of chunk ids per file."""
    try:
        conf = orjson.loads(config).get("configurable") or {}
    except (orjson.JSONDecodeError, AttributeError):
        raise HTTPException(422, 'config must be JSON: {"configurable": {"assistant_id": ...}}'
                            ) from None
    aid, tid = conf.get("assistant_id"), conf.get("thread_id")
    if bool(aid) == bool(tid) or not isinstance(aid or tid, str):
        raise HTTPException(422, "config.configurable needs exactly one of assistant_id or "
                                 "thread_id")
    if aid:
        state = await visible_assistant(rt, me.user_id, aid)
        if state is None or state["owner"] != me.user_id:
            raise HTTPException(404, "Assistant not found.")
        kind, entity_id = "assistant", aid
    else:
        if not valid_id(tid):
            raise HTTPException(404, "Thread not found.")
        try:
            await owned_thread(rt, me.user_id, tid)
        except HTTPException:
            raise HTTPException(404, "Thread not found.") from None
        kind, entity_id = "thread", tid
    out = []
    for upload in files:
        data = await upload.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise HTTPException(413, f"{upload.filename}: files are limited to "
                                     f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
        try:  # parsing a PDF is CPU work: off the event loop
            text = await asyncio.to_thread(parse, upload.filename or "", upload.content_type,
                                           data)
        except UnsupportedFile as exc:
            raise HTTPException(415, str(exc)) from None
        chunks = chunk(text)
        ids = [str(uuid.uuid4()) for _ in chunks]
        if chunks:
            await command(rt, kind, entity_id, {
                "type": "ingest", "user_id": me.user_id, "source": upload.filename or "upload",
                "chunks": chunks, "ids": ids, "at": now_iso()})
        out.append(ids)
    return JSON(out)
