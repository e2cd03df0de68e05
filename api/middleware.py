"""The edge's middlewares, one per concern, pure ASGI as Starlette keeps its own: request ids,
request metrics, the header bound, and unexpected errors (logged with the request id, answered
in the family's error shape). ``EdgeMiddleware`` stacks them in that order, outermost first, so
the metrics count what the inner two answer and every answer carries its request id.
"""

from __future__ import annotations

import logging
import os
import re
import time
import traceback
from typing import Any, Callable

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.edge import _request_id, limits

__all__ = ["EdgeMiddleware", "ErrorBody", "Errors", "HeaderLimit", "Metrics", "REGISTRY",
           "RequestIds", "default_error"]

log = logging.getLogger("ray.serve")
ErrorBody = Callable[[int, str, str], dict[str, Any]]
#: a family's error shape for a path (api/families.py picks it); FastAPI's by default
ErrorBodies = Callable[[str], ErrorBody]
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def default_error(status: int, message: str, request_id: str) -> dict[str, Any]:
    return {"detail": message, "request_id": request_id}


def _request_id_of(scope: Scope) -> str:
    return scope.get("state", {}).get("request_id", "")


async def answer(scope: Scope, send: Send, status: int, message: str,
                 error_body: ErrorBodies) -> None:
    """An error answer of ours, in the shape of the family whose path it is."""
    body = orjson.dumps(error_body(scope.get("path", ""))(status, message,
                                                          _request_id_of(scope)))
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class RequestIds:
    """Each request gets an id (the client's X-Request-ID when it is a sane one): in the
    context (current_request_id), in scope["state"], and on the answer's headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                rid = candidate if _CLIENT_ID.match(candidate) else None
                break
        rid = rid or os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = rid
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = _request_id.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _request_id.reset(token)


REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter("actorlog_http_requests", "HTTP requests and WebSocket sessions answered",
                   ["route", "method", "status"], registry=REGISTRY)
ERRORS = Counter("actorlog_http_errors", "unexpected errors (logged with a traceback)",
                 ["route"], registry=REGISTRY)
LATENCY = Histogram("actorlog_http_request_seconds", "time to the end of the response",
                    ["route", "method"], registry=REGISTRY,
                    buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class Metrics:
    """Requests (and WebSocket sessions: 101 accepted, 403 refused at the handshake) counted by
    route, method and status, with their time to the end of the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 0

        async def counted(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
            elif kind == "websocket.accept":
                status = 101
            elif kind == "websocket.close" and not status:
                status = 403
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            self.observe(_route(scope), scope.get("method", "WS"), status or 500,
                         time.perf_counter() - started)

    @staticmethod
    def observe(route: str, method: str, status: int, seconds: float) -> None:
        """The labelled children are cached (prometheus' labels() costs more than the
        increment)."""
        key = (route, method, status)
        pair = _children.get(key)
        if pair is None:
            pair = _children[key] = (REQUESTS.labels(route, method, str(status)),
                                     LATENCY.labels(route, method))
        pair[0].inc()
        pair[1].observe(seconds)


class HeaderLimit:
    """Request headers past ACTORLOG_MAX_HEADER_BYTES: a 431 in the family's shape (a
    WebSocket handshake: closed, 1009), before the app sees the request."""

    def __init__(self, app: ASGIApp, error_body: ErrorBodies) -> None:
        self.app, self.error_body = app, error_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            size = sum(len(name) + len(value) + 4 for name, value in scope.get("headers", ()))
            if size > limits.header_bytes:
                if scope["type"] == "http":
                    await answer(scope, send, 431, f"request headers are larger than "
                                 f"{limits.header_bytes} bytes", self.error_body)
                else:
                    await send({"type": "websocket.close", "code": 1009})
                return
        await self.app(scope, receive, send)


#: what Starlette's body limiter raises through the app once it has refused a body (private
#: classes, hence by name): a 413, not an unexpected error.
_BODY_LIMIT_SIGNALS = frozenset({"_RequestBodyTooLarge", "_RequestBodyLimitResponseSent"})


class Errors:
    """Every unexpected error lands here: logged with its traceback and the request id, and
    answered with a 500 in the family's shape when nothing was sent yet (a WebSocket: closed,
    1011). An error answer is held until it is whole: a framework's text/plain one
    (Starlette's 413 "Content Too Large") is rewritten in the family's JSON, and one cut short
    by an exception (Starlette's body limiter raises after its 413) is answered here."""

    def __init__(self, app: ASGIApp, error_body: ErrorBodies) -> None:
        self.app, self.error_body = app, error_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        status = 0
        held: tuple[Message, list[bytes]] | None = None

        async def holding(message: Message) -> None:
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
                        await answer(scope, send, status,
                                     b"".join(chunks).decode("utf-8", "replace"),
                                     self.error_body)
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                content_type = dict(message.get("headers", ())).get(b"content-type", b"")
                if status == 413 or (status >= 400 and content_type.startswith(b"text/plain")):
                    held = (message, [])
                    return
            elif message["type"] in ("websocket.accept", "websocket.close"):
                status = status or 101
            await send(message)

        try:
            await self.app(scope, receive, holding)
        except Exception as exc:  # noqa: BLE001 - the one place every unexpected error lands
            if type(exc).__name__ in _BODY_LIMIT_SIGNALS:
                if held is not None or not status:
                    await answer(scope, send, 413, "the request body is larger than this "
                                 "route takes (README, \"Configuration\")", self.error_body)
                return
            rid = _request_id_of(scope)
            ERRORS.labels(_route(scope)).inc()
            log.error("unexpected error in %s %s (request %s)\n%s", scope.get("method", "WS"),
                      scope.get("path"), rid, "".join(traceback.format_exception(exc)))
            if scope["type"] == "http" and not status:
                await answer(scope, send, 500, f"internal error; request id {rid}",
                             self.error_body)
            elif scope["type"] == "websocket" and not status:
                await send({"type": "websocket.close", "code": 1011})


class EdgeMiddleware:
    """The edge's middlewares as one, outermost first: RequestIds, Metrics, HeaderLimit,
    Errors. ``error_body(path)`` picks a family's error shape for a path; the default is
    FastAPI's {"detail": ...} plus the request id."""

    def __init__(self, app: ASGIApp, error_body: ErrorBodies | None = None) -> None:
        bodies = error_body or (lambda path: default_error)
        self.app = RequestIds(Metrics(HeaderLimit(Errors(app, bodies), bodies)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
