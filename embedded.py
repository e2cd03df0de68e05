"""The embedded service: its own local Ray, SQLite under ACTORLOG_DATA_DIR, the built-in model,
HTTP on 127.0.0.1:ACTORLOG_PORT (`bash scripts/dev serve`, or `python embedded.py`).

ACTORLOG_RAY_ADDRESS joins an existing Ray instead; one running on the same machine is never
joined by chance. ACTORLOG_HTTP_MODE picks who serves HTTP:
- "driver" (default): uvicorn in this process, over the actor hosts. Serve's controller, proxy
  and replica are three processes (~290 MB PSS) and ~10 s of start-up that a single-node
  service does not need (README, "Memory and start-up").
- "replica": Serve deploys the ingress and uvicorn runs inside its replica; Serve's own path
  answers one port up.
- "serve": Serve's own HTTP path on the port.

Why a module of its own: its imports are light, so the service's (FastAPI, the families, Ray
Serve: ~3 s here) load in a thread while ray.init (~5-7 s here, mostly waiting on Ray's own
processes) runs; serve_app.py, which composes the families, is what that thread imports.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from types import ModuleType
from typing import Any

from api.settings import ServiceSettings
from runtime.config import Settings
from runtime.settings import ConfigError, set_default


#: the exit status when this service's own Ray node died: a supervisor starts it again
#: (EX_TEMPFAIL; `bash scripts/dev serve` is such a supervisor)
NODE_LOST = 75
#: seconds between noticing the node is gone and exiting: /health says 503 meanwhile
LOST_GRACE = 2.0


def _stop_within(seconds: float, code: int = 0) -> None:
    """Stop the embedded service: Ray's shutdown ends every process this service started
    (GCS, raylet, Serve, the hosts). Serve's own graceful shutdown waited 30 s for its
    controller; nothing needs it here, because every acknowledged write is already durable
    (fsynced before its answer) and a run cut short is closed as interrupted at the next
    start. A watchdog makes sure the process ends even if Ray hangs; with a ``code``, the
    process ends with it once Ray is down."""
    import ray

    watchdog = threading.Timer(seconds, lambda: os._exit(code))
    watchdog.daemon = True
    watchdog.start()
    ray.shutdown()
    if code:
        os._exit(code)


def _exit_when_the_node_is_lost(runtime: Any) -> None:
    """Watch this service's own Ray node (runtime/node_watch.py). When its raylet or GCS is
    gone, the hosts are gone for good: /health says so, the rest of the node is shut down and
    the process exits with NODE_LOST for its supervisor to start it again (a new start brings
    up a new node and the hosts; the log is on disk, and work cut short is recovered)."""
    from runtime.node_watch import watch

    def lost(processes: list[str]) -> None:
        runtime.lost = f"this service's Ray node is gone ({', '.join(processes)} exited)"
        print(f"actorlog: {runtime.lost}; exiting with status {NODE_LOST} in {LOST_GRACE:g} s "
              "for the supervisor to start the service again", file=sys.stderr, flush=True)
        time.sleep(LOST_GRACE)
        _stop_within(10.0, NODE_LOST)

    watch(lost)


class _Import(threading.Thread):
    """Imports serve_app (the app and every family) beside ray.init."""

    def __init__(self) -> None:
        super().__init__(name="actorlog-import", daemon=True)
        self.module: ModuleType | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            import serve_app

            self.module = serve_app
        except BaseException as exc:  # re-raised in the main thread
            self.error = exc

    def result(self) -> Any:
        self.join()
        if self.error is not None:
            raise self.error
        return self.module


def _avatar_key(families: list[Any], data_dir: str) -> str | None:
    """The avatar family's API key when none is configured: made before any replica reads
    it, so the scripts of its document work after one copy and paste."""
    if not any(f.name == "avatar" for f in families):
        return None
    from api.avatar.keys import ensure_embedded_key

    return ensure_embedded_key(data_dir)


def _operator_token(settings: Settings) -> tuple[str, str]:
    """The operator token of the data directory, made at the first start, and its file
    (api/operator.py, imported by then with the app)."""
    from api.operator import TOKEN_FILE, ensure_token

    return ensure_token(settings.data_dir), os.path.join(settings.data_dir, TOKEN_FILE)


def main() -> None:
    import ray

    try:  # the platform's settings now; the families' once imported (serve_app checks them)
        settings = Settings.from_env()
        service = ServiceSettings.load()
    except ConfigError as exc:
        raise SystemExit(f"actorlog: not started: {exc}") from None
    host, port, mode = service.host, service.port, service.http_mode
    os.makedirs(settings.data_dir, exist_ok=True)
    address = service.ray_address or "local"
    avatar: dict[str, str | None] = {}  # its key, made once the families are imported

    def announce() -> None:
        print(f"actorlog is serving on http://{host}:{port}  (data: {settings.data_dir})",
              flush=True)
        if not service.admin_token:  # made now if this is the first start
            token, path = _operator_token(settings)
            print(f"operator token: {token}  (for /v1/actors, /v1/runtime, /metrics; kept in "
                  f"{path}; ACTORLOG_ADMIN_TOKEN sets your own)", flush=True)
        if avatar.get("key"):
            print(f"avatar sessions: API key {avatar['key']}  (made at the first start, kept in "
                  f"{os.path.join(settings.data_dir, 'avatar_api_key')}; set AVATAR_API_KEYS "
                  "to use your own)", flush=True)

    if mode == "driver":
        loading = _Import()
        loading.start()
        ray.init(address=address, namespace=settings.namespace, include_dashboard=False,
                 log_to_driver=False)
        try:
            serve_app = loading.result()
        except ConfigError as exc:
            print(f"actorlog: not started: {exc}", file=sys.stderr, flush=True)
            _stop_within(5.0, 2)
        avatar["key"] = _avatar_key(serve_app.FAMILIES, settings.data_dir)
        from api import http_server
        from api.runtime import Runtime, install

        runtime = Runtime.start(serve_app.families.settings_for(settings, serve_app.FAMILIES))
        install(runtime)
        if address == "local":  # its own node: it can see it die
            _exit_when_the_node_is_lost(runtime)
        http_server.serve_until_signalled(serve_app.api, host, port, announce)
        _stop_within(5.0) if address == "local" else ray.shutdown()
        return
    _serve(settings, mode, address, host, port, announce, avatar)


def _serve(settings: Settings, mode: str, address: str, host: str, port: int,
           announce: Any, avatar: dict[str, str | None]) -> None:
    """The Serve-deployed modes. serve_app is imported before Ray starts: it sets the Serve
    variables that Ray's processes must inherit."""
    import ray
    import serve_app
    from ray import serve

    avatar["key"] = _avatar_key(serve_app.FAMILIES, settings.data_dir)

    if mode == "replica":
        # HTTP served by uvicorn inside the ingress replica (api/http_server.py); Serve's own
        # path stays reachable one port up, through its proxy.
        http_bind: str | None = f"{host}:{port}"
        serve_port = port + 1
    else:
        http_bind, serve_port = None, port
    if serve_app.DIRECT_INGRESS:
        # Under direct ingress the replica serves HTTP itself from the first free port of its
        # range; Serve 2.60 still starts a proxy (on http_options.port), so the proxy goes just
        # past that range and the replica takes serve_port.
        set_default("RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT", str(serve_port))
        set_default("RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT", str(serve_port + 100))
        proxy_port = serve_port + 101
    else:
        proxy_port = serve_port
    ray.init(address=address, namespace=settings.namespace, include_dashboard=False,
             log_to_driver=False)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    serve.start(http_options={"host": host, "port": proxy_port})
    serve.run(serve_app.Ingress.bind(settings.to_dict(), http_bind), name="actorlog",
              route_prefix="/")
    announce()
    stop.wait()
    if address == "local":
        _stop_within(5.0)
    else:  # a cluster we joined: take our application off it, leave the rest running
        serve.delete("actorlog")
        ray.shutdown()


if __name__ == "__main__":
    main()
