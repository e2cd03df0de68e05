"""The Sotopia family (seed 000, ../shared/specs/sotopia.md): agents, scenarios,
relationships and evaluation dimensions as records, episodes scored with SOTOPIA-Eval, and the
simulation WebSocket. Each record is a profile entity (actors/sotopia/profiles.py), each
episode an episode entity (actors/sotopia/episode.py)."""

from api.family import Family
from api.sotopia import data, routes, socket
from llm.service import MODEL_PORT
from runtime.services import ENTITIES

__all__ = ["FAMILY"]

FAMILY = Family("sotopia", (routes.router, socket.router),
                kind_modules=("actors.sotopia.profiles", "actors.sotopia.episode",
                              "actors.sotopia.batch"),
                services=(MODEL_PORT, ENTITIES), startup=data.start_in_background)
