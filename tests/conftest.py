"""Shared fixtures: one real local Ray for the session; each test gets its own namespace (so its
own named hosts) and its own SQLite file."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from typing import Any, Callable, TypeVar

import pytest

T = TypeVar("T")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


FIXTURES_DIR = os.path.join(ROOT, "tests", "fixtures")

#: fixtures that start Ray, a server or PostgreSQL: a test that uses one, directly or through
#: another fixture, is "heavy" and left out of the fast tier (`scripts/dev test fast`)
HEAVY_FIXTURES = frozenset({"ray_session", "pg_server", "standin", "service"})


@pytest.fixture(autouse=True, scope="session")
def _fast_tier_starts_no_ray(request: Any) -> Any:
    """In the fast tier (-m "not heavy") starting Ray fails the test that does it, so a test
    that needs Ray but is not marked heavy is found at once, not by the tier growing slow."""
    if "not heavy" not in (request.config.option.markexpr or ""):
        yield
        return
    import ray

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a fast-tier test started Ray: it is heavy (tests/conftest.py)")

    real, ray.init = ray.init, refuse
    try:
        yield
    finally:
        ray.init = real


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Heavy is derived, not written on each test: from the fixtures a test uses, from the
    slow mark, and from a module's own ``pytestmark = pytest.mark.heavy`` (the tests that
    start processes of their own)."""
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())) \
                or item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.heavy)


def fixtures_dir(*parts: str) -> str:
    """Fixtures the tests read (the seeds' documents, OpenGPTs' golden captures), copied into
    the repository from the team's shared folder so that a lone clone runs the whole suite."""
    return os.path.join(FIXTURES_DIR, *parts)


if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

#: the operator token of every service the tests start (set before Ray starts, so that its
#: processes, the Serve replicas and the services started as subprocesses all have it)
OPERATOR_TOKEN = "test-operator-token"
os.environ["ACTORLOG_ADMIN_TOKEN"] = OPERATOR_TOKEN
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
#: tests send traffic to loopback only: every web tool is off unless a test points it at a
#: stand-in (tests/fake_services.py) through its own ACTORLOG_TOOLS
WEB_TOOLS = ("wikipedia", "arxiv", "pubmed", "search_tavily", "search_tavily_answer",
             "ddg_search", "you_search", "sec_filings_kai_ai", "press_releases_kai_ai", "dall_e")
os.environ["ACTORLOG_TOOLS"] = json.dumps({t: {"enabled": False} for t in WEB_TOOLS})


@pytest.fixture(scope="session")
def ray_session():
    import ray

    import serve_app  # noqa: F401  (sets Serve's ingress variables before Ray starts)

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 object_store_memory=300 * 1024 * 1024,
                 runtime_env={"env_vars": {"PYTHONPATH": ROOT}})
    yield ray
    ray.shutdown()


def kill_hosts(client) -> None:
    import ray

    from runtime.supervisor import SUPERVISOR_NAME

    handles = list(client.hosts.values())
    try:
        handles.append(ray.get_actor(SUPERVISOR_NAME, namespace=client.settings.namespace))
    except ValueError:
        pass
    for handle in handles:
        try:
            ray.kill(handle, no_restart=True)
        except Exception:
            pass


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A real PostgreSQL 16 for the session (pgserver: no root, no system service)."""
    import pgserver

    server = pgserver.get_server(str(tmp_path_factory.mktemp("pg")), cleanup_mode="stop")
    yield server
    server.cleanup()


def new_database(server) -> str:
    """A fresh, empty database on ``server``; returns its DSN."""
    import asyncio

    import asyncpg

    name = f"t_{uuid.uuid4().hex[:12]}"
    base = server.get_uri()

    async def create() -> None:
        conn = await asyncpg.connect(base)
        await conn.execute(f"CREATE DATABASE {name}")
        await conn.close()

    asyncio.run(create())
    return base.replace("/postgres?", f"/{name}?")


@pytest.fixture
def pg_dsn(pg_server):
    return new_database(pg_server)


@pytest.fixture
def make_client(ray_session, tmp_path):
    """make_client(**settings) -> a connected Client on fresh hosts and a fresh store."""
    from runtime.client import connect

    made = []

    def _make(platform_only: bool = False, **overrides):
        """``platform_only``: hosts load the platform's kinds alone (counter), not every
        family's, for tests of the runtime: each host then starts in a third of the time."""
        # One node here: no placement supervisor (tests/test_multinode.py runs it).
        overrides.setdefault("rebalance_seconds", 0)
        settings = app_settings(data_dir=str(tmp_path / "data"),
                                namespace=f"t-{uuid.uuid4().hex[:12]}",
                                platform_only=platform_only, **overrides)
        client = connect(settings)
        made.append(client)
        return client

    yield _make
    for client in made:
        kill_hosts(client)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    """Each host-level test runs on both event stores."""
    if request.param == "sqlite":
        return ""  # the default: a SQLite file in the test's data dir
    return new_database(request.getfixturevalue("pg_server"))


@pytest.fixture
def client(make_client, store_url, request):
    """Two hosts on the parametrized store; a module that sets PLATFORM_ONLY = True gets
    hosts of the platform's kinds alone."""
    return make_client(hosts=2, store_url=store_url,
                       platform_only=getattr(request.module, "PLATFORM_ONLY", False))


