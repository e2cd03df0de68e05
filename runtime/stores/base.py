"""The EventStore contract every backend implements, and the conformance suite checks.

Kept apart from the backends (pyeventsourcing's recorder split): hosts, the client and the Serve
edge only see this interface, so SQLite (embedded) and PostgreSQL (cluster) are interchangeable.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, AsyncIterator, Iterable, Sequence

from orjson import loads

from runtime.events import Event, NewEvent, encode

__all__ = [
    "ANY",
    "AppendResult",
    "EventStore",
    "Checkpoint",
    "Snapshot",
    "StoreError",
    "WrongExpectedVersion",
    "encode_append",
    "events_from_rows",
    "log_events_from_rows",
    "validate_append",
    "validate_range",
    "validate_snapshot_seq",
    "validate_log_filter",
]

#: expected_version that skips the optimistic check (the sequence stays gap-free regardless).
ANY = -1

#: the most events one read may return; larger reads are paged by the caller.
MAX_READ_LIMIT = 100_000


class StoreError(Exception):
    """A store-level failure: the outcome of the operation is unknown unless stated otherwise."""


class WrongExpectedVersion(StoreError):
    """An append's expected_version was stale (or ahead): nothing was written.

    This is the fence that keeps two activations of one entity from forking its log.
    """

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream!r}: expected version {expected}, actual {actual}")
        self.stream = stream
        self.expected = expected
        self.actual = actual

    def __reduce__(self):  # survive pickling across Ray processes with its fields
        return (WrongExpectedVersion, (self.stream, self.expected, self.actual))


@dataclass(slots=True)  # not frozen: built once per append on the hot path (see NewEvent)
class AppendResult:
    """Where an append landed. ``duplicate`` means the idempotency key had been seen: nothing new
    was written and the positions are those of the first append with that key."""

    stream: str
    first_seq: int
    last_seq: int
    first_position: int
    last_position: int
    timestamp: float
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A state folded up to ``seq``; ``version`` is the version of the kind's snapshot format
    it was written in (a kind that changed its state's shape ignores or upcasts older ones)."""

    stream: str
    seq: int
    state: Any
    timestamp: float
    version: int = 1


#: the pseudo-stream a projection's checkpoint is kept under (never an entity's: kinds have no
#: '$'), as a snapshot whose seq is the global position folded up to.
CHECKPOINT_PREFIX = "$projection/"


def validate_append(stream: str, events: Sequence[NewEvent], expected_version: int) -> None:
    if not isinstance(stream, str) or not stream:
        raise ValueError("stream must be a non-empty string")
    if not events:
        raise ValueError("an append needs at least one event")
    if not isinstance(expected_version, int) or expected_version < ANY:
        raise ValueError(f"expected_version must be an integer >= {ANY}")
    for ev in events:
        if not isinstance(ev, NewEvent) or not isinstance(ev.type, str) or not ev.type:
            raise ValueError("events must be NewEvent instances with a non-empty type")


def validate_range(from_seq: int, to_seq: int | None, limit: int | None) -> None:
    if not isinstance(from_seq, int) or from_seq < 0:
        raise ValueError("from must be an integer >= 0")
    if to_seq is not None and (not isinstance(to_seq, int) or to_seq < 0):
        raise ValueError("to must be an integer >= 0")
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError("limit must be an integer >= 0")


def encode_append(stream: str, events: Sequence[NewEvent], expected_version: int
                  ) -> list[tuple[str, bytes, bytes | None, int]]:
    """Validate an append and encode its events as (type, data, metadata, schema version)
    rows. Done on the caller's side by every backend: a payload that cannot be encoded is
    refused here, before it can take a group commit down with it."""
    validate_append(stream, events, expected_version)
    return [(e.type, encode(e.data), None if e.metadata is None else encode(e.metadata),
             e.schema_version) for e in events]


def validate_log_filter(kinds: Sequence[str] | None, types: Sequence[str] | None,
                        to_position: int | None) -> None:
    for name, values in (("kinds", kinds), ("types", types)):
        if values is not None and (isinstance(values, str) or not all(
                isinstance(v, str) and v for v in values)):
            raise ValueError(f"{name} must be a list of non-empty strings")
    if to_position is not None and (not isinstance(to_position, int) or to_position < 0):
        raise ValueError("to_position must be an integer >= 0")


