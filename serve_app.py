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

from typing import Any  # noqa: E402

from fastapi import FastAPI  # noqa: E402
from ray import serve  # noqa: E402

from api import log_api, opengpts  # noqa: E402
from api import http_server  # noqa: E402
from api.runtime import Runtime, install  # noqa: E402
from runtime.config import Settings  # noqa: E402
from schemas.log_api import Health  # noqa: E402

api = FastAPI(title="actorlog", version="0.1.0")
api.include_router(log_api.router)
api.include_router(log_api.info_router)
api.include_router(opengpts.router)


@api.get("/health", response_model=Health)
async def health() -> Health:
    """{"status": "ok"}, as the API families' documents have it; /v1/runtime has the details."""
    return Health(status="ok")


@serve.deployment(max_ongoing_requests=1000, ray_actor_options={"num_cpus": 0},
                  logging_config={"enable_access_log": False, "log_level": "WARNING"})
@serve.ingress(api)
class Ingress:
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


app = Ingress.bind()


def main() -> None:
    """Embedded service: local Ray, Serve on 127.0.0.1:PORT, SQLite under ACTORLOG_DATA_DIR."""
    import signal
    import threading

    import ray

    settings = Settings.from_env()
    host = os.environ.get("ACTORLOG_HOST", "127.0.0.1")
    port = int(os.environ.get("ACTORLOG_PORT", "8000"))
    os.makedirs(settings.data_dir, exist_ok=True)
    mode = os.environ.get("ACTORLOG_HTTP_MODE", "replica")
    if mode not in ("replica", "serve"):
        raise SystemExit("ACTORLOG_HTTP_MODE must be 'replica' or 'serve'")
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
    ray.init(namespace=settings.namespace, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": host, "port": proxy_port})
    serve.run(Ingress.bind(settings.to_dict(), http_bind), name="actorlog", route_prefix="/")
    print(f"actorlog is serving on http://{host}:{port}  (data: {settings.data_dir})",
          flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
