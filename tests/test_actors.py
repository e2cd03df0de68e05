"""Actor semantics on real Ray hosts and a real SQLite file."""

from __future__ import annotations

import threading
import time

import pytest
import ray

from actors.counter import counter
from runtime.client import ActorError
from runtime.events import stream_id
from runtime.stores import open_store
from tests.conftest import poll

#: the runtime alone: hosts load the platform's kinds, not every family's (conftest.client)
PLATFORM_ONLY = True


def _mixed(i: int) -> dict:
    return {"type": "note", "text": str(i)} if i % 3 else {"type": "count_to", "n": 3}


def test_commands_run_one_at_a_time(client):
    """300 commands in flight at once to one entity; count_to yields to the loop mid-handler,
    so any overlap within the entity would show as a conflict or a torn log."""
    host = client.host_for("counter", "serial")
    outcomes = ray.get([host.ask.remote("counter", "serial", _mixed(i)) for i in range(300)])
    assert all(hasattr(o, "version") for o in outcomes), outcomes
    assert sorted(o.version for o in outcomes) == list(range(1, 301))
    events = client.ref("counter", "serial").events()
    assert [e.seq for e in events] == list(range(1, 301))
    by_seq = {e.seq: e for e in events}
    for o in outcomes:  # each command's reply names exactly the event it committed
        assert [e.seq for e in o.events] == [o.version]
        assert by_seq[o.version].data == o.events[0].data


def test_ask_many_keeps_submission_order_per_entity(client):
    refs = [client.ref("counter", "ordered"), client.ref("counter", "ordered-2")]
    calls = [(refs[i % 2], _mixed(i), None) for i in range(300)]
    outcomes = client.ask_many(calls)
    assert [o.version for o in outcomes[0::2]] == list(range(1, 151))
    assert [o.version for o in outcomes[1::2]] == list(range(1, 151))
    texts = [e.data.get("text") for e in refs[1].events()]
    assert texts == [None if i % 3 == 0 else str(i) for i in range(1, 300, 2)]
    bad = client.ask_many([(refs[0], {"type": "add", "amount": "x"}, None)])
    assert isinstance(bad[0], ActorError) and bad[0].code == "invalid"


def test_aask_many_is_the_async_twin(client):
    import asyncio

    ref = client.ref("counter", "async-many")
    calls = [(ref, {"type": "note", "text": str(i)}, None) for i in range(50)]
    calls.append((client.ref("counter", "other"), {"type": "add", "amount": "x"}, None))
    outcomes = asyncio.run(client.aask_many(calls))
    assert [o.version for o in outcomes[:50]] == list(range(1, 51))
    assert isinstance(outcomes[50], ActorError) and outcomes[50].code == "invalid"
    assert [e.data["text"] for e in ref.events()] == [str(i) for i in range(50)]


def test_many_entities_interleave_but_each_log_is_ordered(client):
    hosts = {}
    pending = []
    for _ in range(40):
        for e in range(10):
            h = client.host_for("counter", f"m{e}")
            hosts[e] = h
            pending.append(h.ask.remote("counter", f"m{e}", {"type": "count_to", "n": 2}))
    outcomes = ray.get(pending)
    assert all(not isinstance(o, Exception) for o in outcomes)
    for e in range(10):
        version, state = client.ref("counter", f"m{e}").state()
        assert version == 40 and state["total"] == 80


def test_rejections_are_typed_and_store_nothing(client):
    ref = client.ref("counter", "rej")
    with pytest.raises(ActorError) as info:
        ref.ask({"type": "add", "amount": "two"})
    assert info.value.code == "invalid"
    with pytest.raises(ActorError) as info:
        ref.ask({"type": "explode"})
    assert info.value.code == "unknown_command" and "add" in info.value.message
    with pytest.raises(ActorError) as info:
        ref.ask({"amount": 1})
    assert info.value.code == "unknown_command"
    with pytest.raises(ActorError) as info:
        client.ref("nosuchkind", "x").ask({"type": "add"})
    assert info.value.code == "unknown_kind"
    assert ref.events() == []


