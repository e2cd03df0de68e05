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
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from runtime.actor_host import HOST_PREFIX, ActorHost
from runtime.config import Settings

__all__ = ["rendezvous", "host_name", "host_index", "alive_nodes", "ensure_hosts",
           "find_hosts", "revive"]


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


def _spawn(settings: Settings, index: int, nodes: list[str]) -> Any:
    return ActorHost.options(
        name=host_name(index), namespace=settings.namespace, lifetime="detached",
        get_if_exists=True,
        scheduling_strategy=NodeAffinitySchedulingStrategy(nodes[index % len(nodes)],
                                                           soft=False),
    ).remote(settings.to_dict(), index)


def ensure_hosts(settings: Settings) -> dict[str, Any]:
    """Create the settings' hosts over the live nodes, or find them if they exist; a host
    found dead (its node is gone) is created again on a live node."""
    nodes = alive_nodes()
    handles = {host_name(i): _spawn(settings, i, nodes) for i in range(settings.hosts)}
    for name, handle in list(handles.items()):
        try:
            ray.get(handle.ping.remote())
        except ray.exceptions.RayActorError:
            handles[name] = revive(settings, name)
    return handles


def revive(settings: Settings, name: str) -> Any:
    """The live actor behind a host name: the same one if Ray still has it (restarting or
    alive), else a new one on a live node. Entities come back lazily from the log."""
    try:
        return ray.get_actor(name, namespace=settings.namespace)
    except ValueError:  # the name is free: its actor is dead for good
        return _spawn(settings, host_index(name), alive_nodes())


def find_hosts(namespace: str) -> dict[str, Any]:
    """The hosts already running in ``namespace`` (for drivers that did not start them)."""
    names = sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                   if a.get("namespace") == namespace and a["name"].startswith(HOST_PREFIX))
    return {n: ray.get_actor(n, namespace=namespace) for n in names}
