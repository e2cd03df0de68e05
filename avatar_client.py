"""`actorlog avatar`: the avatar document's interactive session, against this service or any
server of the same contract.

It reads .env as the document's client does (BASE_URL, API_KEY, AVATAR_ID, AGORA_APP_ID,
AGORA_TOKEN, AGORA_CHANNEL, AGORA_UID, VIDEO_QUALITY, VIDEO_ENCODING, ENABLE_STRING_UIDS,
ACTIVITY_IDLE_TIMEOUT; options override them), runs the two-step flow, connects to the
session's WebSocket, sends init, a heartbeat every 5 s, and prints every server frame. At the
``>>`` prompt: ``audio <file.wav>`` (or ``f [file]``, Anam's spelling) sends a PCM16 WAV in
0.5 s chunks then voice_end; ``voice_end``; ``interrupt`` (or ``i``) sends voice_interrupt;
``status``; ``help``; ``quit`` (``exit``, ``q``) or Ctrl+C closes the socket and stops the
session. With --wav it sends that file, waits for its segment to end, and quits.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import sys
import time
import uuid
import wave
from typing import Any

import aiohttp
import websockets
from pydantic import Field

from runtime.settings import RuntimeSettings, Section

log = logging.getLogger("actorlog.avatar")

HEARTBEAT_SECONDS = 5.0
CHUNK_SECONDS = 0.5


class ClientSettings(Section):
    """What the avatar document's own client reads from its .env, under its names."""

    base_url: str = Field("http://localhost:8000", validation_alias="BASE_URL")
    api_key: str = Field("", validation_alias="API_KEY")
    avatar_id: str = Field("16cb73e7de08", validation_alias="AVATAR_ID")
    agora_app_id: str = Field("your-agora-app-id", validation_alias="AGORA_APP_ID")
    agora_token: str = Field("", validation_alias="AGORA_TOKEN")
    agora_channel: str = Field("room1", validation_alias="AGORA_CHANNEL")
    agora_uid: str = Field("333", validation_alias="AGORA_UID")
    video_quality: str = Field("high", validation_alias="VIDEO_QUALITY")
    video_encoding: str = Field("H264", validation_alias="VIDEO_ENCODING")
    enable_string_uids: str = Field("false", validation_alias="ENABLE_STRING_UIDS")
    idle_timeout: str = Field("120", validation_alias="ACTIVITY_IDLE_TIMEOUT")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    from dotenv import find_dotenv, load_dotenv

    load_dotenv(args.env_file or find_dotenv(usecwd=True))
    env = ClientSettings.load()
    timeout = args.idle_timeout or env.idle_timeout
    return {
        "base": (args.url or env.base_url).rstrip("/"),
        "api_key": args.api_key or env.api_key,
        "token_body": {
            "personaConfig": {"avatarId": args.avatar or env.avatar_id},
            "environment": {"agoraSettings": {
                "appId": env.agora_app_id, "token": env.agora_token,
                "channel": env.agora_channel, "uid": env.agora_uid,
                "quality": env.video_quality, "videoEncoding": env.video_encoding,
                "enableStringUids": env.enable_string_uids.lower() == "true",
                "activityIdleTimeout": str(timeout)}}},
    }


