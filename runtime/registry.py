"""Which entity kinds exist. Kind modules register themselves on import; hosts and replicas
import the modules named in the settings so that every process folds with the same code."""

from __future__ import annotations

import importlib
from typing import Iterable

from runtime.entity import EntityKind, Unknown

__all__ = ["register", "get_kind", "kinds", "load_modules"]

_KINDS: dict[str, EntityKind] = {}


def register(kind: EntityKind) -> EntityKind:
    existing = _KINDS.get(kind.name)
    if existing is not None and existing is not kind:
        raise ValueError(f"two entity kinds are named {kind.name!r}")
    _KINDS[kind.name] = kind
    return kind


def get_kind(name: str) -> EntityKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise Unknown(f"unknown entity kind {name!r}; known kinds: "
                      f"{', '.join(sorted(_KINDS)) or 'none'}") from None


def kinds() -> dict[str, EntityKind]:
    return dict(_KINDS)


def load_modules(modules: Iterable[str]) -> None:
    for module in modules:
        if module:
            importlib.import_module(module)
