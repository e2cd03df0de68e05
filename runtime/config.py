"""Settings, from the environment (ACTORLOG_*, read and checked by runtime/settings.py) with
embedded defaults.

One frozen value object travels to every host and replica, so a process never reads settings
that differ from the ones its peers were started with. The runtime's own fields are typed here;
what the application adds (entity kind modules, service factories) it names, and everything
else set as ACTORLOG_* travels in ``options`` for the services that read it (the model port's
ACTORLOG_MODELS, say): the runtime names no service of its own.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from runtime.settings import RuntimeSettings, carried_options

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings:
    data_dir: str = "data"
    store_url: str = ""  # empty: sqlite file inside data_dir
    namespace: str = "actorlog"
    hosts: int = 2
    idle_seconds: float = 300.0
    max_resident: int = 200_000
    max_concurrent_activations: int = 64
    rebalance_seconds: float = 10.0  # placement supervisor period; 0 turns it off
    #: modules that register entity kinds, imported by every host and replica
    kind_modules: tuple[str, ...] = ()
    #: "module:function" factories of what hosts lend command handlers (ctx.services): each
    #: is called as factory(settings, store) and returns {name: service}
    services: tuple[str, ...] = ()
    deadlines: str = ""  # JSON {"kind": seconds}: a command's deadline per kind
    #: every other ACTORLOG_* setting, for the services that read them
    options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, **overrides: Any) -> "Settings":
        """The runtime's settings (runtime/settings.py, checked: ConfigError names a bad
        variable), and every other ACTORLOG_* variable in ``options``."""
        env = RuntimeSettings.load()
        base = cls(
            data_dir=os.path.abspath(env.data_dir or "data"),
            store_url=env.store_url, namespace=env.namespace, hosts=env.hosts,
            idle_seconds=env.idle_seconds, max_resident=env.max_resident,
            max_concurrent_activations=env.max_activations,
            rebalance_seconds=env.rebalance_seconds, kind_modules=env.kind_modules,
            services=env.services, deadlines=env.deadlines, options=carried_options())
        return replace(base, **overrides)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Settings":
        """The inverse of to_dict, as settings travel to hosts and replicas (lists -> tuples)."""
        return cls(**{**values, "kind_modules": tuple(values.get("kind_modules", ())),
                      "services": tuple(values.get("services", ())),
                      "options": dict(values.get("options") or {})})

    def with_parts(self, kind_modules: tuple[str, ...], services: tuple[str, ...]
                   ) -> "Settings":
        """These settings with the application's kind modules and services added (in order,
        once each): what the composed families need every host to load."""
        def merged(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(dict.fromkeys((*a, *b)))
        return replace(self, kind_modules=merged(self.kind_modules, kind_modules),
                       services=merged(self.services, services))

    @property
    def resolved_store_url(self) -> str:
        if self.store_url:
            return self.store_url
        return "sqlite://" + os.path.join(os.path.abspath(self.data_dir), "events.db")

    def kind_deadlines(self) -> dict[str, float]:
        """ACTORLOG_DEADLINES parsed: {"thread": 600} stops a thread's command after 600 s."""
        if not self.deadlines:
            return {}
        parsed = json.loads(self.deadlines)
        if not isinstance(parsed, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                for v in parsed.values()):
            raise ValueError('ACTORLOG_DEADLINES is JSON {"kind": seconds > 0, ...}')
        return {str(k): float(v) for k, v in parsed.items()}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
