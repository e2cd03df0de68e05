"""The Sotopia episode in this process: its rules (social.py) as plain functions, and the
episode kind on an EntityTable over the in-memory store (which passes the same conformance
suite as SQLite and PostgreSQL) with the built-in model: no Ray, no HTTP. This is also how a
Python program runs an episode without the WebSocket."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

import actors.sotopia.episode  # noqa: F401  (registers the kinds)
import actors.sotopia.profiles  # noqa: F401
from actors.sotopia import builtin_data, social
from actors.sotopia.episode import EPISODE, episode, outcome_of
from api.sotopia.views import episode_log, status_of
from llm.builtin_social import social_answer
from llm.port import ModelRequest
from llm.router import ModelRouter
from runtime.events import stream_id
from runtime.host import EntityTable, ErrorReply, replay
from runtime.services import Services
from runtime.stores.memory import MemoryEventStore

SPEAK = {"action_type": "speak", "argument": "hi", "to": []}
NONE = {"action_type": "none", "argument": "", "to": []}
LEAVE = {"action_type": "leave", "argument": "", "to": []}


def _setup(**extra):
    return {"env_id": builtin_data.SCENARIOS[0]["pk"],
            "agent_ids": [a["pk"] for a in builtin_data.AGENTS[:2]],
            "scenario": builtin_data.SCENARIOS[0], "agents": builtin_data.AGENTS[:2],
            "models": ["builtin", "slow", "slow"], "max_turns": 20, "tag": "t",
            "dimension_list": "sotopia", "dimensions": builtin_data.SOTOPIA_DIMENSIONS,
            "humans": [False, False], **extra}


def _table() -> EntityTable:
    store = MemoryEventStore(f"sotopia-{uuid.uuid4().hex}")
    models = ModelRouter({"providers": {"slow": {"type": "builtin", "delay": 0.002}}})
    return EntityTable(store, services=Services(store, models=models))


# ------------------------------------------------------------------ rules


def test_termination_follows_sotopias_three_rules():
    assert social.termination([], 20) == ""
    assert social.termination([[SPEAK, NONE]] * 3, 3) == "The conversation is too long; "
    assert social.termination([[SPEAK, NONE], [NONE, LEAVE]], 20) == "Too few active agents; "
    # more than two "did nothing" rows in a row, counted as Sotopia counts its message rows
    # (every agent's, in agent order): the second agent's silence after the first spoke is
    # three rows, the first's after the second spoke only two
    assert social.termination([[NONE, SPEAK], [NONE, NONE]], 20) == ""
    stale = "The conversation stales for too long; "
    assert social.termination([[NONE, SPEAK], [NONE, NONE], [NONE, NONE]], 20) == stale
    assert social.termination([[SPEAK, NONE], [NONE, NONE]], 20) == stale


def test_observations_hide_private_actions_and_nothing_from_others():
    names = ["A B", "C D", "E F"]
    private = {"action_type": "speak", "argument": "psst", "to": ["C D"]}
    assert social.observation(3, names, [private, NONE, NONE], 1) == \
        "Turn #3: A B  [private to ['C D']] said: \"psst\"\n"
    assert social.observation(3, names, [private, NONE, NONE], 2) == "Turn #3: \n"
    assert social.action_text(NONE) == " did nothing"
    assert social.action_text({"action_type": "non-verbal communication",
                               "argument": "nods"}) == " [non-verbal communication] nods"


def test_each_agent_sees_its_own_background_and_goal_only():
    scenario, agents = builtin_data.SCENARIOS[0], builtin_data.AGENTS[:2]
    mine = social.background(scenario, agents, 0)
    assert "Mara Okafor's goal: Get the van for Saturday. You promised" in mine
    assert "Tomas Lind's goal: Unknown" in mine
    assert "two months behind on rent" not in mine  # the other's secret
    assert "She failed her first licence exam" in mine  # its own
    everything = social.background(scenario, agents, None)
    assert "two months behind on rent" in everything and "Unknown" not in everything


def test_the_builtin_model_answers_social_requests_within_the_schema():
    import jsonschema

    scenario, agents = builtin_data.SCENARIOS[2], builtin_data.AGENTS[2:4]
    names = [social.name_of(a) for a in agents]
    steps, kinds = [], set()
    while not social.termination(steps, 20):
        me = len(steps) % 2
        request = ModelRequest(social.agent_prompt(scenario, agents, steps, me),
                               json_schema=social.action_schema(names))
        action = social_answer(request)
        jsonschema.validate(action, request.json_schema)
        kinds.add(action["action_type"])
        steps.append([action if i == me else NONE for i in range(2)])
    assert "leave" in kinds and "speak" in kinds  # it leaves once its goal is met
    dims = builtin_data.SOTOPIA_DIMENSIONS
    request = ModelRequest(social.evaluation_prompt(scenario, agents, steps, dims),
                           json_schema=social.evaluation_schema(dims, 2))
    judged = social_answer(request)
    jsonschema.validate(judged, request.json_schema)
    other = ModelRequest(social.evaluation_prompt(scenario, agents, steps[:3], dims),
                         json_schema=social.evaluation_schema(dims, 2))
    assert social_answer(other) != judged  # scores follow the conversation


def test_aggregation_is_sotopias_unweighted_mean():
    dims = [{"name": "goal"}, {"name": "secret"}]
    evaluations = {"agent_1": {"goal": {"reasoning": "r1", "score": 8},
                               "secret": {"reasoning": "r2", "score": -2}},
                   "agent_2": {"goal": {"reasoning": "r3", "score": 4},
                               "secret": {"reasoning": "r4", "score": 0}}}
    rewards, reasoning = social.aggregate(evaluations, dims, ["A", "B"], "x; ")
    assert rewards == [[3.0, {"goal": 8.0, "secret": -2.0, "overall_score": 3.0}],
                       [2.0, {"goal": 4.0, "secret": 0.0, "overall_score": 2.0}]]
    assert reasoning == ("Environment comments: terminated: x; \nAgent 1 comments:\ngoal: r1\n"
                         "secret: r2\nAgent 2 comments:\ngoal: r3\nsecret: r4\n")


# ------------------------------------------------------------------ the episode kind


async def test_an_episode_runs_to_scores_and_its_log_replays_to_the_same_episode_log():
    table = _table()
    reply = await table.ask(EPISODE, "e1", {"type": "start", "setup": _setup()})
    assert not isinstance(reply, ErrorReply), reply
    _, state = await table.state(EPISODE, "e1")
    assert outcome_of(state) == "completed" and status_of(state) == "Completed"
    log = episode_log("e1", state)
    assert len(log.rewards) == 2
    for overall, dims in log.rewards:
        assert set(dims) == {d["name"] for d in builtin_data.SOTOPIA_DIMENSIONS} | {
            "overall_score"}
        for d in builtin_data.SOTOPIA_DIMENSIONS:
            assert d["range_low"] <= dims[d["name"]] <= d["range_high"]
        assert overall == pytest.approx(sum(v for k, v in dims.items()
                                            if k != "overall_score") / 7)
    assert log.messages[-2][0][:2] == ("Evaluation", "Rewards")
    replayed, _, _ = await replay(table.store, episode, stream_id(EPISODE, "e1"), None)
    assert episode_log("e1", replayed) == episode_log("e1", state)
    again = await table.ask(EPISODE, "e1", {"type": "start", "setup": _setup()})
    assert isinstance(again, ErrorReply) and again.code == "conflict"


async def test_a_cancel_stops_within_one_model_call_and_the_log_says_stopped():
    table = _table()
    task = asyncio.ensure_future(table.ask(EPISODE, "e2", {
        "type": "start", "setup": _setup(models=["slow", "slow", "slow"])}))
    while True:
        await asyncio.sleep(0.01)
        _, state = await table.state(EPISODE, "e2")
        if state["steps"]:
            break
    assert table.running(EPISODE, "e2") == "start"
    assert table.cancel(EPISODE, "e2", "interrupted by the client")["cancelled"]
    await task
    _, state = await table.state(EPISODE, "e2")
    assert outcome_of(state) == "stopped" and status_of(state) == "Error"
    assert state["rewards"] is None and table.running(EPISODE, "e2") is None


async def test_an_episode_cut_by_a_crash_resumes_from_its_last_step():
    table = _table()
    task = asyncio.ensure_future(table.ask(EPISODE, "e3", {
        "type": "start", "setup": _setup(models=["slow", "slow", "slow"])}))
    while True:
        await asyncio.sleep(0.01)
        _, state = await table.state(EPISODE, "e3")
        if len(state["steps"]) >= 2:
            break
    task.cancel()  # the host stops mid-command: nothing closes the episode...
    with pytest.raises(asyncio.CancelledError):
        await task
    fresh = EntityTable(table.store, services=table.services)  # ...until the next activation
    reply = await fresh.ask(EPISODE, "e3", {"type": "resume"})
    assert not isinstance(reply, ErrorReply), reply
    events = await table.store.read(stream_id(EPISODE, "e3"), 1, None)
    types = [e.type for e in events]
    assert types.index("cut") < types.index("resumed") < types.index("evaluated")
    steps = [e.data["step"] for e in events if e.type == "turn"]
    assert steps == list(range(len(steps)))  # each step once, none lost or repeated
    _, state = await fresh.state(EPISODE, "e3")
    assert outcome_of(state) == "completed"
    assert state["history"][1:] == [["cut", state["history"][1][1]],
                                    ["resumed", state["history"][1][1]]]


async def test_a_human_agent_takes_its_turns_through_act():
    table = _table()
    await table.ask(EPISODE, "e4", {"type": "start", "setup": _setup(
        humans=[True, False], max_turns=4)})
    _, state = await table.state(EPISODE, "e4")
    assert outcome_of(state) == "awaiting_human" and state["waiting_for"] == 0
    wrong = await table.ask(EPISODE, "e4", {"type": "act", "agent": 1, "action": SPEAK})
    assert isinstance(wrong, ErrorReply) and wrong.code == "not_your_turn"
    bad = await table.ask(EPISODE, "e4", {"type": "act", "agent": 0,
                                          "action": {"action_type": "shout"}})
    assert isinstance(bad, ErrorReply) and bad.code == "invalid"
    for _ in range(2):
        await table.ask(EPISODE, "e4", {"type": "act", "agent": 0, "action": SPEAK})
    _, state = await table.state(EPISODE, "e4")
    assert len(state["steps"]) == 4 and outcome_of(state) == "completed"
    assert [s[0]["action_type"] for s in state["steps"][::2]] == ["speak", "speak"]


async def test_repetitions_differ_and_a_rerun_of_one_episode_id_is_the_same_episode():
    """The built-in model is seeded from the episode: ten repetitions of one scenario and pair
    are not ten copies of one conversation (whose summary would claim a certainty it has not
    got), and the same episode id played again, on another store, is the same conversation."""
    setup = _setup(models=["builtin", "builtin", "builtin"])

    async def played(table: EntityTable, episode_id: str) -> tuple[str, Any]:
        reply = await table.ask(EPISODE, episode_id, {"type": "start", "setup": setup})
        assert not isinstance(reply, ErrorReply), reply
        _, state = await table.state(EPISODE, episode_id)
        assert outcome_of(state) == "completed"
        turns = [row for step in state["steps"] for row in step]
        return repr(turns), state["rewards"]

    table = _table()
    runs = [await played(table, f"reps.{i}") for i in range(10)]
    assert len({transcript for transcript, _ in runs}) >= 5, runs
    assert await played(_table(), "reps.3") == runs[3]


def test_one_rule_says_when_an_episode_or_a_batch_is_carried_on_unasked():
    """episode.should_resume and batch.should_resume: what the resume sweep, the simulation
    socket and a batch all decide by. A stop is never undone; a cut always goes on; work the
    log says is under way goes on only when nothing runs on it."""
    from actors.sotopia import batch, episode

    assert episode.should_resume("cut", "resume")  # whatever the host says: it was cut
    for outcome in ("running", "evaluating"):
        assert episode.should_resume(outcome, None)
        assert not episode.should_resume(outcome, "start")
    for outcome in ("stopped", "completed", "failed", "evaluation_failed", "awaiting_human",
                    "new"):
        assert not episode.should_resume(outcome, None), outcome
    assert batch.should_resume("cut", "run") and batch.should_resume("running", None)
    for status in ("stopped", "finished", "new"):
        assert not batch.should_resume(status, None), status
    assert not batch.should_resume("running", "run")
