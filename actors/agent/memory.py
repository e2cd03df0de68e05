"""smolagents steps as event data, and back: a chat's memory is its log.

Each step the agent yields is stored as plain JSON (what its step type needs to be replayed to
the model, and the text a client is shown); before a message runs, the agent's memory is
rebuilt from those records. Nothing is pickled, so memory survives restarts, host moves and
smolagents upgrades that keep these fields.
"""

from __future__ import annotations

import json
import time
from typing import Any

__all__ = ["STEP_TYPES", "record_of", "shown", "steps_from"]

STEP_TYPES = ("PlanningStep", "ActionStep", "FinalAnswerStep")

# smolagents is imported where a step is converted, not here: it takes a second to import,
# and readers of chats (history, frames) never need it.


def _plain(value: Any) -> Any:
    """JSON-able data from what an agent produced (smolagents' own conversion)."""
    from smolagents.utils import make_json_serializable

    return make_json_serializable(value)


def shown(value: Any) -> str:
    """A step's content as the document's ``message``: always a string (JSON text for
    structured values)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _timing(step: Any) -> dict[str, float | None]:
    timing = getattr(step, "timing", None)
    return {"start": getattr(timing, "start_time", None) or time.time(),
            "end": getattr(timing, "end_time", None)}


def record_of(step: Any) -> dict[str, Any] | None:
    """The event data of a step the agent yielded; None for what is not a step of the
    document (tool-call notices, stream deltas)."""
    from smolagents.memory import ActionStep, FinalAnswerStep, PlanningStep

    if isinstance(step, PlanningStep):
        return {"step_type": "PlanningStep", "message": step.plan, "plan": step.plan,
                **_timing(step)}
    if isinstance(step, ActionStep):
        error = str(step.error) if step.error is not None else None
        observations = step.observations
        message = observations if observations is not None else (
            f"Error: {error}" if error else "")
        return {"step_type": "ActionStep", "message": message,
                "step_number": step.step_number,
                "model_output": step.model_output if isinstance(step.model_output, str)
                else None,
                "tool_calls": [{"id": c.id, "name": c.name, "arguments": _plain(c.arguments)}
                               for c in step.tool_calls or []],
                "observations": observations, "error": error,
                "is_final_answer": bool(step.is_final_answer), **_timing(step)}
    if isinstance(step, FinalAnswerStep):
        output = _plain(step.output)
        return {"step_type": "FinalAnswerStep", "message": shown(output), "output": output}
    return None


def steps_from(records: list[dict[str, Any]]) -> list[Any]:
    """The agent's memory steps from a chat's records, in order: ``{"task": ...}`` for each
    user message, then its steps. Final answers are not memory steps (as in smolagents)."""
    from smolagents.memory import ActionStep, MemoryStep, PlanningStep, TaskStep, ToolCall
    from smolagents.models import ChatMessage, MessageRole
    from smolagents.monitoring import AgentLogger, LogLevel, Timing
    from smolagents.utils import AgentError

    quiet = AgentLogger(level=LogLevel.OFF)
    steps: list[MemoryStep] = []
    for r in records:
        kind = r.get("step_type")
        if "task" in r:
            steps.append(TaskStep(task=r["task"]))
        elif kind == "PlanningStep":
            steps.append(PlanningStep(
                model_input_messages=[],
                model_output_message=ChatMessage(role=MessageRole.ASSISTANT, content=r["plan"]),
                plan=r["plan"], timing=Timing(r["start"], r.get("end"))))
        elif kind == "ActionStep":
            steps.append(ActionStep(
                step_number=r["step_number"], timing=Timing(r["start"], r.get("end")),
                tool_calls=[ToolCall(c["name"], c["arguments"], c["id"])
                            for c in r["tool_calls"]] or None,
                error=AgentError(r["error"], quiet) if r.get("error") else None,
                model_output=r.get("model_output"), observations=r.get("observations"),
                is_final_answer=r.get("is_final_answer", False)))
    return steps
