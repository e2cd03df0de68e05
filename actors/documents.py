"""documents: the chunks uploaded to one assistant or thread, in a stream of their own, so the
owner's state and snapshots stay small however much is uploaded (a thread with 5 MB of
documents no longer rewrites them in every snapshot of its messages).

The stream is ``documents/<kind>/<id>@<generation>``: an assistant or thread references its
documents by its own kind, id and generation (how many times it was created), so one deleted
and created again under the same id starts with none.

Commands
  ingest  {"user_id", "source", "chunks": [str], "ids"?, "at"} -> documents_ingested
          (refused "not_found" for anyone but the user of the first ingest: the edge checks
          the assistant's or thread's owner before the first, this stream keeps it after)
Reads check rights too: ``chunks_for`` gives the chunks only to the owner they were written
for.
"""

from __future__ import annotations

from typing import Any

from actors.gpts.documents import ingest_event
from runtime.entity import Context, EntityKind, Rejected
from runtime.events import NewEvent
from runtime.registry import register

__all__ = ["chunks_for", "documents", "documents_id"]

documents = register(EntityKind("documents", lambda: {"owner": None, "chunks": []},
                                snapshot_every=20))


def documents_id(kind: str, entity_id: str, generation: int) -> str:
    """The documents entity an assistant or thread (at this generation) refers to."""
    return f"{kind}/{entity_id}@{generation}"


def chunks_for(state: dict[str, Any], owner: str | None) -> list[dict[str, Any]]:
    """The chunks, for the user who owns them; none for anyone else."""
    return state["chunks"] if owner is not None and state["owner"] == owner else []


@documents.command("ingest")
def ingest(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    user = cmd.get("user_id")
    if not isinstance(user, str) or not user:
        raise Rejected("user_id must be a string", code="invalid")
    if state["owner"] is not None and state["owner"] != user:
        raise Rejected("Not found.", code="not_found")
    owner_id = ctx.entity_id.rpartition("@")[0].partition("/")[2]
    event = ingest_event(cmd, owner_id)
    return NewEvent(event.type, {**event.data, "user_id": user})


@documents.event("documents_ingested")
def documents_ingested(state: dict, data: dict) -> dict:
    state["owner"] = data["user_id"]
    state["chunks"].extend(data["documents"])  # in place: a fold never copies the corpus
    return state