class Session:
    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.base = settings["base"]
        self.token: str | None = None
        self.session_id: str | None = None
        self.address: str | None = None
        self.socket: Any = None
        self.http: aiohttp.ClientSession | None = None
        self.segment_ended = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    def _headers(self, bearer: str) -> dict[str, str]:
        return {"accept": "application/json", "content-type": "application/json",
                "Authorization": f"Bearer {bearer}"}

    async def _post(self, method: str, path: str, bearer: str, body: Any) -> dict[str, Any]:
        assert self.http is not None
        async with self.http.request(method, self.base + path, json=body,
                                     headers=self._headers(bearer)) as r:
            data = await r.json(content_type=None)
            if r.status != 200:
                raise RuntimeError(f"{method} {path}: {r.status} {data}")
            return data

    async def open(self) -> None:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        log.info("Step 1: Creating session token...")
        data = await self._post("POST", "/session-token", self.settings["api_key"],
                                self.settings["token_body"])
        self.token = data["sessionToken"]
        log.info("✅ Session token created: %s...", self.token[:20])
        log.info("Step 2: Starting session...")
        data = await self._post("POST", "/session", self.token, {})
        self.session_id, self.address = data["sessionId"], data["websocketAddress"]
        log.info("✅ Session started: %s", self.session_id)
        log.info("✅ WebSocket address: %s", self.address)
        log.info("Connecting to WebSocket: %s", self.address)
        self.socket = await websockets.connect(
            self.address, additional_headers={"Authorization": f"Bearer {self.token}"},
            max_size=2 ** 22)
        log.info("✅ WebSocket connected successfully")
        agora = self.settings["token_body"]["environment"]["agoraSettings"]
        await self.send({"command": "init", "sessionId": self.session_id,
                         "avatarId": self.settings["token_body"]["personaConfig"]["avatarId"],
                         **agora})
        log.info("✅ Sent init command to WebSocket")
        self.tasks = [asyncio.ensure_future(self._heartbeats()),
                      asyncio.ensure_future(self._listen())]
        log.info("✅ Started automatic heartbeat (every %g seconds)", HEARTBEAT_SECONDS)

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send(json.dumps({**message, "event_id": uuid.uuid4().hex}))

    async def _heartbeats(self) -> None:
        while True:
            await self.send({"command": "heartbeat", "timestamp": int(time.time() * 1000)})
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _listen(self) -> None:
        try:
            async for raw in self.socket:
                frame = json.loads(raw)
                kind = frame.get("command")
                if kind == "lipsync":
                    log.info("⬅ lipsync segment %s frames %d-%d", frame["segment"],
                             frame["first_frame"], frame["first_frame"] + len(frame["mouth"]))
                elif kind != "heartbeat_ack":
                    log.info("⬅ %s", json.dumps(frame))
                if kind == "segment":
                    self.segment_ended.set()
        except websockets.ConnectionClosed as exc:
            log.info("WebSocket closed (%s %s)", exc.rcvd.code if exc.rcvd else "",
                     exc.rcvd.reason if exc.rcvd else "")

    async def send_wav(self, path: str) -> int:
        if not os.path.exists(path):
            log.error("File not found: %s", path)
            return 0
        log.info("Sending audio from %s...", path)
        with wave.open(path, "rb") as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            log.info("Audio: %dHz, %dch, %d bytes/sample", rate, channels, width)
            if channels != 1 or width != 2:
                log.error("the avatar takes mono PCM16 WAV files")
                return 0
            step = int(rate * CHUNK_SECONDS)
            sent = 0
            self.segment_ended.clear()
            while True:
                chunk = w.readframes(step)
                if not chunk:
                    break
                await self.send({"command": "voice", "audio": base64.b64encode(chunk).decode(),
                                 "sample_rate": rate, "encoding": "PCM16"})
                sent += 1
                log.info("Sent audio chunk %d", sent)
                await asyncio.sleep(0.1)
        await self.send({"command": "voice_end"})
        log.info("Sent voice_end command")
        log.info("✅ Finished sending %d audio chunks", sent)
        return sent

    def status(self) -> None:
        log.info("Session ID: %s", self.session_id)
        log.info("Session Token: %s...", (self.token or "")[:20])
        log.info("WebSocket: %s", "Connected" if self.socket is not None else "Not connected")
        log.info("WebSocket Address: %s", self.address)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.socket is not None:
            await self.socket.close()
            log.info("WebSocket connection closed")
        if self.session_id and self.token and self.http is not None:
            log.info("Stopping session...")
            try:
                await self._post("DELETE", "/session/stop", self.settings["api_key"],
                                 {"sessionId": self.session_id, "sessionToken": self.token})
                log.info("✅ Session stopped successfully")
            except (RuntimeError, aiohttp.ClientError) as exc:
                log.error("could not stop the session: %s", exc)
        if self.http is not None:
            await self.http.close()


HELP = """Available commands:
  audio <file.wav>  - Send audio file (also: f [file])
  voice_end         - Send voice_end command
  interrupt         - Send voice_interrupt (also: i)
  status            - Show session status
  help              - Show this help
  quit              - Exit and stop session (also: exit, q)"""


async def _interactive(session: Session) -> None:
    print(HELP, flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, lambda: input(">> "))
        parts = line.strip().split(maxsplit=1)
        if not parts:
            continue
        command, arg = parts[0].lower(), (parts[1] if len(parts) > 1 else "")
        if command in ("quit", "exit", "q"):
            log.info("Exiting...")
            return
        if command in ("audio", "f"):
            await session.send_wav(arg or "input.wav")
        elif command == "voice_end":
            await session.send({"command": "voice_end"})
        elif command in ("interrupt", "i", "voice_interrupt"):
            await session.send({"command": "voice_interrupt"})
        elif command == "status":
            session.status()
        elif command == "help":
            print(HELP, flush=True)
        else:
            log.warning("Unknown command: %s (type help)", command)


def _no_key_message() -> str:
    """What to do when no API key was given: where the embedded service put the one it made."""
    kept = os.path.join(os.path.abspath(RuntimeSettings.load().data_dir or "data"),
                        "avatar_api_key")
    here = f" (this machine's: {kept})" if os.path.exists(kept) else ""
    return ("no API key given: pass --api-key KEY or set API_KEY (in .env). The embedded "
            "service prints its key when it starts (\"avatar sessions: API key ak_...\") and "
            f"keeps it in its data directory as avatar_api_key{here}; a configured service "
            "takes a key of AVATAR_API_KEYS.")


async def run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not settings["api_key"].strip():
        log.error("❌ %s", _no_key_message())
        return 2
    session = Session(settings)
    try:
        await session.open()
        if args.wav:
            if not await session.send_wav(args.wav):
                return 1
            await asyncio.wait_for(session.segment_ended.wait(), args.wait)
        else:
            await _interactive(session)
        return 0
    except (RuntimeError, OSError, aiohttp.ClientError, websockets.WebSocketException,
            asyncio.TimeoutError) as exc:
        log.error("❌ %s", exc)
        return 1
    finally:
        await session.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="the service (default: BASE_URL from .env, else "
                                      "http://localhost:8000)")
    parser.add_argument("--api-key", help="default: API_KEY from .env")
    parser.add_argument("--avatar", help="default: AVATAR_ID from .env")
    parser.add_argument("--idle-timeout", help="activityIdleTimeout, seconds")
    parser.add_argument("--env-file", help="default: .env in this directory")
    parser.add_argument("--wav", help="send this WAV, wait for its segment to end, and quit")
    parser.add_argument("--wait", type=float, default=120.0,
                        help="seconds to wait for the segment with --wav")


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(levelname)s - %(message)s")
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:  # the session was stopped in run()'s finally
        return 130


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="avatar_client")
    add_arguments(p)
    sys.exit(main(p.parse_args()))
