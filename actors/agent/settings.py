"""The agent chat family's settings (runtime/settings.py). Beside the chat kind, not in the
family's API package, because the hosts read half of them (the tools its agents get) and
actors never import api/."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from runtime.settings import Section

__all__ = ["AgentSettings"]


class AgentSettings(Section):
    title: ClassVar[str] = "Agent chat"
    model: str = Field("", validation_alias="ACTORLOG_AGENT_MODEL",
                       description="the model name agent chats use, mapped by `ACTORLOG_MODELS`",
                       json_schema_extra={"shown": "unset (the default model)"})
    contacts: str = Field("", validation_alias="ACTORLOG_AGENT_CONTACTS",
                          description="the contacts file of `get_contacts` (JSON list or CSV)",
                          json_schema_extra={"shown": "unset (a demonstration directory)"})
    tools: str = Field("", validation_alias="ACTORLOG_AGENT_TOOLS",
                       description="more agent tools: `module:function`, comma-separated")
    run_seconds: float = Field(120.0, gt=0, validation_alias="ACTORLOG_AGENT_RUN_SECONDS",
                               description="the deadline of `POST /agent/run`")
