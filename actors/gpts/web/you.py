"""You.com's search API (GET {base_url}/search, X-API-Key), as OpenGPTs' YouRetriever reads it:
three hits, each snippet a Document; the retriever tool joins their text."""

from __future__ import annotations

from actors.gpts.settings import ToolConfig
from actors.gpts.web import Found, ToolResult, documents
from actors.gpts.web.http import base, request

BASE_URL = "https://api.ydc-index.io"
SNIPPETS_PER_HIT = 3


async def run(tool_type: str, query: str, config: ToolConfig, key: str) -> ToolResult:
    response = await request("GET", base(config, BASE_URL) + "/search", config,
                             params={"query": query[:400],
                                     "num_web_results": str(config.max_results)},
                             headers={"X-API-Key": key})
    found = []
    for hit in (response.json().get("hits") or [])[:config.max_results]:
        for snippet in (hit.get("snippets") or [hit.get("description") or ""])[
                :SNIPPETS_PER_HIT]:
            found.append(Found(hit.get("title") or "", hit.get("url") or "", snippet,
                               {"description": hit.get("description") or ""}))
    return documents(found)
