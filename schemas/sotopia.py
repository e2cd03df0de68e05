"""Wire format of the Sotopia family (seed 000, "Sotopia UI" API; ../shared/specs/sotopia.md):
Sotopia's own data models with its field names, types and defaults, the two ways to start a
non-streaming episode, and the simulation WebSocket's envelope and payloads.

Where Sotopia is lax the models are as lax (an agent profile ignores unknown keys, a
relationship takes 1.0 for know_by_name); where it forbids extra keys they do too. Strings
are bounded so a record stays a record.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["AgentAction", "AgentProfile", "CustomEvaluationDimension",
           "CustomEvaluationDimensionsWrapper", "EnvironmentProfile", "EpisodeLog",
           "ErrorData", "RelationshipProfile", "RelationshipType",
           "SimulationEpisodeInitiation", "SimulationRequest", "StartSim", "WSMessage",
           "WS_TYPES", "ERROR_TYPES", "ACTION_TYPES", "BatchProgress", "BatchRequest",
           "BatchSpec", "EpisodeSpec", "MAX_BATCH"]

TEXT = 20_000  # characters in one free-text field
PK = 256
#: steps an episode may take: every SERVER_MSG carries the whole log, so this bounds a frame
MAX_TURNS = 200
#: what the server takes as a pk (api/sotopia/data.py): empty (a new one is made), or 1 to 256
#: characters with no '/' and no control character. Stated in the document only: the server's
#: own check words the refusal
PK_CHARS = r"[^/\x00-\x1f]"
PK_PATTERN = rf"^{PK_CHARS}{{0,256}}$"
Pk = Annotated[str | None, Field(json_schema_extra={"pattern": PK_PATTERN})]
#: exactly two agents: stated in the document, checked (in Sotopia's words) by _two_agents
TwoAgents = Annotated[list[str], Field(json_schema_extra={"minItems": 2, "maxItems": 2})]

ACTION_TYPES = ("none", "speak", "non-verbal communication", "action", "leave")
WS_TYPES = ("SERVER_MSG", "CLIENT_MSG", "ERROR", "START_SIM", "END_SIM", "FINISH_SIM")
#: the seed's error codes (the real server only ever sends SIMULATION_ISSUE)
ERROR_TYPES = ("NOT_AUTHORIZED", "SIMULATION_ALREADY_STARTED", "SIMULATION_NOT_STARTED",
               "RESOURCE_NOT_FOUND", "SIMULATION_ERROR", "SIMULATION_INTERRUPTED", "OTHER")


def _bounded_pk(value: Any) -> Any:
    if isinstance(value, str) and (len(value) > PK or "/" in value):
        raise ValueError(f"a pk has at most {PK} characters and no '/'")
    return value


class RelationshipType(IntEnum):
    stranger = 0
    know_by_name = 1
    acquaintance = 2
    friend = 3
    romantic_relationship = 4
    family_member = 5


class AgentProfile(BaseModel):
    """Sotopia's BaseAgentProfile: first and last name required, unknown keys ignored."""

    model_config = ConfigDict(extra="ignore")

    pk: Pk = ""
    first_name: str = Field(max_length=TEXT)
    last_name: str = Field(max_length=TEXT)
    age: int = Field(0, ge=0, le=1_000)
    occupation: str = Field("", max_length=TEXT)
    gender: str = Field("", max_length=TEXT)
    gender_pronoun: str = Field("", max_length=TEXT)
    public_info: str = Field("", max_length=TEXT)
    big_five: str = Field("", max_length=TEXT)
    moral_values: list[str] = Field(default_factory=list, max_length=100)
    schwartz_personal_values: list[str] = Field(default_factory=list, max_length=100)
    personality_and_values: str = Field("", max_length=TEXT)
    decision_making_style: str = Field("", max_length=TEXT)
    secret: str = Field("", max_length=TEXT)
    model_id: str = Field("", max_length=TEXT)
    mbti: str = Field("", max_length=TEXT)
    tag: str = Field("", max_length=TEXT)

    _pk = field_validator("pk")(_bounded_pk)


class EnvironmentProfile(BaseModel):
    """Sotopia's BaseEnvironmentProfile (a scenario): ``scenario`` required, extra keys
    refused."""

    model_config = ConfigDict(extra="forbid")

    pk: Pk = ""
    codename: str = Field("", max_length=TEXT)
    source: str = Field("", max_length=TEXT)
    scenario: str = Field(max_length=TEXT)
    agent_goals: list[str] = Field(default_factory=list, max_length=100)
    relationship: RelationshipType = RelationshipType.stranger
    age_constraint: str | None = Field(None, max_length=TEXT)
    occupation_constraint: str | None = Field(None, max_length=TEXT)
    agent_constraint: list[list[str]] | None = Field(None, max_length=100)
    game_metadata: dict[str, Any] | None = None
    tag: str = Field("", max_length=TEXT)

    _pk = field_validator("pk")(_bounded_pk)


class RelationshipProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pk: Pk = ""
    agent_1_id: str = Field(max_length=PK)
    agent_2_id: str = Field(max_length=PK)
    relationship: RelationshipType
    background_story: str | None = Field(None, max_length=TEXT)
    tag: str = Field("", max_length=TEXT)

    _pk = field_validator("pk")(_bounded_pk)


