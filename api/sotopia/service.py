"""The Sotopia family's operations, callable from Python with no HTTP: records put, searched
and deleted, an episode's setup resolved from the stored records, episodes started, read,
resumed and deleted. The HTTP routes, the simulation WebSocket, the Python SDK
(api/sotopia/runner.py) and the command line all call this module (batches: batches.py);
what it refuses is a ``Refused`` (api/commands.py) with the entity's code and Sotopia's words,
which each edge turns into its own error. Reads are replays and projections of the store;
every change is a command to an entity.

Background work the family declares (api/sotopia/__init__.py) and the platform runs: at start,
the built-in set seeded (idempotently: a record is written only if its id never existed); then
now and then, every episode or batch the log says is under way but that no host runs (the
service was stopped, or a host died) resumed from its last committed step.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from actors.sotopia import batch as batch_kind
from actors.sotopia import builtin_data
from actors.sotopia import episode as episode_kind
from actors.sotopia.batch import BATCH
from actors.sotopia.episode import EPISODE
from actors.sotopia.profiles import AGENT, DIMENSION, DIMENSION_LIST, RELATIONSHIP, SCENARIO
from api.commands import Refused, ask, launch, refused
from api.runtime import Runtime
from api.sotopia.directory import Directory, directory_for
from runtime.client import ActorError, OutcomeUnknown, Unavailable
from runtime.events import stream_id
from runtime.host import replay
from runtime.registry import get_kind

__all__ = ["Missing", "agents_by", "create_dimension_list", "delete", "delete_dimension_list",
           "delete_episode", "dimension_lists", "dimensions_named", "directory",
           "episodes_by", "list_episodes", "new_pk", "put", "read_episode", "read_episodes",
           "ready", "relationship_of", "resolve_setup", "resume_if_due", "resume_stalled",
           "scenarios_by", "start_episode", "start_simulation", "fork_episode", "stop_episode"]

log = logging.getLogger("ray.serve")
RESUME_AT_ONCE = 16


class Missing(Refused):
    """An id that names nothing stored; the message says which, in Sotopia's words."""

    def __init__(self, message: str) -> None:
        super().__init__("not_found", message)


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


async def ready(rt: Runtime) -> None:
    """Once per store and event loop: the built-in set seeded. The family's startup work; every
    operation that reads records waits for it too (a request may come first)."""
    key = (id(rt.store), id(asyncio.get_running_loop()))
    store, task = _ready.get(key, (None, None))
    if store is not rt.store or task is None or (task.done() and (
            task.cancelled() or task.exception() is not None)):
        task = asyncio.ensure_future(_seed(rt))
        _ready[key] = (rt.store, task)
    await asyncio.shield(task)


async def resume_stalled(rt: Runtime) -> int:
    """Batches and episodes the log says are under way but that nothing runs (their host
    died, or the whole service stopped) go on, episodes from their last committed step;
    returns how many. The family's periodic work."""
    await ready(rt)
    d = await directory_for(rt.store).catch_up()
    gate = asyncio.Semaphore(RESUME_AT_ONCE)

    async def one(kind: str, entity_id: str, status: str, command: dict[str, Any]) -> bool:
        rule = batch_kind.should_resume if kind == BATCH else episode_kind.should_resume
        async with gate:
            ref = rt.client.ref(kind, entity_id)
            try:
                if not await episode_kind.due(rule, status, ref):
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


async def directory(rt: Runtime) -> Directory:
    """The directory, seeded and caught up with everything acknowledged before this call."""
    await ready(rt)
    return await directory_for(rt.store).catch_up()


# ------------------------------------------------------------------ records

def _checked_pk(pk: str) -> str:
    if not pk or len(pk) > 256 or any(ord(c) < 32 for c in pk) or "/" in pk:
        raise Refused("invalid", "a pk has 1 to 256 characters, no '/' and no control "
                                 "characters")
    return pk


async def put(rt: Runtime, kind: str, pk: str, record: dict[str, Any], mode: str = "upsert"
              ) -> str:
    _checked_pk(pk)
    await ready(rt)
    await ask(rt.client.ref(kind, pk), {"type": "put", "record": record, "mode": mode})
    return pk


async def delete(rt: Runtime, kind: str, pk: str, what: str | None = None) -> None:
    """Delete the record; Missing (in ``what``'s words when given) when there is none."""
    try:
        if len(pk) > 256:
            raise Refused("not_found", f"{pk[:64]}... not found")
        await ready(rt)
        await ask(rt.client.ref(kind, pk), {"type": "delete"})
    except Refused as exc:
        if exc.code == "not_found":
            raise Missing(f"{what} with id={pk} not found" if what else exc.message) from None
        raise


