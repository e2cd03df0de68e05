"""What the Sotopia family's lists and searches read: every live record of each profile kind,
and every episode's tag and status in the order the episodes started. A projection of the
records' created/updated/deleted and the episodes' life events (never their turns), run by
runtime/projection.py: it reads only those events, resumes from its durable checkpoint, and
catches up to the store's last position before it answers.
"""

from __future__ import annotations

from typing import Any, Iterable

from actors.sotopia.batch import BATCH
from actors.sotopia.episode import EPISODE
from actors.sotopia.profiles import KINDS, SCENARIO
from runtime.events import Event, split_stream_id
from runtime.projection import Projection, ProjectionRunner, one_per_store
from runtime.stores.base import EventStore

__all__ = ["Directory", "DirectoryModel", "directory_for"]

#: episode events that change what the directory says of an episode
_EPISODE_STATUS = {"started": "running", "terminated": "evaluating", "evaluated": "completed",
                   "evaluation_failed": "evaluation_failed", "stopped": "stopped",
                   "failed": "failed", "cut": "cut", "resumed": "running",
                   "awaiting_human": "awaiting_human", "human_turn": "running",
                   "forked": "forked"}


_BATCH_STATUS = {"run_started": "running", "run_finished": "finished", "run_cut": "cut",
                 "run_stopped": "stopped"}


class DirectoryModel(Projection):
    name = "sotopia-directory"
    kinds = (*KINDS, EPISODE, BATCH)
    types = ("created", "updated", "deleted", *_EPISODE_STATUS, *_BATCH_STATUS)
    version = 3

    def __init__(self) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in KINDS}
        #: episode id -> {"tag", "status"}, in the order the episodes started
        self.episodes: dict[str, dict[str, Any]] = {}
        #: batch id -> its status (running, finished, cut, stopped), in the order they started
        self.batches: dict[str, str] = {}

    def apply(self, event: Event) -> None:
        kind, entity_id = split_stream_id(event.stream)
        if kind == BATCH:
            self.batches[entity_id] = _BATCH_STATUS[event.type]
        elif kind == EPISODE:
            if event.type == "deleted":
                self.episodes.pop(entity_id, None)
            elif event.type == "started":
                self.episodes[entity_id] = {"tag": event.data["setup"].get("tag", ""),
                                            "status": "running"}
            elif entity_id in self.episodes:
                self.episodes[entity_id]["status"] = _EPISODE_STATUS[event.type]
        elif event.type == "deleted":
            self.records[kind].pop(entity_id, None)
        else:
            self.records[kind][entity_id] = event.data["record"]

    def dump(self) -> Any:
        return {"records": self.records, "episodes": self.episodes, "batches": self.batches}

    def load(self, data: Any) -> None:
        self.records = {k: dict(data["records"].get(k, {})) for k in KINDS}
        self.episodes, self.batches = data["episodes"], data["batches"]


def _words(text: str) -> set[str]:
    return set("".join(c.lower() if c.isalnum() else " " for c in text).split())


class Directory:
    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.model = DirectoryModel()
        self.runner = ProjectionRunner(store, self.model)

    async def catch_up(self) -> "Directory":
        await self.runner.catch_up()
        return self

    def records(self, kind: str) -> list[dict[str, Any]]:
        return list(self.model.records[kind].values())

    def record(self, kind: str, pk: str) -> dict[str, Any] | None:
        return self.model.records[kind].get(pk)

    def where(self, kind: str, **equal: Any) -> list[dict[str, Any]]:
        return [r for r in self.model.records[kind].values()
                if all(r.get(k) == v for k, v in equal.items())]

    def scenarios_tagged(self, keyword: str) -> list[dict[str, Any]]:
        """Scenarios a tag search finds: the tag itself, or every word of ``keyword`` among
        the words of a scenario's tags, codename or text (a tag is a keyword, as the seed
        intends)."""
        wanted = _words(keyword)

        def words(s: dict[str, Any]) -> set[str]:
            return _words(" ".join((s.get("tag", ""), s.get("codename", ""),
                                    s.get("scenario", ""))))

        return [s for s in self.model.records[SCENARIO].values()
                if s.get("tag") == keyword or (wanted and wanted <= words(s))]

    def episodes(self, tag: str | None = None) -> list[str]:
        """Episode ids, newest first."""
        ids: Iterable[str] = reversed(self.model.episodes)
        if tag is not None:
            ids = (i for i in ids if self.model.episodes[i]["tag"] == tag)
        return list(ids)

    def batches_in(self, *statuses: str) -> list[str]:
        return [i for i, status in self.model.batches.items() if status in statuses]

    def episodes_in(self, *statuses: str) -> list[str]:
        return [i for i, e in self.model.episodes.items() if e["status"] in statuses]


def directory_for(store: EventStore) -> Directory:
    """This process's directory over ``store``."""
    return one_per_store("sotopia-directory", store, Directory)
