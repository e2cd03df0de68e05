"""The OpenGPTs family's operations, callable from Python with no HTTP: assistants and threads
read (with the caller's rights checked where they are read), written and deleted, a thread's
state, messages and history, runs prepared and started, feedback, and documents ingested.
Refusals are api/commands.py's ``Refused`` with a code and OpenGPTs' words; the routes
(assistants.py, threads.py, runs.py) turn them into statuses. Reads are replays of the store
and the directory projection; every change is a command to an entity.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any, AsyncIterator

from actors.assistant import visible_to
from actors.documents import documents_id
from actors.thread import CHECKPOINTS, values
from api.commands import Refused, ask, refused
from api.opengpts.directory import Directory, directory_for
from api.runtime import Runtime
from runtime.client import ActorError, OutcomeUnknown, Unavailable
from runtime.events import stream_id
from runtime.host import replay
from runtime.registry import get_kind
from schemas.opengpts import tool_type

#: an id: a UUID from POST, or a client's through PUT
ID_CHARS = r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}"
_ID = re.compile(f"^{ID_CHARS}$")

Items = AsyncIterator[tuple[str, Any]]


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def valid_id(entity_id: str) -> bool:
    """Ids are UUIDs from POST, or client-chosen through PUT (older clients used names like
    "bobby"): letters, digits and _ . : @ - up to 128 characters."""
    return bool(_ID.match(entity_id))


def new_id() -> str:
    return str(uuid.uuid4())


# ------------------------------------------------------------------ reading, with rights

async def read(rt: Runtime, kind: str, entity_id: str) -> dict[str, Any]:
    state, _, _ = await replay(rt.store, get_kind(kind), stream_id(kind, entity_id), None)
    return state


async def visible_assistant(rt: Runtime, user_id: str, aid: str | None) -> dict[str, Any] | None:
    if not aid or not valid_id(aid):
        return None
    state = await read(rt, "assistant", aid)
    return state if visible_to(state, user_id) else None


async def assistant(rt: Runtime, user_id: str, aid: str) -> dict[str, Any]:
    """The assistant, if the caller may see it (theirs, or public)."""
    state = await visible_assistant(rt, user_id, aid)
    if state is None:
        raise Refused("not_found", "Assistant not found")
    return state


async def owned_thread(rt: Runtime, user_id: str, tid: str) -> dict[str, Any]:
    if valid_id(tid):
        state = await read(rt, "thread", tid)
        if state["exists"] and state["owner"] == user_id:
            return state
    raise Refused("not_found", "Thread not found")


async def settled_thread(rt: Runtime, user_id: str, tid: str) -> dict[str, Any]:
    """The caller's thread for reading its state. A run shown as running may have died with its
    host: then the thread's own actor is asked, because activating it closes such a run in the
    log (run_interrupted) and the answer says so. Otherwise the store's replay is the answer."""
    state = await owned_thread(rt, user_id, tid)
    if state["run"] and state["run"]["status"] == "running":
        try:
            _, state = await rt.client.ref("thread", tid).astate()
        except (ActorError, OutcomeUnknown, Unavailable):
            pass  # the store's view is still a consistent one
    return state


async def thread(rt: Runtime, user_id: str, tid: str) -> dict[str, Any]:
    """The caller's thread; one whose assistant was deleted names none (None), as in
    OpenGPTs."""
    state = await owned_thread(rt, user_id, tid)
    aid = state["assistant_id"]
    if aid and not (valid_id(aid) and (await read(rt, "assistant", aid))["exists"]):
        state = {**state, "assistant_id": None}
    return state


async def directory(rt: Runtime) -> Directory:
    """The assistants' and threads' directory, caught up with everything acknowledged."""
    found = directory_for(rt.store)
    await found.catch_up()
    return found


def configurable(assistant: dict[str, Any]) -> dict[str, Any]:
    config = assistant.get("config") or {}
    conf = config.get("configurable") if isinstance(config, dict) else None
    return conf if isinstance(conf, dict) else {}


