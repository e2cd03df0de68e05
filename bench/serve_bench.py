"""The serving path: GET state through Ray Serve (three ingress configurations) against a bare
uvicorn + FastAPI hello on the same box, loaded by wrk over loopback (16 keep-alive connections).

Each configuration runs the real service (python embedded.py) in its own process and its own
local Ray, since Serve reads these settings when Ray starts."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time

import httpx

from bench.common import report, scratch_dir
from runtime.events import NewEvent
from runtime.stores.sqlite import SQLiteEventStore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SERVE_PATH = {"ACTORLOG_HTTP_MODE": "serve"}
MODES = {
    "Serve default proxy": {**_SERVE_PATH, "RAY_SERVE_THROUGHPUT_OPTIMIZED": "0",
                            "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0",
                            "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "1",
                            "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "1"},
    "Serve direct ingress": {**_SERVE_PATH, "RAY_SERVE_THROUGHPUT_OPTIMIZED": "0",
                             "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
                             "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "1",
                             "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "1"},
    "Serve direct ingress + same loop": {**_SERVE_PATH, "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
                                         "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
                                         "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
                                         "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0"},
    "uvicorn in the Serve replica (Serve deployments)": {"ACTORLOG_HTTP_MODE": "replica"},
    "uvicorn in the service process (embedded)": {"ACTORLOG_HTTP_MODE": "driver"},
}
HELLO = """
import sys, uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/hello")
async def hello():
    return {"hello": "world"}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


#: the operator token of the services this bench starts (GET state is an operator route)
OPERATOR_TOKEN = "bench-operator-token"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def _wrk(url: str, seconds: int) -> float:
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "-H",
                          f"Authorization: Bearer {OPERATOR_TOKEN}", url], capture_output=True,
                         text=True, timeout=seconds + 60).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not m or errors:
        raise RuntimeError(f"wrk failed against {url}:\n{out}")
    return float(m.group(1))


def _ensure_wrk() -> bool:
    if shutil.which("wrk"):
        return True
    subprocess.run(["sh", "-c", "(apt-get install -y -qq wrk || (apt-get update -qq && "
                    "apt-get install -y -qq wrk)) >/dev/null 2>&1"], check=False)
    return shutil.which("wrk") is not None


def _wait(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early: {proc.stdout.read()[-3000:]}")
        try:
            if httpx.get(url, timeout=2, headers=OPERATOR).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} never answered")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _seed(data_dir: str) -> None:
    async def seed() -> None:
        store = SQLiteEventStore(os.path.join(data_dir, "events.db"))
        await store.append("counter/bench", [NewEvent("added", {"amount": i})
                                             for i in range(1, 11)], 0)
        await store.close()

    asyncio.run(seed())


def run(quick: bool = False) -> None:
    if not _ensure_wrk():
        print("serve: wrk is not installed and could not be installed; skipped", flush=True)
        return
    seconds, warm = (1, 1) if quick else (8, 2)
    port = 18600
    hello = subprocess.Popen([sys.executable, "-c", HELLO, str(port)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        _wait(f"http://127.0.0.1:{port}/hello", hello)
        _wrk(f"http://127.0.0.1:{port}/hello", warm)  # warm-up
        bare = _wrk(f"http://127.0.0.1:{port}/hello", seconds)
    finally:
        _stop(hello)
    report("bare uvicorn + FastAPI hello", bare, "req/s")
    # --quick (the test suite's run) starts each HTTP path once: one Serve proxy mode, not all
    # three tunings of it
    modes = {k: v for k, v in MODES.items() if not quick or "direct ingress" not in k}
    for name, env in modes.items():
        data_dir = scratch_dir()
        _seed(data_dir)
        port += 300  # each mode's ports (service, proxy, replica range) stay apart
        proc = subprocess.Popen([sys.executable, "embedded.py"], cwd=ROOT, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env={**os.environ, **env, "ACTORLOG_DATA_DIR": data_dir,
                                     "ACTORLOG_PORT": str(port),
                                     "ACTORLOG_ADMIN_TOKEN": OPERATOR_TOKEN,
                                     "ACTORLOG_NAMESPACE": f"bench-{port}"})
        url = f"http://127.0.0.1:{port}/v1/actors/counter/bench/state"
        try:
            _wait(url, proc)
            _wrk(url, warm)
            rate = _wrk(url, seconds)
        finally:
            _stop(proc)
        report(f"GET state: {name}", rate, "req/s", bare, "bare uvicorn hello",
               ">= 0.5x" if "uvicorn" in name else "")
