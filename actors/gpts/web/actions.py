"""The two OpenGPTs tools that are toolkits, each action one tool the model sees:

- AI Action Runner by Connery: the runner's actions (GET {runner}/v1/actions, x-api-key), each
  run by POST {runner}/v1/actions/{id}/run {"input": {...}}, as LangChain's ConneryToolkit
  does (a tool per action, named by its id, described by its title and description; its input
  parameters as the tool's arguments). The runner's address and key: CONNERY_RUNNER_URL and
  CONNERY_RUNNER_API_KEY, or the tool's base_url and api_key in ACTORLOG_TOOLS.
- Action Server by Sema4.ai: the server's OpenAPI document ({url}/openapi.json); each POST
  operation under /api/actions/ is a tool (named by its operationId, its request body's schema
  as arguments), called with the assistant's api_key as a bearer token, as
  langchain-robocorp's toolkit does. Address and key come from the assistant's tool entry
  (OpenGPTs' ActionServerConfig: url, api_key).

Action lists are kept for a minute per address. A list that cannot be read leaves the
toolkit's one placeholder tool, whose call says why.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from actors.gpts.settings import ToolConfig
from actors.gpts.web import ToolFailure, ToolResult, bounded
from actors.gpts.web.http import request

__all__ = ["Action", "list_actions", "run_action"]

LIST_SECONDS = 60.0
MAX_ACTIONS = 64
_NAME = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Action:
    tool_type: str
    name: str  # what the model calls
    description: str
    parameters: dict[str, Any]
    url: str  # where it runs
    headers: tuple[tuple[str, str], ...]
    wrap_input: bool  # Connery takes {"input": args}; the Action Server the args themselves


_lists: dict[tuple[str, str], tuple[float, list[Action]]] = {}


async def list_actions(tool_type: str, base_url: str, key: str, config: ToolConfig
                       ) -> list[Action]:
    """The toolkit's actions at ``base_url`` (kept for a minute), within the tool's timeout;
    ToolFailure when they cannot be read."""
    cache_key = (tool_type, base_url.rstrip("/"))
    kept = _lists.get(cache_key)
    if kept is not None and time.monotonic() - kept[0] < LIST_SECONDS:
        return kept[1]
    actions = await bounded(_connery(base_url, key, config) if tool_type.endswith("connery")
                            else _action_server(base_url, key, config), config)
    _lists[cache_key] = (time.monotonic(), actions[:MAX_ACTIONS])
    return actions[:MAX_ACTIONS]


async def _connery(base_url: str, key: str, config: ToolConfig) -> list[Action]:
    root = base_url.rstrip("/")
    headers = (("x-api-key", key),)
    body = (await request("GET", root + "/v1/actions", config, headers=dict(headers))).json()
    if body.get("status") != "success":
        raise ToolFailure(f"the runner refused to list its actions: {body.get('error')}")
    actions = []
    for a in body.get("data") or []:
        props, required = {}, []
        for p in a.get("inputParameters") or []:
            props[p["key"]] = {"type": "string", "description":
                               f"{p.get('title', p['key'])}: {p.get('description', '')}".strip()}
            if (p.get("validation") or {}).get("required"):
                required.append(p["key"])
        actions.append(Action(
            "ai_action_runner_by_connery", _NAME.sub("_", str(a["id"]))[:64],
            f"{a.get('title', a['id'])}: {a.get('description', '')}".strip(": "),
            {"type": "object", "properties": props, "required": required},
            f"{root}/v1/actions/{a['id']}/run", headers, True))
    return actions


async def _action_server(base_url: str, key: str, config: ToolConfig) -> list[Action]:
    root = base_url.rstrip("/")
    spec = (await request("GET", root + "/openapi.json", config)).json()
    headers = (("Authorization", f"Bearer {key}"),) if key else ()
    actions = []
    for path, methods in (spec.get("paths") or {}).items():
        post = methods.get("post") if isinstance(methods, dict) else None
        if not path.startswith("/api/actions/") or not isinstance(post, dict):
            continue
        schema = (((post.get("requestBody") or {}).get("content") or {})
                  .get("application/json") or {}).get("schema") or {}
        schema = _resolved(schema, spec)
        name = _NAME.sub("_", str(post.get("operationId") or path.strip("/")))[:64]
        actions.append(Action(
            "action_server_by_sema4ai", name,
            str(post.get("description") or post.get("summary") or name)[:1000],
            {"type": "object", "properties": schema.get("properties") or {},
             "required": schema.get("required") or []},
            root + path, headers, False))
    return actions


def _resolved(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """A "$ref": "#/components/schemas/X" schema, looked up (one level, as the server writes
    its request bodies)."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        found: Any = spec
        for part in ref[2:].split("/"):
            found = found.get(part, {}) if isinstance(found, dict) else {}
        return found if isinstance(found, dict) else {}
    return schema


async def run_action(action: Action, args: dict[str, Any], config: ToolConfig) -> ToolResult:
    """The action run with the model's arguments, within the tool's timeout; its output as
    the tool message's content; ToolFailure for anything that went wrong."""
    return await bounded(_run(action, args, config), config)


async def _run(action: Action, args: dict[str, Any], config: ToolConfig) -> ToolResult:
    payload = {"input": args} if action.wrap_input else args
    response = await request("POST", action.url, config, headers=dict(action.headers),
                             json=payload)
    try:
        body = response.json()
    except ValueError:
        return ToolResult(response.text)
    if action.wrap_input:  # Connery: {"status", "data": {"output"}} or {"status", "error"}
        if body.get("status") != "success":
            error = body.get("error") or {}
            raise ToolFailure(f"the action failed: {error.get('message') or error or body}")
        output = (body.get("data") or {}).get("output")
        return ToolResult(json.dumps(output, ensure_ascii=False) if not isinstance(output, str)
                          else output)
    return ToolResult(body if isinstance(body, str) else json.dumps(body, ensure_ascii=False))
