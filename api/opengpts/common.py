"""What the OpenGPTs routes share at the edge: the resource shapes, the id rule as the
document states it, messages validated as its clients send them, and the service's refusals
as OpenGPTs' {"detail": ...} errors (api/opengpts/service.py does the work)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError

from api.edge import EdgeRoute, detail_responses
from api.kit import Refusals
from api.opengpts.service import ID_CHARS, _ID
from schemas.opengpts import MessageIn, role_to_type

#: the statuses OpenGPTs' routes answer besides 200, documented on every route of the family
RESPONSES = detail_responses(400, 401, 403, 404, 409, 415, 503)

#: the service's and the actors' refusal codes as OpenGPTs' statuses ({"detail": message})
REFUSALS = Refusals({"not_found": 404, "invalid": 422, "exists": 409, "no_input": 400,
                     "model_failed": 500, "no_assistant": 400, "run_in_progress": 409},
                    unknown_outcome="the server handling this thread stopped; whether the "
                                    "change was stored is unknown: read the thread to find out")


def router(prefix: str, tag: str) -> APIRouter:
    """A router of this family: strict JSON, bounds, and the service's refusals as errors."""
    return APIRouter(prefix=prefix, tags=[tag], route_class=EdgeRoute.refusing(REFUSALS),
                     responses=RESPONSES)


class JSON(Response):
    """orjson-encoded JSON: compact, as OpenGPTs' own responses are."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


#: the id pattern a client-chosen id (PUT) must match, as the document states it
ID_PATTERN = _ID.pattern
ClientId = Annotated[str, Path(pattern=ID_PATTERN, description=(
    "letters, digits and _ . : @ -, 1 to 128 characters, starting with a letter or digit"))]
__all__ = ["ClientId", "ID_CHARS", "ID_PATTERN", "JSON", "REFUSALS", "RESPONSES",
           "assistant_view", "messages_from", "router", "thread_view"]


def assistant_view(aid: str, d: dict[str, Any]) -> dict[str, Any]:
    """From an assistant's state or what was stored."""
    return {"assistant_id": aid, "user_id": d.get("owner") or d.get("user_id"),
            "name": d["name"], "config": d["config"],
            "updated_at": d.get("updated_at") or d.get("at"), "public": d["public"]}


def thread_view(tid: str, d: dict[str, Any]) -> dict[str, Any]:
    return {"thread_id": tid, "user_id": d.get("owner") or d.get("user_id"),
            "assistant_id": d["assistant_id"], "name": d["name"],
            "updated_at": d.get("updated_at") or d.get("at"), "metadata": d["metadata"]}


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
