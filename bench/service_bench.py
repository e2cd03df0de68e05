"""The embedded service as a process: time to the first 200 (a cold start, and a restart after
kill -9 of the whole process tree), time to stop on SIGTERM, and memory (PSS) idle and per
1,000 resident threads. The floor for each is a bare ``ray.init()`` measured in the same run:
what Ray alone costs before any code of ours runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import psutil

from bench.common import report, scratch_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BARE = """
import time, sys
t = time.perf_counter()
import ray
ray.init(address="local", include_dashboard=False, log_to_driver=False)
print(f"ready {time.perf_counter() - t}", flush=True)
sys.stdin.readline()
ray.shutdown()
"""


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cpu(procs: list[psutil.Process]) -> dict[int, float]:
    """Each live process's CPU seconds so far (user + system), by pid."""
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.Error:  # gone
            pass
    return out


def _pss_mb(procs: list[psutil.Process]) -> tuple[float, int]:
    total, alive = 0, 0
    for p in procs:
        try:
            total += p.memory_full_info().pss
            alive += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total / 2**20, alive


def _settle(pid: int, seconds: float = 5.0) -> list[psutil.Process]:
    """The process tree once it stopped growing (Ray starts some helpers lazily)."""
    procs = _tree(pid)
    deadline = time.time() + seconds
    while time.time() < deadline:
        time.sleep(1.0)
        now = _tree(pid)
        if len(now) == len(procs):
            return now
        procs = now
    return procs


def _bare_ray() -> tuple[float, float, int]:
    proc = subprocess.Popen([sys.executable, "-c", BARE], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    seconds = float(line.split()[1])
    pss, count = _pss_mb(_settle(proc.pid))
    proc.stdin.write("\n")
    proc.stdin.flush()
    proc.wait(timeout=60)
    return seconds, pss, count


def _start(data_dir: str, port: int) -> tuple[subprocess.Popen, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "embedded.py"], cwd=ROOT, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "ACTORLOG_DATA_DIR": data_dir,
                                 "ACTORLOG_PORT": str(port),
                                 "ACTORLOG_NAMESPACE": f"bench-svc-{port}"})
    url = f"http://127.0.0.1:{port}/health"
    while True:
        if proc.poll() is not None:
            raise RuntimeError("the service exited before it answered")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return proc, time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        if time.perf_counter() - t0 > 180:
            raise RuntimeError(f"{url} never answered")
        time.sleep(0.02)


def _threads(base: str, n: int) -> None:
    with httpx.Client(base_url=base, cookies={"opengpts_user_id": "bench"}, timeout=60) as http:
        aid = http.post("/assistants", json={"name": "b", "public": False, "config": {
            "configurable": {"type": "chatbot"}}}).json()["assistant_id"]
        for i in range(n):
            tid = http.post("/threads", json={"name": f"t{i}", "assistant_id": aid}
                            ).json()["thread_id"]
            r = http.post(f"/threads/{tid}/state", json={"values": [
                {"type": "human", "content": f"question {i} " * 20}]})
            r.raise_for_status()


def run(quick: bool = False) -> None:
    bare_s, bare_pss, bare_n = _bare_ray()
    report("bare ray.init(): seconds to ready", bare_s, "s")
    report(f"bare ray.init(): PSS, {bare_n} processes", bare_pss, "MB")
    port = 19400
    data_dir = scratch_dir()
    proc, cold = _start(data_dir, port)
    report("service: cold start to first 200", cold, "s", bare_s, "bare ray.init",
           "< 5 s (issue 9)")
    procs = _settle(proc.pid)
    idle, count = _pss_mb(procs)
    report(f"service: PSS idle, {count} processes", idle, "MB", bare_pss, "bare ray.init",
           "0.5 GB")
    n = 200 if quick else 1000
    _threads(f"http://127.0.0.1:{port}", n)
    loaded, _ = _pss_mb(_tree(proc.pid))
    report("service: PSS per 1,000 resident threads", (loaded - idle) * 1000 / n, "MB")
    pids = [p.pid for p in _tree(proc.pid)]
    for pid in pids:  # kill -9 of the whole tree, as a crash or an OOM killer would
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    time.sleep(1.0)
    proc, warm = _start(data_dir, port)
    report("service: restart after kill -9 to first 200", warm, "s", bare_s, "bare ray.init",
           "< 5 s (issue 9)")
    pids = [p.pid for p in _settle(proc.pid, 2.0)]
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    while any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
              for p in pids) and time.perf_counter() - t0 < 60:
        time.sleep(0.05)
    report("service: SIGTERM to every process gone", time.perf_counter() - t0, "s",
           target="< 5 s (issue 9)")