class CustomEvaluationDimension(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pk: Pk = ""
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(max_length=TEXT)
    range_high: int = Field(ge=-1_000_000, le=1_000_000)
    range_low: int = Field(ge=-1_000_000, le=1_000_000)

    _pk = field_validator("pk")(_bounded_pk)

    @field_validator("range_high")
    @classmethod
    def _ordered(cls, high: int, info: Any) -> int:
        low = info.data.get("range_low")
        if low is not None and high < low:
            raise ValueError("range_high is at least range_low")
        return high


class CustomEvaluationDimensionsWrapper(BaseModel):
    pk: str = Field("", max_length=PK, json_schema_extra={"pattern": PK_PATTERN})
    name: str = Field("", max_length=200, description="The name of the custom evaluation "
                                                      "dimension list")
    dimensions: list[CustomEvaluationDimension] = Field(default_factory=list, max_length=100)

    _pk = field_validator("pk")(_bounded_pk)


class EpisodeLog(BaseModel):
    """An episode as a client reads it: a fold of the episode's log. ``messages`` are turns of
    (sender, receiver, text); ``rewards`` one (overall, {dimension: score}) per agent, or 0.0
    per agent when the evaluation failed (Sotopia's convention, issue #13) and ``reasoning``
    says why."""

    pk: Pk = ""
    environment: str
    agents: list[str]
    tag: str | None = ""
    models: list[str] | None = Field(default_factory=list)
    agent_classes: list[str] | None = Field(default_factory=list)
    messages: list[list[tuple[str, str, str]]]
    reasoning: str = ""
    rewards: list[tuple[float, dict[str, float]] | float]
    rewards_prompt: str = ""


class AgentAction(BaseModel):
    action_type: Literal["none", "speak", "non-verbal communication", "action", "leave"]
    argument: str = Field("", max_length=TEXT)
    to: list[str] = Field(default_factory=list, max_length=20)


class SimulationRequest(BaseModel):
    """The real server's POST /simulate: models = [evaluator, agent 1, agent 2]."""

    env_id: str = Field(max_length=PK)
    agent_ids: TwoAgents
    models: list[str] = Field(json_schema_extra={"minItems": 3, "maxItems": 3})
    max_turns: int = Field(ge=1, le=MAX_TURNS)
    tag: str = Field(max_length=TEXT)

    @field_validator("agent_ids")
    @classmethod
    def _two_agents(cls, ids: list[str]) -> list[str]:
        if len(ids) != 2:
            raise ValueError("Currently only 2 agents are supported")
        return ids

    @field_validator("models")
    @classmethod
    def _three_models(cls, models: list[str], info: Any) -> list[str]:
        if len(models) != len(info.data.get("agent_ids") or []) + 1:
            raise ValueError("models must have exactly 3 elements: the first model is the "
                             "evaluator model, the others the agents' models")
        return models


class SimulationEpisodeInitiation(BaseModel):
    """The seed's POST /episodes/. ``models``: one name for everything, one per agent (the
    first also evaluates), or [evaluator, agent 1, agent 2] as in SimulationRequest."""

    scenario_id: str = Field(max_length=PK)
    agent_ids: TwoAgents
    episode_tag: str = Field("", max_length=TEXT)
    models: list[str] = Field(default_factory=list, max_length=3)
    max_turns: int = Field(20, ge=1, le=MAX_TURNS)

    _agents = field_validator("agent_ids")(SimulationRequest._two_agents.__func__)


class StartSim(BaseModel):
    """START_SIM's data: the seed's env_id and agent_ids, and the real server's optional
    fields. An agent whose model is "human", or whose id is in ``human_agent_ids``, is played
    by the client through CLIENT_MSG."""

    model_config = ConfigDict(extra="ignore")

    env_id: str = Field(max_length=PK)
    agent_ids: TwoAgents
    agent_models: list[str] | None = None
    evaluator_model: str = Field("gpt-4o", max_length=PK)
    evaluation_dimension_list_name: str = Field("sotopia", max_length=200)
    max_turns: int = Field(20, ge=1, le=MAX_TURNS)
    tag: str = Field("", max_length=TEXT)
    human_agent_ids: list[str] = Field(default_factory=list, max_length=2)

    _agents = field_validator("agent_ids")(SimulationRequest._two_agents.__func__)

    @field_validator("agent_models")
    @classmethod
    def _one_model_each(cls, models: list[str] | None, info: Any) -> list[str] | None:
        if models is not None and len(models) != len(info.data.get("agent_ids") or []):
            raise ValueError("agent_models has one model per agent")
        return models


class ErrorData(BaseModel):
    """An ERROR frame's data: ``details`` is what Sotopia's server writes, ``content`` what
    its Streamlit UI reads; both carry the same text."""

    type: Literal["NOT_AUTHORIZED", "SIMULATION_ALREADY_STARTED", "SIMULATION_NOT_STARTED",
                  "RESOURCE_NOT_FOUND", "SIMULATION_ERROR", "SIMULATION_INTERRUPTED", "OTHER"]
    details: str
    content: str


class WSMessage(BaseModel):
    type: Literal["SERVER_MSG", "CLIENT_MSG", "ERROR", "START_SIM", "END_SIM", "FINISH_SIM"]
    data: dict[str, Any] = Field(default_factory=dict)


# ------------------------------------------------------------------ batches (ours)

MAX_BATCH = 100_000  # episodes in one batch


class EpisodeSpec(BaseModel):
    """One episode of an explicit batch: ``models`` is a model name (it plays both agents and
    judges) or "evaluator,agent1,agent2"; the batch's first model when absent."""

    model_config = ConfigDict(extra="forbid")

    env_id: str = Field(max_length=PK)
    agent_ids: TwoAgents
    models: str | None = Field(None, max_length=1_000)

    _agents = field_validator("agent_ids")(SimulationRequest._two_agents.__func__)


class BatchSpec(BaseModel):
    """A grid (scenarios x agent pairs x models x reps) or an explicit list of episodes.
    ``scenarios``: ids or "tag:<keyword>" (all scenarios when empty); ``agents``: ids (all
    when empty), paired by ``pairing`` ("consecutive": (a0, a1), (a2, a3)...; "all": every
    ordered pair; "sample:N": N random pairs per scenario, by ``seed``) unless ``agent_pairs``
    names them."""

    model_config = ConfigDict(extra="forbid")

    scenarios: list[str] = Field(default_factory=list, max_length=10_000)
    agents: list[str] = Field(default_factory=list, max_length=10_000)
    agent_pairs: list[Annotated[list[str], Field(json_schema_extra={
        "minItems": 2, "maxItems": 2})]] = Field(default_factory=list, max_length=10_000)
    pairing: str = Field("consecutive", pattern=r"^(consecutive|all|sample:[1-9][0-9]{0,4})$")
    models: list[str] = Field(default_factory=lambda: ["builtin"], min_length=1,
                              max_length=100)
    reps: int = Field(1, ge=1, le=10_000)
    episodes: list[EpisodeSpec] = Field(default_factory=list, max_length=MAX_BATCH)
    max_turns: int = Field(20, ge=1, le=MAX_TURNS)
    tag: str = Field("", max_length=1_000)
    evaluation_dimension_list_name: str = Field("sotopia", max_length=200)
    attempts: int = Field(2, ge=1, le=5, description="runs of an episode that fails, "
                                                     "each a new episode")
    seed: int = Field(0, ge=0, le=2**31)

    @field_validator("agent_pairs")
    @classmethod
    def _pairs_of_two(cls, pairs: list[list[str]]) -> list[list[str]]:
        if any(len(p) != 2 for p in pairs):
            raise ValueError("each agent pair names two agents")
        return pairs


class BatchRequest(BaseModel):
    """POST /v1/batches: a new batch (with ``spec``), or more of an existing one (without)."""

    model_config = ConfigDict(extra="forbid")

    batch_id: str | None = Field(None, min_length=1, max_length=200,
                                 pattern=r"^[A-Za-z0-9_.:-]+$")
    spec: BatchSpec | None = None
    concurrency: int | None = Field(None, ge=1, le=5_000,
                                    description="episodes at once; default: the batch's last "
                                                "run's, else 100")


class BatchProgress(BaseModel):
    batch_id: str
    status: Literal["new", "running", "finished", "cut", "stopped"]
    total: int
    done: int = Field(description="episodes completed and scored")
    failed: int = Field(description="episodes that ended without scores, after every attempt")
    resumed: int = Field(description="episodes resumed from their last turn after a cut")
    runs: int
    cuts: int


class EpisodeFork(BaseModel):
    """POST /v1/episodes/{id}/fork (ours): a new episode from this one's log up to
    ``version``, with another model for one agent if given, carried on from there."""

    version: int = Field(ge=1, le=100_000, description="the source's version to fork at (the "
                                                       "console's slider)")
    agent: Literal[1, 2] = Field(2, description="the agent whose model changes")
    model: str | None = Field(None, min_length=1, max_length=200,
                              description="its model from then on (unset: it keeps its own)")


class Forked(BaseModel):
    kind: str
    id: str = Field(description="the new entity's id")
    forked_from: str = Field(description="the source's id")
    version: int = Field(description="the source's version it was forked at")



class BatchFork(BaseModel):
    """POST /v1/batches/{id}/fork (ours): a batch of forks of every completed episode of this
    one, after its ``turn``-th turn, with ``model`` for ``agent``: paired comparisons."""

    model_config = ConfigDict(extra="forbid")

    turn: int = Field(ge=0, le=1_000, description="turns kept from each source episode")
    agent: Literal[1, 2] = Field(2, description="the agent whose model changes")
    model: str = Field(min_length=1, max_length=200, description="its model from then on")
    batch_id: str | None = Field(None, min_length=1, max_length=200,
                                 pattern=r"^[A-Za-z0-9_.:-]+$",
                                 description="the new batch's id (a new one by default)")
    concurrency: int | None = Field(None, ge=1, le=5_000)
