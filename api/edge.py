"""The edge kit every API family's router shares: strict JSON, bounded requests, the route
class that applies both (and a family's refusal table), and the request id of the request
being handled. The middlewares (request ids, metrics, the header bound, unexpected errors) are
api/middleware.py.

Why here and not in each family: the codec behind the event log (orjson) cannot hold every value
stdlib JSON accepts (integers beyond 64 bits, lone UTF-16 surrogates, infinities, deep nesting).
Such a value must be refused before anything is stored or streamed, on every route, with the
family's own error shape; a 500 or a cut stream halfway through a run is the alternative.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import math
from typing import Any, Callable, Coroutine

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from api.commands import Refused
from api.settings import ServiceSettings

__all__ = ["DetailError", "EdgeRoute", "Limits", "StrictJSONError", "current_request_id",
           "detail_responses", "limits", "strict_json"]

#: Serve's replica logger: what it logs lands in the replica's log file (logs/serve/).
log = logging.getLogger("ray.serve")

#: the widest integers the codec stores: signed and unsigned 64-bit.
INT_MIN, INT_MAX = -(2**63), 2**64 - 1


class Limits:
    """Request bounds (api/settings.py, README "Configuration"), read once, when first used:
    routes take theirs as they are declared."""

    @functools.cached_property
    def _settings(self) -> ServiceSettings:
        return ServiceSettings.load()

    @property
    def body_bytes(self) -> int:
        return self._settings.max_body_bytes

    @property
    def upload_bytes(self) -> int:
        return self._settings.max_upload_bytes

    @property
    def header_bytes(self) -> int:
        return self._settings.max_header_bytes

    @property
    def json_depth(self) -> int:
        return self._settings.max_json_depth

    @property
    def ws_frame_bytes(self) -> int:
        return self._settings.max_ws_frame_bytes

    @property
    def ws_hard_cap_bytes(self) -> int:
        """Frames past ws_frame_bytes get the family's error frame and the socket stays open;
        past this hard cap the server closes with 1009 before the frame is buffered whole."""
        return 4 * self.ws_frame_bytes


limits = Limits()


# ---------------------------------------------------------------------- strict JSON


class StrictJSONError(json.JSONDecodeError):
    """A body the event codec could not store. A JSONDecodeError, so FastAPI answers it with its
    own 422 {"detail": [{"type": "json_invalid", ...}]} like any malformed body."""


def _parse_int(text: str) -> int:
    value = int(text)
    if not INT_MIN <= value <= INT_MAX:
        raise ValueError(f"integer {text[:40]}{'...' if len(text) > 40 else ''} is beyond 64 bits")
    return value


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _parse_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def _depth(value: Any, limit: int) -> bool:
    """True when ``value`` nests no deeper than ``limit`` containers."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return False
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return True


def strict_json(raw: bytes | str, max_depth: int | None = None) -> Any:
    """Parse JSON that the event log can store as it is, or raise StrictJSONError saying why."""
    text = raw if isinstance(raw, str) else None
    try:
        if text is None:
            text = bytes(raw).decode("utf-8")
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float,
                           parse_constant=_parse_constant)
    except json.JSONDecodeError as exc:
        raise StrictJSONError(exc.msg, exc.doc, exc.pos) from None
    except UnicodeDecodeError as exc:
        raise StrictJSONError(f"body is not UTF-8: {exc.reason}", "", exc.start) from None
    except RecursionError:
        raise StrictJSONError("JSON nests too deeply", "", 0) from None
    except ValueError as exc:
        raise StrictJSONError(str(exc), "", 0) from None
    limit = limits.json_depth if max_depth is None else max_depth
    if not _depth(value, limit):
        raise StrictJSONError(f"JSON nests deeper than {limit} levels", "", 0)
    try:  # lone surrogates ("\ud800") parse, but no UTF-8 store can hold them
        orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise StrictJSONError(f"value cannot be stored: {exc}", "", 0) from None
    return value


class _StrictRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json(await self.body())
        return self._json


class EdgeRoute(APIRoute):
    """A route whose JSON bodies are parsed strictly (see strict_json) and bounded (413 past
    ACTORLOG_MAX_BODY_BYTES unless the route names its own max_body_size); set it as a
    router's route_class. The bound is the route's, not the app's, so that the refusal passes
    through EdgeMiddleware and comes out in the family's format."""

    #: a family's table (api/kit.py Refusals) for what its service refuses: a route class made
    #: by ``refusing`` turns a service's Refused into the family's HTTP error
    refusals: Any = None

    def __init__(self, *args: Any, max_body_size: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, max_body_size=limits.body_bytes if max_body_size is None
                         else max_body_size, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        refusals = self.refusals

        async def strict(request: Request) -> Response:
            try:
                return await handler(_StrictRequest(request.scope, request.receive))
            except Refused as exc:
                if refusals is None:
                    raise
                raise refusals.error(exc) from None

        return strict

    @classmethod
    def refusing(cls, refusals: Any) -> type["EdgeRoute"]:
        """This route class with a family's refusal table: its routes call the family's
        service and leave its refusals to the table."""
        return type(f"{cls.__name__}Refusing", (cls,), {"refusals": refusals})


class DetailError(BaseModel):
    """FastAPI's error shape, which the OpenGPTs document and the log API use."""

    detail: Any = Field(description="a message, or FastAPI's list of validation errors")
    request_id: str | None = Field(None, description="present on 500s: quote it to the operator")


_REASONS = {400: "Bad request", 401: "Bad credentials", 403: "Not authenticated",
            404: "Not found", 409: "Conflict with the entity's state", 413: "Body too large",
            415: "Unsupported file type", 422: "Validation error", 431: "Headers too large",
            500: "Unexpected error (logged with its request id)",
            503: "A host or the store is unavailable",
            504: "The work did not finish within its deadline"}


def detail_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the error statuses a router answers, in FastAPI's shape, so a
    schema-driven client (or fuzzer) finds every status it can get documented."""
    every = (413, 422, 431, 500) + statuses
    return {status: {"model": DetailError, "description": _REASONS[status]}
            for status in sorted(set(every))}


# ---------------------------------------------------------------------- request ids

#: set by api/middleware.py's RequestIds for the request being handled
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id",
                                                                         default=None)


def current_request_id() -> str | None:
    """The id of the request being handled in this task (logged with its errors)."""
    return _request_id.get()
