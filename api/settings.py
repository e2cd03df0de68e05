"""The service's own settings (runtime/settings.py): where and how it serves HTTP, which
families, who may call from a browser, the operator token, and the bounds of every request.
The embedded service, the Serve application and the edge read them here."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from runtime.settings import Section, environment, set_default

__all__ = ["ServiceSettings", "serve_defaults"]


class ServiceSettings(Section):
    title: ClassVar[str] = "Service"
    host: str = Field("127.0.0.1", validation_alias="ACTORLOG_HOST",
                      description="where the embedded service listens")
    port: int = Field(8000, ge=1, le=65535, validation_alias="ACTORLOG_PORT",
                      description="the embedded service's port",
                      json_schema_extra={"shown": "8000"})
    http_mode: Literal["driver", "replica", "serve"] = Field(
        "driver", validation_alias="ACTORLOG_HTTP_MODE",
        description="who serves HTTP in the embedded service: `driver` (its own process), "
                    "`replica` (uvicorn inside a Serve replica, Serve's path one port up), "
                    "`serve` (Serve's own path)")
    ray_address: str = Field("", validation_alias="ACTORLOG_RAY_ADDRESS",
                             description="join this Ray instead of starting a local one")
    replica_http: str = Field("", validation_alias="ACTORLOG_REPLICA_HTTP",
                              description="`host:port` for uvicorn inside each ingress replica "
                                          "(set by `deploy/serve_config.yaml`)")
    families: str = Field("", validation_alias="ACTORLOG_FAMILIES",
                          description="the API families served, comma-separated (`opengpts`, "
                                      "`agent_chat`, `sotopia`, `avatar`); the platform's "
                                      "routes are always served",
                          json_schema_extra={"shown": "all"})
    cors_origins: str = Field("", validation_alias="ACTORLOG_CORS_ORIGINS",
                              description="browser origins allowed to call every family's "
                                          "routes, comma-separated "
                                          "(`https://app.example.com,http://localhost:3000`), "
                                          "or `*` for any (then without credentials); through "
                                          "Starlette's CORSMiddleware, preflights included",
                              json_schema_extra={"shown": "unset (no CORS headers)"})
    admin_token: str = Field("", validation_alias="ACTORLOG_ADMIN_TOKEN",
                             description="the operator token every caller of `/v1/actors`, "
                                         "`/v1/runtime`, `/metrics` presents",
                             json_schema_extra={"shown": "unset (a random one, made at the "
                                                         "first start and kept in "
                                                         "`$DATA_DIR/operator_token`)"})
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024,
                                validation_alias="ACTORLOG_MAX_BODY_BYTES",
                                description="request bodies (413)",
                                json_schema_extra={"shown": "4 MiB"})
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024,
                                  validation_alias="ACTORLOG_MAX_UPLOAD_BYTES",
                                  description="`POST /ingest` requests (413)",
                                  json_schema_extra={"shown": "20 MiB"})
    max_header_bytes: int = Field(32 * 1024, ge=1024,
                                  validation_alias="ACTORLOG_MAX_HEADER_BYTES",
                                  description="all request headers together (431)",
                                  json_schema_extra={"shown": "32 KiB"})
    max_json_depth: int = Field(64, ge=2, le=10_000, validation_alias="ACTORLOG_MAX_JSON_DEPTH",
                                description="JSON nesting (422)")
    max_ws_frame_bytes: int = Field(1024 * 1024, ge=1024,
                                    validation_alias="ACTORLOG_MAX_WS_FRAME_BYTES",
                                    description="WebSocket frames a client sends: a larger one "
                                                "gets the family's error frame and the socket "
                                                "stays open; past 4x this the socket is closed "
                                                "(1009)", json_schema_extra={"shown": "1 MiB"})
    url: str = Field("", validation_alias="ACTORLOG_URL",
                     description="the running service `actorlog simulate` and "
                                 "`python -m api.sotopia.load` talk to (`--url`); unset: "
                                 "simulate runs its own runtime, load uses "
                                 "http://127.0.0.1:8000")

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for origin in (o.strip().rstrip("/") for o in value.split(",") if o.strip()):
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], or *)")
        return value

    def origins(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    def family_names(self) -> list[str]:
        return [n.strip() for n in self.families.split(",") if n.strip()]


def serve_defaults() -> bool:
    """Ray Serve's variables this service runs with (README, "Serving path"), set before Ray
    starts so that its controller and replicas inherit them, unless set already; whether
    direct ingress is on."""
    for name, value in {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
                        "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
                        "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
                        "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0"}.items():
        set_default(name, value)
    return environment("RAY_SERVE_ENABLE_DIRECT_INGRESS") == "1"
