"""The model port as a host service: what Settings.services names ("llm.service:model_port")
so that every host lends its command handlers ``ctx.services.models``.

Configured by the ACTORLOG_* options that travel with the settings:
  ACTORLOG_MODELS             which provider answers which model name (llm/router.py)
  ACTORLOG_MODEL_CALLS        concurrent model calls per host (default 16)
  ACTORLOG_MODEL_CALLS_TOTAL  concurrent model calls in all, shared evenly among the hosts
"""

from __future__ import annotations

from typing import Any

from llm.port import ModelGate
from llm.router import ModelRouter, parse_models_config
from runtime.config import Settings
from runtime.stores.base import EventStore

__all__ = ["MODEL_PORT", "calls_per_host", "model_port"]

MODEL_PORT = "llm.service:model_port"


def calls_per_host(settings: Settings) -> int:
    """Each host's share: its own limit, or less when the total divided among the hosts is
    smaller (no coordination between hosts: the total is never exceeded)."""
    per_host = max(1, int(settings.option("ACTORLOG_MODEL_CALLS", "16")))
    total = int(settings.option("ACTORLOG_MODEL_CALLS_TOTAL", "0"))
    if total > 0:
        per_host = min(per_host, max(1, total // max(1, settings.hosts)))
    return per_host


def model_port(settings: Settings, store: EventStore) -> dict[str, Any]:
    return {"models": ModelRouter(parse_models_config(settings.option("ACTORLOG_MODELS")),
                                  ModelGate(calls_per_host(settings)))}
