"""Python access to entity actors from any Ray driver (or a Serve replica).

    client = connect()                       # joins or starts Ray, finds or starts the hosts
    ref = client.ref("counter", "c1")
    ref.ask({"type": "add", "amount": 2})    # -> Outcome(version=1, events=[...])
    ref.state()                              # -> (1, {"total": 2})
    ref.state(at_version=0)                  # time travel: a replay up to that version
    for event in ref.subscribe(from_seq=1):  # stored events, then live ones
        ...

Every call has an ``a``-prefixed coroutine twin for async code. Ordering: one entity runs one
command at a time, in the order commands reach its host. Ray starts an async actor's calls in
no guaranteed order, so a driver that fires several asks without awaiting each should use
Client.ask_many, which keeps list order per entity.

When a host dies (its process, or its whole node), the client asks placement to revive it
(Ray restarts it in place, or it is created again on a live node) and then:
- reads are retried, and subscriptions resume from the next sequence number, with no gap;
- a command that carries an idempotency key is retried (the store applies it once);
- any other command in flight raises OutcomeUnknown: it may or may not have been committed,
  and the log says which. A long command (ask_stream, a job) interrupted this way is closed
  in the log by its kind's recovery when the entity next activates.
If the host cannot be reached again within ``retry_seconds``, Unavailable is raised. No call
waits on a dead host forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any, AsyncIterator, Iterator

import ray

from runtime.config import Settings
from runtime.entity import Outcome
from runtime.events import Event, stream_id
from runtime.host import ErrorReply
from runtime.placement import HOST_GONE as _HOST_GONE
from runtime.placement import ensure_hosts, find_hosts, rendezvous, revive
from runtime.supervisor import ensure_supervisor

__all__ = ["ActorError", "ActorRef", "Client", "OutcomeUnknown", "Unavailable", "connect"]


class ActorError(Exception):
    """A command or read refused by the entity or its host. ``code``: rejected, unknown_command,
    unknown_kind, conflict, bad_request, or a kind's own code."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


class OutcomeUnknown(Exception):
    """The host died while running a command without an idempotency key: it may or may not
    have been committed. Read the log to find out."""


class Unavailable(Exception):
    """The entity's host could not be reached again within the client's retry window."""


class _Attempts:
    """One call's budget for host failures: a retry window that starts at the first failure,
    and an exponential backoff."""

    __slots__ = ("client", "what", "deadline", "delay")

    def __init__(self, client: "Client", what: str) -> None:
        self.client = client
        self.what = what
        self.deadline: float | None = None
        self.delay = 0.05

    def after_failure(self, exc: BaseException, retry: bool) -> float:
        """The delay before the next attempt, or the documented error to raise instead."""
        if not retry:
            raise OutcomeUnknown(f"host died during {self.what}") from exc
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + self.client.retry_seconds
        elif now > self.deadline:
            raise Unavailable(f"{self.what}: host not reachable for "
                              f"{self.client.retry_seconds:g} s") from exc
        delay, self.delay = self.delay, min(self.delay * 2, 1.0)
        return delay


#: events a subscription's host may send ahead of its consumer. Past it the host's generator
#: waits, its buffer overflows and it falls back to reading the store: a consumer that does not
#: read costs bounded memory on both sides.
SUBSCRIBE_WINDOW = 64


@contextlib.contextmanager
def _cancel_on_exit(gen: Any) -> Iterator[None]:
    """A consumer that stops early (break, a closed WebSocket, an exception) must end the
    generator on the host too: Ray keeps a streaming actor task running after its consumer
    is gone, and a live subscription would go on pinning its entity and filling the object
    store. Cancelling an ask_stream ends only the stream: the command itself runs on, and so
    do the calls it makes to other entities (not recursive: Ray would otherwise cancel every
    task submitted under the stream's, such as a batch's commands to its episodes)."""
    finished = False
    try:
        yield
        finished = True
    finally:
        if not finished:
            try:
                ray.cancel(gen, recursive=False)
            except Exception:  # already finished or its host is gone: nothing to end
                pass


