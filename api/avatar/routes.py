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

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request

from api.avatar import keys, service, socket
from api.avatar.errors import AvatarRoute, ServiceRefusals, responses
from api.edge import detail_responses
from api.kit import Refusals
from api.operator import OperatorRoute
from api.runtime import current
from schemas.avatar import (FRAME_RATES, SegmentView, SessionStarted, SessionTokenRequest,
                            SessionTokenResponse, SessionView, StartRequest, StartResponse,
                            StopRequest, StopResponse)

__all__ = ["operator_router", "router", "websocket_address"]

router = APIRouter(tags=["avatar sessions"],
                   route_class=AvatarRoute.refusing(ServiceRefusals()))
_API_KEY = {"x-avatar-auth": "api_key"}
_SESSION_TOKEN = {"x-avatar-auth": "session_token"}
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
    agora = body.environment.agora_settings
    config = {"avatarId": body.persona_config.avatar_id,
              "avatarModel": body.persona_config.avatar_model,
              **agora.model_dump(by_alias=True)}
    _, token = await service.issue(current(), request.state.avatar_owner, "two-step",
                                   body.persona_config.avatar_id, config,
                                   agora.activity_idle_timeout, FRAME_RATES[agora.quality],
                                   agora.audio_sample_rate)
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
    await service.start(current(), claims)
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
    await service.stop(current(), session_id, owner, token)
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
    return summary(sessionId, await service.owned_state(current(), sessionId,
                                                        request.state.avatar_owner))


# ---------------------------------------------------------------------- the generic contract


@router.post("/session/start", response_model=StartResponse, responses=responses(401, 403),
             openapi_extra={**_API_KEY, "x-avatar-snake": True})
async def generic_start(body: StartRequest, request: Request) -> StartResponse:
    """One step (Agora ConvoAI's generic avatar vendor): token issued and session started.
    The socket takes the token in the address it answers, or as ``Authorization: Bearer``."""
    session_id, token = await service.issue(
        current(), request.state.avatar_owner, "generic", body.avatar_id, body.model_dump(),
        body.activity_idle_timeout, FRAME_RATES[body.quality], None)
    # The token rides in the address too: Agora's generic audio sender connects to it as
    # given, with no headers (a Bearer header keeps working).
    address = websocket_address(request, {"sessionId": session_id, "sessionToken": token})
    return StartResponse(session_id=session_id, websocket_address=address, session_token=token)


# ---------------------------------------------------------------------- the operator's view

#: read by the console with the operator token (any session: an operator's view)
operator_router = APIRouter(prefix="/v1/avatar", tags=["avatar sessions"],
                            route_class=OperatorRoute.refusing(Refusals({"not_found": 404})),
                            responses=detail_responses(401, 404, 503))


@operator_router.get("/sessions/{session_id}/segments/{segment}/lipsync")
async def segment_lipsync(session_id: str, segment: int) -> dict[str, Any]:
    """A kept segment's lip-sync track, read back from its audio: {"fps", "mouth": [0..1 per
    video frame]}, frame for frame what the session's socket sent. 404 past the audio's
    retention."""
    return await service.lipsync(current(), session_id, segment)