def bot_type(conf: dict[str, Any]) -> str:
    """The bot a configurable names; agent, OpenGPTs' default, for none or an unknown one."""
    kind = conf.get("type")
    return kind if kind in ("chatbot", "agent", "chat_retrieval") else "agent"


# ------------------------------------------------------------------ writing

async def command(rt: Runtime, kind: str, entity_id: str, cmd: dict[str, Any]) -> None:
    await ask(rt.client.ref(kind, entity_id), cmd)


async def put_assistant(rt: Runtime, user_id: str, aid: str, name: str,
                        config: dict[str, Any], public: bool, create_only: bool
                        ) -> dict[str, Any]:
    """Create, or update one of the caller's own (another user's id is not_found, never a
    takeover); what was stored."""
    at = now_iso()
    await command(rt, "assistant", aid, {
        "type": "put", "user_id": user_id, "name": name, "config": config, "public": public,
        "at": at, "create_only": create_only})
    return {"user_id": user_id, "name": name, "config": config, "at": at, "public": public}


async def put_thread(rt: Runtime, user_id: str, tid: str, assistant_id: str, name: str,
                     create_only: bool) -> dict[str, Any]:
    found = await assistant(rt, user_id, assistant_id)
    at = now_iso()
    metadata = {"assistant_type": configurable(found).get("type") or "chatbot"}
    await command(rt, "thread", tid, {
        "type": "put", "user_id": user_id, "assistant_id": assistant_id, "name": name,
        "metadata": metadata, "at": at, "create_only": create_only})
    return {"user_id": user_id, "assistant_id": assistant_id, "name": name, "at": at,
            "metadata": metadata}


async def delete_own(rt: Runtime, kind: str, entity_id: str, user_id: str) -> None:
    """The owner's entity is deleted; anything else (absent, another user's, a malformed id)
    is quietly nothing, as OpenGPTs answers {"status": "ok"} either way."""
    if valid_id(entity_id) and (await read(rt, kind, entity_id))["exists"]:
        await command(rt, kind, entity_id, {"type": "delete", "user_id": user_id,
                                            "at": now_iso()})


async def runnable(rt: Runtime, user_id: str, tid: str) -> tuple[dict, dict]:
    """The caller's thread and its assistant; no_assistant when the assistant is gone."""
    found = await settled_thread(rt, user_id, tid)
    bot = await visible_assistant(rt, user_id, found["assistant_id"])
    if bot is None:
        raise Refused("no_assistant", "Thread has no assistant")
    return found, bot


def current_values(state: dict[str, Any]) -> Any:
    v = values(state) if state["checkpoints"] else None
    return v or None


async def write_messages(rt: Runtime, user_id: str, tid: str, messages: list[dict[str, Any]],
                         assistant: dict[str, Any]) -> None:
    kind = bot_type(configurable(assistant))
    await command(rt, "thread", tid, {"type": "update_state", "user_id": user_id,
                                      "messages": messages, "bot_type": kind,
                                      "dict_state": kind == "chat_retrieval"})


# ------------------------------------------------------------------ history

def checkpoint(tid: str, seq: int) -> dict[str, Any]:
    return {"configurable": {"thread_id": tid, "checkpoint_ns": "",
                             "checkpoint_id": str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                             f"thread/{tid}#{seq}"))}}


