"""The avatar family's REST routes (seed 003, spec part B).

The document's two steps: POST /session-token (Bearer API key) -> {"sessionToken"}; POST
/session (Bearer session token, single use) -> {"sessionId", "websocketAddress"}; DELETE
/session/stop (Bearer API key, {sessionId, sessionToken}). What real clients call, as aliases:
Anam's POST /auth/session-token, /engine/session and /engine/session/{sessionId}/kill; and
Agora's generic vendor contract, POST /session/start (x-api-key, snake_case) -> {session_id,
websocket_address, session_token}, whose DELETE /session/stop sends x-api-key and snake_case
(both spellings are taken). Ours: GET /session/{sessionId}, the session replayed from its log.

A session belongs to the API key that made it: another key's stop, kill or read is
SESSION_NOT_FOUND, the same answer as for an id that does not exist.
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request

from actors.avatar import AVATAR_SESSION, LIVE
from api.avatar import keys, socket
from api.avatar.errors import AvatarRoute, refused, responses
from api.runtime import current
from runtime.client import ActorError, ActorRef, OutcomeUnknown, Unavailable
from schemas.avatar import (FRAME_RATES, SegmentView, SessionStarted, SessionTokenRequest,
                            SessionTokenResponse, SessionView, StartRequest, StartResponse,
                            StopRequest, StopResponse)

__all__ = ["owned_state", "router", "websocket_address"]

router = APIRouter(tags=["avatar sessions"], route_class=AvatarRoute)
_API_KEY = {"x-avatar-auth": "api_key"}
_SESSION_TOKEN = {"x-avatar-auth": "session_token"}
MAX_ID = 128
NOT_FOUND = ("Session not found or already terminated", "SESSION_NOT_FOUND")
#: the runtime's refusals that say nothing of the session (the edge answers 503), as opposed
#: to the session's own (not_found, ended, token_used, ...)
_RUNTIME_TROUBLE = ("unavailable", "deadline", "unreadable", "conflict", "cancelled")


def _unavailable(why: object) -> Exception:
    return refused(503, f"the session's host could not answer: {why}", "SERVICE_UNAVAILABLE")


def _ref(session_id: str) -> ActorRef:
    return current().client.ref(AVATAR_SESSION, session_id)


async def _ask(session_id: str, command: dict[str, Any], with_state: bool = False) -> Any:
    """A command to the session; the runtime's own failures in the document's format."""
    try:
        return await _ref(session_id).aask(command, with_state=with_state)
    except ActorError as exc:
        if exc.code in _RUNTIME_TROUBLE:
            raise _unavailable(exc.message) from None
        raise
    except (OutcomeUnknown, Unavailable) as exc:
        raise _unavailable(exc) from None


async def owned_state(session_id: str, owner: str) -> dict[str, Any]:
    """The session's state if ``owner`` made it; otherwise SESSION_NOT_FOUND, whether it
    exists or not. Every read of a session by id goes through here."""
    if not session_id or len(session_id) > MAX_ID:
        raise refused(404, *NOT_FOUND)
    try:
        _, state = await _ref(session_id).astate()
    except (OutcomeUnknown, Unavailable) as exc:
        raise _unavailable(exc) from None
    if state["status"] == "new" or state["owner"] != owner:
        raise refused(404, *NOT_FOUND)
    return state


def _without_tokens(config: dict[str, Any]) -> dict[str, Any]:
    """The configuration without the Agora RTC token (at any depth): a credential of the
    customer's that no read shows."""
    return {k: _without_tokens(v) if isinstance(v, dict) else v
            for k, v in config.items() if k != "token"}


