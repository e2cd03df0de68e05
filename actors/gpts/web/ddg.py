"""DuckDuckGo through its HTML results page ({base_url}/html/, the page the ddgs package's
DuckDuckGo backend reads; ddgs itself cannot be pointed at another address, so a stand-in could
not answer it). Shaped as OpenGPTs' DuckDuckGoSearchRun shapes it: the snippets joined by
spaces; titles and links in the artifact."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from actors.gpts.settings import ToolConfig
from actors.gpts.web import Found, ToolResult, document
from actors.gpts.web.http import base, request

BASE_URL = "https://html.duckduckgo.com"


async def run(tool_type: str, query: str, config: ToolConfig, key: str) -> ToolResult:
    from bs4 import BeautifulSoup

    page = await request("POST", base(config, BASE_URL) + "/html/", config,
                         data={"q": query[:400], "b": "", "kl": "wt-wt"})
    soup = BeautifulSoup(page.text, "html.parser")
    found = []
    for result in soup.select(".result"):
        link = result.select_one("a.result__a")
        snippet = result.select_one(".result__snippet")
        if link is None or "result--ad" in (result.get("class") or []):
            continue
        found.append(Found(link.get_text(" ", strip=True), _target(link.get("href", "")),
                           snippet.get_text(" ", strip=True) if snippet else ""))
        if len(found) >= config.max_results:
            break
    if not found:
        return ToolResult("No good DuckDuckGo Search Result was found", [])
    return ToolResult(" ".join(f.text for f in found), [document(f) for f in found])


def _target(href: str) -> str:
    """The result's own address: DuckDuckGo links through /l/?uddg=<address>."""
    parsed = urlparse(href if "://" in href else "https:" + href if href.startswith("//")
                      else href)
    if parsed.path.startswith("/l/"):
        return parse_qs(parsed.query).get("uddg", [href])[0]
    return href
