"""arXiv through the arxiv package (its Atom feed, /api/query), shaped as OpenGPTs' ArxivQueryRun
shapes it: per paper "Published: / Title: / Authors: / Summary:", blank lines between,
at most 4,000 characters. The package is synchronous (requests): it runs in a thread, its
session bounded by the tool's timeout so a slow service frees the thread too."""

from __future__ import annotations

import asyncio

from actors.gpts.settings import ToolConfig
from actors.gpts.web import Found, ToolResult, document
from actors.gpts.web.http import base

BASE_URL = "https://export.arxiv.org"
MAX_CHARS = 4000  # ArxivAPIWrapper's doc_content_chars_max


async def run(tool_type: str, query: str, config: ToolConfig, key: str) -> ToolResult:
    papers = await asyncio.to_thread(_search, query, config)
    if not papers:
        return ToolResult("No good Arxiv Result was found", [])
    text = "\n\n".join(f"Published: {p.extra['published']}\nTitle: {p.title}\n"
                       f"Authors: {p.extra['authors']}\nSummary: {p.text}" for p in papers)
    return ToolResult(text[:MAX_CHARS], [document(p) for p in papers])


def _search(query: str, config: ToolConfig) -> list[Found]:
    import arxiv
    import requests.adapters

    class Bounded(requests.adapters.HTTPAdapter):
        def send(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            kwargs["timeout"] = config.timeout
            return super().send(*args, **kwargs)

    client = arxiv.Client(page_size=config.max_results, delay_seconds=0, num_retries=0)
    client.query_url_format = base(config, BASE_URL) + "/api/query?{}"
    for scheme in ("http://", "https://"):
        client._session.mount(scheme, Bounded())
    search = arxiv.Search(query=query[:300], max_results=config.max_results)
    return [Found(r.title, r.entry_id, " ".join(r.summary.split()),
                  {"published": str(r.updated.date()),
                   "authors": ", ".join(a.name for a in r.authors)})
            for r in client.results(search)]
