"""Which provider answers which model name, from configuration.

ACTORLOG_MODELS (JSON, or a path to a JSON file) looks like:

    {"providers": {"gpt": {"type": "openai", "base_url": "https://api.openai.com/v1",
                           "api_key_env": "OPENAI_API_KEY", "model": "gpt-4o-mini"}},
     "aliases": {"GPT 4o": "gpt", "GPT 3.5 Turbo": "gpt"},
     "default": "builtin"}

A provider may say "max_calls": how many of its calls run at once in each host (by default
ACTORLOG_MODEL_CALLS_WAITING for a server, ACTORLOG_MODEL_CALLS for the built-in; llm/service.py).

A name is what an API family calls its model (OpenGPTs' agent_type / llm_type, say). Names
without an alias go to ``default``. "builtin" always exists and is the default, so the service
answers offline with no configuration at all.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from llm.builtin import BuiltinProvider
from llm.openai_compat import OpenAICompatProvider
from llm.port import Model, ModelGate

__all__ = ["ModelRouter", "parse_models_config"]


def parse_models_config(raw: str) -> dict[str, Any]:
    """The configuration from ACTORLOG_MODELS' value: inline JSON or a file's path."""
    raw = (raw or "").strip()
    if not raw:
        return {}
    if not raw.startswith("{"):
        with open(raw, encoding="utf-8") as f:
            raw = f.read()
    config = json.loads(raw)
    if not isinstance(config, dict):
        raise ValueError("ACTORLOG_MODELS must be a JSON object")
    return config


class ModelRouter:
    """Names to models. With ``limit`` (a provider's spec -> its concurrent calls), each
    provider has a gate of its own: a slow model server's queue never holds up the built-in
    model, and a latency-bound endpoint is not held to a CPU guard's limit."""

    def __init__(self, config: dict[str, Any] | None = None,
                 limit: Callable[[dict[str, Any]], int] | None = None) -> None:
        config = config or {}
        self.aliases: dict[str, str] = dict(config.get("aliases", {}))
        self.default: str = config.get("default", "builtin")
        self._models: dict[str, Model] = {}
        self.gates: dict[str, ModelGate] = {}
        specs = {"builtin": {"type": "builtin"}, **config.get("providers", {})}
        for name, spec in specs.items():
            if limit is not None:
                self.gates[name] = ModelGate(limit(spec))
            self._models[name] = Model(self._provider(name, spec), self.gates.get(name),
                                       attempts=int(spec.get("max_retries", 2)) + 1)
        for alias, target in {**self.aliases, "": self.default}.items():
            if target not in self._models:
                raise ValueError(f"model alias {alias or 'default'!r} names provider "
                                 f"{target!r}, which is not configured")

    def stats(self) -> dict[str, dict[str, int]]:
        """Each provider's gate (limit, running, waiting), for /v1/runtime."""
        return {name: gate.stats() for name, gate in self.gates.items()}

    @staticmethod
    def _provider(name: str, spec: dict[str, Any]) -> Any:
        kind = spec.get("type")
        if kind == "builtin":
            return BuiltinProvider(name, delay=spec.get("delay", 0.0))
        if kind == "openai":
            if not spec.get("model"):
                raise ValueError(f"provider {name!r} needs a model name")
            return OpenAICompatProvider(name, spec["model"], spec.get("base_url"),
                                        spec.get("api_key"),
                                        spec.get("api_key_env", "OPENAI_API_KEY"),
                                        float(spec.get("timeout", 120.0)))
        raise ValueError(f"provider {name!r} has unknown type {kind!r} "
                         "(known: builtin, openai)")

    def names(self) -> list[str]:
        """Every name with a provider of its own: the providers and the aliases."""
        return sorted(set(self._models) | set(self.aliases))

    def model(self, name: str | None) -> Model:
        """The model serving ``name``: its alias, a provider of that name, or the default."""
        if name in self.aliases:
            return self._models[self.aliases[name]]
        if name in self._models:
            return self._models[name]
        return self._models[self.default]

    @classmethod
    def from_env(cls) -> "ModelRouter":
        from llm.settings import ModelSettings

        return cls(parse_models_config(ModelSettings.load().models))
