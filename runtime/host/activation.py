"""Activation and residency: a cell made resident from its snapshot and tail (bounded in
concurrency, then the kind's recovery), kept in LRU order, passivated when idle, at rest, or
above the resident cap."""

from __future__ import annotations

import time
from typing import Any

from runtime.entity import EntityKind
from runtime.events import stream_id
from runtime.host.cells import Cell, replay
from runtime.registry import get_kind
from runtime.stores.base import WrongExpectedVersion


class Activation:
    """A part of EntityTable (runtime/host/__init__.py), over its cells, store and
    counters."""

    def _cell(self, kind_name: str, entity_id: str) -> Cell:
        """The entity's cell, created unloaded if absent. Synchronous on purpose: a command
        takes its place in the mailbox the moment it arrives, before any await, so arrival
        order is mailbox order even while the entity is still activating."""
        stream = stream_id(kind_name, entity_id)
        cell = self._cells.get(stream)
        if cell is not None:
            self._cells.move_to_end(stream)
            return cell
        cell = Cell(get_kind(kind_name), entity_id, stream)
        self._cells[stream] = cell
        if len(self._cells) > self.max_resident:
            self._evict_lru(spare=cell)
        return cell

    async def _load(self, cell: Cell) -> None:
        """Activation: snapshot + tail, bounded in concurrency, then the kind's recovery (work
        that a dead or fenced activation left open is closed in the log before any command
        runs). Only the mailbox owner loads."""
        for attempt in range(5):
            async with self._activation_slots:
                state, version, snap_version = await self._replay(cell.kind, cell.stream, None)
            cell.state, cell.version, cell.snap_version = state, version, snap_version
            closing = cell.kind.recover(state)
            if closing:
                try:
                    await self._append(cell, closing, None)
                except WrongExpectedVersion:
                    if attempt == 4:
                        raise
                    continue  # written meanwhile (perhaps closed already): load again
                self.counters["recoveries"] += 1
            cell.loaded = True
            self.counters["activations"] += 1
            return

    async def _replay(self, kind: EntityKind, stream: str, at_version: int | None
                      ) -> tuple[Any, int, int]:
        return await replay(self.store, kind, stream, at_version)

    def _evict_lru(self, spare: Cell) -> None:
        """Passivate the least recently used cells above the cap. Busy and tailed cells stay
        (the table may then sit above the cap for a while), and so does ``spare``, the cell
        being created: evicting it would send its caller round to create it again, forever."""
        excess = len(self._cells) - self.max_resident
        for stream in list(self._cells):
            if excess <= 0:
                break
            cell = self._cells[stream]
            if cell is spare or cell.busy or cell.subscribers:
                continue
            self._drop(cell)
            self.counters["evictions"] += 1
            excess -= 1

    def _drop(self, cell: Cell) -> None:
        cell.dropped = True
        if self._cells.get(cell.stream) is cell:
            del self._cells[cell.stream]

    def passivate_idle(self, now: float | None = None) -> int:
        """Drop cells idle for longer than idle_seconds, or their kind's own (never one that
        is busy or tailed)."""
        now = now if now is not None else time.monotonic()
        dropped = 0
        for stream in list(self._cells):
            cell = self._cells[stream]
            idle = cell.kind.idle_seconds
            cutoff = now - (self.idle_seconds if idle is None else idle)
            if cell.last_used <= cutoff and not cell.busy and not cell.subscribers:
                self._drop(cell)
                dropped += 1
        self.counters["passivations"] += dropped
        return dropped

    def passivate_all(self) -> int:
        return self.passivate_idle(now=float("inf"))

    @property
    def resident(self) -> int:
        return len(self._cells)

    def resident_streams(self) -> list[str]:
        """Resident entities' streams, least recently used first."""
        return list(self._cells)
