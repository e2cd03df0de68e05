"""An in-memory event store (``memory://name``): the same contract as the durable backends, for
fast in-process tests of entity kinds and graphs. Nothing survives the process.

Instances opened with the same name share one database, as two hosts share a file or a server,
so the conformance suite's reopen and two-instance cases apply. Payloads go through the same
codec as the durable stores (encoded at append, decoded at read), so a test sees exactly what a
replay from SQLite or PostgreSQL would give.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from runtime.events import Event, NewEvent, decode, encode, kind_of
from runtime.stores.base import (ANY, AppendResult, EventStore, Snapshot, StoreError,
                                 WrongExpectedVersion, encode_append, validate_log_filter,
                                 validate_range, validate_snapshot_seq)

__all__ = ["MemoryEventStore"]

# (seq, type, data bytes, timestamp, position, idempotency key, metadata bytes, version)
_Row = tuple[int, str, bytes, float, int, "str | None", "bytes | None", int]


@dataclass
class _Database:
    streams: dict[str, list[_Row]] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)  # kept after deletion
    log: list[tuple[str, _Row]] = field(default_factory=list)  # position - 1 -> row
    keys: dict[tuple[str, str], AppendResult] = field(default_factory=dict)
    snapshots: dict[str, dict[int, tuple[bytes, float, int]]] = field(default_factory=dict)
    deleted: set[tuple[str, int]] = field(default_factory=set)  # gone from the global log too


_databases: dict[str, _Database] = {}


class MemoryEventStore(EventStore):
    def __init__(self, name: str = "") -> None:
        self._db = _databases.setdefault(name, _Database())
        self._closed = False

    def _open(self) -> _Database:
        if self._closed:
            raise StoreError("the store is closed")
        return self._db

    async def append(self, stream: str, events: Sequence[NewEvent], expected_version: int,
                     idempotency_key: str | None = None) -> AppendResult:
        rows = encode_append(stream, events, expected_version)
        db = self._open()
        await asyncio.sleep(0)  # a suspension point, as every real append has one
        if idempotency_key is not None:
            prior = db.keys.get((stream, idempotency_key))
            if prior is not None:
                return AppendResult(prior.stream, prior.first_seq, prior.last_seq,
                                    prior.first_position, prior.last_position,
                                    prior.timestamp, duplicate=True)
        version = db.versions.get(stream, 0)
        if expected_version != ANY and expected_version != version:
            raise WrongExpectedVersion(stream, expected_version, version)
        now = time.time()
        first_position = len(db.log) + 1
        stored = db.streams.setdefault(stream, [])
        for i, (etype, data, meta, ver) in enumerate(rows):
            row: _Row = (version + 1 + i, etype, data, now, first_position + i, idempotency_key,
                         meta, ver)
            stored.append(row)
            db.log.append((stream, row))
        db.versions[stream] = version + len(rows)
        result = AppendResult(stream, version + 1, version + len(rows), first_position,
                              first_position + len(rows) - 1, now)
        if idempotency_key is not None:
            db.keys[(stream, idempotency_key)] = result
        return result

    @staticmethod
    def _event(stream: str, row: _Row) -> Event:
        seq, etype, data, ts, position, key, meta, ver = row
        return Event(stream, seq, etype, decode(data), ts, position, key,
                     None if meta is None else decode(meta), ver)

    async def read(self, stream: str, from_seq: int = 1, to_seq: int | None = None,
                   limit: int | None = None) -> list[Event]:
        validate_range(from_seq, to_seq, limit)
        rows = [r for r in self._open().streams.get(stream, ())
                if r[0] >= from_seq and (to_seq is None or r[0] <= to_seq)]
        if limit is not None:
            rows = rows[:limit]
        return [self._event(stream, r) for r in rows]

    async def last_version(self, stream: str) -> int:
        return self._open().versions.get(stream, 0)

    async def read_all(self, from_position: int = 1, limit: int = 1000, *,
                       to_position: int | None = None, kinds: Sequence[str] | None = None,
                       types: Sequence[str] | None = None) -> list[Event]:
        validate_range(from_position, None, limit)
        validate_log_filter(kinds, types, to_position)
        db = self._open()
        out: list[Event] = []
        if limit == 0:
            return out
        end = len(db.log) if to_position is None else min(to_position, len(db.log))
        for stream, row in db.log[max(0, from_position - 1):end]:
            if db.deleted and (stream, row[0]) in db.deleted:
                continue
            if kinds is not None and kind_of(stream) not in kinds:
                continue
            if types is not None and row[1] not in types:
                continue
            out.append(self._event(stream, row))
            if len(out) >= limit:
                break
        return out

    async def list_streams(self, kind: str, after: str | None = None, limit: int = 1000
                           ) -> list[tuple[str, int]]:
        validate_range(0, None, limit)
        db = self._open()
        names = sorted(s for s in db.versions
                       if kind_of(s) == kind and "/" in s and (after is None or s > after))
        return [(s, db.versions[s]) for s in names[:limit]]

    async def last_position(self) -> int:
        return len(self._open().log)

    async def find_idempotent(self, stream: str, key: str) -> AppendResult | None:
        return self._open().keys.get((stream, key))

    async def delete_events(self, stream: str, to_seq: int) -> None:
        db = self._open()
        if stream in db.streams:
            gone = [r for r in db.streams[stream] if r[0] <= to_seq]
            db.deleted.update((stream, r[0]) for r in gone)
            db.streams[stream] = [r for r in db.streams[stream] if r[0] > to_seq]

    async def save_snapshot(self, stream: str, seq: int, state: Any,
                            keep: int | None = None, version: int = 1) -> None:
        validate_snapshot_seq(seq)
        blob = encode(state)
        snaps = self._open().snapshots.setdefault(stream, {})
        snaps[seq] = (blob, time.time(), version)
        if keep is not None:
            for old in sorted(snaps)[:-keep] if keep > 0 else list(snaps):
                del snaps[old]

    async def load_snapshot(self, stream: str, max_seq: int | None = None
                            ) -> Snapshot | None:
        snaps = self._open().snapshots.get(stream, {})
        fitting = [s for s in snaps if max_seq is None or s <= max_seq]
        if not fitting:
            return None
        seq = max(fitting)
        blob, ts, version = snaps[seq]
        return Snapshot(stream, seq, decode(blob), ts, version)

    async def delete_snapshots(self, stream: str, max_seq: int | None = None) -> None:
        snaps = self._open().snapshots.get(stream, {})
        for seq in [s for s in snaps if max_seq is None or s <= max_seq]:
            del snaps[seq]

    async def close(self) -> None:
        self._closed = True
