"""The Sotopia family's HTTP routes (seed 000 and the real server, spec section 1).

Searches take their key in the path, as the real server does (/agents/gender/woman), and in
the seed's query form (/agents/?get_by=gender/woman). POST routes answer with and without a
trailing slash. Unlike the real server: an unknown id is a 404 with a detail naming it, lists
are [] when empty (never a placeholder record), /episodes pages newest first, and PUT exists.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from actors.sotopia.episode import EPISODE, episode_log, status_of
from actors.sotopia.profiles import AGENT, DIMENSION, DIMENSION_LIST, RELATIONSHIP, SCENARIO
from api.edge import EdgeRoute, detail_responses
from api.kit import send
from api.runtime import Runtime, get_runtime
from api.sotopia import batches, data
from api.sotopia.data import Missing, directory, new_pk
from llm.service import model_port
from schemas.sotopia import (AgentProfile, BatchProgress, BatchRequest, CustomEvaluationDimension,
                             CustomEvaluationDimensionsWrapper, EnvironmentProfile, EpisodeLog,
                             PK_CHARS, RelationshipProfile, RelationshipType,
                             SimulationEpisodeInitiation, SimulationRequest)

__all__ = ["router"]

router = APIRouter(tags=["sotopia"], route_class=EdgeRoute,
                   responses=detail_responses(404, 409, 422))
Rt = Annotated[Runtime, Depends(get_runtime)]
DEFAULT_MODELS = ["gpt-4o", "gpt-4o-mini", "gpt-4o-mini"]  # Sotopia's: evaluator, agents
#: a pk in a path, as the server takes it (data.put checks it, in its own words)
PathPk = Annotated[str, Path(json_schema_extra={"pattern": rf"^{PK_CHARS}{{1,256}}$"})]
#: the keys of each search's get_by=<key>/<value>
SCENARIO_KEYS = ("id", "codename", "tag")
AGENT_KEYS = ("id", "gender", "occupation")
EPISODE_KEYS = ("id", "tag")


def _get_by(keys: tuple[str, ...]) -> Any:
    """The seed's query form, <key>/<value>: the keys it takes, stated in the document (the
    route's own check words the refusal)."""
    return Query(None, max_length=1_000, json_schema_extra={"pattern": f"^({'|'.join(keys)})/"},
                 description=f"the seed's query form: <key>/<value> with key one of "
                             f"{', '.join(keys)}, e.g. {keys[-1]}/negotiation")


def _not_found(message: str) -> HTTPException:
    return HTTPException(404, message)


def _split(get_by: str, allowed: tuple[str, ...]) -> tuple[str, str]:
    key, sep, value = get_by.partition("/")
    if not sep or key not in allowed:
        raise HTTPException(422, f"get_by is <key>/<value> with key one of "
                                 f"{', '.join(allowed)}")
    return key, value


# ------------------------------------------------------------------ scenarios


def _scenarios_by(d: Any, key: str, value: str) -> list[dict[str, Any]]:
    if key == "id":
        found = d.record(SCENARIO, value)
        if found is None:
            raise _not_found(f"Scenario with id={value} not found")
        return [found]
    if key == "codename":
        hits = d.where(SCENARIO, codename=value)
    else:
        hits = d.scenarios_tagged(value)
    if not hits:
        raise _not_found(f"No scenarios found with {key}={value}")
    return hits


@router.get("/scenarios", response_model=list[EnvironmentProfile])
@router.get("/scenarios/", response_model=list[EnvironmentProfile], include_in_schema=False)
async def get_scenarios(rt: Rt, get_by: str | None = _get_by(SCENARIO_KEYS)
                        ) -> list[dict[str, Any]]:
    """Every scenario ([] when there are none); with get_by, a search."""
    d = await directory(rt)
    if get_by is None:
        return d.records(SCENARIO)
    return _scenarios_by(d, *_split(get_by, SCENARIO_KEYS))


@router.get("/scenarios/{get_by}/{value}", response_model=list[EnvironmentProfile])
async def search_scenarios(get_by: Literal["id", "codename", "tag"], value: str, rt: Rt
                           ) -> list[dict[str, Any]]:
    """By id (one), codename (exact) or tag (a keyword: every word of it appears in the
    scenario's tags, codename or text). 404 when nothing matches."""
    return _scenarios_by(await directory(rt), get_by, value)


# ------------------------------------------------------------------ agents


def _agents_by(d: Any, key: str, value: str) -> list[dict[str, Any]]:
    if key == "id":
        found = d.record(AGENT, value)
        if found is None:
            raise _not_found(f"Agent with id={value} not found")
        return [found]
    hits = [a for a in d.records(AGENT) if str(a.get(key, "")).lower() == value.lower()]
    if not hits:
        raise _not_found(f"No agents found with {key}={value}")
    return hits


