"""What a Serve replica holds: settings, the actor client and a read-only view of the store.

Reads (events, state) are replays done right here from the store: no hop to a host, and the
same fold the hosts use. Commands and live tails go to the entity's host through the client.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, TypeVar

import ray
from fastapi import Request

from runtime.client import Client, connect
from runtime.config import Settings
from runtime.placement import head_node, single_node_store
from runtime.registry import load_modules
from runtime.settings import Section
from runtime.stores import EventStore, open_store

S = TypeVar("S", bound=Section)


#: how long a host may take to answer a health probe
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
    #: the probe under way, per event loop (a replica serves from two: uvicorn's and Serve's)
    _probing: dict[Any, asyncio.Future] = field(default_factory=dict, init=False, repr=False)

    async def problems(self) -> list[str]:
        """What stops a write now, or []: every host answers within PROBE_SECONDS, through its
        own store (hosts are where writes happen; this process's read view of the store is
        not probed: its connections belong to the loop that serves HTTP, and Serve's health
        check runs in another). One probe at a time per loop, its verdict reused for
        VERDICT_SECONDS."""
        if self.lost is not None:
            return [self.lost]
        if self._verdict is not None and time.monotonic() - self._verdict[0] < VERDICT_SECONDS:
            return self._verdict[1]
        loop = asyncio.get_running_loop()
        probing = self._probing.get(loop)
        if probing is None or probing.done():
            probing = self._probing[loop] = asyncio.ensure_future(self._probe())
        problems = await asyncio.shield(probing)
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

        found = await asyncio.gather(*(host(n, h) for n, h in sorted(self.client.hosts.items())))
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


def section(cls: type[S]) -> S:
    """A part's settings in this process (runtime/settings.py): the environment, overridden by
    the options the runtime's settings carry (tests set them there)."""
    return cls.load(_current.settings.options if _current is not None else None)


async def get_runtime(request: Request) -> Runtime:
    """A coroutine on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, and
    that hand-off (a thread wake-up per request) was ~15% of the HTTP process's CPU."""
    return current()
