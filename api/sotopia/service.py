"""The Sotopia family's use of its entities, shared by its HTTP routes, its WebSocket and
Python programs: records put and deleted, the setup of an episode resolved from the stored
records, episodes started and read. Reads are replays and projections of the store; every
change is a command to an entity.

Ready once per process: the built-in set is seeded (idempotently: a record is written only if
its id never existed), and from then on a sweep resumes every episode the log says is under
way but that no host runs (the service was stopped, or a host died), from its last committed
step.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from fastapi import HTTPException

from actors.sotopia import batch as batch_kind
from actors.sotopia import builtin_data
from actors.sotopia import episode as episode_kind
from actors.sotopia.batch import BATCH
from actors.sotopia.episode import EPISODE
from actors.sotopia.profiles import AGENT, DIMENSION, DIMENSION_LIST, RELATIONSHIP, SCENARIO
from api import background
from api.kit import Refusals, send
from api.runtime import Runtime, current
from api.sotopia.directory import Directory, directory_for
from runtime.client import ActorError, OutcomeUnknown, Unavailable
from runtime.host import replay
from runtime.events import stream_id
from runtime.registry import get_kind

__all__ = ["Missing", "REFUSALS", "delete", "dimension_lists", "directory", "launch", "new_pk",
           "put", "read_episode", "ready", "resolve_setup", "resume_if_due", "resume_stalled",
           "start_episode"]

log = logging.getLogger("ray.serve")
REFUSALS = Refusals({"not_found": 404, "invalid": 422, "conflict": 409, "not_waiting": 409,
                     "not_your_turn": 409})
RESUME_AT_ONCE = 16


class Missing(LookupError):
    """An id that names nothing stored; the message says which, in Sotopia's words."""


def new_pk() -> str:
    return uuid.uuid4().hex


# ------------------------------------------------------------------ ready

_ready: dict[tuple[int, int], tuple[Any, asyncio.Task]] = {}


async def _seed(rt: Runtime) -> None:
    seeds = ([(AGENT, r) for r in builtin_data.AGENTS]
             + [(SCENARIO, r) for r in builtin_data.SCENARIOS]
             + [(RELATIONSHIP, r) for r in builtin_data.RELATIONSHIPS]
             + [(DIMENSION, r) for r in builtin_data.DIMENSIONS]
             + [(DIMENSION_LIST, builtin_data.DIMENSION_LIST)])
    for kind, record in seeds:  # in order, so lists show the built-ins in a stable order
        await rt.client.ref(kind, record["pk"]).aask({"type": "put", "record": record,
                                                      "mode": "seed"})


async def resume_stalled(rt: Runtime) -> int:
    """Batches and episodes the log says are under way but that nothing runs (their host
    died, or the whole service stopped) go on, episodes from their last committed step;
    returns how many."""
    d = await directory_for(rt.store).catch_up()
    gate = asyncio.Semaphore(RESUME_AT_ONCE)

    async def one(kind: str, entity_id: str, status: str, command: dict[str, Any]) -> bool:
        rule = batch_kind.should_resume if kind == BATCH else episode_kind.should_resume
        async with gate:
            ref = rt.client.ref(kind, entity_id)
            try:
                if not await _due(rule, status, ref):
                    return False  # going on in its host, or not to be carried on
                # activation closes it (cut), then it goes on in its host
                return await launch(ref, command) == "progress"
            except Exception:  # noqa: BLE001 - one entity's trouble must not stop the rest
                log.exception("could not resume %s %s", kind, entity_id)
                return False

    # Batches first: a resumed batch drives its own episodes on.
    batches = [(i, d.model.batches[i]) for i in d.batches_in("running", "cut")]
    # "resume": the batch goes on at the concurrency it was given, and not at all if it was
    # stopped meanwhile (the directory may be a moment behind its log)
    resumed = sum(await asyncio.gather(*(one(BATCH, i, s, {"type": "run", "resume": True})
                                         for i, s in batches)))
    under_way = [(i, d.model.episodes[i]["status"])
                 for i in d.episodes_in("running", "evaluating", "cut")]
    resumed += sum(await asyncio.gather(*(one(EPISODE, i, s, {"type": "resume"})
                                          for i, s in under_way)))
    if resumed:
        log.info("sotopia: %d stalled episodes or batches resumed", resumed)
    return resumed


