"""A 3-node Ray cluster on this machine (ray.cluster_utils.Cluster) against one PostgreSQL:
placement, Serve replicas on two nodes, a worker node killed under load, and fencing.

Run by tests/test_multinode.py in a subprocess (the test session already owns a Ray):
    python -m tests.multinode_scenario DSN OUT.json
It records what it observed as facts in OUT.json; the test asserts on them, so a failure
names the property that broke. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Any

os.environ["RAY_SERVE_ENABLE_DIRECT_INGRESS"] = "0"  # the cluster setup: Serve's own proxies

import httpx  # noqa: E402
import psutil  # noqa: E402
import ray  # noqa: E402
import yaml  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from api.families import settings_for  # noqa: E402
from runtime.client import OutcomeUnknown, Unavailable, connect  # noqa: E402

#: the operator token the test session set (tests/conftest.py) and this script inherited
OPERATOR_TOKEN = os.environ.get("ACTORLOG_ADMIN_TOKEN", "")
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
from runtime.config import Settings  # noqa: E402
from runtime.placement import alive_nodes, host_name  # noqa: E402
from runtime.stores import open_store  # noqa: E402
from tests.conftest import free_port, wait_http  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: a built-in model slowed down, so that a batch of Sotopia episodes spans the node's death
MODELS = json.dumps({"providers": {"slow": {"type": "builtin", "delay": 0.02}}})
FAST_FAILURE_DETECTION = {"health_check_period_ms": 500, "health_check_failure_threshold": 4,
                          "health_check_initial_delay_ms": 0}


def kill_node(cluster: Cluster, node: Any) -> None:
    """A machine dying: every process of the node at once (its raylet, and the workers under
    it: hosts and Serve replicas), not a graceful drain."""
    raylet = psutil.Process(node.all_processes["raylet"][0].process.pid)
    victims = raylet.children(recursive=True)
    for proc in victims:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    cluster.remove_node(node, allow_graceful=False)


def main(dsn: str, out: str) -> None:
    facts: dict[str, Any] = {}
    namespace = f"mn-{uuid.uuid4().hex[:8]}"
    # What cluster.yaml does: the store's DSN (and our settings) in the environment of
    # `ray start` on every node, so the replicas deployed by `serve deploy` inherit them.
    os.environ.update({"ACTORLOG_STORE_URL": dsn, "ACTORLOG_NAMESPACE": namespace,
                       "ACTORLOG_REBALANCE_SECONDS": "1", "ACTORLOG_MODELS": MODELS,
                       "ACTORLOG_SOTOPIA_SWEEP_SECONDS": "2"})
    dashboard_port = free_port()
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": True, "dashboard_port": dashboard_port,
        "dashboard_host": "127.0.0.1", "_system_config": FAST_FAILURE_DETECTION})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    facts["dashboard"] = f"http://127.0.0.1:{dashboard_port}"
    ray.init(address=cluster.address, namespace=namespace, log_to_driver=False)
    try:
        run(cluster, workers, namespace, dsn, facts)
    finally:
        with open(out, "w") as f:
            json.dump(facts, f, indent=1, default=str)
        # No serve.shutdown(): it waits 30 s for its controller, and the cluster's shutdown
        # right after ends every process of every node, Serve's with them.
        ray.shutdown()
        cluster.shutdown()


def host_nodes(client: Any) -> dict[str, str]:
    return {host_name(s["index"]): s["node"] for s in client.stats()}


def run(cluster: Cluster, workers: list, namespace: str, dsn: str, facts: dict) -> None:
    settings = settings_for(Settings(namespace=namespace, hosts=6, store_url=dsn,
                                     data_dir=tempfile.mkdtemp(), rebalance_seconds=1.0,
                                     options={"ACTORLOG_MODELS": MODELS}))
    client = connect(settings, retry_seconds=60)
    began = time.monotonic()
    seconds = facts["seconds"] = {}

    def phase(name: str) -> None:
        seconds[name] = round(time.monotonic() - began, 1)

    nodes = alive_nodes()
    facts["nodes"] = nodes
    placed = host_nodes(client)
    facts["host_nodes_before"] = placed

    # Entities on every host, so on every node.
    counters = [f"c{i}" for i in range(60)]
    for name in counters:
        client.ref("counter", name).ask({"type": "add", "amount": 1}, idempotency_key="seed")
    facts["resident_per_node"] = {}
    for s in client.stats():
        facts["resident_per_node"][s["node"]] = \
            facts["resident_per_node"].get(s["node"], 0) + s["resident"]

    # Serve: deploy/serve_config.yaml through `serve deploy`, as cluster.yaml runs it (ports
    # moved to free ones): two ingress replicas, at most one per node, each also serving HTTP
    # from uvicorn on a shared port (SO_REUSEPORT spreads connections between them).
    serve_port, http_port = free_port(), free_port()
    facts["serve_deploy"] = serve_deploy(facts["dashboard"], serve_port, http_port)[-1500:]
    base = f"http://127.0.0.1:{http_port}"
    try:
        wait_http(base + "/health", tries=600)
        wait_http(f"http://127.0.0.1:{serve_port}/health", tries=600)
    except RuntimeError:
        facts["serve_status"] = subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), "serve"), "status", "--address",
             facts["dashboard"]], capture_output=True, text=True, timeout=60).stdout
        raise
    replica_nodes: set[str] = set()
    deadline = time.monotonic() + 120  # the second replica may still be starting
    while len(replica_nodes) < 2 and time.monotonic() < deadline:
        for _ in range(20):  # new connections: the kernel hashes each to one replica
            with httpx.Client(timeout=10) as http:
                replica_nodes.add(http.get(base + "/v1/runtime", headers=OPERATOR).json()["node"])
        time.sleep(0.5)
    facts["replica_nodes"] = sorted(replica_nodes)
    phase("serve_deployed")
    # Any replica reaches any entity: a live tail goes replica -> host, wherever each runs.
    facts["tails_ok"] = asyncio.run(tail_first_events(http_port, counters[:12]))

    # Load: keyed commands (retried across the failure), unkeyed ones (may end unknown), a
    # long job and a subscription on entities whose host is on the node we kill.
    victim = workers[0]
    victim_id = victim.node_id
    facts["victim"] = victim_id
    on_victim = [n for n in counters if placed[client.host_name_for("counter", n)] == victim_id]
    facts["entities_on_victim"] = len(on_victim)
    job_entity = next(f"job{i}" for i in range(1000)
                      if placed[client.host_name_for("counter", f"job{i}")] == victim_id)
    tail_entity = on_victim[0]
    acked: dict[str, list] = {n: [] for n in counters}
    unknown = {"keyed": 0, "unkeyed": 0, "unavailable": 0}
    job: dict[str, Any] = {"progress": 0, "error": None}
    tail: list[int] = []
    stop_at = time.monotonic() + 15
    slowest = [0.0]  # the longest a keyed command waited (through the failover)

    def keyed_writer(names: list[str], tag: str) -> None:
        i = 0
        while time.monotonic() < stop_at:
            for name in names:
                started = time.monotonic()
                try:
                    outcome = client.ref("counter", name).ask(
                        {"type": "add", "amount": 1}, idempotency_key=f"{tag}-{i}")
                    acked[name].append([e.seq for e in outcome.events])
                    slowest[0] = max(slowest[0], time.monotonic() - started)
                except OutcomeUnknown:
                    unknown["keyed"] += 1
                except Unavailable:
                    unknown["unavailable"] += 1
            i += 1

    def unkeyed_writer(names: list[str]) -> None:
        while time.monotonic() < stop_at:
            for name in names:
                try:
                    client.ref("counter", name).ask({"type": "note", "text": "x"})
                except OutcomeUnknown:
                    unknown["unkeyed"] += 1
                except Unavailable:
                    unknown["unavailable"] += 1

    def run_job() -> None:
        try:
            for what, _ in client.ref("counter", job_entity).ask_stream(
                    {"type": "job", "steps": 3000, "interval": 0.01}):
                job["progress"] += what == "progress"
        except Exception as exc:  # noqa: BLE001 - recorded, asserted by the test
            job["error"] = type(exc).__name__

    target = {"seq": 1 << 60}  # set once the final version is known

    def follow() -> None:
        for _, event in client.ref("counter", tail_entity).subscribe(from_seq=1):
            tail.append(event.seq)
            if event.seq >= target["seq"]:
                return

    errors: list[str] = []
    facts["thread_errors"] = errors

    # A batch of Sotopia episodes through the deployed service, over the whole window.
    with httpx.Client(timeout=60) as http:
        r = http.post(base + "/v1/batches", json={
            "batch_id": "mn-batch", "concurrency": 4,
            "spec": {"models": ["slow"], "reps": 2, "max_turns": 10,
                     "agents": [f"builtin-agent-{a}" for a in (
                         "mara-okafor", "tomas-lind", "ines-halloran", "rui-tanaka")]}})
        facts["batch_started"] = [r.status_code, r.json().get("total")]

    def guarded(fn: Any) -> Any:
        def run_guarded(*args: Any) -> None:
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - a caller that died is a finding
                errors.append(f"{fn.__name__}: {type(exc).__name__}: {exc}"[:300])
        return run_guarded

    keyed_writer, unkeyed_writer, follow = (guarded(keyed_writer), guarded(unkeyed_writer),
                                            guarded(follow))
    threads = [threading.Thread(target=keyed_writer, args=(counters[k::4], f"k{k}"), daemon=True)
               for k in range(4)]
    threads.append(threading.Thread(target=unkeyed_writer, args=(counters[::7],), daemon=True))
    threads += [threading.Thread(target=run_job, daemon=True),
                threading.Thread(target=follow, daemon=True)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while job["progress"] < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    facts["acked_before_kill"] = sum(len(v) for v in acked.values())
    phase("killing")
    kill_node(cluster, victim)
    for t in threads[:-1]:
        t.join(timeout=150)
    facts["hung_callers"] = sum(t.is_alive() for t in threads[:-1])
    phase("callers_done")
    facts["unknown"] = unknown
    facts["job_error"] = job["error"]
    facts["acked_total"] = sum(len(v) for v in acked.values())
    facts["slowest_keyed_ask_seconds"] = round(slowest[0], 2)

    # After: the hosts of the dead node are revived on live ones; every acknowledged event
    # is in the log at its seq; the job's log says it was interrupted.
    store = open_store(dsn)

    async def read_all() -> dict[str, list]:
        return {n: await store.read(f"counter/{n}") for n in counters + [job_entity]}

    logs = asyncio.run(read_all())
    missing = gaps = 0
    for name in counters:
        seqs = [e.seq for e in logs[name]]
        gaps += seqs != list(range(1, len(seqs) + 1))
        present = set(seqs)
        missing += sum(1 for ack in acked[name] for s in ack if s not in present)
        keys = [e.idempotency_key for e in logs[name] if e.idempotency_key]
        facts.setdefault("duplicate_keys", 0)
        facts["duplicate_keys"] += len(keys) - len(set(keys))
    facts["acked_missing"] = missing
    facts["streams_with_gaps"] = gaps
    facts["host_nodes_after"] = host_nodes(client)
    facts["alive_after"] = alive_nodes()
    target["seq"] = len(logs[tail_entity]) + 1  # after the ask below
    version, state = client.ref("counter", job_entity).state()
    job_log = [e.type for e in client.ref("counter", job_entity).events()]
    facts["job_state"] = state["job"]["status"]
    facts["job_log_head_tail"] = [job_log[0], job_log[-1], job_log.count("job_interrupted")]
    facts["victim_entities_answer"] = all(
        client.ref("counter", n).ask({"type": "add", "amount": 1}).version
        == len(logs[n]) + 1 for n in on_victim)
    threads[-1].join(timeout=60)
    facts["tail_hung"] = threads[-1].is_alive()
    facts["tail_contiguous"] = tail == list(range(1, len(tail) + 1))
    facts["tail_len"], facts["tail_final"] = len(tail), target["seq"]

    # Serve after the kill: the surviving replica (and Serve's replacement) still answer.
    # (Serve replaces the dead replica meanwhile: a connection may land on one that is going
    # away, so each try is a fresh connection, for a bounded while.)
    wait_http(base + "/health", tries=300)
    deadline = time.monotonic() + 60
    while True:
        try:
            with httpx.Client(timeout=10) as http:
                r = http.get(f"{base}/v1/actors/counter/{on_victim[0]}/state", headers=OPERATOR)
            facts["http_state_after"] = [r.status_code, r.json().get("version")]
            break
        except httpx.TransportError as exc:
            facts.setdefault("http_retries_after", []).append(type(exc).__name__)
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)
    facts["http_state_expected"] = client.ref("counter", on_victim[0]).state()[0]

    facts["fencing"] = fencing(client)
    phase("fenced")
    facts.update(batch_outcome(base, dsn))
    phase("batch_done")

    # Scaling out: a node joins; the supervisor moves hosts onto it, and entities that
    # hashed to a moved host answer from there.
    joined = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    deadline = time.monotonic() + 60
    after: dict[str, str] = {}
    while time.monotonic() < deadline:
        # the supervisor moves hosts one at a time: wait for the spread to settle, not only
        # for the first host to land on the new node
        after = host_nodes(client)
        per_node = collections.Counter(after.values())
        if joined.node_id in per_node and len(per_node) == 3 \
                and max(per_node.values()) - min(per_node.values()) <= 1:
            break
        time.sleep(0.5)
    facts["host_nodes_after_join"] = after
    facts["joined"] = joined.node_id
    moved = [n for n in counters if after[client.host_name_for("counter", n)] == joined.node_id]
    facts["answer_on_joined"] = all(
        client.ref("counter", n).ask({"type": "add", "amount": 1}, idempotency_key="post-join")
        .version == len(logs[n]) + 1 + (n in on_victim) for n in moved)
    facts["moved_entities"] = len(moved)
    phase("joined")


def batch_outcome(base: str, dsn: str) -> dict[str, Any]:
    """The batch started before the kill: finished (its host may have died: a replica's sweep
    goes on with it), and every planned episode started exactly once."""
    deadline = time.monotonic() + 240  # a stalled call is sent again after 60 s
    progress: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:  # a fresh connection each time: a replica may be going or coming after the kill
            with httpx.Client(timeout=30) as http:
                progress = http.get(base + "/v1/batches/mn-batch").json()
                if progress.get("status") == "finished":
                    rows = http.get(base + "/v1/batches/mn-batch/results").json()["rows"]
                    break
        except httpx.TransportError:
            pass
        time.sleep(1.0)
    if not rows:  # what did not finish, for the report
        with httpx.Client(timeout=30) as http:
            rows = http.get(base + "/v1/batches/mn-batch/results").json()["rows"]

    async def stuck() -> dict[str, list[str]]:
        store = open_store(dsn)
        try:
            return {r["episode"]: [e.type for e in await store.read(
                f"sotopia_episode/{r['episode']}")][-6:] for r in rows
                if r["status"] == "pending"}
        finally:
            await store.close()

    async def starts() -> list[int]:
        store = open_store(dsn)  # a store of this loop's own
        try:
            return [sum(1 for e in await store.read(f"sotopia_episode/{r['episode']}")
                        if e.type == "started") for r in rows]
        finally:
            await store.close()

    counts = asyncio.run(starts())
    return {"batch_final": progress, "batch_rows": len(rows), "batch_stuck": asyncio.run(stuck()),
            "batch_started_once": sum(1 for c in counts if c == 1),
            "batch_resumed": sum(1 for r in rows if r["resumed"])}


def serve_deploy(dashboard: str, serve_port: int, http_port: int) -> str:
    with open(os.path.join(ROOT, "deploy", "serve_config.yaml")) as f:
        config = yaml.safe_load(f)
    config["http_options"].update(host="127.0.0.1", port=serve_port)
    env = config["applications"][0]["runtime_env"]["env_vars"]
    env["ACTORLOG_REPLICA_HTTP"] = f"127.0.0.1:{http_port}"
    path = os.path.join(tempfile.mkdtemp(), "serve_config.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    serve_cli = os.path.join(os.path.dirname(sys.executable), "serve")
    done = subprocess.run([serve_cli, "deploy", path, "--address", dashboard],
                          timeout=120, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"serve deploy failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    return done.stdout + done.stderr


async def tail_first_events(port: int, names: list[str]) -> int:
    import websockets

    ok = 0
    for name in names:
        async with websockets.connect(f"ws://127.0.0.1:{port}/v1/actors/counter/{name}/tail"
                                      f"?token={OPERATOR_TOKEN}", open_timeout=20) as ws:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
            ok += frame["type"] == "event" and frame["event"]["seq"] == 1
    return ok


def fencing(client: Any) -> dict[str, Any]:
    """The entity moved while its old host lives on (a partition, a slow node): the old
    activation's next append is refused by the store's expected-version check."""
    stats = host_nodes(client)
    name = "fenced"
    owner = client.host_name_for("counter", name)
    other = next(h for h, node in stats.items() if node != stats[owner])
    ref = client.ref("counter", name)
    ref.ask({"type": "add", "amount": 1})  # resident on its owner at version 1
    moved = ray.get(client.hosts[other].ask.remote("counter", name,
                                                   {"type": "add", "amount": 10}))
    stale = ray.get(client.hosts[owner].ask.remote("counter", name,
                                                   {"type": "add", "amount": 100}))
    events = ref.events()
    after = ref.ask({"type": "add", "amount": 1000})  # the stale one reloaded: goes on
    return {"owner_node": stats[owner], "other_node": stats[other],
            "moved_version": getattr(moved, "version", None),
            "stale_reply": getattr(stale, "code", None),
            "log": [(e.seq, e.data["amount"]) for e in events],
            "after_version": after.version, "after_total": ref.state()[1]["total"]}


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
