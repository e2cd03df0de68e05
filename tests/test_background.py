"""The platform's background work (api/background.py): a family's startup and periodic work
runs, is logged and run again after a failure, repeats at its period, and stops with the
server."""

from __future__ import annotations

import asyncio
import logging

from api import background
from api.background import Work


def test_work_runs_again_after_a_failure_then_at_its_period(monkeypatch, caplog):
    monkeypatch.setattr(background, "RETRY_FIRST", 0.01)
    runs: list[str] = []

    async def flaky(rt: object) -> None:
        runs.append("run")
        if len(runs) <= 2:
            raise RuntimeError(f"failure {len(runs)}")

    async def main() -> None:
        tasks = background.run_all([Work("test: flaky", flaky, every=lambda rt: 0.02)],
                                   object(), lambda: True)
        while len(runs) < 5:
            await asyncio.sleep(0.01)
        await background.stop_all(tasks)
        assert all(t.done() for t in tasks)
        count = len(runs)
        await asyncio.sleep(0.1)
        assert len(runs) == count  # stopped means stopped

    with caplog.at_level(logging.ERROR, logger="ray.serve"):
        asyncio.run(main())
    failures = [r for r in caplog.records if "test: flaky failed" in r.getMessage()]
    assert len(failures) == 2 and failures[0].exc_info is not None


def test_startup_work_runs_once_and_work_of_a_replaced_runtime_stops():
    once: list[object] = []
    periodic: list[object] = []
    serving = {"yes": True}

    async def record_once(rt: object) -> None:
        once.append(rt)

    async def record(rt: object) -> None:
        periodic.append(rt)

    async def main() -> None:
        rt = object()
        tasks = background.run_all([Work("once", record_once),
                                    Work("every", record, every=lambda rt: 0.01),
                                    Work("zero", record_once, every=lambda rt: 0)],
                                   rt, lambda: serving["yes"])
        await asyncio.sleep(0.05)
        serving["yes"] = False  # the process's runtime was replaced: the old one's work ends
        await asyncio.sleep(0.05)
        assert all(t.done() for t in tasks)
        assert once == [rt, rt] and len(periodic) >= 2

    asyncio.run(main())