def test_idempotent_retry_appends_nothing_and_returns_first_outcome(client):
    ref = client.ref("counter", "idem")
    first = ref.ask({"type": "add", "amount": 5}, idempotency_key="msg-1")
    ref.ask({"type": "add", "amount": 1})
    again = ref.ask({"type": "add", "amount": 5}, idempotency_key="msg-1")
    assert again.duplicate and not first.duplicate
    assert [(e.seq, e.data) for e in again.events] == [(e.seq, e.data) for e in first.events]
    assert ref.state() == (2, {"total": 6, "adds": 2, "notes": 0})
    # also after passivation: the dedup is in the log, not in memory
    client.passivate_all()
    third = ref.ask({"type": "add", "amount": 5}, idempotency_key="msg-1")
    assert third.duplicate and third.events[0].seq == 1
    assert len(ref.events()) == 2


def test_snapshot_plus_tail_equals_full_replay_and_time_travel(client):
    ref = client.ref("counter", "snap")
    host = client.host_for("counter", "snap")
    ray.get([host.ask.remote("counter", "snap", {"type": "add", "amount": i})
             for i in range(1, 251)])
    live = ref.state()
    client.passivate_all()
    reactivated = ref.state()  # snapshot at 200 + 50-event tail
    events = ref.events()
    full = counter.fold(counter.initial_state(), events)
    assert live == reactivated == (250, full)
    assert full["total"] == sum(range(1, 251))

    async def newest_snapshot():
        store = open_store(client.settings.resolved_store_url)
        try:
            return await store.load_snapshot(stream_id("counter", "snap"))
        finally:
            await store.close()

    snap = __import__("asyncio").run(newest_snapshot())
    assert snap is not None and snap.seq == 200  # every 100 events, two kept

    for v in (0, 1, 99, 100, 150, 200, 201, 250):
        assert ref.state(at_version=v) == (v, counter.fold(counter.initial_state(), events[:v]))
    with pytest.raises(ActorError) as info:
        ref.state(at_version=251)
    assert info.value.code == "bad_request"


def test_unknown_entity_state_is_initial_at_version_zero(client):
    assert client.ref("counter", "never").state() == (0, counter.initial_state())


def test_ask_stream_yields_progress_then_outcome(client):
    ref = client.ref("counter", "stream")
    items = list(ref.ask_stream({"type": "count_to", "n": 5}))
    assert [i for w, i in items if w == "progress"] == [{"count": c} for c in range(1, 6)]
    assert items[-1][0] == "outcome" and items[-1][1].version == 1
    with pytest.raises(ActorError):
        list(ref.ask_stream({"type": "count_to", "n": 0}))


def test_passivation_by_idle_time_and_lru_cap(make_client):
    client = make_client(hosts=1, idle_seconds=0.5, max_resident=20, platform_only=True)
    host = next(iter(client.hosts.values()))
    ray.get([host.ask.remote("counter", f"p{i}", {"type": "add", "amount": i}) for i in range(60)])
    stats = ray.get(host.stats.remote())
    assert stats["resident"] <= 20 and stats["evictions"] >= 40
    deadline = time.time() + 10
    while ray.get(host.stats.remote())["resident"] and time.time() < deadline:
        time.sleep(0.2)
    assert ray.get(host.stats.remote())["resident"] == 0
    # every entity comes back from the log with its state
    for i in range(60):
        assert client.ref("counter", f"p{i}").ask({"type": "add", "amount": 1}).version == 2
        assert client.ref("counter", f"p{i}").state()[1]["total"] == i + 1


def test_forced_dual_activation_ends_in_conflict_not_fork(client):
    """Two hosts both activate one entity (as after a partition): the store's expected-version
    check lets exactly one writer win per version; the loser appends nothing."""
    a, b = client.hosts.values()
    ray.get(a.ask.remote("counter", "dual", {"type": "add", "amount": 1}))
    ray.get(b.ask.remote("counter", "dual", {"type": "add", "amount": 10}))  # b activates at v1
    stale = ray.get(a.ask.remote("counter", "dual", {"type": "add", "amount": 100}))
    assert getattr(stale, "code", None) == "conflict"
    assert stale.details == {"expected": 1, "actual": 2}
    # then both hammer it at once
    pending = []
    for i in range(100):
        pending.append(a.ask.remote("counter", "dual", {"type": "note", "text": f"a{i}"}))
        pending.append(b.ask.remote("counter", "dual", {"type": "note", "text": f"b{i}"}))
    results = ray.get(pending)
    wins = [r for r in results if not hasattr(r, "code")]
    conflicts = [r for r in results if getattr(r, "code", None) == "conflict"]
    assert len(wins) + len(conflicts) == 200
    events = client.ref("counter", "dual").events()
    assert [e.seq for e in events] == list(range(1, len(events) + 1))  # no fork, no gap
    assert len(events) == 2 + len(wins)
    assert sorted(o.version for o in wins) == list(range(3, 3 + len(wins)))
    committed = {e.data.get("text") for e in events}
    assert all(o.events[0].data["text"] in committed for o in wins)


