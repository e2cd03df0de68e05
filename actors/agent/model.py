"""A smolagents Model over the model port: the agent's calls go through the same providers
(the built-in offline model, any OpenAI-compatible endpoint), the same gate on concurrent
calls, and the same cancellation as every other family's.

smolagents runs synchronously; the agent runs in a worker thread and each model call is handed
to the host's event loop, where the port is async. A cancelled command cancels the call in
flight, and the agent sees it as an error of that step.
"""

from __future__ import annotations

import asyncio
import copy
import functools
from typing import Any

from smolagents.models import (ChatMessage, ChatMessageToolCall, ChatMessageToolCallFunction,
                               MessageRole, Model)
from smolagents.monitoring import TokenUsage

from llm.port import Model as PortModel
from llm.port import ModelRequest, ToolSpec

__all__ = ["PLANNING_INTERVAL", "MAX_STEPS", "PortAgentModel", "agent_for"]

#: as the original's agent: a plan every 10 steps, at most 20 steps a message
PLANNING_INTERVAL, MAX_STEPS = 10, 20


@functools.cache
def _prompt_templates() -> dict[str, Any]:
    """smolagents' own prompts for the tool-calling agent, parsed once: the agent otherwise
    parses its YAML on every construction, half the CPU of a message with a fast model."""
    import importlib.resources

    import yaml

    return yaml.safe_load(importlib.resources.files("smolagents.prompts")
                          .joinpath("toolcalling_agent.yaml").read_text())


@functools.cache
def _templates_compiled_once() -> None:
    """smolagents renders its prompts with ``populate_template``, which compiles the jinja
    template again on every call (the system prompt when an agent is made, the planning
    prompts every few steps): 46% of a host's CPU with 200 chats. Its module-level function
    is replaced by one that compiles each template text once; what it renders is the same."""
    import jinja2
    from smolagents import agents

    @functools.lru_cache(maxsize=64)
    def compiled(template: str) -> jinja2.Template:
        return jinja2.Template(template, undefined=jinja2.StrictUndefined)

    def populate_template(template: str, variables: dict[str, Any]) -> str:
        try:
            return compiled(template).render(**variables)
        except Exception as e:  # the message smolagents' own gives
            raise Exception(f"Error during jinja template rendering: {type(e).__name__}: {e}")

    agents.populate_template = populate_template


def agent_for(models: Any, tools: Any, name: str | None, loop: asyncio.AbstractEventLoop
              ) -> Any:
    """A ToolCallingAgent on the model port's ``name`` (the default model when None)."""
    from smolagents import ToolCallingAgent

    _templates_compiled_once()
    return ToolCallingAgent(tools=list(tools), verbosity_level=-1, max_steps=MAX_STEPS,
                            planning_interval=PLANNING_INTERVAL,
                            prompt_templates=copy.deepcopy(_prompt_templates()),
                            model=PortAgentModel(models.model(name), loop, name))


class PortAgentModel(Model):
    def __init__(self, port: PortModel, loop: asyncio.AbstractEventLoop, name: str | None,
                 timeout: float = 300.0) -> None:
        super().__init__(flatten_messages_as_text=True, model_id=name or "builtin")
        self.port = port
        self.loop = loop
        self.name = name
        self.timeout = timeout

    def generate(self, messages: list[ChatMessage | dict], stop_sequences: list[str] | None = None,
                 response_format: dict[str, str] | None = None,
                 tools_to_call_from: list[Any] | None = None, **kwargs: Any) -> ChatMessage:
        prepared = self._prepare_completion_kwargs(messages, tools_to_call_from=tools_to_call_from)
        request = ModelRequest(
            messages=[{"role": m["role"], "content": m["content"] or ""}
                      for m in prepared["messages"]],
            tools=[ToolSpec(t["function"]["name"], t["function"].get("description") or "",
                            t["function"].get("parameters") or {"type": "object",
                                                                "properties": {}})
                   for t in prepared.get("tools", [])],
            model=self.name)
        future = asyncio.run_coroutine_threadsafe(self.port.complete(request), self.loop)
        try:
            result = future.result(self.timeout)
        except BaseException:
            future.cancel()
            raise
        usage = result.usage or {}
        return ChatMessage(
            role=MessageRole.ASSISTANT, content=result.text or None,
            tool_calls=[ChatMessageToolCall(ChatMessageToolCallFunction(arguments=c.args,
                                                                        name=c.name),
                                            id=c.id, type="function")
                        for c in result.tool_calls] or None,
            token_usage=TokenUsage(
                int(usage.get("input_tokens", usage.get("prompt_tokens", 0))),
                int(usage.get("output_tokens", usage.get("completion_tokens", 0)))))
