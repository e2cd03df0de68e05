"""One HTTP request to a tool's service: httpx, the tool's timeout, an error status raised
(actors/gpts/web/__init__.py words it for the agent)."""

from __future__ import annotations

from typing import Any

import httpx

from actors.gpts.settings import ToolConfig

USER_AGENT = "actorlog-opengpts-tools/1 (+https://github.com/langchain-ai/opengpts)"
#: the most of one answer read: a service that sends more is cut off, not buffered
MAX_BYTES = 4 * 1024 * 1024


async def request(method: str, url: str, config: ToolConfig, **kwargs: Any) -> httpx.Response:
    from actors.gpts.web import ToolFailure

    headers = {"User-Agent": USER_AGENT, **kwargs.pop("headers", {})}
    async with httpx.AsyncClient(timeout=config.timeout, follow_redirects=True) as client:
        async with client.stream(method, url, headers=headers, **kwargs) as response:
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
