"""ask on a resident entity through Ray: latency percentiles against a no-op Ray actor call."""

from __future__ import annotations

import time

import ray

from bench.common import percentiles, report, scratch_dir
from runtime.client import connect
from api.families import settings_for
from runtime.config import Settings


def _lat(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def run(quick: bool = False) -> None:
    n = 500 if quick else 3_000
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             namespace="actorlog-bench")
    try:
        client = connect(settings_for(Settings(data_dir=scratch_dir(),
                                               namespace="actorlog-bench", hosts=1)))
        host = next(iter(client.hosts.values()))
        ref = client.ref("counter", "hot")
        ref.ask({"type": "add", "amount": 1})
        for _ in range(200):
            ray.get(host.ping.remote())
        base = _lat(lambda: ray.get(host.ping.remote()), n)
        asks = _lat(lambda: ref.ask({"type": "add", "amount": 1}), n)
        reads = _lat(lambda: ref.state(), n)
        b50, b99 = percentiles(base)
        for name, samples in (("ask (durable append) through Ray", asks),
                              ("state read through Ray", reads)):
            p50, p99 = percentiles(samples)
            report(f"{name}, p50", p50, "ms", b50, "no-op Ray call p50")
            report(f"{name}, p99", p99, "ms", b99, "no-op Ray call p99", "p99 <= 5 ms"
                   if "ask" in name else "")
    finally:
        ray.shutdown()
