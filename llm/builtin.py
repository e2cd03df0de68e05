"""The built-in model: deterministic, offline, and a demonstration only.

It does not understand language. It follows a few rules so every API family works end to end
without a key or a network: it greets, remembers a name it was told, answers a tool result by
quoting it, calls a tool when it has tools and the last message asks for one (a search, a
look-up, a tool's own name, arithmetic for a calculator), plays and judges social simulations
(llm/builtin_social.py), fills any other JSON schema from its defaults, and otherwise says
what it heard. Given a ``final_answer`` tool (smolagents' tool-calling agents),
it answers through it: with a tool's observation once it has one, else with its reply.
Text streams word by word (a word, then the space after it), as real providers' tokens do.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from typing import Any, AsyncIterator

from llm.builtin_social import social_answer
from llm.port import Delta, ModelRequest, ToolCallDelta, ToolSpec

__all__ = ["BuiltinProvider"]

_TOKENS = re.compile(r"\s+|\S+")
_NAME = re.compile(r"\bmy name is ([A-Za-z][\w'-]*)", re.IGNORECASE)
_ARITHMETIC = re.compile(r"[-(]*\d[\d.\s]*(?:[-+*/%^][\s(]*[\d.]+[\s)]*)+")
_ASKS_FOR_TOOL = ("search", "look up", "lookup", "look for", "find ", "retriev", "wikipedia",
                  "arxiv", "pubmed", "document", "uploaded", "file", "according to")


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False, default=str)


class BuiltinProvider:
    """``delay``: seconds between tokens (0 by default; tests slow it to catch a run mid-way)."""

    def __init__(self, name: str = "builtin", delay: float = 0.0) -> None:
        self.name = name
        self.model = "builtin-demo"
        self.delay = float(delay)

    async def stream(self, request: ModelRequest) -> AsyncIterator[Delta]:
        if request.json_schema is not None:
            answer = social_answer(request)
            if answer is None:
                answer = _instance(request.json_schema, _last_user(request.messages))
            text = json.dumps(answer)
            async for delta in self._text(text, by=16):
                yield delta
            return
        call = self._agent_call(request) or self._tool_call(request)
        if call is not None:
            tool, arg_name, arg_value = call
            seed = f"{tool.name}|{arg_value}|{len(request.messages)}".encode()
            call_id = "call_" + hashlib.sha1(seed).hexdigest()[:24]
            pieces = (['{}'] if arg_name is None else
                      [f'{{"{arg_name}": "', *_TOKENS.findall(json.dumps(arg_value)[1:-1]), '"}'])
            first = True
            for piece in pieces:
                yield Delta(tool_calls=[ToolCallDelta(0, call_id if first else None,
                                                      tool.name if first else None, piece)])
                first = False
                await self._pause()
            yield Delta(usage=_usage(request, arg_value))
            return
        reply = (self._plan(request.messages) if not request.tools else None) \
            or self._reply(request.messages)
        async for delta in self._text(reply):
            yield delta
        yield Delta(usage=_usage(request, reply))

    async def _pause(self) -> None:
        await asyncio.sleep(self.delay)  # sleep(0) still lets other entities interleave

    async def _text(self, text: str, by: int = 0) -> AsyncIterator[Delta]:
        pieces = ([text[i:i + by] for i in range(0, len(text), by)] if by
                  else _TOKENS.findall(text))
        for piece in pieces:
            yield Delta(text=piece)
            await self._pause()

    @classmethod
    def _agent_call(cls, request: ModelRequest) -> tuple[ToolSpec, str | None, str] | None:
        """A tool-calling agent's turn (smolagents: the task came as "New task:", a tool's
        result comes back as "Observation:"): an observation or an error is answered through
        final_answer; otherwise the task's tool is called, or the task answered directly."""
        final = next((t for t in request.tools if t.name == "final_answer"), None)
        if final is None or not request.messages:
            return None
        marks = _agent_marks(request.messages)
        if marks and marks[-1][0] != "New task:":  # the last tool's result: answer with it
            what, body = marks[-1]
            if what == "Error:":
                body = "I could not do it: " + body.split("Now let's retry")[0].strip()
            return final, "answer", body
        tasks = [body for what, body in marks if what == "New task:"]
        task = tasks[-1] if tasks else _last_user(request.messages)
        chosen = cls._choose([t for t in request.tools if t.name != "final_answer"], task)
        if chosen is not None:
            return chosen
        return final, "answer", cls._reply([{"role": "user", "content": t} for t in tasks]
                                           or [{"role": "user", "content": task}])

    @staticmethod
    def _plan(messages: list[dict[str, Any]]) -> str | None:
        """A smolagents planning step's answer: the task restated and a two-step plan."""
        text = "\n".join(_content_text(m.get("content", "")) for m in messages)
        if "facts survey" not in text.lower():
            return None
        found = re.search(r"(?:Here is your task:|given the following task:)\s*```\s*(.*?)"
                          r"\s*```", text, re.DOTALL)
        task = found.group(1).strip() if found else "the task"
        return (f"## 1. Facts survey\nThe task: {task}\n\n## 2. Plan\n1. Call the tool that "
                "answers it, if one does.\n2. Give the final answer.\n<end_plan>")

    @classmethod
    def _tool_call(cls, request: ModelRequest) -> tuple[ToolSpec, str | None, str] | None:
        if not request.tools or not request.messages:
            return None
        last = request.messages[-1]
        if last.get("role") != "user":
            return None  # after a tool result the model answers; it does not call again
        return cls._choose(request.tools, _content_text(last.get("content", "")))

    @staticmethod
    def _choose(tools: list[ToolSpec], text: str) -> tuple[ToolSpec, str | None, str] | None:
        """The tool ``text`` asks for, with its argument (None for a tool without inputs)."""
        lowered = text.lower()
        arithmetic = _ARITHMETIC.search(text)
        chosen = None
        for tool in tools:
            words = [w for w in re.split(r"[_\W]+", tool.name.lower())
                     if len(w) > 2 and w not in ("get", "the", "all")]
            if tool.name.lower() in lowered or any(w in lowered for w in words):
                chosen = tool
                break
        if chosen is None and arithmetic is not None:
            chosen = next((t for t in tools if "calc" in t.name.lower()), None)
        if chosen is None and tools and any(t in lowered for t in _ASKS_FOR_TOOL):
            chosen = tools[0]
        if chosen is None:
            return None
        props = chosen.parameters.get("properties")
        if props == {}:
            return chosen, None, text  # a tool without inputs
        props = props or {"query": {}}
        arg_name = "query" if "query" in props else next(iter(props))
        if arithmetic is not None and "calc" in chosen.name.lower():
            return chosen, arg_name, arithmetic.group(0).strip()
        return chosen, arg_name, text

    @staticmethod
    def _reply(messages: list[dict[str, Any]]) -> str:
        if messages and messages[-1].get("role") == "tool":
            return _quoted(_content_text(messages[-1].get("content", "")).strip())
        text = _last_user(messages)
        lowered = text.lower()
        system = " ".join(_content_text(m.get("content", "")) for m in messages
                          if m.get("role") == "system")
        found = re.search(r"<documents>\s*(.*?)\s*</documents>", system, re.DOTALL)
        if found is not None:
            passage = found.group(1).strip().split("\n\n")[0][:300].strip()
            return (f"According to the documents, {passage}" if passage
                    else "The documents do not say, so I do not know.")
        name = None
        for m in messages:
            if m.get("role") == "user":
                match = _NAME.search(_content_text(m.get("content", "")))
                if match:
                    name = match.group(1)
        said_name = _NAME.search(text)
        if said_name:
            return f"Hi {said_name.group(1)}, nice to meet you!"
        if "name" in lowered and "?" in lowered:
            if name:
                return (f"Tu nombre es {name}." if "spanish" in lowered
                        else f"Your name is {name}.")
            return "You have not told me your name yet."
        if any(w in lowered for w in ("good day", "thank", "bye")):
            return "You too! If you have any other questions, feel free to ask."
        if not text or re.fullmatch(r"\W*(hi|hello|hey)\b.*", lowered):
            return "Hello! How can I assist you today?"
        return (f'You said: "{text}". I am the built-in demonstration model, so that is all '
                "I can say; configure a real model for real answers.")