@router.get("/agents", response_model=list[AgentProfile])
@router.get("/agents/", response_model=list[AgentProfile], include_in_schema=False)
async def get_agents(rt: Rt, get_by: str | None = _get_by(AGENT_KEYS)
                     ) -> list[dict[str, Any]]:
    d = await directory(rt)
    if get_by is None:
        return d.records(AGENT)
    return _agents_by(d, *_split(get_by, AGENT_KEYS))


@router.get("/agents/{get_by}/{value}", response_model=list[AgentProfile])
async def search_agents(get_by: Literal["id", "gender", "occupation"], value: str, rt: Rt
                        ) -> list[dict[str, Any]]:
    """By id, gender or occupation (equal, ignoring case). 404 when nothing matches."""
    return _agents_by(await directory(rt), get_by, value)


# ------------------------------------------------------------------ episodes


async def _logs(rt: Runtime, ids: list[str]) -> list[dict[str, Any]]:
    states = await asyncio.gather(*(data.read_episode(rt, i) for i in ids))
    return [episode_log(i, s) for i, s in zip(ids, states) if s is not None]


async def _episodes_by(rt: Runtime, key: str, value: str, offset: int = 0, limit: int = 100
                       ) -> list[dict[str, Any]]:
    if key == "id":
        state = await data.read_episode(rt, value)
        if state is None:
            raise _not_found(f"Episode with id={value} not found")
        return [episode_log(value, state)]
    ids = (await directory(rt)).episodes(tag=value)
    if not ids:
        raise _not_found(f"No episodes found with tag={value}")
    return await _logs(rt, ids[offset:offset + limit])


@router.get("/episodes", response_model=list[EpisodeLog])
@router.get("/episodes/", response_model=list[EpisodeLog], include_in_schema=False)
async def get_episodes(rt: Rt, get_by: str | None = _get_by(EPISODE_KEYS),
                       tag: str | None = Query(None, max_length=1_000),
                       offset: int = Query(0, ge=0, le=10_000_000),
                       limit: int = Query(100, ge=1, le=1_000)) -> list[dict[str, Any]]:
    """Episodes newest first, a page at a time (offset, limit); ``tag`` (what Sotopia's UI
    sends) or get_by filters them. [] when there are none."""
    if get_by is not None:
        return await _episodes_by(rt, *_split(get_by, EPISODE_KEYS), offset, limit)
    ids = (await directory(rt)).episodes(tag=tag)
    return await _logs(rt, ids[offset:offset + limit])


@router.get("/episodes/{get_by}/{value}", response_model=list[EpisodeLog])
async def search_episodes(get_by: Literal["id", "tag"], value: str, rt: Rt,
                          offset: int = Query(0, ge=0, le=10_000_000),
                          limit: int = Query(100, ge=1, le=1_000)) -> list[dict[str, Any]]:
    return await _episodes_by(rt, get_by, value, offset, limit)


# ------------------------------------------------------------------ other reads

_ROUTER: dict[int, Any] = {}


@router.get("/models", response_model=list[str])
async def get_models(rt: Rt) -> list[str]:
    """The model names this service serves (ACTORLOG_MODELS' providers and aliases, and
    builtin). Any other name is answered by the default model."""
    key = id(rt.settings)
    if key not in _ROUTER:
        _ROUTER.clear()
        _ROUTER[key] = model_port(rt.settings, rt.store)["models"]
    return _ROUTER[key].names()


@router.get("/evaluation_dimensions",
            response_model=dict[str, list[CustomEvaluationDimension]])
async def get_evaluation_dimensions(rt: Rt) -> dict[str, list[dict[str, Any]]]:
    """{list name: [dimension]}; the built-in "sotopia" list is there unless deleted."""
    return data.dimension_lists(await directory(rt))


@router.get("/relationship/{agent_1_id}/{agent_2_id}", response_model=str)
async def get_relationship(agent_1_id: str, agent_2_id: str, rt: Rt) -> str:
    """"<int>: <name>" of the newest relationship from agent_1_id to agent_2_id."""
    hits = (await directory(rt)).where(RELATIONSHIP, agent_1_id=agent_1_id,
                                       agent_2_id=agent_2_id)
    if not hits:
        raise _not_found(f"No relationship found from {agent_1_id} to {agent_2_id}")
    kind = RelationshipType(hits[-1]["relationship"])
    return f"{kind.value}: {kind.name}"


# ------------------------------------------------------------------ writes


def _pk(given: str | None) -> str:
    return given or new_pk()


@router.post("/agents", response_model=str)
@router.post("/agents/", response_model=str, include_in_schema=False)
async def create_agent(body: AgentProfile, rt: Rt) -> str:
    """Stores the agent (a supplied pk overwrites what it names) and returns its pk."""
    pk = _pk(body.pk)
    return await data.put(rt, AGENT, pk, body.model_dump(mode="json"))


