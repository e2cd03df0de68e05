"""Hosting: many entity actors inside one async process.

A Ray actor costs ~0.4 s and ~95 MB on this machine, so an entity is not a Ray actor: it is a
small cell (state, version, mailbox) in an EntityTable, and an ActorHost (one Ray actor) hosts
a table of up to hundreds of thousands of them.

Per entity: one command at a time, in arrival order (a FIFO hand-off mailbox). Activation loads
the newest snapshot and replays the tail; concurrent activations are bounded and deduplicated.
Idle cells are passivated, and above the resident cap the least recently used go first. The log
is the only state of record: a cell can be dropped at any moment and comes back from the store.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any, AsyncIterator

from runtime.entity import Context, EntityKind, Fenced, Outcome, Rejected, Unknown, Unreadable
from runtime.events import Encoded, Event, NewEvent, decode, encode, stream_id
from runtime.metrics import Histogram
from runtime.registry import get_kind
from runtime.slots import Slots
from runtime.stores.base import AppendResult, EventStore, StoreError, WrongExpectedVersion

__all__ = ["EntityTable", "ErrorReply", "SUBSCRIBER_BUFFER", "replay"]

#: live events a subscriber may fall behind by before it is switched back to reading the store.
SUBSCRIBER_BUFFER = 1_000
#: what a command's end puts after its progress in ask_stream's queue
_ENDED = object()


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


class _Stopped(Exception):
    """A command stopped by a signal or its deadline that let the CancelledError through."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def _to_the_end(coro: Any) -> Any:
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


class _Cell:
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
        self.subscribers: list[_Subscriber] | None = None
        self.dropped = False
        self.last_used = time.monotonic()
        self.running: asyncio.Task | None = None  # the command being decided, while it is
        self.running_command: dict[str, Any] | None = None  # ... and what it was asked
        self.stop_reason: str | None = None  # why a signal or a deadline stopped it


class _Subscriber:
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


