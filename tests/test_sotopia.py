"""The Sotopia family (issue 12) over real HTTP and WebSocket on loopback, on real hosts: the
seed's curl and aiohttp examples as written, ports of Sotopia's own API tests (seeded through
the API), the golden 20-turn capture, every WebSocket error code, stop, hang-up, a host killed
mid-episode, max_turns, custom dimensions, failing models and evaluators, human turns, and
the records' CRUD and searches."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import httpx
import pytest
import websockets.sync.client as ws
from websockets.exceptions import ConnectionClosed, InvalidStatus

from actors.sotopia import builtin_data
from actors.sotopia.episode import EPISODE, episode
from api.sotopia.views import episode_log
from schemas.sotopia import AgentProfile, EnvironmentProfile, EpisodeLog
from tests.conftest import (fixtures_dir, kill_hosts, poll, standin_provider,
                            start_inprocess_server)

DIMS = {d["name"]: (d["range_low"], d["range_high"]) for d in builtin_data.SOTOPIA_DIMENSIONS}


@pytest.fixture(scope="module")
def server(ray_session, tmp_path_factory, standin):
    models = {"providers": {"slow": {"type": "builtin", "delay": 0.03},
                            "oa": standin_provider(standin, retries=2)},
              "aliases": {"slow-model": "slow", "standin": "oa"}}
    url, _, client = start_inprocess_server(
        ray_session, str(tmp_path_factory.mktemp("sotopia")), models=json.dumps(models),
        options={"ACTORLOG_SOTOPIA_SWEEP_SECONDS": "1"})
    yield url, client
    kill_hosts(client)


def _ws(base: str, token: str | None = "t", path: str = "/ws/simulation"):
    query = "" if token is None else f"?token={token}"
    return ws.connect(base.replace("http://", "ws://") + path + query, open_timeout=10)


def _ws_or_none(base: str, token: str):
    try:
        return _ws(base, token)
    except InvalidStatus:  # refused: the token is still in use
        return None


def _until_end(sock, timeout: float = 120) -> list[dict]:
    """A whole simulation read off the live socket the way Sotopia's page reads it: a
    SERVER_MSG carries data.type "messages", an ERROR data.content, END_SIM ends the loop, and
    any other frame (a FINISH_SIM from the server, say) is an error: the page's handler falls
    into its default case and crashes on it."""
    frames, deadline = [], time.monotonic() + timeout
    while True:
        frame = json.loads(sock.recv(timeout=max(0.1, deadline - time.monotonic())))
        frames.append(frame)
        kind = frame["type"]
        if kind == "END_SIM":
            return frames
        if kind == "SERVER_MSG":
            assert frame["data"]["type"] == "messages", frame
            assert isinstance(frame["data"]["messages"], dict), frame
        elif kind == "ERROR":
            assert isinstance(frame["data"]["content"], str), frame
        else:
            raise AssertionError(f"Sotopia's page cannot handle a {kind} frame: {frame}")


def _start(sock, env_id: str, agent_ids: list[str], **extra) -> None:
    sock.send(json.dumps({"type": "START_SIM", "data": {"env_id": env_id,
                                                        "agent_ids": agent_ids, **extra}}))


def _builtin_pair() -> tuple[str, list[str]]:
    return (builtin_data.SCENARIOS[0]["pk"], [a["pk"] for a in builtin_data.AGENTS[:2]])


def _agent(base: str, **fields) -> str:
    return httpx.post(f"{base}/agents", json={"first_name": "A", "last_name": "B",
                                              **fields}).json()


def _scenario(base: str, **fields) -> str:
    return httpx.post(f"{base}/scenarios", json={"scenario": "Two people talk.",
                                                 "agent_goals": ["Goal A", "Goal B"],
                                                 **fields}).json()


# ------------------------------------------------------------------ the seed, as written


def _seed() -> str:
    with open(fixtures_dir("seeds", "000_bb861c773d5a52c2.txt"), encoding="utf-8") as f:
        return f.read()


def test_the_seeds_curl_examples_and_the_built_in_set(server):
    base, _ = server
    commands = re.findall(r'^curl .*$', _seed(), re.MULTILINE)
    assert len(commands) == 2
    got = []
    for command in commands:
        url = re.search(r'"(http://[^"]+)"', command).group(1).replace(
            "http://localhost:8000", base)
        out = subprocess.run(["curl", "-sS", "-X", "GET", url], capture_output=True,
                             timeout=30, check=True)
        got.append(json.loads(out.stdout))
    scenarios, agents = got
    assert {s["pk"] for s in scenarios} >= {s["pk"] for s in builtin_data.SCENARIOS}
    assert {a["pk"] for a in agents} >= {a["pk"] for a in builtin_data.AGENTS}
    for s in scenarios:
        EnvironmentProfile.model_validate(s)
    for a in agents:
        AgentProfile.model_validate(a)
    dims = httpx.get(f"{base}/evaluation_dimensions").json()
    assert {d["name"]: (d["range_low"], d["range_high"]) for d in dims["sotopia"]} == DIMS
    assert {"builtin", "slow-model", "standin"} <= set(httpx.get(f"{base}/models").json())
    assert httpx.get(f"{base}/health").json() == {
        "status": "ok", "message": "All systems operational",
        "components": {"database": "connected"}}


def test_the_seeds_aiohttp_example_as_written(server):
    base, _ = server
    code = re.search(r"```python\n(import aiohttp.*?)```", _seed(), re.DOTALL).group(1)
    env_id, (a1, a2) = _builtin_pair()
    code = (code.replace("{API_BASE}", base.removeprefix("http://"))
            .replace("{YOUR_TOKEN}", "seed-example").replace("{ENV_ID}", env_id)
            .replace("{AGENT1_PK}", a1).replace("{AGENT2_PK}", a2)
            + "\nasyncio.run(main())\n")
    # The example reads until the server closes; Sotopia's server (and ours) keeps the socket
    # open for another START_SIM, so the example is stopped once it has printed END_SIM.
    proc = subprocess.Popen([sys.executable, "-u", "-c", code], stdout=subprocess.PIPE,
                            text=True)
    lines = []
    try:
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            lines.append(line)
            if '"END_SIM"' in line or time.monotonic() > deadline:
                break
    finally:
        proc.kill()
        proc.wait(timeout=30)
    frames = [json.loads(line.removeprefix("Received: ")) for line in lines]
    assert [f["type"] for f in frames[-2:]] == ["SERVER_MSG", "END_SIM"]
    assert "FINISH_SIM" not in {f["type"] for f in frames}
    final = frames[-2]["data"]["messages"]
    assert final["environment"] == env_id and final["agents"] == [a1, a2]
    assert all(len(r[1]) == 8 for r in final["rewards"])  # seven dimensions and the overall


# ------------------------------------------------------------------ Sotopia's own API tests


def test_ports_of_sotopias_api_tests_seeded_through_the_api(server):
    """tests/api/test_fastapi.py (spec section 4), its mock data posted through the API, the
    EpisodeLog made by running an episode (Sotopia has no API to write one)."""
    base, _ = server
    u = httpx.Client(base_url=base, timeout=60)
    for first in ("John", "Jane"):  # tests 12-15: the creations
        r = u.post("/agents", json={"pk": f"tmppk_agent{1 if first == 'John' else 2}",
                                    "first_name": first, "last_name": "Doe",
                                    "occupation": "test_occupation", "gender": "test_gender",
                                    "tag": "test_tag"})
        assert (r.status_code, r.json()) == (200, f"tmppk_agent{1 if first == 'John' else 2}")
    r = u.post("/scenarios", json={"pk": "tmppk_env_profile", "codename": "test_codename",
                                   "scenario": "A", "agent_goals": ["B", "C"],
                                   "tag": "test_tag"})
    assert r.status_code == 200 and r.json() == "tmppk_env_profile"
    r = u.post("/relationship", json={"pk": "tmppk_relationship", "agent_1_id": "tmppk_agent1",
                                      "agent_2_id": "tmppk_agent2", "relationship": 1.0,
                                      "tag": "test_tag"})
    assert (r.status_code, r.json()) == (200, "tmppk_relationship")
    r = u.post("/evaluation_dimensions", json={
        "pk": "tmppk_evaluation_dimension_list", "name": "test_dimension_list",
        "dimensions": [{"pk": "tmppk_evaluation_dimension", "name": "test_dimension",
                        "description": "test_description", "range_high": 10,
                        "range_low": -10}]})
    assert (r.status_code, r.json()) == (200, "tmppk_evaluation_dimension_list")
    pk = u.post("/simulate", json={"env_id": "tmppk_env_profile",
                                   "agent_ids": ["tmppk_agent1", "tmppk_agent2"],
                                   "models": ["builtin"] * 3, "max_turns": 4,
                                   "tag": "test_tag"})
    assert pk.status_code == 202
    assert poll(lambda: u.get(f"/simulation_status/{pk.text}").json(),
                lambda s: s != "Started") == "Completed"

    assert "tmppk_env_profile" in [s["pk"] for s in u.get("/scenarios").json()]  # 1
    assert u.get("/scenarios/id/tmppk_env_profile").json()[0]["scenario"] == "A"  # 2
    assert u.get("/scenarios/codename/test_codename").json()[0]["codename"] == \
        "test_codename"  # 3
    assert {"tmppk_agent1", "tmppk_agent2"} <= {a["pk"] for a in u.get("/agents").json()}  # 4
    assert u.get("/agents/id/tmppk_agent1").json()[0]["first_name"] == "John"  # 5
    assert u.get("/agents/gender/test_gender").json()[0]["gender"] == "test_gender"  # 6
    assert u.get("/agents/occupation/test_occupation").json()[0]["occupation"] == \
        "test_occupation"  # 7
    r = u.get(f"/episodes/id/{pk.text}")  # 8
    assert r.status_code == 200 and [e["pk"] for e in r.json()] == [pk.text]
    assert u.get("/episodes/tag/test_tag").json()[0]["tag"] == "test_tag"  # 9
    assert u.get("/relationship/tmppk_agent1/tmppk_agent2").json() == "1: know_by_name"  # 10
    dims = u.get("/evaluation_dimensions").json()  # 11
    assert dims["test_dimension_list"][0]["name"] == "test_dimension"
    # 20: the WebSocket; its first two frames are SERVER_MSG, then the client finishes
    with _ws(base, "test") as sock:
        _start(sock, "tmppk_env_profile", ["tmppk_agent1", "tmppk_agent2"],
               agent_models=["slow-model", "slow-model"], evaluator_model="builtin",
               evaluation_dimension_list_name="test_dimension_list")
        assert [json.loads(sock.recv(timeout=30))["type"] for _ in range(2)] == \
            ["SERVER_MSG", "SERVER_MSG"]
        sock.send(json.dumps({"type": "FINISH_SIM"}))
        tail = _until_end(sock)
    assert [f["type"] for f in tail[-2:]] == ["ERROR", "END_SIM"]
    assert tail[-2]["data"]["type"] == "SIMULATION_INTERRUPTED"
    for path in ("/agents/tmppk_agent1", "/scenarios/tmppk_env_profile",  # 16, 17
                 "/relationship/tmppk_relationship",  # 18
                 "/evaluation_dimensions/tmppk_evaluation_dimension_list"):  # 19
        r = u.delete(path)
        assert (r.status_code, r.json()) == (200, path.rsplit("/", 1)[1])


# ------------------------------------------------------------------ episodes


def test_a_scripted_episode_reads_like_the_golden_capture(server):
    """The captured 20-turn stream of the real server, replayed with its profiles and a
    model (the OpenAI-compatible stand-in) that says "hello <n>" as its mock did: every
    frame's turns, rows and texts are the same, past the opening backgrounds (whose wording
    is ours) and up to the evaluation (which the real server leaves at zero)."""
    base, _ = server
    with open(fixtures_dir("sotopia", "ws_messages.json"), encoding="utf-8") as f:
        golden = json.load(f)
    tag = uuid.uuid4().hex[:6]
    env = _scenario(base, pk=f"p_env-{tag}", scenario="Two friends chat")
    a1 = _agent(base, pk=f"p_agent1-{tag}", first_name="John", last_name="Doe", age=30,
                gender="male", occupation="teacher")
    a2 = _agent(base, pk=f"p_agent2-{tag}", first_name="Jane", last_name="Doe")
    with _ws(base, f"golden-{tag}") as sock:
        _start(sock, env, [a1, a2], agent_models=["standin", "standin"],
               evaluator_model="standin")
        frames = _until_end(sock)
    assert [f["type"] for f in frames] == [f["type"] for f in golden[:-1]] + ["END_SIM"]
    for ours, theirs in zip(frames[:-2], golden[:-2]):
        mine, real = ours["data"]["messages"], theirs["data"]["messages"]
        assert set(mine) == set(real) and ours["data"]["type"] == "messages"
        assert [[row[:2] for row in t] for t in mine["messages"]] == \
            [[row[:2] for row in t] for t in real["messages"]]
        assert [[row for row in t] for t in mine["messages"]][1:] == real["messages"][1:]
        assert [r[2] for r in mine["messages"][0][2:]] == [r[2] for r in
                                                          real["messages"][0][2:]]
    final = frames[-2]["data"]["messages"]
    assert final["rewards"] != [0.0, 0.0]  # scored, unlike the capture
    assert final["messages"][-2][0][:2] == ["Evaluation", "Rewards"]
    assert final["reasoning"].startswith(
        "Environment comments: terminated: The conversation is too long; \nAgent 1 comments:")


def test_scores_are_real_and_the_log_replays_to_the_same_episode_log(server):
    base, client = server
    env_id, agents = _builtin_pair()
    with _ws(base, f"score-{uuid.uuid4().hex[:6]}", path="/ws/simulate") as sock:
        _start(sock, env_id, agents, agent_models=["builtin", "builtin"],
               evaluator_model="builtin", tag="scored")
        frames = _until_end(sock)
    assert [f["type"] for f in frames[-2:]] == ["SERVER_MSG", "END_SIM"]
    assert all(f["type"] == "SERVER_MSG" for f in frames[:-1])
    final = EpisodeLog.model_validate(frames[-2]["data"]["messages"])
    for overall, dims in final.rewards:
        assert all(DIMS[k][0] <= v <= DIMS[k][1] for k, v in dims.items() if k in DIMS)
        assert dims["overall_score"] == overall
    assert final.models == ["builtin", "builtin", "builtin"]
    stored = httpx.get(f"{base}/episodes/id/{final.pk}").json()
    assert stored == [frames[-2]["data"]["messages"]]
    state = episode.fold(episode.initial_state(), client.ref(EPISODE, final.pk).events())
    assert episode_log(final.pk, state).model_dump(mode="json") == stored[0]
    assert httpx.get(f"{base}/simulation_status/{final.pk}").json() == "Completed"


def test_max_turns_and_custom_dimensions_are_honoured(server):
    base, _ = server
    tag = uuid.uuid4().hex[:6]
    r = httpx.post(f"{base}/evaluation_dimensions/", json={"name": f"warmth-{tag}", "dimensions": [
        {"name": f"warmth-{tag}", "description": "how warm", "range_low": 1, "range_high": 5},
        {"name": "goal", "description": "reused: already stored", "range_low": 0,
         "range_high": 3}]})
    assert r.status_code == 200
    env_id, agents = _builtin_pair()
    with _ws(base, f"turns-{tag}") as sock:
        _start(sock, env_id, agents, agent_models=["standin", "standin"],
               evaluator_model="standin", max_turns=3,
               evaluation_dimension_list_name=f"warmth-{tag}")
        frames = _until_end(sock)
    server_msgs = [f for f in frames if f["type"] == "SERVER_MSG"]
    assert len(server_msgs) == 1 + 3 + 1
    final = server_msgs[-1]["data"]["messages"]
    assert final["reasoning"].startswith(
        "Environment comments: terminated: The conversation is too long; ")
    # the stand-in scores each dimension at its top: warmth 5, and goal 10 (the stored goal
    # dimension's range is kept: a dimension is reused by name, as Sotopia does)
    assert final["rewards"][0] == [7.5, {f"warmth-{tag}": 5.0, "goal": 10.0,
                                         "overall_score": 7.5}]


def test_a_failing_evaluator_is_retried_then_recorded_as_a_failure_never_as_zero(server):
    base, client = server
    a1, a2 = _agent(base, first_name="Eve"), _agent(base, first_name="Bob")
    once = _scenario(base, scenario="They talk. judge badly once")
    always = _scenario(base, scenario="They talk. judge badly")
    models = {"agent_models": ["standin", "standin"], "evaluator_model": "standin",
              "max_turns": 2}
    with _ws(base, f"judge-{uuid.uuid4().hex[:6]}") as sock:
        _start(sock, once, [a1, a2], **models)
        recovered = _until_end(sock)
        _start(sock, always, [a1, a2], **models)  # the same socket, another simulation
        failed = _until_end(sock)
    assert recovered[-2]["data"]["messages"]["rewards"][0][0] == pytest.approx(
        sum(hi for _, hi in DIMS.values()) / 7)
    assert [f["type"] for f in failed[-3:]] == ["SERVER_MSG", "ERROR", "END_SIM"]
    assert failed[-2]["data"]["type"] == "SIMULATION_ERROR"
    assert failed[-2]["data"]["details"] == failed[-2]["data"]["content"]
    log = failed[-3]["data"]["messages"]
    assert log["rewards"] == [0.0, 0.0] and "Evaluation failed after 3 attempts" in \
        log["reasoning"]
    assert httpx.get(f"{base}/simulation_status/{log['pk']}").json() == "Error"
    events = client.ref(EPISODE, log["pk"]).events()
    assert events[-1].type == "evaluation_failed" and "schema" in events[-1].data["error"]


def test_model_endpoint_failures_are_retried_and_counted(server):
    base, client = server
    a1, a2 = _agent(base, first_name="Eve"), _agent(base, first_name="Bob")
    env = _scenario(base, scenario="fail please")  # the stand-in answers HTTP 500
    pk = httpx.post(f"{base}/simulate", json={"env_id": env, "agent_ids": [a1, a2],
                                              "models": ["standin"] * 3, "max_turns": 5,
                                              "tag": "failing"}).text
    status = poll(lambda: httpx.get(f"{base}/simulation_status/{pk}").json(),
                  lambda s: s != "Started", 60)
    assert status == "Error"
    events = client.ref(EPISODE, pk).events()
    turns = [e for e in events if e.type == "turn"]
    assert turns and all(len(t.data["model_errors"]) == 3 for t in turns)
    assert [e.type for e in events][-2:] == ["terminated", "evaluation_failed"]
    assert "stales" in events[-2].data["reasons"]


def test_a_client_that_leaves_mid_episode_does_not_lose_it(server):
    base, _ = server
    env_id, agents = _builtin_pair()
    with _ws(base, f"leave-{uuid.uuid4().hex[:6]}") as sock:
        _start(sock, env_id, agents, agent_models=["slow-model", "slow-model"],
               evaluator_model="builtin")
        pk = json.loads(sock.recv(timeout=30))["data"]["messages"]["pk"]
    assert poll(lambda: httpx.get(f"{base}/simulation_status/{pk}").json(),
                lambda s: s != "Started", 120) == "Completed"
    log = httpx.get(f"{base}/episodes/id/{pk}").json()[0]
    assert log["messages"][-1][0][:2] == ["Evaluation", "Reasoning"]


def test_a_human_speaks_for_an_agent_with_client_msg(server):
    base, _ = server
    env_id, agents = _builtin_pair()
    with _ws(base, f"human-{uuid.uuid4().hex[:6]}") as sock:
        sock.send(json.dumps({"type": "CLIENT_MSG", "data": {"content": "too early"}}))
        early = json.loads(sock.recv(timeout=30))
        _start(sock, env_id, agents, agent_models=["human", "builtin"], max_turns=4)
        opening, waiting = (json.loads(sock.recv(timeout=30)) for _ in range(2))
        assert waiting["data"]["waiting_for"] == agents[0]
        sock.send(json.dumps({"type": "CLIENT_MSG", "data": {"content": "Hello, neighbour!"}}))
        mine = json.loads(sock.recv(timeout=30))
        sock.send(json.dumps({"type": "CLIENT_MSG", "data": {"agent_id": agents[1],
                                                             "content": "not my turn"}}))
        frames = [mine]
        while len([f for f in frames if f["type"] == "ERROR"]) < 1:
            frames.append(json.loads(sock.recv(timeout=30)))
        sock.send(json.dumps({"type": "CLIENT_MSG", "data": {
            "action_type": "leave", "argument": ""}}))
        frames += _until_end(sock)
    assert early["data"]["type"] == "SIMULATION_NOT_STARTED"
    assert opening["type"] == "SERVER_MSG" and "waiting_for" not in opening["data"]
    rows = mine["data"]["messages"]["messages"][0]
    assert rows[2] == ["Mara Okafor", "Environment", ' said: "Hello, neighbour!"']
    errors = [f for f in frames if f["type"] == "ERROR"]
    assert errors[0]["data"]["type"] == "OTHER" and "turn" in errors[0]["data"]["details"]
    final = [f for f in frames if f["type"] == "SERVER_MSG"][-1]["data"]["messages"]
    assert final["agent_classes"] == ["Human", "LLMAgent"]
    assert "Too few active agents" in final["reasoning"]  # the human left


def test_every_error_code_and_the_token_rules(server, monkeypatch):
    base, _ = server
    env_id, agents = _builtin_pair()
    for token in (None, ""):  # NOT_AUTHORIZED: missing or empty token
        with _ws(base, token) as sock:
            frame = json.loads(sock.recv(timeout=10))
            assert frame["data"]["type"] == "NOT_AUTHORIZED"
            with pytest.raises(ConnectionClosed) as closed:
                sock.recv(timeout=10)
            assert closed.value.rcvd.code == 1008
    monkeypatch.setenv("SOTOPIA_WS_TOKENS", "alpha,beta")
    with _ws(base, "gamma") as sock:
        assert json.loads(sock.recv(timeout=10))["data"]["type"] == "NOT_AUTHORIZED"
    with _ws(base, "alpha") as sock:
        with pytest.raises(InvalidStatus):  # one socket per token: refused at the handshake
            _ws(base, "alpha")
        sock.send(json.dumps({"type": "END_SIM"}))
        codes = [json.loads(sock.recv(timeout=10))["data"]["type"]]
        sock.send("{not json")
        sock.send(json.dumps({"type": "DANCE"}))
        sock.send(json.dumps({"type": "START_SIM", "data": {"env_id": env_id}}))
        _start(sock, "no-such-env", agents)
        _start(sock, env_id, [agents[0], "no-such-agent"])
        _start(sock, env_id, agents, evaluation_dimension_list_name="no-such-list")
        codes += [json.loads(sock.recv(timeout=10))["data"]["type"] for _ in range(6)]
        _start(sock, env_id, agents, agent_models=["slow-model"] * 2)
        assert json.loads(sock.recv(timeout=30))["type"] == "SERVER_MSG"
        _start(sock, env_id, agents)
        while (frame := json.loads(sock.recv(timeout=30)))["type"] != "ERROR":
            pass
        codes.append(frame["data"]["type"])
        sock.send(json.dumps({"type": "END_SIM", "data": ""}))
        tail = _until_end(sock)
        codes.append(tail[-2]["data"]["type"])
    assert codes == ["SIMULATION_NOT_STARTED", "OTHER", "OTHER", "OTHER",
                     "RESOURCE_NOT_FOUND", "RESOURCE_NOT_FOUND", "RESOURCE_NOT_FOUND",
                     "SIMULATION_ALREADY_STARTED", "SIMULATION_INTERRUPTED"]
    # released when its socket closed: the server's handler ends a moment after the close
    # handshake the client waited for, so the token is free once that handler has ended
    with poll(lambda: _ws_or_none(base, "alpha"), lambda s: s is not None, 10) as sock:
        sock.send(json.dumps({"type": "FINISH_SIM"}))
        assert json.loads(sock.recv(timeout=10))["data"]["type"] == "SIMULATION_NOT_STARTED"


def test_an_episode_on_a_host_killed_with_sigkill_goes_on_from_its_last_step(server):
    base, client = server
    env_id, agents = _builtin_pair()
    pk = httpx.post(f"{base}/simulate", json={"env_id": env_id, "agent_ids": agents,
                                              "models": ["slow-model"] * 3, "max_turns": 20,
                                              "tag": "sigkill"}).text
    poll(lambda: len([e for e in client.ref(EPISODE, pk).events() if e.type == "turn"]),
         lambda n: n >= 2, 60)
    before = {s["index"]: s["pid"] for s in client.stats()}
    for pid in before.values():
        os.kill(pid, signal.SIGKILL)
    assert poll(lambda: httpx.get(f"{base}/simulation_status/{pk}").json(),
                lambda s: s != "Started", 120) == "Completed"
    events = client.ref(EPISODE, pk).events()
    types = [e.type for e in events]
    assert types.index("cut") < types.index("resumed") < types.index("evaluated")
    steps = [e.data["step"] for e in events if e.type == "turn"]
    assert steps == list(range(len(steps)))


# ------------------------------------------------------------------ records and searches


def test_records_crud_and_every_search(server):
    base, _ = server
    u = httpx.Client(base_url=base, timeout=30)
    tag = uuid.uuid4().hex[:6]
    pk = _agent(base, first_name="Zed", gender="Nonbinary", occupation=f"Potter{tag}")
    assert u.post("/agents/", json={"first_name": "Q", "last_name": "R",
                                    "unknown": 1}).status_code == 200  # extra keys ignored
    assert u.put(f"/agents/{pk}", json={"first_name": "Zed", "last_name": "Two",
                                        "occupation": f"Potter{tag}"}).json() == pk
    assert u.get(f"/agents/id/{pk}").json()[0]["last_name"] == "Two"
    assert u.put("/agents/nobody", json={"first_name": "a", "last_name": "b"}).status_code \
        == 404
    assert u.get(f"/agents/occupation/potter{tag}").json()[0]["pk"] == pk
    assert u.get("/agents/", params={"get_by": f"occupation/Potter{tag}"}).json()[0]["pk"] \
        == pk
    s = _scenario(base, codename=f"code-{tag}", tag=f"barter market-{tag}")
    assert u.put(f"/scenarios/{s}", json={"scenario": "Changed.", "codename": f"code-{tag}",
                                          "tag": f"barter market-{tag}"}).json() == s
    for path in (f"/scenarios/tag/market-{tag}", f"/scenarios/codename/code-{tag}",
                 f"/scenarios/id/{s}"):
        assert [x["pk"] for x in u.get(path).json()] == [s], path
    assert [x["pk"] for x in u.get("/scenarios/", params={"get_by": f"tag/market-{tag}"}
                                   ).json()] == [s]
    assert u.get("/scenarios/tag/negotiation").json()  # a keyword of the built-in tags
    # errors: 404 with a detail, 422 for bad bodies, never a 500
    assert u.get("/scenarios/id/nothing").json() == {
        "detail": "Scenario with id=nothing not found"}
    assert u.get("/agents/id/nothing").status_code == 404
    assert u.get("/episodes/id/nothing").status_code == 404
    assert u.get("/simulation_status/nothing").status_code == 404
    assert u.get("/relationship/a/b").status_code == 404
    assert u.get("/scenarios/tag/zzz-none").status_code == 404
    assert u.get("/scenarios/", params={"get_by": "colour/red"}).status_code == 422
    assert u.get("/scenarios/colour/red").status_code == 422
    assert u.post("/scenarios", json={"codename": "x"}).status_code == 422
    assert u.post("/scenarios", json={"scenario": "x", "nope": 1}).status_code == 422
    assert u.post("/relationship", json={"agent_1_id": "a", "agent_2_id": "b",
                                         "relationship": 9}).status_code == 422
    assert u.post("/simulate", json={"env_id": s, "agent_ids": [pk], "models": ["a"],
                                     "max_turns": 1, "tag": ""}).status_code == 422
    assert u.post("/simulate", json={"env_id": "none", "agent_ids": [pk, pk],
                                     "models": ["a"] * 3, "max_turns": 1, "tag": ""}
                  ).json() == {"detail": "Environment with id=none not found"}
    for path in ("/agents/nothing", "/scenarios/nothing", "/relationship/nothing",
                 "/episodes/nothing", "/evaluation_dimensions/nothing"):
        assert u.delete(path).status_code == 404, path
    # the seed's POST /episodes/, paging newest first, tag filters, deletion
    ids = []
    for _ in range(3):
        r = u.post("/episodes/", json={"scenario_id": s, "agent_ids": [pk, pk],
                                       "episode_tag": f"page-{tag}", "models": ["builtin"]})
        assert r.status_code == 202
        ids.append(r.json())
    for i in ids:
        assert poll(lambda: u.get(f"/simulation_status/{i}").json(),
                    lambda st: st != "Started") == "Completed"
    assert [e["pk"] for e in u.get(f"/episodes/tag/page-{tag}").json()] == ids[::-1]
    assert [e["pk"] for e in u.get("/episodes", params={"tag": f"page-{tag}", "limit": 1,
                                                       "offset": 1}).json()] == [ids[1]]
    assert [e["pk"] for e in u.get("/episodes/", params={"get_by": f"tag/page-{tag}"}
                                   ).json()] == ids[::-1]
    assert u.delete(f"/episodes/{ids[0]}").json() == ids[0]
    assert u.get(f"/episodes/id/{ids[0]}").status_code == 404
    assert [e["pk"] for e in u.get(f"/episodes/tag/page-{tag}").json()] == ids[:0:-1]
    # deleting the list by name (the real server takes the pk), its dimensions stay
    name = f"list-{tag}"
    u.post("/evaluation_dimensions", json={"name": name, "dimensions": [
        {"name": f"d-{tag}", "description": "x", "range_low": 0, "range_high": 1}]})
    assert u.post("/evaluation_dimensions", json={"name": name}).status_code == 409
    assert u.delete(f"/evaluation_dimensions/{name}").json() == name
    assert name not in u.get("/evaluation_dimensions").json()
    assert u.delete(f"/agents/{pk}").json() == pk
    assert u.get(f"/agents/id/{pk}").status_code == 404


def test_the_loader_takes_sotopias_exports(server, tmp_path):
    """Sotopia's local backend directory (one <pk>.json per record) and JSON lines, loaded
    twice: the second time changes nothing."""
    from api.sotopia.load import load

    base, _ = server
    tag = uuid.uuid4().hex[:6]
    agents = tmp_path / "data" / "AgentProfile"
    agents.mkdir(parents=True)
    for n in (1, 2):
        (agents / f"a{n}-{tag}.json").write_text(json.dumps({
            "pk": f"a{n}-{tag}", "first_name": f"F{n}", "last_name": "L", "age": 40,
            "occupation": "Chef", "tag": f"load-{tag}", "secret": "s"}))
    envs = tmp_path / "data" / "EnvironmentProfile"
    envs.mkdir()
    (envs / f"e-{tag}.json").write_text(json.dumps({
        "pk": f"e-{tag}", "codename": f"load-{tag}", "scenario": "Cooking contest.",
        "agent_goals": ["Win", "Win"], "relationship": 2, "tag": f"load-{tag}",
        "a_field_from_another_version": 1}))
    lines = tmp_path / "rel.jsonl"
    lines.write_text(json.dumps({"pk": f"r-{tag}", "agent_1_id": f"a1-{tag}",
                                 "agent_2_id": f"a2-{tag}", "relationship": 3}) + "\n")
    for _ in range(2):
        loaded, failed = load([str(tmp_path / "data"), str(lines)], base)
        assert failed == 0 and loaded == {"agent": 2, "scenario": 1, "relationship": 1,
                                          "dimension_list": 0}
    assert len(httpx.get(f"{base}/agents/occupation/chef").json()) == 2
    assert httpx.get(f"{base}/relationship/a1-{tag}/a2-{tag}").json() == "3: friend"
    r = httpx.post(f"{base}/simulate", json={"env_id": f"e-{tag}",
                                             "agent_ids": [f"a1-{tag}", f"a2-{tag}"],
                                             "models": ["builtin"] * 3, "max_turns": 6,
                                             "tag": f"load-{tag}"})
    assert r.status_code == 202


def test_every_operation_of_the_real_servers_document_is_served(server):
    """The real server's generated OpenAPI document (fixtures/sotopia/openapi.json): each of
    its operations is in ours, with its path parameters' names (for a client generated from
    it), and the request bodies take the same required fields."""
    base, _ = server
    with open(fixtures_dir("sotopia", "openapi.json"), encoding="utf-8") as f:
        theirs = json.load(f)
    ours = httpx.get(f"{base}/openapi.json").json()
    for path, operations in theirs["paths"].items():
        for method, spec in operations.items():
            assert method in ours["paths"].get(path, {}), f"{method.upper()} {path}"
            mine = ours["paths"][path][method]
            assert {p["name"] for p in mine.get("parameters", []) if p["in"] == "path"} == \
                {p["name"] for p in spec.get("parameters", []) if p["in"] == "path"}, path
            body = (spec.get("requestBody") or {}).get("content", {}).get("application/json")
            if body:
                name = body["schema"]["$ref"].rsplit("/", 1)[1]
                mine_ref = mine["requestBody"]["content"]["application/json"]["schema"]
                my_name = mine_ref["$ref"].rsplit("/", 1)[1]
                assert set(theirs["components"]["schemas"][name].get("required", [])) == set(
                    ours["components"]["schemas"][my_name].get("required", [])), path
