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
async def store(name):
    s = MemoryEventStore(name)
    yield s
    await s.close()


@pytest.fixture
def contract_url(name):
    return f"memory://{name}-other"


@pytest.fixture
def reopen(name):
    async def _reopen():
        return MemoryEventStore(name)

    return _reopen


class TestMemoryStore(EventStoreContract):
    shared_across_processes = False