async def history(rt: Runtime, user_id: str, tid: str, limit: int, before: str | None
                  ) -> list[dict[str, Any]]:
    """Versions of the thread, newest first: at most ``limit``, older than checkpoint
    ``before`` when given (LangGraph's paging). Two passes over the log: the first finds the
    checkpoints the page holds, the second folds up to the newest of them and copies the
    values at those only (the fold works in place, so a copy per checkpoint of a long thread
    would make the whole history quadratic). Memory is bounded by the page."""
    await runnable(rt, user_id, tid)
    stream = stream_id("thread", tid)
    checkpoints: list[int] = []  # seqs of checkpoint events, oldest first
    async for event in rt.store.iter_stream(stream):
        if event.type in CHECKPOINTS:
            if before is not None and checkpoint(tid, event.seq)["configurable"][
                    "checkpoint_id"] == before:
                break
            checkpoints.append(event.seq)
    else:
        if before is not None:
            raise Refused("not_found", "Checkpoint not found")
    page = checkpoints[-limit:]
    wanted = set(page)
    parents = {seq: (checkpoint(tid, checkpoints[i - 1]) if i else None)
               for i, seq in enumerate(checkpoints) if seq in wanted}
    kept: list[dict[str, Any]] = []
    if page:
        kind = get_kind("thread")
        state = kind.initial_state()
        async for event in rt.store.iter_stream(stream, page[-1]):
            state = kind.apply(state, event)
            if event.seq in wanted:
                shown = values(state)
                shown = list(shown) if isinstance(shown, list) else {
                    **shown, "messages": list(shown["messages"])}
                kept.append({"values": shown, "next": list(state["next"]),
                             "config": checkpoint(tid, event.seq),
                             "parent": parents[event.seq]})
    return kept[::-1]


async def fork_thread(rt: Runtime, user_id: str, tid: str, checkpoint_id: str,
                      messages: list[dict[str, Any]] | None = None) -> tuple[str, dict]:
    """A new thread of the caller's whose log is this one's up to the checkpoint (a
    checkpoint_id from its history; its first event says forked_from), then ``messages``
    written to it (one with a known id replaces it: an edited message). (id, its state)."""
    await owned_thread(rt, user_id, tid)
    version = None
    async for event in rt.store.iter_stream(stream_id("thread", tid)):
        if event.type in CHECKPOINTS and checkpoint(tid, event.seq)["configurable"][
                "checkpoint_id"] == checkpoint_id:
            version = event.seq
            break
    if version is None:
        raise Refused("not_found", "Checkpoint not found")
    try:
        fork = await rt.client.ref("thread", tid).afork(version, new_id())
    except (ActorError, OutcomeUnknown, Unavailable) as exc:
        raise refused(exc) from None
    if messages:
        bot = await visible_assistant(rt, user_id, (await read(rt, "thread", fork.id))[
            "assistant_id"]) or {}
        await write_messages(rt, user_id, fork.id, messages, bot)
    return fork.id, await read(rt, "thread", fork.id)


# ------------------------------------------------------------------ runs

def bot_of(conf: dict[str, Any]) -> dict[str, Any]:
    """The run's bot from the merged configurable (OpenGPTs' "type==<type>/<field>" keys)."""
    kind = bot_type(conf)
    prefix = f"type=={kind}/"
    model = conf.get(prefix + ("agent_type" if kind == "agent" else "llm_type")) \
        or "GPT 3.5 Turbo"
    bot: dict[str, Any] = {"type": kind, "model": model,
                           "system_message": conf.get(prefix + "system_message")
                           or "You are a helpful assistant."}
    if kind == "agent":
        entries = conf.get(prefix + "tools") or []
        tools = [tool_type(t) for t in entries]
        own = {tool_type(t): t["config"] for t in entries
               if isinstance(t, dict) and isinstance(t.get("config"), dict) and t["config"]
               and tool_type(t) == "action_server_by_sema4ai"}
        bot.update(tools=[t for t in tools if t is not None], tool_configs=own,
                   interrupt_before_action=bool(conf.get(prefix + "interrupt_before_action")),
                   retrieval_description=conf.get(prefix + "retrieval_description"))
    return bot


