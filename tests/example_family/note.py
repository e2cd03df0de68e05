"""note: a text whose every edit is an event, and a proofreading that goes through it word by
word: long work, each step committed as it happens, closed as cut by a crash and carried on
from the last committed word."""

import asyncio

from runtime.entity import Context, EntityKind, Rejected
from runtime.events import NewEvent
from runtime.registry import register

NOTE = "note"  # kind names are global, across families: a family's own prefix avoids a clash
note = register(EntityKind(NOTE, lambda: {"text": None, "edits": 0, "proofread": None}))


def should_resume(state: dict, running: str | None) -> bool:
    """The one rule for carrying a proofreading on unasked: cut by a crash, or under way by
    its log with nothing running it. Never a stopped one: stop means stop."""
    status = (state["proofread"] or {}).get("status")
    return status == "cut" or (status == "running" and running is None)


@note.command("write")
def write(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    if not isinstance(cmd.get("text"), str) or not cmd["text"].strip():
        raise Rejected("text must be a non-empty string", code="invalid")
    return NewEvent("written", {"text": cmd["text"]})


@note.command("proofread")
async def proofread(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    if state["text"] is None:
        raise Rejected("Note not found", code="not_found")
    cut = (state["proofread"] or {}).get("status") == "cut"
    await ctx.commit(NewEvent("proofread_resumed" if cut else "proofread_started", {}))
    ctx.emit({"checked": ctx.state["proofread"]["checked"]})  # under way: the caller returns
    words = ctx.state["text"].split()
    try:
        while (i := ctx.state["proofread"]["checked"]) < len(words):
            await asyncio.sleep(float(cmd.get("seconds_per_word", 0.05)))  # the work
            await ctx.commit(NewEvent("word_checked", {"word": words[i],
                                                       "ok": words[i].isalpha()}))
    except asyncio.CancelledError:
        if ctx.cancelled is None:
            raise  # the host is stopping: recovery closes it at the next activation
        return NewEvent("proofread_stopped", {"reason": ctx.cancelled})
    return NewEvent("proofread_done", {})


@note.recovery
def close_cut(state: dict) -> NewEvent | None:
    if (state["proofread"] or {}).get("status") == "running":
        return NewEvent("proofread_cut", {})
    return None


@note.event("written")
def written(state: dict, data: dict) -> dict:
    return {"text": data["text"], "edits": state["edits"] + 1, "proofread": None}


@note.event("proofread_started")
def proofread_started(state: dict, data: dict) -> dict:
    return {**state, "proofread": {"status": "running", "checked": 0, "flagged": []}}


@note.event("word_checked")
def word_checked(state: dict, data: dict) -> dict:
    done = state["proofread"]
    flagged = done["flagged"] if data["ok"] else [*done["flagged"], data["word"]]
    return {**state, "proofread": {**done, "checked": done["checked"] + 1, "flagged": flagged}}


def _status(status: str):
    def fold(state: dict, data: dict) -> dict:
        return {**state, "proofread": {**state["proofread"], "status": status}}
    return fold


for _type, _status_after in (("proofread_cut", "cut"), ("proofread_resumed", "running"),
                             ("proofread_done", "done"), ("proofread_stopped", "stopped")):
    note.event(_type)(_status(_status_after))
