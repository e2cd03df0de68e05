"""assistant: an OpenGPTs assistant (name, config, public flag, owner). The documents uploaded
to it for retrieval live in a stream of their own (actors/documents.py), referred to by the
assistant's generation. Owned by one user for life: a write from anyone else is refused here,
in the one writer, so no race can hand an assistant over.

Commands
  put     {"user_id", "name", "config", "public", "at", "create_only"?}
          -> created | updated; refused "not_found" when another user owns it (or owned it,
             and deleted it); "exists" with create_only when the id is taken
  delete  {"user_id"} -> deleted (nothing when absent or not the owner: DELETE is a no-op then)
"""

from __future__ import annotations

from typing import Any

from runtime.entity import Context, EntityKind, Rejected
from runtime.events import NewEvent
from runtime.registry import register

# ``documents``: only what assistants stored in their own log before documents had a stream
# of their own. Snapshot format 2 has the generation; older ones are ignored (folded anew).
assistant = register(EntityKind("assistant", lambda: {"exists": False, "owner": None,
                                                      "documents": [], "generation": 0},
                                snapshot_every=50, snapshot_version=2))


def _str(cmd: dict[str, Any], name: str) -> str:
    value = cmd.get(name)
    if not isinstance(value, str):
        raise Rejected(f"{name} must be a string", code="invalid")
    return value


def visible_to(state: dict, user_id: str) -> bool:
    """Who may read an assistant (its config, its documents) and run it: its owner, or anyone
    while it is public. The one rule the edge and a thread's retrieval both apply."""
    return bool(state["exists"]) and (state["owner"] == user_id or bool(state.get("public")))


def _owned_by(state: dict, user_id: str) -> bool:
    return state["owner"] is None or state["owner"] == user_id


@assistant.command("put")
def put(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    user_id, name, at = _str(cmd, "user_id"), _str(cmd, "name"), _str(cmd, "at")
    config, public = cmd.get("config"), cmd.get("public", False)
    if not isinstance(config, dict) or not isinstance(public, bool):
        raise Rejected("config must be an object and public a boolean", code="invalid")
    if not _owned_by(state, user_id):
        raise Rejected("Assistant not found", code="not_found")
    if state["exists"] and cmd.get("create_only"):
        raise Rejected("an assistant with this id exists", code="exists")
    data = {"user_id": user_id, "name": name, "config": config, "public": public, "at": at}
    return NewEvent("updated" if state["exists"] else "created", data)


@assistant.command("delete")
def delete(state: dict, cmd: dict, ctx: Context) -> NewEvent | None:
    if state["exists"] and state["owner"] == _str(cmd, "user_id"):
        return NewEvent("deleted", {"at": cmd.get("at")})
    return None


@assistant.event("created")
@assistant.event("updated")
def written(state: dict, data: dict) -> dict:
    generation = state.get("generation", 0) + (0 if state["exists"] else 1)
    return {**state, "exists": True, "generation": generation, "owner": data["user_id"],
            "name": data["name"],
            "config": data["config"], "public": data["public"], "updated_at": data["at"]}


@assistant.event("deleted")
def deleted(state: dict, data: dict) -> dict:
    # The owner is kept: a deleted id can be taken again only by whoever owned it.
    return {"exists": False, "owner": state["owner"], "documents": [],
            "generation": state.get("generation", 0)}


@assistant.event("documents_ingested")
def documents_ingested(state: dict, data: dict) -> dict:
    """Documents an assistant stored in its own log before they had a stream of their own."""
    return {**state, "documents": [*state["documents"], *data["documents"]]}
