"""The generic read-only log API, for every entity kind: events, state (with time travel) and a
WebSocket that tails a stream. A debugging and integration surface for operators; the API
families have their own routers.

It reads any entity of any user, so it is an operator API (api/operator.py): every caller
presents the operator token."""

from __future__ import annotations

import contextlib
import os
from typing import Annotated

import ray
from fastapi import APIRouter, Depends, HTTPException, Path, Query, WebSocket
from fastapi.responses import ORJSONResponse

from api.edge import detail_responses
from api.operator import OperatorRoute, operator_refusal
from api.runtime import Runtime, current, get_runtime
from api.ws import TOO_SLOW, WebSocketSession
from runtime.entity import EntityKind, Unknown
from runtime.events import Event, split_stream_id, stream_id
from runtime.host import replay
from runtime.placement import host_name
from runtime.registry import get_kind
from runtime.client import ActorError, OutcomeUnknown, Unavailable
from schemas.log_api import (EntitiesPage, EntityOut, EventOut, EventsPage, ForkIn, ForkOut,
                             HostInfo, RuntimeInfo, StateOut)

_GUARD = {"route_class": OperatorRoute, "responses": detail_responses(401, 404)}
router = APIRouter(prefix="/v1/actors", tags=["log"], **_GUARD)
info_router = APIRouter(prefix="/v1/runtime", tags=["log"], **_GUARD)
tail_router = APIRouter(prefix="/v1/actors", tags=["log"])  # checks the operator itself

#: seconds a tail may leave a frame unread (its socket buffers full) before it is closed with
#: TAIL_TOO_SLOW; it can reconnect with ?from= the sequence number in the close reason.
TAIL_SEND_SECONDS = 10.0
TAIL_TOO_SLOW = TOO_SLOW  # 1013, "try again later"

MAX_PAGE = 10_000
KindName = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
EntityId = Annotated[str, Path(min_length=1, max_length=512)]


def _kind(name: str) -> EntityKind:
    try:
        return get_kind(name)
    except Unknown as exc:
        raise HTTPException(404, str(exc)) from None


def _event_out(e: Event) -> EventOut:
    return EventOut(seq=e.seq, type=e.type, data=e.data, timestamp=e.timestamp,
                    position=e.position, idempotency_key=e.idempotency_key, metadata=e.metadata,
                    schema_version=e.schema_version)


