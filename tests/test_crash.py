"""Failure: kill -9 a host in the middle of a burst of acknowledged commands."""

from __future__ import annotations

import os
import signal
import threading
import time

import ray

from runtime.client import OutcomeUnknown


def test_kill9_host_mid_burst_keeps_every_acknowledged_event(make_client, store_url):
    client = make_client(hosts=1, store_url=store_url)
    host = next(iter(client.hosts.values()))
    pid = ray.get(host.ping.remote())
    entities = [f"crash-{i}" for i in range(16)]
    acked: dict[str, list] = {e: [] for e in entities}
    unknown: dict[str, int] = {e: 0 for e in entities}
    count = {"acked": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + 60

    def writer(entity: str) -> None:
        ref = client.ref("counter", entity)
        i = 0
        while time.monotonic() < deadline:
            try:
                outcome = ref.ask({"type": "note", "text": f"{entity}:{i}"})
            except (OutcomeUnknown, ray.exceptions.RayError):
                unknown[entity] += 1
                return  # the host died under this command: its outcome is unknown
            acked[entity].append(outcome)
            with lock:
                count["acked"] += 1
            i += 1

    threads = [threading.Thread(target=writer, args=(e,)) for e in entities]
    for t in threads:
        t.start()
    while count["acked"] < 400 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    for t in threads:
        t.join(timeout=90)
    assert count["acked"] >= 400
    assert sum(unknown.values()) >= 1  # the kill really landed mid-burst

    # Ray restarts the host; entities come back lazily from the log.
    new_pid = None
    for _ in range(300):
        try:
            new_pid = ray.get(host.ping.remote(), timeout=5)
            break
        except ray.exceptions.RayError:
            time.sleep(0.2)
    assert new_pid is not None and new_pid != pid

    total_acked = 0
    for entity in entities:
        ref = client.ref("counter", entity)
        events = ref.events()
        assert [e.seq for e in events] == list(range(1, len(events) + 1)), entity  # no gap
        texts = [e.data["text"] for e in events]
        assert len(set(texts)) == len(texts), entity  # no duplicate
        # every acknowledged command is there, at the seq it was acknowledged with, in order
        for outcome in acked[entity]:
            (ack,) = outcome.events
            assert events[ack.seq - 1].data == ack.data
            assert events[ack.seq - 1].position == ack.position
        n = len(acked[entity])
        total_acked += n
        # at most the one command in flight when the host died may be there unacknowledged
        assert n <= len(events) <= n + unknown[entity]
        assert texts[:n] == [f"{entity}:{i}" for i in range(n)]
        # and the entity answers again, continuing its log
        assert ref.ask({"type": "add", "amount": 1}).version == len(events) + 1
    assert total_acked == count["acked"]
