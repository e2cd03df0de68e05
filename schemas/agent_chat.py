"""Wire format of the agent chat family (seed 001: "WebSocket API — AI Agent Interaction"):
the WebSocket frames of /chat/{chat_id}, GET /history/{chat_id} and POST /agent/run."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["AgentError", "AgentStep", "ChatHistory", "HistoryRow", "MessageEnd", "RunRequest",
           "RunStep"]


class AgentStep(BaseModel):
    type: Literal["agent_step"] = "agent_step"
    step_type: str = Field(description="PlanningStep, ActionStep or FinalAnswerStep")
    message: str = Field(description="the plan, the observation, or the final answer (JSON "
                                     "text when the answer is structured); never null")
    message_id: str = Field(description="the client's message_id")
    chat_id: str


class MessageEnd(BaseModel):
    type: Literal["message_end"] = "message_end"
    message_id: str | None
    chat_id: str


class AgentError(BaseModel):
    type: Literal["agent_error"] = "agent_error"
    error: str
    chat_id: str
    message_id: str | None = Field(default=None, description="when the error is a message's")


class HistoryRow(BaseModel):
    role: Literal["user", "agent"]
    content: str
    step_type: str | None = Field(description=(
        "None for the user's message; the agent's step (PlanningStep, ActionStep, "
        "FinalAnswerStep); or how a message that did not finish ended: message_failed, "
        "message_stopped, message_interrupted (the content says why)"))
    timestamp: str = Field(description='UTC, "YYYY-MM-DD HH:MM:SS"')


class ChatHistory(BaseModel):
    type: Literal["chat_history"] = "chat_history"
    chat_id: str
    history: list[HistoryRow]


class RunRequest(BaseModel):
    chat_id: str | None = Field(default=None, max_length=256,
                                description="accepted and ignored: the run is stateless")
    task: str = Field(min_length=1, max_length=100_000)


class RunStep(BaseModel):
    step_type: str
    content: str