def _search(d: Directory, kind: str, what: str, key: str, value: str,
            hits: Any) -> list[dict[str, Any]]:
    """By id, the one record; else what ``hits()`` finds. Missing, in Sotopia's words, when
    nothing matches."""
    if key == "id":
        found = d.record(kind, value)
        if found is None:
            raise Missing(f"{what.capitalize()} with id={value} not found")
        return [found]
    found_all = hits()
    if not found_all:
        raise Missing(f"No {what}s found with {key}={value}")
    return found_all


def scenarios_by(d: Directory, key: str, value: str) -> list[dict[str, Any]]:
    """By id (one), codename (exact) or tag (a keyword); Missing when nothing matches."""
    return _search(d, SCENARIO, "scenario", key, value,
                   lambda: d.where(SCENARIO, codename=value) if key == "codename"
                   else d.scenarios_tagged(value))


def agents_by(d: Directory, key: str, value: str) -> list[dict[str, Any]]:
    """By id (one), or a field equal ignoring case; Missing when nothing matches."""
    return _search(d, AGENT, "agent", key, value,
                   lambda: [a for a in d.records(AGENT)
                            if str(a.get(key, "")).lower() == value.lower()])


def relationship_of(d: Directory, agent_1_id: str, agent_2_id: str) -> int:
    """The newest relationship from one agent to the other (RelationshipType's value)."""
    hits = d.where(RELATIONSHIP, agent_1_id=agent_1_id, agent_2_id=agent_2_id)
    if not hits:
        raise Missing(f"No relationship found from {agent_1_id} to {agent_2_id}")
    return int(hits[-1]["relationship"])


def dimension_lists(d: Directory) -> dict[str, list[dict[str, Any]]]:
    """Each stored list's name -> its dimensions (those still stored), as Sotopia lists them."""
    out: dict[str, list[dict[str, Any]]] = {}
    for lst in d.records(DIMENSION_LIST):
        dims = (d.record(DIMENSION, pk) for pk in lst.get("dimension_pks", []))
        out[lst["name"]] = [x for x in dims if x is not None]
    return out


async def create_dimension_list(rt: Runtime, pk: str, name: str,
                                dimensions: list[dict[str, Any]]) -> str:
    """A new list of dimensions; a dimension whose name is stored already is reused (its
    definition kept). The list's name must be new (conflict)."""
    d = await directory(rt)
    if d.where(DIMENSION_LIST, name=name):
        raise Refused("conflict", f"Evaluation dimension list with name={name} already exists")
    pks = []
    for dim in dimensions:
        same = d.where(DIMENSION, name=dim["name"])
        if len(same) > 1:
            raise Refused("conflict", f"Evaluation dimension with name={dim['name']} already "
                                      "exists")
        pks.append(same[0]["pk"] if same else
                   await put(rt, DIMENSION, dim.get("pk") or new_pk(), dim))
    return await put(rt, DIMENSION_LIST, pk, {"pk": pk, "name": name, "dimension_pks": pks})


async def delete_dimension_list(rt: Runtime, key: str) -> None:
    """The list with this pk or, failing that, this name. Its dimensions stay."""
    d = await directory(rt)
    target = d.record(DIMENSION_LIST, key) or next(iter(d.where(DIMENSION_LIST, name=key)),
                                                    None)
    if target is None:
        raise Missing(f"Evaluation dimension list {key} not found")
    await delete(rt, DIMENSION_LIST, target["pk"])


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
    """An episode's setup from the stored records (episode.setup_of). ``models``: [evaluator,
    agent 1, agent 2]. Missing names the first id not found."""
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
    return episode_kind.setup_of(env_id, scenario, agent_ids, agents, models,
                                 dimensions_named(d, dimension_list), max_turns=max_turns,
                                 tag=tag, dimension_list=dimension_list, humans=humans)


async def start_episode(rt: Runtime, episode_id: str, setup: dict[str, Any]) -> None:
    """Start the episode in its actor; returns once its start is in the log."""
    await launch(rt.client.ref(EPISODE, episode_id),
                 {"type": "start", "setup": setup, "at": time.time()})


async def start_simulation(rt: Runtime, env_id: str, agent_ids: list[str], models: list[str],
                           *, max_turns: int = 20, tag: str = "",
                           dimension_list: str = "sotopia", humans: list[bool] | None = None
                           ) -> str:
    """A new episode from stored records; its id, once its start is in the log."""
    setup = await resolve_setup(rt, env_id, agent_ids, models, max_turns=max_turns, tag=tag,
                                dimension_list=dimension_list, humans=humans)
    episode_id = new_pk()
    await start_episode(rt, episode_id, setup)
    return episode_id


