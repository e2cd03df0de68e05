"""/runs: start a run in its thread actor, in the background (POST /runs) or streamed as
server-sent events (POST /runs/stream); the three schema documents; /ingest.

A run lives in the thread's actor, not in the request: POST /runs answers once the run is
durable and the run goes on. A stream whose client goes away stops its run (on_disconnect
"cancel", the default, as OpenGPTs) or leaves it going to its end ("continue"). Either way the
thread's log has the input, every step committed and the outcome (run_cancelled when stopped).

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
import logging
from typing import Annotated, Any, AsyncIterator

import orjson
from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile as StarletteUpload

from actors.gpts.documents import MAX_CHUNKS_PER_COMMAND, UnsupportedFile, chunk, parse
from api.commands import Refused
from api.edge import StrictJSONError, current_request_id, limits, strict_json
from api.opengpts import service
from api.opengpts.auth import User, authed_user
from api.opengpts.common import ID_CHARS, JSON, REFUSALS, messages_from
from api.opengpts.common import router as family_router
from api.runtime import Runtime, get_runtime
from runtime.client import ActorError, OutcomeUnknown, Unavailable
from schemas.opengpts import (CreateRunPayload, FeedbackPayload, Status, config_schema,
                              input_schema, output_schema)

router = family_router("/runs", "opengpts: runs")
ingest_router = family_router("", "opengpts: runs")
log = logging.getLogger("ray.serve")

Me = Annotated[User, Depends(authed_user)]
Rt = Annotated[Runtime, Depends(get_runtime)]

Items = service.Items
SSE_HEADERS = {"Cache-Control": "no-cache", "Connection": "keep-alive",
               "X-Accel-Buffering": "no"}


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
    run_conf = (body.config or {}).get("configurable") or {}
    return await service.prepare_run(rt, me.user_id, body.thread_id, body.assistant_id,
                                     _input_messages(body.input), run_conf)


@router.post("", response_model=Status)
async def create_run(body: CreateRunPayload, me: Me, rt: Rt) -> JSON:
    """Answers once the run is durably started; the run goes on in the thread's actor."""
    run_command = await _prepare(body, me, rt)
    stream, _ = await service.start_run(rt, body.thread_id, run_command)
    await stream.aclose()  # nobody reads its progress; the run goes on, its outcome logged
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


def _error(status: int, message: str) -> ServerSentEvent:
    return ServerSentEvent(data=orjson.dumps({"status_code": status, "message": message}
                                             ).decode(), event="error")


class _Hangup:
    """What a stream's hang-up does to its run. Sent once, whichever notices first: the
    response's background task (a client that went away) or the stream's own cleanup (a
    request cancelled under it, as Serve does). It names the run, so a signal that arrives
    after the run ended never stops the thread's next one."""

    _pending: set[asyncio.Task] = set()

    def __init__(self, rt: Runtime, thread_id: str, run_id: str, on_disconnect: str) -> None:
        self.rt, self.thread_id, self.run_id = rt, thread_id, run_id
        self.armed = on_disconnect == "cancel"

    def ended(self) -> None:
        """The run's outcome reached the stream: nothing is left to stop."""
        self.armed = False

    def fire(self) -> None:
        if not self.armed:
            return
        self.armed = False
        task = asyncio.get_running_loop().create_task(self._cancel())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _cancel(self) -> None:
        try:
            await service.stop_run(self.rt, self.thread_id, self.run_id)
        except Exception:  # noqa: BLE001 - the host is gone: its recovery closes the run
            log.warning("run %s: the cancel on hang-up was not delivered", self.run_id,
                        exc_info=True)

    async def __call__(self) -> None:  # the response's background task
        self.fire()


async def _events(run_id: str, stream: Items, first: tuple[str, Any], framing: str,
                  request_id: str | None, hangup: _Hangup) -> AsyncIterator[ServerSentEvent]:
    """metadata, data events, an error event when something failed, and always end: the
    stream is never cut, whatever goes wrong below it."""
    try:
        async for event in _frames(run_id, stream, first, framing, request_id, hangup):
            yield event
    finally:
        hangup.fire()  # a no-op once the run's outcome came through


