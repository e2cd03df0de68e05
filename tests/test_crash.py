"""Failure: kill -9 a host in the middle of a burst of acknowledged commands."""

from __future__ import annotations

import os
import signal
import threading
import time

import ray

from runtime.client import OutcomeUnknown


def test_kill9_host_mid_burst_keeps_every_acknowledged_event(make_client, store_url):
    client = make_client(hosts=1, store_url=store_url, platform_only=True)
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


def test_a_host_killed_under_a_job_a_tail_and_keyed_writes(make_client, store_url):
    """What each kind of caller sees when its host dies (runtime/client.py's contract): the
    streaming job's caller gets OutcomeUnknown, never a hang, and the log says the job was
    interrupted; keyed commands are retried to completion; a subscription resumes on the
    restarted host with no gap and no duplicate."""
    client = make_client(hosts=1, store_url=store_url, platform_only=True)
    host = next(iter(client.hosts.values()))
    pid = ray.get(host.ping.remote())
    job_ref, tail_ref = client.ref("counter", "long-job"), client.ref("counter", "tailed")
    seen: dict = {"progress": 0, "job_error": None, "tail": [], "acked": 0}

    def run_job() -> None:
        try:
            for what, _ in job_ref.ask_stream({"type": "job", "steps": 2000, "interval": 0.01}):
                seen["progress"] += what == "progress"
        except Exception as exc:  # noqa: BLE001 - the test asserts on the type below
            seen["job_error"] = exc

    def tail() -> None:
        for what, event in tail_ref.subscribe(from_seq=1):
            seen["tail"].append(event.seq)
            if event.seq == 150:
                return

    def write() -> None:
        for i in range(150):
            tail_ref.ask({"type": "add", "amount": 1}, idempotency_key=f"w{i}")
            seen["acked"] += 1
            time.sleep(0.005)

    threads = [threading.Thread(target=f, daemon=True) for f in (run_job, tail, write)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while (seen["progress"] < 20 or seen["acked"] < 30) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a caller hung on the dead host"

    assert isinstance(seen["job_error"], OutcomeUnknown)
    version, state = job_ref.state()  # a read brings the job's entity back
    assert state["job"]["status"] == "interrupted"
    events = job_ref.events()
    types = [e.type for e in events]
    assert types[0] == "job_started" and types[-1] == "job_interrupted"
    assert [e.data["step"] for e in events[1:-1]] == list(range(1, len(events) - 1))
    assert events[-1].data["step"] == len(events) - 2 and version == len(events)

    assert seen["acked"] == 150  # every keyed write landed, once
    assert [e.seq for e in tail_ref.events()] == list(range(1, 151))
    assert seen["tail"] == list(range(1, 151))  # resumed across the restart: no gap, no dup
