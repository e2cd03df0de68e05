"""Where an entity lives, and where its host runs.

Entities: rendezvous (highest-random-weight) hashing of (kind, id) over host names. Every
process computes the same answer from the same names with no coordination, and a host that
restarts under the same name keeps its entities.

Hosts: named, detached Ray actors pinned round-robin to the cluster's live nodes. Measured on a
3-node cluster, zero-CPU actors do not spread by themselves (SPREAD and soft node affinity both
put 2 of 3 on one node), so each host gets a hard node affinity. Ray restarts a host whose
process died on its node; a host whose node died is dead for Ray, and ``revive`` creates it
again, under the same name, on a live node. Any client that sees a host gone calls it, and
get_if_exists makes concurrent revivals agree on one actor.

A SQLite store is a file on one machine, so with it every host is pinned to the head node
(the embedded case has only that node anyway); spreading hosts needs the PostgreSQL store.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Sequence

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from runtime.actor_host import HOST_PREFIX, ActorHost
from runtime.config import Settings

__all__ = ["HOST_GONE", "rendezvous", "host_name", "host_index", "alive_nodes", "head_node",
           "ensure_hosts", "find_hosts", "rebalance", "revive", "single_node_store"]

#: what a call to a host raises when its process or node is gone (RayActorError covers
#: ActorDiedError and ActorUnavailableError; Unschedulable: its pinned node died)
HOST_GONE = (ray.exceptions.RayActorError, ray.exceptions.ActorUnschedulableError)

HEAD_RESOURCE = "node:__internal_head__"


def _weight(host: str, key: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{host}\x00{key}".encode(), digest_size=8).digest(),
                          "big")


def rendezvous(key: str, hosts: Sequence[str]) -> str:
    if not hosts:
        raise LookupError("no actor hosts are running")
    return max(hosts, key=lambda h: _weight(h, key))


def host_name(index: int) -> str:
    return f"{HOST_PREFIX}{index}"


def host_index(name: str) -> int:
    return int(name[len(HOST_PREFIX):])


def alive_nodes() -> list[str]:
    """Live node ids, sorted so every process numbers them alike."""
    return sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive"))


def head_node() -> str | None:
    for n in ray.nodes():
        if n.get("Alive") and HEAD_RESOURCE in n.get("Resources", {}):
            return n["NodeID"]
    return None


def single_node_store(settings: Settings) -> bool:
    return settings.resolved_store_url.startswith("sqlite:")


def _host_nodes(settings: Settings) -> list[str]:
    """The nodes hosts may run on: every live node, or only the head for a SQLite store."""
    if single_node_store(settings):
        head = head_node()
        if head is not None:
            return [head]
    return alive_nodes()


def _spawn(settings: Settings, index: int, node: str) -> Any:
    return ActorHost.options(
        name=host_name(index), namespace=settings.namespace, lifetime="detached",
        get_if_exists=True,
        # Ray's per-call task events (state API, dashboard timeline) cost GCS memory and host
        # CPU for every command; our own metrics say what a host did (29 MB of GCS over
        # 10,000 episodes)
        enable_task_events=False,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
    ).remote(settings.to_dict(), index)


def ensure_hosts(settings: Settings) -> dict[str, Any]:
    """Create the settings' hosts over the live nodes, or find them if they exist; a host
    found dead (its node is gone) is created again on a live node."""
    nodes = _host_nodes(settings)
    handles = {host_name(i): _spawn(settings, i, nodes[i % len(nodes)])
               for i in range(settings.hosts)}
    pings = {name: handle.ping.remote() for name, handle in handles.items()}
    for name, ping in pings.items():
        try:
            ray.get(ping)
        except HOST_GONE:
            handles[name] = revive(settings, name)
    return handles


def revive(settings: Settings, name: str) -> Any:
    """The live actor behind a host name: the same one if Ray still has it (restarting or
    alive), else a new one on a live node. Entities come back lazily from the log."""
    try:
        return ray.get_actor(name, namespace=settings.namespace)
    except ValueError:  # the name is free: its actor is dead for good
        nodes = _host_nodes(settings)
        return _spawn(settings, host_index(name), nodes[host_index(name) % len(nodes)])


def rebalance(settings: Settings, timeout: float = 30.0) -> list[tuple[str, str, str]]:
    """Even out hosts over the live nodes (a node joined, or hosts piled up on survivors
    after a failure): while the fullest node has two more hosts than the emptiest, move one.
    A move stops the host and starts it on the other node; its entities come back there from
    the log, and callers see what a host failure shows them (runtime/client.py). Returns the
    moves as (host, from node, to node)."""
    nodes = _host_nodes(settings)
    on: dict[str, list[str]] = {n: [] for n in nodes}
    handles: dict[str, Any] = {}
    for i in range(settings.hosts):
        name = host_name(i)
        handles[name] = revive(settings, name)
        try:
            node = ray.get(handles[name].node.remote(), timeout=timeout)
        except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError):
            return []  # a host is failing over right now: look again next round
        if node in on:
            on[node].append(name)
    moves = []
    while True:
        fullest = max(on, key=lambda n: len(on[n]))
        emptiest = min(on, key=lambda n: len(on[n]))
        if len(on[fullest]) - len(on[emptiest]) <= 1:
            return moves
        name = on[fullest].pop()
        ray.kill(handles[name], no_restart=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # the name is released once the actor is dead
            try:
                ray.get_actor(name, namespace=settings.namespace)
                time.sleep(0.05)
            except ValueError:
                break
        _spawn(settings, host_index(name), emptiest)
        on[emptiest].append(name)
        moves.append((name, fullest, emptiest))


def find_hosts(namespace: str) -> dict[str, Any]:
    """The hosts already running in ``namespace`` (for drivers that did not start them)."""
    names = sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                   if a.get("namespace") == namespace and a["name"].startswith(HOST_PREFIX))
    return {n: ray.get_actor(n, namespace=namespace) for n in names}
