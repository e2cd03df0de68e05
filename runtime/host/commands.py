"""Running commands: the idempotency check, the kind's decision in a task of its own (so a
signal or the deadline can stop it), long work committing as it goes, the outcome or refusal;
and ask_stream, a command's progress handed out as it comes."""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

from runtime.entity import Context, Fenced, Outcome, Rejected, Unknown, Unreadable
from runtime.events import Event, NewEvent, stream_id
from runtime.host.cells import Cell, ErrorReply, Stopped, to_the_end
from runtime.stores.base import StoreError, WrongExpectedVersion

#: what a command's end puts after its progress in ask_stream's queue
_ENDED = object()
#: the most events one fork copies (read and appended in one go)
MAX_FORK_EVENTS = 100_000


class Commands:
    """A part of EntityTable (runtime/host/__init__.py), over its cells, store and
    counters."""

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

    async def fork(self, kind_name: str, entity_id: str, source_id: str, version: int
                   ) -> Outcome | ErrorReply:
        """A new entity whose log starts with the first ``version`` events of ``source_id``
        (same kind), as its kind folds them today; the first copy's metadata says
        {"forked_from": {"stream", "version"}}. Work the copied log leaves open is closed by
        the kind's recovery, as a crash's would be (an episode copied mid-run is cut, and
        resume carries it on). Runs in the new entity's mailbox, its one writer; refused
        (exists) when it has events already, and before anything is read when ``version`` is
        out of bounds."""
        if not 1 <= version <= MAX_FORK_EVENTS:
            return ErrorReply("bad_request", f"a fork copies 1 to {MAX_FORK_EVENTS} events")
        try:
            cell = await self._acquire(kind_name, entity_id)
        except Unknown as exc:
            return ErrorReply("unknown_kind", str(exc))
        except (WrongExpectedVersion, StoreError) as exc:
            return ErrorReply("unavailable", f"could not activate {kind_name}/{entity_id}: {exc}")
        try:
            if cell.version:
                return ErrorReply("exists", f"{cell.stream} has events already: a fork needs "
                                            "an id of its own")
            source = stream_id(kind_name, source_id)
            events = await self.store.read(source, 1, version)
            if len(events) != version:
                return ErrorReply("bad_request", f"{source} has {len(events)} events, not "
                                                 f"{version}")
            origin = {"forked_from": {"stream": source, "version": version}}
            copies = [NewEvent(e.type, cell.kind.upcast(e),
                               {**(e.metadata or {}), **origin} if i == 0 else e.metadata)
                      for i, e in enumerate(events)]
            _, stored = await self._append(cell, copies, None)
            closing = cell.kind.close_fork(cell.state)
            if closing:
                _, more = await self._append(cell, closing, None)
                stored += more
            self.counters["forks"] += 1
            return Outcome(cell.stream, cell.version, stored[-1:], False, None)
        except Rejected as exc:
            return ErrorReply(exc.code, exc.message)
        except Unreadable as exc:
            return ErrorReply("unreadable", str(exc))
        except WrongExpectedVersion as exc:
            self._drop(cell)
            return ErrorReply("conflict", str(exc))
        except StoreError as exc:
            return ErrorReply("unavailable", f"event store failure: {exc}")
        finally:
            self._release(cell)

    async def _handle(self, cell: Cell, command: dict[str, Any], key: str | None,
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
                _, events = await to_the_end(
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
                except Stopped as stopped:  # a signal or the deadline, not handled by the kind
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

    async def _decide(self, cell: Cell, command: dict[str, Any], ctx: Context,
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
            raise Stopped(reason) from None
        finally:
            if timer is not None:
                timer.cancel()
            cell.running = cell.running_command = None

    async def _duplicate(self, cell: Cell, prior: Any, with_state: bool) -> Outcome:
        self.counters["duplicates"] += 1
        events = await self.store.read(cell.stream, prior.first_seq, prior.last_seq)
        state = None
        if with_state:
            state = cell.state if not cell.dropped else (await self._replay(
                cell.kind, cell.stream, None))[0]
        return Outcome(cell.stream, max(cell.version, prior.last_seq), events, True, state)

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
