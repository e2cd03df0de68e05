"""counter: the smallest useful entity kind, the README's example and the runtime's test and
benchmark subject. State is a plain dict, so it snapshots as it is.

Commands
  add        {"amount": int}             -> added
  count_to   {"n": int, "step": int=1}   -> emits progress n times, then one added(n * step)
  note       {"text": str}               -> noted (for payload-size tests)
"""

from __future__ import annotations

import asyncio
from typing import Any

from runtime.entity import Context, EntityKind, Rejected
from runtime.events import NewEvent
from runtime.registry import register

counter = register(EntityKind("counter", lambda: {"total": 0, "adds": 0, "notes": 0},
                              snapshot_every=100))


def _int(cmd: dict[str, Any], name: str, default: int | None = None) -> int:
    value = cmd.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise Rejected(f"{name} must be an integer", code="invalid")
    return value


@counter.command("add")
def add(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    return NewEvent("added", {"amount": _int(cmd, "amount")})


@counter.command("count_to")
async def count_to(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    n, step = _int(cmd, "n"), _int(cmd, "step", 1)
    if not 0 < n <= 10_000:
        raise Rejected("n must be between 1 and 10000", code="invalid")
    for i in range(1, n + 1):
        ctx.emit({"count": i})
        await asyncio.sleep(0)  # let other entities' commands interleave, as a model call would
    return NewEvent("added", {"amount": n * step})


@counter.command("note")
def note(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    text = cmd.get("text")
    if not isinstance(text, str):
        raise Rejected("text must be a string", code="invalid")
    return NewEvent("noted", {"text": text})


@counter.event("added")
def added(state: dict, data: dict) -> dict:
    return {**state, "total": state["total"] + data["amount"], "adds": state["adds"] + 1}


@counter.event("noted")
def noted(state: dict, data: dict) -> dict:
    return {**state, "notes": state["notes"] + 1}