_RESULT = re.compile(r"^\[(\d+)\] ([^\n]*)\n([^\n]*)\n?(.*)$", re.DOTALL)
#: how this server's tools say they could not answer (actors/gpts/tools.py)
_TOOL_TROUBLE = re.compile(r"The [^\n]{1,80}? tool (failed|is not available|needs a query)")
_RESULTS = re.compile(r"\n\n(?=\[\d+\] )")


def _excerpt(text: str, limit: int) -> str:
    """``text`` on one line, cut at a word before ``limit`` characters, an ellipsis ending a
    cut one."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip(" ,;:.") + "…"


def _quoted(found: str) -> str:
    """A tool's result read back: the top three of a list of results (the "[n] title / link
    / text" a tool message is shown as, actors/gpts/messages.py) with their titles and links,
    or the start of any other answer."""
    if not found:
        return "The tool found nothing."
    if _TOOL_TROUBLE.match(found):  # the tool's own words on why it gave nothing
        return f"I could not get an answer from the tool. {_excerpt(found, 300)}"
    results = [m for m in (_RESULT.match(block) for block in _RESULTS.split(found)) if m] \
        if found.startswith("[1] ") else []
    if not results:
        return f"Here is what I found: {_excerpt(found, 300)}"
    lines = [f"{k}. {m.group(2).strip() or m.group(3)} ({m.group(3)}): "
             f"{_excerpt(m.group(4), 160)}".rstrip(": ")
             for k, m in enumerate(results[:3], 1)]
    return "Here is what I found:\n" + "\n".join(lines)


_MARK = re.compile(r"(New task:|Observation:|Error:)")


def _agent_marks(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(marker, text) of every task, observation and error in a smolagents conversation, in
    order. Consecutive user turns arrive merged into one message, so the markers are found
    inside the text, not at its start; "Now proceed..." after a plan is not part of any."""
    out: list[tuple[str, str]] = []
    for m in messages:
        if m.get("role") != "user":
            continue
        parts = _MARK.split(_content_text(m.get("content", "")))
        for marker, body in zip(parts[1::2], parts[2::2]):
            body = re.sub(r"\s*Now proceed and carry out this plan\.\s*$", "", body)
            out.append((marker, re.sub(r"\s*Call id: \S+\s*$", "", body).strip()))
    return out


