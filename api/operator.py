"""Who may use the operator APIs (the log API, /v1/runtime, /metrics): they read every user's
entities, so no API family's user may.

ACTORLOG_ADMIN_TOKEN set: every caller, loopback included, presents it (Authorization: Bearer,
or ?token= on a WebSocket, where browsers cannot set headers). Not set: loopback clients only,
said at startup and in the README. A reverse proxy on the same machine makes every client look
local: set the token then.
"""

from __future__ import annotations

import hmac
import ipaddress
import os

from typing import Any, Callable, Coroutine

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection

from api.edge import EdgeRoute

__all__ = ["OperatorRoute", "admin_token", "operator_refusal"]

ENV = "ACTORLOG_ADMIN_TOKEN"


def admin_token() -> str | None:
    """Read at each check, so a replica sees the environment it was started with."""
    return os.environ.get(ENV) or None


def _loopback(conn: HTTPConnection) -> bool:
    client = conn.client
    if client is None:
        return False
    try:
        return ipaddress.ip_address(client.host).is_loopback
    except ValueError:
        return False


def operator_refusal(conn: HTTPConnection, query_token: str | None = None) -> str | None:
    """Why ``conn`` may not use an operator API, or None when it may."""
    token = admin_token()
    if token is None:
        return None if _loopback(conn) else (
            f"operator API: loopback clients only while {ENV} is not set")
    given = query_token
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        given = value.strip()
    if not given:
        return "operator API: an operator token is required (Authorization: Bearer)"
    if not hmac.compare_digest(given.encode(), token.encode()):
        return "operator API: the operator token is not valid"
    return None


class OperatorRoute(EdgeRoute):
    """The operator routes' class: the check runs before anything of the route (its
    parameters, its reads) does. 401 with no or a bad token, 403 for a client that is not
    local while no token is configured. A route class rather than a FastAPI dependency: this
    is the hottest read path, and resolving a dependency costs more than the check."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            refusal = operator_refusal(request)
            if refusal is None:
                return await handler(request)
            status = 403 if admin_token() is None else 401
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return JSONResponse({"detail": refusal}, status, headers=headers)

        return checked
