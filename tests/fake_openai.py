"""A stand-in for an OpenAI-compatible server, speaking the real wire protocol: POST
/v1/chat/completions with stream=true answers chat.completion.chunk events over SSE, ending
with [DONE]; tool calls arrive as tool_call deltas (id and name first, then argument pieces),
and usage in a last chunk when stream_options asks for it. It is scripted, not a model:

- a request with tools whose last user message says "weather" -> a tool call get_weather or
  the first tool, arguments {"query": <the message>} in three pieces;
- a request whose last message is a tool result -> "The tool said: <result>";
- response_format json_schema -> {"query": "<last user message>"} as JSON text; for a social
  agent's action (a schema with action_type) {"action_type": "speak", "argument": "hello
  <turn + 1>"}, and for a social evaluation (a schema with evaluations) each score at its
  dimension's range_high, or out of range when the conversation says "judge badly" (only on
  the first attempt when it says "judge badly once");
- a message containing "fail please" -> HTTP 500; "fail once please" -> HTTP 500 the first
  time that message is sent, an answer after; "cut please" -> two words, then the connection
  is dropped mid-stream;
- a smolagents tool-calling agent (a final_answer tool offered): its last observation is
  answered through final_answer; a task that says "contacts" calls get_contacts; any other
  task is answered through final_answer;
- anything else -> "Hello from the stand-in model." word by word.
Every request body is kept in ``requests`` for assertions.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from aiohttp import web

from tests.loopback import LoopbackServer


class FakeOpenAI(LoopbackServer):
    name = "fake-openai"

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay  # seconds before each answer, as a model server's latency
        self.requests: list[dict[str, Any]] = []
        self.judged: dict[str, int] = {}  # evaluation prompt -> how often it was asked

    def _chunk(self, body: dict[str, Any], delta: dict[str, Any], finish: str | None = None,
               usage: dict[str, int] | None = None, choices: bool = True) -> bytes:
        payload = {"id": "chatcmpl-standin", "object": "chat.completion.chunk",
                   "created": int(time.time()), "model": body.get("model", "x"),
                   "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                "finish_reason": finish}] if choices else [],
                   "usage": usage}
        return b"data: " + json.dumps(payload).encode() + b"\n\n"

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if self.delay:
            await asyncio.sleep(self.delay)
        messages = body.get("messages", [])
        last = messages[-1] if messages else {}
        text = last.get("content") or ""
        once = "fail once please" in text and sum(
            (r.get("messages") or [{}])[-1].get("content") == text for r in self.requests) == 1
        if "fail please" in text or once:
            return web.json_response({"error": {"message": "scripted failure",
                                                "type": "server_error"}}, status=500)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(self._chunk(body, {"role": "assistant", "content": ""}))
        if "cut please" in text:
            await resp.write(self._chunk(body, {"content": "Half an"}))
            request.transport.close()  # the connection drops mid-answer
            return resp
        finish = "stop"
        agent_call = self._agent_call(body, messages)
        if agent_call is not None:
            name, args = agent_call
            await resp.write(self._chunk(body, {"tool_calls": [{
                "index": 0, "id": f"call_{len(self.requests)}", "type": "function",
                "function": {"name": name, "arguments": ""}}]}))
            for piece in (args[:len(args) // 2], args[len(args) // 2:]):
                await resp.write(self._chunk(body, {"tool_calls": [{
                    "index": 0, "function": {"arguments": piece}}]}))
            finish = "tool_calls"
        elif body.get("tools") and last.get("role") == "user" and "weather" in text.lower():
            names = [t["function"]["name"] for t in body["tools"]]
            name = "get_weather" if "get_weather" in names else names[0]
            args = json.dumps({"query": text})
            pieces = [args[:9], args[9:len(args) // 2 + 4], args[len(args) // 2 + 4:]]
            await resp.write(self._chunk(body, {"tool_calls": [{
                "index": 0, "id": "call_standin1", "type": "function",
                "function": {"name": name, "arguments": ""}}]}))
            for piece in pieces:
                await resp.write(self._chunk(body, {"tool_calls": [{
                    "index": 0, "function": {"arguments": piece}}]}))
            finish = "tool_calls"
        else:
            if last.get("role") == "tool":
                reply = f"The tool said: {text}"
            elif body.get("response_format", {}).get("type") == "json_schema":
                user = next((m["content"] for m in reversed(messages)
                             if m["role"] == "user"), "")
                schema = body["response_format"]["json_schema"]["schema"]
                reply = json.dumps(self._social(schema, messages, user)
                                   or {"query": user})
            else:
                reply = "Hello from the stand-in model."
            for i, word in enumerate(reply.split(" ")):
                await resp.write(self._chunk(body, {"content": (" " if i else "") + word}))
        await resp.write(self._chunk(body, {}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            await resp.write(self._chunk(body, {}, None, {"prompt_tokens": 7,
                                                          "completion_tokens": 5,
                                                          "total_tokens": 12}, choices=False))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    def _social(self, schema: dict[str, Any], messages: list[dict[str, Any]], user: str
                ) -> dict[str, Any] | None:
        props = schema.get("properties") or {}
        said = "\n".join(str(m.get("content") or "") for m in messages)
        if "action_type" in props:
            turn = re.search(r"You are at Turn #(\d+)", said)
            return {"action_type": "speak", "to": [],
                    "argument": f"hello {int(turn.group(1)) + 1 if turn else 1}"}
        if "evaluations" not in props:
            return None
        seen = self.judged[user] = self.judged.get(user, 0) + 1
        badly = "judge badly" in user and (seen == 1 or "judge badly once" not in user)
        out = {}
        for agent, dims in props["evaluations"]["properties"].items():
            out[agent] = {}
            for dim, sub in dims["properties"].items():
                top = sub["properties"]["score"]["maximum"]
                out[agent][dim] = {"reasoning": f"{agent} on {dim}",
                                   "score": top + 1 if badly else top}
        return {"evaluations": out}

    @staticmethod
    def _agent_call(body: dict[str, Any], messages: list[dict[str, Any]]
                    ) -> tuple[str, str] | None:
        names = [t["function"]["name"] for t in body.get("tools") or []]
        if "final_answer" not in names:
            return None
        said = "\n".join(str(m.get("content") or "") for m in messages if m["role"] == "user")
        task_at, seen_at = said.rfind("New task:"), said.rfind("Observation:")
        if seen_at > task_at:
            observed = said[seen_at + len("Observation:"):].strip()
            return "final_answer", json.dumps({"answer": observed})
        if "contacts" in said[task_at:].lower() and "get_contacts" in names:
            return "get_contacts", "{}"
        return "final_answer", json.dumps({"answer": "Hello from the stand-in model."})

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._completions)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


