"""The lists (GET /assistants/, /assistants/public/, /threads/): a projection of the global
log, kept per replica. It folds only the header events (created, updated, deleted) of
assistant and thread streams, and catches up to the store's last position before it answers,
so a list always shows what was acknowledged before the request. Built from position 1 on a
replica's first list, it is always rebuildable: the log is the only record.
"""

from __future__ import annotations

import asyncio
from typing import Any

from runtime.events import split_stream_id
from runtime.stores.base import EventStore

__all__ = ["Directory", "directory_for"]

PAGE = 5000
_HEADERS = {"created", "updated", "deleted"}
_FOLDED = _HEADERS | {"run_started"}


class Directory:
    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.assistants: dict[str, dict[str, Any]] = {}
        self.threads: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, str] = {}  # run id -> thread id (POST /runs/feedback names a run)
        self.position = 0
        self._lock = asyncio.Lock()

    async def catch_up(self) -> None:
        store = self.store
        target = await store.last_position()
        if target <= self.position:
            return
        async with self._lock:  # one reader folds; the others wait for it, then see it
            while self.position < target:
                batch = await store.read_all(self.position + 1, PAGE)
                if not batch:
                    break
                for event in batch:
                    if event.type in _FOLDED:
                        self._apply(event.stream, event.type, event.data)
                self.position = batch[-1].position

    def _apply(self, stream: str, etype: str, data: dict[str, Any]) -> None:
        kind, entity_id = split_stream_id(stream)
        table = self.assistants if kind == "assistant" else \
            self.threads if kind == "thread" else None
        if table is None:
            return
        if etype == "run_started":
            self.runs[data["run_id"]] = entity_id
        elif etype == "deleted":
            table.pop(entity_id, None)
        else:
            table[entity_id] = data

    def assistants_of(self, user_id: str) -> list[tuple[str, dict[str, Any]]]:
        return [(i, d) for i, d in self.assistants.items() if d["user_id"] == user_id]

    def public_assistants(self) -> list[tuple[str, dict[str, Any]]]:
        return [(i, d) for i, d in self.assistants.items() if d["public"]]

    def threads_of(self, user_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The user's threads; one whose assistant was deleted names none (null), as
        OpenGPTs' foreign key leaves it, so clients offer to re-attach it."""
        return [(i, {**d, "assistant_id": d["assistant_id"]
                     if d["assistant_id"] in self.assistants else None})
                for i, d in self.threads.items() if d["user_id"] == user_id]

    def thread_of_run(self, run_id: str) -> str | None:
        return self.runs.get(run_id)


_current: Directory | None = None


def directory_for(store: EventStore) -> Directory:
    """This process's directory over ``store`` (a new store, as in tests, starts a new one)."""
    global _current
    if _current is None or _current.store is not store:
        _current = Directory(store)
    return _current
