"""The two ways to start the service, as real processes with their own Ray."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import httpx

from tests.conftest import ROOT, free_port, wait_http


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


def test_embedded_service_starts_prints_its_url_and_stops(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "serve_app.py"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=_env(tmp_path, ACTORLOG_PORT=str(port)))
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 180
        printed = ""
        while f"serving on {url}" not in printed and time.time() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            printed += line
        assert f"serving on {url}" in printed, printed[-3000:]
        wait_http(url + "/health")
        assert httpx.get(url + "/health").json()["status"] == "ok"
        # Serve's own HTTP path answers one port up
        wait_http(f"http://127.0.0.1:{port + 1}/health")
        r = httpx.get(url + "/v1/actors/counter/none/state")
        assert r.status_code == 404 and "no events" in r.json()["detail"]
        assert os.path.exists(tmp_path / "data" / "events.db")
    finally:
        code = _stop(proc)
    assert code == 0


def test_serve_run_serves_on_port_8000_with_the_data_dir(tmp_path):
    serve_bin = os.path.join(os.path.dirname(sys.executable), "serve")
    proc = subprocess.Popen([serve_bin, "run", "serve_app:app"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=_env(tmp_path))
    try:
        wait_http("http://127.0.0.1:8000/health", tries=900)
        assert len(httpx.get("http://127.0.0.1:8000/v1/runtime").json()["hosts"]) == 2
        assert os.path.exists(tmp_path / "data" / "events.db")
    finally:
        _stop(proc, signal.SIGINT)