@router.post("/scenarios", response_model=str)
@router.post("/scenarios/", response_model=str, include_in_schema=False)
async def create_scenario(body: EnvironmentProfile, rt: Rt) -> str:
    pk = _pk(body.pk)
    return await data.put(rt, SCENARIO, pk, body.model_dump(mode="json"))


@router.post("/relationship", response_model=str)
@router.post("/relationship/", response_model=str, include_in_schema=False)
async def create_relationship(body: RelationshipProfile, rt: Rt) -> str:
    pk = _pk(body.pk)
    return await data.put(rt, RELATIONSHIP, pk, body.model_dump(mode="json"))


@router.put("/agents/{agent_id}", response_model=str)
async def update_agent(agent_id: PathPk, body: AgentProfile, rt: Rt) -> str:
    """Replaces the agent's profile (the path's id wins over a pk in the body)."""
    return await data.put(rt, AGENT, agent_id, body.model_dump(mode="json"), mode="update")


@router.put("/scenarios/{scenario_id}", response_model=str)
async def update_scenario(scenario_id: PathPk, body: EnvironmentProfile, rt: Rt) -> str:
    return await data.put(rt, SCENARIO, scenario_id, body.model_dump(mode="json"),
                          mode="update")


@router.post("/evaluation_dimensions", response_model=str)
@router.post("/evaluation_dimensions/", response_model=str, include_in_schema=False)
async def create_evaluation_dimensions(body: CustomEvaluationDimensionsWrapper, rt: Rt) -> str:
    """A dimension whose name is stored already is reused (its definition is kept); the
    list's name must be new (409)."""
    d = await directory(rt)
    if d.where(DIMENSION_LIST, name=body.name):
        raise HTTPException(409, f"Evaluation dimension list with name={body.name} already "
                                 "exists")
    pks = []
    for dim in body.dimensions:
        same = d.where(DIMENSION, name=dim.name)
        if len(same) > 1:
            raise HTTPException(409, f"Evaluation dimension with name={dim.name} already "
                                     "exists")
        if same:
            pks.append(same[0]["pk"])
        else:
            pks.append(await data.put(rt, DIMENSION, _pk(dim.pk), dim.model_dump(mode="json")))
    pk = _pk(body.pk)
    return await data.put(rt, DIMENSION_LIST, pk, {"pk": pk, "name": body.name,
                                                   "dimension_pks": pks})


def _deleter(path: str, name: str, kind: str, what: str) -> None:
    async def delete(rt: Rt, entity_id: str = Path(alias=name)) -> str:
        try:
            await data.delete(rt, kind, entity_id)
        except HTTPException as exc:
            if exc.status_code == 404:
                raise _not_found(f"{what} with id={entity_id} not found") from None
            raise
        return entity_id

    delete.__name__ = f"delete_{kind}"
    delete.__doc__ = f"Deletes the {what.lower()}; 404 when there is none."
    router.delete(path, response_model=str)(delete)


_deleter("/agents/{agent_id}", "agent_id", AGENT, "Agent")
_deleter("/scenarios/{scenario_id}", "scenario_id", SCENARIO, "Scenario")
_deleter("/relationship/{relationship_id}", "relationship_id", RELATIONSHIP, "Relationship")


@router.delete("/evaluation_dimensions/{evaluation_dimension_list_name}", response_model=str)
async def delete_evaluation_dimensions(evaluation_dimension_list_name: str, rt: Rt) -> str:
    """Deletes the list with this pk (as the real server reads it) or, failing that, this
    name. Its dimensions stay."""
    key = evaluation_dimension_list_name
    d = await directory(rt)
    target = d.record(DIMENSION_LIST, key) or next(iter(d.where(DIMENSION_LIST, name=key)),
                                                    None)
    if target is None:
        raise _not_found(f"Evaluation dimension list {key} not found")
    await data.delete(rt, DIMENSION_LIST, target["pk"])
    return key


@router.delete("/episodes/{episode_id}", response_model=str)
async def delete_episode(episode_id: str, rt: Rt) -> str:
    """Deletes the episode, stopping it first if it runs."""
    if await data.read_episode(rt, episode_id) is None:
        raise _not_found(f"Episode with id={episode_id} not found")
    ref = rt.client.ref(EPISODE, episode_id)
    await ref.acancel("deleted")
    await send(ref, {"type": "delete"}, data.REFUSALS)
    return episode_id


# ------------------------------------------------------------------ non-streaming episodes


async def _start(rt: Runtime, env_id: str, agent_ids: list[str], models: list[str],
                 max_turns: int, tag: str) -> str:
    try:
        setup = await data.resolve_setup(rt, env_id, agent_ids, models, max_turns=max_turns,
                                         tag=tag)
    except Missing as exc:
        raise _not_found(str(exc)) from None
    episode_id = new_pk()
    await data.start_episode(rt, episode_id, setup)
    return episode_id