def _as_error(reply: ErrorReply) -> ActorError:
    return ActorError(reply.code, reply.message, reply.details)


def _unpacked(streamed: tuple[str, Any]) -> list[tuple[str, Any]]:
    """One object of a host's ask_stream as the items it carries: progress gathered into one
    object comes out one item at a time, an outcome unwrapped (a refusal raised)."""
    what, item = streamed
    if what == "progress_many":
        return [("progress", one) for one in item]
    return [(what, _unwrap(item) if what == "outcome" else item)]


def _unwrap(reply: Any) -> Any:
    if isinstance(reply, ErrorReply):
        raise _as_error(reply)
    return reply


def connect(settings: Settings | None = None, *, address: str | None = None,
            start_hosts: bool = True, retry_seconds: float = 60.0) -> "Client":
    """Join the Ray cluster (or start a local one) and reach the actor hosts."""
    settings = settings or Settings.from_env()
    if not ray.is_initialized():
        ray.init(address=address, namespace=settings.namespace, log_to_driver=False)
    hosts = ensure_hosts(settings) if start_hosts else find_hosts(settings.namespace)
    if start_hosts:
        ensure_supervisor(settings)
    if not hosts:
        raise LookupError(f"no actor hosts in namespace {settings.namespace!r}")
    return Client(hosts, settings, retry_seconds=retry_seconds)


