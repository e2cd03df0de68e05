"""thread: an OpenGPTs thread. Its header (owner, assistant, name), its messages and its runs
are events in its log; state and history are replays. The documents uploaded to it live in a
stream of their own (actors/documents.py) that the thread refers to by its generation.

The event handlers fold in place (append a message, replace one by id through an index kept
beside the list): a thread of n messages replays in O(n), not O(n^2), and its snapshot holds
messages only. The index is not stored; it is rebuilt when a snapshot is loaded.

Checkpoints: every ``run_started`` and ``messages_written`` event is one version of the thread
as OpenGPTs' history shows it (values and the nodes to run next), so /history is exact.

Commands
  put            {"user_id", "assistant_id", "name", "metadata", "at", "create_only"?}
                 -> created | updated (refused "not_found" if another user owns the id)
  delete         {"user_id", "at"} -> deleted (nothing if absent or not the owner)
  update_state   {"user_id", "messages": [msg], "dict_state": bool, "bot_type"}
                 -> messages_written (same id replaces, others append)
  run            {"user_id", "run_id", "input": [msg] | None, "dict_state": bool,
                  "bot": {...}, "assistant_id"?, "at"}
                 -> run_started, messages_written per graph step (each committed as it
                    happens), then run_finished. Retrieval reads the documents of the
                    assistant being run (else the thread's) only while the caller may see
                    it. Progress: {"messages": [...]} (the whole thread first, then new
                    or changed messages, tokens accumulated under the
                    message's id) and {"error": {"code", "message"}} when the run fails.
                    Stopped by a
                    cancel or its deadline: run_cancelled {"reason"}, resumable.
  feedback       {"user_id", "run_id", "key", "score", "value", "comment", "at"}
                 -> feedback_given (refused "not_found" for a run not of this thread)
A run cut off by a crash or failover is closed at the next activation: run_interrupted, with
``next`` left where the run stopped, so the thread can be resumed with input null.
"""

from __future__ import annotations

import asyncio
from typing import Any

from actors.assistant import visible_to
from actors.documents import chunks_for, documents_id
from actors.gpts import bots
from actors.gpts.messages import ACCEPTED_TYPES, add_in_place, normalize
from actors.gpts.settings import ToolSettings
from actors.gpts.tools import GptsTools
from llm.port import ModelError
from runtime.entity import Context, EntityKind, Fenced, Rejected
from runtime.events import NewEvent, unstorable
from runtime.registry import register

CHECKPOINTS = frozenset({"run_started", "messages_written"})


def initial() -> dict[str, Any]:
    """``documents`` holds only what threads stored in their own log before documents had a
    stream of their own (read as before, never written now)."""
    return {"exists": False, "owner": None, "messages": [], "next": [], "dict_state": False,
            "msg_count": None, "checkpoints": 0, "run": None, "documents": [], "run_ids": [],
            "generation": 0, "message_index": {}}


def _to_snapshot(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "message_index"}


def _from_snapshot(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "message_index": {m["id"]: i for i, m in enumerate(data["messages"])}}


# Snapshot format 2: generation, no message index. Format 1 snapshots (which lack the
# generation) are ignored and the thread is folded from its log.
thread = register(EntityKind("thread", initial, snapshot_every=100, snapshot_version=2,
                             to_snapshot=_to_snapshot, from_snapshot=_from_snapshot))


def _user(state: dict, cmd: dict) -> str:
    user = cmd.get("user_id")
    if not isinstance(user, str):
        raise Rejected("user_id must be a string", code="invalid")
    if not state["exists"] or state["owner"] != user:
        raise Rejected("Thread not found", code="not_found")
    return user


def _messages(cmd: dict) -> list[dict[str, Any]]:
    raw = cmd.get("messages")
    if not isinstance(raw, list) or not all(
            isinstance(m, dict) and m.get("type") in ACCEPTED_TYPES for m in raw):
        raise Rejected("messages must be a list of messages with a known type", code="invalid")
    return [normalize(m) for m in raw]


def values(state: dict) -> Any:
    """A version's values as OpenGPTs shows them: the message list, or for a retrieval bot's
    dict state {"messages": [...], "msg_count": n}."""
    if state["dict_state"]:
        out: dict[str, Any] = {"messages": state["messages"]}
        if state["msg_count"] is not None:
            out["msg_count"] = state["msg_count"]
        return out
    return state["messages"]