def summary(session_id: str, state: dict) -> SessionView:
    return SessionView(
        session_id=session_id, status=state["status"], avatar_id=state["avatar_id"],
        flow=state["flow"], config=_without_tokens(state["config"] or {}),
        idle_timeout=state["idle_timeout"] or 0, fps=state["fps"],
        sample_rate=state["sample_rate"], issued_at=state["issued_at"],
        started_at=state["started_at"], ended_at=state["ended_at"],
        end_reason=state["end_reason"], connections=len(state["connections"]),
        initialized=state["initialized"], segment_count=state["segment_count"],
        specials=state["specials"],
        segments=[SegmentView(segment=s["segment"], status=s["status"],
                              sample_rate=s.get("sample_rate"), seconds=s.get("seconds"),
                              frames=s.get("frames"), played_frames=s.get("played"),
                              audio=s.get("blob"), sha256=s.get("sha256"))
                  for s in state["segments"]])


def websocket_address(request: Request, query: dict[str, str] | None = None) -> str:
    """This service's session WebSocket as the client reached it (scheme, host and port of the
    request, X-Forwarded-Proto honoured), or AVATAR_PUBLIC_WS_URL behind a proxy."""
    public = keys.settings().public_ws_url
    if public:
        base = public
    else:
        proto = request.headers.get("x-forwarded-proto", request.url.scheme).split(",")[0]
        scheme = "wss" if proto.strip() in ("https", "wss") else "ws"
        host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
        base = f"{scheme}://{host}{socket.PATH}"
    if not query:
        return base
    return f"{base}{'&' if '?' in base else '?'}{urlencode(query)}"


# ---------------------------------------------------------------------- the document's flow


async def _issue(body: SessionTokenRequest, request: Request) -> SessionTokenResponse:
    owner = request.state.avatar_owner
    session_id = str(uuid.uuid4())
    token, claims = keys.issue_token(session_id, owner)
    agora = body.environment.agora_settings
    config = {"avatarId": body.persona_config.avatar_id,
              "avatarModel": body.persona_config.avatar_model,
              **agora.model_dump(by_alias=True)}
    await _ask(session_id, {"type": "issue", "owner": owner, "flow": "two-step",
                            "avatar_id": body.persona_config.avatar_id, "config": config,
                            "idle_timeout": agora.activity_idle_timeout,
                            "fps": FRAME_RATES[agora.quality],
                            "sample_rate": agora.audio_sample_rate, "jti": claims.jti,
                            "expires_at": claims.expires_at, "at": time.time()})
    return SessionTokenResponse(session_token=token)


@router.post("/session-token", response_model=SessionTokenResponse, response_model_by_alias=True,
             responses=responses(401, 403), openapi_extra=_API_KEY)
async def session_token(body: SessionTokenRequest, request: Request) -> SessionTokenResponse:
    """Step 1: a session token for a persona and its Agora settings."""
    return await _issue(body, request)


@router.post("/auth/session-token", response_model=SessionTokenResponse,
             response_model_by_alias=True, responses=responses(401, 403),
             openapi_extra=_API_KEY)
async def auth_session_token(body: SessionTokenRequest, request: Request
                             ) -> SessionTokenResponse:
    """Step 1 as Anam's clients call it."""
    return await _issue(body, request)


async def _start(request: Request) -> SessionStarted:
    claims: keys.Claims = request.state.avatar_claims
    try:
        await _ask(claims.session_id, {"type": "start", "jti": claims.jti, "at": time.time()})
    except ActorError:  # used already, expired, or no such session: the token is no good
        raise refused(401, "Invalid session token", "INVALID_SESSION_TOKEN") from None
    token = (request.headers.get("authorization") or "").partition(" ")[2].strip()
    address = websocket_address(request, {"sessionId": claims.session_id,
                                          "sessionToken": token})
    return SessionStarted(session_id=claims.session_id, websocket_address=address)


@router.post("/session", response_model=SessionStarted, response_model_by_alias=True,
             responses=responses(401, 403), openapi_extra=_SESSION_TOKEN)
async def start_session(request: Request) -> SessionStarted:
    """Step 2: the session starts; its token is spent. The body is {} as the document says;
    it is not read, whatever it holds or however it is typed."""
    return await _start(request)


