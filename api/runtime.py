"""What a Serve replica holds: settings, the actor client and a read-only view of the store.

Reads (events, state) are replays done right here from the store: no hop to a host, and the
same fold the hosts use. Commands and live tails go to the entity's host through the client.
"""

from __future__ import annotations

from dataclasses import dataclass

import ray
from fastapi import Request

from runtime.client import Client, connect
from runtime.config import Settings
from runtime.placement import head_node, single_node_store
from runtime.registry import load_modules
from runtime.stores import EventStore, open_store


@dataclass
class Runtime:
    settings: Settings
    client: Client
    store: EventStore

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
