"""The model port's settings (runtime/settings.py): which provider answers which model name,
and how many calls each may have open. Read in every host from the options the driver's
settings carry."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from runtime.settings import Section, environment

__all__ = ["ModelSettings", "api_key"]


class ModelSettings(Section):
    title: ClassVar[str] = "Models"
    models: str = Field("", validation_alias="ACTORLOG_MODELS",
                        description="the model port's providers and name mapping, JSON or the "
                                    'path of a JSON file (see "The model port")',
                        json_schema_extra={"shown": "unset (all names → `builtin`)"})
    calls: int = Field(16, ge=1, validation_alias="ACTORLOG_MODEL_CALLS",
                       description="concurrent calls per host to the built-in model with no "
                                   "delay (a CPU guard); more wait their turn (shown in "
                                   "`/v1/runtime`)")
    calls_waiting: int = Field(256, ge=1, validation_alias="ACTORLOG_MODEL_CALLS_WAITING",
                               description="concurrent calls per host to a provider that waits "
                                           "(a model server, the built-in with a delay)")
    calls_total: int = Field(0, ge=0, validation_alias="ACTORLOG_MODEL_CALLS_TOTAL",
                             description="concurrent calls to each provider in all, shared "
                                         "evenly among the hosts; 0: no cap",
                             json_schema_extra={"shown": "unset"})


def api_key(variable: str) -> str:
    """A provider's key, from the variable its ``api_key_env`` names (OPENAI_API_KEY...)."""
    return environment(variable)
