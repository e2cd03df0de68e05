"""The PostgreSQL store: the same conformance suite, unchanged, against a real PostgreSQL 16
(pgserver starts it in a temporary directory): several processes at once included."""

from __future__ import annotations

import pytest

from runtime.stores.postgres import PostgresEventStore
from tests.conftest import new_database
from tests.store_contract import EventStoreContract


@pytest.fixture
def open_backend(pg_dsn):
    return lambda: PostgresEventStore(pg_dsn)


@pytest.fixture
def contract_url(pg_server):
    return new_database(pg_server)


class TestPostgresStore(EventStoreContract):
    pass
