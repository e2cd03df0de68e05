"""Where an entity lives: rendezvous (highest-random-weight) hashing of (kind, id) over hosts.

Every process computes the same answer from the same host names with no coordination, and when a
host is added or removed only the entities that hashed to it move.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import ray

from runtime.actor_host import HOST_PREFIX, ActorHost
from runtime.config import Settings

__all__ = ["rendezvous", "host_name", "ensure_hosts", "find_hosts"]


def _weight(host: str, key: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{host}\x00{key}".encode(), digest_size=8).digest(),
                          "big")


def rendezvous(key: str, hosts: Sequence[str]) -> str:
    if not hosts:
        raise LookupError("no actor hosts are running")
    return max(hosts, key=lambda h: _weight(h, key))


def host_name(index: int) -> str:
    return f"{HOST_PREFIX}{index}"


def ensure_hosts(settings: Settings) -> dict[str, Any]:
    """Create (or find, if they exist) the settings' hosts as named detached Ray actors."""
    handles = {}
    for i in range(settings.hosts):
        name = host_name(i)
        handles[name] = ActorHost.options(
            name=name, namespace=settings.namespace, lifetime="detached", get_if_exists=True,
        ).remote(settings.to_dict(), i)
    ray.get([h.ping.remote() for h in handles.values()])
    return handles


def find_hosts(namespace: str) -> dict[str, Any]:
    """The hosts already running in ``namespace`` (for drivers that did not start them)."""
    names = sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                   if a.get("namespace") == namespace and a["name"].startswith(HOST_PREFIX))
    return {n: ray.get_actor(n, namespace=namespace) for n in names}
