"""OpenGPTs' message model (LangChain's message dicts), as threads store them: every field
present, in LangChain's own order, so a stored message is already what a reader returns.

``normalize`` is the one place a message gets its defaults and its id; ``add_messages`` is
LangGraph's reducer (same id replaces, anything else appends), the one way a list changes.
"""

from __future__ import annotations

import uuid
from typing import Any

__all__ = ["ACCEPTED_TYPES", "MESSAGE_TYPES", "add_in_place", "add_messages", "ai_message",
           "normalize", "to_model_messages", "tool_message"]

#: type -> its fields after the common ones, with their defaults
_EXTRA: dict[str, tuple[tuple[str, Any], ...]] = {
    "human": (("example", False),),
    "ai": (("example", False), ("tool_calls", []), ("invalid_tool_calls", []),
           ("usage_metadata", None)),
    "tool": (("tool_call_id", ""), ("artifact", None), ("status", "success")),
    "system": (),
    "function": (),
    "chat": (("role", "user"),),
}
MESSAGE_TYPES = tuple(_EXTRA)
_CHUNK = {f"{k.capitalize()}MessageChunk": k for k in _EXTRA}
_CHUNK["AIMessageChunk"] = "ai"
#: what ``normalize`` takes: the message types and their chunk types
ACCEPTED_TYPES = frozenset((*_EXTRA, *_CHUNK))


def normalize(raw: dict[str, Any]) -> dict[str, Any]:
    """A complete message from what a client sent ({"content", "type"} is enough); a chunk
    type becomes its message type. An id is assigned when none is given."""
    mtype = _CHUNK.get(raw["type"], raw["type"])
    msg: dict[str, Any] = {
        "content": raw.get("content", ""),
        "additional_kwargs": raw.get("additional_kwargs") or {},
        "response_metadata": raw.get("response_metadata") or {},
        "type": mtype,
        "name": raw.get("name"),
        "id": raw.get("id") or str(uuid.uuid4()),
    }
    for field, default in _EXTRA[mtype]:
        value = raw.get(field, default)
        msg[field] = list(value) if isinstance(value, list) else value
    if mtype == "ai":
        msg["tool_calls"] = [{"name": c.get("name", ""), "args": c.get("args") or {},
                              "id": c.get("id"), "type": "tool_call"}
                             for c in msg["tool_calls"] if isinstance(c, dict)]
    return msg


def add_messages(current: list[dict[str, Any]], new: list[dict[str, Any]]
                 ) -> list[dict[str, Any]]:
    out = list(current)
    add_in_place(out, {m["id"]: i for i, m in enumerate(out)}, new)
    return out


def add_in_place(messages: list[dict[str, Any]], index: dict[str, int],
                 new: list[dict[str, Any]]) -> None:
    """add_messages on ``messages`` itself, ``index`` (id -> position) kept beside it: what a
    thread's fold does, so a thread of n messages replays in O(n)."""
    for m in new:
        i = index.get(m["id"])
        if i is None:
            index[m["id"]] = len(messages)
            messages.append(m)
        else:
            messages[i] = m


def ai_message(msg_id: str, content: str, tool_calls: list[dict[str, Any]] | None = None,
               usage: dict[str, int] | None = None) -> dict[str, Any]:
    return normalize({"type": "ai", "id": msg_id, "content": content,
                      "tool_calls": tool_calls or [], "usage_metadata": usage})


def tool_message(name: str, call_id: str, content: Any, status: str = "success",
                 artifact: Any = None) -> dict[str, Any]:
    return normalize({"type": "tool", "name": name, "tool_call_id": call_id,
                      "content": content, "status": status, "artifact": artifact})


def for_model(message: dict[str, Any]) -> str:
    """A tool result as a model reads it: results with a title and a link (a web tool's
    Documents in its artifact, Tavily's result list in its content) as a numbered list,
    "[1] title / link / text", so that any model can cite them; anything else as text."""
    artifact, content = message.get("artifact"), message.get("content")
    items: list[tuple[str, str, str]] = []
    if isinstance(artifact, list):
        items = [(str(d.get("metadata", {}).get("title") or ""),
                  str(d.get("metadata", {}).get("source") or ""),
                  str(d.get("page_content") or "")) for d in artifact
                 if isinstance(d, dict) and d.get("type") == "Document"]
    elif isinstance(content, list) and content and all(
            isinstance(r, dict) and "url" in r for r in content):
        items = [(str(r.get("title") or ""), str(r["url"]), str(r.get("content") or ""))
                 for r in content]
    if not any(title or url for title, url, _ in items):
        return _text(content)
    return "\n\n".join(f"[{i}] {title}\n{url}\n{text}".strip()
                        for i, (title, url, text) in enumerate(items, 1))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # Document dicts, or content parts
        parts = []
        for item in content:
            if isinstance(item, dict):
                parts.append(str(item.get("page_content") or item.get("text") or item))
            else:
                parts.append(str(item))
        return "\n\n".join(parts)
    return str(content)


def to_model_messages(system: str | None, messages: list[dict[str, Any]]
                      ) -> list[dict[str, Any]]:
    """The model port's messages for a conversation."""
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for m in messages:
        t = m["type"]
        if t == "human" or (t == "chat" and m.get("role") == "user"):
            out.append({"role": "user", "content": _text(m["content"])})
        elif t == "ai" or t == "chat":
            entry: dict[str, Any] = {"role": "assistant", "content": _text(m["content"])}
            if m.get("tool_calls"):
                entry["tool_calls"] = [{"id": c["id"], "name": c["name"], "args": c["args"]}
                                       for c in m["tool_calls"]]
            out.append(entry)
        elif t in ("tool", "function"):
            out.append({"role": "tool", "tool_call_id": m.get("tool_call_id", ""),
                        "name": m.get("name"), "content": for_model(m)})
        elif t == "system":
            out.append({"role": "system", "content": _text(m["content"])})
    return out
