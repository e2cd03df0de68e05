"""The edge kit every API family's router shares: strict JSON, bounded requests, request ids,
logged errors and request metrics.

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
import os
import re
import time
import traceback
from typing import Any, Callable, Coroutine

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.commands import Refused
from api.settings import ServiceSettings

__all__ = ["DetailError", "EdgeMiddleware", "EdgeRoute", "ErrorBody", "default_error", "Limits",
           "StrictJSONError", "REGISTRY",
           "current_request_id", "detail_responses", "limits", "strict_json"]

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


# ---------------------------------------------------------------------- request ids, metrics

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id",
                                                                         default=None)
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def current_request_id() -> str | None:
    """The id of the request being handled in this task (logged with its errors)."""
    return _request_id.get()


REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter("actorlog_http_requests", "HTTP requests and WebSocket sessions answered",
                   ["route", "method", "status"], registry=REGISTRY)
ERRORS = Counter("actorlog_http_errors", "unexpected errors (logged with a traceback)",
                 ["route"], registry=REGISTRY)
LATENCY = Histogram("actorlog_http_request_seconds", "time to the end of the response",
                    ["route", "method"], registry=REGISTRY,
                    buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))


_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _observe(route: str, method: str, status: int, seconds: float) -> None:
    """Count a request; the labelled children are cached (prometheus' labels() costs more than
    the increment)."""
    key = (route, method, status)
    pair = _children.get(key)
    if pair is None:
        pair = _children[key] = (REQUESTS.labels(route, method, str(status)),
                                 LATENCY.labels(route, method))
    pair[0].inc()
    pair[1].observe(seconds)


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


ErrorBody = Callable[[int, str, str], dict[str, Any]]

#: what Starlette's body limiter raises through the app once it has refused a body (private
#: classes, hence by name): a 413, not an unexpected error.
_BODY_LIMIT_SIGNALS = frozenset({"_RequestBodyTooLarge", "_RequestBodyLimitResponseSent"})


def default_error(status: int, message: str, request_id: str) -> dict[str, Any]:
    return {"detail": message, "request_id": request_id}


class EdgeMiddleware:
    """Pure ASGI middleware, outermost: gives each request an id (the client's X-Request-ID when
    it is a sane one), answers oversized headers with 431, logs every unexpected error with its
    traceback and the id, turns it into a 500 in the family's format when nothing was sent yet,
    and counts requests by route and status.

    ``error_body(path)`` picks a family's error shape for a path; the default is FastAPI's
    {"detail": ...} plus the request id.
    """

    def __init__(self, app: ASGIApp,
                 error_body: Callable[[str], ErrorBody] | None = None) -> None:
        self.app = app
        self.error_body = error_body or (lambda path: default_error)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = None
        header_bytes = 0
        for name, value in scope.get("headers", ()):
            header_bytes += len(name) + len(value) + 4
            if name == b"x-request-id" and rid is None:
                candidate = value.decode("latin-1")
                rid = candidate if _CLIENT_ID.match(candidate) else None
        rid = rid or os.urandom(16).hex()
        token = _request_id.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        status = 0
        method = scope.get("method", "WS")

        # An error answer is held until it is whole: a framework's text/plain one (Starlette's
        # 413 "Content Too Large") is rewritten in the family's JSON, and one cut short by an
        # exception (Starlette's body limiter raises after its 413) is answered by us.
        held: tuple[Message, list[bytes]] | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, held
            if held is not None:
                start, chunks = held
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    held = None
                    if dict(start["headers"]).get(b"content-type", b"").startswith(
                            b"application/json"):
                        await send(start)
                        await send({"type": "http.response.body", "body": b"".join(chunks)})
                    else:
                        text = b"".join(chunks).decode("utf-8", "replace")
                        await self._answer(scope, send, status, rid, text)
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (b"x-request-id", rid.encode())]}
                content_type = dict(message["headers"]).get(b"content-type", b"")
                if status == 413 or (status >= 400 and content_type.startswith(b"text/plain")):
                    held = (message, [])
                    return
            elif message["type"] == "websocket.accept":
                status = 101
            elif message["type"] == "websocket.close" and not status:
                status = 403
            await send(message)

        try:
            if header_bytes > limits.header_bytes:
                if scope["type"] == "http":
                    status = 431
                    await self._answer(scope, send, 431, rid,
                                       f"request headers are larger than {limits.header_bytes} "
                                       "bytes")
                else:
                    await send_with_id({"type": "websocket.close", "code": 1009})
                return
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # noqa: BLE001 - the one place every unexpected error lands
            if type(exc).__name__ in _BODY_LIMIT_SIGNALS:
                if held is not None or not status:
                    status = 413
                    await self._answer(scope, send, 413, rid, "the request body is larger "
                                       "than this route takes (README, \"Configuration\")")
                return
            ERRORS.labels(_route(scope)).inc()
            log.error("unexpected error in %s %s (request %s)\n%s", method,
                      scope.get("path"), rid,
                      "".join(traceback.format_exception(exc)))
            if scope["type"] == "http" and not status:
                status = 500
                await self._answer(scope, send, 500, rid,
                                   f"internal error; request id {rid}")
            elif scope["type"] == "websocket" and not status:
                await send_with_id({"type": "websocket.close", "code": 1011})
        finally:
            _request_id.reset(token)
            _observe(_route(scope), method, status or 500, time.perf_counter() - started)

    async def _answer(self, scope: Scope, send: Send, status: int, rid: str,
                      message: str) -> None:
        body = orjson.dumps(self.error_body(scope.get("path", ""))(status, message, rid))
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"x-request-id", rid.encode())]})
        await send({"type": "http.response.body", "body": body})
