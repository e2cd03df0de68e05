"""/assistants: list (mine, public), get, create (POST), upsert (PUT), delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException

from api.opengpts import service
from api.opengpts.auth import User, authed_user
from api.opengpts.common import JSON, ClientId, assistant_view
from api.opengpts.common import router as family_router
from api.runtime import Runtime, get_runtime
from schemas.opengpts import Assistant, AssistantPayload, Status, tool_catalog, tool_type

router = family_router("/assistants", "opengpts: assistants")

Me = Annotated[User, Depends(authed_user)]
Rt = Annotated[Runtime, Depends(get_runtime)]


def _check_tools(config: dict[str, Any]) -> None:
    """Tools must be ones OpenGPTs knows: an object whose type is a tool's (name and
    description, if given, must be that tool's), or a tool's type or name as a string (API.md's
    ["Wikipedia"]). OpenGPTs stored anything and failed every later run; we refuse up front."""
    conf = config.get("configurable")
    if not isinstance(conf, dict):
        return
    tools = conf.get("type==agent/tools")
    if tools is None:
        return
    loc = ["body", "config", "configurable", "type==agent/tools"]
    if not isinstance(tools, list):
        raise HTTPException(422, [{"type": "list_type", "loc": loc,
                                   "msg": "Input should be a valid list", "input": tools}])
    catalog = tool_catalog()
    errors = []
    for i, tool in enumerate(tools):
        kind = tool_type(tool)
        if kind is None:
            errors.append({"type": "unknown_tool", "loc": [*loc, i], "input": tool,
                           "msg": f"no tool is called {tool!r}" if isinstance(tool, str) else
                           f"a tool is an object whose type is one of {sorted(catalog)}"})
            continue
        if isinstance(tool, str):
            continue
        known = catalog[kind]
        for key in ("name", "description"):
            if key in tool and tool[key] != known[key]:
                errors.append({"type": "literal_error", "loc": [*loc, i, key],
                               "input": tool[key], "msg": f"Input should be {known[key]!r}"})
    if errors:
        raise HTTPException(422, errors)


async def _put(rt: Runtime, me: User, aid: str, body: AssistantPayload,
               create_only: bool) -> dict[str, Any]:
    _check_tools(body.config)
    return assistant_view(aid, await service.put_assistant(
        rt, me.user_id, aid, body.name, body.config, body.public, create_only))


@router.get("/", response_model=list[Assistant])
async def list_assistants(me: Me, rt: Rt) -> JSON:
    directory = await service.directory(rt)
    return JSON([assistant_view(i, d) for i, d in directory.assistants_of(me.user_id)])


@router.get("/public/", response_model=list[Assistant])
async def list_public_assistants(rt: Rt, shared_id: str | None = None) -> JSON:
    """All public assistants (``shared_id``, an older era's filter, is accepted and ignored,
    as OpenGPTs itself has done since April 2024)."""
    directory = await service.directory(rt)
    return JSON([assistant_view(i, d) for i, d in directory.public_assistants()])


@router.get("/{aid}", response_model=Assistant)
async def get_assistant(aid: str, me: Me, rt: Rt) -> JSON:
    return JSON(assistant_view(aid, await service.assistant(rt, me.user_id, aid)))


@router.post("", response_model=Assistant)
async def create_assistant(body: AssistantPayload, me: Me, rt: Rt) -> JSON:
    return JSON(await _put(rt, me, service.new_id(), body, create_only=True))


@router.put("", include_in_schema=False)
async def put_new_assistant(body: AssistantPayload, me: Me, rt: Rt) -> JSON:
    """PUT without an id creates one: the API guide's first example does this."""
    return JSON(await _put(rt, me, service.new_id(), body, create_only=True))


@router.put("/{aid}", response_model=Assistant)
async def upsert_assistant(aid: ClientId, body: AssistantPayload, me: Me, rt: Rt) -> JSON:
    """Creates the assistant under a client-chosen id, or updates one of the caller's own.
    Another user's id is 404: OpenGPTs let a PUT take the assistant over."""
    return JSON(await _put(rt, me, aid, body, create_only=False))


@router.delete("/{aid}", response_model=Status)
async def delete_assistant(aid: str, me: Me, rt: Rt) -> JSON:
    """{"status": "ok"} whether or not there was one of the caller's to delete."""
    await service.delete_own(rt, "assistant", aid, me.user_id)
    return JSON({"status": "ok"})
