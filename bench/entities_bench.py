"""Entities inside one host: memory per resident entity, and activations (snapshot + tail).

Measured on an EntityTable in this process: it is exactly what an ActorHost runs, without the
Ray hop (the ask latency section measures that)."""

from __future__ import annotations

import asyncio
import gc
import os
import sqlite3
import time

import orjson
import psutil

import actors  # noqa: F401  (registers counter)
from bench.common import report, scratch_dir
from runtime.events import NewEvent
from runtime.host import EntityTable
from runtime.stores.sqlite import SQLiteEventStore


async def _gather_chunks(coros, chunk: int = 512) -> None:
    coros = list(coros)
    for i in range(0, len(coros), chunk):
        await asyncio.gather(*coros[i:i + chunk])


async def resident(n: int) -> tuple[float, float]:
    store = SQLiteEventStore(os.path.join(scratch_dir(), "resident.db"))
    table = EntityTable(store, max_resident=n + 1)
    proc = psutil.Process()
    await table.activate("counter", "warm")
    gc.collect()
    before = proc.memory_info().rss
    t0 = time.perf_counter()
    await _gather_chunks(table.activate("counter", f"r{i}") for i in range(n))
    dt = time.perf_counter() - t0
    gc.collect()
    after = proc.memory_info().rss
    assert table.resident == n + 1
    await store.close()
    return (after - before) / n, n / dt


async def activations(n: int, tail: int = 20, snap_at: int = 100) -> tuple[float, float]:
    path = os.path.join(scratch_dir(), "activate.db")
    store = SQLiteEventStore(path)
    total = snap_at + tail
    for i in range(n):
        stream = f"counter/a{i}"
        await store.append(stream, [NewEvent("added", {"amount": 1}) for _ in range(total)], 0)
        await store.save_snapshot(stream, snap_at, {"total": snap_at, "adds": snap_at, "notes": 0})
    # baseline: the same two reads and the same decoding, as a bare loop
    conn = sqlite3.connect(path)
    t0 = time.perf_counter()
    for i in range(n):
        stream = f"counter/a{i}"
        row = conn.execute("SELECT seq, state FROM snapshots WHERE stream = ? AND seq <= ? "
                           "ORDER BY seq DESC LIMIT 1", (stream, 1 << 62)).fetchone()
        orjson.loads(row[1])
        rows = conn.execute("SELECT seq, type, data, ts, position, idem, meta FROM events WHERE "
                            "stream = ? AND seq >= ? AND seq <= ? ORDER BY seq LIMIT ?",
                            (stream, row[0] + 1, 1 << 62, 100_000)).fetchall()
        [orjson.loads(r[2]) for r in rows]
    base = n / (time.perf_counter() - t0)
    table = EntityTable(store, max_resident=n + 1)
    t0 = time.perf_counter()
    await _gather_chunks(table.activate("counter", f"a{i}") for i in range(n))
    ours = n / (time.perf_counter() - t0)
    assert await table.activate("counter", "a0") == total
    await store.close()
    return ours, base


def run(quick: bool = False) -> None:
    n = 20_000 if quick else 100_000
    per_entity, rate = asyncio.run(resident(n))
    report(f"memory per resident entity ({n:,} in one host)", per_entity / 1024, "KB",
           target="<= 10 KB, >= 100,000 entities")
    ours, base = asyncio.run(activations(2_000 if quick else 5_000))
    report("activations/s (snapshot + 20-event tail)", ours, "act/s", base,
           "bare read+decode loop", ">= 10,000")
