"""OpenGPTs: N concurrent users, each doing create assistant -> create thread -> stream a run
with the built-in model (post a message and read the SSE to its end) -> read state, against
the real service (python embedded.py, SQLite, HTTP in its process) over loopback. Baseline:
GET /ok on the same server with the same concurrency (the HTTP floor), and the same flows
against the commit before the cost-per-turn work (bench.common.BEFORE, a worktree of it run
with this venv), for the service's CPU per flow."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any, Callable

import httpx

from bench.common import BEFORE, percentiles, report, scratch_dir, worktree
from bench.serve_bench import ROOT, _stop, _wait
from bench.service_bench import _cpu, _tree

STEPS = ["create assistant", "create thread", "stream run", "read state"]


async def _user(client: httpx.AsyncClient, n: int, rounds: int,
                times: dict[str, list[float]]) -> None:
    cookies = {"opengpts_user_id": f"bench-{n}"}
    for _ in range(rounds):
        t0 = time.perf_counter()
        r = await client.post("/assistants", cookies=cookies, json={
            "name": "b", "config": {"configurable": {"type": "chatbot"}}})
        aid = r.json()["assistant_id"]
        t1 = time.perf_counter()
        r = await client.post("/threads", cookies=cookies, json={"name": "t",
                                                                  "assistant_id": aid})
        tid = r.json()["thread_id"]
        t2 = time.perf_counter()
        events = 0
        async with client.stream("POST", "/runs/stream", cookies=cookies, json={
                "thread_id": tid, "input": [{"content": "hi! my name is bob",
                                             "type": "human"}]}) as resp:
            async for line in resp.aiter_lines():
                events += line.startswith("event: data")
        assert events > 5, events
        t3 = time.perf_counter()
        state = (await client.get(f"/threads/{tid}/state", cookies=cookies)).json()
        assert len(state["values"]) == 2
        t4 = time.perf_counter()
        for step, dt in zip(STEPS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            times[step].append(dt * 1000)


async def _ok(client: httpx.AsyncClient, count: int, lat: list[float]) -> None:
    for _ in range(count):
        t0 = time.perf_counter()
        await client.get("/ok")
        lat.append((time.perf_counter() - t0) * 1000)


async def _load(base: str, users: int, rounds: int, cpu: Callable[[], float]
                ) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=users + 4, max_keepalive_connections=users + 4)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        ok_lat: list[float] = []
        t0 = time.perf_counter()
        await asyncio.gather(*(_ok(client, 50, ok_lat) for _ in range(users)))
        ok_rate = len(ok_lat) / (time.perf_counter() - t0)
        times: dict[str, list[float]] = {s: [] for s in STEPS}
        await _user(client, -1, 1, {s: [] for s in STEPS})  # warm-up
        cpu0, t0 = cpu(), time.perf_counter()
        await asyncio.gather(*(_user(client, n, rounds, times) for n in range(users)))
        elapsed, used = time.perf_counter() - t0, cpu() - cpu0
    flows = users * rounds
    return {"ok_rate": ok_rate, "flow_rate": flows / elapsed, "times": times,
            "ok_lat": ok_lat, "cpu_per_flow": used / flows * 1000}


def _serve(root: str, port: int, users: int, rounds: int) -> dict[str, Any]:
    """The service of the checkout at ``root`` (its embedded.py, this venv) under the load;
    CPU is every process of its tree (HTTP, Ray, hosts) while the flows run."""
    proc = subprocess.Popen([sys.executable, "embedded.py"], cwd=root, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            env={**os.environ, "ACTORLOG_DATA_DIR": scratch_dir(),
                                 "ACTORLOG_PORT": str(port), "ACTORLOG_MODELS": "",
                                 "ACTORLOG_NAMESPACE": f"bench-gpts-{port}",
                                 "PYTHONPATH": root})
    base = f"http://127.0.0.1:{port}"

    def cpu() -> float:
        return sum(_cpu(_tree(proc.pid)).values())

    try:
        _wait(base + "/health", proc, timeout=180)
        return asyncio.run(_load(base, users, rounds, cpu))
    finally:
        _stop(proc)


def run(quick: bool = False) -> None:
    users, rounds = (8, 2) if quick else (32, 5)
    ours = _serve(ROOT, 19700, users, rounds)
    tree = worktree()
    before = _serve(tree, 19702, users, rounds) if tree else None
    ok50, ok99 = percentiles(ours["ok_lat"])
    report(f"OpenGPTs GET /ok, {users} users", ours["ok_rate"], "req/s")
    report(f"OpenGPTs full flows ({users} users x {rounds})", ours["flow_rate"], "flows/s",
           before and before["flow_rate"], f"{BEFORE}, same run")
    report("  = requests/s (4 per flow)", ours["flow_rate"] * 4, "req/s", ours["ok_rate"],
           "GET /ok")
    report("  service CPU per flow (every process)", ours["cpu_per_flow"], "ms",
           before and before["cpu_per_flow"], f"{BEFORE}, same run", "<= 0.5x")
    for step in STEPS:
        p50, p99 = percentiles(ours["times"][step])
        report(f"  {step} p50", p50, "ms", ok50, "GET /ok p50")
        report(f"  {step} p99", p99, "ms", ok99, "GET /ok p99")