def test_subscription_hands_over_from_stored_to_live_without_gap_or_duplicate(client):
    ref = client.ref("counter", "tail")
    client.ask_many([(ref, {"type": "note", "text": str(i)}, None) for i in range(150)])
    total = 600
    stop = threading.Event()

    def writer():
        for i in range(150, total):
            if stop.is_set():
                return
            ref.ask({"type": "note", "text": str(i)})

    t = threading.Thread(target=writer)
    t.start()
    seen = []
    try:
        for what, event in ref.subscribe(from_seq=1):
            assert what == "event"
            seen.append(event)
            if len(seen) == total:
                break
    finally:
        stop.set()
        t.join()
    assert [e.seq for e in seen] == list(range(1, total + 1))
    assert [e.data["text"] for e in seen] == [str(i) for i in range(total)]
    # from the middle, after everything is stored
    tail = []
    for _what, event in ref.subscribe(from_seq=598):
        tail.append(event.seq)
        if len(tail) == 3:
            break
        ref.ask({"type": "note", "text": "late"})
    assert tail == [598, 599, 600]


def test_subscribers_see_progress_when_asked(client):
    ref = client.ref("counter", "prog")
    got = []

    def watch():
        for what, item in ref.subscribe(from_seq=1, progress=True):
            got.append((what, item))
            if what == "event":
                return

    t = threading.Thread(target=watch)
    t.start()
    host = client.host_for("counter", "prog")
    deadline = time.time() + 30  # the subscription must be registered before the command runs
    while ray.get(host.stats.remote())["subscribers"] < 1 and time.time() < deadline:
        time.sleep(0.05)
    ref.ask({"type": "count_to", "n": 3})
    t.join(timeout=30)
    assert [w for w, _ in got] == ["progress", "progress", "progress", "event"]


def test_another_driver_reaches_the_same_actors(client, tmp_path):
    """Python access from any Ray driver: a separate process joins the cluster by address and
    finds the hosts by name."""
    import subprocess
    import sys

    client.ref("counter", "shared").ask({"type": "add", "amount": 7})
    address = ray.get_runtime_context().gcs_address
    script = f"""
import ray
from runtime.client import connect
from runtime.config import Settings
c = connect(Settings(namespace={client.settings.namespace!r}), address={address!r},
            start_hosts=False)
ref = c.ref("counter", "shared")
print(ref.ask({{"type": "add", "amount": 1}}).version, ref.state()[1]["total"])
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, cwd=__import__("tests.conftest").conftest.ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["2", "8"]


def _wait_for(predicate, seconds: float = 20.0) -> bool:
    return poll(predicate, bool, seconds)


def test_a_consumer_that_leaves_ends_its_subscription_on_the_host(client):
    ref = client.ref("counter", "leave")
    host = client.host_for("counter", "leave")
    client.ask_many([(ref, {"type": "add", "amount": 1}, None) for _ in range(3)])
    for _what, event in ref.subscribe(from_seq=1):
        if event.seq == 2:
            break
    assert _wait_for(lambda: ray.get(host.stats.remote())["subscribers"] == 0)
    ref.ask({"type": "add", "amount": 1})  # nobody listens; nothing piles up
    assert ray.get(host.stats.remote())["subscribers"] == 0


def test_leaving_an_ask_stream_does_not_cancel_the_command(client):
    ref = client.ref("counter", "abandon")
    for what, _item in ref.ask_stream({"type": "count_to", "n": 2000}):
        assert what == "progress"
        break
    # the command runs to its end and its event is in the log
    assert _wait_for(lambda: ref.state()[0] == 1)
    assert ref.state()[1]["total"] == 2000
