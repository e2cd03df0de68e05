"""The OpenGPTs tools' settings (runtime/settings.py): which web tools are on, where each one's
service is, its key, and the embedding model retrieval may use. Beside the tools, not in the
family's API package, because the hosts that run the agents read them.

``ACTORLOG_TOOLS`` is JSON, or the path of a JSON file, keyed by the tool's type as OpenGPTs
names it (``{"wikipedia": {"base_url": "http://127.0.0.1:9000"}, "arxiv": {"enabled":
false}}``). A key left out comes from the variable OpenGPTs reads (TAVILY_API_KEY...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from runtime.settings import NoDecode, Section

__all__ = ["EmbeddingConfig", "ToolConfig", "ToolSettings"]


class ToolConfig(BaseModel):
    """One tool's settings; every field may be left out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool | None = Field(None, description="false turns the tool off; by default it "
                                                   "is on when what it needs is there")
    base_url: str | None = Field(None, min_length=1, description="its service's address "
                                                                 "(a stand-in, a proxy)")
    api_key: str | None = Field(None, min_length=1, description="its key; by default the "
                                                                "variable OpenGPTs reads")
    timeout: float = Field(15.0, gt=0, le=300, description="seconds one call may take")
    max_results: int = Field(3, ge=1, le=20, description="results a search gives")
    model: str | None = Field(None, min_length=1, description="Dall-E: the image model")


class EmbeddingConfig(BaseModel):
    """An OpenAI-compatible embeddings endpoint; retrieval then ranks by BM25 and by vectors
    together (hybrid). Without one, BM25 alone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = Field(None, min_length=1, description="e.g. a local server's /v1")
    model: str = Field("text-embedding-3-small", min_length=1)
    api_key_env: str = Field("OPENAI_API_KEY", min_length=1,
                             description="the variable holding its key")
    timeout: float = Field(30.0, gt=0, le=300)
    batch: int = Field(128, ge=1, le=2048, description="texts per request")


def _json_or_file(value: Any) -> Any:
    """JSON text, or the path of a file holding it."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return {}
    if not text.startswith("{"):
        try:
            text = Path(text).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"neither JSON nor a readable file: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None


class ToolSettings(Section):
    title: ClassVar[str] = "OpenGPTs tools"
    tools: Annotated[dict[str, ToolConfig], NoDecode] = Field(
        default_factory=dict, validation_alias="ACTORLOG_TOOLS",
        description="the web tools, keyed by type: JSON or a JSON file's path, e.g. "
                    '`{"wikipedia": {"base_url": "http://127.0.0.1:9000"}, "arxiv": '
                    '{"enabled": false}}`; fields `enabled`, `base_url`, `api_key`, '
                    "`timeout`, `max_results`, `model`",
        json_schema_extra={"shown": "unset (every tool on when its key is there)"})
    embeddings: Annotated[EmbeddingConfig | None, NoDecode] = Field(
        None, validation_alias="ACTORLOG_EMBEDDINGS",
        description="an OpenAI-compatible embeddings endpoint for hybrid retrieval: JSON or a "
                    'file, e.g. `{"base_url": "http://127.0.0.1:8080/v1", "model": "bge"}`',
        json_schema_extra={"shown": "unset (BM25 only)"})

    _parsed = field_validator("tools", "embeddings", mode="before")(_json_or_file)

    @field_validator("tools")
    @classmethod
    def _known(cls, value: dict[str, ToolConfig]) -> dict[str, ToolConfig]:
        from actors.gpts.tools import TOOLS

        unknown = sorted(set(value) - set(TOOLS))
        if unknown:
            raise ValueError(f"unknown tool types {unknown}; known: {sorted(TOOLS)}")
        return value

    def tool(self, tool_type: str) -> ToolConfig:
        return self.tools.get(tool_type) or ToolConfig()
