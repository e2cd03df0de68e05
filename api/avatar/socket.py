"""The avatar session WebSocket: /session/ws (the address POST /session and /session/start
return).

Auth: the session token, as ``Authorization: Bearer <token>`` (Agora's generic protocol) or in
the query (``sessionToken``, ``token`` or ``session_token``; the address POST /session returns
carries it, since Anam's clients connect to that address with no headers). A refused socket is
accepted, told why in an error frame, and closed with 1008.

Client commands (JSON text frames, "command", an "event_id" on each): init, heartbeat, voice
{audio: base64 PCM16 LE mono, sample_rate | sampleRate, encoding: PCM16}, voice_end,
voice_interrupt, special {content} (logged and passed through).

Server frames (no public system defines them; README, "Avatar sessions"):
- {"command": "heartbeat_ack", "event_id", "timestamp"}: event_id and timestamp echoed;
- {"command": "state", "state": ready | speaking | idle | stopped, "session_id", "timestamp",
  "reason"?, "segment"?}: ready after init, speaking when a segment starts playing, idle when
  it has played or was interrupted, stopped (reason "stopped" or "idle_timeout") before the
  server closes;
- {"command": "lipsync", "event_id", "segment", "fps", "first_frame", "mouth": [0..1]}: the
  frames a voice frame's audio completes, sent as the avatar plays them (in real time);
- {"command": "segment", "event_id", "segment", "status": ended | interrupted, "seconds",
  "frames", "played_frames"}: a segment's end; frames is its track's whole length;
- {"command": "error", "event_id", "code", "message"}: a bad command; the socket stays open.
Close codes: 1008 refused (bad token, unknown or ended session), 4408 idle timeout, 4410
stopped through the API, 4409 a newer connection took the session over (one audio stream per
avatar: the older socket gets a "stopped" state with reason "superseded"), 1013 a client that
does not read its frames.

Audio stays here (api/avatar/audio.py); the session's log gets connected, initialized,
segment_started, segment_ended or segment_interrupted (with the blob's path), special and
disconnected, written in order by one writer task so the socket never waits on the store.
DELETE /session/stop reaches a socket at once: directly in this replica, through the session
log's tail in any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ValidationError

from actors.avatar import AVATAR_SESSION
from api.avatar import keys, service
from api.avatar.audio import AudioError, LipSync, SegmentFile, decode_pcm16
from api.runtime import current
from api.ws import WebSocketSession
from runtime.client import ActorError, ActorRef, OutcomeUnknown, Unavailable
from schemas.avatar import (SAMPLE_RATES, ErrorFrame, HeartbeatAck, Init, LipSyncFrame,
                            SegmentFrame, Special, StateFrame, Voice)

__all__ = ["PATH", "close_local", "router"]

log = logging.getLogger("ray.serve")
router = APIRouter()
PATH = "/session/ws"
IDLE_CLOSE, STOPPED_CLOSE, SUPERSEDED_CLOSE, REFUSED = 4408, 4410, 4409, 1008
COMMANDS = ("init", "heartbeat", "voice", "voice_end", "voice_interrupt", "special")
#: this replica's open sockets, by session id (DELETE /session/stop closes them directly)
_OPEN: dict[str, set["_Connection"]] = {}


def close_local(session_id: str, reason: str) -> None:
    for connection in list(_OPEN.get(session_id, ())):
        connection.end(reason)


def _ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Segment:
    number: int
    file: SegmentFile
    track: LipSync
    receiving: bool = True
    played: int = 0          # frames played
    sha256: str | None = None
    end_event_id: Any = None
    started: bool = False    # "speaking" sent


@dataclass
class _Write:
    command: dict[str, Any] | None  # None: only frames to send, in their turn
    then: tuple[dict[str, Any], ...]
    done: asyncio.Future | None = None


@dataclass
class _Item:
    segment: _Segment
    event_id: Any
    first_frame: int
    mouth: list[float] = field(default_factory=list)
    last: bool = False


class _Connection:
    def __init__(self, session: WebSocketSession, ref: ActorRef, claims: keys.Claims,
                 connection: str, state: dict[str, Any], version: int) -> None:
        self.session, self.ref, self.claims = session, ref, claims
        self.session_id = claims.session_id
        self.version = version
        self.connection = connection
        self.fps: int = state["fps"] or 25
        self.rate: int | None = state["sample_rate"]
        self.rate_fixed = state["sample_rate"] is not None  # by the token's settings
        self.idle: float = float(state["idle_timeout"] or 0)
        self.segment_count: int = state["segment_count"]
        self.initialized = False
        self.last_activity = time.monotonic()
        self.current: _Segment | None = None      # receiving audio
        self.playing: list[_Segment] = []         # received, not yet wholly played
        self.queue: asyncio.Queue[_Item] = asyncio.Queue()
        self.backlog = 0.0                        # seconds queued ahead of the player
        mine = keys.settings()
        self.max_backlog, self.max_segment = mine.max_backlog_seconds, mine.max_segment_seconds
        self.writes: asyncio.Queue[_Write | None] = asyncio.Queue(4096)
        self.ended: str | None = None
        self.tasks: list[asyncio.Task] = []
        self.player: asyncio.Task | None = None
        self.now_playing: tuple[_Segment, float, int] | None = None
        #: set once init is stored and "ready" sent: nothing plays before it
        self.ready = asyncio.Event()

    def connect_command(self) -> dict[str, Any]:
        return {"type": "connect", "connection": self.connection, "jti": self.claims.jti,
                "owner": self.claims.owner}

    # ------------------------------------------------------------------ frames

    def error(self, event_id: Any, code: str, message: str) -> None:
        self.session.push(ErrorFrame(event_id=event_id, code=code, message=message).model_dump())

    def state_frame(self, state: str, **extra: Any) -> dict[str, Any]:
        return StateFrame(state=state, session_id=self.session_id, timestamp=_ms(),
                          **extra).model_dump(exclude_none=True)

    def tell(self, *frames: dict[str, Any], done: asyncio.Future | None = None) -> None:
        """Send frames after what is queued for the log is stored."""
        with contextlib.suppress(asyncio.QueueFull):
            self.writes.put_nowait(_Write(None, frames, done))

    def write(self, command: dict[str, Any], *then: dict[str, Any],
              done: asyncio.Future | None = None) -> None:
        """Queue an event for the session's log (in order, by the writer task), and the frames
        that report it, sent once it is stored: a client told that a segment ended or that
        the session is ready can count on the log saying so."""
        try:
            self.writes.put_nowait(_Write({**command, "connection": self.connection,
                                           "at": time.time()}, then, done))
        except asyncio.QueueFull:
            log.error("avatar %s: the log writer is behind; dropped %s", self.session_id,
                      command.get("type"))
            if done is not None and not done.done():
                done.set_result(None)  # whoever waits on it is not held forever

    # ------------------------------------------------------------------ life

    async def run(self) -> None:
        _OPEN.setdefault(self.session_id, set()).add(self)
        self.tasks = [asyncio.ensure_future(self._writer()),
                      asyncio.ensure_future(self._watch_idle()),
                      asyncio.ensure_future(self._follow_log())]
        self.player = asyncio.ensure_future(self._play())
        try:
            while self.ended is None:
                frame = await self.session.receive()
                if frame is None:
                    break
                if self.ended is None:
                    self.handle(frame)
        finally:
            if self.player is not None:
                self.player.cancel()
            self.played_now()
            self._close_segments(interrupted=True)
            conns = _OPEN.get(self.session_id)
            if conns is not None:
                conns.discard(self)
                if not conns:
                    del _OPEN[self.session_id]
            for task in (self.player, *self.tasks[1:]):
                if task is not None:
                    task.cancel()
            self.write({"type": "disconnect", "connection": self.connection})
            with contextlib.suppress(asyncio.QueueFull):
                self.writes.put_nowait(None)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.tasks[0]), 10.0)
            self.tasks[0].cancel()

    def end(self, reason: str) -> None:
        """The session stopped (the API, or its idle timeout): tell the client, then close."""
        if self.ended is not None:
            return
        self.ended = reason
        if self.player is not None:
            self.player.cancel()
        self.played_now()
        self._close_segments(interrupted=True)
        told = asyncio.get_running_loop().create_future()
        self.tell(self.state_frame("stopped", reason=reason), done=told)
        code = {"idle_timeout": IDLE_CLOSE, "superseded": SUPERSEDED_CLOSE}.get(reason,
                                                                              STOPPED_CLOSE)
        asyncio.ensure_future(self._close_when(told, code, reason))

    async def _close_when(self, told: asyncio.Future, code: int, reason: str) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(told, 5.0)
        await self.session.close(code, reason)

    async def _writer(self) -> None:
        """Writes the session's events in order, and sends the frames that report each only
        once it is stored: a frame that reports a fact goes out after the fact is committed."""
        written = 0
        while True:
            item = await self.writes.get()
            if item is None:
                return
            command, then = item.command, item.then
            problem = None
            if command is not None:
                written += 1
                problem = await self._store(command, f"{self.connection}:{written}")
            if problem is None:
                for frame in then:
                    self.session.push(frame)
            elif then:  # told instead that it failed, in place of what it would report
                event_id = next((f.get("event_id") for f in then if "event_id" in f), None)
                self.error(event_id, "NOT_STORED", f"{command['type']} was not stored: "
                           f"{problem}")
            if item.done is not None and not item.done.done():
                item.done.set_result(None)

    async def _store(self, command: dict[str, Any], key: str) -> str | None:
        """The command in the session's log: None once it is, else why not. A host that died
        or did not answer is asked again with the same idempotency key, so the event lands
        once, for up to AVATAR_WRITE_RETRY_SECONDS (30); a refusal is final."""
        deadline = time.monotonic() + keys.settings().write_retry_seconds
        pause = 0.1
        while True:
            try:
                await self.ref.aask(command, idempotency_key=key)
                return None
            except ActorError as exc:
                if exc.code == "superseded":  # a newer socket has the session: this one ends
                    self.end("superseded")
                elif exc.code != "ended":
                    log.warning("avatar %s: %s refused: %s", self.session_id,
                                command.get("type"), exc.message)
                return exc.message
            except (OutcomeUnknown, Unavailable) as exc:
                if time.monotonic() + pause > deadline:
                    log.error("avatar %s: %s not written: %s", self.session_id,
                              command.get("type"), exc)
                    return f"the session's host is unavailable ({exc})"
                await asyncio.sleep(pause)
                pause = min(2.0, pause * 2)
            except Exception as exc:  # noqa: BLE001 - the writer must outlive any one command
                log.exception("avatar %s: %s failed", self.session_id, command.get("type"))
                return f"{type(exc).__name__}"

    async def _watch_idle(self) -> None:
        if self.idle <= 0:
            return
        while True:
            await asyncio.sleep(min(1.0, self.idle / 4))
            quiet = time.monotonic() - self.last_activity
            if quiet > self.idle and not self.playing:
                stored = asyncio.get_running_loop().create_future()
                self.write({"type": "time_out", "idle": round(quiet, 3)}, done=stored)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stored, 10.0)  # the client hears it once stored
                self.end("idle_timeout")
                return

    async def _follow_log(self) -> None:
        """A stop written by any replica reaches this socket through the log's tail."""
        try:
            async for what, item in self.ref.asubscribe(from_seq=self.version + 1):
                if what != "event":
                    continue
                if item.type in ("stopped", "timed_out"):
                    self.end("stopped" if item.type == "stopped" else "idle_timeout")
                    return
                if item.type == "connected" and self.connection in item.data.get("replaces", ()):
                    self.end("superseded")  # a newer socket took the session over
                    return
                if (item.type == "disconnected" and item.data.get("lost")
                        and item.data.get("connection") == self.connection):
                    # the session's host restarted and counted this socket lost: it is not
                    self.write(self.connect_command())
        except (OutcomeUnknown, Unavailable) as exc:
            log.warning("avatar %s: the log's tail ended: %s", self.session_id, exc)

    # ------------------------------------------------------------------ commands

    def handle(self, frame: Any) -> None:
        if not isinstance(frame, dict):
            self.error(None, "VALIDATION_ERROR", 'a command is a JSON object with "command"')
            return
        event_id = frame.get("event_id")
        command = frame.get("command")
        if command is None and "avatar_id" in frame:
            command = "init"  # the generic protocol's legacy init, without "command"
        if command not in COMMANDS:
            self.error(event_id, "UNKNOWN_COMMAND",
                       f"unknown command {str(command)[:64]!r}; commands are "
                       f"{', '.join(COMMANDS)}")
            return
        getattr(self, f"on_{command}")(frame, event_id)

    def _parse(self, model: type[BaseModel], frame: dict, event_id: Any) -> Any:
        try:
            return model.model_validate(frame)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"]) or "command"
            self.error(event_id, "VALIDATION_ERROR", f"{where}: {problem['msg']}")
            return None

    def on_heartbeat(self, frame: dict, event_id: Any) -> None:
        self.last_activity = time.monotonic()
        stamp = frame.get("timestamp")
        self.session.push(HeartbeatAck(event_id=event_id,
                                       timestamp=_ms() if stamp is None else stamp).model_dump())

    def on_init(self, frame: dict, event_id: Any) -> None:
        init = self._parse(Init, {**frame, "command": "init"}, event_id)
        if init is None:
            return
        if init.session_id is not None and init.session_id != self.session_id:
            self.error(event_id, "SESSION_MISMATCH",
                       "init names another session than this socket's token")
            return
        rate = frame.get("audio_sample_rate") or frame.get("sampleRate") \
            or frame.get("sample_rate")
        if rate is not None and not self.rate_fixed:
            if rate not in SAMPLE_RATES:
                self.error(event_id, "VALIDATION_ERROR", "sample rate must be one of "
                                                         f"{', '.join(map(str, SAMPLE_RATES))}")
                return
            if self.current is None:
                self.rate = rate
        self.last_activity = time.monotonic()
        self.initialized = True
        config = {k: v for k, v in frame.items() if k not in ("command", "event_id")}
        stored = asyncio.get_running_loop().create_future()
        stored.add_done_callback(lambda _: self.ready.set())
        self.write({"type": "init", "config": config,
                    "sample_rate": rate if isinstance(rate, int) else None},
                   self.state_frame("ready"), done=stored)

    def on_special(self, frame: dict, event_id: Any) -> None:
        special = self._parse(Special, frame, event_id)
        if special is not None:
            self.write({"type": "special", "content": special.content, "event_id": event_id})

    def on_voice(self, frame: dict, event_id: Any) -> None:
        if not self.initialized:
            self.error(event_id, "NOT_INITIALIZED", "send init before voice")
            return
        voice = self._parse(Voice, frame, event_id)
        if voice is None:
            return
        if voice.encoding.upper() != "PCM16":
            self.error(event_id, "UNSUPPORTED_ENCODING",
                       f"encoding {voice.encoding[:32]!r}: this service takes PCM16")
            return
        rate = voice.sample_rate if voice.sample_rate is not None else self.rate
        if rate is None:
            self.error(event_id, "VALIDATION_ERROR", "sample_rate (or sampleRate) is required")
            return
        if rate not in SAMPLE_RATES:
            self.error(event_id, "SAMPLE_RATE_MISMATCH", f"sample rate {rate} is not one of "
                                                         f"{', '.join(map(str, SAMPLE_RATES))}")
            return
        if self.rate is not None and rate != self.rate:
            self.error(event_id, "SAMPLE_RATE_MISMATCH",
                       f"this session's audio is {self.rate} Hz; got {rate} Hz")
            return
        try:
            pcm = decode_pcm16(voice.audio)
        except AudioError as exc:
            self.error(event_id, exc.code, exc.message)
            return
        seconds = pcm.size / rate
        if self.backlog + seconds > self.max_backlog:
            self.error(event_id, "BACKLOG_FULL", f"more than {self.max_backlog:.0f} s of audio "
                                                 "wait to be played; this chunk is dropped")
            return
        segment = self.current
        if segment is not None and segment.track.seconds + seconds > self.max_segment:
            self.error(event_id, "SEGMENT_TOO_LONG", f"a segment holds at most "
                                                     f"{self.max_segment:.0f} s; send voice_end")
            return
        self.last_activity = time.monotonic()
        if segment is None:
            segment = self._open_segment(rate)
        self.rate = rate
        segment.file.write(pcm)
        first = segment.track.frames
        mouth = segment.track.feed(pcm)
        self._enqueue(_Item(segment, event_id, first, mouth))

    def on_voice_end(self, frame: dict, event_id: Any) -> None:
        if not self.initialized:
            self.error(event_id, "NOT_INITIALIZED", "send init before voice_end")
            return
        segment = self.current
        if segment is None:
            self.error(event_id, "NO_SEGMENT", "no voice segment is open")
            return
        self.current = None
        segment.receiving = False
        segment.end_event_id = event_id
        segment.sha256 = segment.file.close()
        first = segment.track.frames
        self._enqueue(_Item(segment, event_id, first, segment.track.flush(), last=True))

    def on_voice_interrupt(self, frame: dict, event_id: Any) -> None:
        """At once: the player stops mid-frame, queued audio is dropped, and every segment
        not wholly played ends as interrupted."""
        if self.player is not None:
            self.player.cancel()
        self.played_now()
        closed = self._close_segments(interrupted=True, event_id=event_id,
                                      then=(self.state_frame("idle"),))
        if not closed:
            self.session.push(self.state_frame("idle"))
        if self.ended is None:
            self.player = asyncio.ensure_future(self._play())

    # ------------------------------------------------------------------ segments

    def _open_segment(self, rate: int) -> _Segment:
        self.segment_count += 1
        number = self.segment_count
        segment = _Segment(number, SegmentFile(service.blob_root(), self.session_id, number, rate,
                                               self.connection),
                           LipSync(rate, self.fps))
        self.current = segment
        self.playing.append(segment)
        self.write({"type": "segment_start", "segment": number, "sample_rate": rate,
                    "encoding": "PCM16"})
        return segment

    def _enqueue(self, item: _Item) -> None:
        self.backlog += len(item.mouth) / self.fps
        self.queue.put_nowait(item)

    def _finish(self, segment: _Segment, interrupted: bool, event_id: Any,
                then: tuple[dict[str, Any], ...] = ()) -> None:
        """The segment's end, in the log, then told to the client (with ``then``)."""
        if segment in self.playing:
            self.playing.remove(segment)
        if self.current is segment:
            self.current = None
        if segment.sha256 is None:
            segment.sha256 = segment.file.close()
        status = "interrupted" if interrupted else "ended"
        frame = SegmentFrame(event_id=event_id, segment=segment.number, status=status,
                             seconds=round(segment.track.seconds, 4),
                             frames=segment.track.frames,
                             played_frames=segment.played).model_dump()
        self.write({"type": "segment_end", "segment": segment.number,
                    "samples": segment.track.samples,
                    "seconds": round(segment.track.seconds, 4),
                    "frames": segment.track.frames, "played": segment.played,
                    "blob": segment.file.relative, "sha256": segment.sha256,
                    "interrupted": interrupted}, frame, *then)

    def _close_segments(self, interrupted: bool, event_id: Any = None,
                        then: tuple[dict[str, Any], ...] = ()) -> list[int]:
        closed = []
        segments = list(self.playing)
        for i, segment in enumerate(segments):
            if segment.receiving:
                segment.track.flush()
            self._finish(segment, interrupted, event_id,
                         then if i == len(segments) - 1 else ())
            closed.append(segment.number)
        while not self.queue.empty():
            self.queue.get_nowait()
        self.backlog = 0.0
        return closed

    async def _play(self) -> None:
        """Plays queued frames in real time: each lip-sync frame goes out as its audio starts
        playing, and a segment ends when its last frame has played. One sleep per voice
        frame's audio, not per video frame: what an interrupt cut short is reckoned from the
        clock (played_now)."""
        clock: float | None = None
        while True:
            item = await self.queue.get()
            await self.ready.wait()  # "ready" goes out before anything of a segment
            segment = item.segment
            now = time.monotonic()
            if clock is None or clock < now:
                clock = now
            if not segment.started:
                segment.started = True
                self.session.push(self.state_frame("speaking", segment=segment.number))
            if item.mouth:
                self.session.push(LipSyncFrame(event_id=item.event_id, segment=segment.number,
                                               fps=self.fps, first_frame=item.first_frame,
                                               mouth=item.mouth).model_dump())
                self.now_playing = (segment, clock, len(item.mouth))
                clock += len(item.mouth) / self.fps
                await asyncio.sleep(max(0.0, clock - time.monotonic()))
                self.now_playing = None
                segment.played += len(item.mouth)
                self.backlog = max(0.0, self.backlog - len(item.mouth) / self.fps)
            if item.last:
                idle = () if len(self.playing) > 1 else (
                    self.state_frame("idle", segment=segment.number),)
                self._finish(segment, False, segment.end_event_id, idle)
                clock = None

    def played_now(self) -> None:
        """Counts the frames of the item being played that have played by now (the player
        was stopped mid-item)."""
        if self.now_playing is not None:
            segment, since, frames = self.now_playing
            self.now_playing = None
            segment.played += max(0, min(frames, int((time.monotonic() - since) * self.fps)))


