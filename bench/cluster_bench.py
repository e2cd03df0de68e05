"""The runtime core's append and ask figures on 1, 2 and 3 local Ray nodes (ray.cluster_utils)
against one PostgreSQL, with SQLite on one node as the same-run baseline.

Each shape runs in its own subprocess (a fresh Ray cluster per shape). Besides the rates it
reports where the CPU went during the append phase (PostgreSQL, the actor hosts, the driver,
the rest of Ray), which is what says where scaling stops on this 2-core machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

from bench.common import percentiles, report, scratch_dir

HOSTS_PER_NODE = 2
CONCURRENCY = 64  # in-flight batches from the driver
BATCH = 16  # commands per ask_many call


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    import psutil

    out = {}
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            out[pid] = t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return out


def _cpu_used(before: dict[int, float], after: dict[int, float], pids: list[int]) -> float:
    """CPU seconds between two samples, over the processes alive at both."""
    return sum(after[p] - before[p] for p in pids if p in before and p in after)


def _all_pids() -> list[int]:
    import psutil

    return psutil.pids()


def _postgres_pids() -> list[int]:
    import psutil

    return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]


def _entities(client: Any) -> list[Any]:
    """CONCURRENCY batches of BATCH entities, each batch on one host (hosts taking turns), so
    a Ray call carries BATCH commands whatever the number of hosts: the figure then shows
    what nodes change, not smaller batches."""
    by_host: dict[str, list[Any]] = {name: [] for name in client.hosts}
    i = 0
    while min(len(v) for v in by_host.values()) < BATCH * CONCURRENCY // len(by_host) + BATCH:
        ref = client.ref("counter", f"e{i}")
        by_host[client.host_name_for("counter", ref.id)].append(ref)
        i += 1
    names = sorted(by_host)
    out: list[Any] = []
    for k in range(CONCURRENCY):
        pool = by_host[names[k % len(names)]]
        out += pool[(k // len(names)) * BATCH:(k // len(names) + 1) * BATCH]
    return out


async def _warm_up(client: Any) -> None:
    """Activate every entity (and open every database connection) before measuring."""
    entities = _entities(client)
    for start in range(0, len(entities), 256):
        await client.aask_many([(r, {"type": "add", "amount": 1}, None)
                                for r in entities[start:start + 256]])


async def _append_rate(client: Any, seconds: float) -> float:
    entities = _entities(client)
    done = 0
    stop = time.monotonic() + seconds

    async def loop(k: int) -> None:
        nonlocal done
        mine = entities[k * BATCH:(k + 1) * BATCH]
        while time.monotonic() < stop:
            await client.aask_many([(r, {"type": "add", "amount": 1}, None) for r in mine])
            done += len(mine)

    t0 = time.monotonic()
    await asyncio.gather(*(loop(k) for k in range(CONCURRENCY)))
    return done / (time.monotonic() - t0)


def one_shape(store: str, nodes: int, dsn: str, quick: bool) -> dict[str, Any]:
    """Runs in the subprocess: a cluster of ``nodes`` nodes, measured."""
    import ray
    from ray.cluster_utils import Cluster

    from api.families import settings_for
    from runtime.client import connect
    from runtime.config import Settings

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1,
                                                            "include_dashboard": False})
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace="bench-cluster", log_to_driver=False)
    try:
        settings = settings_for(Settings(namespace="bench-cluster",
                                         hosts=HOSTS_PER_NODE * nodes, data_dir=scratch_dir(),
                                         rebalance_seconds=0,
                                         store_url=dsn if store == "postgres" else ""))
        client = connect(settings)
        stats = client.stats()
        host_pids = [s["pid"] for s in stats]
        asyncio.run(_warm_up(client))
        pg_pids = _postgres_pids() if store == "postgres" else []
        every = _all_pids()
        seconds = 3.0 if quick else 10.0

        before = _cpu_by_pid(every)
        t0 = time.monotonic()
        rate = asyncio.run(_append_rate(client, seconds))
        wall = time.monotonic() - t0
        after = _cpu_by_pid(every)
        used = [_cpu_used(before, after, pids)
                for pids in (every, host_pids, pg_pids, [os.getpid()])]
        ref = client.ref("counter", "latency")
        ref.ask({"type": "add", "amount": 1})
        lat = []
        for _ in range(300 if quick else 1500):
            t = time.perf_counter()
            ref.ask({"type": "add", "amount": 1})
            lat.append((time.perf_counter() - t) * 1000)
        p50, p99 = percentiles(lat)
        return {"appends": rate, "p50": p50, "p99": p99,
                "nodes": len({s["node"] for s in stats}),
                "cpu_busy": used[0] / wall,
                "cpu_hosts": used[1] / wall, "cpu_postgres": used[2] / wall,
                "cpu_driver": used[3] / wall,
                "cpu_rest": (used[0] - used[1] - used[2] - used[3]) / wall}
    finally:
        ray.shutdown()
        cluster.shutdown()


def _shape(store: str, nodes: int, dsn: str, quick: bool) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.cluster_bench", store, str(nodes), dsn,
         "quick" if quick else "full"],
        capture_output=True, text=True, timeout=600,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"cluster bench {store}/{nodes} failed: {out.stderr[-3000:]}")
    return json.loads(lines[-1])


def run(quick: bool = False) -> None:
    import pgserver

    server = pgserver.get_server(os.path.join(scratch_dir(), "pg"), cleanup_mode="delete")
    try:
        dsn = server.get_uri()
        base = _shape("sqlite", 1, "", quick)
        report("cluster: SQLite, 1 node: appends/s via ask_many", base["appends"],
               "events/s")
        one = None
        for nodes in (1, 2) if quick else (1, 2, 3):
            r = _shape("postgres", nodes, dsn, quick)
            one = one or r
            tag = f"cluster: PostgreSQL, {nodes} node{'s' if nodes > 1 else ''}"
            report(f"{tag}: appends/s", r["appends"], "events/s", base["appends"],
                   "SQLite, 1 node")
            if nodes > 1:
                report(f"{tag}: appends/s vs 1 node", r["appends"], "events/s",
                       one["appends"], "PostgreSQL, 1 node")
            report(f"{tag}: ask p50", r["p50"], "ms", base["p50"], "SQLite, 1 node")
            report(f"{tag}: ask p99", r["p99"], "ms", base["p99"], "SQLite, 1 node")
            print(f"    {tag}: hosts on {r['nodes']} nodes; cores used in all "
                  f"{r['cpu_busy']:.2f} of {os.cpu_count()}: hosts {r['cpu_hosts']:.2f}, "
                  f"postgres {r['cpu_postgres']:.2f}, driver {r['cpu_driver']:.2f}, "
                  f"rest (raylets, GCS, workers) {r['cpu_rest']:.2f}", flush=True)
    finally:
        server.cleanup()


if __name__ == "__main__":
    store_, nodes_, dsn_, mode = sys.argv[1:5]
    print(json.dumps(one_shape(store_, int(nodes_), dsn_, mode == "quick")), flush=True)
