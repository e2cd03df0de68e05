"""The API families this service can serve, and the composition of the configured ones
(ACTORLOG_FAMILIES, a comma-separated list; all of them by default).

The platform's own routes (/health, the log API, /v1/runtime, /metrics) and its demo kind
(counter) are always served. Adding a family is one entry in KNOWN: see README, "Adding an API
family".
"""

from __future__ import annotations

import functools
import importlib
import re
from typing import Callable

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.routing import iter_route_contexts
from fastapi.responses import JSONResponse
from starlette.middleware.cors import CORSMiddleware
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import console, log_api, metrics
from api.edge import current_request_id, detail_responses
from api.middleware import EdgeMiddleware, ErrorBody, default_error
from api.family import Family
from api.openapi_doc import with_codec_bounds
from api.settings import ServiceSettings
from llm.settings import ModelSettings
from runtime.settings import RuntimeSettings, Section, check
from api.runtime import current
from runtime.config import Settings
from schemas.log_api import Health

__all__ = ["KNOWN", "PLATFORM_KINDS", "app_settings", "build_app", "check_settings",
           "configured", "cors_origins", "sections", "settings_for"]

#: name -> "module:attribute" of its Family, imported only when the family is served
KNOWN: dict[str, str] = {
    "opengpts": "api.opengpts:FAMILY",
    "agent_chat": "api.agent_chat:FAMILY",
    "sotopia": "api.sotopia:FAMILY",
    "avatar": "api.avatar:FAMILY",
}

#: the platform's own kinds, served with any families
PLATFORM_KINDS = ("actors.counter",)


def configured(names: str | None = None) -> list[Family]:
    """The families named (by default ACTORLOG_FAMILIES, else all), in KNOWN's order."""
    raw = names if names is not None else ServiceSettings.load().families
    chosen = [n.strip() for n in raw.split(",") if n.strip()] or list(KNOWN)
    unknown = [n for n in chosen if n not in KNOWN]
    if unknown:
        raise ValueError(f"unknown API families {unknown}; this service has "
                         f"{', '.join(KNOWN)}")
    out = []
    for name in KNOWN:
        if name in chosen:
            module, _, attr = KNOWN[name].partition(":")
            out.append(getattr(importlib.import_module(module), attr))
    return out


def settings_for(settings: Settings, families: list[Family] | None = None) -> Settings:
    """``settings`` with what the families need every host to load."""
    families = configured() if families is None else families
    kinds = tuple(m for f in families for m in f.kind_modules)
    services = tuple(s for f in families for s in f.services)
    return settings.with_parts(PLATFORM_KINDS + kinds, services)


def sections(families: list[Family] | None = None) -> list[type[Section]]:
    """Every part's settings model: the runtime's, the service's, the model port's, then each
    family's (all known families by default): what is checked at start and what the README's
    configuration table lists."""
    if families is None:
        families = configured(",".join(KNOWN))
    own = [s for f in families for s in
           (f.settings if isinstance(f.settings, tuple) else (f.settings,)) if s is not None]
    return [RuntimeSettings, ServiceSettings, ModelSettings, *own]


def check_settings(families: list[Family], options: dict[str, str] | None = None) -> None:
    """ConfigError naming every variable whose value its model refuses."""
    check(sections(families), options)


def app_settings(**overrides: object) -> Settings:
    """The environment's settings with the configured families' kinds and services: what a
    Python program that drives entities directly passes to runtime.client.connect."""
    return settings_for(Settings.from_env(**overrides))


def _error_bodies(families: list[Family]) -> Callable[[str], ErrorBody]:
    """The edge's error shape for a path: the family's that claims it, else FastAPI's."""
    claims = [(prefix, f.error_body) for f in families if f.error_body is not None
              for prefix in f.error_paths]

    def pick(path: str) -> ErrorBody:
        for prefix, body in claims:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return body
        return default_error
    return pick


