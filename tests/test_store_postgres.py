"""The PostgreSQL store: the same conformance suite, unchanged, against a real PostgreSQL 16
(pgserver starts it in a temporary directory): several processes at once included."""

from __future__ import annotations

import pytest

from runtime.stores.postgres import PostgresEventStore
from tests.conftest import new_database
from tests.store_contract import EventStoreContract


@pytest.fixture
async def store(pg_dsn):
    s = PostgresEventStore(pg_dsn)
    yield s
    await s.close()


@pytest.fixture
def contract_url(pg_server):
    return new_database(pg_server)


@pytest.fixture
def reopen(pg_dsn):
    async def _reopen():
        return PostgresEventStore(pg_dsn)

    return _reopen


class TestPostgresStore(EventStoreContract):
    pass
