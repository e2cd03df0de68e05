"""The baseline of bench/sotopia_bench.py: a grid of episodes run the way Sotopia runs it
(sotopia/server.py's run_async_server as its benchmark calls it, spec section 7): one asyncio
process, batches of 10 episodes gathered at once, each episode in memory and written (here a
JSON line, there a database save) when it ends. The same built-in model and the same turn
logic as ours (actors/sotopia/social.py), so the comparison is of how episodes are run.

    python -m bench.sotopia_baseline N OUT.jsonl
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from actors.sotopia import builtin_data, social
from llm.port import ModelRequest
from llm.router import ModelRouter

BATCH = 10
NONE = {"action_type": "none", "argument": "", "to": []}


async def episode(router: ModelRouter, scenario: dict[str, Any], agents: list[dict[str, Any]],
                  max_turns: int = 20) -> dict[str, Any]:
    names = [social.name_of(a) for a in agents]
    model = router.model("builtin")
    steps: list[list[dict[str, Any]]] = []
    while not (reasons := social.termination(steps, max_turns)):
        actor = len(steps) % 2
        answer = (await model.complete(ModelRequest(
            social.agent_prompt(scenario, agents, steps, actor),
            json_schema=social.action_schema(names)))).object
        steps.append([answer if i == actor else NONE for i in range(2)])
    dims = builtin_data.SOTOPIA_DIMENSIONS
    judged = (await model.complete(ModelRequest(
        social.evaluation_prompt(scenario, agents, steps, dims),
        json_schema=social.evaluation_schema(dims, 2)))).object
    rewards, reasoning = social.aggregate(judged["evaluations"], dims, names, reasons)
    return {"environment": scenario["pk"], "agents": [a["pk"] for a in agents],
            "messages": social.render_messages(scenario, agents, steps, (rewards, reasoning)),
            "rewards": rewards, "reasoning": reasoning}


def grid(n: int) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The same episodes, in the same order, as the bench's batch (_spec)."""
    out = []
    while len(out) < n:
        for s in builtin_data.SCENARIOS:
            for a in builtin_data.AGENTS:
                for b in builtin_data.AGENTS:
                    if a is not b:
                        out.append((s, [a, b]))
    return out[:n]


async def main(n: int, out: str) -> None:
    router = ModelRouter()
    todo = grid(n)
    with open(out, "w", encoding="utf-8") as f:
        for i in range(0, len(todo), BATCH):
            done = await asyncio.gather(*(episode(router, s, a) for s, a in todo[i:i + BATCH]))
            for result in done:
                f.write(json.dumps(result) + "\n")
            f.flush()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
