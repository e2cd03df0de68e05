"""The avatar session family's wire format (seed 003, ../shared/specs/agent_chat_and_avatar.md
part B): the document's camelCase two-step flow, the one-step snake_case contract Agora's
ConvoAI calls on a generic avatar vendor, the session WebSocket's client commands, and the
server frames this service defines (no public system defines any beyond heartbeat_ack).

Validation errors are turned into the document's messages by api/avatar/errors.py; the models
here only say what is valid.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import (AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool,
                      StrictStr, WithJsonSchema, field_validator)
from pydantic.alias_generators import to_camel

__all__ = ["AgoraSettings", "AvatarError", "DEFAULT_IDLE_SECONDS", "ENCODINGS", "Environment",
           "ErrorFrame", "FRAME_RATES", "GenericAgoraSettings", "HeartbeatAck", "Init",
           "LipSyncFrame", "PersonaConfig", "QUALITIES", "SAMPLE_RATES", "SegmentFrame",
           "SegmentView", "SessionStarted", "SessionTokenRequest", "SessionView", "Special",
           "StartRequest", "StartResponse", "StateFrame", "StopRequest", "StopResponse",
           "Voice", "idle_seconds"]

QUALITIES = ("low", "medium", "high")
ENCODINGS = ("H264", "VP8", "AV1")
#: video frames per second by quality: the rate of a session's lip-sync track
FRAME_RATES = {"low": 15, "medium": 25, "high": 30}
#: PCM sample rates a voice frame may declare (Hz)
SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
DEFAULT_IDLE_SECONDS = 120.0
#: the longest idle timeout a client may ask for (a day): beyond it is surely a mistake
MAX_IDLE_SECONDS = 86_400.0

Quality = Literal["low", "medium", "high"]
VideoEncoding = Literal["H264", "VP8", "AV1"]


def idle_seconds(value: Any) -> float:
    """activityIdleTimeout as the document writes it (a string of seconds, "120") or as clients
    send it (a number); >= 0, 0 disabling the timeout."""
    if isinstance(value, bool):
        raise ValueError("must be a number of seconds")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError("must be a number of seconds") from None
    if not isinstance(value, (int, float)) or math.isnan(value) or math.isinf(value):
        raise ValueError("must be a number of seconds")
    if value < 0 or value > MAX_IDLE_SECONDS:
        raise ValueError(f"must be between 0 and {MAX_IDLE_SECONDS:.0f} seconds")
    return float(value)


def _uid(value: Any) -> Any:
    """Agora uids are written as strings; a number is taken as its decimal text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Uid = Annotated[StrictStr, BeforeValidator(_uid), Field(min_length=1, max_length=256)]
Text = Annotated[StrictStr, Field(min_length=1, max_length=2048)]
IdleTimeout = Annotated[float, BeforeValidator(idle_seconds), WithJsonSchema({
    "anyOf": [{"type": "number", "minimum": 0, "maximum": MAX_IDLE_SECONDS},
              {"type": "string", "pattern": r"^ *(0|[1-9][0-9]{0,4})(\.[0-9]{1,3})? *$"}],
    "description": "seconds (a number, or the document's string of one), 0 to 86400; 0 "
                   "turns the timeout off"})]


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


# ---------------------------------------------------------------------- the document's flow


class AgoraSettings(_Camel):
    app_id: Text
    token: Annotated[StrictStr, Field(max_length=4096)]
    channel: Text
    uid: Uid
    quality: Quality
    video_encoding: VideoEncoding
    enable_string_uids: StrictBool
    activity_idle_timeout: IdleTimeout = DEFAULT_IDLE_SECONDS
    #: a later Anam version of the document: the sample rate every voice frame must have
    audio_sample_rate: int | None = Field(None, json_schema_extra={
        "enum": [*SAMPLE_RATES, None]})

    @field_validator("audio_sample_rate")
    @classmethod
    def _rate(cls, value: int | None) -> int | None:
        if value is not None and value not in SAMPLE_RATES:
            raise ValueError(f"must be one of {', '.join(map(str, SAMPLE_RATES))}")
        return value


class PersonaConfig(_Camel):
    avatar_id: Text
    avatar_model: Text | None = None


class Environment(_Camel):
    agora_settings: AgoraSettings


class SessionTokenRequest(_Camel):
    """POST /session-token. Anam's client also sends environment.cluster and podName, which
    are accepted and ignored."""

    persona_config: PersonaConfig
    environment: Environment


class SessionTokenResponse(_Camel):
    session_token: str


class SessionStarted(_Camel):
    """POST /session."""

    session_id: str
    websocket_address: str


class StopRequest(BaseModel):
    """DELETE /session/stop: the document's camelCase, or the generic contract's snake_case."""

    model_config = ConfigDict(extra="ignore")
    session_id: Text = Field(validation_alias=AliasChoices("sessionId", "session_id"))
    session_token: Annotated[StrictStr, Field(
        min_length=1, max_length=8192,
        validation_alias=AliasChoices("sessionToken", "session_token"))]


class StopResponse(BaseModel):
    status: Literal["success"] = "success"
    message: str = "Session terminated successfully"


