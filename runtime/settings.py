"""Typed settings read from environment variables, one model per part of the service
(pydantic-settings): the runtime's here, the model port's (llm/settings.py), the service's edge
(api/settings.py) and each family's (its ``settings`` module, named by its Family). They are
the only code that reads the environment; every other module asks its model.

A model's values are the process's environment, overridden by the ``options`` a Settings
carries (the driver's ACTORLOG_* variables, taken to every host and replica, so a host reads
what the driver was started with). ``check`` loads every model when the service starts: a bad
value stops the start with a message naming the variable. ``table`` writes the README's
configuration table from the models themselves.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any, ClassVar, Iterable, Mapping, TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["ConfigError", "NoDecode", "RuntimeSettings", "Section", "carried_options", "check",
           "environment", "names", "set_default", "table"]

S = TypeVar("S", bound="Section")
_variables: dict[type, dict[str, str]] = {}


class ConfigError(ValueError):
    """A setting with a value its model refuses; the message names the variable."""


class Section(BaseSettings):
    """A part's settings: every field has its variable as ``validation_alias``, a default and
    a description (the README's table is made of them); ``json_schema_extra={"shown": ...}``
    writes a computed default in words. An empty variable counts as unset."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=True,
                                      env_ignore_empty=True)
    #: the README table's heading for this part
    title: ClassVar[str] = ""

    @classmethod
    def variables(cls) -> dict[str, str]:
        """variable -> field name."""
        found = _variables.get(cls)
        if found is None:
            found = _variables[cls] = {str(f.validation_alias): name
                                       for name, f in cls.model_fields.items()
                                       if isinstance(f.validation_alias, str)}
        return found

    @classmethod
    def load(cls: type[S], options: Mapping[str, str] | None = None) -> S:
        """The environment's values, overridden by ``options``; ConfigError for a bad one.
        Validated once per options mapping and values of its variables (a few dictionary
        look-ups per call after the first)."""
        mine = cls.variables()
        key = (cls, id(options), *(os.environ.get(v) for v in mine))
        found = _loaded.get(key)
        if found is not None and found[0] is options:
            return found[1]
        given = {k: v for k, v in (options or {}).items() if k in mine and v != ""}
        try:
            section = cls(**given)
        except ValidationError as exc:
            raise ConfigError(_explain(exc)) from None
        if len(_loaded) > 256:  # tests make many Settings; a process makes one
            _loaded.clear()
        _loaded[key] = (options, section)
        return section


_loaded: dict[tuple[Any, ...], tuple[Any, Any]] = {}


def _explain(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(x) for x in error["loc"]) or "settings"
        got = error.get("input")
        shown = f" (got {got!r})" if isinstance(got, (str, int, float)) else ""
        parts.append(f"{where}: {error['msg']}{shown}")
    return "; ".join(parts)


def split_names(value: Any) -> Any:
    """A comma-separated list as a tuple of its non-empty items."""
    if isinstance(value, str):
        return tuple(m.strip() for m in value.split(",") if m.strip())
    return value


class RuntimeSettings(Section):
    title: ClassVar[str] = "Runtime"
    data_dir: str = Field("data", validation_alias="ACTORLOG_DATA_DIR",
                          description="where the SQLite file and the service's own files live",
                          json_schema_extra={"shown": "`./data`"})
    store_url: str = Field("", validation_alias="ACTORLOG_STORE_URL",
                           description="the event store; `postgresql://user:pass@host/db` for "
                                       "the cluster store",
                           json_schema_extra={"shown": "`sqlite://$DATA_DIR/events.db`"})
    namespace: str = Field("actorlog", validation_alias="ACTORLOG_NAMESPACE",
                           description="Ray namespace of the hosts")
    hosts: int = Field(2, ge=1, le=1024, validation_alias="ACTORLOG_HOSTS",
                       description="number of ActorHost Ray actors (spread over nodes with the "
                                   "PostgreSQL store)")
    idle_seconds: float = Field(300.0, gt=0, validation_alias="ACTORLOG_IDLE_SECONDS",
                                description="passivate an entity idle this long")
    max_resident: int = Field(200_000, ge=1, validation_alias="ACTORLOG_MAX_RESIDENT",
                              description="entities in memory per host; the least recently "
                                          "used are passivated above it")
    max_activations: int = Field(64, ge=1, validation_alias="ACTORLOG_MAX_ACTIVATIONS",
                                 description="concurrent activations per host")
    rebalance_seconds: float = Field(10.0, ge=0, validation_alias="ACTORLOG_REBALANCE_SECONDS",
                                     description="placement supervisor period (PostgreSQL "
                                                 "store only); 0 turns it off")
    kind_modules: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias="ACTORLOG_KIND_MODULES",
        description="more modules of entity kinds for every host, comma-separated, beside the "
                    "families' own")
    services: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias="ACTORLOG_SERVICES",
        description="more `module:function` service factories for every host, "
                    "comma-separated")
    deadlines: str = Field("", validation_alias="ACTORLOG_DEADLINES",
                           description='JSON `{"kind": seconds}`: how long a command of that '
                                       "kind may run")

    _names = field_validator("kind_modules", "services", mode="before")(split_names)

    @field_validator("deadlines")
    @classmethod
    def _deadlines(cls, value: str) -> str:
        if value:
            parsed = json.loads(value) if value.lstrip().startswith("{") else None
            if not isinstance(parsed, dict) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                    for v in parsed.values()):
                raise ValueError('is JSON {"kind": seconds > 0, ...}')
        return value


#: the runtime's own variables: the rest of ACTORLOG_* travel in Settings.options
OWN = frozenset(RuntimeSettings.variables())


def carried_options() -> dict[str, str]:
    """The ACTORLOG_* variables of this process that are not the runtime's own: what a
    Settings carries to every host and replica for the other parts' models."""
    return {k: v for k, v in os.environ.items() if k.startswith("ACTORLOG_") and k not in OWN}


def environment(name: str) -> str:
    """One variable a setting names at run time (a model provider's ``api_key_env``), read
    here so that no other module reads the environment; "" when unset."""
    return os.environ.get(name, "")


def set_default(name: str, value: str) -> str:
    """Set a variable for the processes this one starts (Ray's workers), unless it is set;
    returns its value."""
    return os.environ.setdefault(name, value)


def check(sections: Iterable[type[Section]], options: Mapping[str, str] | None = None) -> None:
    """Load every model; one ConfigError naming every bad variable."""
    problems = []
    for section in sections:
        try:
            section.load(options)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("; ".join(problems))


def names(sections: Iterable[type[Section]]) -> list[str]:
    return [v for s in sections for v in s.variables()]


def _default(field: Any) -> str:
    extra = field.json_schema_extra or {}
    if "shown" in extra:
        return str(extra["shown"])
    value = field.default
    if value in ("", None, ()):
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"`{value}`"


def table(sections: Iterable[type[Section]]) -> str:
    """The README's configuration table: one row per variable, under its part's heading."""
    lines = ["| variable | default | |", "|---|---|---|"]
    for section in sections:
        lines.append(f"| **{section.title}** | | |")
        for field in section.model_fields.values():
            lines.append(f"| `{field.validation_alias}` | {_default(field)} | "
                         f"{field.description} |")
    return "\n".join(lines) + "\n"
