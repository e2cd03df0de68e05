"""The tools an OpenGPTs agent can be given, and what calling one does here.

Retrieval searches the documents uploaded to the assistant and the thread. The web tools
(search engines, Wikipedia, arXiv...) call their real services (actors/gpts/web/), configured
by ACTORLOG_TOOLS (actors/gpts/settings.py): on by default where their key is there. A tool
that is off, lacks its key, or whose service fails answers with a tool message saying so
plainly (status "error"), and the agent carries on: a tool never fails a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actors.gpts.settings import ToolSettings
from actors.gpts.web import MODULES, ToolFailure, call
from actors.gpts.web.actions import list_actions, run_action
from llm.port import ToolSpec
from runtime.settings import environment

__all__ = ["TOOLS", "Tool", "answer", "spec_for", "unavailable_message"]


@dataclass(frozen=True)
class Tool:
    type: str
    title: str
    runtime_name: str  # the name the model sees and tool messages carry (OpenGPTs' at HEAD)
    description: str
    needs: tuple[str, ...] = ()  # the variables OpenGPTs reads for it (its key)
    earlier_names: tuple[str, ...] = ()  # names this server gave it before, still answered


TOOLS: dict[str, Tool] = {t.type: t for t in (
    Tool("action_server_by_sema4ai", "Action Server by Sema4.ai", "action_server",
         "Run AI actions with Sema4.ai Action Server."),
    Tool("ai_action_runner_by_connery", "AI Action Runner by Connery", "connery_action",
         "Connect OpenGPTs to the real world with Connery actions.",
         ("CONNERY_RUNNER_URL", "CONNERY_RUNNER_API_KEY")),
    Tool("ddg_search", "DuckDuckGo Search", "duckduckgo_search",
         "Search the web with DuckDuckGo. Input: a search query."),
    Tool("search_tavily", "Search (Tavily)", "search_tavily",
         "A search engine optimized for comprehensive, accurate, and trusted results. "
         "Input: a search query.", ("TAVILY_API_KEY",), ("tavily_search_results_json",)),
    Tool("search_tavily_answer", "Search (short answer, Tavily)", "search_tavily_answer",
         "A search engine that answers a question shortly. Input: a search query.",
         ("TAVILY_API_KEY",), ("tavily_answer",)),
    Tool("retrieval", "Retrieval", "retrieval", "Look up information in uploaded files."),
    Tool("arxiv", "Arxiv", "arxiv", "Search arXiv for scientific papers (physics, "
         "mathematics, computer science, biology, finance, statistics...). Input: a search "
         "query."),
    Tool("you_search", "You.com Search", "you_search", "Searches for documents using "
         "You.com.", ("YDC_API_KEY",)),
    Tool("sec_filings_kai_ai", "SEC Filings (Kay.ai)", "sec_filings_search",
         "Search for a query among SEC Filings.", ("KAY_API_KEY",)),
    Tool("press_releases_kai_ai", "Press Releases (Kay.ai)", "press_release_search",
         "Search for a query among press releases from US companies.", ("KAY_API_KEY",),
         ("press_releases_search",)),
    Tool("pubmed", "PubMed", "pub_med_search", "Search for a query on PubMed.", (),
         ("pub_med",)),
    Tool("wikipedia", "Wikipedia", "wikipedia", "Search for a query on Wikipedia."),
    Tool("dall_e", "Generate Image (Dall-E)", "Dall-E-Image-Generator",
         "A wrapper around OpenAI DALL-E API. Useful for when you need to generate images "
         "from a text description. Input should be an image description.",
         ("OPENAI_API_KEY",), ("dall_e_image_generator",)),
)}


def spec_for(tool_type: str, retrieval_description: str | None = None) -> ToolSpec:
    tool = TOOLS[tool_type]
    description = retrieval_description if tool_type == "retrieval" and retrieval_description \
        else tool.description
    return ToolSpec(tool.runtime_name, description)


def by_runtime_name(name: str) -> Tool | None:
    return next((t for t in TOOLS.values()
                 if t.runtime_name == name or name in t.earlier_names), None)


#: the tools that are toolkits: each of their actions is a tool of its own
#: (actors/gpts/web/actions.py); the catalog's entry is a placeholder the model sees when
#: the actions cannot be listed
TOOLKITS = ("ai_action_runner_by_connery", "action_server_by_sema4ai")


def _key(tool: Tool, settings: ToolSettings) -> str:
    """The tool's key: its settings' own, else the variable OpenGPTs reads for it."""
    return settings.tool(tool.type).api_key or (environment(tool.needs[-1]) if tool.needs
                                                 else "")


def _toolkit_address(tool: Tool, settings: ToolSettings, entry: dict[str, Any] | None
                     ) -> tuple[str, str]:
    """A toolkit's (address, key): Connery's from ACTORLOG_TOOLS or OpenGPTs' variables, the
    Action Server's from the assistant's tool entry (its config's url and api_key)."""
    if tool.type == "action_server_by_sema4ai":
        entry = entry or {}
        return str(entry.get("url") or ""), str(entry.get("api_key") or "")
    config = settings.tool(tool.type)
    return config.base_url or environment(tool.needs[0]), _key(tool, settings)


def unavailable_reason(tool: Tool, settings: ToolSettings,
                       entry: dict[str, Any] | None = None) -> str | None:
    """Why the tool cannot be called here, in words; None when it can. ``entry``: the
    assistant's own settings for it (the Action Server's url and api_key)."""
    config = settings.tool(tool.type)
    if config.enabled is False:
        return "it is turned off on this server"
    if tool.type == "action_server_by_sema4ai":
        url, key = _toolkit_address(tool, settings, entry)
        if not url or not key:
            return "it needs the Action Server's url and api_key in the assistant's settings"
        return None
    if tool.type not in MODULES and tool.type not in TOOLKITS:
        return "this server does not run it"
    missing = [k for k in tool.needs if not (_key(tool, settings) if k == tool.needs[-1]
                                             else config.base_url or environment(k))]
    if missing:
        return f"it needs {', '.join(missing)}, which is not configured"
    return None


def unavailable_message(tool: Tool, reason: str) -> str:
    return (f"The {tool.title} tool is not available on this server: {reason}. Answer "
            "without it, and say so if it matters.")


async def answer(tool: Tool, args: dict[str, Any], settings: ToolSettings,
                 entry: dict[str, Any] | None = None) -> tuple[Any, Any, str]:
    """A web tool called with the model's arguments: (content, artifact, status), status
    "error" when it is not available or its service failed (the agent reads why). A
    toolkit's placeholder answers why its actions are not there, or names them."""
    reason = unavailable_reason(tool, settings, entry)
    if reason is not None:
        return unavailable_message(tool, reason), None, "error"
    if tool.type in TOOLKITS:
        try:
            found = await _actions(tool, settings, entry)
        except ToolFailure as exc:
            return f"The {tool.title} tool failed: it could not list its actions: {exc}.", \
                None, "error"
        return (f"The {tool.title} tool is a set of actions; call one of them by its name: "
                f"{', '.join(a.name for a in found) or 'none is there'}."), None, "error"
    query = args.get("query") if isinstance(args, dict) else None
    if not isinstance(query, str) or not query.strip():
        query = " ".join(str(v) for v in (args or {}).values() if isinstance(v, str)).strip()
    if not query:
        return f"The {tool.title} tool needs a query.", None, "error"
    try:
        result = await call(tool.type, query, settings.tool(tool.type), _key(tool, settings))
    except ToolFailure as exc:
        return f"The {tool.title} tool failed: {exc}.", None, "error"
    return result.content, result.artifact, "success"


async def _actions(tool: Tool, settings: ToolSettings, entry: dict[str, Any] | None
                   ) -> list[Any]:
    url, key = _toolkit_address(tool, settings, entry)
    return await list_actions(tool.type, url, key, settings.tool(tool.type))


class GptsTools:
    """The OpenGPTs tools' settings where an agent runs (a host's service): its web tools
    called through ``answer``, toolkits' actions through ``actions`` and ``act``, and the
    embedding model retrieval may use."""

    def __init__(self, settings: ToolSettings) -> None:
        self.settings = settings
        self.embedder = None
        if settings.embeddings is not None:
            from actors.gpts.embeddings import Embedder

            self.embedder = Embedder(settings.embeddings)

    async def answer(self, tool: Tool, args: dict[str, Any],
                     entry: dict[str, Any] | None = None) -> tuple[Any, Any, str]:
        return await answer(tool, args, self.settings, entry)

    async def actions(self, tool_types: list[str], entries: dict[str, dict[str, Any]]
                      ) -> dict[str, Any]:
        """The toolkits' actions, by the name the model calls (an Action); a toolkit that is
        off, unconfigured or unreachable gives none (its placeholder stays offered)."""
        found: dict[str, Any] = {}
        for tool_type in tool_types:
            tool = TOOLS.get(tool_type)
            if tool is None or tool_type not in TOOLKITS or unavailable_reason(
                    tool, self.settings, entries.get(tool_type)) is not None:
                continue
            try:
                for action in await _actions(tool, self.settings, entries.get(tool_type)):
                    found.setdefault(action.name, action)
            except ToolFailure:
                continue
        return found

    async def act(self, action: Any, args: dict[str, Any]) -> tuple[Any, Any, str]:
        """An action run with the model's arguments, as ``answer`` gives a tool's result."""
        tool = TOOLS[action.tool_type]
        try:
            result = await run_action(action, args, self.settings.tool(action.tool_type))
        except ToolFailure as exc:
            return f"The {tool.title} tool failed: {exc}.", None, "error"
        return result.content, result.artifact, "success"

    async def search(self, documents: list[dict[str, Any]], query: str, k: int = 4
                     ) -> list[dict[str, Any]]:
        """Retrieval: BM25, and with an embedding model BM25 and vectors together."""
        if self.embedder is None:
            from actors.gpts.documents import search

            return search(documents, query, k)
        return await self.embedder.search(documents, query, k)


def gpts_tools(settings: Any, store: Any) -> dict[str, Any]:
    """The service factory (runtime/services.py) the OpenGPTs family names."""
    return {"gpts_tools": GptsTools(ToolSettings.load(settings.options))}
