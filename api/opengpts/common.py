"""What the OpenGPTs routes share: reading an entity, who may see it, the resource shapes, and
turning the runtime's refusals into OpenGPTs' {"detail": ...} errors."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, NoReturn

import orjson
from fastapi import HTTPException, Path
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError

from actors.assistant import visible_to
from api.edge import detail_responses
from api.kit import Refusals, send
from api.runtime import Runtime
from runtime.client import ActorError, OutcomeUnknown, Unavailable
from runtime.events import stream_id
from runtime.host import replay
from runtime.registry import get_kind
from schemas.opengpts import MessageIn, role_to_type

#: the statuses OpenGPTs' routes answer besides 200, documented on every route of the family
RESPONSES = detail_responses(400, 401, 403, 404, 409, 415, 503)

#: an id: a UUID from POST, or a client's through PUT
ID_CHARS = r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}"
_ID = re.compile(f"^{ID_CHARS}$")


class JSON(Response):
    """orjson-encoded JSON: compact, as OpenGPTs' own responses are."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


#: the id pattern a client-chosen id (PUT) must match, as the document states it
ID_PATTERN = _ID.pattern
ClientId = Annotated[str, Path(pattern=ID_PATTERN, description=(
    "letters, digits and _ . : @ -, 1 to 128 characters, starting with a letter or digit"))]


def valid_id(entity_id: str) -> bool:
    """Ids are UUIDs from POST, or client-chosen through PUT (older clients used names like
    "bobby"): letters, digits and _ . : @ - up to 128 characters."""
    return bool(_ID.match(entity_id))


async def read(rt: Runtime, kind: str, entity_id: str) -> dict[str, Any]:
    state, _, _ = await replay(rt.store, get_kind(kind), stream_id(kind, entity_id), None)
    return state


async def visible_assistant(rt: Runtime, user_id: str, aid: str | None) -> dict[str, Any] | None:
    if not aid or not valid_id(aid):
        return None
    state = await read(rt, "assistant", aid)
    return state if visible_to(state, user_id) else None


async def owned_thread(rt: Runtime, user_id: str, tid: str) -> dict[str, Any]:
    if valid_id(tid):
        state = await read(rt, "thread", tid)
        if state["exists"] and state["owner"] == user_id:
            return state
    raise HTTPException(404, "Thread not found")


async def settled_thread(rt: Runtime, user_id: str, tid: str) -> dict[str, Any]:
    """The caller's thread for reading its state. A run shown as running may have died with its
    host: then the thread's own actor is asked, because activating it closes such a run in the
    log (run_interrupted) and the answer says so. Otherwise the store's replay is the answer."""
    state = await owned_thread(rt, user_id, tid)
    if state["run"] and state["run"]["status"] == "running":
        try:
            _, state = await rt.client.ref("thread", tid).astate()
        except (ActorError, OutcomeUnknown, Unavailable):
            pass  # the store's view is still a consistent one
    return state


def assistant_view(aid: str, d: dict[str, Any]) -> dict[str, Any]:
    """From an assistant's state or its header event's data."""
    return {"assistant_id": aid, "user_id": d.get("owner") or d.get("user_id"),
            "name": d["name"], "config": d["config"],
            "updated_at": d.get("updated_at") or d.get("at"), "public": d["public"]}


def thread_view(tid: str, d: dict[str, Any]) -> dict[str, Any]:
    return {"thread_id": tid, "user_id": d.get("owner") or d.get("user_id"),
            "assistant_id": d["assistant_id"], "name": d["name"],
            "updated_at": d.get("updated_at") or d.get("at"), "metadata": d["metadata"]}


def configurable(assistant: dict[str, Any]) -> dict[str, Any]:
    config = assistant.get("config") or {}
    conf = config.get("configurable") if isinstance(config, dict) else None
    return conf if isinstance(conf, dict) else {}


def bot_type(conf: dict[str, Any]) -> str:
    """The bot a configurable names; agent, OpenGPTs' default, for none or an unknown one."""
    kind = conf.get("type")
    return kind if kind in ("chatbot", "agent", "chat_retrieval") else "agent"


async def command(rt: Runtime, kind: str, entity_id: str, cmd: dict[str, Any]) -> None:
    """Send ``cmd`` to the entity; a refusal or a runtime failure becomes the HTTP error."""
    await send(rt.client.ref(kind, entity_id), cmd, REFUSALS)


def messages_from(items: list[Any], loc: list[Any]) -> list[dict[str, Any]]:
    """Messages as OpenGPTs' clients send them (OpenAI's role style too), validated one by
    one; a bad one is a 422 that points at it under ``loc``."""
    out = []
    for i, item in enumerate(items):
        try:
            out.append(MessageIn.model_validate(role_to_type(item)).to_dict())
        except ValidationError as exc:
            raise RequestValidationError([{**e, "loc": [*loc, i, *e["loc"]]}
                                          for e in exc.errors(include_url=False)]) from None
    return out


async def delete_own(rt: Runtime, kind: str, entity_id: str, user_id: str) -> None:
    """DELETE: the owner's entity is deleted; anything else (absent, another user's, a
    malformed id) is quietly nothing, as OpenGPTs answers {"status": "ok"} either way."""
    if valid_id(entity_id) and (await read(rt, kind, entity_id))["exists"]:
        await command(rt, kind, entity_id, {"type": "delete", "user_id": user_id,
                                            "at": now_iso()})


#: the actors' refusal codes as OpenGPTs' statuses ({"detail": message} bodies)
REFUSALS = Refusals({"not_found": 404, "invalid": 422, "exists": 409, "no_input": 400,
                     "model_failed": 500},
                    unknown_outcome="the server handling this thread stopped; whether the "
                                    "change was stored is unknown: read the thread to find out")


def refused(exc: Exception) -> NoReturn:
    """An actor's refusal or the runtime's failure as the document's error."""
    REFUSALS.raise_for(exc)
