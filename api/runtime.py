"""What a Serve replica holds: settings, the actor client and a read-only view of the store.

Reads (events, state) are replays done right here from the store: no hop to a host, and the
same fold the hosts use. Commands and live tails go to the entity's host through the client.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from runtime.client import Client, connect
from runtime.config import Settings
from runtime.registry import load_modules
from runtime.stores import EventStore, open_store


@dataclass
class Runtime:
    settings: Settings
    client: Client
    store: EventStore

    @classmethod
    def start(cls, settings: Settings) -> "Runtime":
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
