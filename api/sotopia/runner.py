"""Batches of Sotopia episodes from a Python program: any Ray driver, embedded (a local Ray and
the SQLite store under ACTORLOG_DATA_DIR) or attached to a running service's Ray
(ACTORLOG_RAY_ADDRESS) and its store (ACTORLOG_STORE_URL).

    from api.sotopia.runner import Simulations
    from schemas.sotopia import BatchSpec

    sims = Simulations.connect()
    sims.start("my-run", BatchSpec(scenarios=["tag:negotiation"], reps=3), concurrency=200)
    for progress in sims.watch("my-run"):
        print(progress)
    rows = sims.results("my-run")          # plain dicts, one per episode
    frame = sims.dataframe("my-run")       # the same as a pandas DataFrame, if pandas is there

The batch runs in its entity, not in this program: a program killed halfway loses nothing,
and ``start`` with the same batch id goes on with the episodes that have no result.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Iterator

from api.runtime import Runtime
from api.settings import ServiceSettings
from api.sotopia import batches, service
from runtime.client import connect
from runtime.config import Settings
from runtime.registry import load_modules
from runtime.stores import open_store
from schemas.sotopia import BatchSpec

__all__ = ["Simulations"]


class Simulations:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._loop = asyncio.new_event_loop()  # the store's connections live on this loop

    @classmethod
    def connect(cls, settings: Settings | None = None) -> "Simulations":
        from api.families import app_settings

        import ray

        settings = settings or app_settings()
        if not ray.is_initialized():  # a Ray of its own unless told to join one, as embedded
            ray.init(address=ServiceSettings.load().ray_address or "local",
                     namespace=settings.namespace, include_dashboard=False,
                     log_to_driver=False)
        load_modules(settings.kind_modules)
        return cls(Runtime(settings, connect(settings), open_store(settings.resolved_store_url)))

    def _run(self, coro: Any) -> Any:
        return self._loop.run_until_complete(coro)

    def start(self, batch_id: str, spec: BatchSpec | None = None,
              concurrency: int | None = None) -> dict[str, Any]:
        """Plan and start the batch (or, with no spec, go on with an existing one); returns its
        progress once the run is in its log ("started": False when a run of it was under way
        already). Without a concurrency: the last run's, else 100."""
        return self._run(batches.start(self.runtime, batch_id, spec, concurrency))

    def progress(self, batch_id: str) -> dict[str, Any]:
        return self._run(batches.progress(self.runtime, batch_id))

    def watch(self, batch_id: str, every: float = 0.5) -> Iterator[dict[str, Any]]:
        """Progress now and then until the batch is no longer running, each with the time
        since watching began and the episodes per second over it."""
        began = time.monotonic()
        first = self.progress(batch_id)
        settled = first["done"] + first["failed"]
        while True:
            p = self.progress(batch_id)
            elapsed = time.monotonic() - began
            rate = (p["done"] + p["failed"] - settled) / elapsed if elapsed > 0 else 0.0
            yield {**p, "elapsed": elapsed, "per_second": rate}
            if p["status"] != "running":
                return
            time.sleep(every)

    def stop(self, batch_id: str) -> dict[str, Any]:
        """Stop the batch and its episodes under way; its progress, once its log says so."""
        return self._run(batches.stop(self.runtime, batch_id, "stopped by its driver"))

    def results(self, batch_id: str) -> list[dict[str, Any]]:
        return self._run(batches.result_rows(self.runtime, batch_id))

    def summary(self, batch_id: str, by_scenario: bool = False) -> list[dict[str, Any]]:
        by = ("model", "scenario") if by_scenario else ("model",)
        return batches.summary(self.results(batch_id), by)

    def dataframe(self, batch_id: str) -> Any:
        import pandas  # optional: only this method needs it

        return pandas.DataFrame(self.results(batch_id))

    def ready(self) -> None:
        """The built-in records seeded (a fresh data directory has none until the service or
        this runs once)."""
        self._run(service.ready(self.runtime))

    def close(self) -> None:
        self._run(self.runtime.store.close())
        self._loop.close()
