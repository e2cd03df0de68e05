"""note: a titled text whose every edit is an event."""

from runtime.entity import Context, EntityKind, Rejected
from runtime.events import NewEvent
from runtime.registry import register

note = register(EntityKind("note", lambda: {"text": None, "edits": 0}))


@note.command("write")
def write(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    if not isinstance(cmd.get("text"), str) or not cmd["text"].strip():
        raise Rejected("text must be a non-empty string", code="invalid")
    return NewEvent("written", {"text": cmd["text"]})


@note.event("written")
def written(state: dict, data: dict) -> dict:
    return {"text": data["text"], "edits": state["edits"] + 1}
