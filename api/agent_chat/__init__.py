"""The agent chat family (seed 001, ../shared/specs/agent_chat_and_avatar.md part A): a
step-streaming tool agent over WebSocket /chat/{chat_id}, GET /history/{chat_id} and a
stateless POST /agent/run. Each chat is a `chat` entity (actors/chat.py)."""

from api.agent_chat.routes import FAMILY, router

__all__ = ["FAMILY", "router"]
