"""Settings, from the environment (ACTORLOG_*) with embedded defaults.

One frozen value object travels to every host and replica, so a process never reads settings
that differ from the ones its peers were started with.
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
    kind_modules: tuple[str, ...] = field(default=("actors",))
    models: str = ""  # the model port's configuration: JSON or a file path (llm/router.py)
    deadlines: str = ""  # JSON {"kind": seconds}: a command's deadline per kind
    model_calls: int = 16  # concurrent model calls per host
    model_calls_total: int = 0  # concurrent model calls in all; 0: model_calls x hosts

    @classmethod
    def from_env(cls, **overrides: Any) -> "Settings":
        data_dir = os.path.abspath(os.environ.get("ACTORLOG_DATA_DIR") or "data")
        modules = tuple(m.strip() for m in
                        os.environ.get("ACTORLOG_KIND_MODULES", "actors").split(",") if m.strip())
        base = cls(
            data_dir=data_dir,
            store_url=os.environ.get("ACTORLOG_STORE_URL", ""),
            namespace=os.environ.get("ACTORLOG_NAMESPACE", "actorlog"),
            hosts=_int("ACTORLOG_HOSTS", 2),
            idle_seconds=_float("ACTORLOG_IDLE_SECONDS", 300.0),
            max_resident=_int("ACTORLOG_MAX_RESIDENT", 200_000),
            max_concurrent_activations=_int("ACTORLOG_MAX_ACTIVATIONS", 64),
            rebalance_seconds=_float("ACTORLOG_REBALANCE_SECONDS", 10.0),
            kind_modules=modules,
            models=os.environ.get("ACTORLOG_MODELS", ""),
            deadlines=os.environ.get("ACTORLOG_DEADLINES", ""),
            model_calls=_int("ACTORLOG_MODEL_CALLS", 16),
            model_calls_total=_int("ACTORLOG_MODEL_CALLS_TOTAL", 0),
        )
        return replace(base, **overrides)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Settings":
        """The inverse of to_dict, as settings travel to hosts and replicas (lists -> tuples)."""
        return cls(**{**values, "kind_modules": tuple(values.get("kind_modules", ("actors",)))})

    @property
    def resolved_store_url(self) -> str:
        if self.store_url:
            return self.store_url
        return "sqlite://" + os.path.join(os.path.abspath(self.data_dir), "events.db")

    def model_calls_per_host(self) -> int:
        """Each host's share: its own limit, or less when the total divided among the hosts
        is smaller (no coordination between hosts: the total is never exceeded)."""
        per_host = max(1, self.model_calls)
        if self.model_calls_total > 0:
            per_host = min(per_host, max(1, self.model_calls_total // max(1, self.hosts)))
        return per_host

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
