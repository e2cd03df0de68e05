"""sotopia_episode: one Sotopia episode. Its log holds the setup (copies of the scenario, the
agents and the dimensions as they were when it started, so it replays alone), every step, how
it ended and its SOTOPIA-Eval scores; what a client reads (Sotopia's EpisodeLog) is built from
its state at the edge (api/sotopia/views.py). Rules: social.py.

Commands
  start   {"setup"} -> started, then one turn per step (each committed as it happens), then
          terminated and evaluated | evaluation_failed. The command ends early when the next
          actor is a human (awaiting_human) and ``act`` carries the episode on.
  act     {"agent": index, "action"} -> human_turn, then as start.
  resume  {"models"?} -> an episode cut by a crash (cut), or a fork (forked: a copy of an
          episode's log up to a version, held until whoever forked it resumes it; the sweep
          never does), goes on from its last committed step
          (resumed, then as start); anything else is left alone. With "models" ([evaluator,
          agent 1, agent 2]) that differ from its own, models_changed first: how a fork (the
          runtime copies the log up to a version; recovery cuts the copy) goes on with
          another model.
  stop    {"reason"} -> stopped, for an episode waiting for a human (a running one is
          stopped with the platform's cancel and commits stopped itself).
  delete  {} -> deleted.
A step's model call that fails is retried by the model port's one policy (llm/port.py), and
then the agent does nothing that step; the turn event keeps every attempt's error. An episode
cut by a crash is closed at the next activation with cut, and ``resume`` carries it on: the
log says both.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any, Callable

from actors.sotopia import social
from llm.port import ModelError, ModelRequest
from runtime.entity import Context, EntityKind, Fenced, Rejected
from runtime.events import NewEvent
from runtime.registry import register

__all__ = ["EPISODE", "FINISHED", "due", "episode", "outcome_of", "setup_of", "should_resume"]

EPISODE = "sotopia_episode"


def initial() -> dict[str, Any]:
    return {"setup": None, "steps": [], "status": "new", "reasons": "", "rewards": None,
            "reasoning": "", "error": None, "waiting_for": None, "model_errors": 0,
            "history": []}


#: a finished episode is read from the store, not from memory: passivated after 10 s idle
#: statuses after which nothing more happens to an episode (resume does nothing to them)
FINISHED = ("completed", "evaluation_failed", "failed", "stopped")
episode = register(EntityKind(EPISODE, initial, snapshot_every=25, idle_seconds=10.0,
                              at_rest=lambda state: state["status"] in FINISHED))


# ------------------------------------------------------------------ reading and deciding


def outcome_of(state: dict[str, Any]) -> str:
    """Our own finer status: running, awaiting_human, evaluating, completed, stopped, cut,
    evaluation_failed, failed."""
    if state["status"] == "running" and state["waiting_for"] is not None:
        return "awaiting_human"
    return state["status"]


def should_resume(outcome: str, running: str | None) -> bool:
    """The one rule for carrying an episode on without being asked (the resume sweep, the
    simulation socket and a batch all ask it; ``outcome`` is outcome_of its state,
    ``running`` what its host says runs on it). A cut one goes on. One the log says is under
    way goes on only when nothing runs on it (its host died: the activation that resume
    brings closes it as cut, then carries it on). Never one that has finished, was stopped
    (a stop wins over every automatic resume), waits for a human, never started, or is a
    fork held for whoever forked it (forked: they resume it with the models they chose)."""
    if outcome == "cut":
        return True
    return outcome in ("running", "evaluating") and running is None


async def due(rule: Callable[[str, str | None], bool], status: str, ref: Any) -> bool:
    """A kind's resume rule (this one, or the batch's) on ``status``; the entity's host is
    asked what runs on it only when the rule needs to know (a cut one goes on whatever runs),
    and a host gone or slow for 30 s counts as running nothing (the command that follows
    finds out)."""
    if status == "cut":
        return rule(status, None)
    try:
        running = await asyncio.wait_for(ref.arunning(), 30)
    except Exception:  # noqa: BLE001 - a host gone or slow: nothing runs there for us
        running = None
    return rule(status, running)


def setup_of(env_id: str, scenario: dict[str, Any], agent_ids: list[str],
             agents: list[dict[str, Any]], models: list[str], dimensions: list[dict[str, Any]],
             *, max_turns: int = 20, tag: str = "", dimension_list: str = "sotopia",
             humans: list[bool] | None = None, batch: str | None = None) -> dict[str, Any]:
    """What ``start`` takes: copies of the records as they are now, so the episode replays
    alone. ``models``: [evaluator, agent 1, agent 2]."""
    setup = {"env_id": env_id, "agent_ids": list(agent_ids), "scenario": scenario,
             "agents": list(agents), "models": list(models), "max_turns": max_turns,
             "tag": tag, "dimension_list": dimension_list, "dimensions": list(dimensions),
             "humans": list(humans or [False] * len(agent_ids))}
    if batch is not None:
        setup["batch"] = batch
    return setup


# ------------------------------------------------------------------ commands


def _valid_action(action: Any, names: list[str]) -> dict[str, Any]:
    if not isinstance(action, dict) or action.get("action_type") not in (
            "none", "speak", "non-verbal communication", "action", "leave"):
        raise Rejected("an action is {action_type: none|speak|non-verbal communication|"
                       "action|leave, argument, to}", code="invalid")
    argument, to = action.get("argument", ""), action.get("to") or []
    if not isinstance(argument, str) or len(argument) > 20_000:
        raise Rejected("an action's argument is a string of at most 20000 characters",
                       code="invalid")
    if not isinstance(to, list) or any(t not in names for t in to):
        raise Rejected(f"an action's to names some of {names}", code="invalid")
    return {"action_type": action["action_type"], "argument": argument, "to": to}


@episode.command("start")
async def start(state: dict, cmd: dict, ctx: Context) -> list[NewEvent] | NewEvent | None:
    if state["setup"] is not None:
        raise Rejected(f"episode {ctx.entity_id} has started already", code="conflict")
    setup = cmd.get("setup")
    if not isinstance(setup, dict) or len(setup.get("agents") or []) != 2:
        raise Rejected("start needs a setup with two agents", code="invalid")
    await ctx.commit(NewEvent("started", {"setup": setup, "at": cmd.get("at")}))
    ctx.emit({"accepted": ctx.entity_id})
    return await _advance(ctx)


@episode.command("act")
async def act(state: dict, cmd: dict, ctx: Context) -> list[NewEvent] | NewEvent | None:
    agent = cmd.get("agent")
    if state["status"] != "running" or state["waiting_for"] is None:
        raise Rejected("the episode is not waiting for a human", code="not_waiting")
    if agent != state["waiting_for"]:
        raise Rejected("it is not this agent's turn", code="not_your_turn")
    names = [social.name_of(a) for a in state["setup"]["agents"]]
    action = _valid_action(cmd.get("action"), names)
    actions = [action if i == agent else {"action_type": "none", "argument": "", "to": []}
               for i in range(len(names))]
    await ctx.commit(NewEvent("human_turn", {"step": len(state["steps"]),
                                             "actions": actions}))
    return await _advance(ctx)


@episode.command("resume")
async def resume(state: dict, cmd: dict, ctx: Context) -> list[NewEvent] | NewEvent | None:
    if state["status"] not in ("cut", "forked"):
        return None
    models = cmd.get("models")
    if models is not None and models != state["setup"]["models"]:
        if not (isinstance(models, list) and len(models) == len(state["setup"]["models"])
                and all(isinstance(m, str) and 0 < len(m) <= 200 for m in models)):
            raise Rejected("models is [evaluator, agent 1, agent 2], names of 1 to 200 "
                           "characters", code="invalid")
        await ctx.commit(NewEvent("models_changed", {"models": models}))
    await ctx.commit(NewEvent("resumed", {"from_step": len(state["steps"])}))
    ctx.emit({"resumed": len(state["steps"])})
    return await _advance(ctx)


@episode.command("stop")
def stop(state: dict, cmd: dict, ctx: Context) -> NewEvent | None:
    if state["status"] not in ("running", "cut", "forked"):
        return None
    return NewEvent("stopped", {"reason": str(cmd.get("reason") or "stopped"),
                                "at_step": len(state["steps"])})


@episode.command("delete")
def delete(state: dict, cmd: dict, ctx: Context) -> NewEvent:
    if state["setup"] is None or state["status"] == "deleted":
        raise Rejected(f"Episode with id={ctx.entity_id} not found", code="not_found")
    return NewEvent("deleted", {})


async def _advance(ctx: Context) -> list[NewEvent] | NewEvent | None:
    """Steps until the episode ends or waits for a human; then the evaluation."""
    try:
        while True:
            state = ctx.state
            if state["status"] == "evaluating":
                return await _evaluate(ctx)
            setup, steps = state["setup"], state["steps"]
            reasons = social.termination(steps, setup["max_turns"])
            if reasons:
                await ctx.commit(NewEvent("terminated", {"reasons": reasons}))
                continue
            actor = len(steps) % len(setup["agents"])
            if setup["humans"][actor]:
                await ctx.commit(NewEvent("awaiting_human", {"step": len(steps),
                                                             "agent": actor}))
                return None
            action, errors = await _decide_action(ctx, setup, steps, actor)
            actions = [action if i == actor else {"action_type": "none", "argument": "",
                                                  "to": []}
                       for i in range(len(setup["agents"]))]
            data: dict[str, Any] = {"step": len(steps), "actions": actions}
            if errors:
                data["model_errors"] = errors
            await ctx.commit(NewEvent("turn", data))
            ctx.emit({"step": len(steps)})
    except asyncio.CancelledError:
        if ctx.cancelled is None:
            raise  # the host is stopping: recovery closes the episode (cut)
        return NewEvent("stopped", {"reason": ctx.cancelled,
                                    "at_step": len(ctx.state["steps"])})
    except Fenced:
        raise
    except Exception as exc:  # noqa: BLE001 - the log says how the episode ended
        return NewEvent("failed", {"error": f"{type(exc).__name__}: {exc}"})


async def _call(ctx: Context, model: str, request: ModelRequest) -> tuple[Any, list[str]]:
    """The model's schema-valid answer and the errors of the attempts before it; None and
    every attempt's error when the model port's retry policy (llm/port.py) gave up."""
    try:
        result = await ctx.services.models.model(model).complete(request)
    except ModelError as exc:
        return None, exc.failures or [str(exc)[:500]]
    return result.object, result.failures


def seed_of(episode_id: str) -> int:
    """The episode's sampling seed, from its id (a batch's repetitions have ids of their own):
    repetitions differ, a rerun or resume of one episode asks as it asked before."""
    return int.from_bytes(hashlib.sha256(episode_id.encode()).digest()[:4], "big")


async def _decide_action(ctx: Context, setup: dict, steps: list, actor: int
                         ) -> tuple[dict[str, Any], list[str]]:
    agents = setup["agents"]
    names = [social.name_of(a) for a in agents]
    model = setup["models"][1 + actor]
    request = ModelRequest(social.agent_prompt(setup["scenario"], agents, steps, actor),
                           json_schema=social.action_schema(names), model=model,
                           temperature=0.7, max_tokens=600, seed=seed_of(ctx.entity_id))
    answer, errors = await _call(ctx, model, request)
    if answer is None:
        return {"action_type": "none", "argument": "", "to": []}, errors
    try:
        return _valid_action(answer, [n for i, n in enumerate(names) if i != actor]), errors
    except Rejected as exc:
        return {"action_type": "none", "argument": "", "to": []}, errors + [exc.message]


async def _evaluate(ctx: Context) -> NewEvent:
    state = ctx.state
    setup = state["setup"]
    agents, dims = setup["agents"], setup["dimensions"]
    model = setup["models"][0]
    request = ModelRequest(social.evaluation_prompt(setup["scenario"], agents, state["steps"],
                                                    dims),
                           json_schema=social.evaluation_schema(dims, len(agents)),
                           model=model, temperature=0.0, max_tokens=4_000)
    answer, errors = await _call(ctx, model, request)
    if answer is None:
        return NewEvent("evaluation_failed", {"error": errors[-1] if errors else "no answer",
                                              "attempts": len(errors)})
    rewards, reasoning = social.aggregate(answer["evaluations"], dims,
                                          [social.name_of(a) for a in agents],
                                          state["reasons"])
    return NewEvent("evaluated", {"rewards": rewards, "reasoning": reasoning,
                                  "attempts": len(errors) + 1})


@episode.forked
def hold_fork(state: dict) -> NewEvent | None:
    """A copy of an episode under way waits (forked) for whoever forked it to resume it, with
    the models it chose: the resume sweep leaves a forked episode alone (should_resume)."""
    if state["status"] in ("running", "evaluating", "cut") and state["waiting_for"] is None:
        return NewEvent("forked", {"at_step": len(state["steps"])})
    return None


@episode.recovery
def close_cut(state: dict) -> NewEvent | None:
    if state["status"] in ("running", "evaluating") and state["waiting_for"] is None:
        return NewEvent("cut", {"reason": "the server running this episode stopped before it "
                                          "finished", "at_step": len(state["steps"])})
    return None


# ------------------------------------------------------------------ events


@episode.event("started")
def started(state: dict, data: dict) -> dict:
    return {**initial(), "setup": data["setup"], "status": "running",
            "history": [["started", 0]]}


@episode.event("turn")
@episode.event("human_turn")
def turn(state: dict, data: dict) -> dict:
    state["steps"].append(data["actions"])
    state["waiting_for"] = None
    state["model_errors"] += len(data.get("model_errors") or ())
    return state


@episode.event("awaiting_human")
def awaiting_human(state: dict, data: dict) -> dict:
    state["waiting_for"] = data["agent"]
    return state


@episode.event("terminated")
def terminated(state: dict, data: dict) -> dict:
    state["reasons"], state["status"] = data["reasons"], "evaluating"
    return state


@episode.event("evaluated")
def evaluated(state: dict, data: dict) -> dict:
    state["rewards"], state["reasoning"] = data["rewards"], data["reasoning"]
    state["status"] = "completed"
    return state


@episode.event("evaluation_failed")
def evaluation_failed(state: dict, data: dict) -> dict:
    state["status"], state["error"] = "evaluation_failed", data["error"]
    state["reasoning"] = (f"Environment comments: terminated: {state['reasons']}\n"
                          f"Evaluation failed after {data['attempts']} attempts: "
                          f"{data['error']}\n")
    return state


@episode.event("stopped")
def stopped(state: dict, data: dict) -> dict:
    state["status"], state["error"] = "stopped", data["reason"]
    state["waiting_for"] = None
    return state


@episode.event("failed")
def failed(state: dict, data: dict) -> dict:
    state["status"], state["error"] = "failed", data["error"]
    return state


@episode.event("forked")
def forked(state: dict, data: dict) -> dict:
    state["history"].append(["forked", data["at_step"]])
    if state["status"] != "cut":  # a copy of a cut one keeps where it was cut from
        state["resume_to"] = "evaluating" if state["status"] == "evaluating" else "running"
    state["status"] = "forked"
    return state


@episode.event("cut")
def cut(state: dict, data: dict) -> dict:
    state["history"].append(["cut", data["at_step"]])
    state["resume_to"] = "evaluating" if state["status"] == "evaluating" else "running"
    state["status"] = "cut"
    return state


@episode.event("resumed")
def resumed(state: dict, data: dict) -> dict:
    state["history"].append(["resumed", data["from_step"]])
    state["status"] = state.pop("resume_to", "running")
    return state


@episode.event("models_changed")
def models_changed(state: dict, data: dict) -> dict:
    state["setup"] = {**state["setup"], "models": list(data["models"])}
    return state


@episode.event("deleted")
def deleted(state: dict, data: dict) -> dict:
    state["status"] = "deleted"
    return state
