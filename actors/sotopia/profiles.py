"""The Sotopia family's records: agents, scenarios (environment profiles), relationships,
evaluation dimensions and dimension lists. Each is one entity whose log holds the versions of
one record; they share these handlers because they share their life: created, updated,
deleted. The record is the wire model's dump, validated at the edge.

Commands (every kind)
  put     {"record", "mode"}: "upsert" (Sotopia's POST: a supplied pk overwrites), "update"
          (PUT: not_found when absent), "seed" (the built-in set: written only if this id
          never existed, so a deleted built-in stays deleted) -> created | updated | nothing
  delete  {} -> deleted; not_found when absent
"""

from __future__ import annotations

from typing import Any

from runtime.entity import Context, EntityKind, Rejected
from runtime.events import NewEvent
from runtime.registry import register

__all__ = ["AGENT", "DIMENSION", "DIMENSION_LIST", "KINDS", "RELATIONSHIP", "SCENARIO"]

AGENT, SCENARIO, RELATIONSHIP = "sotopia_agent", "sotopia_scenario", "sotopia_relationship"
DIMENSION, DIMENSION_LIST = "sotopia_dimension", "sotopia_dimension_list"


def _initial() -> dict[str, Any]:
    return {"record": None, "existed": False}


def _put(state: dict, cmd: dict, ctx: Context) -> NewEvent | None:
    record, mode = cmd.get("record"), cmd.get("mode", "upsert")
    if not isinstance(record, dict):
        raise Rejected("record must be an object", code="invalid")
    record = {**record, "pk": ctx.entity_id}
    if mode == "seed":
        return None if state["existed"] else NewEvent("created", {"record": record})
    if state["record"] is None:
        if mode == "update":
            raise Rejected(f"{ctx.entity_id} not found", code="not_found")
        return NewEvent("created", {"record": record})
    if record == state["record"]:
        return None  # the same record again (a retried POST): nothing new to log
    return NewEvent("updated", {"record": record})


def _delete(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    if state["record"] is None:
        raise Rejected(f"{ctx.entity_id} not found", code="not_found")
    return NewEvent("deleted", {})


def _stored(state: dict, data: dict) -> dict:
    return {"record": data["record"], "existed": True}


def _deleted(state: dict, data: dict) -> dict:
    return {"record": None, "existed": True}


def _kind(name: str) -> EntityKind:
    kind = register(EntityKind(name, _initial, snapshot_every=50))
    kind.command("put")(_put)
    kind.command("delete")(_delete)
    kind.event("created")(_stored)
    kind.event("updated")(_stored)
    kind.event("deleted")(_deleted)
    return kind


KINDS = {name: _kind(name) for name in (AGENT, SCENARIO, RELATIONSHIP, DIMENSION,
                                        DIMENSION_LIST)}
