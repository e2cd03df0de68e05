"""The OpenGPTs web tools: each calls its real service (a well-kept client where one exists)
and gives back what OpenGPTs' tool gives: the tool message's content, shaped as OpenGPTs
shapes it, and an artifact of Document dicts (title and link in their metadata) from which a
model is shown titles and links (actors/gpts/messages.py).

A call never fails a run: a timeout, a refused key, an error status or an answer that does not
parse comes back as ToolFailure, which the action step writes as a tool message with status
"error" that the agent reads and answers around.
"""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass, field
from typing import Any, Awaitable, TypeVar

from actors.gpts.settings import ToolConfig

__all__ = ["Found", "ToolFailure", "ToolResult", "bounded", "call", "document", "documents",
           "worded"]

T = TypeVar("T")

#: tool type -> the module that calls its service (each has ``async def run(query, config,
#: key) -> ToolResult`` and ``BASE_URL``)
MODULES = {
    "wikipedia": "actors.gpts.web.wikipedia",
    "arxiv": "actors.gpts.web.arxiv_search",
    "pubmed": "actors.gpts.web.pubmed",
    "search_tavily": "actors.gpts.web.tavily",
    "search_tavily_answer": "actors.gpts.web.tavily",
    "ddg_search": "actors.gpts.web.ddg",
    "you_search": "actors.gpts.web.you",
    "sec_filings_kai_ai": "actors.gpts.web.kay",
    "press_releases_kai_ai": "actors.gpts.web.kay",
    "dall_e": "actors.gpts.web.dalle",
}


class ToolFailure(Exception):
    """What the tool could not do, in words the agent can read."""


@dataclass
class ToolResult:
    content: Any  # the tool message's content, as OpenGPTs' tool gives it
    artifact: Any = None  # Document dicts (or the service's raw answer)


@dataclass
class Found:
    """One search result."""

    title: str
    url: str
    text: str
    extra: dict[str, Any] = field(default_factory=dict)


#: the most of one result's text kept (LangChain's retrievers cut a page at 4,000 too)
MAX_CHARS = 4000


def document(found: Found) -> dict[str, Any]:
    """LangChain's Document dict, as OpenGPTs' retriever tools make them."""
    return {"id": None, "metadata": {"title": found.title, "source": found.url,
                                     **found.extra},
            "page_content": found.text[:MAX_CHARS], "type": "Document"}


def documents(found: list[Found]) -> ToolResult:
    """A retriever tool's result (Wikipedia, PubMed, You.com, Kay.ai): OpenGPTs'
    create_retriever_tool joins the documents' text with blank lines."""
    docs = [document(f) for f in found]
    return ToolResult("\n\n".join(d["page_content"] for d in docs) if docs
                      else "No good result was found.", docs)


async def call(tool_type: str, query: str, config: ToolConfig, key: str) -> ToolResult:
    """The tool's service asked ``query``, bounded by the tool's timeout; ToolFailure for
    anything that went wrong."""
    module = importlib.import_module(MODULES[tool_type])
    return await bounded(module.run(tool_type, query, config, key), config)


async def bounded(work: Awaitable[T], config: ToolConfig) -> T:
    """``work`` within the tool's timeout: the one place a tool's, a toolkit's list's or an
    action's failure becomes ToolFailure, in words the agent can read."""
    try:
        return await asyncio.wait_for(work, config.timeout)
    except ToolFailure:
        raise
    except asyncio.TimeoutError:
        raise ToolFailure(f"the service did not answer within {config.timeout:g} s") from None
    except Exception as exc:  # noqa: BLE001 - a client's own errors, worded for the agent
        raise ToolFailure(worded(exc)) from None


def worded(exc: Exception) -> str:
    """An unexpected failure of a call, in words an agent can read."""
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        return (f"the service answered {exc.response.status_code} "
                f"{exc.response.reason_phrase}".rstrip())
    if isinstance(exc, httpx.TransportError):
        return f"the service could not be reached ({type(exc).__name__})"
    text = str(exc).strip() or type(exc).__name__
    return f"the service failed: {text[:300]}"
