"""The lists (GET /assistants/, /assistants/public/, /threads/) and the run -> thread index of
POST /runs/feedback: a projection of the header events (created, updated, deleted) and
run_started of assistant and thread streams, run by runtime/projection.py. It reads only those
events (the store's filtered read) and resumes from its durable checkpoint, and it catches up to
the store's last position before it answers, so a list always shows what was acknowledged
before the request. The log is the only record: the projection is always rebuildable.
"""

from __future__ import annotations

from typing import Any

from runtime.events import Event, split_stream_id
from runtime.projection import Projection, ProjectionRunner, one_per_store
from runtime.stores.base import EventStore

__all__ = ["Directory", "DirectoryModel", "directory_for"]


class DirectoryModel(Projection):
    name = "opengpts-directory"
    kinds = ("assistant", "thread")
    types = ("created", "updated", "deleted", "run_started")
    version = 1

    def __init__(self) -> None:
        self.assistants: dict[str, dict[str, Any]] = {}
        self.threads: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, str] = {}  # run id -> thread id (POST /runs/feedback names a run)

    def apply(self, event: Event) -> None:
        kind, entity_id = split_stream_id(event.stream)
        table = self.assistants if kind == "assistant" else self.threads
        if event.type == "run_started":
            self.runs[event.data["run_id"]] = entity_id
        elif event.type == "deleted":
            table.pop(entity_id, None)
        else:
            table[entity_id] = event.data

    def dump(self) -> Any:
        return {"assistants": self.assistants, "threads": self.threads, "runs": self.runs}

    def load(self, data: Any) -> None:
        self.assistants, self.threads, self.runs = (
            data["assistants"], data["threads"], data["runs"])


class Directory:
    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.model = DirectoryModel()
        self.runner = ProjectionRunner(store, self.model)

    async def catch_up(self) -> None:
        await self.runner.catch_up()

    def assistants_of(self, user_id: str) -> list[tuple[str, dict[str, Any]]]:
        return [(i, d) for i, d in self.model.assistants.items() if d["user_id"] == user_id]

    def public_assistants(self) -> list[tuple[str, dict[str, Any]]]:
        return [(i, d) for i, d in self.model.assistants.items() if d["public"]]

    def threads_of(self, user_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The user's threads; one whose assistant was deleted names none (null), as
        OpenGPTs' foreign key leaves it, so clients offer to re-attach it."""
        assistants = self.model.assistants
        return [(i, {**d, "assistant_id": d["assistant_id"]
                     if d["assistant_id"] in assistants else None})
                for i, d in self.model.threads.items() if d["user_id"] == user_id]

    def thread_of_run(self, run_id: str) -> str | None:
        return self.model.runs.get(run_id)


def directory_for(store: EventStore) -> Directory:
    """This process's directory over ``store``."""
    return one_per_store("opengpts-directory", store, Directory)
