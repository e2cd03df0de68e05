"""An avatar session (seed 003): one entity whose log is the session's life. Audio never passes
through it: the socket's replica holds a segment's audio in a blob file and reports segments
here as they start and end (api/avatar/socket.py), so a session writes a handful of events per
utterance, none per heartbeat or audio chunk.

Times are the edge's clock, passed in each command as ``at`` (seconds since the epoch), so the
fold stays a pure function of the log.

Commands
  issue       {owner, avatar_id, config, idle_timeout, fps, sample_rate, jti, expires_at, at}
              -> token_issued (step 1); "exists" if the id is taken
  start       {jti, at} -> started (step 2); "token_used" when the session has started (the
              token is single-use) or the jti is not this session's, "token_expired"
  open        {...issue's fields} -> token_issued + started (the one-step generic contract)
  connect     {connection, jti, owner, at} -> connected, or timed_out when it sat idle past
              its timeout while no socket was open; "invalid_token" when the token's jti and
              owner are not this session's, "ended" once stopped. The newest connection takes
              the session over: the event names the ones it replaces, whose sockets close
              (one audio stream per avatar) and whose later init, segment_start and special
              are refused ("superseded"); a segment they had started may still end.
  disconnect  {connection, at} -> disconnected
  init        {config, at} -> initialized
  segment_start {segment, sample_rate, encoding, at} -> segment_started
  segment_end   {segment, samples, frames, played, blob, sha256, interrupted, at}
              -> segment_ended | segment_interrupted
  special     {content, event_id, at} -> special
  time_out    {at, idle} -> timed_out
  stop        {by, at} -> stopped; "ended" once stopped or timed out
Recovery: sockets recorded as open when the session is activated are closed as lost.
Refusals: not_found (no token was issued under this id), ended, token_used, token_expired,
invalid_token, exists, invalid, superseded.
"""

from __future__ import annotations

import time
from typing import Any

from runtime.entity import Context, EntityKind, Rejected
from runtime.events import NewEvent
from runtime.registry import register

__all__ = ["AVATAR_SESSION", "KIND", "LIVE", "SEGMENTS_KEPT"]

AVATAR_SESSION = "avatar_session"
#: statuses in which a session takes sockets and commands
LIVE = ("issued", "started")
#: the state keeps the latest segments; the log keeps them all
SEGMENTS_KEPT = 200


def _initial() -> dict[str, Any]:
    return {"status": "new", "owner": None, "avatar_id": None, "config": {}, "jti": None,
            "flow": None, "idle_timeout": 0.0, "fps": 25, "sample_rate": None,
            "issued_at": None, "expires_at": None, "started_at": None, "ended_at": None,
            "end_reason": None, "last_activity": None, "connections": [], "initialized": False,
            "init": None, "segments": [], "segment_count": 0, "specials": 0, "replaced": []}


kind = register(EntityKind(AVATAR_SESSION, _initial, snapshot_every=100))
KIND = kind


def _at(cmd: dict) -> float:
    at = cmd.get("at")
    if not isinstance(at, (int, float)) or isinstance(at, bool):
        raise Rejected("at (seconds since the epoch) is required", code="invalid")
    return float(at)


def _live(state: dict, ctx: Context) -> None:
    if state["status"] == "new":
        raise Rejected(f"session {ctx.entity_id} not found", code="not_found")
    if state["status"] not in LIVE:
        raise Rejected(f"session {ctx.entity_id} has ended ({state['end_reason']})",
                       code="ended")


#: replaced connections remembered (their sockets close within moments of the takeover)
REPLACED_KEPT = 16


def _current(state: dict, cmd: dict, ctx: Context) -> None:
    """A live session, and a command not from a connection a newer one replaced."""
    _live(state, ctx)
    if cmd.get("connection") is not None and str(cmd["connection"]) in state.get("replaced",
                                                                                 ()):
        raise Rejected("a newer connection took this session over", code="superseded")


_ISSUE_FIELDS = ("owner", "avatar_id", "config", "idle_timeout", "fps", "sample_rate", "jti",
                 "expires_at", "flow")


