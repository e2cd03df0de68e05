"""ActorHost: the Ray actor that hosts an EntityTable.

Hosts are named, detached Ray actors restarted by Ray when they die (max_restarts=-1); a
restarted host starts empty and its entities come back lazily from the log. Calls are not
retried by Ray (max_task_retries=0: a command's outcome after a crash is unknown, so retrying is
the client's decision, made only for commands that carry an idempotency key).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
from typing import Any, AsyncIterator

import ray

from runtime.config import Settings
from runtime.entity import Outcome
from runtime.events import Event
from runtime.host import EntityTable, ErrorReply
from runtime.registry import get_kind, load_modules
from runtime.services import Services
from runtime.stores import open_store

__all__ = ["ActorHost", "HOST_PREFIX"]

HOST_PREFIX = "actorlog-host-"
#: seconds a stream's progress is gathered into one Ray object (a model's words: one object
#: per word cost the hosts ~11% of their CPU pickling and the HTTP process ~12% unpickling)
STREAM_LINGER = 0.01


def _give_back() -> None:
    """Return freed heap to the system after entities left memory: glibc keeps what Python
    freed (a batch's replayed states, a finished episode's turns) as the process's own
    until trimmed, so a host that ran 10,000 episodes would look as big as at its peak."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0, max_concurrency=100_000)
class ActorHost:
    def __init__(self, settings: dict[str, Any], index: int) -> None:
        self.settings = Settings.from_dict(settings)
        self.index = index
        load_modules(self.settings.kind_modules)
        for kind, seconds in self.settings.kind_deadlines().items():
            get_kind(kind).deadline = seconds
        self.store = open_store(self.settings.resolved_store_url)
        self.table = EntityTable(
            self.store,
            idle_seconds=self.settings.idle_seconds,
            max_resident=self.settings.max_resident,
            max_concurrent_activations=self.settings.max_concurrent_activations,
            services=Services.from_settings(self.settings, self.store),
        )
        self._reaper: asyncio.Task | None = None

    def _ensure_reaper(self) -> None:
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        period = max(0.05, min(5.0, self.settings.idle_seconds / 4))
        seen = -1
        while True:
            await asyncio.sleep(period)
            if self.table.passivate_idle() or self.table.counters["passivations"] != seen:
                seen = self.table.counters["passivations"]
                _give_back()

    async def ask(self, kind: str, entity_id: str, command: dict[str, Any],
                  idempotency_key: str | None = None, with_state: bool = False,
                  deadline: float | None = None, brief: bool = False
                  ) -> Outcome | ErrorReply:
        """``brief``: the outcome carries only the command's last event, not all it committed
        (a long command's many events, pickled back to a caller that wants the state)."""
        self._ensure_reaper()
        outcome = await self.table.ask(kind, entity_id, command, idempotency_key, with_state,
                                       deadline=deadline)
        if brief and isinstance(outcome, Outcome):
            outcome.events = outcome.events[-1:]
        return outcome

    async def fork(self, kind: str, entity_id: str, source_id: str, version: int
                   ) -> Outcome | ErrorReply:
        """``entity_id`` made a fork of ``source_id`` at ``version`` (EntityTable.fork)."""
        self._ensure_reaper()
        return await self.table.fork(kind, entity_id, source_id, version)

    async def cancel(self, kind: str, entity_id: str, reason: str = "cancelled",
                     where: dict[str, Any] | None = None) -> dict[str, Any]:
        """Runs beside the entity's command (max_concurrency): a signal is never queued."""
        return self.table.cancel(kind, entity_id, reason, where)

    async def running(self, kind: str, entity_id: str) -> str | None:
        return self.table.running(kind, entity_id)

    async def ask_many(self, calls: list[tuple[str, str, dict[str, Any], str | None]]
                       ) -> list[Outcome | ErrorReply]:
        """Several commands in one Ray call (bulk drivers): each still goes through its own
        entity's mailbox, in list order per entity."""
        self._ensure_reaper()
        return list(await asyncio.gather(*(self.table.ask(k, i, c, key)
                                           for k, i, c, key in calls)))

    async def ask_stream(self, kind: str, entity_id: str, command: dict[str, Any],
                         idempotency_key: str | None = None, with_state: bool = False,
                         deadline: float | None = None) -> AsyncIterator[tuple[str, Any]]:
        self._ensure_reaper()
        async for item in self.table.ask_stream(kind, entity_id, command, idempotency_key,
                                                with_state, deadline, linger=STREAM_LINGER):
            yield item

    async def state(self, kind: str, entity_id: str, version: int | None = None
                    ) -> tuple[int, Any] | ErrorReply:
        return await self.table.state(kind, entity_id, version)

    async def query(self, kind: str, entity_id: str, name: str, args: Any = None
                    ) -> Any | ErrorReply:
        self._ensure_reaper()
        return await self.table.query(kind, entity_id, name, args)

    async def events(self, kind: str, entity_id: str, from_seq: int = 1,
                     to_seq: int | None = None, limit: int | None = None) -> list[Event]:
        return await self.store.read(f"{kind}/{entity_id}", from_seq, to_seq, limit)

    async def subscribe(self, kind: str, entity_id: str, from_seq: int = 1,
                        progress: bool = False) -> AsyncIterator[tuple[str, Any]]:
        self._ensure_reaper()
        async for item in self.table.subscribe(kind, entity_id, from_seq, progress):
            yield item

    async def passivate_all(self) -> int:
        return self.table.passivate_all()

    async def stats(self) -> dict[str, Any]:
        return {"index": self.index, "pid": os.getpid(),
                "node": ray.get_runtime_context().get_node_id(), "resident": self.table.resident,
                "subscribers": self.table.subscribers, **self.table.counters,
                "services": self.table.services.stats()}

    async def metrics(self) -> dict[str, Any]:
        return {"index": self.index, **self.table.metrics()}

    async def ping(self) -> int:
        return os.getpid()

    async def health(self) -> int:
        """Alive, and its store answers (what a write needs): /health asks every host."""
        await self.store.last_position()
        return os.getpid()

    async def node(self) -> str:
        """The Ray node this host runs on (placement over a cluster is observable)."""
        return ray.get_runtime_context().get_node_id()
