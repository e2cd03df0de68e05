"""What a host lends its entities' command handlers (Context.services): the services the
application names (Settings.services: "module:function" factories, each returning
{name: service}), and read-only views of other entities (a thread reads its assistant's
documents). Reads only: an entity writes nothing but its own stream. The runtime imports no
service itself; the application says which exist.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from runtime.config import Settings
from runtime.events import stream_id
from runtime.host import replay
from runtime.registry import get_kind
from runtime.stores.base import EventStore

__all__ = ["ENTITIES", "Services", "entities", "load_factory"]

#: the factory of the ``entities`` service (add it to a family's services to use it)
ENTITIES = "runtime.services:entities"

Factory = Callable[[Settings, EventStore], dict[str, Any]]


def load_factory(path: str) -> Factory:
    module, _, name = path.partition(":")
    if not module or not name:
        raise ValueError(f"a service factory is 'module:function', not {path!r}")
    return getattr(importlib.import_module(module), name)


class Services:
    def __init__(self, store: EventStore, **named: Any) -> None:
        self.store = store
        self.named = named

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["named"][name]
        except KeyError:
            raise AttributeError(f"no service {name!r} is configured (Settings.services "
                                 "names the factories)") from None

    @classmethod
    def from_settings(cls, settings: Settings, store: EventStore) -> "Services":
        named: dict[str, Any] = {}
        for path in settings.services:
            named.update(load_factory(path)(settings, store))
        return cls(store, **named)

    def stats(self) -> dict[str, Any]:
        """Each service's own figures, for /v1/runtime (those that keep any)."""
        return {name: svc.stats() for name, svc in self.named.items()
                if callable(getattr(svc, "stats", None))}

    async def read_state(self, kind: str, entity_id: str) -> Any:
        """Another entity's current state, replayed from the store (it may be a few events
        behind that entity's own activation; fine for reads such as documents)."""
        state, _, _ = await replay(self.store, get_kind(kind), stream_id(kind, entity_id), None)
        return state


class _Entities:
    """A client of the other entities, connected on first use (when every host exists). Their
    commands go to their own hosts and mailboxes: an entity still writes only its own stream;
    through this it asks others to write theirs, as an actor sends messages."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None

    def ref(self, kind: str, entity_id: str) -> Any:
        if self._client is None:
            from runtime.client import connect  # the client needs Ray; imported when used

            self._client = connect(self.settings, start_hosts=False)
        return self._client.ref(kind, entity_id)


def entities(settings: Settings, store: EventStore) -> dict[str, Any]:
    """For kinds whose work is to drive other entities (a batch of episodes)."""
    return {"entities": _Entities(settings)}
