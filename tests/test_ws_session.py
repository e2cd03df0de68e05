"""The edge kit's WebSocket session (api/ws.py), over real uvicorn and a real client on
loopback: JSON in, server push out, a documented error frame for bad input (the session goes
on), a frame-size bound, and a client that stops reading closed with 1013 instead of frames
piling up in memory."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets.sync.client as ws
from fastapi import FastAPI, WebSocket
from websockets.exceptions import ConnectionClosed

from api import http_server
from api.ws import WebSocketSession
from tests.conftest import free_port, wait_http

pytestmark = pytest.mark.heavy  # uvicorn serves the app on loopback

SESSIONS: list[WebSocketSession] = []


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict:
        return {"ok": True}

    @app.websocket("/echo")
    async def echo(websocket: WebSocket) -> None:
        session = WebSocketSession(websocket, lambda code, msg: {"error": code, "detail": msg},
                                   max_frame_bytes=1000, max_unread=8, send_seconds=1.0)
        SESSIONS.append(session)
        await session.accept()
        while (message := await session.receive()) is not None:
            if message == {"flood": True}:  # server push the client will not read
                for i in range(100_000):
                    if not session.push({"n": i, "pad": "x" * 1000}):
                        break
                    await asyncio.sleep(0)
            else:
                session.push({"echo": message})
        await session.finish()

    return app


@pytest.fixture(scope="module")
def url():
    port = free_port()
    http_server.start_in_thread(_app(), "127.0.0.1", port)
    wait_http(f"http://127.0.0.1:{port}/health")
    return f"ws://127.0.0.1:{port}/echo"


def test_json_in_frames_out_and_bad_input_gets_an_error_frame(url):
    with ws.connect(url, open_timeout=10) as sock:
        sock.send(json.dumps({"hello": 1}))
        assert json.loads(sock.recv(timeout=10)) == {"echo": {"hello": 1}}
        sock.send("{not json")
        assert json.loads(sock.recv(timeout=10))["error"] == "invalid_json"
        sock.send('{"deep": ' + "[" * 100 + "]" * 100 + "}")
        assert json.loads(sock.recv(timeout=10))["error"] == "invalid_json"  # past depth 64
        sock.send(json.dumps({"big": "y" * 2000}))
        assert json.loads(sock.recv(timeout=10))["error"] == "too_large"
        sock.send(json.dumps([1, 2]))  # the session is still there
        assert json.loads(sock.recv(timeout=10)) == {"echo": [1, 2]}


def test_a_client_that_stops_reading_is_closed_with_1013(url):
    with ws.connect(url, open_timeout=10, max_queue=1) as sock:
        sock.send(json.dumps({"flood": True}))
        time.sleep(3)  # past send_seconds, the server's frames unread
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(100_000):
                sock.recv(timeout=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    session = SESSIONS[-1]
    assert session.closed and session._outgoing.qsize() == 0