@thread.command("put")
def put(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    user = cmd.get("user_id")
    if not all(isinstance(cmd.get(k), str) for k in ("user_id", "name", "at")):
        raise Rejected("user_id, name and at must be strings", code="invalid")
    if state["owner"] is not None and state["owner"] != user:
        raise Rejected("Thread not found", code="not_found")
    if state["exists"] and cmd.get("create_only"):
        raise Rejected("a thread with this id exists", code="exists")
    data = {"user_id": user, "assistant_id": cmd.get("assistant_id"), "name": cmd["name"],
            "metadata": cmd.get("metadata"), "at": cmd["at"]}
    return NewEvent("updated" if state["exists"] else "created", data)


@thread.command("delete")
def delete(state: dict, cmd: dict, ctx: Context) -> NewEvent | None:
    if state["exists"] and state["owner"] == cmd.get("user_id"):
        return NewEvent("deleted", {"at": cmd.get("at")})
    return None


@thread.command("update_state")
def update_state(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    _user(state, cmd)
    new = _messages(cmd)
    nxt = state["next"]
    if state["checkpoints"] == 0:  # an empty thread: the graph starts from its first node
        nxt = [bots.first_node(str(cmd.get("bot_type") or "agent"))]
    return NewEvent("messages_written", {"messages": new, "next": nxt, "source": "update",
                                         "dict_state": bool(cmd.get("dict_state"))})


@thread.command("run")
async def run(state: dict, cmd: dict, ctx: Context) -> NewEvent | None:
    _user(state, cmd)
    run_id, bot = cmd.get("run_id"), bots.Bot.from_dict(cmd.get("bot") or {})
    dict_state = bool(cmd.get("dict_state"))
    user = cmd["user_id"]
    if cmd.get("input") is None:
        if not state["next"]:
            raise Rejected("Received no input" if state["checkpoints"] == 0 else
                           "There is nothing to continue: the thread's last run finished",
                           code="no_input")
        new, start = None, list(state["next"])
    else:
        new, start = _messages({"messages": cmd["input"]}), None
        why = unstorable(new)
        if why is not None:  # refused before anything of the run is stored
            raise Rejected(f"input cannot be stored: {why}", code="invalid")
    services = ctx.services

    async def write(messages: list[dict[str, Any]], nxt: list[str],
                    msg_count: int | None = None, source: str = "node") -> None:
        data: dict[str, Any] = {"messages": messages, "next": nxt, "source": source,
                                "dict_state": dict_state}
        if msg_count is not None:
            data["msg_count"] = msg_count
        await ctx.commit(NewEvent("messages_written", data))
        ctx.emit({"messages": messages})

    assistant_id = cmd.get("assistant_id") or state.get("assistant_id")

    async def documents() -> list[dict[str, Any]]:
        """The thread's own documents and those of the assistant being run, read with the
        caller's rights: an assistant the caller may no longer see (made private, deleted)
        lends nothing, whatever the thread points at, and a documents stream gives its
        chunks only to the owner they were written for."""
        if services is None:
            return ctx.state["documents"]
        mine = await services.read_state(
            "documents", documents_id("thread", ctx.entity_id, ctx.state["generation"]))
        own = [*ctx.state["documents"], *chunks_for(mine, user)]
        if not isinstance(assistant_id, str) or not assistant_id:
            return own
        assistant = await services.read_state("assistant", assistant_id)
        if not visible_to(assistant, user):
            return own
        lent = await services.read_state(
            "documents", documents_id("assistant", assistant_id, assistant["generation"]))
        return [*assistant["documents"], *chunks_for(lent, assistant["owner"]), *own]

    tools = _tools(services)
    io = bots.RunIO(messages=lambda: ctx.state["messages"], write=write,
                    show=lambda ms: ctx.emit({"messages": ms}),
                    model=lambda name: services.models.model(name), documents=documents,
                    tools=tools)
    await ctx.commit(NewEvent("run_started", {
        "run_id": run_id, "bot": bot.__dict__, "next": ["__start__"] if new is not None
        else list(state["next"]), "at": cmd.get("at"), "dict_state": dict_state}))
    if new is not None:
        first = [bots.first_node(bot.type)]
        await ctx.commit(NewEvent("messages_written", {
            "messages": new, "next": first, "source": "input", "dict_state": dict_state}))
        start = first
    ctx.emit({"messages": list(ctx.state["messages"])})  # the whole thread first, as OpenGPTs
    try:
        nxt = await bots.run(io, bot, start)
    except asyncio.CancelledError:
        if ctx.cancelled is None:
            raise  # not a signal of ours: the host is stopping
        # Stopped by a cancel or the deadline: the input and the committed steps stay, and
        # `next` names the step to run again, so a continue (input null) resumes the run.
        return NewEvent("run_cancelled", {"run_id": run_id, "reason": ctx.cancelled,
                                          "next": ctx.state["next"]})
    except Fenced:
        raise  # another activation owns the thread now: stop, write nothing more
    except Exception as exc:  # the run failed; the log says so and the thread stays usable
        message = str(exc) if isinstance(exc, ModelError) else f"{type(exc).__name__}: {exc}"
        ctx.emit({"error": {"code": "model_failed", "message": message}})
        return NewEvent("run_finished", {"run_id": run_id, "outcome": "failed",
                                         "error": message})
    return NewEvent("run_finished", {"run_id": run_id,
                                     "outcome": "paused" if nxt else "done"})


@thread.command("feedback")
def feedback(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    """A user's score of one of the thread's runs (OpenGPTs' thumbs up or down)."""
    _user(state, cmd)
    run_id = cmd.get("run_id")
    if run_id not in state.get("run_ids", ()):
        raise Rejected("Run not found", code="not_found")
    return NewEvent("feedback_given", {k: cmd.get(k) for k in
                                       ("run_id", "key", "score", "value", "comment", "at")})


@thread.recovery
def close_interrupted_run(state: dict) -> NewEvent | None:
    run = state["run"]
    if run and run["status"] == "running":
        return NewEvent("run_interrupted", {
            "run_id": run["id"], "next": state["next"],
            "reason": "the server running this run stopped before it finished; "
                      "continue the thread (input null) to resume from the last step"})
    return None


@thread.event("created")
@thread.event("updated")
def written(state: dict, data: dict) -> dict:
    if not state["exists"]:  # a creation: a new generation of documents
        state["generation"] = state.get("generation", 0) + 1
    state.update(exists=True, owner=data["user_id"], assistant_id=data["assistant_id"],
                 name=data["name"], metadata=data["metadata"], updated_at=data["at"])
    return state


@thread.event("deleted")
def deleted(state: dict, data: dict) -> dict:
    return {**initial(), "owner": state["owner"], "generation": state.get("generation", 0)}


@thread.event("run_started")
def run_started(state: dict, data: dict) -> dict:
    state["next"] = data["next"]
    state["checkpoints"] += 1
    state["dict_state"] = data.get("dict_state", state["dict_state"])
    state["run"] = {"id": data["run_id"], "status": "running"}
    state["run_ids"].append(data["run_id"])
    return state


@thread.event("feedback_given")
def feedback_given(state: dict, data: dict) -> dict:
    return state  # in the log only: nothing a thread's state shows depends on it


@thread.event("messages_written")
def messages_written(state: dict, data: dict) -> dict:
    """LangGraph's add_messages, in place: a known id replaces its message, others append."""
    add_in_place(state["messages"], state["message_index"], data["messages"])
    state["next"] = data["next"]
    state["checkpoints"] += 1
    state["dict_state"] = state["dict_state"] or data.get("dict_state", False)
    if "msg_count" in data:
        state["msg_count"] = data["msg_count"]
    return state


@thread.event("run_finished")
def run_finished(state: dict, data: dict) -> dict:
    state["run"] = {"id": data["run_id"], "status": data["outcome"], "error": data.get("error")}
    return state


@thread.event("run_cancelled")
def run_cancelled(state: dict, data: dict) -> dict:
    state["next"] = data["next"]
    state["run"] = {"id": data["run_id"], "status": "cancelled", "error": data["reason"]}
    return state


@thread.event("run_interrupted")
def run_interrupted(state: dict, data: dict) -> dict:
    state["run"] = {"id": data["run_id"], "status": "interrupted", "error": data["reason"]}
    return state


@thread.event("documents_ingested")
def documents_ingested(state: dict, data: dict) -> dict:
    """Documents a thread stored in its own log before they had a stream of their own."""
    state["documents"].extend(data["documents"])
    return state


def _tools(services: Any) -> GptsTools:
    """The OpenGPTs tools of this host (its gpts_tools service), or, where entities run
    without services (a test's table), the environment's settings."""
    tools = getattr(services, "named", {}).get("gpts_tools") if services is not None else None
    return tools or GptsTools(ToolSettings.load())
