"""Batches of Sotopia episodes, the family service's batch half (no HTTP: refusals are
api/commands.py's Refused), for Python programs, the command line and HTTP alike: a grid
(scenarios x agent pairs x models x repetitions) or an explicit list expanded into a plan of
episodes, started as a batch entity (actors/sotopia/batch.py), watched, and read back as plain
rows and a summary (mean and 95% confidence interval of every dimension, as Sotopia's
benchmark reports them).
"""

from __future__ import annotations

import math
import random
import statistics
from typing import Any, Iterable

from actors.sotopia.batch import BATCH, episode_id_of, same_plan
from actors.sotopia.profiles import AGENT, SCENARIO
from api.commands import Refused, ask, launch, query
from api.runtime import Runtime
from api.sotopia import service
from api.sotopia.service import Missing
from runtime.events import stream_id
from runtime.host import replay
from runtime.registry import get_kind
from schemas.sotopia import MAX_BATCH, BatchSpec

__all__ = ["BatchSpec", "Conflict", "Missing", "TooLarge", "fork", "paired", "paired_summary",
           "plan_of", "planned_size", "progress", "result_rows", "start", "stop", "summary"]


class Conflict(Refused):
    """The batch id exists with another plan."""

    def __init__(self, message: str) -> None:
        super().__init__("conflict", message)


class TooLarge(Refused):
    """The plan would have more episodes than a batch may: refused before it is built."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid", message)

#: two-sided 95% quantiles of Student's t by degrees of freedom (the normal's past the table)
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131,
        16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074,
        23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045,
        30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}


def t95(df: int) -> float:
    if df in _T95:
        return _T95[df]
    bigger = [k for k in _T95 if k > df]
    return _T95[min(bigger)] if bigger else 1.960


def _models(name: str) -> list[str]:
    """"m" plays and judges; "e,a1,a2" names the evaluator and each agent's model."""
    parts = [p.strip() for p in name.split(",") if p.strip()]
    if len(parts) == 1:
        return parts * 3
    if len(parts) == 3:
        return parts
    raise Refused("invalid", f"a model is a name or 'evaluator,agent1,agent2', not {name!r}")


def _pair_count(spec: BatchSpec, agents: int) -> int:
    """How many pairs _pairs gives for ``agents`` agents, without making them."""
    if spec.agent_pairs:
        return len(spec.agent_pairs)
    ordered = agents * (agents - 1)
    if spec.pairing == "all":
        return ordered
    if spec.pairing.startswith("sample:"):
        return min(int(spec.pairing.split(":", 1)[1]), ordered)
    return agents // 2


