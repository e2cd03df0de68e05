"""The console's catalog: every entity of every kind with its last version, when it last
changed and its tag, so lists can be newest first, counted and searched. A projection of the
whole log (runtime/projection.py): one small row per entity, checkpointed, caught up before
each answer."""

from __future__ import annotations

from typing import Any

from runtime.events import Event, split_stream_id
from runtime.projection import Projection, ProjectionRunner, one_per_store
from runtime.stores.base import EventStore

__all__ = ["Catalog", "catalog_for", "tag_of"]


def tag_of(data: Any) -> str:
    """A tag from an entity's first event, where the families keep one: the event's own, an
    episode's setup, a batch's plan, a record's, or a thread's or assistant's name."""
    if not isinstance(data, dict):
        return ""
    for holder in (data, data.get("setup"), data.get("plan"), data.get("record")):
        if isinstance(holder, dict) and isinstance(holder.get("tag"), str) and holder["tag"]:
            return holder["tag"]
    name = data.get("name")
    return name if isinstance(name, str) else ""


class Catalog(Projection):
    name = "console-catalog"
    kinds = None  # every kind
    version = 1

    def __init__(self) -> None:
        #: kind -> id -> [last version, last change (s since the epoch), tag]
        self.entities: dict[str, dict[str, list[Any]]] = {}

    def apply(self, event: Event) -> None:
        kind, entity_id = split_stream_id(event.stream)
        rows = self.entities.setdefault(kind, {})
        row = rows.get(entity_id)
        if row is None:
            row = rows[entity_id] = [0, 0.0, tag_of(event.data) if event.seq == 1 else ""]
        row[0], row[1] = event.seq, event.timestamp

    def dump(self) -> Any:
        return self.entities

    def load(self, data: Any) -> None:
        self.entities = data

    def counts(self) -> dict[str, int]:
        return {kind: len(rows) for kind, rows in self.entities.items()}

    def page(self, kind: str, q: str, offset: int, limit: int) -> tuple[int, list[dict]]:
        """(how many match, the page of them), newest change first; ``q`` matches a part of
        the id or of the tag, ignoring case."""
        needle = q.lower()
        rows = [(i, r) for i, r in self.entities.get(kind, {}).items()
                if not needle or needle in i.lower() or needle in r[2].lower()]
        rows.sort(key=lambda item: (item[1][1], item[0]), reverse=True)
        return len(rows), [{"id": i, "last_version": r[0], "updated_at": r[1], "tag": r[2]}
                           for i, r in rows[offset:offset + limit]]


def catalog_for(store: EventStore) -> Any:
    """This process's catalog runner over ``store`` (``.projection`` is the Catalog)."""
    return one_per_store(Catalog.name, store, lambda s: ProjectionRunner(s, Catalog()))
