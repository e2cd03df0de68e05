"""Projections: read models folded from the global log, for lists and searches.

A projection declares the kinds and event types it folds; the runner reads only those (the
store's filtered global read, by index) and keeps a checkpoint, the position folded up to and
the read model there, durably in the store. So a replica that starts, or restarts after a
crash, loads the newest checkpoint and reads only what came after it, instead of the whole log
from position 1.

Read-your-writes: ``catch_up()`` folds up to the store's last position before it returns, so a
list read right after an acknowledged create shows it. Several readers of one projection (one
per Serve replica) each fold and may each save checkpoints: they fold the same log with the
same code, so their checkpoints at a position agree.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from typing import Any, Sequence

from runtime.entity import Unknown
from runtime.events import Event, kind_of
from runtime.registry import get_kind
from runtime.stores.base import EventStore

__all__ = ["Projection", "ProjectionRunner", "one_per_store"]

log = logging.getLogger(__name__)

#: events read per page while catching up
PAGE = 5_000


class Projection(abc.ABC):
    """A read model: ``apply`` folds one event into it (in place: it is nobody's state of
    record, only ever rebuilt from the log); ``dump``/``load`` turn it into a checkpoint's
    JSON-able state and back. ``version`` names the checkpoint's shape: a checkpoint of
    another version is ignored and the projection is rebuilt from the log."""

    name: str
    kinds: Sequence[str]
    types: Sequence[str] | None = None
    version: int = 1

    @abc.abstractmethod
    def apply(self, event: Event) -> None: ...

    @abc.abstractmethod
    def dump(self) -> Any: ...

    @abc.abstractmethod
    def load(self, data: Any) -> None: ...


class ProjectionRunner:
    def __init__(self, store: EventStore, projection: Projection, *,
                 checkpoint_every: int = 1_000, checkpoint_seconds: float = 30.0) -> None:
        self.store = store
        self.projection = projection
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.position = 0
        self.events_read = 0  # since this runner started: what a bench or /metrics shows
        self.resumed_from = 0  # the checkpoint's position this runner started from
        self._loaded = False
        self._saved_position = 0
        self._saved_at = time.monotonic()
        self._unsaved = 0
        self._lock = asyncio.Lock()
        self._saving: asyncio.Task | None = None

    async def catch_up(self) -> None:
        """Fold everything committed before this call; one caller reads, the others wait for
        it and then find nothing left to read."""
        target = await self.store.last_position()
        if target <= self.position and self._loaded:
            return
        async with self._lock:
            if not self._loaded:
                await self._resume()
            while self.position < target:
                batch = await self.store.read_all(
                    self.position + 1, PAGE, to_position=target, kinds=self.projection.kinds,
                    types=self.projection.types)
                for event in batch:
                    self.projection.apply(self._upcast(event))
                self.events_read += len(batch)
                self._unsaved += len(batch)
                self.position = batch[-1].position if len(batch) == PAGE else target
            self._maybe_checkpoint()

    async def _resume(self) -> None:
        checkpoint = await self.store.load_checkpoint(self.projection.name)
        if checkpoint is not None and isinstance(checkpoint.state, dict) \
                and checkpoint.state.get("version") == self.projection.version:
            self.projection.load(checkpoint.state["model"])
            self.position = self._saved_position = self.resumed_from = checkpoint.position
        self._loaded = True

    @staticmethod
    def _upcast(event: Event) -> Event:
        """The event as its kind folds it today (a kind's upcasters bring old versions up)."""
        try:
            kind = get_kind(kind_of(event.stream))
        except Unknown:  # a kind this process does not load: its events as stored
            return event
        if kind.event_version(event.type) == event.schema_version:
            return event
        return Event(event.stream, event.seq, event.type, kind.upcast(event), event.timestamp,
                     event.position, event.idempotency_key, event.metadata,
                     kind.event_version(event.type))

    def _maybe_checkpoint(self) -> None:
        if self.position <= self._saved_position or (self._saving and not self._saving.done()):
            return
        due = self._unsaved >= self.checkpoint_every or (
            self._unsaved and time.monotonic() - self._saved_at >= self.checkpoint_seconds)
        if due:
            self._start_checkpoint()

    def _start_checkpoint(self) -> None:
        # The model is dumped now, at this position; the write runs in the background.
        state = {"version": self.projection.version, "model": self.projection.dump()}
        position = self.position
        self._saved_position, self._saved_at, self._unsaved = position, time.monotonic(), 0
        self._saving = asyncio.ensure_future(self._save(position, state))

    async def _save(self, position: int, state: Any) -> None:
        try:
            await self.store.save_checkpoint(self.projection.name, position, state)
        except Exception:  # noqa: BLE001 - a lost checkpoint costs a longer catch-up only
            log.warning("projection %s: checkpoint at %d not saved", self.projection.name,
                        position, exc_info=True)

    async def checkpoint_now(self) -> None:
        """Save a checkpoint at the current position (on shutdown, and in tests)."""
        async with self._lock:
            if self._saving is not None:
                await self._saving
            if self.position > self._saved_position:
                self._start_checkpoint()
                await self._saving


_ONE: dict[str, Any] = {}


def one_per_store(name: str, store: EventStore, make: Any) -> Any:
    """This process's one ``make(store)`` called ``name`` over ``store``: a reader of a
    projection lives as long as the process, and a new store (as in tests) starts a new one."""
    current = _ONE.get(name)
    if current is None or current.store is not store:
        current = _ONE[name] = make(store)
    return current
