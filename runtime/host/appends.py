"""Appends: events encoded once, stored at the cell's version, folded into the cell as the
codec returns them, pushed to live subscribers; a snapshot written in the background when due."""

from __future__ import annotations

import asyncio
import time

from runtime.entity import Rejected
from runtime.events import Encoded, Event, NewEvent, decode, encode
from runtime.host.cells import Cell
from runtime.stores.base import AppendResult


class Appends:
    """A part of EntityTable (runtime/host/__init__.py), over its cells, store and
    counters."""

    async def _append(self, cell: Cell, decided: list[NewEvent], key: str | None
                      ) -> tuple[AppendResult, list[Event]]:
        """Append at the cell's version and fold what was stored into the cell; live
        subscribers get it and a snapshot is taken when due. Conflicts and store failures
        propagate with nothing stored; a duplicate key folds nothing."""
        # The live fold sees exactly what a replay will: data as it comes back from the codec
        # (tuples become lists, keys become strings), never the handler's own objects. Done
        # before the append, so a value the codec cannot hold is a refusal with nothing stored.
        kind = cell.kind
        for ev in decided:  # stored in the version of its schema this code writes
            ev.schema_version = kind.event_version(ev.type)
        try:
            raw = [(encode(ev.data), None if ev.metadata is None else encode(ev.metadata))
                   for ev in decided]
        except (TypeError, ValueError) as exc:  # orjson.JSONEncodeError is a TypeError
            raise Rejected(f"an event of {cell.stream} cannot be stored: {exc}",
                           code="invalid") from None
        payloads = [(decode(data), decode(meta)) for data, meta in raw]
        stored = [NewEvent(ev.type, Encoded(data), None if meta is None else Encoded(meta),
                           ev.schema_version)  # type: ignore[arg-type]
                  for ev, (data, meta) in zip(decided, raw)]
        started = time.perf_counter()
        result = await self.store.append(cell.stream, stored, cell.version, key)
        self.append_seconds[cell.kind.name].observe(time.perf_counter() - started)
        if result.duplicate:
            return result, []
        self.kind_counters[cell.kind.name]["events"] += len(decided)
        events = [
            Event(cell.stream, result.first_seq + i, ev.type, data, result.timestamp,
                  result.first_position + i, key, metadata, ev.schema_version)
            for i, (ev, (data, metadata)) in enumerate(zip(decided, payloads))
        ]
        cell.state = cell.kind.fold(cell.state, events)
        cell.version = result.last_seq
        if cell.subscribers:
            for sub in cell.subscribers:
                for ev in events:
                    sub.push(("event", ev))
        if cell.version - cell.snap_version >= cell.kind.snapshot_every:
            self._snapshot(cell)
        return result, events

    def _snapshot(self, cell: Cell) -> None:
        # Freeze the state now (as bytes): later commands fold into the same object before the
        # write runs.
        frozen = Encoded(encode(cell.kind.to_snapshot(cell.state)))
        version = cell.version
        cell.snap_version = version
        task = asyncio.create_task(self.store.save_snapshot(
            cell.stream, version, frozen, keep=cell.kind.keep_snapshots,
            version=cell.kind.snapshot_version))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        self.counters["snapshots"] += 1
