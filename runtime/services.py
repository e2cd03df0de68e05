"""What a host lends its entities' command handlers (Context.services): the model port, and
read-only views of other entities (a thread reads its assistant's documents). Reads only: an
entity writes nothing but its own stream."""

from __future__ import annotations

from typing import Any

from llm.port import ModelGate
from llm.router import ModelRouter, parse_models_config
from runtime.config import Settings
from runtime.events import stream_id
from runtime.host import replay
from runtime.registry import get_kind
from runtime.stores.base import EventStore

__all__ = ["Services"]


class Services:
    def __init__(self, store: EventStore, models: ModelRouter) -> None:
        self.store = store
        self.models = models

    @classmethod
    def from_settings(cls, settings: Settings, store: EventStore) -> "Services":
        return cls(store, ModelRouter(parse_models_config(settings.models),
                                      ModelGate(settings.model_calls_per_host())))

    async def read_state(self, kind: str, entity_id: str) -> Any:
        """Another entity's current state, replayed from the store (it may be a few events
        behind that entity's own activation; fine for reads such as documents)."""
        state, _, _ = await replay(self.store, get_kind(kind), stream_id(kind, entity_id), None)
        return state
