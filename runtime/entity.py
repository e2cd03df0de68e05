"""The actor model: an entity kind is an initial state, command handlers that decide events, and
event handlers that fold them. Nothing else mutates state.

This module knows nothing of Ray or storage, so a kind can be unit-tested as plain functions and
every host, replica or tool that replays a stream folds it with exactly the same code.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Mapping

from runtime.events import Event, NewEvent

__all__ = ["Context", "EntityKind", "Fenced", "Outcome", "Rejected", "Unknown", "Unreadable"]

State = Any
Command = Mapping[str, Any]
Decision = NewEvent | Iterable[NewEvent] | None
CommandHandler = Callable[[State, Command, "Context"], Decision | Awaitable[Decision]]
EventHandler = Callable[[State, Any], State]
RecoveryHandler = Callable[[State], Decision]
Upcaster = Callable[[Any], Any]


class Rejected(Exception):
    """A command handler's refusal: the command was invalid for this state; nothing was stored.

    ``code`` is a short machine-readable reason the API edge maps to its document's error format.
    """

    def __init__(self, message: str, code: str = "rejected") -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __reduce__(self):
        return (Rejected, (self.message, self.code))


class Unknown(LookupError):
    """An entity kind that no module registered."""


class Unreadable(Exception):
    """A stored event (or snapshot) this code cannot fold: a type the kind does not know, or a
    schema version it has no upcaster from. Never skipped: a state folded without it would be
    wrong without anyone knowing. Names the stream, seq and type so an operator can act."""

    def __init__(self, stream: str, seq: int, type_: str, why: str) -> None:
        super().__init__(f"{stream} seq {seq}: event {type_!r} {why}")
        self.stream, self.seq, self.type = stream, seq, type_

    def __reduce__(self):
        return (_unreadable, (self.stream, self.seq, self.type, str(self)))


def _unreadable(stream: str, seq: int, type_: str, message: str) -> Unreadable:
    exc = Unreadable(stream, seq, type_, "")
    exc.args = (message,)
    return exc


class Fenced(Exception):
    """A mid-command commit found the stream moved on: another activation (on another host,
    after a failover or a partition) has written it, so this one is stale and must stop. The
    host turns it into a ``conflict`` reply; nothing more of the command is stored."""

    def __init__(self, message: str, expected: int, actual: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


@dataclass(slots=True)
class Outcome:
    """What a command did: the events it committed (empty when it decided none) and the version
    after it. ``duplicate`` marks a retried command whose idempotency key had been seen: the
    events are those of the first attempt and nothing new was written."""

    stream: str
    version: int
    events: list[Event] = field(default_factory=list)
    duplicate: bool = False
    state: Any = None


class Context:
    """What a command handler may use besides state and command.

    ``emit`` sends ephemeral progress (token deltas) to the asking client and live subscribers,
    never to the log. ``commit`` stores events before the command ends, for long work whose
    steps must survive a crash (a run started, each turn of an episode): it returns once they
    are durable and folded, and ``state``/``version`` then include them. A commit that finds the
    stream written by someone else raises Fenced; let it propagate.
    """

    __slots__ = ("kind", "entity_id", "version", "state", "_emit", "_commit", "services",
                 "_stop_reason")

    def __init__(self, kind: str, entity_id: str, version: int,
                 emit: Callable[[Any], None] | None = None, services: Any = None,
                 state: State = None,
                 commit: Callable[[list[NewEvent]], Awaitable[list[Event]]] | None = None
                 ) -> None:
        self.kind = kind
        self.entity_id = entity_id
        self.version = version
        self.state = state
        self._emit = emit
        self._commit = commit
        self.services = services
        self._stop_reason: Callable[[], str | None] = lambda: None

    @property
    def cancelled(self) -> str | None:
        """Why the command is being stopped ("cancelled" or "deadline"), once a signal or its
        deadline has stopped it: it then sees CancelledError at its next await, and may catch
        it to commit what closes its work (say run_cancelled) and return. None otherwise."""
        return self._stop_reason()

    def emit(self, progress: Any) -> None:
        if self._emit is not None:
            self._emit(progress)

    async def commit(self, *events: NewEvent) -> list[Event]:
        if self._commit is None:
            raise RuntimeError("this context cannot commit (a dry run, or its command has ended)")
        return await self._commit(list(events))


class EntityKind:
    """A kind of entity: ``kind.command("add")`` and ``kind.event("added")`` register handlers.

    ``to_snapshot``/``from_snapshot`` convert state to and from JSON-able data; the defaults
    suit states that already are plain dicts and lists.

    Events evolve: ``kind.event("x", version=2)`` folds version 2 of x's data, and
    ``kind.upcaster("x", 1)`` turns version 1 data into version 2 as it is read (pyeventsourcing's
    upcast methods, Akka's event adapters). The log is never rewritten. ``snapshot_version``
    names the shape of ``to_snapshot``'s output: a snapshot of another version is upcast by
    ``kind.snapshot_upcaster(v)`` or, without one, ignored (the state is folded from the log).
    """

    def __init__(
        self,
        name: str,
        initial_state: Callable[[], State],
        *,
        snapshot_every: int = 100,
        keep_snapshots: int = 2,
        deadline: float | None = None,
        to_snapshot: Callable[[State], Any] | None = None,
        from_snapshot: Callable[[Any], State] | None = None,
        snapshot_version: int = 1,
        idle_seconds: float | None = None,
        at_rest: Callable[[State], bool] | None = None,
    ) -> None:
        if not name or "/" in name:
            raise ValueError("a kind's name is non-empty and has no '/'")
        self.name = name
        self.initial_state = initial_state
        self.snapshot_every = snapshot_every
        #: seconds a command may run before it is stopped as "deadline" (None: no limit); an
        #: ask's own deadline overrides it, and settings (ACTORLOG_DEADLINES) may set it.
        self.deadline = deadline
        #: seconds an entity of this kind may sit idle before it is passivated (None: the
        #: host's ACTORLOG_IDLE_SECONDS); short for kinds whose entities are done once their
        #: work ends (an episode), so thousands of finished ones do not stay in memory.
        self.idle_seconds = idle_seconds
        #: whether a state is done with (a finished episode): such an entity leaves memory as
        #: soon as no command waits on it and nobody tails it, instead of after idle_seconds,
        #: so a host that ran 10,000 of them holds none; a later read or command reloads it.
        self.at_rest = at_rest
        self.keep_snapshots = keep_snapshots
        self.to_snapshot = to_snapshot or (lambda s: s)
        self.from_snapshot = from_snapshot or (lambda d: d)
        self._commands: dict[str, CommandHandler] = {}
        self._async_commands: set[str] = set()
        self._events: dict[str, EventHandler] = {}
        self._versions: dict[str, int] = {}  # event type -> the schema version folded
        self._upcasters: dict[tuple[str, int], Upcaster] = {}  # (type, from version) -> fn
        self.snapshot_version = snapshot_version
        self._snapshot_upcasters: dict[int, Upcaster] = {}
        self._queries: dict[str, Callable[[State, Any], Any]] = {}
        self._recovery: RecoveryHandler | None = None
        self._on_fork: RecoveryHandler | None = None

    def command(self, name: str) -> Callable[[CommandHandler], CommandHandler]:
        def register(fn: CommandHandler) -> CommandHandler:
            self._commands[name] = fn
            if inspect.iscoroutinefunction(fn):
                self._async_commands.add(name)
            return fn

        return register

    def event(self, name: str, version: int = 1) -> Callable[[EventHandler], EventHandler]:
        if not isinstance(version, int) or version < 1:
            raise ValueError("an event's schema version is an integer >= 1")

        def register(fn: EventHandler) -> EventHandler:
            self._events[name] = fn
            self._versions[name] = version
            return fn

        return register

    def upcaster(self, name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register fn(data) -> data turning ``name``'s data at ``from_version`` into
        ``from_version + 1``; a chain of them brings any old event up to date."""
        def register(fn: Upcaster) -> Upcaster:
            self._upcasters[(name, from_version)] = fn
            return fn

        return register

    def snapshot_upcaster(self, from_version: int) -> Callable[[Upcaster], Upcaster]:
        def register(fn: Upcaster) -> Upcaster:
            self._snapshot_upcasters[from_version] = fn
            return fn

        return register

    def event_version(self, name: str) -> int:
        return self._versions.get(name, 1)

    def upcast(self, event: Event) -> Any:
        """``event``'s data in the version this kind folds; Unreadable if it cannot be."""
        if event.type not in self._events:
            raise Unreadable(event.stream, event.seq, event.type,
                             f"is not one kind {self.name!r} knows (it folds "
                             f"{', '.join(sorted(self._events))})")
        data, version, target = event.data, event.schema_version, self._versions[event.type]
        while version < target:
            step = self._upcasters.get((event.type, version))
            if step is None:
                raise Unreadable(event.stream, event.seq, event.type,
                                 f"was written at schema version {version}; kind "
                                 f"{self.name!r} folds version {target} and has no upcaster "
                                 f"from {version}")
            data, version = step(data), version + 1
        if version > target:
            raise Unreadable(event.stream, event.seq, event.type,
                             f"was written at schema version {version}, newer than the "
                             f"{target} this code folds (an older deployment reading a "
                             "newer log)")
        return data

    def state_from_snapshot(self, data: Any, version: int) -> tuple[bool, State]:
        """(True, state) from a stored snapshot of format ``version``, upcast as needed;
        (False, None) when no upcaster leads to the current format (fold from the log)."""
        while version < self.snapshot_version:
            step = self._snapshot_upcasters.get(version)
            if step is None:
                return False, None
            data, version = step(data), version + 1
        if version != self.snapshot_version:
            return False, None
        return True, self.from_snapshot(data)
    def query(self, name: str) -> Callable[[Callable[[State, Any], Any]], Callable]:
        """Register fn(state, args) -> answer: a read answered by the entity's host from its
        committed state in memory (a running batch's progress), so a caller that needs a few
        figures neither replays the log nor receives the whole state. It must not change the
        state and must not await."""
        def register(fn: Callable[[State, Any], Any]) -> Callable[[State, Any], Any]:
            self._queries[name] = fn
            return fn

        return register

    def answer(self, name: str, state: State, args: Any) -> Any:
        fn = self._queries.get(name)
        if fn is None:
            raise Rejected(f"{self.name} has no query {name!r}; it answers "
                           f"{', '.join(sorted(self._queries)) or 'none'}",
                           code="unknown_query")
        return fn(state, args)

    def recovery(self, fn: RecoveryHandler) -> RecoveryHandler:
        """Register what to store when the entity is activated: the events that close work a
        dead or fenced activation left open (a run marked interrupted). It sees the replayed
        state; returning nothing means there is nothing to close."""
        self._recovery = fn
        return fn

    def recover(self, state: State) -> list[NewEvent]:
        if self._recovery is None:
            return []
        return self.checked("recovery", self._recovery(state))

    def forked(self, fn: RecoveryHandler) -> RecoveryHandler:
        """Register what to store on a fork, after the copied events: what closes the work the
        copy left open when that must differ from a crash's recovery (an episode copied
        mid-run waits for whoever forked it to say how it goes on, where a crash's cut is
        resumed by the sweep). Without one, a fork closes its copy as recovery would."""
        self._on_fork = fn
        return fn

    def close_fork(self, state: State) -> list[NewEvent]:
        if self._on_fork is None:
            return self.recover(state)
        return self.checked("fork", self._on_fork(state))

    @property
    def command_types(self) -> list[str]:
        return sorted(self._commands)

    async def decide(self, state: State, command: Command, ctx: Context) -> list[NewEvent]:
        ctype = command.get("type") if isinstance(command, Mapping) else None
        handler = self._commands.get(ctype) if isinstance(ctype, str) else None
        if handler is None:
            raise Rejected(f"{self.name} has no command {ctype!r}; it takes "
                           f"{', '.join(self.command_types)}", code="unknown_command")
        decided = handler(state, command, ctx)
        if ctype in self._async_commands:
            decided = await decided
        return self.checked(ctype, decided)

    def checked(self, source: str, decided: Decision) -> list[NewEvent]:
        """A handler's decision as a list, every event one this kind can fold."""
        if decided is None:
            return []
        events = [decided] if isinstance(decided, NewEvent) else list(decided)
        for ev in events:
            if ev.type not in self._events:
                raise TypeError(f"{self.name}.{source} decided an event {ev.type!r} "
                                "that no event handler folds")
        return events

    def apply(self, state: State, event: Event) -> State:
        return self.fold(state, (event,))

    def fold(self, state: State, events: Iterable[Event]) -> State:
        """Every event folded, each at the version its handler expects; an event this code
        cannot read raises Unreadable (never skipped)."""
        handlers, versions = self._events, self._versions
        for event in events:
            handler = handlers.get(event.type)
            if handler is None or event.schema_version != versions[event.type]:
                data = self.upcast(event)  # raises Unreadable for a type this kind lacks
                state = handler(state, data)
            else:
                state = handler(state, event.data)  # the hot path: nothing to upcast
        return state
