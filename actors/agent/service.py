"""The agent's tools as a host service ("actors.agent.service:agent_tools"), configured by the
options that travel with the settings: ACTORLOG_AGENT_CONTACTS (the contacts file) and
ACTORLOG_AGENT_TOOLS (operator functions, "module:function", comma-separated)."""

from __future__ import annotations

from typing import Any, Iterator

from actors.agent.settings import AgentSettings
from runtime.config import Settings
from runtime.stores.base import EventStore

__all__ = ["AGENT_TOOLS", "agent_tools"]

AGENT_TOOLS = "actors.agent.service:agent_tools"


class AgentTools:
    """The tools, built on first use: smolagents takes a second to import, which a host that
    never runs an agent (or a host restarting after a failure) should not pay."""

    def __init__(self, contacts: str | None, modules: str) -> None:
        self.contacts, self.modules = contacts, modules
        self._tools: list[Any] | None = None

    def __iter__(self) -> Iterator[Any]:
        if self._tools is None:
            from actors.agent.tools import load_tools

            self._tools = load_tools(self.contacts, self.modules)
        return iter(self._tools)


def agent_tools(settings: Settings, store: EventStore) -> dict[str, Any]:
    mine = AgentSettings.load(settings.options)
    return {"agent_tools": AgentTools(mine.contacts or None, mine.tools)}
