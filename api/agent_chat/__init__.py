"""The agent chat family (seed 001, ../shared/specs/agent_chat_and_avatar.md part A): a
step-streaming tool agent over WebSocket /chat/{chat_id}, GET /history/{chat_id} and a
stateless POST /agent/run.

Kinds: actors/chat.py (a chat), actors/agent/ (the smolagents agent over the model port, its
tools, its memory). Service: service.py (no HTTP). Edge: routes.py (the routes and the socket;
wire models from schemas/agent_chat.py). Settings: actors/agent/settings.py (the hosts read
half of them)."""

from actors.agent.service import AGENT_TOOLS
from actors.agent.settings import AgentSettings
from api.agent_chat import routes, service
from api.background import Work
from api.family import Family
from llm.service import MODEL_PORT

__all__ = ["FAMILY"]

FAMILY = Family("agent_chat", (routes.router,), title="Agent chat",
                summary="a tool agent whose steps stream over WebSocket /chat/{chat_id}",
                doc_tag="agent chat", kind_modules=("actors.chat",),
                services=(MODEL_PORT, AGENT_TOOLS), settings=AgentSettings,
                # chats a crash left with a message under way are closed at start, not when
                # next used
                background=(Work("agent chat: closing interrupted messages",
                                 service.close_interrupted),))