def cors_origins(raw: str | None = None) -> list[str]:
    """ACTORLOG_CORS_ORIGINS: the browser origins allowed to call every family's routes,
    comma-separated; "*" for any. Empty (the default): no CORS headers, browsers on other
    origins are refused by their own rules."""
    given = None if raw is None else {"ACTORLOG_CORS_ORIGINS": raw}
    return ServiceSettings.load(given).origins()  # ConfigError (a ValueError) names it


def _allowed(app: FastAPI, path: str) -> str:
    """Every method of every route whose path matches ``path`` (included routers too)."""
    methods: set[str] = set()
    for route in iter_route_contexts(app.router.routes):
        if route.methods and route.path_format and _template(route.path_format).match(path):
            methods |= set(route.methods)
    return ", ".join(sorted(methods))


@functools.cache
def _template(path_format: str) -> re.Pattern[str]:
    """A route's path template ("/threads/{tid}/state") as a pattern of the paths it takes."""
    parts = re.split(r"(\{[^}]+\})", path_format)
    return re.compile("^" + "".join("[^/]+" if p.startswith("{") else re.escape(p)
                                    for p in parts) + "$")


def build_app(families: list[Family]) -> FastAPI:
    """One FastAPI app: the edge middleware, the platform's routes, then each family's."""
    # /docs and /redoc are the console's: Swagger UI's and ReDoc's files served from the
    # package, not a CDN (api/console)
    app = FastAPI(title="actorlog", version="0.1.0", docs_url=None, redoc_url=None)

    def document() -> dict:
        """FastAPI's document, with the event codec's bounds written in (api/openapi_doc.py);
        built once, as FastAPI's own."""
        if app.openapi_schema is None:
            app.openapi_schema = with_codec_bounds(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
    # Run by api/http_server.py in its event loop while it serves (not by an ASGI lifespan:
    # under Serve that would run in Serve's loop too, and a PostgreSQL store's connections
    # belong to the one loop that serves).
    app.state.background = [w for f in families for w in f.background]
    pick = _error_bodies(families)
    app.add_middleware(EdgeMiddleware, error_body=pick)
    origins = cors_origins()
    if origins:  # outermost: preflights are answered, and error answers carry the headers too
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"],
                           allow_headers=["*"], expose_headers=["x-request-id"],
                           allow_credentials="*" not in origins, max_age=600)
    for router in (log_api.router, log_api.info_router, log_api.tail_router, metrics.router,
                   console.pages_router, console.catalog_router,
                   *(r for family in families for r in family.routers)):
        app.include_router(router)
    app.get("/", include_in_schema=False)(console.landing(families))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """FastAPI's own refusals (404 for no route, 405 for a wrong method) in the shape of
        the family whose path it is. A 405's Allow header names every method the path takes:
        Starlette names only those of the first route that matched the path, and a path
        served by one route per method (GET, PUT, DELETE) needs them all."""
        if exc.status_code == 405:
            exc = StarletteHTTPException(405, exc.detail, headers={
                **(exc.headers or {}), "Allow": _allowed(app, request.url.path)})
        body = pick(request.url.path)
        if body is default_error:
            return await http_exception_handler(request, exc)
        rid = current_request_id() or ""
        return JSONResponse(body(exc.status_code, str(exc.detail), rid), exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.get("/health", response_model=Health,
             responses={**detail_responses(), 503: {
                 "model": Health, "description": "a write would fail now: a host (or its "
                                                 "store) does not answer, or the node is "
                                                 "gone"}})
    async def health() -> Response:
        """{"status": "ok"} as the OpenGPTs and agent chat documents have it, with Sotopia's
        message and components, when a write would work now: every actor host answers,
        through its own store. Otherwise 503 {"status": "unavailable", "problems": [...]}.
        /v1/runtime has the details (store, hosts, nodes)."""
        try:
            problems = await current().problems()
        except RuntimeError:  # no runtime in this process (an app built for its document)
            problems = []
        if not problems:
            return JSONResponse(Health(status="ok").model_dump(exclude={"problems"}))
        body = Health(status="unavailable", message="; ".join(problems),
                      components={"database": "unknown", "hosts": "unavailable"},
                      problems=problems)
        return JSONResponse(body.model_dump(), 503)

    return app
