"""An OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, LM Studio...), through
the official openai SDK: it owns the SSE parsing, retries and error types, so we do not."""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

from llm import settings
from llm.port import Delta, ModelRequest, ToolCallDelta

__all__ = ["OpenAICompatProvider"]


def _wire_message(m: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m["role"]}
    content = m.get("content", "")
    out["content"] = content if isinstance(content, str) else json.dumps(content, default=str)
    if m.get("tool_calls"):
        out["tool_calls"] = [{"id": c["id"], "type": "function",
                              "function": {"name": c["name"], "arguments": json.dumps(c["args"])}}
                             for c in m["tool_calls"]]
        if not out["content"]:
            out["content"] = None
    if m["role"] == "tool":
        out["tool_call_id"] = m.get("tool_call_id", "")
    return out


class OpenAICompatProvider:
    def __init__(self, name: str, model: str, base_url: str | None = None,
                 api_key: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 timeout: float = 120.0) -> None:
        import openai  # imported here: the builtin-only path never pays for it

        self.name = name
        self.model = model
        key = api_key or settings.api_key(api_key_env) or "not-set"
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=key, timeout=timeout,
                                          max_retries=0)  # the port retries (llm/port.py)

    async def stream(self, request: ModelRequest) -> AsyncIterator[Delta]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [_wire_message(m) for m in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            kwargs["tools"] = [{"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.parameters}}
                for t in request.tools]
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "answer", "schema": request.json_schema}}
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.max_tokens is not None:
            kwargs["max_tokens"] = request.max_tokens
        stream = await self._client.chat.completions.create(**kwargs)
        async with stream:
            async for chunk in stream:
                usage = None
                if chunk.usage is not None:
                    usage = {"input_tokens": chunk.usage.prompt_tokens,
                             "output_tokens": chunk.usage.completion_tokens,
                             "total_tokens": chunk.usage.total_tokens}
                if not chunk.choices:
                    if usage:
                        yield Delta(usage=usage)
                    continue
                d = chunk.choices[0].delta
                calls = [ToolCallDelta(tc.index, tc.id,
                                       tc.function.name if tc.function else None,
                                       (tc.function.arguments or "") if tc.function else "")
                         for tc in (d.tool_calls or [])]
                if d.content or calls or usage:
                    yield Delta(text=d.content or "", tool_calls=calls, usage=usage)
