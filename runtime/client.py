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
Client.ask_many, which keeps list order per entity. A host that dies mid-call makes
the outcome unknown: reads are retried while the host restarts; a command is retried only when it
carries an idempotency key (the store then guarantees it is applied once), otherwise
OutcomeUnknown is raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, AsyncIterator, Iterator

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from runtime.config import Settings
from runtime.entity import Outcome
from runtime.events import Event, stream_id
from runtime.host import ErrorReply
from runtime.placement import ensure_hosts, find_hosts, rendezvous

__all__ = ["ActorError", "ActorRef", "Client", "OutcomeUnknown", "connect"]

_HOST_GONE = (ActorDiedError, ActorUnavailableError, RayActorError)


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


@contextlib.contextmanager
def _cancel_on_exit(gen: Any) -> Iterator[None]:
    """A consumer that stops early (break, a closed WebSocket, an exception) must end the
    generator on the host too: Ray keeps a streaming actor task running after its consumer
    is gone, and a live subscription would go on pinning its entity and filling the object
    store. Cancelling an ask_stream ends only the stream: the command itself runs on."""
    finished = False
    try:
        yield
        finished = True
    finally:
        if not finished:
            try:
                ray.cancel(gen)
            except Exception:  # already finished or its host is gone: nothing to end
                pass


def _as_error(reply: ErrorReply) -> ActorError:
    return ActorError(reply.code, reply.message, reply.details)


def _unwrap(reply: Any) -> Any:
    if isinstance(reply, ErrorReply):
        raise _as_error(reply)
    return reply


def connect(settings: Settings | None = None, *, address: str | None = None,
            start_hosts: bool = True, retry_seconds: float = 30.0) -> "Client":
    """Join the Ray cluster (or start a local one) and reach the actor hosts."""
    settings = settings or Settings.from_env()
    if not ray.is_initialized():
        ray.init(address=address, namespace=settings.namespace, log_to_driver=False)
    hosts = ensure_hosts(settings) if start_hosts else find_hosts(settings.namespace)
    if not hosts:
        raise LookupError(f"no actor hosts in namespace {settings.namespace!r}")
    return Client(hosts, retry_seconds=retry_seconds)


class Client:
    def __init__(self, hosts: dict[str, Any], retry_seconds: float = 30.0) -> None:
        self.hosts = dict(hosts)
        self._names = sorted(self.hosts)
        self.retry_seconds = retry_seconds

    def ref(self, kind: str, entity_id: str) -> "ActorRef":
        return ActorRef(self, kind, entity_id)

    def host_name_for(self, kind: str, entity_id: str) -> str:
        return rendezvous(stream_id(kind, entity_id), self._names)

    def host_for(self, kind: str, entity_id: str) -> Any:
        return self.hosts[self.host_name_for(kind, entity_id)]

    def _submit_many(self, calls: list[tuple["ActorRef", dict[str, Any], str | None]]
                     ) -> tuple[list[list[int]], list[Any]]:
        """One ask_many Ray call per host; returns the call indices each host got, and the
        pending replies in the same order."""
        by_host: dict[str, list[int]] = {}
        for i, (ref, _, _) in enumerate(calls):
            by_host.setdefault(self.host_name_for(ref.kind, ref.id), []).append(i)
        pending = [self.hosts[name].ask_many.remote(
            [(calls[i][0].kind, calls[i][0].id, calls[i][1], calls[i][2]) for i in idx])
            for name, idx in by_host.items()]
        return list(by_host.values()), pending

    @staticmethod
    def _collect(n: int, indices: list[list[int]], replies: list[list[Any]]
                 ) -> list[Outcome | ActorError]:
        out: list[Any] = [None] * n
        for idx, batch in zip(indices, replies):
            for i, reply in zip(idx, batch):
                out[i] = _as_error(reply) if isinstance(reply, ErrorReply) else reply
        return out

    def ask_many(self, calls: list[tuple["ActorRef", dict[str, Any], str | None]]
                 ) -> list[Outcome | ActorError]:
        """Many commands in one Ray call per host. Unlike separate asks (which Ray may start in
        any order on an async host), commands to one entity run in list order. Refusals come
        back as ActorError values in place, not raised."""
        indices, pending = self._submit_many(calls)
        return self._collect(len(calls), indices, ray.get(pending))

    async def aask_many(self, calls: list[tuple["ActorRef", dict[str, Any], str | None]]
                        ) -> list[Outcome | ActorError]:
        indices, pending = self._submit_many(calls)
        return self._collect(len(calls), indices, await asyncio.gather(*pending))

    def stats(self) -> list[dict[str, Any]]:
        return ray.get([h.stats.remote() for h in self.hosts.values()])

    def passivate_all(self) -> int:
        return sum(ray.get([h.passivate_all.remote() for h in self.hosts.values()]))


