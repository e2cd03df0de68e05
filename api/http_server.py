"""In-replica HTTP: a uvicorn server inside the Serve ingress replica, serving the same FastAPI
app as Serve's own path.

Why: on this machine Serve's request path (proxy or direct ingress) costs about 1 ms of CPU per
request, 10x bare uvicorn (README, "Serving path"). Serve still deploys, places, restarts and
scales the replica; only the per-request path is plain uvicorn. The socket is bound with
SO_REUSEPORT, so several replicas on one node share the port and the kernel spreads
connections between them.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

from typing import Any, Callable

import uvicorn
from fastapi import FastAPI

from api import background
from api.edge import limits
from api.runtime import Runtime, current

__all__ = ["serve_until_signalled", "start_in_thread"]


def _socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def _serve(server: uvicorn.Server, sock: socket.socket, app: FastAPI) -> None:
    """The families' background work (api/background.py) runs in this loop, the one that
    serves and uses the store, while the server runs, and stops with it."""
    try:
        rt = current()
    except RuntimeError:  # no runtime in this process: nothing to work on
        rt = None
    works = getattr(app.state, "background", []) if rt is not None else []
    tasks = background.run_all(works, rt, lambda: _installed() is rt)
    try:
        await server.serve(sockets=[sock])
    finally:
        await background.stop_all(tasks)


def _installed() -> Runtime | None:
    try:
        return current()
    except RuntimeError:
        return None


def _loop_factory():
    try:
        import uvloop

        return uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop ships with ray[serve]
        return None


def _config(app: FastAPI) -> uvicorn.Config:
    """ws="websockets" (the legacy protocol) on purpose: its send waits while the socket's
    buffer is full, which is how a tail notices a client that stopped reading (api/log_api.py).
    uvicorn's "websockets-sansio" buffers without bound instead (tried: a tail that never read
    was never released)."""
    return uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                          http="httptools", ws="websockets", ws_ping_interval=20,
                          ws_ping_timeout=20, ws_max_size=limits.ws_hard_cap_bytes,
                          timeout_graceful_shutdown=2)


class _MainServer(uvicorn.Server):
    """uvicorn re-raises the signal that stopped it once it has shut down, so that a plain
    process dies of it; this one returns instead, because its caller still has Ray to stop
    (and Ray's own SIGTERM handler would exit with status 15 halfway)."""

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        captured = getattr(self, "_captured_signals", None)
        if isinstance(captured, list):
            captured.clear()


def serve_until_signalled(app: FastAPI, host: str, port: int,
                          announce: Callable[[], None]) -> None:
    """Serve ``app`` on host:port from this (the main) thread until SIGTERM or SIGINT, calling
    ``announce`` once the socket listens. Streams still open at a signal get 2 s to end."""
    sock = _socket(host, port)
    announce()
    server = _MainServer(_config(app))
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(server, sock, app))


def start_in_thread(app: FastAPI, host: str, port: int) -> threading.Thread:
    """Serve ``app`` on host:port from a daemon thread with its own event loop."""
    sock = _socket(host, port)  # bound here, so a port clash fails the replica's start loudly
    server = uvicorn.Server(_config(app))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)

    def run() -> None:
        # uvloop when installed (it comes with ray[serve]'s uvicorn), as uvicorn.run would pick
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_serve(server, sock, app))

    thread = threading.Thread(target=run, name="actorlog-http", daemon=True)
    thread.start()
    return thread
