"""Wikipedia through the MediaWiki Action API ({base_url}/w/api.php, action=query), as the
well-known clients (the wikipedia package OpenGPTs' WikipediaRetriever uses) read it: a search,
then each page's text. One request: a search generator with the pages' plain-text extracts
and addresses."""

from __future__ import annotations

from actors.gpts.settings import ToolConfig
from actors.gpts.web import Found, ToolResult, documents
from actors.gpts.web.http import base, request

BASE_URL = "https://en.wikipedia.org"
MAX_CHARS = 4000  # WikipediaRetriever's doc_content_chars_max


async def run(tool_type: str, query: str, config: ToolConfig, key: str) -> ToolResult:
    response = await request("GET", base(config, BASE_URL) + "/w/api.php", config, params={
        "action": "query", "format": "json", "formatversion": "2", "generator": "search",
        "gsrsearch": query[:300], "gsrlimit": str(config.max_results),
        "prop": "extracts|info", "inprop": "url", "explaintext": "1", "exintro": "1",
        "exlimit": "max", "redirects": "1"})
    body = response.json()
    if "error" in body:
        raise ValueError(body["error"].get("info") or body["error"].get("code"))
    pages = sorted((body.get("query") or {}).get("pages") or [],
                   key=lambda p: p.get("index", 0))
    return documents([Found(p["title"], p.get("fullurl") or
                            f"{base(config, BASE_URL)}/wiki/{p['title'].replace(' ', '_')}",
                            (p.get("extract") or "")[:MAX_CHARS].strip(),
                            {"pageid": p.get("pageid")})
                      for p in pages if p.get("title") and not p.get("missing")])
