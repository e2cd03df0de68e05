"""What a Serve replica holds: settings, the actor client and a read-only view of the store.

Reads (events, state) are replays done right here from the store: no hop to a host, and the
same fold the hosts use. Commands and live tails go to the entity's host through the client.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import ray
from fastapi import Request

from runtime.client import Client, connect
from runtime.config import Settings
from runtime.placement import head_node, single_node_store
from runtime.registry import load_modules
from runtime.stores import EventStore, open_store


#: how long a host or the store may take to answer a health probe
PROBE_SECONDS = 3.0
#: how long a health verdict is reused: /health under load probes at most this often
VERDICT_SECONDS = 1.0


@dataclass
class Runtime:
    settings: Settings
    client: Client
    store: EventStore
    #: why this process can no longer write, once it knows (its own Ray node died)
    lost: str | None = field(default=None, init=False)
    _verdict: tuple[float, list[str]] | None = field(default=None, init=False, repr=False)
    _probing: asyncio.Future | None = field(default=None, init=False, repr=False)

    async def problems(self) -> list[str]:
        """What stops a write now, or []: every host answers (through its own store) and
        this process's store answers, within PROBE_SECONDS. One probe at a time, its verdict
        reused for VERDICT_SECONDS."""
        if self.lost is not None:
            return [self.lost]
        now = time.monotonic()
        if self._verdict is not None and now - self._verdict[0] < VERDICT_SECONDS:
            return self._verdict[1]
        if self._probing is None or self._probing.done():
            self._probing = asyncio.ensure_future(self._probe())
        problems = await asyncio.shield(self._probing)
        self._verdict = (time.monotonic(), problems)
        return problems

    async def _probe(self) -> list[str]:
        async def host(name: str, handle: Any) -> str | None:
            try:
                await asyncio.wait_for(handle.health.remote(), PROBE_SECONDS)
                return None
            except asyncio.TimeoutError:
                return f"host {name} did not answer within {PROBE_SECONDS:g} s"
            except Exception as exc:  # noqa: BLE001 - a dead host is the answer here
                # and a host dead for good is started again (as a call to it would), so
                # the next probe sees whether the service healed
                await self.client.arevive(name, handle)
                return f"host {name} is unavailable ({type(exc).__name__})"

        async def store() -> str | None:
            try:
                await asyncio.wait_for(self.store.last_position(), PROBE_SECONDS)
                return None
            except Exception as exc:  # noqa: BLE001 - a store that does not answer
                return f"the event store does not answer ({type(exc).__name__}: {exc})"

        found = await asyncio.gather(store(), *(host(n, h) for n, h in
                                                sorted(self.client.hosts.items())))
        return [p for p in found if p]

    @classmethod
    def start(cls, settings: Settings) -> "Runtime":
        if single_node_store(settings) and ray.is_initialized():
            here, head = ray.get_runtime_context().get_node_id(), head_node()
            if head is not None and here != head:
                # Replicas read the store directly: a SQLite file on another machine would
                # be a different, empty store. Refuse to serve wrong answers.
                raise RuntimeError(
                    "a SQLite event store serves from the head node only; set "
                    "ACTORLOG_STORE_URL to a PostgreSQL DSN to run replicas on other nodes")
        load_modules(settings.kind_modules)
        return cls(settings, connect(settings), open_store(settings.resolved_store_url))


_current: Runtime | None = None


def install(runtime: Runtime) -> None:
    """Make ``runtime`` the one this process's routes use. A module global rather than
    app.state: Serve runs a deserialized copy of the FastAPI app, not the object we built."""
    global _current
    _current = runtime


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("the actorlog runtime is not started in this process")
    return _current


def get_runtime(request: Request) -> Runtime:
    return current()