class Client:
    def __init__(self, hosts: dict[str, Any], settings: Settings | None = None,
                 retry_seconds: float = 60.0) -> None:
        self.hosts = dict(hosts)
        self.settings = settings or Settings.from_env()
        self._names = sorted(self.hosts)
        self.retry_seconds = retry_seconds

    def ref(self, kind: str, entity_id: str) -> "ActorRef":
        return ActorRef(self, kind, entity_id)

    def host_name_for(self, kind: str, entity_id: str) -> str:
        return rendezvous(stream_id(kind, entity_id), self._names)

    def host_for(self, kind: str, entity_id: str) -> Any:
        return self.hosts[self.host_name_for(kind, entity_id)]

    def revive(self, name: str, dead: Any) -> None:
        """Replace the handle ``dead`` of host ``name`` by a live one (once: callers that saw
        the same dead handle find it replaced). A failure here is retried by the caller."""
        if self.hosts.get(name) is not dead:
            return
        try:
            self.hosts[name] = revive(self.settings, name)
        except Exception:  # no live node yet, GCS busy: the next attempt tries again
            pass

    async def arevive(self, name: str, dead: Any) -> None:
        if self.hosts.get(name) is dead:
            await asyncio.to_thread(self.revive, name, dead)

    def call(self, name: str, retry: bool, what: str, method: str, *args: Any) -> Any:
        """One call to host ``name``, through host failures as the module docstring says."""
        attempts = _Attempts(self, what)
        while True:
            handle = self.hosts[name]
            try:
                return ray.get(getattr(handle, method).remote(*args))
            except _HOST_GONE as exc:
                self.revive(name, handle)
                time.sleep(attempts.after_failure(exc, retry))

    async def acall(self, name: str, retry: bool, what: str, method: str, *args: Any) -> Any:
        attempts = _Attempts(self, what)
        while True:
            handle = self.hosts[name]
            try:
                return await getattr(handle, method).remote(*args)
            except _HOST_GONE as exc:
                await self.arevive(name, handle)
                await asyncio.sleep(attempts.after_failure(exc, retry))

    # ------------------------------------------------------------- bulk commands

    def _groups(self, calls: list[tuple["ActorRef", dict[str, Any], str | None]]
                ) -> dict[str, list[int]]:
        by_host: dict[str, list[int]] = {}
        for i, (ref, _, _) in enumerate(calls):
            by_host.setdefault(self.host_name_for(ref.kind, ref.id), []).append(i)
        return by_host

    def _send(self, name: str, calls: list[tuple["ActorRef", dict[str, Any], str | None]],
              idx: list[int]) -> tuple[Any, Any]:
        handle = self.hosts[name]
        return handle, handle.ask_many.remote(
            [(calls[i][0].kind, calls[i][0].id, calls[i][1], calls[i][2]) for i in idx])

    @staticmethod
    def _fill(out: list[Any], idx: list[int], replies: list[Any] | BaseException) -> None:
        for n, i in enumerate(idx):
            if isinstance(replies, BaseException):
                out[i] = replies
            else:
                out[i] = _as_error(replies[n]) if isinstance(replies[n], ErrorReply) \
                    else replies[n]

    @staticmethod
    def _all_keyed(calls: list[tuple["ActorRef", dict[str, Any], str | None]],
                   idx: list[int]) -> bool:
        return all(calls[i][2] is not None for i in idx)

    def ask_many(self, calls: list[tuple["ActorRef", dict[str, Any], str | None]]
                 ) -> list[Any]:
        """Many commands in one Ray call per host. Unlike separate asks (which Ray may start in
        any order on an async host), commands to one entity run in list order. Refusals come
        back as ActorError values in place, not raised; so do OutcomeUnknown and Unavailable
        for the calls of a host that died (a host's batch is retried when every command in it
        carries an idempotency key)."""
        out: list[Any] = [None] * len(calls)
        groups = self._groups(calls)
        sent = {name: self._send(name, calls, idx) for name, idx in groups.items()}
        for name, idx in groups.items():
            attempts = _Attempts(self, f"ask_many on {name}")
            handle, pending = sent[name]
            while True:
                try:
                    self._fill(out, idx, ray.get(pending))
                    break
                except _HOST_GONE as exc:
                    self.revive(name, handle)
                    try:
                        time.sleep(attempts.after_failure(exc, self._all_keyed(calls, idx)))
                    except (OutcomeUnknown, Unavailable) as err:
                        self._fill(out, idx, err)
                        break
                    handle, pending = self._send(name, calls, idx)
        return out

    async def aask_many(self, calls: list[tuple["ActorRef", dict[str, Any], str | None]]
                        ) -> list[Any]:
        out: list[Any] = [None] * len(calls)

        async def one_host(name: str, idx: list[int]) -> None:
            attempts = _Attempts(self, f"ask_many on {name}")
            while True:
                handle, pending = self._send(name, calls, idx)
                try:
                    self._fill(out, idx, await pending)
                    return
                except _HOST_GONE as exc:
                    await self.arevive(name, handle)
                    try:
                        await asyncio.sleep(attempts.after_failure(
                            exc, self._all_keyed(calls, idx)))
                    except (OutcomeUnknown, Unavailable) as err:
                        self._fill(out, idx, err)
                        return

        await asyncio.gather(*(one_host(n, idx) for n, idx in self._groups(calls).items()))
        return out

    def stats(self) -> list[dict[str, Any]]:
        return [self.call(n, True, f"stats of {n}", "stats") for n in self._names]

    async def astats(self) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(self.acall(n, True, f"stats of {n}", "stats")
                                           for n in self._names)))

    async def ametrics(self) -> list[dict[str, Any]]:
        """Every host's per-kind counters and histograms (runtime/metrics.py)."""
        return list(await asyncio.gather(*(self.acall(n, True, f"metrics of {n}", "metrics")
                                           for n in self._names)))

    def passivate_all(self) -> int:
        return sum(self.call(n, True, f"passivate on {n}", "passivate_all")
                   for n in self._names)