_handed_out: set[int] = set()


def free_port() -> int:
    """A port for a server a test starts, free now and outside the kernel's ephemeral range
    (32768-60999 here) and Ray's worker ports (10002-19999): a port from the ephemeral range
    can be taken by any outgoing connection between this call and the server's bind, which
    failed a Serve replica's start once ("Address already in use")."""
    import random
    import socket

    low, high = 20000, 32000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            high = min(high, int(f.read().split()[0]) - 1)
    except (OSError, ValueError, IndexError):
        pass
    for _ in range(1000):
        port = random.randint(low, high)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port between 20000 and 32000")


def poll(fetch: Callable[[], T], done: Callable[[T], bool], timeout: float = 60.0,
         every: float = 0.05) -> T:
    """The suite's one polling helper: ``fetch()`` until ``done(value)`` or ``timeout``
    seconds; returns the last value either way, for the caller to assert on (a bound on a
    wait, never a timed assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(every)


def wait_http(url: str, tries: int = 150) -> None:
    import time

    import httpx

    for _ in range(tries):
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} never answered")


#: the avatar family's API key in the ``service`` deployment
SERVICE_AVATAR_KEY = "service-avatar-key"


@pytest.fixture(scope="session")
def service(ray_session, tmp_path_factory):
    """The Serve application over its own namespace and SQLite file, reachable both ways it
    serves HTTP: uvicorn inside the replica (how deployments serve) and Serve's own path.
    Yields ({"replica": url, "serve": url}, settings, client). One deployment for the session:
    Serve's shutdown alone takes ~30 s here, and the modules that use it keep to their own
    entities."""
    from ray import serve

    import serve_app
    from runtime.client import connect

    settings = app_settings(data_dir=str(tmp_path_factory.mktemp("svc")),
                            namespace=f"svc-{uuid.uuid4().hex[:10]}",
                            options={"AVATAR_API_KEYS": SERVICE_AVATAR_KEY})
    serve_port, replica_port = free_port(), free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": serve_port})
    # A short graceful shutdown: the module's teardown need not wait Serve's 20 s default for
    # streams a test left open.
    ingress = serve_app.Ingress.options(graceful_shutdown_timeout_s=1,
                                        graceful_shutdown_wait_loop_s=0.5)
    serve.run(ingress.bind(settings.to_dict(), f"127.0.0.1:{replica_port}"),
              name="actorlog", route_prefix="/")
    urls = {"replica": f"http://127.0.0.1:{replica_port}",
            "serve": f"http://127.0.0.1:{serve_port}"}
    for url in urls.values():
        wait_http(url + "/health")
    client = connect(settings)
    yield urls, settings, client
    # No serve.shutdown(): it waits 30 s for its controller here, and the session's
    # ray.shutdown() right after ends Serve's actors with every other process of this Ray.
    kill_hosts(client)


@pytest.fixture(scope="module")
def standin():
    """The OpenAI-compatible stand-in server (tests/fake_openai.py), one per test module."""
    from tests.fake_openai import FakeOpenAI

    server = FakeOpenAI().start()
    yield server
    server.stop()


def standin_provider(standin: Any, retries: int = 0) -> dict[str, Any]:
    """The model-port provider configuration that reaches ``standin``; ``retries``: the
    port's retry policy's retries (llm/port.py), none by default so failures are quick."""
    return {"type": "openai", "base_url": standin.base_url, "api_key": "sk-test",
            "model": "gpt-standin", "max_retries": retries}


def app_settings(**overrides: Any) -> Any:
    """Settings as the service composes them (every family's kinds and services), for tests
    that start hosts; ``models``, ``model_calls`` and ``model_calls_total`` set the model
    port's ACTORLOG_* options."""
    from api.families import PLATFORM_KINDS, settings_for
    from runtime.config import Settings

    platform_only = overrides.pop("platform_only", False)
    options = dict(overrides.pop("options", {}))
    for key, var in (("models", "ACTORLOG_MODELS"), ("model_calls", "ACTORLOG_MODEL_CALLS"),
                     ("model_calls_total", "ACTORLOG_MODEL_CALLS_TOTAL")):
        if key in overrides:
            options[var] = str(overrides.pop(key))
    if platform_only:
        return Settings(options=options, **overrides).with_parts(PLATFORM_KINDS, ())
    return settings_for(Settings(options=options, **overrides))


def start_inprocess_server(ray_session, data_dir: str, **overrides):
    """The service's FastAPI app served by uvicorn from a thread of the test process, over
    real hosts (their settings, say a model configuration, are the test's). Returns
    (base_url, settings, client). For tests that set this process's own configuration, such as
    the OpenGPTs auth mode; the Serve deployment is tested through the ``service`` fixture."""
    import serve_app
    from api import http_server
    from api.runtime import Runtime, install

    overrides.setdefault("rebalance_seconds", 0)
    settings = app_settings(data_dir=data_dir, namespace=f"ip-{uuid.uuid4().hex[:10]}",
                            **overrides)
    runtime = Runtime.start(settings)
    install(runtime)
    port = free_port()
    http_server.start_in_thread(serve_app.api, "127.0.0.1", port)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health")
    return base, settings, runtime.client