async def _frames(run_id: str, stream: Items, first: tuple[str, Any], framing: str,
                  request_id: str | None, hangup: _Hangup) -> AsyncIterator[ServerSentEvent]:
    yield ServerSentEvent(data=orjson.dumps({"run_id": run_id}).decode(), event="metadata")
    thread: dict[str, dict[str, Any]] = {}  # id -> message, in first-seen order (object framing)

    async def items() -> Items:
        yield first
        async for item in stream:
            yield item

    try:
        async with contextlib.aclosing(stream):
            async for what, item in items():
                if what == "outcome":  # an outcome that failed was raised as ActorError
                    hangup.ended()
                    continue
                if "error" in item:  # the actor's code; the status is this edge's
                    failure = item["error"]
                    yield _error(REFUSALS.status(failure["code"]), failure["message"])
                elif framing == "list":
                    yield _data(item["messages"])
                else:
                    for m in item["messages"]:
                        thread[m["id"]] = m
                    yield _data({"messages": list(thread.values())})
    except ActorError as exc:
        hangup.ended()
        yield _error(REFUSALS.status(exc.code), exc.message)
    except (OutcomeUnknown, Unavailable):
        yield _error(503, "the server running this thread stopped mid-run; the thread's "
                          "state says how far it got")
    except Exception:  # noqa: BLE001 - logged with the request id; the client gets an error
        log.exception("run %s: its stream failed (request %s)", run_id, request_id)
        yield _error(500, f"internal error; request id {request_id}")
    yield ServerSentEvent(event="end")


@router.post("/stream", response_class=EventSourceResponse)
async def stream_run(body: CreateRunPayload, request: Request, me: Me, rt: Rt
                     ) -> EventSourceResponse:
    """Answers once the run is durably started: the metadata event's run_id is in the log
    before the first byte. A client that hangs up at any moment after stops the run
    (on_disconnect "cancel") or leaves it going to its end ("continue"); the input stays."""
    framing = _framing(request, body)
    run_command = await _prepare(body, me, rt)
    run_id = run_command["run_id"]
    try:
        stream, first = await service.start_run(rt, body.thread_id, run_command)
    except Refused as exc:
        if REFUSALS.status(exc.code) != 400:
            raise
        # No input to run (a fresh thread, or nothing left to continue): OpenGPTs answers
        # this in the stream, metadata then an error event, and its clients expect that.
        return EventSourceResponse(_refusal(run_id, exc.message), headers=SSE_HEADERS)
    hangup = _Hangup(rt, body.thread_id, run_id, body.on_disconnect)
    if first[0] == "outcome":
        hangup.ended()
    return EventSourceResponse(_events(run_id, stream, first, framing, current_request_id(),
                                       hangup), headers=SSE_HEADERS, ping=15,
                               background=BackgroundTask(hangup))


async def _refusal(run_id: str, message: str) -> AsyncIterator[ServerSentEvent]:
    yield ServerSentEvent(data=orjson.dumps({"run_id": run_id}).decode(), event="metadata")
    yield _error(400, message)
    yield ServerSentEvent(event="end")


@router.post("/feedback", response_model=Status)
async def feedback(body: FeedbackPayload, me: Me, rt: Rt) -> JSON:
    """Thumbs up or down on a run: stored as feedback_given in the run's thread's log
    (OpenGPTs forwards it to LangSmith and has no route without it). Only the thread's owner
    may score its runs; any other run id is 404."""
    await service.feedback(rt, me.user_id, str(body.run_id), body.key, body.score, body.value,
                           body.comment)
    return JSON({"status": "ok"})


@router.get("/input_schema")
async def get_input_schema() -> JSON:
    return JSON(input_schema())


@router.get("/output_schema")
async def get_output_schema() -> JSON:
    return JSON(output_schema())


@router.get("/config_schema")
async def get_config_schema() -> JSON:
    return JSON(config_schema())


#: files in one /ingest request
MAX_FILES = 100
#: /ingest's config as the document states it: JSON naming one assistant or thread. The route
#: parses more leniently (any spacing, other keys); this is what a client generating from the
#: document sends
_INGEST_CONFIG = (r'^\{"configurable": ?\{"(assistant_id|thread_id)": ?'
                  rf'"{ID_CHARS}"\}}\}}$')
