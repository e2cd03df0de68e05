"""Batches of Sotopia episodes (issue 13) on real hosts: from Python (the driver API), over
HTTP (/v1/batches), and from the actorlog command; a batch run again goes on with what has no
result, and a batch whose hosts are killed mid-way completes with every episode run once."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from actors.sotopia import builtin_data
from actors.sotopia.batch import BATCH
from actors.sotopia.episode import EPISODE
from tests.conftest import ROOT, kill_hosts, poll, start_inprocess_server

SCENARIOS = [s["pk"] for s in builtin_data.SCENARIOS]
AGENTS = [a["pk"] for a in builtin_data.AGENTS]


@pytest.fixture(scope="module")
def server(ray_session, tmp_path_factory):
    models = {"providers": {"slow": {"type": "builtin", "delay": 0.03}}}
    data_dir = str(tmp_path_factory.mktemp("batches"))
    # the resume sweep every second: a test of stop waits past two of its periods
    url, settings, client = start_inprocess_server(
        ray_session, data_dir, models=json.dumps(models),
        options={"ACTORLOG_SOTOPIA_SWEEP_SECONDS": "1"})
    yield url, settings, client
    kill_hosts(client)


@pytest.fixture(scope="module")
def sims(server):
    from api.sotopia.runner import Simulations

    _, settings, _ = server
    sims = Simulations.connect(settings)
    yield sims
    sims.close()


def _started(client, episode_id: str) -> int:
    return sum(1 for e in client.ref(EPISODE, episode_id).events() if e.type == "started")


def test_a_grid_from_python_runs_once_and_reads_back_as_rows_and_a_summary(server, sims):
    from schemas.sotopia import BatchSpec

    _, _, client = server
    batch_id = f"grid-{uuid.uuid4().hex[:6]}"
    spec = BatchSpec(scenarios=SCENARIOS[:2], agents=AGENTS[:4], models=["builtin"], reps=2)
    first = sims.start(batch_id, spec, concurrency=3)
    assert first["total"] == 2 * 2 * 2 and first["status"] == "running"
    seen = list(sims.watch(batch_id, every=0.2))
    assert seen[-1]["status"] == "finished" and seen[-1]["done"] == 8
    rows = sims.results(batch_id)
    assert [r["index"] for r in rows] == list(range(8))
    assert {(r["scenario"], r["agent_1"], r["agent_2"]) for r in rows} == {
        (s, AGENTS[i], AGENTS[i + 1]) for s in SCENARIOS[:2] for i in (0, 2)}
    assert all(r["status"] == "completed" and r["episode"] == f"{batch_id}.{r['index']}"
               and 0 <= r["agent_1_goal"] <= 10 and -10 <= r["agent_2_secret"] <= 0
               for r in rows)
    (line,) = sims.summary(batch_id)
    assert line["model"] == "builtin" and line["episodes"] == 8
    assert line["overall"]["n"] == 16 and line["overall"]["ci95"] > 0
    assert list(line)[3:10] == ["believability", "relationship", "knowledge", "secret",
                                "social_rules", "financial_and_material_benefits", "goal"]
    # run again: nothing is run twice
    again = sims.start(batch_id, spec, concurrency=3)
    assert again["done"] == 8
    assert poll(lambda: sims.progress(batch_id)["status"], lambda s: s == "finished") == \
        "finished"
    assert all(_started(client, r["episode"]) == 1 for r in rows)
    types = [e.type for e in client.ref(BATCH, batch_id).events()]
    assert types[0] == "planned" and types.count("run_started") == 2
    assert types.count("run_finished") == 2
    other = BatchSpec(scenarios=SCENARIOS[:1], agents=AGENTS[:2])
    with pytest.raises(Exception, match="another plan"):
        sims.start(batch_id, other)


def test_a_batch_whose_hosts_are_killed_goes_on_and_runs_each_episode_once(server, sims):
    from schemas.sotopia import BatchSpec

    _, _, client = server
    batch_id = f"killed-{uuid.uuid4().hex[:6]}"
    spec = BatchSpec(scenarios=SCENARIOS[:3], agents=AGENTS[:2], models=["slow"], reps=2,
                     max_turns=8)
    sims.start(batch_id, spec, concurrency=2)
    poll(lambda: sims.progress(batch_id)["done"], lambda n: n >= 2, 120)
    # killed while an episode is mid-way (a turn of it committed, not yet ended): with
    # concurrency 2 the first two end together and the next two may still be starting
    done = {r["episode"] for r in sims.results(batch_id) if r["status"] != "pending"}

    def mid_way() -> bool:
        for i in range(6):
            episode = f"{batch_id}.{i}"
            types = [e.type for e in client.ref(EPISODE, episode).events()]
            if episode not in done and "turn" in types and "terminated" not in types:
                return True
        return False
    assert poll(mid_way, lambda ok: ok, 60)
    for s in client.stats():
        os.kill(s["pid"], signal.SIGKILL)
    # the driver runs it again (a serving process's sweep would, too)
    poll(lambda: _try_start(sims, batch_id), lambda ok: ok, 60)
    final = poll(lambda: sims.progress(batch_id), lambda p: p["status"] == "finished", 180)
    assert final["done"] == 6 and final["failed"] == 0 and final["cuts"] >= 1
    rows = sims.results(batch_id)
    assert all(_started(client, r["episode"]) == 1 for r in rows)  # exactly once each
    assert any(r["resumed"] for r in rows)  # one cut mid-way went on from its last turn
    for r in rows:
        events = client.ref(EPISODE, r["episode"]).events()
        steps = [e.data["step"] for e in events if e.type == "turn"]
        assert steps == list(range(len(steps)))
        if r["resumed"]:
            types = [e.type for e in events]
            assert types.index("cut") < types.index("resumed")


def _try_start(sims, batch_id: str) -> bool:
    try:
        sims.start(batch_id)
        return True
    except Exception:  # noqa: BLE001 - hosts still coming back
        return False


def test_batches_over_http(server):
    base, _, _ = server
    u = httpx.Client(base_url=base, timeout=60)
    r = u.post("/v1/batches", json={"spec": {"scenarios": ["tag:negotiation"],
                                             "agents": AGENTS[:2], "reps": 2},
                                    "concurrency": 4})
    assert r.status_code == 202
    batch_id = r.json()["batch_id"]
    assert r.json()["total"] == 4  # two built-in scenarios are tagged negotiation
    assert poll(lambda: u.get(f"/v1/batches/{batch_id}").json()["status"],
                lambda s: s != "running") == "finished"
    body = u.get(f"/v1/batches/{batch_id}/results", params={"by_scenario": True}).json()
    assert len(body["rows"]) == 4 and {s["scenario"] for s in body["summary"]} == {
        s["pk"] for s in builtin_data.SCENARIOS if "negotiation" in s["tag"]}
    assert u.get("/v1/batches/nothing").status_code == 404
    assert u.post("/v1/batches", json={"batch_id": "nothing"}).status_code == 404
    assert u.post("/v1/batches", json={"spec": {"scenarios": ["tag:zzz"]}}).json() == {
        "detail": "No scenarios found with tag=zzz"}
    assert u.post("/v1/batches", json={"spec": {"reps": 0}}).status_code == 422
    assert u.post("/v1/batches", json={"batch_id": "a/b", "spec": {}}).status_code == 422
    # stop: the batch and its running episodes stop; running it again goes on
    r = u.post("/v1/batches", json={"spec": {"scenarios": SCENARIOS[:1], "agents": AGENTS,
                                             "models": ["slow"], "reps": 3},
                                    "concurrency": 2})
    slow = r.json()["batch_id"]
    stopped = u.post(f"/v1/batches/{slow}/stop").json()
    assert poll(lambda: u.get(f"/v1/batches/{slow}").json()["status"],
                lambda s: s != "running") == "stopped", stopped
    u.post("/v1/batches", json={"batch_id": slow, "concurrency": 9})
    final = poll(lambda: u.get(f"/v1/batches/{slow}").json(),
                 lambda p: p["status"] == "finished", 180)
    assert final["done"] + final["failed"] == 9


def test_the_actorlog_command_over_http_writes_json_csv_and_a_summary(server, tmp_path):
    base, _, _ = server
    out_json, out_csv = tmp_path / "out.json", tmp_path / "out.csv"
    batch_id = f"cli-{uuid.uuid4().hex[:6]}"
    run = subprocess.run(
        [sys.executable, os.path.join(ROOT, "cli.py"), "simulate", "--url", base,
         "--scenarios", "tag:negotiation", "--agents", ",".join(AGENTS[:4]), "--models",
         "builtin", "--reps", "2", "--concurrency", "8", "--batch", batch_id, "--json",
         str(out_json), "--csv", str(out_csv), "--quiet"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    rows = json.loads(out_json.read_text())
    assert len(rows) == 2 * 2 * 2 and all(r["status"] == "completed" for r in rows)
    with open(out_csv, newline="") as f:
        assert len(list(csv.DictReader(f))) == 8
    assert "SOTOPIA-Eval" in run.stdout and "builtin" in run.stdout and "±" in run.stdout
    assert f"batch {batch_id}: finished, 8 done, 0 failed" in run.stderr


def test_a_stop_in_the_first_second_is_final_and_a_resent_post_is_not_queued(server):
    """Stopped in its first second, a large batch at concurrency 1 stays stopped past two
    sweep periods (nothing runs, no run_cut, no second run). A re-POST of a running batch
    answers at once (same spec or none: 200 with its progress; another spec: 409)."""
    base, _, client = server
    u = httpx.Client(base_url=base, timeout=20)  # a re-POST that hangs fails here
    spec = {"scenarios": SCENARIOS, "agents": AGENTS, "pairing": "all", "models": ["slow"],
            "reps": 40}
    first = u.post("/v1/batches", json={"spec": spec, "concurrency": 1})
    assert first.status_code == 202 and first.json()["total"] >= 6_000, first.text
    batch_id = first.json()["batch_id"]
    again = u.post("/v1/batches", json={"batch_id": batch_id, "spec": spec})
    assert again.status_code == 200 and again.json()["status"] == "running"
    bare = u.post("/v1/batches", json={"batch_id": batch_id})
    assert bare.status_code == 200 and bare.json()["runs"] == 1
    other = u.post("/v1/batches", json={"batch_id": batch_id, "spec": {**spec, "reps": 2}})
    assert other.status_code == 409 and "another plan" in other.json()["detail"]
    stopped = u.post(f"/v1/batches/{batch_id}/stop")
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    settled = stopped.json()["done"] + stopped.json()["failed"]
    events = client.ref(BATCH, batch_id).events()
    time.sleep(3.5)  # past two sweep periods (1 s each here), and the sweep's first look
    later = client.ref(BATCH, batch_id).events()
    assert [e.type for e in later] == [e.type for e in events]
    types = [e.type for e in later]
    assert types.count("run_started") == 1 and "run_cut" not in types
    assert types[-1] == "run_stopped"
    now = u.get(f"/v1/batches/{batch_id}").json()
    assert now["status"] == "stopped" and now["done"] + now["failed"] == settled
    # the episode under way at the stop stopped too, and no other began
    started = [f"{batch_id}.{i}" for i in range(3)]
    assert sum(_started(client, e) for e in started) <= 1
    # started again by someone: it goes on at the concurrency its last run was given
    restarted = u.post("/v1/batches", json={"batch_id": batch_id})
    assert restarted.status_code == 202 and restarted.json()["status"] == "running"
    run = [e for e in client.ref(BATCH, batch_id).events() if e.type == "run_started"]
    assert [e.data["concurrency"] for e in run] == [1, 1]
    assert u.post(f"/v1/batches/{batch_id}/stop").json()["status"] == "stopped"


def test_a_plan_too_large_is_counted_and_refused_before_it_is_built(server):
    base, _, _ = server
    u = httpx.Client(base_url=base, timeout=20)
    spec = {"scenarios": [f"s{i}" for i in range(4_000)],
            "agents": [f"a{i}" for i in range(4_000)]}
    r = u.post("/v1/batches", json={"spec": spec})
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == ("a batch has at most 100,000 episodes; this plan would "
                                  "have 8,000,000")
    r = u.post("/v1/batches", json={"spec": {**spec, "pairing": "all", "reps": 10_000}})
    assert "639,840,000,000,000" in r.json()["detail"]  # 4,000 x 3,999 x 4,000 x 10,000
    r = u.post("/v1/batches", json={"spec": {**spec, "pairing": "sample:3"}})
    assert "12,000" not in r.text and r.status_code == 404  # 12,000 fits: then ids are looked up


def test_sampled_pairs_are_distinct_ordered_pairs_of_two_agents():
    from api.sotopia.batches import _pairs
    from schemas.sotopia import BatchSpec

    agents = [f"a{i}" for i in range(7)]
    pairs = _pairs(BatchSpec(pairing="sample:42"), agents, 0)
    assert len(pairs) == 42 and all(a != b for a, b in pairs)
    assert sorted(map(tuple, pairs)) == sorted((a, b) for a in agents for b in agents
                                               if a != b)
    assert _pairs(BatchSpec(pairing="sample:5", seed=3), agents, 1) == \
        _pairs(BatchSpec(pairing="sample:5", seed=3), agents, 1)


def test_ctrl_c_in_actorlog_simulate_writes_what_is_done_and_says_how_to_go_on(server,
                                                                            tmp_path):
    base, _, _ = server
    out_json = tmp_path / "so-far.json"
    batch_id = f"ctrlc-{uuid.uuid4().hex[:6]}"
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "cli.py"), "simulate", "--url", base,
         "--scenarios", SCENARIOS[0], "--agents", ",".join(AGENTS[:2]), "--models", "slow",
         "--reps", "200", "--concurrency", "2", "--batch", batch_id, "--json",
         str(out_json), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=ROOT)
    try:
        poll(lambda: httpx.get(f"{base}/v1/batches/{batch_id}").json(),
             lambda p: p.get("done", 0) >= 2, 120)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert f"go on with: actorlog simulate --batch {batch_id} --resume --url {base}" in \
        " ".join(err.split())
    done = json.loads(out_json.read_text())
    assert len(done) >= 2 and all(r["status"] != "pending" for r in done)
    assert f"interrupted at {len(done)}/200; go on with" in " ".join(err.split())
    httpx.post(f"{base}/v1/batches/{batch_id}/stop", timeout=60)


def test_a_batch_snapshot_of_format_1_is_counted_on_load():
    """Batch snapshots written before the tally (format 1) load with it counted, and the
    fold keeps it right when a later run's result replaces an earlier one."""
    from actors.sotopia.batch import batch, progress_of
    from runtime.events import Event

    old = {"plan": {"episodes": [{"i": 0}, {"i": 1}, {"i": 2}]}, "status": "stopped",
           "done": {"0": {"i": 0, "status": "completed"},
                    "1": {"i": 1, "status": "stopped", "resumed": True}},
           "runs": 1, "cuts": 0, "error": None, "concurrency": 2}
    ok, state = batch.state_from_snapshot(old, 1)
    assert ok
    assert {k: progress_of(state)[k] for k in ("total", "done", "failed", "resumed")} == {
        "total": 3, "done": 1, "failed": 1, "resumed": 1}
    state = batch.apply(state, Event("sotopia_batch/b", 1, "episode_done", {"results": [
        {"i": 1, "status": "completed"}, {"i": 2, "status": "failed"}]}, 0.0, 1))
    assert {k: progress_of(state)[k] for k in ("done", "failed", "resumed")} == {
        "done": 2, "failed": 1, "resumed": 0}