def _token(websocket: WebSocket) -> str:
    raw = websocket.headers.get("authorization", "")
    scheme, _, value = raw.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    query = websocket.query_params
    return (query.get("sessionToken") or query.get("token") or query.get("session_token")
            or "").strip()


async def _refuse(session: WebSocketSession, code: str, message: str) -> None:
    await session.accept()
    session.push(ErrorFrame(code=code, message=message).model_dump())
    await session.close(REFUSED, code)
    await session.finish()


@router.websocket(PATH)
async def session_socket(websocket: WebSocket) -> None:
    session = WebSocketSession(
        websocket, lambda code, text: ErrorFrame(
            code={"invalid_json": "INVALID_JSON", "too_large": "FRAME_TOO_LARGE",
                  "binary": "BINARY_FRAME"}.get(code, "INVALID_FRAME"), message=text
        ).model_dump(), text_only=True, max_unread=256)
    token = _token(websocket)
    if not token:
        await _refuse(session, "MISSING_SESSION_TOKEN", "the session token is required "
                      "(Authorization: Bearer, or ?sessionToken= in the address)")
        return
    claims = keys.read_token(token, check_expiry=False)
    wanted = websocket.query_params.get("sessionId") or websocket.query_params.get("session_id")
    if claims is None or (wanted and wanted != claims.session_id):
        await _refuse(session, "INVALID_SESSION_TOKEN", "Invalid session token")
        return
    ref = current().client.ref(AVATAR_SESSION, claims.session_id)
    connection_id = uuid.uuid4().hex[:12]
    try:
        outcome = await ref.aask({"type": "connect", "connection": connection_id,
                                  "jti": claims.jti, "owner": claims.owner,
                                  "at": time.time()}, with_state=True)
    except ActorError as exc:
        if exc.code == "invalid_token":
            await _refuse(session, "INVALID_SESSION_TOKEN", "Invalid session token")
            return
        code = {"ended": "SESSION_NOT_FOUND", "not_found": "SESSION_NOT_FOUND",
                "not_started": "SESSION_NOT_STARTED"}.get(exc.code, "SESSION_ERROR")
        await _refuse(session, code, exc.message)
        return
    except (OutcomeUnknown, Unavailable) as exc:
        await _refuse(session, "SERVICE_UNAVAILABLE", f"the session's host is unavailable: {exc}")
        return
    if outcome.state["status"] == "timed_out":
        await _refuse(session, "SESSION_TIMED_OUT", "the session ended: idle past its "
                                                     "activityIdleTimeout")
        return
    await session.accept()
    connection = _Connection(session, ref, claims, connection_id, outcome.state,
                             outcome.version)
    try:
        await connection.run()
    finally:
        await session.close()
        await session.finish()
