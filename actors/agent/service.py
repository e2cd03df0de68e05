"""The agent's tools as a host service ("actors.agent.service:agent_tools"), configured by the
options that travel with the settings: ACTORLOG_AGENT_CONTACTS (the contacts file) and
ACTORLOG_AGENT_TOOLS (operator functions, "module:function", comma-separated)."""

from __future__ import annotations

from typing import Any

from actors.agent.tools import load_tools
from runtime.config import Settings
from runtime.stores.base import EventStore

__all__ = ["AGENT_TOOLS", "agent_tools"]

AGENT_TOOLS = "actors.agent.service:agent_tools"


def agent_tools(settings: Settings, store: EventStore) -> dict[str, Any]:
    return {"agent_tools": load_tools(settings.option("ACTORLOG_AGENT_CONTACTS") or None,
                                      settings.option("ACTORLOG_AGENT_TOOLS"))}
