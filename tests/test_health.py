"""/health tells the truth (issue 19, item 15): it answers 200 only while a write would work
(every actor host answers, through its store), 503 with what is wrong otherwise; a host that
died for good is started again, and /health sees the service heal. On real hosts and SQLite,
over real HTTP."""

from __future__ import annotations

import os
import signal

import httpx
import pytest
import ray

from tests.conftest import kill_hosts, poll, start_inprocess_server


@pytest.fixture(scope="module")
def server(ray_session, tmp_path_factory):
    url, _, client = start_inprocess_server(ray_session, str(tmp_path_factory.mktemp("health")))
    yield url, client
    kill_hosts(client)


def test_a_host_that_does_not_answer_is_a_503_while_it_does_not(server):
    base, client = server
    ok = httpx.get(base + "/health")
    assert ok.status_code == 200
    assert ok.json() == {"status": "ok", "message": "All systems operational",
                         "components": {"database": "connected"}}
    stats = client.stats()
    pid = stats[0]["pid"]
    os.kill(pid, signal.SIGSTOP)  # a hung host: alive to Ray, deaf to every call
    try:
        down = poll(lambda: httpx.get(base + "/health", timeout=30),
                    lambda r: r.status_code == 503, 30)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert down.status_code == 503, down.text
    body = down.json()
    assert body["status"] == "unavailable" and body["components"]["hosts"] == "unavailable"
    assert any("did not answer" in p for p in body["problems"]), body
    back = poll(lambda: httpx.get(base + "/health"), lambda r: r.status_code == 200, 30)
    assert back.status_code == 200, back.text


def test_a_host_dead_for_good_is_started_again_and_health_sees_it(server):
    base, client = server
    name = sorted(client.hosts)[0]
    dead = client.hosts[name]
    ray.kill(dead, no_restart=True)  # Ray will not restart it
    back = poll(lambda: httpx.get(base + "/health"), lambda r: r.status_code == 200
                and client.hosts[name] is not dead, 60)
    assert back.status_code == 200 and client.hosts[name] is not dead
    ref = client.ref("counter", "after-heal")
    ref.ask({"type": "add", "amount": 2})  # a write works again
    assert ref.state()[1]["total"] == 2
