"""Sotopia batches (issue 13), in this process's own local Ray with the SQLite store:

1. 1,000 episodes at once with the built-in model: episodes/s, turns/s, the PSS of every
   process, p99 of an episode's append (each turn's commit) from the hosts' histograms.
   Baseline, same run: the grid run the way Sotopia runs it (bench/sotopia_baseline.py: one
   asyncio process, batches of 10, episodes in memory, each written when it ends), with the
   same built-in model and the same turn logic (actors/sotopia/social.py).
2. 10,000 episodes end to end at --concurrency 1000.
3. Killed at 50%: what each keeps (the baseline process killed with SIGKILL; our hosts all
   killed with SIGKILL, then the batch run again).
4. A model endpoint with latency (the OpenAI-compatible stand-in answering after 200 ms):
   episodes/s by concurrency, against concurrency 1; it grows until the model-call limit
   (ACTORLOG_MODEL_CALLS per host x hosts).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

from bench.common import report, scratch_dir
from bench.service_bench import _pss_mb, _tree
from runtime.metrics import BUCKETS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sims(models: dict[str, Any] | None = None, model_calls: int = 16) -> Any:
    import ray

    from api.families import settings_for
    from api.sotopia.runner import Simulations
    from runtime.config import Settings

    if not ray.is_initialized():
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
    options = {"ACTORLOG_MODEL_CALLS": str(model_calls)}
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
    for last in sims.watch(batch_id, every=1.0):
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


def _baseline(n: int, out: str, kill_after: float | None = None) -> tuple[float, int]:
    """(seconds, episodes written) of the Sotopia-style run in a process of its own."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "bench.sotopia_baseline", str(n), out],
                            cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        proc.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    elapsed = time.perf_counter() - t0
    try:
        with open(out, encoding="utf-8") as f:
            return elapsed, sum(1 for _ in f)
    except FileNotFoundError:  # killed before it wrote its first episode: none kept
        return elapsed, 0


def run(quick: bool = False) -> None:
    print("# sotopia: batches of episodes (issue 13)", flush=True)
    n1, n2, n_kill = (100, 300, 60) if quick else (1_000, 10_000, 200)
    # 1. 1,000 at once against the Sotopia-style baseline
    base_s, base_n = _baseline(n1, os.path.join(scratch_dir(), "baseline.jsonl"))
    sims = _sims()
    try:
        pss0, procs = _pss_mb(_tree(os.getpid()))
        one = _run_batch(sims, n1, concurrency=n1)
        pss1, _ = _pss_mb(_tree(os.getpid()))
        ours = len(one["rows"]) / one["elapsed"]
        report(f"{n1} episodes at once: episodes/s", ours, "ep/s", base_n / base_s,
               "one asyncio process, batches of 10")
        report("  turns/s", one["turns"] / one["elapsed"], "turns/s")
        report("  completed", one["final"]["done"], "episodes", n1, "planned")
        report("  p99 of an episode's append (a turn's commit)", one["p99_append"] * 1000, "ms")
        report(f"  PSS of every process ({procs})", pss1, "MB", pss0, "before the batch")
        # 2. 10,000 end to end at concurrency 1,000
        two = _run_batch(sims, n2, concurrency=min(1_000, n2))
        report(f"{n2} episodes, concurrency 1000: episodes/s", len(two["rows"]) / two["elapsed"],
               "ep/s", base_n / base_s, "the baseline's rate")
        report("  wall time", two["elapsed"], "s")
        report("  completed", two["final"]["done"], "episodes", n2, "planned")
        # 3. killed at 50%
        _killed(sims, n_kill, base_s * n_kill / base_n)
    finally:
        _done(sims)
    # 4. a model endpoint with 200 ms latency: throughput by concurrency
    _latency(quick)


def _killed(sims: Any, n: int, baseline_seconds: float) -> None:
    from actors.sotopia.episode import EPISODE

    out = os.path.join(scratch_dir(), "killed.jsonl")
    _, kept = _baseline(n, out, kill_after=baseline_seconds / 2)
    report(f"killed at 50% of {n}: baseline episodes kept", kept, "episodes", n, "planned")
    report("  baseline: turns kept of the episodes in flight", 0, "turns")
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

    standin = FakeOpenAI(delay=0.2).start()
    models = {"providers": {"standin": {"type": "openai", "base_url": standin.base_url,
                                        "api_key": "sk-bench", "model": "gpt-standin",
                                        "max_retries": 0}}}
    per_host = 16
    sims = _sims(models, model_calls=per_host)
    limit = per_host * len(sims.runtime.client.hosts)
    try:
        first = None
        for concurrency in ((1, 8, 32) if quick else (1, 4, 16, 32, 64, 128)):
            n = max(4, 2 * concurrency)
            result = _run_batch(sims, n, concurrency, model="standin", max_turns=4)
            rate = len(result["rows"]) / result["elapsed"]
            first = first or rate
            report(f"200 ms model, concurrency {concurrency} (limit {limit}): episodes/s",
                   rate, "ep/s", first, "concurrency 1")
    finally:
        _done(sims)
        standin.stop()
