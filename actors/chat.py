"""chat: one agent chat (the step-streaming agent chat family). Every user message and every
step the agent takes is an event; the agent's memory for the next message is rebuilt from those
events (actors/agent/memory.py), so it survives restarts and host moves.

Commands
  message  {"message_id", "message", "model"?, "at"}
           -> user_message, then agent_step per step (PlanningStep, ActionStep,
              FinalAnswerStep; each committed as it happens), then message_ended; or
              message_failed {"error"} when the agent could not go on, or message_stopped
              {"reason"} when a stop (cancel) or the deadline ended it. Progress:
              {"accepted": message_id} once the message is in the log, then {"step": record}
              per step.
           A resend (the same message_id with the same message as the last message of that
           id) is not stored or run again: nothing is appended, and the progress is
           {"accepted": message_id, "duplicate": true}; its outcome is the first's, in the
           log. The same id with another message is a new message (clients copy the seed's
           "abc123").
A message cut off by a crash is closed at the next activation: message_interrupted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
from typing import Any

from runtime.entity import Context, EntityKind, Fenced, Rejected
from runtime.events import NewEvent
from runtime.registry import register

__all__ = ["chat", "MAX_MESSAGE_CHARS"]

MAX_MESSAGE_CHARS = 100_000

#: threads the agents run in (smolagents is synchronous); they wait on model calls made on the
#: host's event loop, so many fit on few cores
_THREADS = concurrent.futures.ThreadPoolExecutor(max_workers=256, thread_name_prefix="agent")


def initial() -> dict[str, Any]:
    #: sent: message_id -> digest of the last message sent with that id (resends are known)
    return {"records": [], "messages": 0, "running": None, "sent": {}}


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


chat = register(EntityKind("chat", initial, snapshot_every=50))


@chat.command("message")
async def message(state: dict, cmd: dict, ctx: Context) -> NewEvent | None:
    text, message_id = cmd.get("message"), cmd.get("message_id")
    if not isinstance(text, str) or not isinstance(message_id, str) or not message_id:
        raise Rejected("message must be a string and message_id a non-empty string",
                       code="invalid")
    if len(text) > MAX_MESSAGE_CHARS or len(message_id) > 256:
        raise Rejected(f"a message has at most {MAX_MESSAGE_CHARS} characters and its id 256",
                       code="invalid")
    if state.get("sent", {}).get(message_id) == digest(text):  # a resend of the last one
        ctx.emit({"accepted": message_id, "duplicate": True})
        return None
    from actors.agent.model import agent_for  # smolagents: imported when an agent first runs
    from actors.agent.memory import record_of, steps_from

    memory = list(state["records"])  # before this message: the agent adds its own task step
    await ctx.commit(NewEvent("user_message", {"message_id": message_id, "message": text,
                                               "at": cmd.get("at")}))
    ctx.emit({"accepted": message_id})
    loop = asyncio.get_running_loop()
    services = ctx.services
    agent = agent_for(services.models, services.agent_tools, cmd.get("model"), loop)
    agent.memory.steps = steps_from(memory)
    steps: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def work() -> None:  # in a thread: smolagents' loop is synchronous
        try:
            for step in agent.run(text, stream=True, reset=False):
                record = record_of(step)
                if record is not None:
                    loop.call_soon_threadsafe(steps.put_nowait, ("step", record))
        except BaseException as exc:  # noqa: BLE001 - handed to the command, which logs it
            loop.call_soon_threadsafe(steps.put_nowait, ("error", exc))
        finally:
            loop.call_soon_threadsafe(steps.put_nowait, ("done", None))

    loop.run_in_executor(_THREADS, work)
    try:
        while True:
            what, item = await steps.get()
            if what == "done":
                break
            if what == "error":
                raise item
            await ctx.commit(NewEvent("agent_step", {"message_id": message_id, **item}))
            ctx.emit({"step": item})
    except asyncio.CancelledError:
        agent.interrupt()  # the thread stops at its next step
        if ctx.cancelled is None:
            raise  # the host is stopping: recovery closes the message
        return NewEvent("message_stopped", {"message_id": message_id,
                                            "reason": ctx.cancelled})
    except Fenced:
        agent.interrupt()
        raise
    except Exception as exc:  # noqa: BLE001 - the log says how the message ended
        agent.interrupt()
        return NewEvent("message_failed", {"message_id": message_id,
                                           "error": f"{type(exc).__name__}: {exc}"})
    return NewEvent("message_ended", {"message_id": message_id})


@chat.recovery
def close_interrupted(state: dict) -> NewEvent | None:
    if state["running"] is not None:
        return NewEvent("message_interrupted", {
            "message_id": state["running"],
            "reason": "the server running this message stopped before it finished"})
    return None


@chat.event("user_message")
def user_message(state: dict, data: dict) -> dict:
    state["records"].append({"task": data["message"]})
    state["messages"] += 1
    state["running"] = data["message_id"]
    state.setdefault("sent", {})[data["message_id"]] = digest(data["message"])
    return state


@chat.event("agent_step")
def agent_step(state: dict, data: dict) -> dict:
    if data["step_type"] != "FinalAnswerStep":  # not a memory step, as in smolagents
        state["records"].append({k: v for k, v in data.items() if k != "message_id"})
    return state


@chat.event("message_ended")
@chat.event("message_failed")
@chat.event("message_stopped")
@chat.event("message_interrupted")
def message_closed(state: dict, data: dict) -> dict:
    state["running"] = None
    return state