@router.post("/engine/session", response_model=SessionStarted, response_model_by_alias=True,
             responses=responses(401, 403), openapi_extra=_SESSION_TOKEN)
async def engine_session(request: Request) -> SessionStarted:
    """Step 2 as Anam's clients call it."""
    return await _start(request)


async def _stop(session_id: str, owner: str, token: str | None) -> StopResponse:
    state = await owned_state(session_id, owner)
    if state["status"] not in LIVE:
        raise refused(404, *NOT_FOUND)
    if token is not None:
        claims = keys.read_token(token, check_expiry=False)
        if claims is None or claims.session_id != session_id or claims.jti != state["jti"]:
            raise refused(401, "Invalid session token", "INVALID_SESSION_TOKEN")
    ref = _ref(session_id)
    try:
        # A signal, not a queued command: whatever the session runs stops now.
        await ref.acancel("stopped")
    except (OutcomeUnknown, Unavailable):
        pass
    try:
        await _ask(session_id, {"type": "stop", "by": "api", "at": time.time()})
    except ActorError:
        raise refused(404, *NOT_FOUND) from None
    socket.close_local(session_id, "stopped")
    return StopResponse()


@router.delete("/session/stop", response_model=StopResponse,
               responses=responses(401, 403, 404), openapi_extra=_API_KEY)
async def stop_session(body: StopRequest, request: Request) -> StopResponse:
    """Ends the session and closes its sockets at once. Bearer API key and camelCase (the
    document) or x-api-key and snake_case (the generic contract)."""
    return await _stop(body.session_id, request.state.avatar_owner, body.session_token)


@router.post("/engine/session/{sessionId}/kill", response_model=StopResponse,
             responses=responses(401, 403, 404), openapi_extra=_API_KEY)
async def kill_session(sessionId: str, request: Request  # noqa: N803 - the wire's name
                       ) -> StopResponse:
    """Anam's stop: the API key alone, the session id in the path (its body, {"sessionId"},
    is not read)."""
    return await _stop(sessionId, request.state.avatar_owner, None)


@router.get("/session/{sessionId}", response_model=SessionView, response_model_by_alias=True,
            responses=responses(401, 403, 404), openapi_extra=_API_KEY)
async def read_session(sessionId: str, request: Request  # noqa: N803 - the wire's name
                       ) -> SessionView:
    """The session replayed from its log: status, configuration (without the Agora token),
    connections, and every kept voice segment with its audio blob and lip-sync length."""
    return summary(sessionId, await owned_state(sessionId, request.state.avatar_owner))


# ---------------------------------------------------------------------- the generic contract


@router.post("/session/start", response_model=StartResponse, responses=responses(401, 403),
             openapi_extra={**_API_KEY, "x-avatar-snake": True})
async def generic_start(body: StartRequest, request: Request) -> StartResponse:
    """One step (Agora ConvoAI's generic avatar vendor): token issued and session started.
    The socket takes the token in the address it answers, or as ``Authorization: Bearer``."""
    owner = request.state.avatar_owner
    session_id = str(uuid.uuid4())
    token, claims = keys.issue_token(session_id, owner)
    config = body.model_dump()
    await _ask(session_id, {"type": "open", "owner": owner, "flow": "generic",
                            "avatar_id": body.avatar_id, "config": config,
                            "idle_timeout": body.activity_idle_timeout,
                            "fps": FRAME_RATES[body.quality], "sample_rate": None,
                            "jti": claims.jti, "expires_at": claims.expires_at,
                            "at": time.time()})
    # The token rides in the address too: Agora's generic audio sender connects to it as
    # given, with no headers (a Bearer header keeps working).
    address = websocket_address(request, {"sessionId": session_id, "sessionToken": token})
    return StartResponse(session_id=session_id, websocket_address=address, session_token=token)