def validate_snapshot_seq(seq: int) -> None:
    if not isinstance(seq, int) or seq < 1:
        raise ValueError("a snapshot's seq must be an integer >= 1")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A projection's durable progress: the global position it has folded up to, and its
    state there."""

    name: str
    position: int
    state: Any


def events_from_rows(stream: str, rows: Iterable[Sequence[Any]]) -> list[Event]:
    """Rows of (seq, type, data, ts, position, idem, meta, ver), as every backend selects
    them. One call per page, not per row: this is the replay hot loop."""
    return [Event(stream, s, t, loads(d), ts, p, k, None if m is None else loads(m), v)
            for s, t, d, ts, p, k, m, v in rows]


def log_events_from_rows(rows: Iterable[Sequence[Any]]) -> list[Event]:
    """Rows of (stream, seq, type, data, ts, position, idem, meta, ver): the global log."""
    return [Event(st, s, t, loads(d), ts, p, k, None if m is None else loads(m), v)
            for st, s, t, d, ts, p, k, m, v in rows]


class EventStore(abc.ABC):
    """Append-only streams with optimistic concurrency, snapshots and a global ordered log."""

    @abc.abstractmethod
    async def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_version: int,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        """Append all of ``events`` or none. ``expected_version`` is the stream's last sequence
        number as the writer knows it (0 for a new stream, ANY to skip the check). Returns only
        after the events are durable. Raises WrongExpectedVersion on a stale version."""

    @abc.abstractmethod
    async def read(
        self, stream: str, from_seq: int = 1, to_seq: int | None = None, limit: int | None = None
    ) -> list[Event]:
        """Events with from_seq <= seq <= to_seq, in order, at most ``limit`` of them."""

    @abc.abstractmethod
    async def last_version(self, stream: str) -> int:
        """The highest sequence number ever appended (kept after deletion); 0 if none."""

    @abc.abstractmethod
    async def read_all(self, from_position: int = 1, limit: int = 1000, *,
                       to_position: int | None = None, kinds: Sequence[str] | None = None,
                       types: Sequence[str] | None = None) -> list[Event]:
        """The global log: events with from_position <= position <= to_position, in commit
        order, at most ``limit``; only those of streams of ``kinds`` and of event ``types``
        when given (read by an index, so a projection of 1% of the log reads 1% of it).
        Projections keep the last position they applied as their checkpoint: with a filter,
        read up to a ``to_position`` taken from last_position() and then stand there."""

    @abc.abstractmethod
    async def list_streams(self, kind: str, after: str | None = None, limit: int = 1000
                           ) -> list[tuple[str, int]]:
        """Streams of ``kind`` as (stream, last version), ordered by name, those after
        ``after`` (a stream name from the previous page), at most ``limit``."""

    @abc.abstractmethod
    async def last_position(self) -> int: ...

    @abc.abstractmethod
    async def find_idempotent(self, stream: str, key: str) -> AppendResult | None:
        """The result of the append that carried ``key`` on ``stream``, if there was one."""

    @abc.abstractmethod
    async def delete_events(self, stream: str, to_seq: int) -> None:
        """Physically remove events up to to_seq (after a snapshot covers them). The stream's
        last version is kept: sequence numbers are never reused."""

    @abc.abstractmethod
    async def save_snapshot(self, stream: str, seq: int, state: Any, keep: int | None = None,
                            version: int = 1) -> None:
        """Store the state folded up to ``seq`` (replacing one at the same seq), written in
        snapshot format ``version``; with ``keep``, drop all but the newest ``keep``
        snapshots of the stream."""

    @abc.abstractmethod
    async def load_snapshot(self, stream: str, max_seq: int | None = None) -> Snapshot | None:
        """The newest snapshot with seq <= max_seq (any seq when None)."""

    @abc.abstractmethod
    async def delete_snapshots(self, stream: str, max_seq: int | None = None) -> None:
        """Delete the stream's snapshots with seq <= max_seq (all when None)."""

    async def iter_stream(self, stream: str, to_seq: int | None = None, page: int = 5_000
                          ) -> AsyncIterator[Event]:
        """Every event of ``stream`` up to ``to_seq``, read a page at a time: for readers that
        fold or show a whole stream (a history) without holding it all at once."""
        seq = 0
        while True:
            batch = await self.read(stream, seq + 1, to_seq, page)
            for event in batch:
                yield event
            if len(batch) < page:
                return
            seq = batch[-1].seq

    async def save_checkpoint(self, name: str, position: int, state: Any) -> None:
        """Keep a projection's progress durably (the newest two), so a restarted reader
        resumes at ``position`` instead of the start of the log. Several readers of one
        projection may save: they fold the same log the same way, so any of their
        checkpoints at a position is the same."""
        if position >= 1:
            await self.save_snapshot(CHECKPOINT_PREFIX + name, position, state, keep=2)

    async def load_checkpoint(self, name: str) -> Checkpoint | None:
        snap = await self.load_snapshot(CHECKPOINT_PREFIX + name)
        return None if snap is None else Checkpoint(name, snap.seq, snap.state)

    @abc.abstractmethod
    async def close(self) -> None: ...
