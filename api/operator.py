"""Who may use the operator APIs (the log API, /v1/runtime, /metrics): they read every user's
entities, so no API family's user may, and no caller is trusted for where it connects from
(behind a reverse proxy every caller is loopback).

Every caller presents the operator token (Authorization: Bearer, the scheme in any case, or
?token= on a WebSocket, where browsers cannot set headers). The token is ACTORLOG_ADMIN_TOKEN;
without it, a random one is made at the first start and kept in the data directory
(``operator_token``), as Jupyter does, and the embedded service prints it with its URL. A
cluster whose replicas do not share a data directory sets ACTORLOG_ADMIN_TOKEN.
"""

from __future__ import annotations

import hmac
import os
import secrets
from typing import Any, Callable, Coroutine

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection

from api.edge import EdgeRoute
from api.local_files import data_dir, read_or_create
from api.runtime import section
from api.settings import ServiceSettings

__all__ = ["ENV", "TOKEN_FILE", "OperatorRoute", "admin_token", "ensure_token",
           "operator_refusal"]

ENV = "ACTORLOG_ADMIN_TOKEN"
TOKEN_FILE = "operator_token"
_made: dict[str, str] = {}  # data directory -> its token, read once per process


def ensure_token(directory: str) -> str:
    """The operator token kept in ``directory``, made now if there is none."""
    path = os.path.join(os.path.abspath(directory), TOKEN_FILE)
    token = _made.get(path)
    if token is None:
        token = _made[path] = read_or_create(path, "op_" + secrets.token_urlsafe(24))
    return token


def admin_token() -> str:
    """ACTORLOG_ADMIN_TOKEN, else the data directory's own token."""
    return section(ServiceSettings).admin_token or ensure_token(data_dir())


def operator_refusal(conn: HTTPConnection, query_token: str | None = None) -> str | None:
    """Why ``conn`` may not use an operator API, or None when it may."""
    given = query_token
    scheme, _, value = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        given = value.strip()
    if not given:
        return ("operator API: the operator token is required (Authorization: Bearer; "
                f"printed by the embedded service at start, kept in its data directory as "
                f"{TOKEN_FILE}, or {ENV})")
    if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                               admin_token().encode()):
        return "operator API: the operator token is not valid"
    return None


class OperatorRoute(EdgeRoute):
    """The operator routes' class: the check runs before anything of the route (its
    parameters, its reads) does; 401 with no or a bad token. A route class rather than a
    FastAPI dependency: this is the hottest read path, and resolving a dependency costs more
    than the check."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            refusal = operator_refusal(request)
            if refusal is None:
                return await handler(request)
            return JSONResponse({"detail": refusal}, 401,
                                headers={"WWW-Authenticate": "Bearer"})

        return checked
