"""The service's face: the landing page (GET /), the API documents with no network (/docs,
/redoc: Swagger UI's and ReDoc's files ship in the fastapi-offline package), and the console
(/console: plain HTML and JS modules in static/, over the operator's log API and the catalog
below). Served by the service itself beside the platform's routes, whatever families are
configured.
"""

from __future__ import annotations

import functools
import html
import mimetypes
import os
from typing import Annotated, Any
from urllib.parse import quote

import fastapi_offline
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from api.console.catalog import catalog_for
from api.edge import detail_responses
from api.operator import OperatorRoute
from api.runtime import Runtime, current, get_runtime
from runtime.registry import kinds as registered_kinds

__all__ = ["catalog_router", "pages_router"]

STATIC = os.path.join(os.path.dirname(__file__), "static")
DOCS_STATIC = os.path.join(os.path.dirname(fastapi_offline.__file__), "static")
pages_router = APIRouter(include_in_schema=False)
catalog_router = APIRouter(prefix="/v1/catalog", tags=["log"], route_class=OperatorRoute,
                           responses=detail_responses(401, 404))
MAX_PAGE = 500


def _file(folder: str, name: str) -> FileResponse:
    """A file of ``folder`` by its plain name (no path in it): the folder is all it serves."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise HTTPException(404, "Not Found")
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise HTTPException(404, "Not Found")
    media = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if name.endswith(".js"):
        media = "text/javascript"
    return FileResponse(path, media_type=media, headers={"Cache-Control": "no-cache"})


@pages_router.get("/console")
@pages_router.get("/console/")
async def console() -> FileResponse:
    return _file(STATIC, "index.html")


@pages_router.get("/console/static/{name}")
async def console_file(name: str) -> FileResponse:
    return _file(STATIC, name)


#: the one address outside this service in the bundled files: ReDoc's own logo in its
#: sidebar, drawn from a CDN; it is given the package's favicon instead
_REDOC_LOGO = (b"https://cdn.redoc.ly/redoc/logo-mini.svg", b"/docs/static/favicon.png")


@functools.cache
def _redoc_js() -> bytes:
    with open(os.path.join(DOCS_STATIC, "redoc.standalone.js"), "rb") as f:
        return f.read().replace(*_REDOC_LOGO)


@pages_router.get("/docs/static/{name}", response_model=None)
async def docs_file(name: str) -> FileResponse | Response:
    if name == "redoc.standalone.js":
        return Response(_redoc_js(), media_type="text/javascript")
    return _file(DOCS_STATIC, name)


@pages_router.get("/docs")
async def swagger() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="actorlog: API",
                               swagger_js_url="/docs/static/swagger-ui-bundle.js",
                               swagger_css_url="/docs/static/swagger-ui.css",
                               swagger_favicon_url="/docs/static/favicon.png")


@pages_router.get("/redoc")
async def redoc() -> HTMLResponse:
    return get_redoc_html(openapi_url="/openapi.json", title="actorlog: API",
                          redoc_js_url="/docs/static/redoc.standalone.js",
                          redoc_favicon_url="/docs/static/favicon.png",
                          with_google_fonts=False)


def landing(families: list[Any]) -> Any:
    """GET /: what this service is, the families it serves with their documents, the console,
    and whether a write would work now (the store and its hosts, as /health says)."""

    async def page() -> HTMLResponse:
        try:
            problems = await current().problems()
        except RuntimeError:  # no runtime in this process (an app built for its document)
            problems = ["no runtime in this process"]
        health = ("<p class=ok>The store and every host answer: writes work now.</p>"
                  if not problems else
                  "<p class=bad>Writes would fail now: "
                  + html.escape("; ".join(problems)) + "</p>")
        items = "".join(
            f"<li><a href=\"/docs#/{quote(f.doc_tag or f.name)}\">"
            f"{html.escape(f.title or f.name)}</a>: {html.escape(f.summary)}</li>"
            for f in families)
        body = f"""<!doctype html><html lang=en><head><meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1"><title>actorlog</title>
<style>body{{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;
color:#1b1f24}}a{{color:#2a5bd7}}.ok{{color:#16794c}}.bad{{color:#b00020}}li{{margin:.3rem 0}}
</style></head><body>
<h1>actorlog</h1>
<p>An event-sourced actor runtime on Ray: every chat, thread, episode, batch and avatar session
here is an entity whose state is a replay of its own append-only log. It serves these API
families, each as its document describes it:</p>
<ul>{items}</ul>
<p><a href="/console">The console</a>: list, read, rewind, watch and fork any entity (it asks
for the operator token). The whole API: <a href="/docs">/docs</a> (Swagger UI),
<a href="/redoc">/redoc</a>, <a href="/openapi.json">/openapi.json</a>.</p>
<h2>Health</h2>{health}
<p><a href="/health">/health</a> answers the same as JSON.</p>
</body></html>"""
        return HTMLResponse(body, status_code=200)

    return page


@catalog_router.get("")
async def catalog_kinds(rt: Annotated[Runtime, Depends(get_runtime)]) -> dict[str, Any]:
    """Every entity kind this service knows, with how many entities of it have events."""
    runner = catalog_for(rt.store)
    await runner.catch_up()
    counts = runner.projection.counts()
    names = sorted(set(registered_kinds()) | set(counts))
    return {"kinds": [{"kind": k, "count": counts.get(k, 0)} for k in names]}


@catalog_router.get("/{kind}")
async def catalog_page(kind: str, rt: Annotated[Runtime, Depends(get_runtime)],
                       q: Annotated[str, Query(max_length=200)] = "",
                       offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                       limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50
                       ) -> dict[str, Any]:
    """The kind's entities, the most recently changed first, ``limit`` at a time; ``q``
    matches a part of the id or of the tag."""
    runner = catalog_for(rt.store)
    await runner.catch_up()
    total, entities = runner.projection.page(kind, q, offset, limit)
    return {"kind": kind, "total": total, "offset": offset, "entities": entities}
