"""Sotopia batches (issues 13 and 20), in this process's own local Ray with the SQLite store,
against the real Sotopia library measured in the same run (bench/sotopia_real.py: Sotopia
from the package registry in a venv of its own, its CLI's way, its model mocked the way its
own tests mock litellm), once with its CLI's logging and once quiet.

1. 1,000 episodes at once with the built-in model, every turn durable: episodes/s, turns/s,
   turns per episode, CPU per turn summed over every process of the service (the bench
   process, which only asks for progress and results, left out; its CPU printed apart), the
   p99 of a turn's commit, the service's memory (PSS) at the end. Against the real Sotopia:
   turns/s (target >= 2x its quiet run) and CPU per turn (target <= its quiet run's).
2. 10,000 episodes at concurrency 1,000: episodes/s against the 1,000's (target >= 0.9x),
   memory at the end against the 1,000's (target <= 1.2x), episodes resumed in a run that
   nothing cut (target 0).
3. Killed at 50%: what each keeps (the real Sotopia process killed with SIGKILL at half its
   quiet run's time; our hosts all killed with SIGKILL, then the batch run again).
4. A model endpoint with latency (the OpenAI-compatible stand-in answering after 200 ms):
   episodes/s by concurrency, against concurrency 1; it grows until the model-call limit
   (ACTORLOG_MODEL_CALLS_WAITING per host x hosts) or the stand-in's own thread.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

from bench import sotopia_real
from bench.common import cache_dir, report, scratch_dir
from bench.service_bench import _cpu, _pss_mb, _tree
from runtime.metrics import BUCKETS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sims(models: dict[str, Any] | None = None) -> Any:
    import ray

    from api.families import settings_for
    from api.sotopia.runner import Simulations
    from runtime.config import Settings

    if not ray.is_initialized():
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
    options: dict[str, str] = {}
    if models:
        options["ACTORLOG_MODELS"] = json.dumps(models)
    settings = settings_for(Settings(data_dir=scratch_dir(), options=options,
                                     namespace=f"sb-{uuid.uuid4().hex[:8]}"))
    sims = Simulations.connect(settings)
    sims.ready()
    return sims


def _done(sims: Any) -> None:
    import ray

    for handle in sims.runtime.client.hosts.values():
        try:
            ray.kill(handle, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
    sims.close()


def _spec(n: int, model: str = "builtin", max_turns: int = 20) -> Any:
    """n episodes: the built-in scenarios x all ordered pairs of the built-in agents, repeated."""
    from actors.sotopia import builtin_data
    from schemas.sotopia import BatchSpec

    grid = len(builtin_data.SCENARIOS) * 30  # 6 agents: 30 ordered pairs
    reps = max(1, -(-n // grid))
    explicit = [{"env_id": s["pk"], "agent_ids": [a["pk"], b["pk"]]}
                for _ in range(reps) for s in builtin_data.SCENARIOS
                for a in builtin_data.AGENTS for b in builtin_data.AGENTS if a is not b][:n]
    return BatchSpec(episodes=explicit, models=[model], max_turns=max_turns)


def _run_batch(sims: Any, n: int, concurrency: int, model: str = "builtin",
               max_turns: int = 20) -> dict[str, Any]:
    batch_id = f"bench-{uuid.uuid4().hex[:8]}"
    before = _append_counts(sims)
    t0 = time.perf_counter()
    sims.start(batch_id, _spec(n, model, max_turns), concurrency)
    last = {}
    for last in sims.watch(batch_id, every=0.1):  # its end seen within 0.1 s: runs are ~6 s
        pass
    elapsed = time.perf_counter() - t0
    rows = sims.results(batch_id)
    after = _append_counts(sims)
    return {"elapsed": elapsed, "rows": rows, "final": last,
            "turns": sum(r["turns"] or 0 for r in rows),
            "p99_append": _p99([a - b for a, b in zip(after, before)])}


def _append_counts(sims: Any) -> list[int]:
    """Every host's histogram of sotopia_episode appends, bucket by bucket, added up."""
    total = [0] * (len(BUCKETS) + 1)
    for host in _metrics(sims):
        hist = host.get("append_seconds", {}).get("sotopia_episode")
        if hist:
            total = [t + c for t, c in zip(total, hist["counts"])]
    return total


def _metrics(sims: Any) -> list[dict[str, Any]]:
    import ray

    return ray.get([h.metrics.remote() for h in sims.runtime.client.hosts.values()])