#: the form is read by the route itself (not FastAPI's File()/Form() parameters), so that the
#: document says exactly what it takes: files as binary parts sent as text, PDF, HTML or
#: markdown, and the config above
_INGEST_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {
    "schema": {"type": "object", "required": ["files", "config"], "properties": {
        "files": {"type": "array", "minItems": 1, "maxItems": MAX_FILES,
                  "items": {"type": "string", "format": "binary"}},
        "config": {"type": "string", "pattern": _INGEST_CONFIG, "description":
                   '{"configurable": {"assistant_id": ...}} or '
                   '{"configurable": {"thread_id": ...}}, as JSON'}}},
    # text, markdown, HTML and PDF are read (the part's type or the file's name says which)
    "encoding": {"files": {"contentType": "text/plain"}}}}}}


def _missing(*fields: str) -> RequestValidationError:
    """FastAPI's own 422 for form fields that are absent, as its File()/Form() gave it."""
    return RequestValidationError([{"type": "missing", "loc": ["body", f], "msg":
                                    "Field required", "input": None} for f in fields])


@ingest_router.post("/ingest", max_body_size=limits.upload_bytes, openapi_extra=_INGEST_BODY)
async def ingest(request: Request, me: Me, rt: Rt) -> JSON:
    """Files are parsed (text, markdown, HTML, PDF), chunked, and stored as events of the
    documents stream of the assistant or thread named in ``config``:
    {"configurable": {"assistant_id" | "thread_id"}}. Answers one list of chunk ids per file.

    One size rule (README, "OpenGPTs"): the request is at most ACTORLOG_MAX_UPLOAD_BYTES
    (20 MiB) and each file's text at most MAX_CHUNKS_PER_COMMAND chunks; either is a 413."""
    try:
        form = await request.form(max_files=MAX_FILES, max_fields=MAX_FILES + 16)
    except (HTTPException, ValueError) as exc:  # Starlette's refusals of a malformed form
        raise HTTPException(422, f"the body is not a readable multipart form: "
                                 f"{getattr(exc, 'detail', exc)}") from None
    try:
        files = [f for f in form.getlist("files") if isinstance(f, StarletteUpload)]
        config = form.get("config")
        missing = (["files"] if not files else []) + (
            ["config"] if not isinstance(config, str) else [])
        if missing:
            raise _missing(*missing)
        return await _ingest(rt, me, files, str(config))
    finally:
        await form.close()  # the uploads' spooled files


async def _ingest(rt: Runtime, me: User, files: list[Any], config: str) -> JSON:
    try:
        parsed = strict_json(config)
    except StrictJSONError as exc:
        raise HTTPException(422, f'config must be JSON, {{"configurable": {{"assistant_id": '
                                 f'...}}}}: {exc.msg}') from None
    conf = parsed.get("configurable") if isinstance(parsed, dict) else None
    if not isinstance(conf, dict):
        raise HTTPException(422, 'config must be {"configurable": {"assistant_id": ...}} or '
                                 '{"configurable": {"thread_id": ...}}')
    aid, tid = conf.get("assistant_id"), conf.get("thread_id")
    if bool(aid) == bool(tid) or not isinstance(aid or tid, str):
        raise HTTPException(422, "config.configurable needs exactly one of assistant_id or "
                                 "thread_id")
    target = await service.documents_of(rt, me.user_id, aid, tid)
    parsed_files = []
    for upload in files:  # every file is read and checked before anything is stored
        data = await upload.read()
        try:  # parsing a PDF is CPU work: off the event loop
            text = await asyncio.to_thread(parse, upload.filename or "", upload.content_type,
                                           data)
        except UnsupportedFile as exc:
            raise HTTPException(415, str(exc)) from None
        chunks = chunk(text)
        if len(chunks) > MAX_CHUNKS_PER_COMMAND:
            raise HTTPException(413, f"{upload.filename}: its text makes {len(chunks)} chunks; "
                                     f"a file may make at most {MAX_CHUNKS_PER_COMMAND} "
                                     f"(about {MAX_CHUNKS_PER_COMMAND * 800:,} characters)")
        parsed_files.append((upload.filename or "upload", chunks))
    return JSON(await service.ingest(rt, me.user_id, target, parsed_files))
