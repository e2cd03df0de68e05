"""Shared fixtures: one real local Ray for the session; each test gets its own namespace (so its
own named hosts) and its own SQLite file."""

from __future__ import annotations

import os
import sys
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture(scope="session")
def ray_session():
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 object_store_memory=300 * 1024 * 1024,
                 runtime_env={"env_vars": {"PYTHONPATH": ROOT}})
    yield ray
    ray.shutdown()


def kill_hosts(client) -> None:
    import ray

    for handle in client.hosts.values():
        try:
            ray.kill(handle, no_restart=True)
        except Exception:
            pass


@pytest.fixture
def make_client(ray_session, tmp_path):
    """make_client(**settings) -> a connected Client on fresh hosts and a fresh store."""
    from runtime.client import connect
    from runtime.config import Settings

    made = []

    def _make(**overrides):
        settings = Settings(data_dir=str(tmp_path / "data"),
                            namespace=f"t-{uuid.uuid4().hex[:12]}", **overrides)
        client = connect(settings)
        client.settings = settings
        made.append(client)
        return client

    yield _make
    for client in made:
        kill_hosts(client)


@pytest.fixture
def client(make_client):
    return make_client(hosts=2)