def _pairs(spec: BatchSpec, agents: list[str], env_index: int) -> list[list[str]]:
    if spec.agent_pairs:
        return [list(p) for p in spec.agent_pairs]
    rule = spec.pairing
    if rule == "all":
        return [[a, b] for a in agents for b in agents if a != b]
    if rule.startswith("sample:"):
        # indices into the ordered pairs, drawn without listing them all (n * (n - 1) of them)
        rng = random.Random(f"{spec.seed}|{env_index}")
        n = len(agents)
        picked = rng.sample(range(n * (n - 1)), _pair_count(spec, n))
        return [[agents[k // (n - 1)],
                 agents[(k % (n - 1)) + (1 if k % (n - 1) >= k // (n - 1) else 0)]]
                for k in picked]
    # "consecutive": (a0, a1), (a2, a3)... so each agent plays once per scenario
    return [agents[i:i + 2] for i in range(0, len(agents) - 1, 2)]


def _scenarios(spec: BatchSpec, d: Any) -> list[str]:
    if not spec.scenarios:
        return [s["pk"] for s in d.records(SCENARIO)]
    scenarios: list[str] = []
    for item in spec.scenarios:
        if item.startswith("tag:"):
            found = [s["pk"] for s in d.scenarios_tagged(item[4:])]
            if not found:
                raise Missing(f"No scenarios found with tag={item[4:]}")
            scenarios += found
        else:
            scenarios.append(item)
    return scenarios


def planned_size(spec: BatchSpec, scenarios: int, agents: int) -> int:
    """Episodes the spec's plan has, counted, not built."""
    if spec.episodes:
        return len(spec.episodes) * spec.reps
    return scenarios * _pair_count(spec, agents) * len(spec.models) * spec.reps


async def plan_of(rt: Runtime, spec: BatchSpec) -> dict[str, Any]:
    """The batch's plan: every episode with its scenario, agents, models and repetition, and
    what they share (turns, tag, dimensions). Its size is counted before anything is built:
    TooLarge past MAX_BATCH. Missing names an id or tag that finds nothing."""
    d = await service.directory(rt)
    scenarios = [] if spec.episodes else _scenarios(spec, d)
    agents = [] if spec.episodes else (spec.agents or [a["pk"] for a in d.records(AGENT)])
    size = planned_size(spec, len(scenarios), len(agents))
    if size > MAX_BATCH:
        raise TooLarge(f"a batch has at most {MAX_BATCH:,} episodes; this plan would have "
                       f"{size:,}")
    episodes: list[dict[str, Any]] = []
    if spec.episodes:
        grid = [(e.env_id, list(e.agent_ids), e.models or spec.models[0]) for e in spec.episodes]
    else:
        grid = [(env, pair, model) for k, env in enumerate(scenarios)
                for pair in _pairs(spec, agents, k) for model in spec.models]
    for env, pair, model in grid:
        if d.record(SCENARIO, env) is None:
            raise Missing(f"Environment with id={env} not found")
        for agent in pair:
            if d.record(AGENT, agent) is None:
                raise Missing(f"Agent with id={agent} not found")
        for rep in range(spec.reps):
            episodes.append({"i": len(episodes), "env": env, "agents": pair,
                             "models": _models(model), "label": model, "rep": rep})
    if not episodes:
        raise Missing("the batch has no episodes: no scenario, or fewer than two agents")
    dims = service.dimensions_named(d, spec.evaluation_dimension_list_name)
    return {"episodes": episodes, "max_turns": spec.max_turns, "tag": spec.tag,
            "dimension_list": spec.evaluation_dimension_list_name, "dimensions": dims,
            "attempts": spec.attempts}


async def start(rt: Runtime, batch_id: str, spec: BatchSpec | None,
                concurrency: int | None = None) -> dict[str, Any]:
    """Start the batch, or go on with it (only the episodes with no result run); returns its
    progress once its plan and run are in its log, with "started": False when a run of it was
    under way already (nothing is sent then: the caller is not queued behind the running
    batch). With no spec the batch must exist; with one, an existing batch must have the same
    plan (Conflict otherwise). Without a concurrency a run keeps its last run's."""
    state = await _state(rt, batch_id)
    plan = await plan_of(rt, spec) if spec is not None else None
    if state is None and plan is None:
        raise Missing(f"Batch with id={batch_id} not found")
    if state is not None and plan is not None and not same_plan(plan, state["plan"]):
        raise Conflict(f"batch {batch_id} exists with another plan: run it again without "
                       "one, or choose another batch id")
    return await _run(rt, batch_id, state, plan, concurrency)


async def fork(rt: Runtime, source_id: str, batch_id: str, turn: int, agent: int,
               model: str, concurrency: int | None = None) -> dict[str, Any]:
    """A new batch of forks: every episode of ``source_id`` that completed with at least
    ``turn`` turns, copied up to its ``turn``-th turn and carried on with ``model`` for
    ``agent`` (1 or 2), so each fork shares its source's opening: paired comparisons
    (``paired``). Started as ``start`` starts a batch (the same answer); Conflict for a batch
    id that exists with another plan, Refused(invalid) when no episode can be forked."""
    source = await _state(rt, source_id)
    if source is None:
        raise Missing(f"Batch with id={source_id} not found")
    entries: list[dict[str, Any]] = []
    for entry in source["plan"]["episodes"]:
        result = source["done"].get(str(entry["i"]))
        if not result or result["status"] != "completed" or (result.get("turns") or 0) < turn:
            continue
        models = list(entry["models"])
        models[agent] = model
        entries.append({**{k: v for k, v in entry.items() if k != "fork"}, "i": len(entries),
                        "models": models, "label": f"{entry['label']} / agent {agent}: {model}",
                        "pair": entry["i"],
                        "fork": {"episode": result["episode"], "turn": turn}})
    if not entries:
        raise Refused("invalid", f"batch {source_id} has no completed episode of {turn} "
                                 "turns or more to fork")
    plan = {**{k: source["plan"][k] for k in ("max_turns", "tag", "dimension_list",
                                              "dimensions", "attempts") if k in source["plan"]},
            "episodes": entries,
            "forked_from": {"batch": source_id, "turn": turn, "agent": agent, "model": model}}
    state = await _state(rt, batch_id)
    if state is not None and not same_plan(plan, state["plan"]):
        raise Conflict(f"batch {batch_id} exists with another plan: choose another batch id")
    return await _run(rt, batch_id, state, plan, concurrency)


async def _run(rt: Runtime, batch_id: str, state: dict[str, Any] | None,
               plan: dict[str, Any] | None, concurrency: int | None) -> dict[str, Any]:
    ref = rt.client.ref(BATCH, batch_id)
    if state is not None and state["status"] == "running" and await ref.arunning() is not None:
        return {**await progress(rt, batch_id), "started": False}
    command: dict[str, Any] = {"type": "run"}
    if concurrency is not None:
        command["concurrency"] = concurrency
    if plan is not None and state is None:
        command["plan"] = plan
    await launch(ref, command)
    return {**await progress(rt, batch_id), "started": True}


async def stop(rt: Runtime, batch_id: str, reason: str) -> dict[str, Any]:
    """Stop the batch and the episodes it runs; its progress, which says stopped. The cancel
    reaches a running run at once; the stop command, queued behind it, makes the log say
    stopped however the cancel landed. Final until someone starts the batch again: the sweep
    never resumes a stopped batch."""
    await progress(rt, batch_id)  # Missing for a batch that does not exist
    ref = rt.client.ref(BATCH, batch_id)
    await ref.acancel(reason)
    await ask(ref, {"type": "stop", "reason": reason})
    return await progress(rt, batch_id)


async def _state(rt: Runtime, batch_id: str) -> dict[str, Any] | None:
    state, _, _ = await replay(rt.store, get_kind(BATCH), stream_id(BATCH, batch_id), None)
    return state if state["plan"] is not None else None


async def progress(rt: Runtime, batch_id: str) -> dict[str, Any]:
    """Asked of the batch where it runs (a few counts), not replayed here: a running batch of
    10,000 episodes has a 6 MB snapshot, and a watcher asks every second."""
    found = await query(rt.client.ref(BATCH, batch_id), "progress")
    if found is None:
        raise Missing(f"Batch with id={batch_id} not found")
    return {"batch_id": batch_id, **found}


DIMENSION_ORDER = ("believability", "relationship", "knowledge", "secret", "social_rules",
                   "financial_and_material_benefits", "goal")


async def result_rows(rt: Runtime, batch_id: str) -> list[dict[str, Any]]:
    """One row per episode of the plan, in plan order: what it was, how it ended, and each
    agent's overall score and dimensions (agent_1_goal...); episodes without a result yet have
    status "pending"."""
    state = await _state(rt, batch_id)
    if state is None:
        raise Missing(f"Batch with id={batch_id} not found")
    rows = []
    for entry in state["plan"]["episodes"]:
        result = state["done"].get(str(entry["i"]), {})
        row: dict[str, Any] = {
            "batch": batch_id, "index": entry["i"],
            "episode": result.get("episode", episode_id_of(batch_id, entry["i"])),
            "scenario": entry["env"], "agent_1": entry["agents"][0],
            "agent_2": entry["agents"][1], "model": entry["label"], "rep": entry["rep"],
            "status": result.get("status", "pending"), "attempt": result.get("attempt", 0),
            "resumed": bool(result.get("resumed")), "turns": result.get("turns"),
            "model_errors": result.get("model_errors"), "error": result.get("error")}
        for k, reward in enumerate(result.get("rewards") or []):
            if isinstance(reward, list):
                overall, dims = reward
                row[f"agent_{k + 1}_overall"] = overall
                row.update({f"agent_{k + 1}_{d}": v for d, v in dims.items()
                            if d != "overall_score"})
        rows.append(row)
    return rows


async def paired(rt: Runtime, batch_id: str, rows: list[dict[str, Any]]
                 ) -> list[dict[str, Any]] | None:
    """For a batch of forks, the paired difference (fork minus source) per dimension; None
    for any other batch."""
    state = await _state(rt, batch_id)
    origin = (state or {}).get("plan", {}).get("forked_from")
    if not origin:
        return None
    pairs = {e["i"]: e["pair"] for e in state["plan"]["episodes"]}
    source = {r["index"]: r for r in await result_rows(rt, origin["batch"])}
    return paired_summary([(r, source[pairs[r["index"]]]) for r in rows
                           if r["status"] == "completed" and pairs.get(r["index"]) in source
                           and source[pairs[r["index"]]]["status"] == "completed"])


def paired_summary(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per dimension (overall first): the mean of fork-minus-source over both agents of every
    pair, with its 95% interval (Student's t): {"dimension", "mean", "ci95", "n", "pairs"}.
    A pair shares its opening turns, so the difference is the changed model's effect from
    then on, with the scenario's and the opening's variance taken out."""
    out = []
    names = sorted({k[len("agent_1_"):] for f, _ in pairs for k in f
                    if k.startswith("agent_1_")},
                   key=lambda n: (n != "overall", DIMENSION_ORDER.index(n)
                                  if n in DIMENSION_ORDER else 99, n))
    for name in names:
        diffs = [f[f"agent_{a}_{name}"] - s[f"agent_{a}_{name}"] for f, s in pairs
                 for a in (1, 2) if isinstance(f.get(f"agent_{a}_{name}"), (int, float))
                 and isinstance(s.get(f"agent_{a}_{name}"), (int, float))]
        if not diffs:
            continue
        half = (t95(len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
                if len(diffs) > 1 else None)
        out.append({"dimension": name, "mean": statistics.fmean(diffs), "ci95": half,
                    "n": len(diffs), "pairs": len(pairs)})
    return out


def summary(rows: Iterable[dict[str, Any]], by: tuple[str, ...] = ("model",)
            ) -> list[dict[str, Any]]:
    """Per group (model, or model and scenario): episodes completed, and for the overall score
    and each dimension the mean over both agents' scores with its 95% confidence interval
    (Student's t), as Sotopia's benchmark reports: {"mean", "ci95" (None for one sample),
    "n", "identical" (every sample the same)}."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] == "completed":
            groups.setdefault(tuple(row[k] for k in by), []).append(row)
    out = []
    for key, members in sorted(groups.items()):
        entry: dict[str, Any] = dict(zip(by, key))
        entry["episodes"] = len(members)
        names = ["overall"] + sorted(
            {k[len("agent_1_"):] for r in members for k in r if k.startswith("agent_1_")
             and k != "agent_1_overall"},
            key=lambda n: (DIMENSION_ORDER.index(n) if n in DIMENSION_ORDER else 99, n))
        for name in names:
            values = [r[f"agent_{a}_{name}"] for r in members for a in (1, 2)
                      if r.get(f"agent_{a}_{name}") is not None]
            if not values:
                continue
            mean = statistics.fmean(values)
            # None where there is no interval: one sample. Samples that are all equal get a
            # zero half-width and say so ("identical"): their interval is no evidence of
            # certainty, only of a model that answered the same every time.
            half = (t95(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
                    if len(values) > 1 else None)
            entry[name] = {"mean": mean, "ci95": half, "n": len(values),
                           "identical": len(values) > 1 and len(set(values)) == 1}
        out.append(entry)
    return out
