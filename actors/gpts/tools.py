"""The tools an OpenGPTs agent can be given, and what calling one does here.

Retrieval searches the documents uploaded to the assistant and the thread. The web tools
(search engines, Wikipedia, arXiv...) need network access and often a key; this server has
neither unless an operator configures them, so a call answers with a tool message saying so,
and the agent carries on.
"""

from __future__ import annotations

from dataclasses import dataclass

from llm.port import ToolSpec
from runtime.settings import environment

__all__ = ["TOOLS", "Tool", "spec_for", "unavailable_message"]


@dataclass(frozen=True)
class Tool:
    type: str
    title: str
    runtime_name: str  # the name the model sees and tool messages carry
    description: str
    needs: tuple[str, ...] = ()  # environment variables besides network access


TOOLS: dict[str, Tool] = {t.type: t for t in (
    Tool("action_server_by_sema4ai", "Action Server by Sema4.ai", "action_server",
         "Run AI actions with Sema4.ai Action Server."),
    Tool("ai_action_runner_by_connery", "AI Action Runner by Connery", "connery_action",
         "Connect OpenGPTs to the real world with Connery actions.",
         ("CONNERY_RUNNER_URL", "CONNERY_RUNNER_API_KEY")),
    Tool("ddg_search", "DuckDuckGo Search", "duckduckgo_search",
         "Search the web with DuckDuckGo."),
    Tool("search_tavily", "Search (Tavily)", "tavily_search_results_json",
         "Search the web with Tavily.", ("TAVILY_API_KEY",)),
    Tool("search_tavily_answer", "Search (short answer, Tavily)", "tavily_answer",
         "Search the web with Tavily and get a short answer.", ("TAVILY_API_KEY",)),
    Tool("retrieval", "Retrieval", "retrieval", "Look up information in uploaded files."),
    Tool("arxiv", "Arxiv", "arxiv", "Search arXiv for scientific papers."),
    Tool("you_search", "You.com Search", "you_search", "Search the web with You.com.",
         ("YDC_API_KEY",)),
    Tool("sec_filings_kai_ai", "SEC Filings (Kay.ai)", "sec_filings_search",
         "Search SEC filings with Kay.ai.", ("KAY_API_KEY",)),
    Tool("press_releases_kai_ai", "Press Releases (Kay.ai)", "press_releases_search",
         "Search press releases with Kay.ai.", ("KAY_API_KEY",)),
    Tool("pubmed", "PubMed", "pub_med", "Search PubMed for biomedical literature."),
    Tool("wikipedia", "Wikipedia", "wikipedia", "Look up a topic on Wikipedia."),
    Tool("dall_e", "Generate Image (Dall-E)", "dall_e_image_generator",
         "Generate an image from a description with DALL-E.", ("OPENAI_API_KEY",)),
)}


def spec_for(tool_type: str, retrieval_description: str | None = None) -> ToolSpec:
    tool = TOOLS[tool_type]
    description = retrieval_description if tool_type == "retrieval" and retrieval_description \
        else tool.description
    return ToolSpec(tool.runtime_name, description)


def by_runtime_name(name: str) -> Tool | None:
    return next((t for t in TOOLS.values() if t.runtime_name == name), None)


def unavailable_message(tool: Tool) -> str:
    missing = [k for k in tool.needs if not environment(k)]
    needs = "network access" + (f" and {', '.join(missing)}" if missing else "")
    return (f"The {tool.title} tool is not available on this server: it needs {needs}, "
            "which is not configured. Answer without it, and say so if it matters.")
