"""OpenGPTs' wire format (../shared/specs/opengpts.md), both API eras: request bodies, the
resource shapes, message validation and the three /runs/*_schema documents.

Messages travel as LangChain's dicts; actors/gpts/messages.py stores them already complete and
in LangChain's field order, so responses pass them through and this module only validates what
comes in.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["Assistant", "AssistantPayload", "CreateRunPayload", "LegacyMessages",
           "LegacyMessagesPost", "Status", "ThreadState",
           "MessageIn", "Thread", "ThreadPayload", "ThreadStatePost", "config_schema",
           "input_schema", "output_schema"]

MessageType = Literal["ai", "human", "chat", "system", "function", "tool", "AIMessageChunk",
                      "HumanMessageChunk", "ChatMessageChunk", "SystemMessageChunk",
                      "FunctionMessageChunk", "ToolMessageChunk"]
_ROLES = {"user": "human", "assistant": "ai", "system": "system", "tool": "tool",
          "function": "function"}


class MessageIn(BaseModel):
    """A message as clients send it: {"content", "type"} at least. OpenAI-style
    {"role", "content"} is accepted too (OpenGPTs answered those with a 500)."""

    model_config = ConfigDict(extra="allow")

    content: str | list[Any] | dict[str, Any] = ""
    type: MessageType
    id: str | None = Field(default=None, max_length=256)
    name: str | None = None
    additional_kwargs: dict[str, Any] | None = None
    response_metadata: dict[str, Any] | None = None
    example: bool | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


def role_to_type(message: Any) -> Any:
    """{"role": "user", ...} as {"type": "human", ...}; anything else unchanged."""
    if isinstance(message, dict) and "type" not in message and message.get("role") in _ROLES:
        return {**{k: v for k, v in message.items() if k != "role"},
                "type": _ROLES[message["role"]]}
    return message


def _role_to_type(value: Any) -> Any:
    return [role_to_type(m) for m in value] if isinstance(value, list) else value


class AssistantPayload(BaseModel):
    name: str = Field(max_length=255)
    config: dict[str, Any]
    public: bool = False


class Assistant(BaseModel):
    assistant_id: str
    user_id: str
    name: str
    config: dict[str, Any]
    updated_at: str
    public: bool


class ThreadPayload(BaseModel):
    name: str = Field(max_length=255)
    assistant_id: str = Field(max_length=128)


class Thread(BaseModel):
    thread_id: str
    user_id: str
    assistant_id: str | None
    name: str
    updated_at: str
    metadata: dict[str, Any] | None


class ThreadState(BaseModel):
    """GET /threads/{id}/state: the values (messages, or a retrieval bot's dict) and the
    graph's next nodes."""

    values: list[dict[str, Any]] | dict[str, Any] | None
    next: list[str]


class LegacyMessages(BaseModel):
    messages: list[dict[str, Any]]
    resumeable: bool


class Status(BaseModel):
    status: str


class ThreadStatePost(BaseModel):
    values: list[MessageIn] | dict[str, Any]
    config: dict[str, Any] | None = None

    _roles = field_validator("values", mode="before")(classmethod(
        lambda cls, v: _role_to_type(v)))


class LegacyMessagesPost(BaseModel):
    messages: list[MessageIn]

    _roles = field_validator("messages", mode="before")(classmethod(
        lambda cls, v: _role_to_type(v)))


class CheckpointConfig(BaseModel):
    """{"checkpoint_id": ...} inside a config's "configurable", as LangGraph's SDK sends it."""

    checkpoint_id: str


class CheckpointRef(BaseModel):
    configurable: CheckpointConfig


class HistoryQuery(BaseModel):
    """POST /threads/{id}/history, as LangGraph's API takes it: ``before`` is a checkpoint id
    or a config naming one."""

    limit: int = Field(default=10, ge=1, le=1000)
    before: str | CheckpointRef | None = None


class FeedbackPayload(BaseModel):
    """POST /runs/feedback, as OpenGPTs' frontend sends it (LangSmith's feedback shape)."""

    run_id: uuid.UUID
    key: str = Field(min_length=1, max_length=256)
    score: float | bool | None = None
    value: Any = None
    comment: str | None = Field(default=None, max_length=10_000)


class CreateRunPayload(BaseModel):
    """Every era's run body: assistant_id (before April 2024) or not; input as a message list,
    {"messages": [...]}, a single message, or null to resume."""

    thread_id: str = Field(max_length=128)
    assistant_id: str | None = Field(default=None, max_length=128)
    input: list[MessageIn] | dict[str, Any] | None = Field(default_factory=dict)
    config: dict[str, Any] | None = None
    on_disconnect: Literal["cancel", "continue"] = Field(
        default="cancel", description="What a stream's hang-up does to its run: 'cancel' "
        "stops it (run_cancelled; the input and the steps committed stay, and a continue "
        "resumes it), as OpenGPTs does; 'continue' lets it run to its end. POST /runs runs "
        "in the background either way.")

    _roles = field_validator("input", mode="before")(classmethod(
        lambda cls, v: _role_to_type(v)))


_HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "opengpts_json")


