"""The two ways to start the service, as real processes with their own Ray."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tests.conftest import OPERATOR, ROOT, free_port, poll, wait_http

pytestmark = pytest.mark.heavy  # the service runs as processes of its own


def _env(tmp_path, **extra) -> dict[str, str]:
    env = {**os.environ, "ACTORLOG_DATA_DIR": str(tmp_path / "data"),
           "ACTORLOG_NAMESPACE": f"svc-{uuid.uuid4().hex[:8]}", "PYTHONPATH": ROOT, **extra}
    env.pop("RAY_ADDRESS", None)
    return env


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def _start(tmp_path, port: int, **env: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "embedded.py"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=_env(tmp_path, ACTORLOG_PORT=str(port), **env))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        printed = ""
        while f"serving on {url}" not in printed and time.time() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            printed += line
        assert f"serving on {url}" in printed, printed[-3000:]
        proc.operator_token = None
        if not _env(tmp_path, **env).get("ACTORLOG_ADMIN_TOKEN"):
            line = proc.stdout.readline()
            assert line.startswith("operator token: op_"), line
            proc.operator_token = line.split()[2]
        if "AVATAR_API_KEYS" not in env and "AVATAR_API_KEYS" not in os.environ:
            line = proc.stdout.readline()
            assert line.startswith("avatar sessions: API key "), line
            proc.avatar_key = line.split()[4]
        wait_http(url + "/health")
    except BaseException:
        _kill_tree(proc)  # a service that did not start as expected is not left running
        raise
    return proc, url


def _kill_tree(proc: subprocess.Popen) -> list[int]:
    pids = _tree(proc.pid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return pids


def _tree(pid: int) -> list[int]:
    import psutil

    root = psutil.Process(pid)
    return [root.pid, *(p.pid for p in root.children(recursive=True))]


def _gone(pids: list[int]) -> list[int]:
    import psutil

    left = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.append(pid)
        except psutil.NoSuchProcess:
            pass
    return left


def test_embedded_service_starts_its_own_ray_stops_on_sigterm_and_keeps_what_it_acked(
        tmp_path, ray_session):
    """Another Ray instance runs on this machine (this test session's): the service must not
    join it. SIGTERM ends every process the service started, and an acknowledged write is
    there after a restart, which is in replica mode: both of its paths answer."""
    port = free_port()
    proc, url = _start(tmp_path, port, ACTORLOG_ADMIN_TOKEN="")  # its own operator token
    try:
        assert httpx.get(url + "/health").json()["status"] == "ok"
        # the operator token it printed is required, from loopback too, and it is the
        # data directory's
        token = proc.operator_token
        operator = {"Authorization": f"Bearer {token}"}
        assert httpx.get(url + "/v1/runtime").status_code == 401
        assert httpx.get(url + "/v1/runtime", headers=OPERATOR).status_code == 401
        assert (tmp_path / "data" / "operator_token").read_text().strip() == token
        runtime = httpx.get(url + "/v1/runtime", headers=operator).json()
        assert runtime["node"] != ray_session.get_runtime_context().get_node_id()
        assert {h["pid"] for h in runtime["hosts"]} <= set(_tree(proc.pid))
        r = httpx.get(url + "/v1/actors/counter/none/state", headers=operator)
        assert r.status_code == 404 and "no events" in r.json()["detail"]
        assert os.path.exists(tmp_path / "data" / "events.db")
        created = httpx.post(url + "/assistants", json={
            "name": "kept", "public": False, "config": {"configurable": {"type": "chatbot"}}},
            cookies={"opengpts_user_id": "u"})
        assert created.status_code == 200
        aid = created.json()["assistant_id"]
        # the avatar family's key, made at the first start and printed, works as printed
        key = proc.avatar_key
        assert httpx.post(url + "/session/start", headers={"x-api-key": key}, json={
            "avatar_id": "a", "quality": "low", "version": "v1", "video_encoding": "VP8",
            "agora_settings": {"app_id": "a", "token": "t", "channel": "c", "uid": "1",
                               "enable_string_uid": False}}).status_code == 200
        pids = _tree(proc.pid)
    finally:
        code = _stop(proc)
    assert code == 0
    deadline = time.time() + 60
    while _gone(pids) and time.time() < deadline:
        time.sleep(0.2)
    assert _gone(pids) == []
    # The restart in replica mode (ACTORLOG_HTTP_MODE=replica: Serve deploys the ingress;
    # uvicorn in its replica answers on the port, Serve's own path one port up).
    proc, url = _start(tmp_path, port, ACTORLOG_HTTP_MODE="replica", ACTORLOG_ADMIN_TOKEN="")
    try:
        wait_http(f"http://127.0.0.1:{port + 1}/health")
        assert proc.operator_token == token  # kept in the data directory
        for served in (url, f"http://127.0.0.1:{port + 1}"):  # the replica reads it there
            assert httpx.get(served + "/v1/runtime", headers=operator).status_code == 200
            assert httpx.get(served + "/v1/runtime").status_code == 401
        for served in (url, f"http://127.0.0.1:{port + 1}"):
            r = httpx.get(f"{served}/assistants/{aid}", cookies={"opengpts_user_id": "u"})
            assert r.status_code == 200 and r.json()["name"] == "kept"
        assert proc.avatar_key == key  # kept in the data directory
    finally:
        assert _stop(proc) == 0


def test_serve_run_serves_on_port_8000_with_the_data_dir(tmp_path):
    serve_bin = os.path.join(os.path.dirname(sys.executable), "serve")
    proc = subprocess.Popen([serve_bin, "run", "serve_app:app"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=_env(tmp_path))
    try:
        wait_http("http://127.0.0.1:8000/health", tries=900)
        assert len(httpx.get("http://127.0.0.1:8000/v1/runtime",
                         headers=OPERATOR).json()["hosts"]) == 2
        assert os.path.exists(tmp_path / "data" / "events.db")
    finally:
        # Its Ray is its own children: end them all at once (a SIGINT waits 30 s for Serve's
        # controller, and the graceful stop is the embedded service's test's subject).
        pids = _kill_tree(proc)
        deadline = time.time() + 30
        while _gone(pids) and time.time() < deadline:
            time.sleep(0.2)
        assert _gone(pids) == []


def _raylet(pid: int) -> int:
    import psutil

    found = [p for p in psutil.Process(pid).children(recursive=True) if p.name() == "raylet"
             or "raylet" in " ".join(p.cmdline()[:1])]
    assert found, "no raylet under the service"
    return found[0].pid


def test_when_its_ray_node_dies_the_service_says_503_and_exits_for_its_supervisor(tmp_path):
    """The raylet of a running embedded service killed: the hosts are gone for good. /health
    turns 503 (never 200 again), and the process exits with 75 within 30 s, for a supervisor
    (`bash scripts/dev serve` is one) to start it again."""
    port = free_port()
    proc, url = _start(tmp_path, port)
    pids = _tree(proc.pid)
    try:
        assert httpx.get(url + "/health").status_code == 200
        os.kill(_raylet(proc.pid), signal.SIGKILL)
        seen: list[int] = []
        deadline = time.time() + 30
        while proc.poll() is None and time.time() < deadline:
            try:
                seen.append(httpx.get(url + "/health", timeout=5).status_code)
            except httpx.HTTPError:
                seen.append(0)  # the server is going away
            time.sleep(0.1)
        assert proc.poll() == 75, (proc.poll(), seen[-20:])
        assert 503 in seen, seen
        assert 200 not in seen[seen.index(503):], seen
    finally:
        if proc.poll() is None:
            _kill_tree(proc)
    deadline = time.time() + 30
    while _gone(pids) and time.time() < deadline:
        time.sleep(0.2)
    assert _gone(pids) == []  # the rest of its node was shut down, nothing left behind
    printed = proc.stdout.read()
    assert "this service's Ray node is gone (raylet exited)" in printed


def test_the_dev_script_starts_the_service_again_when_its_node_dies(tmp_path):
    """`bash scripts/dev serve` is the embedded service's supervisor: within a minute of its
    raylet's death the same port serves writes again, from the same data."""
    port = free_port()
    env = _env(tmp_path, ACTORLOG_PORT=str(port))
    proc = subprocess.Popen(["bash", "scripts/dev", "serve"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    cookies = {"opengpts_user_id": "u"}
    try:
        wait_http(url + "/health", tries=900)
        first = httpx.post(url + "/assistants", cookies=cookies, json={
            "name": "before", "config": {"configurable": {"type": "chatbot"}}})
        assert first.status_code == 200
        service = [p for p in _tree(proc.pid)
                   if "embedded.py" in " ".join(__import__("psutil").Process(p).cmdline())][0]
        os.kill(_raylet(service), signal.SIGKILL)

        def healed() -> bool:
            try:
                r = httpx.post(url + "/assistants", cookies=cookies, timeout=10, json={
                    "name": "after", "config": {"configurable": {"type": "chatbot"}}})
                return r.status_code == 200
            except httpx.HTTPError:
                return False

        assert poll(healed, bool, 120)
        kept = httpx.get(f"{url}/assistants/{first.json()['assistant_id']}", cookies=cookies)
        assert kept.status_code == 200 and kept.json()["name"] == "before"
    finally:
        _kill_tree(proc)