def _p99(counts: list[int]) -> float:
    n = sum(counts)
    if not n:
        return float("nan")
    seen = 0
    for bound, c in zip((*BUCKETS, float("inf")), counts):
        seen += c
        if seen >= 0.99 * n:
            return bound
    return float("inf")


def _real(n: int, turns: float, mode: str, kill_after: float | None = None
          ) -> dict[str, Any]:
    """The real Sotopia running n episodes (bench/sotopia_real.py) in a process and a home of
    its own; killed with SIGKILL kill_after seconds into its run if given (then: the episodes
    it had written; 0.1.5's benchmark deletes its episodes after each batch, so its directory
    is no measure of what a kill keeps)."""
    from actors.sotopia import builtin_data

    python = sotopia_real.venv(cache_dir())
    home = scratch_dir()
    profiles = os.path.join(home, "profiles.json")
    with open(profiles, "w", encoding="utf-8") as f:
        json.dump({"agents": builtin_data.AGENTS, "scenarios": builtin_data.SCENARIOS,
                   "grid": [[e.env_id, e.agent_ids] for e in _spec(n).episodes]}, f)
    env = {**os.environ, "HOME": home, "SOTOPIA_STORAGE_BACKEND": "local",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONMALLOC": "pymalloc"}
    proc = subprocess.Popen([python, os.path.join(ROOT, "bench", "sotopia_real.py"), profiles,
                             str(n), str(turns), mode], cwd=home, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:  # its imports and set-up take seconds: the clock starts here
        if line.strip() == "ready":
            break
    if kill_after is not None:
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
        reader.start()
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        reader.join(timeout=30)
        return {"kept": sum(1 for line in lines if line.strip() == "saved")}
    lines.extend(proc.stdout)
    if proc.wait(timeout=3600) != 0:
        raise RuntimeError(f"the real Sotopia run failed ({proc.returncode})")
    return json.loads(lines[-1])


def _service(sims: Any) -> list[Any]:
    """The service's processes: Ray's and the hosts, not this bench process."""
    return [p for p in _tree(os.getpid()) if p.pid != os.getpid()]


def _settled_pss(sims: Any, seconds: float = 12.0) -> float:
    """The service's memory once the batch has ended and finished entities have left it
    (hosts passivate and trim every few seconds)."""
    time.sleep(seconds)
    return _pss_mb(_service(sims))[0]


def _ours(sims: Any, n: int, concurrency: int) -> dict[str, Any]:
    before, me = _cpu(_service(sims)), time.process_time()
    result = _run_batch(sims, n, concurrency)
    after = _cpu(_service(sims))
    result["cpu"] = sum(after[p] - before.get(p, 0.0) for p in after)
    result["bench_cpu"] = time.process_time() - me
    result["pss"] = _settled_pss(sims)
    result["rate"] = len(result["rows"]) / result["elapsed"]
    result["resumed"] = sum(1 for r in result["rows"] if r["resumed"])
    return result


def run(quick: bool = False) -> None:
    n1, n2, n_kill = (60, 120, 40) if quick else (1_000, 10_000, 200)
    sims = _sims()
    try:
        one = _ours(sims, n1, concurrency=n1)
        per_episode = one["turns"] / max(1, len(one["rows"]))
        try:
            sotopia_real.venv(cache_dir())
        except subprocess.CalledProcessError as exc:  # no package registry here: ours alone
            print(f"  the real Sotopia could not be installed ({exc}); its rows are left out",
                  flush=True)
            quiet = logged = None
        else:  # installed: a run that fails is the bench's error, not a row left out
            quiet = _real(n1, per_episode, "quiet")
            logged = _real(n1, per_episode, "logged")
        turns_s = one["turns"] / one["elapsed"]
        cpu_turn = one["cpu"] / max(1, one["turns"]) * 1000
        report(f"{n1} episodes at once: episodes/s", one["rate"], "ep/s")
        report("  turns per episode", per_episode, "turns",
               quiet and quiet["turns"] / quiet["episodes"], "the real Sotopia's")
        if quiet and logged:
            for name, real in (("its CLI's logging", logged), ("quiet", quiet)):
                report(f"  turns/s against the real Sotopia, {name}", turns_s, "turns/s",
                       real["turns"] / real["seconds"], f"Sotopia {name}",
                       ">= 2x quiet" if name == "quiet" else "")
            for name, real in (("its CLI's logging", logged), ("quiet", quiet)):
                report(f"  CPU per turn against the real Sotopia, {name}", cpu_turn, "ms",
                       real["cpu_seconds"] / real["turns"] * 1000, f"Sotopia {name}",
                       "<= 1x quiet" if name == "quiet" else "")
        report("  the bench process's own CPU (progress, results)", one["bench_cpu"], "s")
        report("  completed", one["final"]["done"], "episodes", n1, "planned")
        report("  resumed in a run nothing cut", one["resumed"], "episodes", None, "", "0")
        report("  p99 of an episode's append (a turn's commit)", one["p99_append"] * 1000, "ms")
        report("  service memory (PSS) at the end", one["pss"], "MB")
        # 2. 10,000 end to end at concurrency 1,000
        two = _ours(sims, n2, concurrency=min(1_000, n2))
        report(f"{n2} episodes, concurrency 1000: episodes/s", two["rate"], "ep/s",
               one["rate"], f"{n1} at once", ">= 0.9x")
        report("  CPU per turn", two["cpu"] / max(1, two["turns"]) * 1000, "ms", cpu_turn,
               f"{n1} at once")
        report("  service memory (PSS) at the end", two["pss"], "MB", one["pss"],
               f"after {n1}", "<= 1.2x")
        report("  wall time", two["elapsed"], "s")
        report("  completed", two["final"]["done"], "episodes", n2, "planned")
        report("  resumed in a run nothing cut", two["resumed"], "episodes", None, "", "0")
        # 3. killed at 50%
        _killed(sims, n_kill, quiet and quiet["seconds"] * n_kill / quiet["episodes"])
    finally:
        _done(sims)
    # 4. a model endpoint with 200 ms latency: throughput by concurrency
    _latency(quick)


def _killed(sims: Any, n: int, real_seconds: float | None) -> None:
    from actors.sotopia.episode import EPISODE

    if real_seconds:
        kept = _real(n, 10, "quiet", kill_after=real_seconds / 2)["kept"]
        report(f"killed at 50% of {n}: the real Sotopia had written", kept, "episodes", n,
               "planned")
        report("  the real Sotopia: turns kept of the episodes in flight", 0, "turns")
    batch_id = f"killed-{uuid.uuid4().hex[:8]}"
    sims.start(batch_id, _spec(n), 20)
    while sims.progress(batch_id)["done"] < n // 2:
        time.sleep(0.2)
    client = sims.runtime.client
    for s in client.stats():
        os.kill(s["pid"], signal.SIGKILL)
    at_kill = sims.progress(batch_id)["done"]
    while True:
        try:
            sims.start(batch_id)
            break
        except Exception:  # noqa: BLE001 - hosts still coming back
            time.sleep(0.5)
    for _ in sims.watch(batch_id, every=1.0):
        pass
    rows = sims.results(batch_id)
    twice = sum(1 for r in rows if sum(1 for e in client.ref(EPISODE, r["episode"]).events()
                                       if e.type == "started") != 1)
    report("  ours: episodes finished when killed", at_kill, "episodes", n, "planned")
    report("  ours: episodes cut and resumed from their last turn",
           sum(1 for r in rows if r["resumed"]), "episodes")
    report("  ours: episodes run twice", twice, "episodes")
    report("  ours: completed in the end", sum(1 for r in rows if r["status"] == "completed"),
           "episodes", n, "planned")


def _latency(quick: bool) -> None:
    sys.path.insert(0, ROOT)
    from tests.fake_openai import FakeOpenAI

    from llm.service import calls_per_host
    from runtime.config import Settings

    standin = FakeOpenAI(delay=0.2).start()
    models = {"providers": {"standin": {"type": "openai", "base_url": standin.base_url,
                                        "api_key": "sk-bench", "model": "gpt-standin",
                                        "max_retries": 0}}}
    sims = _sims(models)
    limit = calls_per_host(Settings(), models["providers"]["standin"]) * len(
        sims.runtime.client.hosts)
    try:
        first = None
        for concurrency in ((1, 8) if quick else (1, 4, 16, 32, 64, 128)):
            n = max(4, 2 * concurrency)
            result = _run_batch(sims, n, concurrency, model="standin", max_turns=4)
            rate = len(result["rows"]) / result["elapsed"]
            first = first or rate
            report(f"200 ms model, concurrency {concurrency} (limit {limit}): episodes/s",
                   rate, "ep/s", first, "concurrency 1")
    finally:
        _done(sims)
        standin.stop()