def _last_user(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return _content_text(m.get("content", "")).strip()
    return ""


def _usage(request: ModelRequest, out: str) -> dict[str, int]:
    prompt = sum(len(_TOKENS.findall(_content_text(m.get("content", ""))))
                 for m in request.messages)
    completion = len(_TOKENS.findall(out))
    return {"input_tokens": prompt, "output_tokens": completion,
            "total_tokens": prompt + completion}


def _instance(schema: dict[str, Any], hint: str, root: dict[str, Any] | None = None) -> Any:
    """A value that satisfies ``schema``: its default or first example or enum value where it
    has one, else the simplest value of its type (strings echo the last user message)."""
    root = root if root is not None else schema
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return _instance(target, hint, root)
    for key in ("default", "const"):
        if key in schema:
            return schema[key]
    if schema.get("examples"):
        return schema["examples"][0]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return _instance(schema[key][0], hint, root)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: _instance(sub, hint, root) for name, sub in props.items()}
    if kind == "array":
        n = schema.get("minItems", 0)
        return [_instance(schema.get("items", {}), hint, root) for _ in range(n)]
    if kind == "string":
        value = hint or "ok"
        if "maxLength" in schema:
            value = value[:schema["maxLength"]]
        return value.ljust(schema.get("minLength", 0), ".")
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return float(schema.get("minimum", 0))
    if kind == "boolean":
        return False
    return None