async def read_episode(rt: Runtime, episode_id: str) -> dict[str, Any] | None:
    """The episode's state, replayed from the store; None for an id with no (live) episode."""
    if not episode_id or "/" in episode_id or len(episode_id) > 256:
        return None
    state, _, _ = await replay(rt.store, get_kind(EPISODE), stream_id(EPISODE, episode_id),
                               None)
    if state["setup"] is None or state["status"] == "deleted":
        return None
    return state


async def read_episodes(rt: Runtime, ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """(id, state) of each live episode of ``ids``, in order."""
    states = await asyncio.gather(*(read_episode(rt, i) for i in ids))
    return [(i, s) for i, s in zip(ids, states) if s is not None]


async def list_episodes(rt: Runtime, tag: str | None = None, offset: int = 0,
                        limit: int = 100) -> list[tuple[str, dict[str, Any]]]:
    """Episodes newest first, a page of them, all or those tagged ``tag``; [] for none."""
    ids = (await directory(rt)).episodes(tag=tag)
    return await read_episodes(rt, ids[offset:offset + limit])


async def episodes_by(rt: Runtime, key: str, value: str, offset: int = 0, limit: int = 100
                      ) -> list[tuple[str, dict[str, Any]]]:
    """A search: the one episode with an id ("id"), or a page of those with a tag ("tag");
    Missing when it finds none."""
    if key == "id":
        state = await read_episode(rt, value)
        if state is None:
            raise Missing(f"Episode with id={value} not found")
        return [(value, state)]
    ids = (await directory(rt)).episodes(tag=value)
    if not ids:
        raise Missing(f"No episodes found with tag={value}")
    return await read_episodes(rt, ids[offset:offset + limit])


async def delete_episode(rt: Runtime, episode_id: str) -> None:
    """Stop the episode if it runs, then delete it."""
    if await read_episode(rt, episode_id) is None:
        raise Missing(f"Episode with id={episode_id} not found")
    ref = rt.client.ref(EPISODE, episode_id)
    await ref.acancel("deleted")
    await ask(ref, {"type": "delete"})


async def stop_episode(rt: Runtime, episode_id: str, reason: str = "stopped by a client"
                       ) -> dict[str, Any]:
    """Stop the episode: a signal to what runs on it, then a stop command (for one waiting
    for a human, or between steps); a stop is never undone by an automatic resume. Its
    state once its log says so."""
    if await read_episode(rt, episode_id) is None:
        raise Missing(f"Episode with id={episode_id} not found")
    ref = rt.client.ref(EPISODE, episode_id)
    await ref.acancel(reason)
    await ask(ref, {"type": "stop", "reason": reason})
    state = await read_episode(rt, episode_id)
    return state or {}


async def fork_episode(rt: Runtime, episode_id: str, version: int, agent: int | None = None,
                       model: str | None = None) -> str:
    """A new episode whose log is this one's up to ``version`` (its first event says
    forked_from), with ``model`` for ``agent`` (1 or 2) when given, carried on from there in
    its host; its id, once it is under way. An episode that had ended by then is refused: fork
    it at an earlier version."""
    state = await read_episode(rt, episode_id)
    if state is None:
        raise Missing(f"Episode with id={episode_id} not found")
    ref = rt.client.ref(EPISODE, episode_id)
    then, at, _ = await replay(rt.store, get_kind(EPISODE), stream_id(EPISODE, episode_id),
                               version)
    if at != version:
        raise Refused("invalid", f"episode {episode_id} has {at} events, not {version}")
    if then["setup"] is None:
        raise Refused("invalid", f"version {version} of episode {episode_id} is before its "
                                 "start: fork it at a later one")
    if then["status"] in episode_kind.FINISHED:
        raise Refused("invalid", f"episode {episode_id} had ended ({then['status']}) at version "
                                 f"{version}: fork it at an earlier one")
    models = list(then["setup"]["models"])
    if agent is not None and model is not None:
        models[agent] = model
    try:
        fork = await ref.afork(version, new_pk())
    except (ActorError, OutcomeUnknown, Unavailable) as exc:
        raise refused(exc) from None
    await launch(fork, {"type": "resume", "models": models})
    return fork.id


async def resume_if_due(rt: Runtime, episode_id: str) -> bool:
    """Carry the episode on when the one rule (episode.should_resume) says so, judged on its
    state now, not on the event that prompted the look (a follower replaying an old cut sees
    it long after the episode went on)."""
    state = await read_episode(rt, episode_id)
    if state is None:
        return False
    ref = rt.client.ref(EPISODE, episode_id)
    if not await episode_kind.due(episode_kind.should_resume, episode_kind.outcome_of(state),
                                  ref):
        return False
    return await launch(ref, {"type": "resume"}) == "progress"
