"""A fresh replica's first list (issue 10, part 2): the OpenGPTs directory over a log of
1,000,000 events of which 1% are assistant and thread events. Before: the whole log read from
position 1 (what api/opengpts/directory.py did). After: the projection runner's filtered read,
from nothing and from a durable checkpoint."""

from __future__ import annotations

import asyncio
import os
import time

from api.opengpts.directory import DirectoryModel
from bench.common import report, scratch_dir
from runtime.events import NewEvent
from runtime.projection import ProjectionRunner
from runtime.stores.sqlite import SQLiteEventStore


async def _fill(store: SQLiteEventStore, total: int) -> None:
    rounds = total // 1000
    for r in range(rounds):  # per 1,000 events: 990 of a counter, 5 assistants, 5 threads
        await store.append(f"counter/noise-{r % 100}",
                           [NewEvent("added", {"n": i, "note": "x" * 40}) for i in range(990)],
                           -1)
        await asyncio.gather(*(
            store.append(f"assistant/a-{r}-{i}", [NewEvent("created", {
                "user_id": f"u{i}", "name": "bot", "config": {}, "public": False,
                "at": "2026-12-01T00:00:00"})], 0) for i in range(5)), *(
            store.append(f"thread/t-{r}-{i}", [NewEvent("created", {
                "user_id": f"u{i}", "assistant_id": f"a-{r}-{i}", "name": "t",
                "metadata": None, "at": "2026-12-01T00:00:00"})], 0) for i in range(5)))


async def _old_way(store: SQLiteEventStore) -> tuple[int, int]:
    """The directory as it was: every event of the log, from position 1, filtered here."""
    model, position, read = DirectoryModel(), 0, 0
    target = await store.last_position()
    while position < target:
        batch = await store.read_all(position + 1, 5000)
        read += len(batch)
        for event in batch:
            if event.stream.partition("/")[0] in model.kinds and event.type in model.types:
                model.apply(event)
        position = batch[-1].position
    return read, len(model.threads)


async def _first_list(store: SQLiteEventStore, threads: int) -> tuple[ProjectionRunner, float]:
    """A replica's first list: its runner, and how long the catch-up took."""
    runner = ProjectionRunner(store, DirectoryModel())
    t0 = time.perf_counter()
    await runner.catch_up()
    seconds = time.perf_counter() - t0
    assert len(runner.projection.threads) == threads
    return runner, seconds


async def _main(quick: bool) -> None:
    total = 100_000 if quick else 1_000_000
    path = os.path.join(scratch_dir(), "events.db")
    store = SQLiteEventStore(path)
    t0 = time.perf_counter()
    await _fill(store, total)
    print(f"# filled {total:,} events in {time.perf_counter() - t0:.1f} s", flush=True)

    t0 = time.perf_counter()
    read_before, threads = await _old_way(store)
    before = time.perf_counter() - t0

    fresh, after = await _first_list(store, threads)
    await fresh.checkpoint_now()
    await store.close()
    store = SQLiteEventStore(path)  # a replica started after the checkpoint was saved
    resumed, from_checkpoint = await _first_list(store, threads)
    await store.close()

    n = f"{total // 1000:,}k"
    for what, unit, before_value, after_values in (
            ("events read", "events", read_before, (fresh.events_read, resumed.events_read)),
            ("time", "ms", before * 1000, (after * 1000, from_checkpoint * 1000))):
        report(f"first list, {n} log: {what} (before)", before_value, unit)
        for how, value in zip(("filtered", "checkpoint"), after_values):
            report(f"first list, {n} log: {what} ({how})", value, unit, before_value,
                   "whole log")


def run(quick: bool = False) -> None:
    asyncio.run(_main(quick))
