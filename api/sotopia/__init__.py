"""The Sotopia family (seed 000, ../shared/specs/sotopia.md): agents, scenarios,
relationships and evaluation dimensions as records, episodes scored with SOTOPIA-Eval, batches
of them, and the simulation WebSocket.

Kinds: actors/sotopia/ (profiles, episode, batch; rules in social.py). Service: service.py and
batches.py (no HTTP; the SDK in runner.py and the command line call them). Edge: routes.py,
socket.py, views.py (wire models from schemas/sotopia.py). Settings: settings.py."""

from api.background import Work
from api.family import Family
from api.sotopia import routes, service, socket
from api.sotopia.settings import SotopiaSettings
from llm.service import MODEL_PORT
from runtime.services import ENTITIES

__all__ = ["FAMILY"]

FAMILY = Family(
    "sotopia", (routes.router, socket.router), title="Sotopia",
    summary="social simulation: agents, scenarios, episodes scored with SOTOPIA-Eval, batches",
    doc_tag="sotopia",
    kind_modules=("actors.sotopia.profiles", "actors.sotopia.episode", "actors.sotopia.batch"),
    services=(MODEL_PORT, ENTITIES), settings=SotopiaSettings,
    background=(
        # the built-in records, before a first request needs them
        Work("sotopia: seeding", service.ready),
        # episodes and batches a stopped service or a dead host left under way go on
        Work("sotopia: the resume sweep", service.resume_stalled,
             every=lambda rt: SotopiaSettings.load(rt.settings.options).sweep_seconds),
    ))
