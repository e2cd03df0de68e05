"""The Sotopia family's settings (runtime/settings.py)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, field_validator

from runtime.settings import NoDecode, Section, split_names

__all__ = ["SotopiaSettings"]


class SotopiaSettings(Section):
    title: ClassVar[str] = "Sotopia"
    sweep_seconds: float = Field(10.0, ge=0, validation_alias="ACTORLOG_SOTOPIA_SWEEP_SECONDS",
                                 description="how often each serving process resumes Sotopia "
                                             "episodes and batches that no host runs; 0: once, "
                                             "at start")
    ws_tokens: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias="SOTOPIA_WS_TOKENS",
        description="the tokens the simulation WebSocket accepts, comma-separated",
        json_schema_extra={"shown": "unset (any non-empty token)"})

    _names = field_validator("ws_tokens", mode="before")(split_names)
