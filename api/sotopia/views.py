"""What Sotopia's clients read, built from an episode's state at the edge: the EpisodeLog
(schemas/sotopia.py) and the non-streaming status. The episode kind keeps its own statuses;
these are the document's words for them."""

from __future__ import annotations

from typing import Any, Literal

from actors.sotopia import social
from schemas.sotopia import EpisodeLog

__all__ = ["episode_log", "status_of"]


def episode_log(episode_id: str, state: dict[str, Any]) -> EpisodeLog:
    """The EpisodeLog of this state (Sotopia's field names; rewards 0.0 per agent until
    scored, and when the evaluation failed)."""
    setup = state["setup"]
    agents = setup["agents"]
    finished = state["rewards"] is not None or state["status"] == "evaluation_failed"
    rewards = state["rewards"] if state["rewards"] is not None else [0.0] * len(agents)
    evaluation = (rewards, state["reasoning"]) if finished else None
    return EpisodeLog(
        pk=episode_id, environment=setup["env_id"], agents=setup["agent_ids"],
        tag=setup.get("tag", ""), models=setup["models"],
        agent_classes=["Human" if h else "LLMAgent" for h in setup["humans"]],
        messages=social.render_messages(setup["scenario"], agents, state["steps"], evaluation),
        reasoning=state["reasoning"], rewards=rewards, rewards_prompt="")


def status_of(state: dict[str, Any]) -> Literal["Started", "Completed", "Error"]:
    """Sotopia's NonStreamingSimulationStatus: Started (running, or waiting to resume),
    Completed (scored) or Error (stopped, failed, or its evaluation failed)."""
    if state["status"] == "completed":
        return "Completed"
    if state["status"] in ("evaluation_failed", "stopped", "failed"):
        return "Error"
    return "Started"
