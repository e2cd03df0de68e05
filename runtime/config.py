"""Settings, from the environment (ACTORLOG_*) with embedded defaults.

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

__all__ = ["Settings"]


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw in (None, "") else int(raw)


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return default if raw in (None, "") else float(raw)


def _names(var: str) -> tuple[str, ...]:
    return tuple(m.strip() for m in os.environ.get(var, "").split(",") if m.strip())


#: the ACTORLOG_* variables the runtime reads itself (the rest go to ``options``)
_OWN = frozenset({"ACTORLOG_DATA_DIR", "ACTORLOG_STORE_URL", "ACTORLOG_NAMESPACE",
                  "ACTORLOG_HOSTS", "ACTORLOG_IDLE_SECONDS", "ACTORLOG_MAX_RESIDENT",
                  "ACTORLOG_MAX_ACTIVATIONS", "ACTORLOG_REBALANCE_SECONDS",
                  "ACTORLOG_KIND_MODULES", "ACTORLOG_SERVICES", "ACTORLOG_DEADLINES"})


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
        data_dir = os.path.abspath(os.environ.get("ACTORLOG_DATA_DIR") or "data")
        base = cls(
            data_dir=data_dir,
            store_url=os.environ.get("ACTORLOG_STORE_URL", ""),
            namespace=os.environ.get("ACTORLOG_NAMESPACE", "actorlog"),
            hosts=_int("ACTORLOG_HOSTS", 2),
            idle_seconds=_float("ACTORLOG_IDLE_SECONDS", 300.0),
            max_resident=_int("ACTORLOG_MAX_RESIDENT", 200_000),
            max_concurrent_activations=_int("ACTORLOG_MAX_ACTIVATIONS", 64),
            rebalance_seconds=_float("ACTORLOG_REBALANCE_SECONDS", 10.0),
            kind_modules=_names("ACTORLOG_KIND_MODULES"),
            services=_names("ACTORLOG_SERVICES"),
            deadlines=os.environ.get("ACTORLOG_DEADLINES", ""),
            options={k: v for k, v in os.environ.items()
                     if k.startswith("ACTORLOG_") and k not in _OWN},
        )
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

    def option(self, name: str, default: str = "") -> str:
        return self.options.get(name) or default

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
