"""The PostgreSQL store on this box (pgserver's PostgreSQL 16, fsync on): group-commit appends
and a long replay, each against the SQLite store measured in the same run."""

from __future__ import annotations

import asyncio
import os

from bench.common import report, scratch_dir
from bench.store_bench import PAYLOAD, group_commit_appends
from runtime.events import NewEvent
from runtime.stores.postgres import PostgresEventStore


async def _pg_appends(dsn: str, total: int, writers: int = 64) -> float:
    import time

    store = PostgresEventStore(dsn)
    per_writer = total // writers
    versions = [0] * 1000

    async def writer(w: int) -> None:
        mine = list(range(w, 1000, writers))
        for i in range(per_writer):
            s = mine[i % len(mine)]
            await store.append(f"s/{s}", [NewEvent("e", PAYLOAD)], versions[s])
            versions[s] += 1

    await store.append("warm/up", [NewEvent("e", PAYLOAD)], 0)
    t0 = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    dt = time.perf_counter() - t0
    await store.close()
    return per_writer * writers / dt


async def _pg_replay(dsn: str, n: int) -> float:
    import time

    from actors.counter import counter

    store = PostgresEventStore(dsn)
    for start in range(0, n, 1000):
        await store.append("long/1", [NewEvent("e", {**PAYLOAD, "n": i})
                                      for i in range(start, start + 1000)], start)
    t0 = time.perf_counter()
    events = await store.read("long/1", 1, None, n)
    counter.fold(counter.initial_state(), events)
    rate = len(events) / (time.perf_counter() - t0)
    await store.close()
    return rate


def run(quick: bool = False) -> None:
    import pgserver

    d = scratch_dir()
    server = pgserver.get_server(os.path.join(d, "pg"), cleanup_mode="delete")
    try:
        dsn = server.get_uri()
        total = 32_000 if quick else 96_000
        sqlite = asyncio.run(group_commit_appends(os.path.join(d, "gc.db"), total))
        pg = asyncio.run(_pg_appends(dsn, total))
        report("PostgreSQL durable appends/s (64 writers)", pg, "events/s", sqlite,
               "SQLite store, same run")
        from bench.store_bench import replay_one_stream

        sqlite_replay, _ = asyncio.run(replay_one_stream(os.path.join(d, "r.db"), 100_000))
        report("PostgreSQL replay of a 100,000-event stream",
               asyncio.run(_pg_replay(dsn, 100_000)), "events/s", sqlite_replay,
               "SQLite store, same run")
    finally:
        server.cleanup()
