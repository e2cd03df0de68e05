"""The model port as a host service: what Settings.services names ("llm.service:model_port")
so that every host lends its command handlers ``ctx.services.models``.

Configured by llm/settings.py's variables, which travel with the settings:
  ACTORLOG_MODELS               which provider answers which model name (llm/router.py)
  ACTORLOG_MODEL_CALLS          concurrent calls per host to a provider that computes its answer
                                here (the built-in model with no delay): a CPU guard (default 16)
  ACTORLOG_MODEL_CALLS_WAITING  concurrent calls per host to a provider that waits on something
                                else (a model server, or the built-in model with a delay): a
                                bound on open requests, not on CPU (default 256)
  ACTORLOG_MODEL_CALLS_TOTAL    concurrent calls to each provider in all, shared evenly among the
                                hosts
A provider's own "max_calls" in ACTORLOG_MODELS overrides the first two for that provider.
"""

from __future__ import annotations

from typing import Any

from llm.router import ModelRouter, parse_models_config
from llm.settings import ModelSettings
from runtime.config import Settings
from runtime.stores.base import EventStore

__all__ = ["MODEL_PORT", "calls_per_host", "model_port"]

MODEL_PORT = "llm.service:model_port"


def _waits(spec: dict[str, Any]) -> bool:
    """Whether a provider's calls mostly wait (on a server, or on the built-in's delay) rather
    than compute in the host."""
    return spec.get("type") != "builtin" or float(spec.get("delay", 0.0)) > 0


def calls_per_host(settings: Settings, spec: dict[str, Any] | None = None) -> int:
    """One provider's limit in each host: its own max_calls, or the default for its sort,
    lowered when the total divided among the hosts is smaller (no coordination between
    hosts: the total is never exceeded)."""
    spec = spec or {"type": "builtin"}
    if spec.get("max_calls") is not None:
        per_host = int(spec["max_calls"])
    elif _waits(spec):
        per_host = ModelSettings.load(settings.options).calls_waiting
    else:
        per_host = ModelSettings.load(settings.options).calls
    per_host = max(1, per_host)
    total = ModelSettings.load(settings.options).calls_total
    if total > 0:
        per_host = min(per_host, max(1, total // max(1, settings.hosts)))
    return per_host


def model_port(settings: Settings, store: EventStore) -> dict[str, Any]:
    return {"models": ModelRouter(parse_models_config(ModelSettings.load(settings.options).models),
                                  lambda spec: calls_per_host(settings, spec))}
