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

__all__ = ["Context", "EntityKind", "Fenced", "Outcome", "Rejected", "Unknown"]

State = Any
Command = Mapping[str, Any]
Decision = NewEvent | Iterable[NewEvent] | None
CommandHandler = Callable[[State, Command, "Context"], Decision | Awaitable[Decision]]
EventHandler = Callable[[State, Any], State]
RecoveryHandler = Callable[[State], Decision]


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
            raise RuntimeError("this context cannot commit (a dry run)")
        return await self._commit(list(events))


class EntityKind:
    """A kind of entity: ``kind.command("add")`` and ``kind.event("added")`` register handlers.

    ``to_snapshot``/``from_snapshot`` convert state to and from JSON-able data; the defaults
    suit states that already are plain dicts and lists.
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
    ) -> None:
        if not name or "/" in name:
            raise ValueError("a kind's name is non-empty and has no '/'")
        self.name = name
        self.initial_state = initial_state
        self.snapshot_every = snapshot_every
        #: seconds a command may run before it is stopped as "deadline" (None: no limit); an
        #: ask's own deadline overrides it, and settings (ACTORLOG_DEADLINES) may set it.
        self.deadline = deadline
        self.keep_snapshots = keep_snapshots
        self.to_snapshot = to_snapshot or (lambda s: s)
        self.from_snapshot = from_snapshot or (lambda d: d)
        self._commands: dict[str, CommandHandler] = {}
        self._async_commands: set[str] = set()
        self._events: dict[str, EventHandler] = {}
        self._recovery: RecoveryHandler | None = None

    def command(self, name: str) -> Callable[[CommandHandler], CommandHandler]:
        def register(fn: CommandHandler) -> CommandHandler:
            self._commands[name] = fn
            if inspect.iscoroutinefunction(fn):
                self._async_commands.add(name)
            return fn

        return register

    def event(self, name: str) -> Callable[[EventHandler], EventHandler]:
        def register(fn: EventHandler) -> EventHandler:
            self._events[name] = fn
            return fn

        return register

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
        handler = self._events.get(event.type)
        if handler is None:  # an event type this code no longer knows: keep state, do not crash
            return state
        return handler(state, event.data)

    def fold(self, state: State, events: Iterable[Event]) -> State:
        handlers = self._events
        for event in events:
            handler = handlers.get(event.type)
            if handler is not None:
                state = handler(state, event.data)
        return state
