"""Reads where the entity lives: its state (now, or at a past version: time travel), a kind's
query, and subscriptions (every committed event from a sequence number, then live ones, with
no gap and no duplicate)."""

from __future__ import annotations

from typing import Any, AsyncIterator

from runtime.entity import Rejected, Unknown, Unreadable
from runtime.events import stream_id
from runtime.host.cells import Cell, ErrorReply, Subscriber
from runtime.registry import get_kind
from runtime.stores.base import StoreError, WrongExpectedVersion


class Reads:
    """A part of EntityTable (runtime/host/__init__.py), over its cells, store and
    counters."""

    async def state(self, kind_name: str, entity_id: str, version: int | None = None
                    ) -> tuple[int, Any] | ErrorReply:
        try:
            kind = get_kind(kind_name)
        except Unknown as exc:
            return ErrorReply("unknown_kind", str(exc))
        stream = stream_id(kind_name, entity_id)
        cell = self._cells.get(stream)
        if version is None:
            if cell is None or not cell.loaded:
                # Activate: a read after a failover is what brings the entity back, and its
                # recovery closes in the log whatever the lost activation left open.
                try:
                    cell = await self._loaded_cell(kind_name, entity_id)
                except (WrongExpectedVersion, StoreError) as exc:
                    return ErrorReply("unavailable", f"could not activate {stream}: {exc}")
                except Unreadable as exc:
                    return ErrorReply("unreadable", str(exc))
            if not cell.busy:
                return cell.version, cell.state
        last = (cell.version if cell is not None and cell.loaded
                else await self.store.last_version(stream))
        if version is not None and version > last:
            return ErrorReply("bad_request",
                              f"version {version} is beyond {stream}'s last version {last}")
        try:
            state, at, _ = await self._replay(kind, stream, version)
        except Unreadable as exc:
            return ErrorReply("unreadable", str(exc))
        return at, state

    async def query(self, kind_name: str, entity_id: str, name: str, args: Any = None
                    ) -> Any | ErrorReply:
        """The kind's query ``name`` over the entity's committed state, read where it lives:
        the resident cell even while a command runs (its state changes only when a commit
        is durable, and a query does not await), else the entity is activated first."""
        try:
            kind = get_kind(kind_name)
            cell = self._cells.get(stream_id(kind_name, entity_id))
            if cell is None or not cell.loaded:
                cell = await self._loaded_cell(kind_name, entity_id)
            return kind.answer(name, cell.state, args)
        except Unknown as exc:
            return ErrorReply("unknown_kind", str(exc))
        except Rejected as exc:
            return ErrorReply(exc.code, exc.message)
        except (WrongExpectedVersion, StoreError) as exc:
            return ErrorReply("unavailable", f"could not activate {kind_name}/{entity_id}: "
                                             f"{exc}")
        except Unreadable as exc:
            return ErrorReply("unreadable", str(exc))

    async def _followed_cell(self, kind_name: str, entity_id: str, sub: Subscriber) -> Cell:
        """The entity's loaded cell with ``sub`` among its subscribers. A cell this loads is
        released only once ``sub`` follows it: released without one, an entity at rest (a
        finished batch) is passivated at once, and a tail that then followed its successor
        activated and lost it again and again, holding its host's loop."""
        cell = self._cell(kind_name, entity_id)
        if cell.loaded:
            _follow(cell, sub)
            return cell
        cell = await self._acquire(kind_name, entity_id)
        try:
            _follow(cell, sub)
        finally:
            self._release(cell)
        return cell

    async def subscribe(self, kind_name: str, entity_id: str, from_seq: int = 1,
                        progress: bool = False) -> AsyncIterator[tuple[str, Any]]:
        """Every committed event from ``from_seq`` on, then live ones, with no gap and no
        duplicate across the switch: the live buffer is registered before the stored part is
        read, and anything at or below the last delivered sequence number is skipped."""
        sub = Subscriber(progress)
        cell = await self._followed_cell(kind_name, entity_id, sub)
        delivered = max(from_seq, 1) - 1
        catch_up = True
        try:
            while True:
                if catch_up or sub.overflowed:
                    # Read the store up to what the cell had committed when we looked; live
                    # items that overlap are skipped below by their sequence numbers.
                    catch_up = sub.overflowed = False
                    upto = cell.version
                    while delivered < upto:
                        batch = await self.store.read(cell.stream, delivered + 1, upto, 1000)
                        if not batch:
                            break
                        for ev in batch:
                            yield ("event", ev)
                        delivered = batch[-1].seq
                    if sub.overflowed:
                        continue
                while sub.items and not sub.overflowed:
                    what, item = sub.items.popleft()
                    if what == "event":
                        if item.seq <= delivered:
                            continue
                        if item.seq != delivered + 1:
                            catch_up = True
                            break
                        delivered = item.seq
                    yield (what, item)
                if catch_up or sub.overflowed or sub.items:
                    continue
                if cell.dropped:  # replaced after a conflict: follow its successor
                    cell.subscribers.remove(sub)
                    cell = await self._followed_cell(kind_name, entity_id, sub)
                    catch_up = True
                    continue
                if delivered < cell.version:
                    catch_up = True
                    continue
                sub.wake.clear()
                await sub.wake.wait()
        finally:
            if cell.subscribers and sub in cell.subscribers:
                cell.subscribers.remove(sub)
                if not cell.subscribers:
                    cell.subscribers = None


def _follow(cell: Cell, sub: Subscriber) -> None:
    if cell.subscribers is None:
        cell.subscribers = []
    cell.subscribers.append(sub)
