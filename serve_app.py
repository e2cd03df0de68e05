"""The Ray Serve application: one FastAPI ingress composing the configured API families
(api/families.py: ACTORLOG_FAMILIES, all by default) beside the platform's own routes.

    serve run serve_app:app            # Ray Serve's own way (port 8000)
    python embedded.py                 # the embedded service (embedded.py), prints the URL

Data lives under ACTORLOG_DATA_DIR (default ./data), or in PostgreSQL (ACTORLOG_STORE_URL).
Ingress runs with Serve's direct ingress and same-loop settings (see README, "Serving path", for
the measurements behind the choice). On a cluster (deploy/serve_config.yaml) each replica also
serves HTTP from uvicorn on ACTORLOG_REPLICA_HTTP, beside Serve's proxy on every node.
"""

from __future__ import annotations

from api.settings import ServiceSettings, serve_defaults

# Must be in the environment before Ray starts so the controller and replicas inherit them.
DIRECT_INGRESS = serve_defaults()

import functools  # noqa: E402
from typing import Any  # noqa: E402

from api import families, http_server  # noqa: E402
from api.runtime import Runtime, current, install  # noqa: E402
from runtime.config import Settings  # noqa: E402

FAMILIES = families.configured()
families.check_settings(FAMILIES)  # a bad value stops the start, naming its variable
api = families.build_app(FAMILIES)


class _Ingress:
    """The Serve ingress replica: it holds the runtime and, when asked, serves HTTP from
    uvicorn inside itself as well."""

    def __init__(self, settings: dict[str, Any] | None = None,
                 http_bind: str | None = None) -> None:
        base = Settings.from_env()
        if settings:
            base = Settings.from_dict({**base.to_dict(), **settings})
        install(Runtime.start(families.settings_for(base, FAMILIES)))
        http_bind = http_bind or ServiceSettings.load().replica_http or None
        if http_bind:  # "host:port": also serve HTTP from uvicorn inside this replica
            host, _, port = http_bind.rpartition(":")
            self._http = http_server.start_in_thread(api, host, int(port))

    async def check_health(self) -> None:
        """Serve's health check of the replica says what /health says: a replica whose hosts
        (or their stores) do not answer is unhealthy (Serve restarts it after its failure
        threshold), never write-dead behind a green check."""
        problems = await current().problems()
        if problems:
            raise RuntimeError("; ".join(problems))


@functools.cache
def _deployment() -> Any:
    """Built on first use: wrapping the app as a Serve deployment pickles all of it (over a
    second here), which the embedded service, serving from its own process, never needs;
    nor does it need ray.serve itself (0.5 s of imports beside ray.init at every start)."""
    from ray import serve

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


if __name__ == "__main__":  # the embedded service; embedded.py starts it faster
    import embedded

    embedded.main()
