"""The avatar session family's settings (runtime/settings.py)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from runtime.settings import Section

__all__ = ["AvatarSettings"]


class AvatarSettings(Section):
    title: ClassVar[str] = "Avatar sessions"
    api_keys: str = Field("", validation_alias="AVATAR_API_KEYS",
                          description="the avatar family's API keys, comma-separated",
                          json_schema_extra={"shown": "unset (the embedded service makes one)"})
    api_keys_file: str = Field("", validation_alias="AVATAR_API_KEYS_FILE",
                               description="a file of API keys, one per line (`#` comments)")
    jwt_secret: str = Field("", validation_alias="AVATAR_JWT_SECRET",
                            description="signs session tokens; set it on a cluster whose "
                                        "replicas do not share a data directory",
                            json_schema_extra={"shown": "unset (a random one in the data "
                                                        "directory)"})
    session_token_seconds: float = Field(600.0, gt=0,
                                         validation_alias="AVATAR_SESSION_TOKEN_SECONDS",
                                         description="how long a session token may wait for "
                                                     "`POST /session`")
    public_ws_url: str = Field("", validation_alias="AVATAR_PUBLIC_WS_URL",
                               description="the session WebSocket's public address, behind a "
                                           "proxy",
                               json_schema_extra={"shown": "unset (the request's scheme, host "
                                                           "and port)"})
    blob_dir: str = Field("", validation_alias="AVATAR_BLOB_DIR",
                          description="where sessions' audio segments are written",
                          json_schema_extra={"shown": "`$DATA_DIR/avatar_audio`"})
    audio_retention_hours: float = Field(24.0, gt=0,
                                         validation_alias="AVATAR_AUDIO_RETENTION_HOURS",
                                         description="how long segments' audio is kept (the "
                                                     "log keeps their path and checksum)")
    max_segment_seconds: float = Field(600.0, gt=0, validation_alias="AVATAR_MAX_SEGMENT_SECONDS",
                                       description="the longest voice segment")
    max_backlog_seconds: float = Field(120.0, gt=0,
                                       validation_alias="AVATAR_MAX_BACKLOG_SECONDS",
                                       description="the most audio waiting to be played")
    write_retry_seconds: float = Field(30.0, gt=0, validation_alias="AVATAR_WRITE_RETRY_SECONDS",
                                       description="how long the socket retries writing an "
                                                   "event whose host died or did not answer "
                                                   "(same idempotency key), before it tells "
                                                   "the client NOT_STORED")