async def _sweep(rt: Runtime) -> None:
    """resume_stalled now and then, while this runtime serves (ACTORLOG_SOTOPIA_SWEEP_SECONDS,
    10 by default; 0 sweeps once, at start)."""
    every = float(rt.settings.option("ACTORLOG_SOTOPIA_SWEEP_SECONDS", "10"))
    while True:
        try:
            await resume_stalled(rt)
        except Exception:  # noqa: BLE001 - the next sweep tries again
            log.exception("sotopia: the resume sweep failed")
        if every <= 0 or _current_runtime() is not rt:
            return
        await asyncio.sleep(every)


def _current_runtime() -> Runtime | None:
    try:
        return current()
    except RuntimeError:
        return None


async def _prepare(rt: Runtime) -> None:
    await _seed(rt)
    background.start(_sweep(rt), "sotopia: the resume sweep")  # reads need not wait


async def ready(rt: Runtime) -> None:
    """Once per store and event loop: the built-in set seeded, the resume sweep started."""
    key = (id(rt.store), id(asyncio.get_running_loop()))
    store, task = _ready.get(key, (None, None))
    if store is not rt.store or task is None or (task.done() and (
            task.cancelled() or task.exception() is not None)):
        task = asyncio.ensure_future(_prepare(rt))
        _ready[key] = (rt.store, task)
    await asyncio.shield(task)


def start_in_background() -> None:
    """The family's startup: seeding and the sweep begin with the server, so episodes a
    stopped service left under way resume without waiting for a request."""
    rt = _current_runtime()
    if rt is None:  # not serving (an app built to read its OpenAPI document)
        return
    background.start(ready(rt), "sotopia: seeding")


async def directory(rt: Runtime) -> Directory:
    """The directory, seeded and caught up with everything acknowledged before this call."""
    await ready(rt)
    return await directory_for(rt.store).catch_up()


# ------------------------------------------------------------------ records

def _checked_pk(pk: str) -> str:
    if not pk or len(pk) > 256 or any(ord(c) < 32 for c in pk) or "/" in pk:
        raise HTTPException(422, "a pk has 1 to 256 characters, no '/' and no control "
                                 "characters")
    return pk


async def put(rt: Runtime, kind: str, pk: str, record: dict[str, Any], mode: str = "upsert"
              ) -> str:
    _checked_pk(pk)
    await ready(rt)
    await send(rt.client.ref(kind, pk), {"type": "put", "record": record, "mode": mode},
               REFUSALS)
    return pk


async def delete(rt: Runtime, kind: str, pk: str) -> None:
    if len(pk) > 256:
        raise HTTPException(404, f"{pk[:64]}... not found")
    await ready(rt)
    await send(rt.client.ref(kind, pk), {"type": "delete"}, REFUSALS)


def dimension_lists(d: Directory) -> dict[str, list[dict[str, Any]]]:
    """Each stored list's name -> its dimensions (those still stored), as Sotopia lists them."""
    out: dict[str, list[dict[str, Any]]] = {}
    for lst in d.records(DIMENSION_LIST):
        dims = (d.record(DIMENSION, pk) for pk in lst.get("dimension_pks", []))
        out[lst["name"]] = [x for x in dims if x is not None]
    return out


# ------------------------------------------------------------------ episodes

