"""One HTTP request to a tool's service: httpx, the tool's timeout, an error status raised
(actors/gpts/web/__init__.py words it for the agent)."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, Callable

import httpx

from actors.gpts.settings import ToolConfig

USER_AGENT = "actorlog-opengpts-tools/1 (+https://github.com/langchain-ai/opengpts)"
#: the most of one answer read: a service that sends more is cut off, not buffered
MAX_BYTES = 4 * 1024 * 1024


#: clients per event loop (a host has one), by what they were made for: a connection pool and
#: TLS context are made once, not per call (a new client cost ~20 ms of CPU, most of a call to
#: a nearby service)
_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Any, Any]]" = \
    weakref.WeakKeyDictionary()


def loop_client(key: Any, make: Callable[[], Any]) -> Any:
    """This event loop's client for ``key``, made by ``make`` the first time."""
    mine = _clients.setdefault(asyncio.get_running_loop(), {})
    client = mine.get(key)
    closed = getattr(client, "is_closed", False)  # httpx: a property; openai: a method
    if client is None or (closed() if callable(closed) else closed):
        client = mine[key] = make()
    return client


def _client() -> httpx.AsyncClient:
    return loop_client("httpx", lambda: httpx.AsyncClient(
        follow_redirects=True,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=16)))


async def request(method: str, url: str, config: ToolConfig, **kwargs: Any) -> httpx.Response:
    from actors.gpts.web import ToolFailure

    headers = {"User-Agent": USER_AGENT, **kwargs.pop("headers", {})}
    async with _client().stream(method, url, headers=headers, timeout=config.timeout,
                                **kwargs) as response:
        body = bytearray()
        async for piece in response.aiter_bytes():
            body += piece
            if len(body) > MAX_BYTES:
                raise ToolFailure(f"the service's answer passed {MAX_BYTES // 2**20} MiB")
    response = httpx.Response(response.status_code, headers=response.headers,
                              content=bytes(body), request=response.request)
    response.raise_for_status()
    return response


def base(config: ToolConfig, default: str) -> str:
    return (config.base_url or default).rstrip("/")
