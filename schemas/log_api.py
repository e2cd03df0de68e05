"""Wire format of the generic, read-only log API (GET /v1/actors/...). Errors use FastAPI's
own shape, {"detail": "..."}, for validation failures and refusals alike."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class EventOut(BaseModel):
    seq: int = Field(description="1-based position in the entity's stream, gap-free")
    type: str
    data: Any
    timestamp: float = Field(description="commit time, seconds since the epoch")
    position: int = Field(description="position in the store's global log")
    idempotency_key: str | None = None
    metadata: Any = None
    schema_version: int = Field(default=1, description="the version of the event type's "
                                "schema the data was written in (kinds upcast older ones)")


class EntityOut(BaseModel):
    id: str
    last_version: int = Field(description="the stream's highest sequence number")


class EntitiesPage(BaseModel):
    """GET /v1/actors/{kind}: the kind's entities by id, a page at a time."""

    kind: str
    entities: list[EntityOut]
    next_after: str | None = Field(
        description="pass as ?after= for the next page; null when this page reached the end")


class EventsPage(BaseModel):
    kind: str
    id: str
    last_version: int = Field(description="the stream's highest sequence number")
    events: list[EventOut]
    next_from: int | None = Field(
        description="pass as ?from= to read the next page; null when this page reached the end")


class StateOut(BaseModel):
    kind: str
    id: str
    version: int = Field(description="number of events folded into this state")
    last_version: int
    state: Any


class TailFrame(BaseModel):
    """One WebSocket frame of /v1/actors/{kind}/{id}/tail: an event, or an error before close."""

    type: str = Field(description="'event' or 'error'")
    event: EventOut | None = None
    detail: str | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    message: str = "All systems operational"
    components: dict[str, str] = Field(default_factory=lambda: {"database": "connected"})
    problems: list[str] = Field(default_factory=list,
                                description="what stops a write (with status unavailable)")


class HostInfo(BaseModel):
    name: str
    node: str = Field(description="the Ray node id the host runs on")
    pid: int
    resident: int = Field(description="entities active in the host")
    model_calls: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="the host's model calls per provider: limit, running, waiting (queued "
                    "for a slot)")


class RuntimeInfo(BaseModel):
    """GET /v1/runtime: where this replica and the actor hosts run (placement is observable)."""

    node: str = Field(description="the Ray node id of the replica that answered")
    pid: int
    store: str = Field(description="the event store's kind: sqlite or postgresql")
    hosts: list[HostInfo]


class ForkIn(BaseModel):
    """POST /v1/actors/{kind}/{id}/fork: a new entity from this one's log up to ``version``."""

    version: int = Field(ge=1, le=100_000, description="the source's version to fork at")
    id: str | None = Field(None, min_length=1, max_length=256, pattern=r"^[^/\x00-\x1f]+$",
                           description="the new entity's id (a new one by default)")


class ForkOut(BaseModel):
    kind: str
    id: str
    forked_from: str
    version: int