@functools.cache
def _load(name: str) -> dict[str, Any]:
    with open(os.path.join(_HERE, name), encoding="utf-8") as f:
        return json.load(f)


def input_schema() -> dict[str, Any]:
    return _load("input_schema.json")


def output_schema() -> dict[str, Any]:
    return _load("output_schema.json")


@functools.cache
def config_schema() -> dict[str, Any]:
    """OpenGPTs' config schema as its HEAD serves it, with one change: enum fields are inlined
    ({"type": "string", "enum": [...], "default", "title"}) instead of a $ref with sibling
    default and title. The frontend resolves $refs with json-refs, which drops those siblings,
    so HEAD's own UI lost its defaults (no bot type preselected); inlined, they survive."""
    schema = copy.deepcopy(_load("config_schema.json"))
    defs = schema["$defs"]
    props = defs["Configurable"]["properties"]
    for name, prop in props.items():
        ref = prop.get("$ref")
        if ref is None:
            continue
        target = defs[ref.rsplit("/", 1)[1]]
        if "enum" in target:
            inlined = {"type": target.get("type", "string"), "enum": list(target["enum"]),
                       "title": prop.get("title", target.get("title"))}
            if "default" in prop:
                inlined["default"] = prop["default"]
            props[name] = inlined
    return schema


@functools.cache
def tool_catalog() -> dict[str, dict[str, Any]]:
    """type -> {"name", "description"}, the consts each tool object must match if it names them."""
    out = {}
    defs = _load("config_schema.json")["$defs"]
    items = defs["Configurable"]["properties"]["type==agent/tools"]["items"]["anyOf"]
    for ref in items:
        props = defs[ref["$ref"].rsplit("/", 1)[1]]["properties"]
        out[props["type"]["const"]] = {"name": props["name"]["const"],
                                       "description": props["description"]["const"]}
    return out


def tool_type(entry: Any) -> str | None:
    """The tool type an assistant config's tool entry names: an object's "type", or a string
    that is a tool's type or (any case) its name, as API.md's ["Wikipedia"]. None if unknown."""
    catalog = tool_catalog()
    if isinstance(entry, dict):
        kind = entry.get("type")
        return kind if kind in catalog else None
    if isinstance(entry, str):
        if entry in catalog:
            return entry
        return next((k for k, v in catalog.items() if v["name"].lower() == entry.lower()), None)
    return None


def agent_types() -> list[str]:
    return list(_load("config_schema.json")["$defs"]["AgentType"]["enum"])


def llm_types() -> list[str]:
    return list(_load("config_schema.json")["$defs"]["LLMType"]["enum"])


class ThreadFork(BaseModel):
    """POST /threads/{thread_id}/fork (ours): a new thread of the caller's from this one's
    history up to a checkpoint, with messages written to it (a known id: an edit)."""

    checkpoint_id: str = Field(min_length=1, max_length=200, description=(
        "a checkpoint of the thread's history (config.configurable.checkpoint_id)"))
    messages: list[MessageIn] = Field(default_factory=list, max_length=100, description=(
        "written to the fork: one whose id is the thread's replaces that message"))
