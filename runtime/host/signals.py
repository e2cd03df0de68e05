"""Signals: what runs on an entity now, and cancel, delivered beside the running command (never
queued behind it) and aimed at one command only when it names one."""

from __future__ import annotations

import asyncio
from typing import Any

from runtime.events import stream_id
from runtime.host.cells import Cell


class Signals:
    """A part of EntityTable (runtime/host/__init__.py), over its cells, store and
    counters."""

    def _stop(self, cell: Cell, task: asyncio.Task, reason: str) -> bool:
        if task.done() or cell.running is not task or cell.stop_reason is not None:
            return False
        cell.stop_reason = reason
        task.cancel()
        return True

    def running(self, kind_name: str, entity_id: str) -> str | None:
        """The type of the command running on the entity here now, None when none is: how a
        sweeper tells long work that is going on from work a dead host left open in the
        log (which only an activation closes)."""
        cell = self._cells.get(stream_id(kind_name, entity_id))
        if cell is None or cell.running is None:
            return None
        return str((cell.running_command or {}).get("type"))

    def cancel(self, kind_name: str, entity_id: str, reason: str = "cancelled",
               where: dict[str, Any] | None = None) -> dict[str, Any]:
        """The signal path: delivered at once, never queued behind the running command (an
        async actor runs this call beside it). It appends nothing itself: the running command
        sees CancelledError at its next await and commits what closes its work. With nothing
        running (finished, never started, another host's activation) it is a no-op that says
        so. ``where`` names the command meant ({"run_id": ...}): a signal sent as one command
        ends must not stop the next one, so any other running command is left alone."""
        cell = self._cells.get(stream_id(kind_name, entity_id))
        task = cell.running if cell is not None else None
        running = (cell.running_command or {}) if cell is not None else {}
        if where and any(running.get(k) != v for k, v in where.items()):
            return {"cancelled": False, "detail": "the command named is not running"}
        if cell is None or task is None or not self._stop(cell, task, reason):
            return {"cancelled": False, "detail": "nothing is running on this entity"}
        self.counters["cancels"] += 1
        return {"cancelled": True, "detail": f"the running command was told to stop ({reason})"}