class ActorRef:
    """A location-transparent reference to one entity."""

    __slots__ = ("client", "kind", "id")

    def __init__(self, client: Client, kind: str, entity_id: str) -> None:
        self.client = client
        self.kind = kind
        self.id = entity_id

    def __repr__(self) -> str:
        return f"ActorRef({self.kind!r}, {self.id!r})"

    @property
    def _host(self) -> Any:
        return self.client.host_for(self.kind, self.id)

    # --------------------------------------------------------------- sync

    def _call(self, retry: bool, method: str, *args: Any) -> Any:
        deadline = time.monotonic() + self.client.retry_seconds
        delay = 0.05
        while True:
            try:
                return ray.get(getattr(self._host, method).remote(*args))
            except _HOST_GONE as exc:
                if not retry:
                    raise OutcomeUnknown(f"host died during {method} on {self!r}") from exc
                if time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def ask(self, command: dict[str, Any], idempotency_key: str | None = None,
            with_state: bool = False) -> Outcome:
        return _unwrap(self._call(idempotency_key is not None, "ask", self.kind, self.id,
                                  command, idempotency_key, with_state))

    def ask_stream(self, command: dict[str, Any], idempotency_key: str | None = None
                   ) -> Iterator[tuple[str, Any]]:
        """("progress", item)... then ("outcome", Outcome); a refusal raises ActorError."""
        gen = self._host.ask_stream.remote(self.kind, self.id, command, idempotency_key)
        with _cancel_on_exit(gen):
            for ref in gen:
                what, item = ray.get(ref)
                yield what, (_unwrap(item) if what == "outcome" else item)

    def events(self, from_seq: int = 1, to_seq: int | None = None,
               limit: int | None = None) -> list[Event]:
        return self._call(True, "events", self.kind, self.id, from_seq, to_seq, limit)

    def state(self, at_version: int | None = None) -> tuple[int, Any]:
        return _unwrap(self._call(True, "state", self.kind, self.id, at_version))

    def subscribe(self, from_seq: int = 1, progress: bool = False
                  ) -> Iterator[tuple[str, Any]]:
        gen = self._host.subscribe.remote(self.kind, self.id, from_seq, progress)
        with _cancel_on_exit(gen):
            for ref in gen:
                yield ray.get(ref)

    # --------------------------------------------------------------- async

    async def _acall(self, retry: bool, method: str, *args: Any) -> Any:
        deadline = time.monotonic() + self.client.retry_seconds
        delay = 0.05
        while True:
            try:
                return await getattr(self._host, method).remote(*args)
            except _HOST_GONE as exc:
                if not retry:
                    raise OutcomeUnknown(f"host died during {method} on {self!r}") from exc
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def aask(self, command: dict[str, Any], idempotency_key: str | None = None,
                   with_state: bool = False) -> Outcome:
        return _unwrap(await self._acall(idempotency_key is not None, "ask", self.kind, self.id,
                                         command, idempotency_key, with_state))

    async def aask_stream(self, command: dict[str, Any], idempotency_key: str | None = None
                          ) -> AsyncIterator[tuple[str, Any]]:
        gen = self._host.ask_stream.remote(self.kind, self.id, command, idempotency_key)
        with _cancel_on_exit(gen):
            async for ref in gen:
                what, item = await ref
                yield what, (_unwrap(item) if what == "outcome" else item)

    async def aevents(self, from_seq: int = 1, to_seq: int | None = None,
                      limit: int | None = None) -> list[Event]:
        return await self._acall(True, "events", self.kind, self.id, from_seq, to_seq, limit)

    async def astate(self, at_version: int | None = None) -> tuple[int, Any]:
        return _unwrap(await self._acall(True, "state", self.kind, self.id, at_version))

    async def asubscribe(self, from_seq: int = 1, progress: bool = False
                         ) -> AsyncIterator[tuple[str, Any]]:
        gen = self._host.subscribe.remote(self.kind, self.id, from_seq, progress)
        with _cancel_on_exit(gen):
            async for ref in gen:
                yield await ref