def _models_for(models: list[str]) -> list[str]:
    """The seed's models list as [evaluator, agent 1, agent 2]."""
    if not models:
        return list(DEFAULT_MODELS)
    if len(models) == 1:
        return models * 3
    if len(models) == 2:
        return [models[0], *models]
    return models


@router.post("/episodes", response_model=str, status_code=202)
@router.post("/episodes/", response_model=str, status_code=202, include_in_schema=False)
async def start_episode(body: SimulationEpisodeInitiation, rt: Rt) -> str:
    """The seed's SimulationEpisodeInitiation: starts the episode in its actor and returns
    its id once the start is in the log; GET /simulation_status/{id} follows it."""
    return await _start(rt, body.scenario_id, body.agent_ids, _models_for(body.models),
                        body.max_turns, body.episode_tag)


@router.post("/simulate", status_code=202, response_model=None,
             responses={202: {"content": {"text/plain": {"schema": {"type": "string"}}},
                              "description": "the episode's pk, as plain text"}})
@router.post("/simulate/", status_code=202, response_model=None, include_in_schema=False)
async def simulate(body: SimulationRequest, rt: Rt) -> PlainTextResponse:
    """The real server's SimulationRequest (models = [evaluator, agent 1, agent 2]): 202 and
    the episode's pk as plain text, as Sotopia answers."""
    episode_id = await _start(rt, body.env_id, body.agent_ids, body.models, body.max_turns,
                              body.tag)
    return PlainTextResponse(episode_id, status_code=202)


@router.get("/simulation_status/{episode_pk}", response_model=Literal["Started", "Completed",
                                                                      "Error"])
async def simulation_status(episode_pk: str, rt: Rt) -> str:
    """Started (running, or waiting to resume), Completed (scored) or Error (stopped, or its
    evaluation failed: the episode's reasoning says why)."""
    state = await data.read_episode(rt, episode_pk)
    if state is None:
        raise _not_found(f"Episode with id={episode_pk} not found")
    return status_of(state)



# ------------------------------------------------------------------ batches (ours)


class BatchResults(BaseModel):
    batch_id: str
    rows: list[dict[str, Any]] = Field(description="one per episode of the plan, in order")
    summary: list[dict[str, Any]] = Field(description="per model: mean and 95% CI of the "
                                                      "overall score and each dimension")


def _batch_missing(exc: Missing) -> HTTPException:
    return _not_found(str(exc))


@router.post("/v1/batches", response_model=BatchProgress, status_code=202,
             responses={200: {"model": BatchProgress,
                              "description": "a run of this batch is under way already: its "
                                             "progress (nothing new was started)"},
                        409: {"description": "the batch exists with another plan"}})
async def start_batch(body: BatchRequest, rt: Rt, response: Response) -> dict[str, Any]:
    """Starts a batch (with ``spec``) or goes on with one (without: only the episodes with no
    result run). Returns once its plan and run are in its log (202); the batch runs in its
    entity. A batch whose run is under way already answers 200 with its progress at once, for
    the same spec or none; another spec is a 409. A plan of more than 100,000 episodes is
    refused (422) before it is built."""
    batch_id = body.batch_id or new_pk()
    try:
        answer = await batches.start(rt, batch_id, body.spec, body.concurrency)
    except Missing as exc:
        raise _batch_missing(exc) from None
    except batches.Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if not answer.pop("started"):
        response.status_code = 200
    return answer


@router.get("/v1/batches/{batch_id}", response_model=BatchProgress)
async def batch_progress(batch_id: str, rt: Rt) -> dict[str, Any]:
    try:
        return await batches.progress(rt, batch_id)
    except Missing as exc:
        raise _batch_missing(exc) from None


@router.get("/v1/batches/{batch_id}/results", response_model=BatchResults)
async def batch_results(batch_id: str, rt: Rt, by_scenario: bool = False) -> dict[str, Any]:
    """Every episode's scores as rows, and the summary per model (and per scenario when
    ``by_scenario``)."""
    try:
        rows = await batches.result_rows(rt, batch_id)
    except Missing as exc:
        raise _batch_missing(exc) from None
    by = ("model", "scenario") if by_scenario else ("model",)
    return {"batch_id": batch_id, "rows": rows, "summary": batches.summary(rows, by)}


@router.post("/v1/batches/{batch_id}/stop", response_model=BatchProgress)
async def stop_batch(batch_id: str, rt: Rt) -> dict[str, Any]:
    """Stops the batch and the episodes it runs, and answers once its log says stopped. Final
    until someone starts it again (POST /v1/batches with its id), which goes on where it
    stopped."""
    try:
        return await batches.stop(rt, batch_id, "stopped by a client")
    except Missing as exc:
        raise _batch_missing(exc) from None
