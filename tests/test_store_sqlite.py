"""The SQLite store: the conformance suite (several processes on one file included), and its
durability settings."""

from __future__ import annotations

import sqlite3

import pytest

from runtime.stores.sqlite import SQLiteEventStore
from tests.store_contract import EventStoreContract


@pytest.fixture
async def store(tmp_path):
    s = SQLiteEventStore(tmp_path / "events.db")
    yield s
    await s.close()


@pytest.fixture
def contract_url(tmp_path):
    return "sqlite://" + str(tmp_path / "shared.db")


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
