"""The PostgreSQL store on this box (pgserver's PostgreSQL 16, fsync on): group-commit appends
and a long replay, each against the SQLite store measured in the same run."""

from __future__ import annotations

import asyncio
import os

from bench.common import report, scratch_dir
from bench.store_bench import appends_rate, group_commit_appends, replay_rate
from runtime.stores.postgres import PostgresEventStore
from runtime.stores.sqlite import SQLiteEventStore


def run(quick: bool = False) -> None:
    import pgserver

    d = scratch_dir()
    server = pgserver.get_server(os.path.join(d, "pg"), cleanup_mode="delete")
    try:
        dsn = server.get_uri()
        total = 32_000 if quick else 96_000
        sqlite = asyncio.run(group_commit_appends(os.path.join(d, "gc.db"), total))
        pg = asyncio.run(appends_rate(PostgresEventStore(dsn), total))
        report("PostgreSQL durable appends/s (64 writers)", pg, "events/s", sqlite,
               "SQLite store, same run")
        sqlite_replay = asyncio.run(replay_rate(SQLiteEventStore(os.path.join(d, "r.db")),
                                                100_000))
        report("PostgreSQL replay of a 100,000-event stream",
               asyncio.run(replay_rate(PostgresEventStore(dsn), 100_000)), "events/s",
               sqlite_replay, "SQLite store, same run")
    finally:
        server.cleanup()
