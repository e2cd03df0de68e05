"""The Ray Serve application: one FastAPI ingress composing a router per API family.

    serve run serve_app:app            # Ray Serve's own way (port 8000)
    python serve_app.py                # embedded: starts local Ray and Serve, prints the URL

Data lives under ACTORLOG_DATA_DIR (default ./data), or in PostgreSQL (ACTORLOG_STORE_URL).
Ingress runs with Serve's direct ingress and same-loop settings (see README, "Serving path", for
the measurements behind the choice). On a cluster (deploy/serve_config.yaml) each replica also
serves HTTP from uvicorn on ACTORLOG_REPLICA_HTTP, beside Serve's proxy on every node.
"""

from __future__ import annotations

import os

# Must be in the environment before Ray starts so the controller and replicas inherit them.
for _name, _value in {
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
    "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
    "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0",
}.items():
    os.environ.setdefault(_name, _value)
DIRECT_INGRESS = os.environ["RAY_SERVE_ENABLE_DIRECT_INGRESS"] == "1"

import functools  # noqa: E402
from typing import Any  # noqa: E402

from fastapi import FastAPI  # noqa: E402
from ray import serve  # noqa: E402

from api import http_server, log_api, metrics, opengpts  # noqa: E402
from api.edge import EdgeMiddleware, detail_responses  # noqa: E402
from api.operator import ENV as ADMIN_TOKEN_ENV, admin_token  # noqa: E402
from api.runtime import Runtime, install  # noqa: E402
from runtime.config import Settings  # noqa: E402
from schemas.log_api import Health  # noqa: E402

api = FastAPI(title="actorlog", version="0.1.0")
api.add_middleware(EdgeMiddleware)
api.include_router(log_api.router)
api.include_router(log_api.info_router)
api.include_router(log_api.tail_router)
api.include_router(metrics.router)
api.include_router(opengpts.router)


@api.get("/health", response_model=Health, responses=detail_responses())
async def health() -> Health:
    """{"status": "ok"}, as the API families' documents have it; /v1/runtime has the details."""
    return Health(status="ok")


class _Ingress:
    """The Serve ingress replica: it holds the runtime and, when asked, serves HTTP from
    uvicorn inside itself as well."""

    def __init__(self, settings: dict[str, Any] | None = None,
                 http_bind: str | None = None) -> None:
        base = Settings.from_env()
        if settings:
            base = Settings.from_dict({**base.to_dict(), **settings})
        install(Runtime.start(base))
        http_bind = http_bind or os.environ.get("ACTORLOG_REPLICA_HTTP") or None
        if http_bind:  # "host:port": also serve HTTP from uvicorn inside this replica
            host, _, port = http_bind.rpartition(":")
            self._http = http_server.start_in_thread(api, host, int(port))


@functools.cache
def _deployment() -> Any:
    """Built on first use: wrapping the app as a Serve deployment pickles all of it (over a
    second here), which the embedded service, serving from its own process, never needs."""
    return serve.deployment(
        name="Ingress", max_ongoing_requests=1000, ray_actor_options={"num_cpus": 0},
        logging_config={"enable_access_log": False, "log_level": "WARNING"},
    )(serve.ingress(api)(_Ingress))


def __getattr__(name: str) -> Any:
    """``Ingress`` (the deployment) and ``app`` (its bound application, what ``serve run
    serve_app:app`` and deploy/serve_config.yaml name), built lazily."""
    if name == "Ingress":
        return _deployment()
    if name == "app":
        return _deployment().bind()
    raise AttributeError(name)


def _stop_within(seconds: float) -> None:
    """Stop the embedded service: Ray's shutdown ends every process this service started
    (GCS, raylet, Serve, the replica, the hosts). Serve's own graceful shutdown waited 30 s for
    its controller; nothing needs it here, because every acknowledged write is already durable
    (fsynced before its answer) and a run cut short is closed as interrupted at the next start.
    A watchdog makes sure the process ends even if Ray hangs."""
    import threading

    import ray

    watchdog = threading.Timer(seconds, lambda: os._exit(0))
    watchdog.daemon = True
    watchdog.start()
    ray.shutdown()


def main() -> None:
    """Embedded service: its own local Ray, SQLite under ACTORLOG_DATA_DIR, HTTP on
    127.0.0.1:PORT. ACTORLOG_RAY_ADDRESS joins an existing Ray instead (never found by chance:
    a Ray cluster running on the same machine is not joined unless named).

    ACTORLOG_HTTP_MODE picks who serves HTTP:
    - "driver" (default): uvicorn in this process, over the actor hosts. Serve's controller,
      proxy and replica are three processes (~290 MB PSS) and ~10 s of start-up that a
      single-node service does not need (README, "Memory and start-up").
    - "replica": Serve deploys the ingress and uvicorn runs inside its replica; Serve's own
      path answers one port up.
    - "serve": Serve's own HTTP path on PORT.
    """
    import signal
    import threading

    import ray

    settings = Settings.from_env()
    host = os.environ.get("ACTORLOG_HOST", "127.0.0.1")
    port = int(os.environ.get("ACTORLOG_PORT", "8000"))
    os.makedirs(settings.data_dir, exist_ok=True)
    mode = os.environ.get("ACTORLOG_HTTP_MODE", "driver")
    if mode not in ("driver", "replica", "serve"):
        raise SystemExit("ACTORLOG_HTTP_MODE must be 'driver', 'replica' or 'serve'")
    address = os.environ.get("ACTORLOG_RAY_ADDRESS") or "local"

    def announce() -> None:
        print(f"actorlog is serving on http://{host}:{port}  (data: {settings.data_dir})",
              flush=True)
        if admin_token() is None:
            print(f"operator APIs (/v1/actors, /v1/runtime, /metrics) answer loopback clients "
                  f"only; set {ADMIN_TOKEN_ENV} to require a token instead", flush=True)

    if mode == "driver":
        ray.init(address=address, namespace=settings.namespace, include_dashboard=False,
                 log_to_driver=False)
        install(Runtime.start(settings))
        http_server.serve_until_signalled(api, host, port, announce)
        _stop_within(5.0) if address == "local" else ray.shutdown()
        return
    if mode == "replica":
        # HTTP served by uvicorn inside the ingress replica (api/http_server.py); Serve's own
        # path stays reachable one port up, through its proxy.
        http_bind: str | None = f"{host}:{port}"
        serve_port = port + 1
    else:
        http_bind, serve_port = None, port
    if DIRECT_INGRESS:
        # Under direct ingress the replica serves HTTP itself from the first free port of its
        # range; Serve 2.60 still starts a proxy (on http_options.port), so the proxy goes just
        # past that range and the replica takes serve_port.
        os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT", str(serve_port))
        os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT", str(serve_port + 100))
        proxy_port = serve_port + 101
    else:
        proxy_port = serve_port
    ray.init(address=address, namespace=settings.namespace, include_dashboard=False,
             log_to_driver=False)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    serve.start(http_options={"host": host, "port": proxy_port})
    serve.run(_deployment().bind(settings.to_dict(), http_bind), name="actorlog",
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