class AvatarError(BaseModel):
    """Every error of this family: {"error", "message", "code"} as the document shows."""

    error: str = Field(description='"Invalid request", "Unauthorized", "Forbidden", ...')
    message: str
    code: str = Field(description="VALIDATION_ERROR, INVALID_API_KEY, MISSING_API_KEY, "
                                  "INVALID_SESSION_TOKEN, MISSING_SESSION_TOKEN, "
                                  "SESSION_NOT_FOUND, INVALID_JSON, ...")


class SegmentView(_Camel):
    segment: int
    status: Literal["open", "ended", "interrupted"]
    sample_rate: int | None = None
    seconds: float | None = None
    frames: int | None = Field(None, description="the lip-sync track's length")
    played_frames: int | None = None
    audio: str | None = Field(None, description="the WAV's path in the blob area (kept for "
                                                "AVATAR_AUDIO_RETENTION_HOURS)")
    sha256: str | None = None


class SessionView(_Camel):
    """GET /session/{sessionId}: the session replayed from its log. No owner, no Agora token."""

    session_id: str
    status: Literal["issued", "started", "stopped", "timed_out"]
    avatar_id: str | None
    flow: str | None
    config: dict[str, Any]
    idle_timeout: float
    fps: int
    sample_rate: int | None
    issued_at: float | None
    started_at: float | None
    ended_at: float | None
    end_reason: str | None
    connections: int
    initialized: bool
    segment_count: int
    specials: int
    segments: list[SegmentView]


# ---------------------------------------------------------------------- the generic contract


class GenericAgoraSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")
    app_id: Text
    token: Annotated[StrictStr, Field(max_length=4096)]
    channel: Text
    uid: Uid
    enable_string_uid: StrictBool


class StartRequest(BaseModel):
    """POST /session/start (Agora's generic avatar vendor contract). Extra top-level keys are
    vendor passthrough, kept with the session."""

    model_config = ConfigDict(extra="allow")
    avatar_id: Text
    quality: Quality
    version: Annotated[StrictStr, Field(max_length=64)]
    video_encoding: VideoEncoding
    agora_settings: GenericAgoraSettings
    activity_idle_timeout: IdleTimeout = DEFAULT_IDLE_SECONDS
    area: Literal["GLOBAL", "NORTH_AMERICA", "EUROPE", "ASIA", "INDIA", "JAPAN"] = "GLOBAL"


class StartResponse(BaseModel):
    session_id: str
    websocket_address: str
    session_token: str


# ---------------------------------------------------------------------- WebSocket: client


EventId = Annotated[Union[StrictStr, int, None], Field(default=None)]


class Init(BaseModel):
    """init: Anam's minimal {command, sessionId, event_id}, or the generic snake_case config
    (whose extra keys are passthrough)."""

    model_config = ConfigDict(extra="allow")
    command: Literal["init"] = "init"
    event_id: EventId = None
    session_id: StrictStr | None = Field(
        None, validation_alias=AliasChoices("sessionId", "session_id"))


class Voice(BaseModel):
    model_config = ConfigDict(extra="ignore")
    command: Literal["voice"] = "voice"
    event_id: EventId = None
    audio: StrictStr
    sample_rate: int | None = Field(
        None, validation_alias=AliasChoices("sample_rate", "sampleRate"))
    encoding: StrictStr = "PCM16"


class Special(BaseModel):
    model_config = ConfigDict(extra="allow")
    command: Literal["special"] = "special"
    event_id: EventId = None
    content: Any = None


# ---------------------------------------------------------------------- WebSocket: server


class HeartbeatAck(BaseModel):
    """The one reply the generic protocol names: event_id and timestamp echoed (the server's
    clock in ms when the heartbeat had none)."""

    command: Literal["heartbeat_ack"] = "heartbeat_ack"
    event_id: Any = None
    timestamp: Any = None


class StateFrame(BaseModel):
    command: Literal["state"] = "state"
    state: Literal["ready", "speaking", "idle", "stopped"]
    session_id: str
    timestamp: int = Field(description="server clock, ms since the epoch")
    reason: str | None = Field(None, description='why a session stopped: "stopped" (DELETE '
                                                 '/session/stop or kill), "idle_timeout"; '
                                                 '"superseded": a newer connection took the '
                                                 'session over, this one closes (4409)')
    segment: int | None = None


class LipSyncFrame(BaseModel):
    command: Literal["lipsync"] = "lipsync"
    event_id: Any = Field(None, description="the voice frame whose audio these frames animate")
    segment: int
    fps: int
    first_frame: int = Field(description="index of mouth[0] in the segment's track")
    mouth: list[float] = Field(description="mouth openness 0..1 per video frame")


class SegmentFrame(BaseModel):
    """The end of a voice segment: ended (voice_end, after its audio has played) or
    interrupted (voice_interrupt, at once)."""

    command: Literal["segment"] = "segment"
    event_id: Any = None
    segment: int
    status: Literal["ended", "interrupted"]
    seconds: float = Field(description="audio received for the segment")
    frames: int = Field(description="length of the segment's lip-sync track")
    played_frames: int = Field(description="frames played before it ended")


class ErrorFrame(BaseModel):
    command: Literal["error"] = "error"
    event_id: Any = None
    code: str
    message: str
