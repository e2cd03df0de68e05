"""Event store backends, chosen by URL: ``sqlite:///path/to/file.db`` (the embedded default),
``postgresql://...`` (the cluster store) or ``memory://name`` (in-process tests)."""

from __future__ import annotations

from runtime.stores.base import (
    ANY,
    AppendResult,
    EventStore,
    Snapshot,
    StoreError,
    WrongExpectedVersion,
)

__all__ = ["ANY", "AppendResult", "EventStore", "Snapshot", "StoreError", "WrongExpectedVersion",
           "open_store"]


def open_store(url: str) -> EventStore:
    if url.startswith("sqlite://"):
        from runtime.stores.sqlite import SQLiteEventStore

        return SQLiteEventStore(url[len("sqlite://"):] or "actorlog.db")
    if url.startswith(("postgresql://", "postgres://")):
        from runtime.stores.postgres import PostgresEventStore

        return PostgresEventStore(url)
    if url.startswith("memory://"):
        from runtime.stores.memory import MemoryEventStore

        return MemoryEventStore(url[len("memory://"):])
    raise ValueError(f"unsupported event store URL {url!r} "
                     "(expected sqlite:///path, postgresql://... or memory://name)")
