"""The signal path (issue 10, part 1): a cancel reaches an entity while its command runs, not
after it; a deadline stops a command the same way; both leave the log saying how the work
ended. Real Ray hosts, real SQLite and PostgreSQL stores."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from runtime.client import ActorError
from tests.conftest import OPERATOR, poll


def _types(ref) -> list[str]:
    return [e.type for e in ref.events()]


def _wait(ref, done, timeout: float = 60) -> list[str]:
    return poll(lambda: _types(ref), done, timeout)


def test_cancel_mid_stream_stops_the_command_at_once_and_keeps_its_steps(client):
    ref = client.ref("counter", f"c-{uuid.uuid4().hex[:6]}")
    seen = []
    cancelled = {}

    def cancel_after_three() -> None:
        _wait(ref, lambda t: t.count("job_step") >= 3)
        cancelled.update(ref.cancel())

    helper = threading.Thread(target=cancel_after_three)
    helper.start()
    for what, item in ref.ask_stream({"type": "job", "steps": 1000, "interval": 0.02}):
        seen.append((what, item))
    helper.join()
    assert cancelled["cancelled"] is True
    outcome = seen[-1][1]
    assert seen[-1][0] == "outcome" and outcome.events[-1].type == "job_stopped"
    assert outcome.events[-1].data == {"job": 1, "reason": "cancelled"}
    types = _types(ref)
    assert types[0] == "job_started" and types[-1] == "job_stopped"
    assert 3 <= types.count("job_step") < 1000
    assert ref.state()[1]["job"]["status"] == "cancelled"
    # the entity takes the next command at once
    assert ref.ask({"type": "add", "amount": 1}).events[0].type == "added"


def test_cancel_with_nothing_running_is_a_no_op_that_says_so(client):
    ref = client.ref("counter", f"idle-{uuid.uuid4().hex[:6]}")
    assert ref.cancel() == {"cancelled": False, "detail": "nothing is running on this entity"}
    ref.ask({"type": "add", "amount": 1})
    assert ref.cancel()["cancelled"] is False
    assert _types(ref) == ["added"]


def test_cancel_racing_the_natural_end_leaves_exactly_one_ending(client):
    endings = []
    for i in range(20):
        ref = client.ref("counter", f"race-{i}-{uuid.uuid4().hex[:6]}")
        result = {}

        def cancel_soon(ref=ref, result=result) -> None:
            _wait(ref, lambda t: "job_started" in t, timeout=30)
            time.sleep(0.001 * (i % 5))
            result.update(ref.cancel())

        helper = threading.Thread(target=cancel_soon)
        helper.start()
        outcome = ref.ask({"type": "job", "steps": 3, "interval": 0.002})
        helper.join()
        types = _types(ref)
        ends = [t for t in types if t in ("job_finished", "job_stopped")]
        assert len(ends) == 1 and types[-1] == ends[0], types
        assert outcome.events[-1].type == ends[0]
        if ends[0] == "job_stopped":
            assert result["cancelled"] is True
        endings.append(ends[0])
    assert set(endings) <= {"job_finished", "job_stopped"}


def test_a_deadline_stops_the_command_and_the_log_says_so(client):
    ref = client.ref("counter", f"dl-{uuid.uuid4().hex[:6]}")
    outcome = ref.ask({"type": "job", "steps": 1000, "interval": 0.01}, deadline=1.0)
    assert outcome.events[-1].type == "job_stopped"
    assert outcome.events[-1].data["reason"] == "deadline"
    assert _types(ref)[0] == "job_started" and _types(ref).count("job_step") < 1000
    # a command that does not close its own work is answered "deadline"; nothing more stored
    before = _types(ref)
    with pytest.raises(ActorError) as stopped:
        ref.ask({"type": "count_to", "n": 10_000}, deadline=0.0001)
    assert stopped.value.code == "deadline"
    assert _types(ref) == before


def test_cancel_after_a_host_restart_is_a_no_op_and_the_job_reads_interrupted(client):
    import ray

    ref = client.ref("counter", f"rs-{uuid.uuid4().hex[:6]}")
    stream = ref.ask_stream({"type": "job", "steps": 1000, "interval": 0.02})
    next(stream)  # the job runs
    ray.kill(ref._host, no_restart=False)  # the host dies; Ray restarts it empty
    with pytest.raises(Exception):
        for _ in stream:
            pass
    deadline = time.time() + 60
    while True:
        try:
            answer = ref.cancel()
            break
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    assert answer["cancelled"] is False
    assert ref.state()[1]["job"]["status"] == "interrupted"  # recovery closed it
    assert _types(ref)[-1] == "job_interrupted"


def test_a_fenced_activation_cannot_be_cancelled_into_writing(client):
    """The entity's stream is written by another writer (a stale activation elsewhere); the
    running job is fenced at its next commit and a cancel then finds nothing running."""
    import asyncio

    from runtime.events import NewEvent
    from runtime.stores import open_store

    ref = client.ref("counter", f"fence-{uuid.uuid4().hex[:6]}")
    stream = ref.ask_stream({"type": "job", "steps": 1000, "interval": 0.05})
    next(stream)

    async def intrude() -> None:
        store = open_store(client.settings.resolved_store_url)
        last = await store.last_version(f"counter/{ref.id}")
        await store.append(f"counter/{ref.id}", [NewEvent("added", {"amount": 5})], last)
        await store.close()

    asyncio.run(intrude())
    with pytest.raises(ActorError) as fenced:
        for _ in stream:
            pass
    assert fenced.value.code == "conflict"
    assert ref.cancel()["cancelled"] is False
    types = _types(ref)
    assert "job_stopped" not in types and "job_finished" not in types


def test_a_kinds_deadline_comes_from_settings(make_client):
    client = make_client(deadlines='{"counter": 1.0}')
    ref = client.ref("counter", "by-settings")
    outcome = ref.ask({"type": "job", "steps": 1000, "interval": 0.01})
    assert outcome.events[-1].data == {"job": 1, "reason": "deadline"}
    # an ask's own deadline overrides the kind's
    outcome = ref.ask({"type": "job", "steps": 3, "interval": 0.6}, deadline=30)
    assert outcome.events[-1].type == "job_finished"


def test_an_opengpts_run_cancelled_keeps_its_input_and_resumes(ray_session, tmp_path):
    import json

    from tests.conftest import kill_hosts, start_inprocess_server
    from tests.opengpts_helpers import User

    models = {"providers": {"slow": {"type": "builtin", "delay": 0.02}},
              "aliases": {"GPT 4 Turbo": "slow"}}
    base, _, client = start_inprocess_server(ray_session, str(tmp_path),
                                             models=json.dumps(models))
    try:
        me = User(base, "canceller")
        tid = me.thread(me.assistant("chatbot", **{"type==chatbot/llm_type": "GPT 4 Turbo"}))
        words = " ".join(f"w{i}" for i in range(100))
        r = me.post("/runs", json={"thread_id": tid, "input": [
            {"type": "human", "content": f"please repeat {words}", "id": "q1"}]})
        assert r.status_code == 200
        ref = client.ref("thread", tid)
        assert ref.cancel()["cancelled"] is True
        types = _wait(ref, lambda t: t[-1] in ("run_cancelled", "run_finished"))
        assert types == ["created", "run_started", "messages_written", "run_cancelled"]
        state = me.get(f"/threads/{tid}/state").json()
        assert [m["id"] for m in state["values"]] == ["q1"] and state["next"] == ["chatbot"]
        _, raw = me.stream({"thread_id": tid, "input": None})
        assert raw.endswith(b"event: end\r\n\r\n")
        state = me.get(f"/threads/{tid}/state").json()
        assert [m["type"] for m in state["values"]] == ["human", "ai"] and state["next"] == []
    finally:
        kill_hosts(client)


def test_model_calls_queue_for_a_slot_and_the_queue_shows_in_runtime(ray_session, tmp_path):
    """One call at a time to a provider that says max_calls 1, on the one host: three runs at
    once, two wait for its slot, /v1/runtime shows them waiting under that provider (the
    built-in's own gate stays empty), and every run ends; a run cancelled while it waits
    leaves the queue."""
    import json

    import httpx

    from tests.conftest import kill_hosts, start_inprocess_server
    from tests.opengpts_helpers import User

    models = {"providers": {"slow": {"type": "builtin", "delay": 0.03, "max_calls": 1}},
              "aliases": {"GPT 4 Turbo": "slow"}}
    base, _, client = start_inprocess_server(ray_session, str(tmp_path), hosts=1,
                                             models=json.dumps(models))
    try:
        me = User(base, "queued")
        aid = me.assistant("chatbot", **{"type==chatbot/llm_type": "GPT 4 Turbo"})
        tids = [me.thread(aid) for _ in range(4)]
        words = " ".join(f"w{i}" for i in range(30))
        for tid in tids:
            assert me.post("/runs", json={"thread_id": tid, "input": [
                {"type": "human", "content": f"please repeat {words}"}]}).status_code == 200
        deadline = time.time() + 60
        most_waiting = 0
        while time.time() < deadline:
            every = httpx.get(base + "/v1/runtime",
                              headers=OPERATOR).json()["hosts"][0]["model_calls"]
            calls = every["slow"]
            assert calls["limit"] == 1 and calls["running"] <= 1
            assert every["builtin"] == {"limit": 16, "running": 0, "waiting": 0}
            most_waiting = max(most_waiting, calls["waiting"])
            if calls["waiting"] >= 2:
                break
            time.sleep(0.02)
        assert most_waiting >= 2
        assert client.ref("thread", tids[-1]).cancel()["cancelled"] is True
        for tid in tids:
            types = _wait(client.ref("thread", tid),
                          lambda t: t[-1] in ("run_finished", "run_cancelled"), timeout=120)
            assert types[-1] in ("run_finished", "run_cancelled"), types
        assert _types(client.ref("thread", tids[-1]))[-1] == "run_cancelled"
        calls = httpx.get(base + "/v1/runtime", headers=OPERATOR).json()["hosts"][0]["model_calls"]
        assert calls["slow"] == {"limit": 1, "running": 0, "waiting": 0}
    finally:
        kill_hosts(client)


def test_the_total_model_call_limit_is_shared_among_hosts():
    from llm.service import calls_per_host
    from runtime.config import Settings

    def share(hosts: int, calls: int, total: int = 0) -> int:
        return calls_per_host(Settings(hosts=hosts, options={
            "ACTORLOG_MODEL_CALLS": str(calls), "ACTORLOG_MODEL_CALLS_TOTAL": str(total)}))

    assert share(4, 16) == 16
    assert share(4, 16, 20) == 5
    assert share(4, 2, 100) == 2
    assert share(8, 2, 3) == 1
    assert calls_per_host(Settings()) == 16


def test_each_provider_has_the_limit_of_its_sort_or_its_own():
    """The built-in model computing its answer here is held to the CPU guard; a model server
    (or the built-in with a delay) to the waiting limit; a provider's max_calls wins; the
    total caps each of them."""
    from llm.router import ModelRouter
    from llm.service import calls_per_host
    from runtime.config import Settings

    config = {"providers": {"server": {"type": "openai", "model": "m", "api_key": "k"},
                            "slow": {"type": "builtin", "delay": 0.01},
                            "mine": {"type": "openai", "model": "m", "api_key": "k",
                                     "max_calls": 3}}}

    def limits(**options: str) -> dict[str, int]:
        settings = Settings(hosts=2, options=options)
        router = ModelRouter(config, lambda spec: calls_per_host(settings, spec))
        return {name: s["limit"] for name, s in router.stats().items()}

    assert limits() == {"builtin": 16, "server": 256, "slow": 256, "mine": 3}
    assert limits(ACTORLOG_MODEL_CALLS="4", ACTORLOG_MODEL_CALLS_WAITING="40") == {
        "builtin": 4, "server": 40, "slow": 40, "mine": 3}
    assert limits(ACTORLOG_MODEL_CALLS_TOTAL="10") == {
        "builtin": 5, "server": 5, "slow": 5, "mine": 3}
