"""counter: the smallest useful entity kind, the README's example and the runtime's test and
benchmark subject. State is a plain dict, so it snapshots as it is.

Commands
  add        {"amount": int}             -> added
  count_to   {"n": int, "step": int=1}   -> emits progress n times, then one added(n * step)
  note       {"text": str}               -> noted (for payload-size tests)
  job        {"steps": int, "interval": float=0}
             -> commits job_started, then one job_step per step as it goes (progress emitted
                too), and decides job_finished. The shape of a long run (an episode, an LLM
                run): if its activation dies or is fenced mid-way, the next activation's
                recovery stores job_interrupted, so the log always says how the job ended.
                Stopped by a cancel or its deadline, it decides job_stopped {"reason"}.
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


@counter.query("total")
def total(state: dict, args: Any) -> int:
    return state["total"]


@counter.command("note")
def note(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    text = cmd.get("text")
    if not isinstance(text, str):
        raise Rejected("text must be a string", code="invalid")
    return NewEvent("noted", {"text": text})


@counter.command("job")
async def job(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    steps = _int(cmd, "steps")
    interval = cmd.get("interval", 0)
    if not 0 < steps <= 10_000:
        raise Rejected("steps must be between 1 and 10000", code="invalid")
    if not isinstance(interval, (int, float)) or isinstance(interval, bool) \
            or not 0 <= interval <= 10:
        raise Rejected("interval must be a number of seconds between 0 and 10", code="invalid")
    job_id = state.get("jobs", 0) + 1
    try:
        await ctx.commit(NewEvent("job_started", {"job": job_id, "steps": steps}))
        for step in range(1, steps + 1):
            await asyncio.sleep(interval)
            ctx.emit({"job": job_id, "step": step})
            await ctx.commit(NewEvent("job_step", {"job": job_id, "step": step}))
    except asyncio.CancelledError:
        if ctx.cancelled is None:
            raise
        # stopped by a cancel or its deadline: the steps committed so far stay
        return NewEvent("job_stopped", {"job": job_id, "reason": ctx.cancelled})
    return NewEvent("job_finished", {"job": job_id})


@counter.recovery
def close_open_job(state: dict) -> NewEvent | None:
    running = state.get("job")
    if running and running["status"] == "running":
        return NewEvent("job_interrupted", {"job": running["id"], "step": running["step"]})
    return None


@counter.event("job_started")
def job_started(state: dict, data: dict) -> dict:
    return {**state, "jobs": data["job"],
            "job": {"id": data["job"], "steps": data["steps"], "step": 0, "status": "running"}}


@counter.event("job_step")
def job_step(state: dict, data: dict) -> dict:
    return {**state, "job": {**state["job"], "step": data["step"]}}


@counter.event("job_finished")
def job_finished(state: dict, data: dict) -> dict:
    return {**state, "job": {**state["job"], "status": "finished"}}


@counter.event("job_stopped")
def job_stopped(state: dict, data: dict) -> dict:
    return {**state, "job": {**state["job"], "status": data["reason"]}}


@counter.event("job_interrupted")
def job_interrupted(state: dict, data: dict) -> dict:
    return {**state, "job": {**state["job"], "status": "interrupted"}}


@counter.event("added")
def added(state: dict, data: dict) -> dict:
    return {**state, "total": state["total"] + data["amount"], "adds": state["adds"] + 1}


@counter.event("noted")
def noted(state: dict, data: dict) -> dict:
    return {**state, "notes": state["notes"] + 1}
