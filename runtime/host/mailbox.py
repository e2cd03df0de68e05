"""The mailbox: one command at a time per entity, in arrival order, handed straight from one
owner to the next (a FIFO of futures); the first owner activates the cell."""

from __future__ import annotations

import asyncio
import collections
import time

from runtime.host.cells import Cell


class Mailbox:
    """A part of EntityTable (runtime/host/__init__.py), over its cells, store and
    counters."""

    async def _acquire(self, kind_name: str, entity_id: str) -> Cell:
        while True:
            cell = self._cell(kind_name, entity_id)
            if not cell.busy:
                cell.busy = True
            else:
                if cell.waiters is None:
                    cell.waiters = collections.deque()
                fut = asyncio.get_running_loop().create_future()
                cell.waiters.append(fut)
                try:
                    await fut
                except asyncio.CancelledError:
                    if fut.done() and not fut.cancelled():  # handed over, then cancelled
                        self._release(cell)
                    raise
            if cell.dropped:  # replaced while we waited: queue on its successor instead
                self._release(cell)
                continue
            if not cell.loaded:
                try:
                    await self._load(cell)
                except BaseException:
                    self._release(cell)  # the next owner tries again
                    raise
            return cell

    async def activate(self, kind_name: str, entity_id: str) -> int:
        """Make the entity resident (warm-up, benchmarks); returns its version."""
        cell = await self._acquire(kind_name, entity_id)
        self._release(cell)
        return cell.version

    async def _loaded_cell(self, kind_name: str, entity_id: str) -> Cell:
        cell = self._cell(kind_name, entity_id)
        if not cell.loaded:
            cell = await self._acquire(kind_name, entity_id)
            self._release(cell)
        return cell

    def _release(self, cell: Cell) -> None:
        cell.last_used = time.monotonic()
        waiters = cell.waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # ownership passes straight on: busy stays True
                return
        cell.busy = False
        at_rest = cell.kind.at_rest
        if at_rest is not None and cell.loaded and not cell.subscribers and at_rest(cell.state):
            self._drop(cell)
            self.counters["passivations"] += 1
        elif len(self._cells) > self.max_resident:
            # cells busy when the cap was crossed were skipped then: catch up as they free
            self._evict_lru(spare=cell)
