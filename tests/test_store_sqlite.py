"""The SQLite store: the conformance suite (several processes on one file included), and its
durability settings."""

from __future__ import annotations

import sqlite3

import pytest

from runtime.events import NewEvent
from runtime.stores.sqlite import SQLiteEventStore
from tests.store_contract import EventStoreContract


@pytest.fixture
def open_backend(tmp_path):
    return lambda: SQLiteEventStore(tmp_path / "events.db")


@pytest.fixture
def contract_url(tmp_path):
    return "sqlite://" + str(tmp_path / "shared.db")


class TestSQLiteStore(EventStoreContract):
    pass


def test_durability_settings(tmp_path):
    SQLiteEventStore(tmp_path / "e.db")
    conn = sqlite3.connect(tmp_path / "e.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_the_writer_commits_with_synchronous_full(tmp_path):
    """WAL is the file's (any connection sees it); synchronous is the connection's, so it is
    read on the writer's own connection, inside one of its writes: FULL (2) syncs the WAL at
    every commit, which is what makes an acknowledged append survive a power loss."""
    store = SQLiteEventStore(tmp_path / "e.db")
    try:
        level = await store._write(lambda cur: cur.execute("PRAGMA synchronous").fetchone()[0])
        assert level == 2
    finally:
        await store.close()


async def test_a_file_written_before_kinds_and_schema_versions_is_migrated(tmp_path):
    """A file of the earlier schema (no kind, no version columns, snapshots without a rowid)
    opens, its events are found by kind, they read as schema version 1, and its snapshot is
    kept in the table that has a rowid."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE events (position INTEGER PRIMARY KEY, stream TEXT NOT NULL,
            seq INTEGER NOT NULL, type TEXT NOT NULL, data BLOB NOT NULL, ts REAL NOT NULL,
            idem TEXT, meta BLOB, UNIQUE (stream, seq));
        CREATE TABLE streams (stream TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE snapshots (stream TEXT NOT NULL, seq INTEGER NOT NULL, ts REAL NOT NULL,
            state BLOB NOT NULL, PRIMARY KEY (stream, seq)) WITHOUT ROWID;
        INSERT INTO events VALUES (1, 'thread/t', 1, 'created', '{"a": 1}', 1.0, NULL, NULL);
        INSERT INTO events VALUES (2, 'counter/c', 1, 'added', '{"n": 1}', 1.0, NULL, NULL);
        INSERT INTO streams VALUES ('thread/t', 1), ('counter/c', 1);
        INSERT INTO snapshots VALUES ('thread/t', 1, 1.0, '{"s": 1}');
    """)
    conn.commit()
    conn.close()
    store = SQLiteEventStore(path)
    try:
        found = await store.read_all(1, 10, kinds=["thread"])
        assert [(e.stream, e.data, e.schema_version) for e in found] == [
            ("thread/t", {"a": 1}, 1)]
        kept = await store.load_snapshot("thread/t")
        assert (kept.seq, kept.state, kept.version) == (1, {"s": 1}, 1)
        # moved to a table with a rowid: a big state no longer sits in the key b-tree
        table = sqlite3.connect(path).execute(
            "SELECT sql FROM sqlite_master WHERE name = 'snapshots'").fetchone()[0]
        assert "WITHOUT ROWID" not in table.upper()
        await store.append("thread/t", [NewEvent("updated", {}, schema_version=2)], 1)
        assert [e.schema_version for e in await store.read("thread/t")] == [1, 2]
    finally:
        await store.close()
