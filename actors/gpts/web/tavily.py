"""Tavily through tavily-python's AsyncTavilyClient. "Search (Tavily)" gives what OpenGPTs'
TavilySearchResults gives: content a list of {title, url, content, score}, the raw answer as
artifact; "Search (short answer, Tavily)" gives the answer alone, as TavilyAnswer does."""

from __future__ import annotations

from actors.gpts.settings import ToolConfig
from actors.gpts.web import ToolFailure, ToolResult
from actors.gpts.web.http import base, loop_client

BASE_URL = "https://api.tavily.com"


async def run(tool_type: str, query: str, config: ToolConfig, key: str) -> ToolResult:
    from tavily import AsyncTavilyClient
    from tavily.errors import (BadRequestError, ForbiddenError, InvalidAPIKeyError,
                               MissingAPIKeyError, UsageLimitExceededError)
    from tavily.errors import TimeoutError as TavilyTimeout

    client = loop_client(("tavily", key, base(config, BASE_URL)), lambda: AsyncTavilyClient(
        api_key=key, api_base_url=base(config, BASE_URL)))
    answer = tool_type == "search_tavily_answer"
    try:
        body = await client.search(query[:400], max_results=config.max_results,
                                   search_depth="advanced" if answer else "basic",
                                   include_answer=answer, timeout=config.timeout)
    except (InvalidAPIKeyError, MissingAPIKeyError, ForbiddenError, UsageLimitExceededError,
            BadRequestError) as exc:
        raise ToolFailure(f"Tavily refused the search: {exc}") from None
    except TavilyTimeout:
        raise ToolFailure(f"the service did not answer within {config.timeout:g} s") from None
    if answer:
        return ToolResult(body.get("answer") or "Tavily gave no answer.", body)
    return ToolResult([{"title": r.get("title", ""), "url": r.get("url", ""),
                        "content": r.get("content", ""), "score": r.get("score")}
                       for r in body.get("results") or []], body)