def test_a_batch_forked_after_turn_two_pairs_each_episode_with_its_source(server):
    """Every completed episode of a batch forked after its second turn with another model for
    agent 2: each fork's log opens with its source's events (the first says forked_from), is
    held (forked), goes on with the new model, and the results pair each fork with its source
    per dimension. Refusals: an id taken by another plan, an unknown batch, a turn no episode
    reached."""
    base, _, client = server
    u = httpx.Client(base_url=base, timeout=60)
    source = f"src-{uuid.uuid4().hex[:6]}"
    u.post("/v1/batches", json={"batch_id": source, "spec": {
        "scenarios": SCENARIOS[:1], "agents": AGENTS[:2], "models": ["builtin"], "reps": 3,
        "max_turns": 6}})
    assert poll(lambda: u.get(f"/v1/batches/{source}").json()["status"],
                lambda s: s != "running", 120) == "finished"
    r = u.post(f"/v1/batches/{source}/fork", json={"turn": 2, "agent": 2, "model": "slow",
                                                   "batch_id": f"{source}-fork"})
    assert r.status_code == 202, r.text
    assert poll(lambda: u.get(f"/v1/batches/{source}-fork").json()["status"],
                lambda s: s != "running", 120) == "finished"
    body = u.get(f"/v1/batches/{source}-fork/results").json()
    assert [row["status"] for row in body["rows"]] == ["completed"] * 3
    assert body["paired"][0]["dimension"] == "overall"
    assert {p["dimension"] for p in body["paired"]} >= {"goal", "believability"}
    assert all(p["pairs"] == 3 and p["n"] == 6 for p in body["paired"])
    assert u.get(f"/v1/batches/{source}/results").json()["paired"] is None
    src_rows = {r["index"]: r for r in u.get(f"/v1/batches/{source}/results").json()["rows"]}
    for row in body["rows"]:
        events = client.ref(EPISODE, row["episode"]).events()
        origin = src_rows[row["index"]]["episode"]
        assert events[0].metadata["forked_from"]["stream"] == f"{EPISODE}/{origin}"
        turns = [e for e in events if e.type == "turn"]
        source_turns = [e for e in client.ref(EPISODE, origin).events() if e.type == "turn"]
        assert [t.data for t in turns[:2]] == [t.data for t in source_turns[:2]]
        types = [e.type for e in events]
        assert types[turns[1].seq:turns[1].seq + 3] == ["forked", "models_changed", "resumed"]
        assert next(e for e in events if e.type == "models_changed").data["models"][2] == "slow"
        assert row["resumed"] is False  # a fork's first going on is not a crash's resume
    taken = u.post(f"/v1/batches/{source}/fork", json={
        "turn": 2, "model": "slow", "batch_id": f"{source}-fork", "agent": 1})
    assert taken.status_code == 409, taken.text
    assert u.post("/v1/batches/nothing/fork", json={"turn": 1, "model": "x"}
                  ).status_code == 404
    too_far = u.post(f"/v1/batches/{source}/fork", json={"turn": 999, "model": "x"})
    assert too_far.status_code == 422 and "no completed episode" in too_far.text
