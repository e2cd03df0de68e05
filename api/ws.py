"""A WebSocket session every family's socket route uses: connect, receive JSON messages, push
frames from the server, and leave, with every buffer bounded.

- Inbound: a frame larger than ``max_frame_bytes`` (uvicorn refuses larger ones before they
  reach us in driver mode; Serve's path delivers them) or not JSON is answered with the
  family's documented error frame and skipped: bad input never ends the session by itself.
- Outbound: frames go through a queue of at most ``max_unread`` frames, drained by one sender
  that waits at most ``send_seconds`` for the client to take each. A client that stops
  reading is closed with 1013 (try again later) and ``slow_reason``, and everything queued for
  it is dropped: a departed or stalled reader never holds memory.
- A disconnect ends ``receive()`` with None and makes ``push`` a no-op, so producers need no
  checks of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Callable

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from api.edge import StrictJSONError, limits, strict_json

__all__ = ["TOO_SLOW", "WebSocketSession"]

log = logging.getLogger("ray.serve")

#: the close code for a client that does not read its frames (RFC 6455: try again later)
TOO_SLOW = 1013
TOO_BIG = 1009

ErrorFrame = Callable[[str, str], Any]  # (code, message) -> the family's error frame


class WebSocketSession:
    def __init__(self, websocket: WebSocket, error_frame: ErrorFrame, *,
                 max_frame_bytes: int | None = None, max_unread: int = 256,
                 send_seconds: float = 10.0, text_only: bool = False,
                 slow_reason: Callable[[], str] = lambda: "too slow: frames left unread"
                 ) -> None:
        self.websocket = websocket
        self.error_frame = error_frame
        self.max_frame_bytes = max_frame_bytes or limits.ws_frame_bytes
        self.send_seconds = send_seconds
        self.slow_reason = slow_reason
        self.text_only = text_only
        self.closed = False
        self._outgoing: asyncio.Queue[str | None] = asyncio.Queue(max_unread)
        self._sender: asyncio.Task | None = None

    async def accept(self) -> None:
        await self.websocket.accept()
        self._sender = asyncio.ensure_future(self._send_loop())

    # ------------------------------------------------------------------ inbound

    async def receive(self) -> Any | None:
        """The next JSON message from the client; None once it has left (or was closed)."""
        while not self.closed:
            try:
                message = await self.websocket.receive()
            except (WebSocketDisconnect, RuntimeError):
                break
            if message["type"] == "websocket.disconnect":
                break
            raw = message.get("text")
            if raw is None and message.get("bytes") is not None:
                if self.text_only:
                    self.push(self.error_frame("binary", "send JSON in text frames"))
                    continue
                raw = message["bytes"]
            if raw is None:
                continue
            if len(raw) > self.max_frame_bytes:
                self.push(self.error_frame("too_large", f"a frame may hold at most "
                                                        f"{self.max_frame_bytes} bytes"))
                continue
            try:
                return strict_json(raw)
            except StrictJSONError as exc:
                self.push(self.error_frame("invalid_json", f"not JSON: {exc.msg}"))
        self.closed = True
        return None

    # ------------------------------------------------------------------ outbound

    def push(self, frame: Any) -> bool:
        """Queue ``frame`` (JSON-able) for the client; False when the session is over. A full
        queue means the client stopped reading: it is closed as too slow."""
        if self.closed:
            return False
        text = frame if isinstance(frame, str) else orjson.dumps(frame).decode()
        try:
            self._outgoing.put_nowait(text)
        except asyncio.QueueFull:
            asyncio.ensure_future(self.close(TOO_SLOW, self.slow_reason()))
            return False
        return True

    async def send(self, frame: Any) -> bool:
        """Push ``frame`` and wait until the client has taken it (or the session ended)."""
        if not self.push(frame):
            return False
        await self._outgoing.join()
        return not self.closed

    async def _send_loop(self) -> None:
        queue = self._outgoing
        while True:
            text = await queue.get()
            try:
                if text is None or self.closed:
                    return
                try:
                    await asyncio.wait_for(self.websocket.send_text(text), self.send_seconds)
                except asyncio.TimeoutError:
                    await self._abandon(TOO_SLOW, self.slow_reason())
                    return
                except (WebSocketDisconnect, RuntimeError, OSError):
                    self.closed = True
                    return
            finally:
                queue.task_done()
                if self.closed:
                    self._drain()

    def _drain(self) -> None:
        while not self._outgoing.empty():
            self._outgoing.get_nowait()
            self._outgoing.task_done()

    async def _abandon(self, code: int, reason: str) -> None:
        """Close a client that is not reading: the close frame goes behind what it has not
        read, so its handshake is not awaited for long."""
        self.closed = True
        self._drain()
        with contextlib.suppress(asyncio.TimeoutError, RuntimeError, OSError):
            await asyncio.wait_for(self.websocket.close(code=code, reason=reason), 1.0)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send what is queued (up to send_seconds), then close."""
        if self.closed:
            return
        if self._sender is not None and not self._sender.done():
            with contextlib.suppress(asyncio.QueueFull):
                self._outgoing.put_nowait(None)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._sender), self.send_seconds)
        self.closed = True
        self._drain()
        if self.websocket.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(asyncio.TimeoutError, RuntimeError, OSError):
                await asyncio.wait_for(self.websocket.close(code=code, reason=reason), 1.0)

    async def finish(self) -> None:
        """Stop the sender (the route is returning)."""
        self.closed = True
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sender
        self._drain()

    async def run_until_gone(self, *work: Any, reading: bool = False) -> None:
        """Run ``work`` (coroutines that push frames) until one ends or the client leaves,
        then stop them all. ``reading``: one of them reads the client's messages (and ends
        when it leaves); otherwise incoming frames are read and dropped here, which is how a
        client that sends nothing is noticed leaving. Errors other than a disconnect are
        raised, never lost."""
        async def watch() -> None:
            while await self.receive() is not None:
                pass

        tasks = [asyncio.ensure_future(w) for w in (*work, *(() if reading else (watch(),)))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            await self.finish()
        for result in results:
            if isinstance(result, BaseException) and not isinstance(
                    result, (asyncio.CancelledError, WebSocketDisconnect)):
                raise result