@router.get("/{kind}", response_model=EntitiesPage)
async def list_entities(
    kind: KindName,
    rt: Annotated[Runtime, Depends(get_runtime)],
    after: Annotated[str | None, Query(min_length=1, max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> EntitiesPage:
    """The kind's entities that have events, ordered by id, ``limit`` at a time after the id
    ``after`` (the previous page's next_after)."""
    _kind(kind)
    rows = await rt.store.list_streams(kind, None if after is None else
                                       stream_id(kind, after), limit + 1)
    page = rows[:limit]
    entities = [EntityOut(id=split_stream_id(s)[1], last_version=v) for s, v in page]
    return EntitiesPage(kind=kind, entities=entities,
                        next_after=entities[-1].id if len(rows) > limit else None)


@router.get("/{kind}/{entity_id}/events", response_model=EventsPage)
async def read_events(
    kind: KindName,
    entity_id: EntityId,
    rt: Annotated[Runtime, Depends(get_runtime)],
    from_: Annotated[int, Query(alias="from", ge=1, le=2**62)] = 1,
    to: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
) -> EventsPage:
    _kind(kind)
    stream = stream_id(kind, entity_id)
    last = await rt.store.last_version(stream)
    if last == 0:
        raise HTTPException(404, f"{kind} {entity_id!r} has no events")
    if to is not None and to < from_:
        raise HTTPException(422, f"to ({to}) is below from ({from_})")
    events = await rt.store.read(stream, from_, to, limit)
    end = min(to, last) if to is not None else last
    next_from = events[-1].seq + 1 if events and events[-1].seq < end else None
    return EventsPage(kind=kind, id=entity_id, last_version=last,
                      events=[_event_out(e) for e in events], next_from=next_from)


@router.get("/{kind}/{entity_id}/state", response_model=StateOut,
            response_class=ORJSONResponse)
async def read_state(
    kind: KindName,
    entity_id: EntityId,
    rt: Annotated[Runtime, Depends(get_runtime)],
    version: Annotated[int | None, Query(ge=0, le=2**62)] = None,
) -> ORJSONResponse:
    k = _kind(kind)
    stream = stream_id(kind, entity_id)
    if version is None:  # the newest state: the replay itself says how far the log goes
        state, at, _ = await replay(rt.store, k, stream, None)
        last = at
    else:
        last = await rt.store.last_version(stream)
        if version > last and last:
            raise HTTPException(422, f"version {version} is beyond the last version {last}")
        state, at, _ = await replay(rt.store, k, stream, version)
    if last == 0:
        raise HTTPException(404, f"{kind} {entity_id!r} has no events")
    # Serialised here with orjson: this is the hottest read, and the shape is StateOut's.
    return ORJSONResponse({"kind": kind, "id": entity_id, "version": at, "last_version": last,
                           "state": k.to_snapshot(state)})


def _from_seq(raw: str) -> int | None:
    """?from= as a sequence number: ASCII digits only (str.isdigit() takes '²')."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        return None
    value = int(raw)
    return value if value >= 1 else None


@tail_router.websocket("/{kind}/{entity_id}/tail")
async def tail(websocket: WebSocket, kind: str, entity_id: str) -> None:
    """Frames: {"type": "event", "event": {...}} for every event from ?from= (default 1) on,
    stored then live; {"type": "error", "detail": ...} then close 1008 on bad input. Without
    the operator token (?token= or Authorization: Bearer) the handshake is refused (403). A
    client that leaves frames unread for TAIL_SEND_SECONDS is closed with 1013 and the reason
    "resume from=<seq>"."""
    refusal = operator_refusal(websocket, websocket.query_params.get("token"))
    if refusal is not None:  # a close reason holds 123 bytes: the short form
        await websocket.close(code=1008, reason="the operator token is required")
        return
    rt = current()
    next_seq = 1
    session = WebSocketSession(
        websocket, lambda code, message: {"type": "error", "detail": message},
        send_seconds=TAIL_SEND_SECONDS, slow_reason=lambda: f"resume from={next_seq}")
    await session.accept()
    error = None
    try:
        get_kind(kind)
    except Unknown as exc:
        error = str(exc)
    start = _from_seq(websocket.query_params.get("from", "1"))
    if error is None and len(entity_id) > 512:
        error = "id too long"
    elif error is None and start is None:
        error = "from must be an integer >= 1"
    if error is not None:
        session.push({"type": "error", "detail": error})
        await session.close(1008)
        return
    ref = rt.client.ref(kind, entity_id)
    next_seq = start

    async def pump() -> None:
        nonlocal next_seq
        # aclosing: the host-side subscription ends as soon as this does, not at some GC
        async with contextlib.aclosing(ref.asubscribe(start)) as events:
            async for _what, event in events:
                frame = '{"type":"event","event":' + _event_out(event).model_dump_json() + "}"
                if not await session.send(frame):
                    return  # gone, or closed for not reading: resume from next_seq
                next_seq = event.seq + 1

    await session.run_until_gone(pump())


@router.post("/{kind}/{entity_id}/fork", response_model=ForkOut, status_code=201,
             responses=detail_responses(401, 404, 409))
async def fork(kind: KindName, entity_id: EntityId, body: ForkIn,
               rt: Annotated[Runtime, Depends(get_runtime)]) -> ForkOut:
    """A new entity of the kind whose log starts with this one's first ``version`` events (the
    first copy's metadata says forked_from), as its kind folds them today; work the copy
    leaves open is closed by the kind's recovery, as after a crash. It then goes on by
    itself: send it commands as any other. 409 for an id that has events already."""
    _kind(kind)
    last = await rt.store.last_version(stream_id(kind, entity_id))
    if last == 0:
        raise HTTPException(404, f"{kind} {entity_id!r} has no events")
    if body.version > last:
        raise HTTPException(422, f"version {body.version} is beyond the last version {last}")
    try:
        new = await rt.client.ref(kind, entity_id).afork(body.version, body.id)
    except ActorError as exc:
        raise HTTPException({"exists": 409, "bad_request": 422}.get(exc.code, 503),
                            exc.message) from None
    except (OutcomeUnknown, Unavailable) as exc:
        raise HTTPException(503, str(exc)) from None
    return ForkOut(kind=kind, id=new.id, forked_from=entity_id, version=body.version)


@info_router.get("", response_model=RuntimeInfo)
async def runtime_info(rt: Annotated[Runtime, Depends(get_runtime)]) -> RuntimeInfo:
    stats = await rt.client.astats()
    return RuntimeInfo(
        node=ray.get_runtime_context().get_node_id(), pid=os.getpid(),
        store=rt.settings.resolved_store_url.split("://", 1)[0],
        hosts=[HostInfo(name=host_name(s["index"]), node=s["node"], pid=s["pid"],
                        resident=s["resident"],
                        model_calls=(s.get("services") or {}).get("models") or {})
               for s in stats])
