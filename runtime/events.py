"""The event envelope and its one codec.

An event is what a stream *is*: state is only ever a fold over these. The envelope is a slotted
dataclass because hosts keep many of them in flight and replay hundreds of thousands per second;
the payload codec is orjson (see ``bench/codec.py`` for the measurement behind the choice).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import orjson

__all__ = ["Encoded", "Event", "NewEvent", "encode", "decode", "stream_id", "split_stream_id",
           "kind_of", "unstorable"]

_OPTS = orjson.OPT_NON_STR_KEYS


class Encoded:
    """A payload encoded already (by ``encode``): a store writes its bytes as they are. The
    host encodes each event once, to fold exactly what a replay will see, and hands the
    bytes on; it encoded, decoded and the store encoded again before (a 6 MB batch snapshot
    three times over)."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        self.raw = raw


def encode(value: Any) -> bytes:
    """Encode a payload (event data, metadata, snapshot state) for storage."""
    if type(value) is Encoded:
        return value.raw
    return orjson.dumps(value, option=_OPTS)


def unstorable(value: Any) -> str | None:
    """Why the codec cannot store ``value`` (an integer beyond 64 bits, a lone surrogate,
    nesting past its limit, a type it does not know), or None when it can."""
    try:
        encode(value)
    except (TypeError, ValueError) as exc:  # orjson.JSONEncodeError is a TypeError
        return str(exc)
    return None


def decode(raw: bytes | bytearray | memoryview | str | None) -> Any:
    if raw is None:
        return None
    return orjson.loads(raw)


# Not frozen: a frozen dataclass builds ~5x slower (object.__setattr__ per field), and replay
# builds hundreds of thousands of these per second. Treat them as immutable all the same.
@dataclass(slots=True)
class NewEvent:
    """An event a command handler decided on, not yet stored (no sequence number yet)."""

    type: str
    data: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] | None = None
    #: the version of the type's schema the data follows; the host stamps the kind's current
    #: one at append, so handlers never set it.
    schema_version: int = 1


@dataclass(slots=True)
class Event:
    """A stored event.

    ``seq`` numbers a stream's events from 1 with no gaps; ``position`` orders every event of
    the store (the global log projections read); ``timestamp`` is seconds since the epoch at
    commit time, from the appending host's clock; ``schema_version`` is the version of the
    type's schema the data was written with (a kind's upcasters bring older ones up to date).
    """

    stream: str
    seq: int
    type: str
    data: Any
    timestamp: float
    position: int = 0
    idempotency_key: str | None = None
    metadata: Any = None
    schema_version: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "seq": self.seq,
            "type": self.type,
            "data": self.data,
            "timestamp": self.timestamp,
            "position": self.position,
            "idempotency_key": self.idempotency_key,
            "metadata": self.metadata,
            "schema_version": self.schema_version,
        }


def now() -> float:
    return time.time()


def stream_id(kind: str, entity_id: str) -> str:
    """The stream of one entity. Kinds never contain '/', ids may."""
    return f"{kind}/{entity_id}"


def kind_of(stream: str) -> str:
    """The kind a stream belongs to (stored beside each event, for reads by kind)."""
    return stream.partition("/")[0]


def split_stream_id(stream: str) -> tuple[str, str]:
    kind, _, entity_id = stream.partition("/")
    return kind, entity_id