def dimensions_named(d: Directory, name: str) -> list[dict[str, Any]]:
    lists = [x for x in d.records(DIMENSION_LIST) if x["name"] == name]
    if len(lists) == 1:
        dims = [d.record(DIMENSION, pk) for pk in lists[0].get("dimension_pks", [])]
        found = [{k: x[k] for k in ("name", "description", "range_low", "range_high")}
                 for x in dims if x is not None]
        if found:
            return found
        raise Missing(f"Evaluation dimension list {name!r} has no dimensions")
    if not lists and name == "sotopia":
        return [dict(x) for x in builtin_data.SOTOPIA_DIMENSIONS]
    if not lists:
        raise Missing(f"Evaluation dimension list with name={name} not found")
    raise Missing(f"{len(lists)} evaluation dimension lists are named {name}; rename one")


async def resolve_setup(rt: Runtime, env_id: str, agent_ids: list[str], models: list[str],
                        *, max_turns: int = 20, tag: str = "",
                        dimension_list: str = "sotopia", humans: list[bool] | None = None
                        ) -> dict[str, Any]:
    """An episode's setup from the stored records, copied so the episode replays alone.
    ``models``: [evaluator, agent 1, agent 2]. Missing names the first id not found."""
    d = await directory(rt)
    scenario = d.record(SCENARIO, env_id)
    if scenario is None:
        raise Missing(f"Environment with id={env_id} not found")
    agents = []
    for agent_id in agent_ids:
        agent = d.record(AGENT, agent_id)
        if agent is None:
            raise Missing(f"Agent with id={agent_id} not found")
        agents.append(agent)
    return {"env_id": env_id, "agent_ids": list(agent_ids), "scenario": scenario,
            "agents": agents, "models": list(models), "max_turns": max_turns, "tag": tag,
            "dimension_list": dimension_list, "dimensions": dimensions_named(d, dimension_list),
            "humans": list(humans or [False] * len(agent_ids))}


async def launch(ref: Any, command: dict[str, Any]) -> str:
    """Send a long command and return once it has said it is under way (its first progress:
    what it was given is in the log) or has ended: "progress" or "outcome". It runs on in its
    host whatever the caller does next. Refusals are raised in the family's format."""
    stream = ref.aask_stream(command)
    try:
        what, _ = await anext(stream)
        return what
    except (ActorError, OutcomeUnknown, Unavailable) as exc:
        REFUSALS.raise_for(exc)
    finally:
        await stream.aclose()


async def resume_if_due(rt: Runtime, episode_id: str) -> bool:
    """Carry the episode on when the one rule (episode.should_resume) says so, judged on its
    state now, not on the event that prompted the look (a follower replaying an old cut sees
    it long after the episode went on)."""
    state = await read_episode(rt, episode_id)
    if state is None:
        return False
    ref = rt.client.ref(EPISODE, episode_id)
    if not await _due(episode_kind.should_resume, episode_kind.outcome_of(state), ref):
        return False
    return await launch(ref, {"type": "resume"}) == "progress"


async def _due(rule: Any, status: str, ref: Any) -> bool:
    """The kind's resume rule on ``status``; its host is asked what runs only when the rule
    needs to know (a cut one goes on whatever runs)."""
    return rule(status, None if status == "cut" else await ref.arunning())


async def start_episode(rt: Runtime, episode_id: str, setup: dict[str, Any]) -> None:
    """Start the episode in its actor; returns once its start is in the log."""
    await launch(rt.client.ref(EPISODE, episode_id),
                 {"type": "start", "setup": setup, "at": time.time()})


async def read_episode(rt: Runtime, episode_id: str) -> dict[str, Any] | None:
    """The episode's state, replayed from the store; None for an id with no (live) episode."""
    if not episode_id or "/" in episode_id or len(episode_id) > 256:
        return None
    state, _, _ = await replay(rt.store, get_kind(EPISODE), stream_id(EPISODE, episode_id),
                               None)
    if state["setup"] is None or state["status"] == "deleted":
        return None
    return state
