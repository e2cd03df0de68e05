"""/assistants: list (mine, public), get, create (POST), upsert (PUT), delete."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException

from api.edge import EdgeRoute
from api.opengpts.auth import User, authed_user
from api.opengpts.common import (JSON, RESPONSES, ClientId, assistant_view, command,
                                 delete_own, now_iso, visible_assistant)
from api.opengpts.directory import directory_for
from api.runtime import Runtime, get_runtime
from schemas.opengpts import Assistant, AssistantPayload, Status, tool_catalog, tool_type

router = APIRouter(prefix="/assistants", tags=["opengpts: assistants"],
                   route_class=EdgeRoute, responses=RESPONSES)

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
    at = now_iso()
    await command(rt, "assistant", aid, {
        "type": "put", "user_id": me.user_id, "name": body.name, "config": body.config,
        "public": body.public, "at": at, "create_only": create_only})
    return assistant_view(aid, {"user_id": me.user_id, "name": body.name,
                                "config": body.config, "at": at, "public": body.public})


@router.get("/", response_model=list[Assistant])
async def list_assistants(me: Me, rt: Rt) -> JSON:
    directory = directory_for(rt.store)
    await directory.catch_up()
    return JSON([assistant_view(i, d) for i, d in directory.assistants_of(me.user_id)])


@router.get("/public/", response_model=list[Assistant])
async def list_public_assistants(rt: Rt, shared_id: str | None = None) -> JSON:
    """All public assistants (``shared_id``, an older era's filter, is accepted and ignored,
    as OpenGPTs itself has done since April 2024)."""
    directory = directory_for(rt.store)
    await directory.catch_up()
    return JSON([assistant_view(i, d) for i, d in directory.public_assistants()])


@router.get("/{aid}", response_model=Assistant)
async def get_assistant(aid: str, me: Me, rt: Rt) -> JSON:
    state = await visible_assistant(rt, me.user_id, aid)
    if state is None:
        raise HTTPException(404, "Assistant not found")
    return JSON(assistant_view(aid, state))


@router.post("", response_model=Assistant)
async def create_assistant(body: AssistantPayload, me: Me, rt: Rt) -> JSON:
    return JSON(await _put(rt, me, str(uuid.uuid4()), body, create_only=True))


@router.put("", include_in_schema=False)
async def put_new_assistant(body: AssistantPayload, me: Me, rt: Rt) -> JSON:
    """PUT without an id creates one: the API guide's first example does this."""
    return JSON(await _put(rt, me, str(uuid.uuid4()), body, create_only=True))


@router.put("/{aid}", response_model=Assistant)
async def upsert_assistant(aid: ClientId, body: AssistantPayload, me: Me, rt: Rt) -> JSON:
    """Creates the assistant under a client-chosen id, or updates one of the caller's own.
    Another user's id is 404: OpenGPTs let a PUT take the assistant over."""
    return JSON(await _put(rt, me, aid, body, create_only=False))


@router.delete("/{aid}", response_model=Status)
async def delete_assistant(aid: str, me: Me, rt: Rt) -> JSON:
    """{"status": "ok"} whether or not there was one of the caller's to delete."""
    await delete_own(rt, "assistant", aid, me.user_id)
    return JSON({"status": "ok"})
