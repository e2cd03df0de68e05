"""The PostgreSQL store: the same conformance suite, unchanged, against a real PostgreSQL 16
(pgserver starts it in a temporary directory), plus what only a server database shows."""

from __future__ import annotations

import asyncio
import multiprocessing
import pytest

from runtime.events import NewEvent
from runtime.stores.base import WrongExpectedVersion
from runtime.stores.postgres import PostgresEventStore
from tests.store_contract import EventStoreContract


@pytest.fixture
async def store(pg_dsn):
    s = PostgresEventStore(pg_dsn)
    yield s
    await s.close()


@pytest.fixture
def reopen(pg_dsn):
    async def _reopen():
        return PostgresEventStore(pg_dsn)

    return _reopen


class TestPostgresStore(EventStoreContract):
    pass


def _contend(dsn: str, stream: str, rounds: int, worker: int, out) -> None:
    async def run() -> None:
        store = PostgresEventStore(dsn)
        wins = 0
        for i in range(rounds):
            version = await store.last_version(stream)
            try:
                await store.append(stream, [NewEvent("e", {"w": worker})], version)
                wins += 1
            except WrongExpectedVersion:
                pass
            # and group-committed appends to streams of our own, in parallel with the others
            await asyncio.gather(*(store.append(f"own{worker}/{j}", [NewEvent("e", {"i": i})],
                                                -1) for j in range(8)))
        await store.close()
        out.put(wins)

    asyncio.run(run())


def test_processes_contending_never_fork_and_share_a_commit_ordered_log(pg_dsn):
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    rounds = 60
    procs = [ctx.Process(target=_contend, args=(pg_dsn, "x/1", rounds, w, out))
             for w in range(3)]
    for p in procs:
        p.start()
    wins = [out.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    async def check() -> None:
        store = PostgresEventStore(pg_dsn)
        events = await store.read("x/1")
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert len(events) == sum(wins) and sum(wins) >= rounds
        log = await store.read_all(1, 100_000)
        assert [e.position for e in log] == list(range(1, len(log) + 1))  # gap-free
        assert len(log) == sum(wins) + 3 * rounds * 8
        per_stream: dict[str, list[int]] = {}
        for e in log:
            per_stream.setdefault(e.stream, []).append(e.seq)
        assert all(s == list(range(1, len(s) + 1)) for s in per_stream.values())
        await store.close()

    asyncio.run(check())