def _issued(cmd: dict, at: float) -> NewEvent:
    missing = [f for f in ("owner", "avatar_id", "jti") if not cmd.get(f)]
    if missing:
        raise Rejected(f"missing {', '.join(missing)}", code="invalid")
    return NewEvent("token_issued", {**{f: cmd.get(f) for f in _ISSUE_FIELDS}, "at": at})


@kind.command("issue")
def _issue(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    if state["status"] != "new":
        raise Rejected(f"session {ctx.entity_id} exists", code="exists")
    return _issued(cmd, _at(cmd))


@kind.command("open")
def _open(state: dict, cmd: dict, ctx: Context) -> list[NewEvent]:
    if state["status"] != "new":
        raise Rejected(f"session {ctx.entity_id} exists", code="exists")
    at = _at(cmd)
    return [_issued(cmd, at), NewEvent("started", {"jti": cmd.get("jti"), "at": at})]


@kind.command("start")
def _start(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    at = _at(cmd)
    if state["status"] == "new":
        raise Rejected(f"session {ctx.entity_id} not found", code="not_found")
    if state["status"] != "issued" or cmd.get("jti") != state["jti"]:
        raise Rejected("the session token was used already", code="token_used")
    if state["expires_at"] is not None and at > state["expires_at"]:
        raise Rejected("the session token has expired", code="token_expired")
    return NewEvent("started", {"jti": state["jti"], "at": at})


def _idle_past(state: dict, at: float) -> bool:
    """Idle past its timeout while no socket was open (an open socket's replica watches)."""
    timeout = state["idle_timeout"]
    return (bool(timeout) and not state["connections"] and state["last_activity"] is not None
            and at - state["last_activity"] > timeout)


@kind.command("connect")
def _connect(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    if cmd.get("jti") != state["jti"] or cmd.get("owner") != state["owner"]:
        raise Rejected("the session token is not this session's", code="invalid_token")
    _live(state, ctx)
    at = _at(cmd)
    if state["status"] != "started":
        raise Rejected("the session has not started: POST /session first", code="not_started")
    if _idle_past(state, at):
        return NewEvent("timed_out", {"at": at, "idle": at - state["last_activity"]})
    connection = str(cmd.get("connection"))
    return NewEvent("connected", {"connection": connection, "at": at, "replaces": [
        c for c in state["connections"] if c != connection]})


@kind.command("disconnect")
def _disconnect(state: dict, cmd: dict, ctx: Context) -> NewEvent | None:
    if str(cmd.get("connection")) not in state["connections"]:
        return None  # closed already (the session ended meanwhile): nothing to log
    return NewEvent("disconnected", {"connection": str(cmd.get("connection")), "at": _at(cmd)})


@kind.command("init")
def _init(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    _current(state, cmd, ctx)
    config = cmd.get("config")
    if not isinstance(config, dict):
        raise Rejected("config must be an object", code="invalid")
    return NewEvent("initialized", {"config": config, "sample_rate": cmd.get("sample_rate"),
                                    "at": _at(cmd)})


@kind.command("segment_start")
def _segment_start(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    _current(state, cmd, ctx)
    return NewEvent("segment_started", {"segment": int(cmd["segment"]),
                                        "sample_rate": int(cmd["sample_rate"]),
                                        "encoding": str(cmd.get("encoding", "PCM16")),
                                        "at": _at(cmd)})


@kind.command("segment_end")
def _segment_end(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    # Written even after a stop: the audio received before it is the session's record.
    if state["status"] == "new":
        raise Rejected(f"session {ctx.entity_id} not found", code="not_found")
    data = {f: cmd.get(f) for f in ("segment", "samples", "seconds", "frames", "played",
                                    "blob", "sha256")}
    data["at"] = _at(cmd)
    return NewEvent("segment_interrupted" if cmd.get("interrupted") else "segment_ended", data)


@kind.command("special")
def _special(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    _current(state, cmd, ctx)
    return NewEvent("special", {"content": cmd.get("content"), "event_id": cmd.get("event_id"),
                                "at": _at(cmd)})


@kind.command("time_out")
def _time_out(state: dict, cmd: dict, ctx: Context) -> NewEvent | None:
    if state["status"] not in LIVE:
        return None
    return NewEvent("timed_out", {"at": _at(cmd), "idle": cmd.get("idle")})


@kind.command("stop")
def _stop(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    _live(state, ctx)
    return NewEvent("stopped", {"by": str(cmd.get("by", "api")), "at": _at(cmd)})


@kind.recovery
def _recover(state: dict) -> list[NewEvent]:
    """An activation that finds sockets recorded as open: the process that held them is gone
    (a live socket's tail keeps its session resident, so only a dead host or replica leaves
    them). They are closed as lost, so the session can time out; a socket that is in fact
    alive (its host failed over) sees this in its tail and connects again."""
    if state["status"] not in LIVE:
        return []
    at = time.time()
    return [NewEvent("disconnected", {"connection": c, "at": at, "lost": True})
            for c in state["connections"]]


# ---------------------------------------------------------------------- the fold


@kind.event("token_issued")
def _on_issued(state: dict, data: dict) -> dict:
    return {**state, "status": "issued", **{f: data.get(f) for f in _ISSUE_FIELDS},
            "config": data.get("config") or {}, "issued_at": data["at"],
            "last_activity": data["at"]}


@kind.event("started")
def _on_started(state: dict, data: dict) -> dict:
    return {**state, "status": "started", "started_at": data["at"],
            "last_activity": data["at"]}


@kind.event("connected")
def _on_connected(state: dict, data: dict) -> dict:
    replaces = data.get("replaces") or []  # events before takeovers name none
    kept = [c for c in state["connections"] if c not in replaces and c != data["connection"]]
    return {**state, "connections": [*kept, data["connection"]],
            "replaced": [*state.get("replaced", []), *replaces][-REPLACED_KEPT:],
            "last_activity": data["at"]}


@kind.event("disconnected")
def _on_disconnected(state: dict, data: dict) -> dict:
    return {**state, "connections": [c for c in state["connections"]
                                     if c != data["connection"]],
            "last_activity": data["at"]}


@kind.event("initialized")
def _on_initialized(state: dict, data: dict) -> dict:
    rate = data.get("sample_rate") or state["sample_rate"]
    return {**state, "initialized": True, "init": data["config"], "sample_rate": rate,
            "last_activity": data["at"]}


def _segments(state: dict, segment: dict) -> list[dict]:
    kept = [s for s in state["segments"] if s["segment"] != segment["segment"]]
    return [*kept, segment][-SEGMENTS_KEPT:]


@kind.event("segment_started")
def _on_segment_started(state: dict, data: dict) -> dict:
    segment = {"segment": data["segment"], "status": "open", "sample_rate": data["sample_rate"],
               "encoding": data["encoding"], "started_at": data["at"]}
    return {**state, "segments": _segments(state, segment),
            "segment_count": max(state["segment_count"], data["segment"]),
            "sample_rate": state["sample_rate"] or data["sample_rate"],
            "last_activity": data["at"]}


def _on_segment_closed(status: str):
    def fold(state: dict, data: dict) -> dict:
        prior = next((s for s in state["segments"] if s["segment"] == data["segment"]), {})
        segment = {**prior, "segment": data["segment"], "status": status,
                   **{f: data.get(f) for f in ("samples", "seconds", "frames", "played",
                                               "blob", "sha256")},
                   "ended_at": data["at"]}
        return {**state, "segments": _segments(state, segment),
                "last_activity": max(state["last_activity"] or 0, data["at"])}
    return fold


kind.event("segment_ended")(_on_segment_closed("ended"))
kind.event("segment_interrupted")(_on_segment_closed("interrupted"))


@kind.event("special")
def _on_special(state: dict, data: dict) -> dict:
    return {**state, "specials": state["specials"] + 1, "last_activity": data["at"]}


def _ended(reason: str):
    def fold(state: dict, data: dict) -> dict:
        why = data.get("by", "api") if reason == "stopped" else "idle_timeout"
        return {**state, "status": reason, "end_reason": why, "ended_at": data["at"],
                "connections": []}
    return fold


kind.event("timed_out")(_ended("timed_out"))
kind.event("stopped")(_ended("stopped"))
