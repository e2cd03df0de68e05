"""Durable appends with group commit, and the replay of one long stream."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time

import orjson

from bench.common import report, scratch_dir
from runtime.events import NewEvent
from runtime.stores.base import EventStore
from runtime.stores.sqlite import SQLiteEventStore

STREAMS = 1_000
WRITERS = 64
PAYLOAD = {"role": "user", "text": "hello there, how are you today?", "n": 0}


def raw_batched_inserts(path: str, total: int, batch: int) -> float:
    """The baseline: the same rows inserted by a bare loop, one transaction (one fsync) per
    batch of ``batch`` rows, WAL + synchronous=FULL, no concurrency machinery at all."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE ev (position INTEGER PRIMARY KEY, stream TEXT, seq INTEGER, "
                 "type TEXT, data BLOB, ts REAL, UNIQUE(stream, seq))")
    seqs = [0] * STREAMS
    t0 = time.perf_counter()
    pos = 0
    for start in range(0, total, batch):
        rows = []
        for i in range(start, min(start + batch, total)):
            s = i % STREAMS
            seqs[s] += 1
            pos += 1
            rows.append((pos, f"s/{s}", seqs[s], "e", orjson.dumps(PAYLOAD), time.time()))
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO ev VALUES (?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    dt = time.perf_counter() - t0
    conn.close()
    return total / dt


async def appends_rate(store: EventStore, total: int, writers: int = WRITERS) -> float:
    """Durable appends/s: ``writers`` concurrent writers, one event per append, each writer
    owning its share of 1,000 streams (so versions are known and nothing conflicts).
    Closes the store."""
    per_writer = total // writers
    versions = [0] * STREAMS

    async def writer(w: int) -> None:
        mine = list(range(w, STREAMS, writers))
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


async def group_commit_appends(path: str, total: int, writers: int = WRITERS) -> float:
    return await appends_rate(SQLiteEventStore(path), total, writers)


async def replay_rate(store: EventStore, n: int) -> float:
    """Write one n-event stream, then time reading it back and folding it. Closes the store."""
    from actors.counter import counter  # a fold that touches every event

    for start in range(0, n, 1000):
        await store.append("long/1", [NewEvent("added", {**PAYLOAD, "amount": 1, "n": i})
                                      for i in range(start, start + 1000)], start)
    t0 = time.perf_counter()
    events = await store.read("long/1", 1, None, n)
    counter.fold(counter.initial_state(), events)
    rate = len(events) / (time.perf_counter() - t0)
    assert len(events) == n
    await store.close()
    return rate


def raw_replay(path: str, n: int) -> float:
    """The replay baseline: fetch the same rows and decode each payload, nothing else."""
    conn = sqlite3.connect(path)
    t0 = time.perf_counter()
    rows = conn.execute("SELECT seq, type, data, ts, position, idem, meta FROM events "
                        "WHERE stream = ? ORDER BY seq", ("long/1",)).fetchall()
    decoded = [orjson.loads(r[2]) for r in rows]
    rate = len(decoded) / (time.perf_counter() - t0)
    conn.close()
    assert len(decoded) == n
    return rate


async def replay_one_stream(path: str, n: int) -> tuple[float, float]:
    ours = await replay_rate(SQLiteEventStore(path), n)
    return ours, raw_replay(path, n)


def run(quick: bool = False) -> None:
    d = scratch_dir()
    total = 64_000 if quick else 200_000
    base = raw_batched_inserts(os.path.join(d, "raw.db"), total, WRITERS)
    ours = asyncio.run(group_commit_appends(os.path.join(d, "gc.db"), total))
    report("durable appends/s (1k streams, 64 writers)", ours, "events/s", base,
           "raw batched SQLite loop", ">= 50,000 and >= 0.4x")
    # context: more concurrent writers make bigger group commits
    wide = asyncio.run(group_commit_appends(os.path.join(d, "gc256.db"), total, 256))
    report("durable appends/s (1k streams, 256 writers)", wide, "events/s", base,
           "raw batched SQLite loop (64/batch)")
    n = 100_000
    ours, base = asyncio.run(replay_one_stream(os.path.join(d, "replay.db"), n))
    report("replay of one 100,000-event stream", ours, "events/s", base,
           "raw fetch + orjson decode", ">= 500,000")
