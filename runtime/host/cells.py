"""What a host keeps per entity and shares among the table's parts: the cell (state, version,
mailbox, subscribers, the running command), a live tail's bounded buffer, the one replay every
reader uses, and the refusal returned across Ray."""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

from runtime.entity import EntityKind, Unreadable
from runtime.stores.base import EventStore

__all__ = ["Cell", "ErrorReply", "SUBSCRIBER_BUFFER", "Stopped", "Subscriber", "replay",
           "to_the_end"]

#: live events a subscriber may fall behind by before it is switched back to reading the store.
SUBSCRIBER_BUFFER = 1_000


async def replay(store: EventStore, kind: EntityKind, stream: str, at_version: int | None
                 ) -> tuple[Any, int, int]:
    """Snapshot + tail: (state, version, snapshot version) at ``at_version`` (newest if None).
    The one fold every reader uses, host or Serve replica, so reads never disagree."""
    snap = await store.load_snapshot(stream, at_version)
    usable, state = (kind.state_from_snapshot(snap.state, snap.version) if snap is not None
                     else (False, None))
    if usable:
        base = snap.seq
    else:  # none, or of a format this code cannot read: fold from the log's start
        state, base = kind.initial_state(), 0
    if at_version is not None and at_version <= base:
        return state, base, base
    tail = await store.read(stream, base + 1, at_version)
    if base == 0 and tail and tail[0].seq != 1:
        raise Unreadable(stream, tail[0].seq, tail[0].type,
                         f"is the oldest event left; the events before it were deleted under "
                         f"a snapshot of format {snap.version if snap else '?'} that kind "
                         f"{kind.name!r} cannot read (format {kind.snapshot_version})")
    state = kind.fold(state, tail)
    version = tail[-1].seq if tail else base
    return state, version, base


class Stopped(Exception):
    """A command stopped by a signal or its deadline that let the CancelledError through."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def to_the_end(coro: Any) -> Any:
    """Await ``coro`` to its end even if the awaiting command is cancelled meanwhile, then let
    the cancellation through: an append that reached the store must be folded into the cell
    before the command stops, or the cell would be a version behind its own log."""
    task = asyncio.ensure_future(coro)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                continue
            except BaseException:
                break
        raise


class ErrorReply:
    """A refusal returned as a value across Ray (cheaper and more faithful than a remote
    exception): ``code`` is one of rejected/unknown_command/unknown_kind/conflict/bad_request."""

    __slots__ = ("code", "message", "details")

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        self.code = code
        self.message = message
        self.details = details or {}

    def __reduce__(self):
        return (ErrorReply, (self.code, self.message, self.details))

    def __repr__(self) -> str:
        return f"ErrorReply({self.code!r}, {self.message!r})"


class Cell:
    __slots__ = ("kind", "entity_id", "stream", "state", "version", "snap_version", "loaded",
                 "busy", "waiters", "subscribers", "dropped", "last_used", "running",
                 "running_command", "stop_reason")

    def __init__(self, kind: EntityKind, entity_id: str, stream: str) -> None:
        self.kind = kind
        self.entity_id = entity_id
        self.stream = stream
        self.state: Any = None
        self.version = 0
        self.snap_version = 0
        self.loaded = False
        self.busy = False
        self.waiters: collections.deque[asyncio.Future] | None = None
        self.subscribers: list[Subscriber] | None = None
        self.dropped = False
        self.last_used = time.monotonic()
        self.running: asyncio.Task | None = None  # the command being decided, while it is
        self.running_command: dict[str, Any] | None = None  # ... and what it was asked
        self.stop_reason: str | None = None  # why a signal or a deadline stopped it


class Subscriber:
    """A live tail's buffer. When it overflows the subscriber falls back to the store, so a slow
    reader costs memory bounded by SUBSCRIBER_BUFFER and never loses an event."""

    __slots__ = ("items", "wake", "overflowed", "progress")

    def __init__(self, progress: bool) -> None:
        self.items: collections.deque[tuple[str, Any]] = collections.deque()
        self.wake = asyncio.Event()
        self.overflowed = False
        self.progress = progress

    def push(self, item: tuple[str, Any]) -> None:
        if self.overflowed:
            return
        if len(self.items) >= SUBSCRIBER_BUFFER:
            self.overflowed = True
            self.items.clear()
        else:
            self.items.append(item)
        self.wake.set()