class EntityTable:
    def __init__(
        self,
        store: EventStore,
        *,
        idle_seconds: float = 300.0,
        max_resident: int = 200_000,
        max_concurrent_activations: int = 64,
        services: Any = None,
    ) -> None:
        self.store = store
        self.idle_seconds = idle_seconds
        self.max_resident = max_resident
        self.services = services
        self._cells: collections.OrderedDict[str, _Cell] = collections.OrderedDict()
        self._activation_slots = Slots(max_concurrent_activations)
        self._background: set[asyncio.Task] = set()
        self.counters = collections.Counter()
        #: per kind: commands handled and events appended (counters), and how long a command
        #: took (mailbox wait included) and an append took (histograms); exported by /metrics.
        self.kind_counters: dict[str, collections.Counter] = collections.defaultdict(
            collections.Counter)
        self.command_seconds: dict[str, Histogram] = collections.defaultdict(Histogram)
        self.append_seconds: dict[str, Histogram] = collections.defaultdict(Histogram)

    # ------------------------------------------------------------------ activation

    def _cell(self, kind_name: str, entity_id: str) -> _Cell:
        """The entity's cell, created unloaded if absent. Synchronous on purpose: a command
        takes its place in the mailbox the moment it arrives, before any await, so arrival
        order is mailbox order even while the entity is still activating."""
        stream = stream_id(kind_name, entity_id)
        cell = self._cells.get(stream)
        if cell is not None:
            self._cells.move_to_end(stream)
            return cell
        cell = _Cell(get_kind(kind_name), entity_id, stream)
        self._cells[stream] = cell
        if len(self._cells) > self.max_resident:
            self._evict_lru(spare=cell)
        return cell

    async def _load(self, cell: _Cell) -> None:
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

    def _evict_lru(self, spare: _Cell) -> None:
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

    def _drop(self, cell: _Cell) -> None:
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

    def metrics(self) -> dict[str, Any]:
        """Per-kind counters and histograms as plain data, plus resident entities by kind."""
        resident: collections.Counter = collections.Counter(
            c.kind.name for c in self._cells.values())
        return {"kinds": {k: dict(v) for k, v in self.kind_counters.items()},
                "command_seconds": {k: h.to_dict() for k, h in self.command_seconds.items()},
                "append_seconds": {k: h.to_dict() for k, h in self.append_seconds.items()},
                "resident": dict(resident), "subscribers": self.subscribers}

    @property
    def subscribers(self) -> int:
        return sum(len(c.subscribers) for c in self._cells.values() if c.subscribers)

    # ------------------------------------------------------------------ mailbox

    async def _acquire(self, kind_name: str, entity_id: str) -> _Cell:
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

    async def _loaded_cell(self, kind_name: str, entity_id: str) -> _Cell:
        cell = self._cell(kind_name, entity_id)
        if not cell.loaded:
            cell = await self._acquire(kind_name, entity_id)
            self._release(cell)
        return cell

    def _release(self, cell: _Cell) -> None:
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

    # ------------------------------------------------------------------ commands

    async def ask(
        self,
        kind_name: str,
        entity_id: str,
        command: dict[str, Any],
        idempotency_key: str | None = None,
        with_state: bool = False,
        progress: "asyncio.Queue[Any] | None" = None,
        deadline: float | None = None,
    ) -> Outcome | ErrorReply:
        started = time.perf_counter()
        try:
            cell = await self._acquire(kind_name, entity_id)
        except Unknown as exc:
            return ErrorReply("unknown_kind", str(exc))
        except (WrongExpectedVersion, StoreError) as exc:  # activation's recovery failed
            return ErrorReply("unavailable", f"could not activate {kind_name}/{entity_id}: {exc}")
        except Unreadable as exc:
            self.counters["unreadable"] += 1
            return ErrorReply("unreadable", str(exc))
        try:
            return await self._handle(cell, command, idempotency_key, with_state, progress,
                                      deadline)
        finally:
            self._release(cell)
            self.kind_counters[kind_name]["commands"] += 1
            self.command_seconds[kind_name].observe(time.perf_counter() - started)

    async def _handle(self, cell: _Cell, command: dict[str, Any], key: str | None,
                      with_state: bool, progress: "asyncio.Queue[Any] | None",
                      deadline: float | None = None) -> Outcome | ErrorReply:
        store, stream = self.store, cell.stream
        self.counters["commands"] += 1
        if key is not None:
            prior = await store.find_idempotent(stream, key)
            if prior is not None:
                return await self._duplicate(cell, prior, with_state)

        def emit(item: Any) -> None:
            if progress is not None:
                progress.put_nowait(item)
            for sub in cell.subscribers or ():
                if sub.progress:
                    sub.push(("progress", item))

        committed: list[Event] = []

        async def commit(new: list[NewEvent]) -> list[Event]:
            try:
                _, events = await _to_the_end(
                    self._append(cell, cell.kind.checked("commit", new), None))
            except WrongExpectedVersion as exc:
                raise Fenced(str(exc), exc.expected, exc.actual) from exc
            ctx.state, ctx.version = cell.state, cell.version
            committed.extend(events)
            return events

        ctx = Context(cell.kind.name, cell.entity_id, cell.version, emit, self.services,
                      cell.state, commit)
        ctx._stop_reason = lambda: cell.stop_reason
        try:
            try:
                try:
                    decided = await self._decide(cell, command, ctx, deadline)
                except _Stopped as stopped:  # a signal or the deadline, not handled by the kind
                    return ErrorReply(stopped.reason, f"{cell.stream}: the command was stopped "
                                                      f"({stopped.reason}); what it had committed "
                                                      "stays in the log")
                if not decided:
                    return Outcome(stream, cell.version, committed, False,
                                   cell.state if with_state else None)
                result, events = await self._append(cell, decided, key)
            except Rejected as exc:  # events committed before the refusal stay committed
                return ErrorReply(exc.code, exc.message)
            except (Fenced, WrongExpectedVersion) as exc:
                # Another activation wrote this stream: ours is stale. Drop it (the next command
                # reloads from the log) and report the conflict; nothing more of ours is written.
                self._drop(cell)
                self.counters["conflicts"] += 1
                return ErrorReply("conflict", str(exc), {"expected": exc.expected,
                                                         "actual": exc.actual})
            except StoreError as exc:
                # The commit failed and was rolled back: nothing is stored. Reload next time.
                self._drop(cell)
                self.counters["store_errors"] += 1
                return ErrorReply("unavailable", f"event store failure: {exc}")
            if result.duplicate:  # the key landed through another activation in the meantime
                self._drop(cell)
                return await self._duplicate(cell, result, with_state)
            return Outcome(stream, cell.version, committed + events, False,
                           cell.state if with_state else None)
        finally:
            # the context and its commit function refer to each other: without this the pair
            # (and every event the command committed) waits for the cycle collector, which a
            # host holding a big batch runs seldom (114,000 such objects after 10,000 episodes)
            ctx._commit = ctx._emit = None

    async def _decide(self, cell: _Cell, command: dict[str, Any], ctx: Context,
                      deadline: float | None) -> list[NewEvent]:
        """The kind decides in a task of its own, so that a signal (cancel) or the deadline can
        stop it at its next await while the mailbox stays held: nothing else runs on the
        entity until the command has committed what closes its work and returned."""
        task = asyncio.ensure_future(cell.kind.decide(cell.state, command, ctx))
        cell.running, cell.running_command, cell.stop_reason = task, command, None
        limit = deadline if deadline is not None else cell.kind.deadline
        timer = (asyncio.get_running_loop().call_later(limit, self._stop, cell, task,
                                                        "deadline")
                 if limit is not None and limit > 0 else None)
        try:
            return await task
        except asyncio.CancelledError:
            reason = cell.stop_reason
            me = asyncio.current_task()
            if reason is None or (me is not None and me.cancelling()):
                raise  # the caller itself was cancelled: not ours to turn into an answer
            self.counters[f"stopped_{reason}"] += 1
            raise _Stopped(reason) from None
        finally:
            if timer is not None:
                timer.cancel()
            cell.running = cell.running_command = None

    def _stop(self, cell: _Cell, task: asyncio.Task, reason: str) -> bool:
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

    async def _append(self, cell: _Cell, decided: list[NewEvent], key: str | None
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

    async def _duplicate(self, cell: _Cell, prior: Any, with_state: bool) -> Outcome:
        self.counters["duplicates"] += 1
        events = await self.store.read(cell.stream, prior.first_seq, prior.last_seq)
        state = None
        if with_state:
            state = cell.state if not cell.dropped else (await self._replay(
                cell.kind, cell.stream, None))[0]
        return Outcome(cell.stream, max(cell.version, prior.last_seq), events, True, state)

    def _snapshot(self, cell: _Cell) -> None:
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

    async def ask_stream(self, kind_name: str, entity_id: str, command: dict[str, Any],
                         idempotency_key: str | None = None, with_state: bool = False,
                         deadline: float | None = None, linger: float = 0.0
                         ) -> AsyncIterator[tuple[str, Any]]:
        """Yield ("progress", item)... then ("outcome", Outcome | ErrorReply).

        With ``linger`` (seconds), progress after the first item is gathered for that long
        and yielded as ("progress_many", [item, ...]) when there is more than one: across
        processes each yield is a Ray object (pickled, announced, fetched, unpickled), and a
        model streaming word by word made one per word. The first item is never held: it
        is what tells the caller the command has started."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        task = asyncio.create_task(self.ask(kind_name, entity_id, command, idempotency_key,
                                            with_state, queue, deadline))
        self._background.add(task)  # held, so a departed consumer cannot let it be collected
        task.add_done_callback(self._background.discard)
        task.add_done_callback(lambda _: queue.put_nowait(_ENDED))
        # A consumer that goes away does not cancel the command: it runs to its end and the
        # log has its outcome.
        first = True
        while True:
            items = [await queue.get()]
            if linger and not first and items[0] is not _ENDED:
                await asyncio.sleep(linger)
            first = False
            while not queue.empty():
                items.append(queue.get_nowait())
            ended = items[-1] is _ENDED  # put by the command's end, after all its progress
            if ended:
                items.pop()
            if len(items) == 1 or (items and not linger):
                for item in items:
                    yield ("progress", item)
            elif items:
                yield ("progress_many", items)
            if ended:
                yield ("outcome", task.result())
                return

    # ------------------------------------------------------------------ reads

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

    async def subscribe(self, kind_name: str, entity_id: str, from_seq: int = 1,
                        progress: bool = False) -> AsyncIterator[tuple[str, Any]]:
        """Every committed event from ``from_seq`` on, then live ones, with no gap and no
        duplicate across the switch: the live buffer is registered before the stored part is
        read, and anything at or below the last delivered sequence number is skipped."""
        cell = await self._loaded_cell(kind_name, entity_id)
        sub = _Subscriber(progress)
        if cell.subscribers is None:
            cell.subscribers = []
        cell.subscribers.append(sub)
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
                    cell = await self._loaded_cell(kind_name, entity_id)
                    if cell.subscribers is None:
                        cell.subscribers = []
                    cell.subscribers.append(sub)
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
