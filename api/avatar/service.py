"""The avatar session family's operations, callable from Python with no HTTP: a session
issued (with its token), started with its token, read by its owner, stopped. Refusals are
api/commands.py's Refused: not_found (absent, or another owner's: the same answer either way),
invalid_token, and unavailable (its host could not answer); the routes (routes.py) write them
in the document's {"error", "message", "code"} shape. The session socket (socket.py) works on
the session entity itself."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

from actors.avatar import AVATAR_SESSION, LIVE
from api.avatar import audio, keys
from api.commands import Refused
from api.runtime import Runtime
from runtime.client import ActorError, ActorRef, OutcomeUnknown, Unavailable

__all__ = ["MAX_ID", "blob_root", "issue", "lipsync", "owned_state", "start", "stop"]

MAX_ID = 128
#: the runtime's refusals that say nothing of the session (unavailable), as opposed to the
#: session's own (not_found, ended, token_used, ...)
_RUNTIME_TROUBLE = ("unavailable", "deadline", "unreadable", "conflict", "cancelled")


def _unavailable(why: object) -> Refused:
    return Refused("unavailable", f"the session's host could not answer: {why}")


def _ref(rt: Runtime, session_id: str) -> ActorRef:
    return rt.client.ref(AVATAR_SESSION, session_id)


async def _ask(rt: Runtime, session_id: str, command: dict[str, Any]) -> Any:
    """A command to the session: its own refusal as Refused with its code, the runtime's
    trouble as unavailable."""
    try:
        return await _ref(rt, session_id).aask(command)
    except ActorError as exc:
        if exc.code in _RUNTIME_TROUBLE:
            raise _unavailable(exc.message) from None
        raise Refused(exc.code, exc.message) from None
    except (OutcomeUnknown, Unavailable) as exc:
        raise _unavailable(exc) from None


async def issue(rt: Runtime, owner: str, flow: str, avatar_id: str, config: dict[str, Any],
                idle_timeout: Any, fps: int, sample_rate: int | None) -> tuple[str, str]:
    """A new session and its token (the session's log holds it before this returns). Flow
    "two-step": started later with the token; "generic": open at once."""
    session_id = str(uuid.uuid4())
    token, claims = keys.issue_token(session_id, owner)
    await _ask(rt, session_id, {"type": "issue" if flow == "two-step" else "open",
                                "owner": owner, "flow": flow, "avatar_id": avatar_id,
                                "config": config, "idle_timeout": idle_timeout, "fps": fps,
                                "sample_rate": sample_rate, "jti": claims.jti,
                                "expires_at": claims.expires_at, "at": time.time()})
    return session_id, token


async def start(rt: Runtime, claims: keys.Claims) -> None:
    """The session of a token starts; the token is spent. invalid_token for one used
    already, expired, or naming no session."""
    try:
        await _ask(rt, claims.session_id, {"type": "start", "jti": claims.jti,
                                           "at": time.time()})
    except Refused as exc:
        if exc.code == "unavailable":
            raise
        raise Refused("invalid_token", "Invalid session token") from None


async def owned_state(rt: Runtime, session_id: str, owner: str) -> dict[str, Any]:
    """The session's state if ``owner`` made it; otherwise not_found, whether it exists or
    not. Every read of a session by id goes through here."""
    if not session_id or len(session_id) > MAX_ID:
        raise Refused("not_found", "")
    try:
        _, state = await _ref(rt, session_id).astate()
    except (OutcomeUnknown, Unavailable) as exc:
        raise _unavailable(exc) from None
    if state["status"] == "new" or state["owner"] != owner:
        raise Refused("not_found", "")
    return state


def blob_root() -> str:
    """Where segments' audio is written (AVATAR_BLOB_DIR, else the data directory's)."""
    return keys.settings().blob_dir or os.path.join(keys.data_dir(), "avatar_audio")


async def lipsync(rt: Runtime, session_id: str, segment: int) -> dict[str, Any]:
    """A kept segment's lip-sync track ({"fps", "mouth"}), read back from its audio: for an
    operator's view of the session (its owner got it live). not_found for no such segment,
    and for audio past its retention."""
    try:
        _, state = await _ref(rt, session_id).astate()
    except (OutcomeUnknown, Unavailable) as exc:
        raise _unavailable(exc) from None
    found = next((s for s in state["segments"] if s["segment"] == segment and s.get("blob")),
                 None)
    if found is None:
        raise Refused("not_found", f"session {session_id} keeps no segment {segment}")
    mouth = await asyncio.to_thread(audio.track_of, os.path.join(blob_root(), found["blob"]),
                                    state["fps"])
    if mouth is None:
        raise Refused("not_found", f"segment {segment}'s audio is past its retention")
    return {"session_id": session_id, "segment": segment, "fps": state["fps"], "mouth": mouth}


async def stop(rt: Runtime, session_id: str, owner: str, token: str | None) -> None:
    """The owner's live session ends; with a token, only if it is this session's."""
    state = await owned_state(rt, session_id, owner)
    if state["status"] not in LIVE:
        raise Refused("not_found", "")
    if token is not None:
        claims = keys.read_token(token, check_expiry=False)
        if claims is None or claims.session_id != session_id or claims.jti != state["jti"]:
            raise Refused("invalid_token", "Invalid session token")
    try:
        # A signal, not a queued command: whatever the session runs stops now.
        await _ref(rt, session_id).acancel("stopped")
    except (OutcomeUnknown, Unavailable):
        pass
    try:
        await _ask(rt, session_id, {"type": "stop", "by": "api", "at": time.time()})
    except Refused as exc:
        if exc.code == "unavailable":
            raise
        raise Refused("not_found", "") from None
