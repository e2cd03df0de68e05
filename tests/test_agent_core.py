"""The agent chat family's agent (issue 11): a real smolagents ToolCallingAgent driven through
the model port's built-in model, its tools, and its memory rebuilt from step records, in this
process."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from smolagents import ToolCallingAgent

from actors.agent.memory import record_of, steps_from
from actors.agent.model import PortAgentModel
from actors.agent.tools import DEMO_CONTACTS, calculate, load_tools, read_contacts
from llm.router import ModelRouter


def _boom(reason: str) -> str:
    """Always fails, for the test of a tool that raises.

    Args:
        reason: why it is called
    """
    raise RuntimeError("the boom tool broke")


async def _run(task: str, records: list[dict[str, Any]], modules: str = ""
               ) -> list[dict[str, Any]]:
    port, loop = ModelRouter().model("builtin"), asyncio.get_running_loop()

    def run() -> list[dict[str, Any]]:
        agent = ToolCallingAgent(tools=load_tools(None, modules),
                                 model=PortAgentModel(port, loop, None), planning_interval=10,
                                 max_steps=6, verbosity_level=-1)
        agent.memory.steps = steps_from(records)
        return [r for r in map(record_of, agent.run(task, stream=True, reset=False)) if r]

    return await asyncio.to_thread(run)


def _remember(records: list[dict[str, Any]], task: str, steps: list[dict[str, Any]]) -> None:
    records.append({"task": task})
    records.extend(s for s in steps if s["step_type"] != "FinalAnswerStep")


async def test_the_documents_example_lists_the_contacts():
    steps = await _run("get all contacts", [])
    assert [s["step_type"] for s in steps] == ["PlanningStep", "ActionStep", "ActionStep",
                                               "FinalAnswerStep"]
    assert all(isinstance(s["message"], str) and s["message"] for s in steps)
    assert json.loads(steps[1]["message"]) == DEMO_CONTACTS  # the tool's observation
    assert json.loads(steps[-1]["message"]) == DEMO_CONTACTS  # the final answer lists them
    assert steps[1]["tool_calls"][0]["name"] == "get_contacts"
    json.dumps(steps)  # every record is plain JSON, ready for the log


async def test_memory_rebuilt_from_records_carries_across_messages():
    records: list[dict[str, Any]] = []
    first = await _run("hello, my name is Bob", records)
    assert "Bob" in first[-1]["message"]
    _remember(records, "hello, my name is Bob", first)
    second = await _run("what is my name?", json.loads(json.dumps(records)))
    assert second[-1]["message"] == "Your name is Bob."
    assert second[0]["message"].startswith("I still need to solve the task")  # an update plan


async def test_calculator_and_a_tool_that_raises():
    steps = await _run("what is (2+3)*4?", [])
    assert steps[-1]["message"] == "20"
    assert calculate("2**10 - 1") == 1023
    with pytest.raises(ValueError):
        calculate("__import__('os')")
    steps = await _run("please boom now", [], modules="tests.test_agent_core:_boom")
    failed = [s for s in steps if s["step_type"] == "ActionStep" and s["error"]]
    assert failed and "the boom tool broke" in failed[0]["message"]
    assert steps[-1]["step_type"] == "FinalAnswerStep"  # the agent went on
    assert "could not do it" in steps[-1]["message"]


def test_contacts_from_the_operators_json_or_csv_file(tmp_path):
    as_json = tmp_path / "c.json"
    as_json.write_text(json.dumps([{"name": "Zed", "email": "z@x"}]))
    as_csv = tmp_path / "c.csv"
    as_csv.write_text("name,email\nYan,y@x\n")
    assert read_contacts(str(as_json)) == [{"name": "Zed", "email": "z@x"}]
    assert read_contacts(str(as_csv)) == [{"name": "Yan", "email": "y@x"}]
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a list"}')
    with pytest.raises(ValueError):
        read_contacts(str(bad))
