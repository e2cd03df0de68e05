"""The SQLite store: the conformance suite, plus what only several processes on one file show."""

from __future__ import annotations

import multiprocessing
import sqlite3

import pytest

from runtime.events import NewEvent
from runtime.stores.base import WrongExpectedVersion
from runtime.stores.sqlite import SQLiteEventStore
from tests.store_contract import EventStoreContract


@pytest.fixture
async def store(tmp_path):
    s = SQLiteEventStore(tmp_path / "events.db")
    yield s
    await s.close()


@pytest.fixture
def reopen(tmp_path):
    async def _reopen():
        return SQLiteEventStore(tmp_path / "events.db")

    return _reopen


class TestSQLiteStore(EventStoreContract):
    pass


def test_durability_settings(tmp_path):
    SQLiteEventStore(tmp_path / "e.db")
    conn = sqlite3.connect(tmp_path / "e.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _contend(path: str, stream: str, rounds: int, worker: int, out) -> None:
    import asyncio

    async def run() -> None:
        store = SQLiteEventStore(path)
        wins = 0
        for _ in range(rounds):
            version = await store.last_version(stream)
            try:
                await store.append(stream, [NewEvent("e", {"w": worker})], version)
                wins += 1
            except WrongExpectedVersion:
                pass
        await store.close()
        out.put(wins)

    asyncio.run(run())


def test_processes_contending_for_one_stream_never_fork_it(tmp_path):
    """Three processes (as three hosts would) race on one stream: the version check runs under
    SQLite's write lock, so every seq has exactly one writer and the log has no gap."""
    import asyncio

    path = str(tmp_path / "shared.db")
    SQLiteEventStore(path)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_contend, args=(path, "x/1", 150, w, out)) for w in range(3)]
    for p in procs:
        p.start()
    wins = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    async def check() -> None:
        store = SQLiteEventStore(path)
        events = await store.read("x/1")
        await store.close()
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert len(events) == sum(wins)
        positions = [e.position for e in events]
        assert len(set(positions)) == len(positions)

    asyncio.run(check())


def _burst(path: str, worker: int, n: int, out) -> None:
    import asyncio

    async def run() -> None:
        store = SQLiteEventStore(path)

        async def one(i: int) -> None:
            await store.append(f"w{worker}/{i % 20}", [NewEvent("e", {"i": i})], -1)

        for start in range(0, n, 50):
            await asyncio.gather(*(one(i) for i in range(start, start + 50)))
        await store.close()
        out.put(n)

    asyncio.run(run())


def test_processes_group_committing_share_one_gap_free_global_log(tmp_path):
    """Each process caches its next global position between its own commits; a commit by
    another process must invalidate that cache (regression: duplicate positions)."""
    import asyncio

    path = str(tmp_path / "shared.db")
    SQLiteEventStore(path)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_burst, args=(path, w, 1000, out)) for w in range(3)]
    for p in procs:
        p.start()
    assert sum(out.get(timeout=120) for _ in procs) == 3000
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    async def check() -> None:
        store = SQLiteEventStore(path)
        log = await store.read_all(1, 10_000)
        await store.close()
        assert [e.position for e in log] == list(range(1, 3001))
        per_stream: dict[str, list[int]] = {}
        for e in log:
            per_stream.setdefault(e.stream, []).append(e.seq)
        assert all(s == list(range(1, len(s) + 1)) for s in per_stream.values())

    asyncio.run(check())
