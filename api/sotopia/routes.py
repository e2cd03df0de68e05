"""The Sotopia family's HTTP routes (seed 000 and the real server, spec section 1).

Searches take their key in the path, as the real server does (/agents/gender/woman), and in
the seed's query form (/agents/?get_by=gender/woman). POST routes answer with and without a
trailing slash. Unlike the real server: an unknown id is a 404 with a detail naming it, lists
are [] when empty (never a placeholder record), /episodes pages newest first, and PUT exists.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from actors.sotopia.profiles import AGENT, RELATIONSHIP, SCENARIO
from api.edge import EdgeRoute, detail_responses
from api.kit import Refusals
from api.runtime import Runtime, get_runtime
from api.sotopia import batches, service
from api.sotopia.views import episode_log, status_of
from llm.service import model_port
from schemas.sotopia import (AgentProfile, BatchFork, BatchProgress, BatchRequest,
                             CustomEvaluationDimension,
                             CustomEvaluationDimensionsWrapper, EnvironmentProfile, EpisodeFork,
                             EpisodeLog, Forked,
                             PK_CHARS, RelationshipProfile, RelationshipType,
                             SimulationEpisodeInitiation, SimulationRequest)

__all__ = ["REFUSALS", "router"]

#: what the service refuses, as this document's statuses (FastAPI's {"detail"} shape)
REFUSALS = Refusals({"not_found": 404, "invalid": 422, "conflict": 409, "not_waiting": 409,
                     "not_your_turn": 409})
router = APIRouter(tags=["sotopia"], route_class=EdgeRoute.refusing(REFUSALS),
                   responses=detail_responses(404, 409, 422))
Rt = Annotated[Runtime, Depends(get_runtime)]
DEFAULT_MODELS = ["gpt-4o", "gpt-4o-mini", "gpt-4o-mini"]  # Sotopia's: evaluator, agents
#: a pk in a path, as the server takes it (service.put checks it, in its own words)
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


def _split(get_by: str, allowed: tuple[str, ...]) -> tuple[str, str]:
    key, sep, value = get_by.partition("/")
    if not sep or key not in allowed:
        raise HTTPException(422, f"get_by is <key>/<value> with key one of "
                                 f"{', '.join(allowed)}")
    return key, value


def _logs(found: list[tuple[str, dict[str, Any]]]) -> list[EpisodeLog]:
    return [episode_log(i, s) for i, s in found]


# ------------------------------------------------------------------ scenarios


@router.get("/scenarios", response_model=list[EnvironmentProfile])
@router.get("/scenarios/", response_model=list[EnvironmentProfile], include_in_schema=False)
async def get_scenarios(rt: Rt, get_by: str | None = _get_by(SCENARIO_KEYS)
                        ) -> list[dict[str, Any]]:
    """Every scenario ([] when there are none); with get_by, a search."""
    d = await service.directory(rt)
    if get_by is None:
        return d.records(SCENARIO)
    return service.scenarios_by(d, *_split(get_by, SCENARIO_KEYS))


@router.get("/scenarios/{get_by}/{value}", response_model=list[EnvironmentProfile])
async def search_scenarios(get_by: Literal["id", "codename", "tag"], value: str, rt: Rt
                           ) -> list[dict[str, Any]]:
    """By id (one), codename (exact) or tag (a keyword: every word of it appears in the
    scenario's tags, codename or text). 404 when nothing matches."""
    return service.scenarios_by(await service.directory(rt), get_by, value)


# ------------------------------------------------------------------ agents


@router.get("/agents", response_model=list[AgentProfile])
@router.get("/agents/", response_model=list[AgentProfile], include_in_schema=False)
async def get_agents(rt: Rt, get_by: str | None = _get_by(AGENT_KEYS)
                     ) -> list[dict[str, Any]]:
    d = await service.directory(rt)
    if get_by is None:
        return d.records(AGENT)
    return service.agents_by(d, *_split(get_by, AGENT_KEYS))


@router.get("/agents/{get_by}/{value}", response_model=list[AgentProfile])
async def search_agents(get_by: Literal["id", "gender", "occupation"], value: str, rt: Rt
                        ) -> list[dict[str, Any]]:
    """By id, gender or occupation (equal, ignoring case). 404 when nothing matches."""
    return service.agents_by(await service.directory(rt), get_by, value)


# ------------------------------------------------------------------ episodes


@router.get("/episodes", response_model=list[EpisodeLog])
@router.get("/episodes/", response_model=list[EpisodeLog], include_in_schema=False)
async def get_episodes(rt: Rt, get_by: str | None = _get_by(EPISODE_KEYS),
                       tag: str | None = Query(None, max_length=1_000),
                       offset: int = Query(0, ge=0, le=10_000_000),
                       limit: int = Query(100, ge=1, le=1_000)) -> list[EpisodeLog]:
    """Episodes newest first, a page at a time (offset, limit); ``tag`` (what Sotopia's UI
    sends) or get_by filters them. [] when there are none."""
    if get_by is not None:
        return _logs(await service.episodes_by(rt, *_split(get_by, EPISODE_KEYS), offset,
                                                limit))
    return _logs(await service.list_episodes(rt, tag, offset, limit))


@router.get("/episodes/{get_by}/{value}", response_model=list[EpisodeLog])
async def search_episodes(get_by: Literal["id", "tag"], value: str, rt: Rt,
                          offset: int = Query(0, ge=0, le=10_000_000),
                          limit: int = Query(100, ge=1, le=1_000)) -> list[EpisodeLog]:
    return _logs(await service.episodes_by(rt, get_by, value, offset, limit))


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
    return service.dimension_lists(await service.directory(rt))


@router.get("/relationship/{agent_1_id}/{agent_2_id}", response_model=str)
async def get_relationship(agent_1_id: str, agent_2_id: str, rt: Rt) -> str:
    """"<int>: <name>" of the newest relationship from agent_1_id to agent_2_id."""
    kind = RelationshipType(service.relationship_of(await service.directory(rt), agent_1_id,
                                                    agent_2_id))
    return f"{kind.value}: {kind.name}"


# ------------------------------------------------------------------ writes


def _pk(given: str | None) -> str:
    return given or service.new_pk()


@router.post("/agents", response_model=str)
@router.post("/agents/", response_model=str, include_in_schema=False)
async def create_agent(body: AgentProfile, rt: Rt) -> str:
    """Stores the agent (a supplied pk overwrites what it names) and returns its pk."""
    return await service.put(rt, AGENT, _pk(body.pk), body.model_dump(mode="json"))


@router.post("/scenarios", response_model=str)
@router.post("/scenarios/", response_model=str, include_in_schema=False)
async def create_scenario(body: EnvironmentProfile, rt: Rt) -> str:
    return await service.put(rt, SCENARIO, _pk(body.pk), body.model_dump(mode="json"))


@router.post("/relationship", response_model=str)
@router.post("/relationship/", response_model=str, include_in_schema=False)
async def create_relationship(body: RelationshipProfile, rt: Rt) -> str:
    return await service.put(rt, RELATIONSHIP, _pk(body.pk), body.model_dump(mode="json"))


@router.put("/agents/{agent_id}", response_model=str)
async def update_agent(agent_id: PathPk, body: AgentProfile, rt: Rt) -> str:
    """Replaces the agent's profile (the path's id wins over a pk in the body)."""
    return await service.put(rt, AGENT, agent_id, body.model_dump(mode="json"), mode="update")


@router.put("/scenarios/{scenario_id}", response_model=str)
async def update_scenario(scenario_id: PathPk, body: EnvironmentProfile, rt: Rt) -> str:
    return await service.put(rt, SCENARIO, scenario_id, body.model_dump(mode="json"),
                             mode="update")


@router.post("/evaluation_dimensions", response_model=str)
@router.post("/evaluation_dimensions/", response_model=str, include_in_schema=False)
async def create_evaluation_dimensions(body: CustomEvaluationDimensionsWrapper, rt: Rt) -> str:
    """A dimension whose name is stored already is reused (its definition is kept); the
    list's name must be new (409)."""
    return await service.create_dimension_list(
        rt, _pk(body.pk), body.name, [d.model_dump(mode="json") for d in body.dimensions])


def _deleter(path: str, name: str, kind: str, what: str) -> None:
    async def delete(rt: Rt, entity_id: str = Path(alias=name)) -> str:
        await service.delete(rt, kind, entity_id, what)
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
    await service.delete_dimension_list(rt, evaluation_dimension_list_name)
    return evaluation_dimension_list_name


@router.delete("/episodes/{episode_id}", response_model=str)
async def delete_episode(episode_id: str, rt: Rt) -> str:
    """Deletes the episode, stopping it first if it runs."""
    await service.delete_episode(rt, episode_id)
    return episode_id


# ------------------------------------------------------------------ non-streaming episodes


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
    return await service.start_simulation(rt, body.scenario_id, body.agent_ids,
                                          _models_for(body.models), max_turns=body.max_turns,
                                          tag=body.episode_tag)


@router.post("/simulate", status_code=202, response_model=None,
             responses={202: {"content": {"text/plain": {"schema": {"type": "string"}}},
                              "description": "the episode's pk, as plain text"}})
@router.post("/simulate/", status_code=202, response_model=None, include_in_schema=False)
async def simulate(body: SimulationRequest, rt: Rt) -> PlainTextResponse:
    """The real server's SimulationRequest (models = [evaluator, agent 1, agent 2]): 202 and
    the episode's pk as plain text, as Sotopia answers."""
    episode_id = await service.start_simulation(rt, body.env_id, body.agent_ids, body.models,
                                                max_turns=body.max_turns, tag=body.tag)
    return PlainTextResponse(episode_id, status_code=202)


@router.get("/simulation_status/{episode_pk}", response_model=Literal["Started", "Completed",
                                                                      "Error"])
async def simulation_status(episode_pk: str, rt: Rt) -> str:
    """Started (running, or waiting to resume), Completed (scored) or Error (stopped, or its
    evaluation failed: the episode's reasoning says why)."""
    found = await service.episodes_by(rt, "id", episode_pk)
    return status_of(found[0][1])


@router.post("/v1/episodes/{episode_id}/fork", response_model=Forked, status_code=202)
async def fork_episode(episode_id: str, body: EpisodeFork, rt: Rt) -> Forked:
    """A new episode whose log starts with this one's events up to ``version`` (its first
    event says forked_from), with ``model`` for ``agent`` when given; it goes on in its own
    actor from there (202 once it is under way). Paired with its source, a comparison of two
    models from the same opening."""
    new = await service.fork_episode(rt, episode_id, body.version, body.agent, body.model)
    return Forked(kind="sotopia_episode", id=new, forked_from=episode_id, version=body.version)


@router.post("/v1/episodes/{episode_id}/stop", response_model=Literal["Started", "Completed",
                                                                      "Error"])
async def stop_episode(episode_id: str, rt: Rt) -> str:
    """Stops the episode (ours): what runs on it stops now, and nothing resumes it after.
    Answers its non-streaming status once its log says so."""
    return status_of(await service.stop_episode(rt, episode_id))


# ------------------------------------------------------------------ batches (ours)


class BatchResults(BaseModel):
    batch_id: str
    rows: list[dict[str, Any]] = Field(description="one per episode of the plan, in order")
    summary: list[dict[str, Any]] = Field(description="per model: mean and 95% CI of the "
                                                      "overall score and each dimension")
    paired: list[dict[str, Any]] | None = Field(
        None, description="a batch of forks: per dimension, the mean fork-minus-source "
                          "difference over the pairs, with its 95% CI")


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
    batch_id = body.batch_id or service.new_pk()
    answer = await batches.start(rt, batch_id, body.spec, body.concurrency)
    if not answer.pop("started"):
        response.status_code = 200
    return answer


@router.get("/v1/batches/{batch_id}", response_model=BatchProgress)
async def batch_progress(batch_id: str, rt: Rt) -> dict[str, Any]:
    return await batches.progress(rt, batch_id)


@router.get("/v1/batches/{batch_id}/results", response_model=BatchResults)
async def batch_results(batch_id: str, rt: Rt, by_scenario: bool = False) -> dict[str, Any]:
    """Every episode's scores as rows, and the summary per model (and per scenario when
    ``by_scenario``)."""
    rows = await batches.result_rows(rt, batch_id)
    by = ("model", "scenario") if by_scenario else ("model",)
    return {"batch_id": batch_id, "rows": rows, "summary": batches.summary(rows, by),
            "paired": await batches.paired(rt, batch_id, rows)}


@router.post("/v1/batches/{batch_id}/fork", response_model=BatchProgress, status_code=202,
             responses={200: {"description": "a run of that batch of forks is under way "
                                             "already: its progress"},
                        409: {"description": "the new batch id exists with another plan"}})
async def fork_batch(batch_id: str, body: BatchFork, rt: Rt, response: Response
                     ) -> dict[str, Any]:
    """A new batch: every completed episode of this one copied up to its ``turn``-th turn
    and carried on with ``model`` for ``agent``, each in its own actor. Its results hold
    ``paired``: per dimension, the fork-minus-source difference with its 95% interval. 202
    once its plan and run are in its log."""
    answer = await batches.fork(rt, batch_id, body.batch_id or service.new_pk(), body.turn,
                                body.agent, body.model, body.concurrency)
    if not answer.pop("started"):
        response.status_code = 200
    return answer


@router.post("/v1/batches/{batch_id}/stop", response_model=BatchProgress)
async def stop_batch(batch_id: str, rt: Rt) -> dict[str, Any]:
    """Stops the batch and the episodes it runs, and answers once its log says stopped. Final
    until someone starts it again (POST /v1/batches with its id), which goes on where it
    stopped."""
    return await batches.stop(rt, batch_id, "stopped by a client")
