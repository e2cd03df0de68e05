"""One HTTP request to a tool's service: httpx, the tool's timeout, an error status raised
(actors/gpts/web/__init__.py words it for the agent)."""

from __future__ import annotations

from typing import Any

import httpx

from actors.gpts.settings import ToolConfig

USER_AGENT = "actorlog-opengpts-tools/1 (+https://github.com/langchain-ai/opengpts)"


async def request(method: str, url: str, config: ToolConfig, **kwargs: Any) -> httpx.Response:
    headers = {"User-Agent": USER_AGENT, **kwargs.pop("headers", {})}
    async with httpx.AsyncClient(timeout=config.timeout, follow_redirects=True) as client:
        response = await client.request(method, url, headers=headers, **kwargs)
    response.raise_for_status()
    return response


def base(config: ToolConfig, default: str) -> str:
    return (config.base_url or default).rstrip("/")