async def prepare_run(rt: Runtime, user_id: str, thread_id: str, assistant_id: str | None,
                      messages: list[dict[str, Any]] | None, run_conf: Any
                      ) -> dict[str, Any]:
    """The run command for the caller's thread: its assistant (the thread's unless named),
    the bot its configurable and the run's own make, and the new messages (None resumes)."""
    found = await settled_thread(rt, user_id, thread_id)
    aid = assistant_id or found["assistant_id"]
    if not aid:
        raise Refused("no_assistant", "Thread has no assistant")
    bot_assistant = await assistant(rt, user_id, aid)
    if messages is None and found["run"] and found["run"]["status"] == "running":
        # A continue waits for nothing: the run it would continue is still going.
        raise Refused("run_in_progress", "A run is in progress on this thread; wait for it "
                                         "to end (its stream, or GET /threads/{id}/state) and "
                                         "continue then")
    conf = {**configurable(bot_assistant), **(run_conf if isinstance(run_conf, dict) else {})}
    bot = bot_of(conf)
    return {"type": "run", "user_id": user_id, "run_id": new_id(), "input": messages,
            "bot": bot, "assistant_id": aid, "dict_state": bot["type"] == "chat_retrieval",
            "at": now_iso()}


async def start_run(rt: Runtime, thread_id: str, run_command: dict[str, Any]
                    ) -> tuple[Items, tuple[str, Any]]:
    """Sends the run to its thread and waits for the run to be durable: the thread's first
    progress comes after run_started and the input are committed, so nothing is acknowledged
    (a run id, {"status": "ok"}) before the log holds it. The run itself goes on in the
    thread's host whatever becomes of the returned stream (close it when not reading)."""
    stream = rt.client.ref("thread", thread_id).aask_stream(run_command)
    try:
        first = await anext(stream)
    except StopAsyncIteration:  # pragma: no cover - the host always ends with an outcome
        raise Refused("unavailable", "the run ended before it started") from None
    except (ActorError, OutcomeUnknown, Unavailable) as exc:
        raise refused(exc) from None
    if first[0] == "outcome":  # ended with no progress: nothing more to read
        await stream.aclose()
    return stream, first


async def stop_run(rt: Runtime, thread_id: str, run_id: str) -> None:
    """Stop this run only: a signal that lands after it ended never stops the next one."""
    await rt.client.ref("thread", thread_id).acancel("cancelled", where={"run_id": run_id})


async def feedback(rt: Runtime, user_id: str, run_id: str, key: str, score: Any, value: Any,
                   comment: Any) -> None:
    """Stored in the run's thread's log; only the thread's owner may score its runs."""
    tid = (await directory(rt)).thread_of_run(run_id)
    try:
        if tid is None:
            raise Refused("not_found", "")
        await owned_thread(rt, user_id, tid)
    except Refused:
        raise Refused("not_found", "Run not found") from None
    await command(rt, "thread", tid, {
        "type": "feedback", "user_id": user_id, "run_id": run_id, "key": key, "score": score,
        "value": value, "comment": comment, "at": now_iso()})


# ------------------------------------------------------------------ documents

async def documents_of(rt: Runtime, user_id: str, assistant_id: str | None,
                       thread_id: str | None) -> str:
    """The documents stream files go to: the caller's own assistant's, or thread's."""
    if assistant_id:
        state = await visible_assistant(rt, user_id, assistant_id)
        if state is None or state["owner"] != user_id:
            raise Refused("not_found", "Assistant not found.")
        return documents_id("assistant", assistant_id, state["generation"])
    try:
        state = await owned_thread(rt, user_id, thread_id or "")
    except Refused:
        raise Refused("not_found", "Thread not found.") from None
    return documents_id("thread", thread_id or "", state["generation"])


async def ingest(rt: Runtime, user_id: str, target: str,
                 files: list[tuple[str, list[str]]]) -> list[list[str]]:
    """Each file's chunks stored in ``target``; one list of chunk ids per file."""
    out = []
    for source, chunks in files:
        ids = [new_id() for _ in chunks]
        if chunks:
            await command(rt, "documents", target, {
                "type": "ingest", "user_id": user_id, "source": source, "chunks": chunks,
                "ids": ids, "at": now_iso()})
        out.append(ids)
    return out
