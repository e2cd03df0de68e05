"""The avatar session family (seed 003, ../shared/specs/agent_chat_and_avatar.md part B): the
two-step token/session flow, stop, Anam's and Agora's aliases, and the session WebSocket that
carries audio. Each session is an avatar_session entity (actors/avatar.py); audio is held by
the socket's replica (api/avatar/audio.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from api.avatar import audio, errors, routes, service, socket
from api.avatar.settings import AvatarSettings
from api.background import Work
from api.family import Family

__all__ = ["FAMILY"]

log = logging.getLogger("ray.serve")


async def _sweep_audio(rt: Any) -> None:
    """Deletes audio older than its retention (AVATAR_AUDIO_RETENTION_HOURS)."""
    hours = AvatarSettings.load(rt.settings.options).audio_retention_hours
    removed = await asyncio.to_thread(audio.sweep, service.blob_root(), hours * 3600)
    if removed:
        log.info("avatar: deleted the audio of %d sessions past retention", removed)


def _sweep_every(rt: Any) -> float:
    """Hourly, or four times per retention period when that is shorter (at least a minute)."""
    hours = AvatarSettings.load(rt.settings.options).audio_retention_hours
    return min(3600.0, max(60.0, hours * 3600 / 4))


FAMILY = Family("avatar", (routes.router, routes.operator_router, socket.router),
                kind_modules=("actors.avatar",),
                title="Avatar sessions",
                summary="the token and session flow, and a session WebSocket carrying audio",
                doc_tag="avatar sessions",
                settings=AvatarSettings,
                background=(Work("avatar: the audio retention sweep", _sweep_audio,
                                 every=_sweep_every),),
                error_paths=("/session", "/session-token", "/auth/session-token",
                             "/engine/session"),
                error_body=errors.error_body)