class ActorRef:
    """A location-transparent reference to one entity."""

    __slots__ = ("client", "kind", "id", "_host_name")

    def __init__(self, client: Client, kind: str, entity_id: str) -> None:
        self.client = client
        self.kind = kind
        self.id = entity_id
        self._host_name = client.host_name_for(kind, entity_id)

    def __repr__(self) -> str:
        return f"ActorRef({self.kind!r}, {self.id!r})"

    @property
    def _host(self) -> Any:
        return self.client.hosts[self._host_name]

    def _what(self, method: str) -> str:
        return f"{method} on {self.kind}/{self.id}"

    # --------------------------------------------------------------- sync

    def _call(self, retry: bool, method: str, *args: Any) -> Any:
        return self.client.call(self._host_name, retry, self._what(method), method, *args)

    def ask(self, command: dict[str, Any], idempotency_key: str | None = None,
            with_state: bool = False, deadline: float | None = None, brief: bool = False
            ) -> Outcome:
        """``deadline``: seconds the command may run before it is stopped (the kind's own
        deadline otherwise); a stopped command that does not close its work itself raises
        ActorError(code="deadline"). ``brief``: of the events the command committed, only
        the last comes back (with ``with_state``, what a caller that wants the result needs)."""
        return _unwrap(self._call(idempotency_key is not None, "ask", self.kind, self.id,
                                  command, idempotency_key, with_state, deadline, brief))

    def fork(self, version: int, new_id: str | None = None) -> "ActorRef":
        """A new entity of this kind whose log starts with this one's first ``version``
        events (the first says where it was forked from), then goes on by itself; its ref.
        ``new_id``: its id (a new one by default); an id with events is refused (exists)."""
        new = self.client.ref(self.kind, new_id or uuid.uuid4().hex)
        _unwrap(new._call(False, "fork", self.kind, new.id, self.id, version))
        return new

    def cancel(self, reason: str = "cancelled", where: dict[str, Any] | None = None
               ) -> dict[str, Any]:
        """Stop the command running on the entity, now, not after it: it sees CancelledError
        at its next await and commits what closes its work (a kind's long commands say what,
        e.g. run_cancelled). {"cancelled": False, ...} when nothing runs, or when ``where``
        ({"run_id": ...}) does not match the running command's fields."""
        return self._call(True, "cancel", self.kind, self.id, reason, where)

    def running(self) -> str | None:
        """The type of the command running on the entity now; None when nothing runs (or
        when its host died with work open: the next command's activation closes that)."""
        return self._call(True, "running", self.kind, self.id)

    def ask_stream(self, command: dict[str, Any], idempotency_key: str | None = None,
                   deadline: float | None = None) -> Iterator[tuple[str, Any]]:
        """("progress", item)... then ("outcome", Outcome); a refusal raises ActorError, and a
        host lost mid-stream OutcomeUnknown (the stream is not replayed: read the log)."""
        handle = self._host
        gen = handle.ask_stream.remote(self.kind, self.id, command, idempotency_key, False,
                                       deadline)
        try:
            with _cancel_on_exit(gen):
                for ref in gen:
                    yield from _unpacked(ray.get(ref))
        except _HOST_GONE as exc:
            self.client.revive(self._host_name, handle)
            raise OutcomeUnknown(f"host died during {self._what('ask_stream')}") from exc

    def events(self, from_seq: int = 1, to_seq: int | None = None,
               limit: int | None = None) -> list[Event]:
        return self._call(True, "events", self.kind, self.id, from_seq, to_seq, limit)

    def state(self, at_version: int | None = None) -> tuple[int, Any]:
        return _unwrap(self._call(True, "state", self.kind, self.id, at_version))

    def query(self, name: str, args: Any = None) -> Any:
        """The kind's query ``name`` answered from the entity's committed state where it
        lives (EntityKind.query)."""
        return _unwrap(self._call(True, "query", self.kind, self.id, name, args))

    def subscribe(self, from_seq: int = 1, progress: bool = False
                  ) -> Iterator[tuple[str, Any]]:
        """("event", Event) for every committed event from ``from_seq`` on, stored then live
        (and ("progress", item) if asked). It survives its host: after a failover it resumes
        on the revived host from the next sequence number, with no gap and no duplicate."""
        attempts = _Attempts(self.client, self._what("subscribe"))
        next_seq = from_seq
        while True:
            handle = self._host
            gen = handle.subscribe.options(
                _generator_backpressure_num_objects=SUBSCRIBE_WINDOW).remote(
                    self.kind, self.id, next_seq, progress)
            try:
                with _cancel_on_exit(gen):
                    for ref in gen:
                        item = ray.get(ref)
                        attempts.deadline = None
                        if item[0] == "event":
                            next_seq = item[1].seq + 1
                        yield item
                return
            except _HOST_GONE as exc:
                self.client.revive(self._host_name, handle)
                time.sleep(attempts.after_failure(exc, True))

    # --------------------------------------------------------------- async

    async def _acall(self, retry: bool, method: str, *args: Any) -> Any:
        return await self.client.acall(self._host_name, retry, self._what(method), method,
                                       *args)

    async def aask(self, command: dict[str, Any], idempotency_key: str | None = None,
                   with_state: bool = False, deadline: float | None = None,
                   brief: bool = False) -> Outcome:
        return _unwrap(await self._acall(idempotency_key is not None, "ask", self.kind, self.id,
                                         command, idempotency_key, with_state, deadline,
                                         brief))

    async def afork(self, version: int, new_id: str | None = None) -> "ActorRef":
        new = self.client.ref(self.kind, new_id or uuid.uuid4().hex)
        _unwrap(await new._acall(False, "fork", self.kind, new.id, self.id, version))
        return new

    async def acancel(self, reason: str = "cancelled", where: dict[str, Any] | None = None
                      ) -> dict[str, Any]:
        return await self._acall(True, "cancel", self.kind, self.id, reason, where)

    async def arunning(self) -> str | None:
        return await self._acall(True, "running", self.kind, self.id)

    async def aask_stream(self, command: dict[str, Any], idempotency_key: str | None = None,
                          deadline: float | None = None) -> AsyncIterator[tuple[str, Any]]:
        handle = self._host
        gen = handle.ask_stream.remote(self.kind, self.id, command, idempotency_key, False,
                                       deadline)
        try:
            with _cancel_on_exit(gen):
                async for ref in gen:
                    for what, item in _unpacked(await ref):
                        yield what, item
        except _HOST_GONE as exc:
            await self.client.arevive(self._host_name, handle)
            raise OutcomeUnknown(f"host died during {self._what('ask_stream')}") from exc

    async def aevents(self, from_seq: int = 1, to_seq: int | None = None,
                      limit: int | None = None) -> list[Event]:
        return await self._acall(True, "events", self.kind, self.id, from_seq, to_seq, limit)

    async def astate(self, at_version: int | None = None) -> tuple[int, Any]:
        return _unwrap(await self._acall(True, "state", self.kind, self.id, at_version))

    async def aquery(self, name: str, args: Any = None) -> Any:
        return _unwrap(await self._acall(True, "query", self.kind, self.id, name, args))

    async def asubscribe(self, from_seq: int = 1, progress: bool = False
                         ) -> AsyncIterator[tuple[str, Any]]:
        attempts = _Attempts(self.client, self._what("subscribe"))
        next_seq = from_seq
        while True:
            handle = self._host
            gen = handle.subscribe.options(
                _generator_backpressure_num_objects=SUBSCRIBE_WINDOW).remote(
                    self.kind, self.id, next_seq, progress)
            try:
                with _cancel_on_exit(gen):
                    async for ref in gen:
                        item = await ref
                        attempts.deadline = None
                        if item[0] == "event":
                            next_seq = item[1].seq + 1
                        yield item
                return
            except _HOST_GONE as exc:
                await self.client.arevive(self._host_name, handle)
                await asyncio.sleep(attempts.after_failure(exc, True))
