"""What an API family declares, so the application can compose it: its routers, the modules
of the entity kinds it drives, and the services its kinds' handlers use. The runtime never sees
this: the application turns the composed families into Settings (kind modules, service
factories) for every host and replica, and their routers into one FastAPI app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from fastapi import APIRouter

from api.background import Work
from runtime.settings import Section

__all__ = ["Family"]


@dataclass(frozen=True)
class Family:
    name: str
    routers: tuple[APIRouter, ...]
    #: what the landing page (GET /) calls it and says of it, and the tag of its routes in
    #: the API document (its link goes there)
    title: str = ""
    summary: str = ""
    doc_tag: str = ""
    #: modules that register the family's entity kinds (imported by every host)
    kind_modules: tuple[str, ...] = ()
    #: "module:function" factories of services its kinds use (see runtime/services.py)
    services: tuple[str, ...] = ()
    #: startup and periodic work the platform runs beside the server (api/background.py):
    #: started with it, logged, run again after a failure, stopped with it
    background: tuple[Work, ...] = ()
    #: the family's settings (runtime/settings.py): checked when the service starts, and
    #: listed in the README's configuration table
    settings: type[Section] | tuple[type[Section], ...] | None = None
    #: paths (prefixes) whose errors the edge writes in the family's own shape, and that
    #: shape: ``error_body(status, message, request_id)``; FastAPI's {"detail"} otherwise
    error_paths: tuple[str, ...] = ()
    error_body: Callable[[int, str, str], dict[str, Any]] | None = None
