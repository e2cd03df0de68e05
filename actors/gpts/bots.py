"""What an OpenGPTs run does, bot type by bot type: the nodes of OpenGPTs' graphs (chatbot;
agent -> action -> agent...; invoke_retrieval -> retrieve -> response) as plain async steps.

A run writes through ``RunIO``: ``write`` commits the messages a node produced together with the
node(s) that come next (one checkpoint, durable before the run goes on); ``show`` streams
messages to whoever watches (tokens, accumulated, under the message's final id). Nothing here
touches storage or the wire.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from actors.gpts import documents as docs
from actors.gpts.messages import ai_message, to_model_messages, tool_message
from actors.gpts.tools import TOOLS, by_runtime_name, spec_for
from llm.port import Model, ModelRequest, PartialResult, ToolSpec

__all__ = ["Bot", "RunIO", "first_node", "run"]

MAX_AGENT_STEPS = 25  # agent/action rounds; OpenGPTs' recursion limit of 50 graph steps

RETRIEVAL_PROMPT = (
    "{system}\n\nAnswer the user's question using the documents below. If they do not hold "
    "the answer, say that you do not know.\n\n<documents>\n{documents}\n</documents>")
QUERY_PROMPT = ("Given the conversation so far, write a search query that would find "
                "information relevant to the user's latest question.")


@dataclass
class Bot:
    """A run's configuration, resolved from the assistant's config (and the run's own) at the
    edge: which graph, which model name, which tools."""

    type: str = "agent"  # chatbot | agent | chat_retrieval
    model: str = "GPT 3.5 Turbo"
    system_message: str = "You are a helpful assistant."
    tools: list[str] = field(default_factory=list)  # tool types
    interrupt_before_action: bool = False
    retrieval_description: str | None = None
    #: a tool's own settings from the assistant's entry (the Action Server's url, api_key)
    tool_configs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Bot":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def first_node(bot_type: str) -> str:
    return {"chatbot": "chatbot", "chat_retrieval": "invoke_retrieval"}.get(bot_type, "agent")


@dataclass
class RunIO:
    messages: Callable[[], list[dict[str, Any]]]
    write: Callable[..., Awaitable[None]]  # write(messages, next, msg_count=None)
    show: Callable[[list[dict[str, Any]]], None]
    model: Callable[[str], Model]
    documents: Callable[[], Awaitable[list[dict[str, Any]]]]
    #: the tools where the run is (actors/gpts/tools.py's GptsTools): web tools' answers,
    #: toolkits' actions, and retrieval (BM25, or hybrid with an embedding model)
    tools: Any


async def _call(io: RunIO, bot: Bot, request: ModelRequest, stream: bool = True
                ) -> dict[str, Any]:
    """One model call as an AI message; its tokens are shown as they come."""
    msg_id = f"run-{uuid.uuid4()}"

    def on_delta(partial: PartialResult) -> None:
        io.show([ai_message(msg_id, partial.text, [
            {"name": c.name, "args": c.args, "id": c.id} for c in partial.tool_calls])])

    result = await io.model(bot.model).complete(request, on_delta if stream else None)
    return ai_message(msg_id, result.text,
                      [{"name": c.name, "args": c.args, "id": c.id} for c in result.tool_calls],
                      result.usage)


async def _agent(io: RunIO, bot: Bot) -> list[str]:
    actions = await io.tools.actions(bot.tools, bot.tool_configs)
    listed = {a.tool_type for a in actions.values()}  # toolkits shown as their actions
    tools = [spec_for(t, bot.retrieval_description) for t in bot.tools
             if t in TOOLS and t not in listed]
    tools += [ToolSpec(a.name, a.description, a.parameters) for a in actions.values()]
    ai = await _call(io, bot, ModelRequest(
        to_model_messages(bot.system_message, io.messages()), tools, model=bot.model))
    nxt = ["action"] if ai["tool_calls"] else []
    await io.write([ai], nxt)
    return nxt


async def _action(io: RunIO, bot: Bot) -> list[str]:
    last = next((m for m in reversed(io.messages()) if m["type"] == "ai"), None)
    results = []
    for call in (last or {}).get("tool_calls", []):
        tool = by_runtime_name(call["name"])
        args = call.get("args") or {}
        if tool is not None and tool.type in bot.tools and tool.type == "retrieval":
            found = await io.tools.search(await io.documents(), str(args.get("query", "")))
            text = "\n\n".join(d["text"] for d in found) or "No uploaded document matches."
            results.append(tool_message(tool.runtime_name, call["id"], text))
            continue
        if tool is not None and tool.type in bot.tools:
            content, artifact, status = await io.tools.answer(
                tool, args, bot.tool_configs.get(tool.type))
            results.append(tool_message(tool.runtime_name, call["id"], content, status,
                                        artifact))
            continue
        action = (await io.tools.actions(bot.tools, bot.tool_configs)).get(call["name"])
        if action is None:
            results.append(tool_message(call["name"], call["id"],
                                        f"There is no tool named {call['name']!r}.", "error"))
            continue
        content, artifact, status = await io.tools.act(action, args)
        results.append(tool_message(call["name"], call["id"], content, status, artifact))
    await io.write(results, ["agent"])
    return ["agent"]


async def _chatbot(io: RunIO, bot: Bot) -> list[str]:
    ai = await _call(io, bot, ModelRequest(
        to_model_messages(bot.system_message, io.messages()), model=bot.model))
    await io.write([ai], [])
    return []


def _conversation(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Human questions and final answers: what the retrieval bot converses over."""
    return [m for m in messages if m["type"] == "human"
            or (m["type"] == "ai" and not m["tool_calls"])]


async def _invoke_retrieval(io: RunIO, bot: Bot) -> list[str]:
    conversation = _conversation(io.messages())
    humans = [m for m in conversation if m["type"] == "human"]
    question = str(humans[-1]["content"]) if humans else ""
    if len(humans) > 1:  # a follow-up: have the model phrase a standalone query (not shown)
        request = ModelRequest(to_model_messages(QUERY_PROMPT, conversation),
                               json_schema={"type": "object", "required": ["query"],
                                            "properties": {"query": {"type": "string"}}},
                               model=bot.model)
        result = await io.model(bot.model).complete(request)
        question = str(result.object.get("query") or question)
    ai = ai_message(str(uuid.uuid4()), "", [{"name": "retrieval", "args": {"query": question},
                                             "id": uuid.uuid4().hex}])
    await io.write([ai], ["retrieve"])
    return ["retrieve"]


async def _retrieve(io: RunIO, bot: Bot) -> list[str]:
    last = next((m for m in reversed(io.messages()) if m["type"] == "ai" and m["tool_calls"]),
                None)
    call = last["tool_calls"][0] if last else {"id": uuid.uuid4().hex, "args": {}}
    found = await io.tools.search(await io.documents(), str(call["args"].get("query", "")))
    await io.write([tool_message("retrieval", call["id"], docs.to_documents(found))],
                   ["response"])
    return ["response"]


async def _response(io: RunIO, bot: Bot) -> list[str]:
    messages = io.messages()
    last_tool = next((m for m in reversed(messages) if m["type"] == "tool"), None)
    found = last_tool["content"] if last_tool and isinstance(last_tool["content"], list) else []
    system = RETRIEVAL_PROMPT.format(system=bot.system_message, documents="\n\n".join(
        str(d.get("page_content", "")) for d in found if isinstance(d, dict)))
    conversation = _conversation(messages)
    ai = await _call(io, bot, ModelRequest(to_model_messages(system, conversation),
                                           model=bot.model))
    await io.write([ai], [], msg_count=len(conversation) + 1)
    return []


NODES: dict[str, Callable[[RunIO, Bot], Awaitable[list[str]]]] = {
    "agent": _agent, "action": _action, "chatbot": _chatbot,
    "invoke_retrieval": _invoke_retrieval, "retrieve": _retrieve, "response": _response,
}


async def run(io: RunIO, bot: Bot, next_nodes: list[str]) -> list[str]:
    """Run the graph from ``next_nodes`` until it ends or pauses; returns what is next (empty:
    finished; ["action"]: paused before a tool, as interrupt_before_action asks)."""
    nxt = list(next_nodes)
    steps = 0
    while nxt:
        node = nxt[0]
        if node == "__start__":
            node = first_node(bot.type)
        if node not in NODES:
            raise ValueError(f"a {bot.type} run cannot go on from {node!r}")
        if node == "action" and bot.interrupt_before_action and steps > 0:
            return nxt  # paused: the caller resumes with input null
        steps += 1
        if steps > 2 * MAX_AGENT_STEPS:
            raise RuntimeError(f"the run took more than {2 * MAX_AGENT_STEPS} steps")
        nxt = await NODES[node](io, bot)
    return nxt
