"""The avatar session family (seed 003, ../shared/specs/agent_chat_and_avatar.md part B): the
two-step token/session flow, stop, Anam's and Agora's aliases, and the session WebSocket that
carries audio. Each session is an avatar_session entity (actors/avatar.py); audio is held by
the socket's replica (api/avatar/audio.py)."""

from __future__ import annotations

import asyncio
import logging

from api import background
from api.avatar import audio, errors, keys, routes, socket
from api.family import Family

__all__ = ["FAMILY"]

log = logging.getLogger("ray.serve")
_sweeping: set[asyncio.Task] = set()


async def _sweep_audio() -> None:
    """Deletes audio older than AVATAR_AUDIO_RETENTION_HOURS (24), hourly."""
    while True:
        hours = float(keys.option("AVATAR_AUDIO_RETENTION_HOURS", "24"))
        try:
            removed = await asyncio.to_thread(audio.sweep, socket.blob_root(), hours * 3600)
            if removed:
                log.info("avatar: deleted the audio of %d sessions past retention", removed)
        except Exception:  # noqa: BLE001 - the next sweep tries again
            log.exception("avatar: the audio retention sweep failed")
        await asyncio.sleep(min(3600.0, max(60.0, hours * 3600 / 4)))


def start_sweep() -> None:
    if not _sweeping:  # once per process
        task = background.start(_sweep_audio(), "avatar: the audio retention sweep")
        _sweeping.add(task)
        task.add_done_callback(_sweeping.discard)


FAMILY = Family("avatar", (routes.router, socket.router), kind_modules=("actors.avatar",),
                startup=start_sweep,
                error_paths=("/session", "/session-token", "/auth/session-token",
                             "/engine/session"),
                error_body=errors.error_body)
