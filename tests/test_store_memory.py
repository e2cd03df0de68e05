"""The in-memory store passes the same conformance suite as SQLite and PostgreSQL, so the fast
in-process tests that use it (tests/test_kinds_inprocess.py) fold what the real stores would
give them."""

from __future__ import annotations

import uuid

import pytest

from runtime.stores.memory import MemoryEventStore
from tests.store_contract import EventStoreContract


@pytest.fixture
def name() -> str:
    return f"contract-{uuid.uuid4().hex}"


@pytest.fixture
def open_backend(name):
    return lambda: MemoryEventStore(name)


@pytest.fixture
def contract_url(name):
    return f"memory://{name}-other"


class TestMemoryStore(EventStoreContract):
    shared_across_processes = False
