"""The real Sotopia library, run its CLI's way, for bench/sotopia_bench.py to compare against.

Runs inside a venv of its own that holds Sotopia from the package registry (made by
``venv()`` below, never a dependency of this project). Episodes are built as its
``sotopia benchmark`` command builds them (ParallelSotopiaEnv, round-robin, the rule-based
terminator at 20 turns, the LLM evaluator over SotopiaDimensions, two LLMAgents) and run by
its own ``run_async_benchmark_in_batch`` (one asyncio process, batches of 10, every episode
saved to its local JSON storage). The model is mocked the way Sotopia's own test suite mocks
it: ``litellm.acompletion`` (and the name its generate module imported) replaced by a
coroutine answering a litellm ModelResponse, so Sotopia's parsers read every answer, and
nothing is sent anywhere. Answers parse: an action is speak or, with
probability 1/turns, leave (so episodes run about as many turns as ours); an evaluation
scores every SotopiaDimensions dimension for the keys the prompt names.

    python bench/sotopia_real.py PROFILES.json N TURNS quiet|logged

prints one JSON line: episodes, turns, seconds, cpu_seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

#: the release compared against; pinned so that figures of two runs compare
VERSION = "0.1.5"
BATCH = 10


def venv(root: str) -> str:
    """The interpreter of a venv under ``root`` holding Sotopia VERSION (made once)."""
    path = os.path.join(root, f"sotopia-{VERSION}")
    python = os.path.join(path, "bin", "python")
    stamp = os.path.join(path, ".ready")
    if not os.path.exists(stamp):
        subprocess.run([sys.executable, "-m", "venv", path], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", f"sotopia=={VERSION}"],
                       check=True)
        open(stamp, "w").close()
    return python


def _answers(turns: float):  # type: ignore[no-untyped-def]
    import random
    import re

    rng = random.Random(7)

    def text(prompt: str) -> str:
        if "'evaluations' field" in prompt:
            keys = re.findall(r'"(agent_\d+)"', prompt.split("use exactly these keys:")[1]
                              .split("\n")[0]) or ["agent_1", "agent_2"]
            dims = {"believability": 7, "relationship": 1, "knowledge": 4, "secret": 0,
                    "social_rules": 0, "financial_and_material_benefits": 1, "goal": 6}
            return json.dumps({"evaluations": {
                k: {d: [f"{d} judged from the exchange", rng.randint(0, v) if v > 0 else v]
                    for d, v in dims.items()} for k in keys}})
        if rng.random() < 1.0 / turns:
            return json.dumps({"action_type": "leave", "argument": ""})
        return json.dumps({"action_type": "speak",
                           "argument": f"A fair point; here is what I think ({rng.random():.4f})."})

    return text


def main(profiles_path: str, n: int, turns: float, mode: str) -> None:
    import importlib
    import logging

    import litellm

    import sotopia.generation_utils.generate as generate
    from sotopia.agents import LLMAgent
    from sotopia.database import AgentProfile, EnvironmentProfile, EpisodeLog
    from sotopia.database.evaluation_dimensions import SotopiaDimensions
    from sotopia.envs import ParallelSotopiaEnv
    from sotopia.envs.evaluators import (EpisodeLLMEvaluator, EvaluationForAgents,
                                         RuleBasedTerminatedEvaluator)

    cli = importlib.import_module("sotopia.cli.benchmark.benchmark")
    if mode == "logged":  # what `sotopia benchmark` sets up: a DEBUG file, rich on the console
        cli._set_up_logs(log_file=os.path.join(os.environ["HOME"], "logs", "bench.log"),
                         print_logs=True)
    else:
        logging.disable(logging.CRITICAL)
    answer = _answers(turns)

    async def acompletion(*args, **kwargs):  # type: ignore[no-untyped-def]
        content = answer(kwargs["messages"][-1]["content"])
        return litellm.ModelResponse(choices=[litellm.Choices(
            message=litellm.Message(content=content, role="assistant"), finish_reason="stop")])

    litellm.acompletion = generate.acompletion = acompletion
    with open(profiles_path, encoding="utf-8") as f:
        profiles = json.load(f)
    agents = {a["pk"]: AgentProfile(**{k: v for k, v in a.items()
                                       if k in AgentProfile.model_fields})
              for a in profiles["agents"]}
    scenarios = {s["pk"]: EnvironmentProfile(**{k: v for k, v in s.items()
                                                if k in EnvironmentProfile.model_fields})
                 for s in profiles["scenarios"]}
    for record in (*agents.values(), *scenarios.values()):
        record.save()
    model = "gpt-4o-mini"
    combos = []
    for env_id, agent_ids in profiles["grid"][:n]:
        env = ParallelSotopiaEnv(
            env_profile=scenarios[env_id], action_order="round-robin",
            evaluators=[RuleBasedTerminatedEvaluator(max_turn_number=20, max_stale_turn=2)],
            terminal_evaluators=[EpisodeLLMEvaluator(model,
                                                     EvaluationForAgents[SotopiaDimensions])])
        combos.append((env, [LLMAgent(agent_profile=agents[a], model_name=model)
                             for a in agent_ids]))
    # Counted as episodes are saved: 0.1.5's benchmark loop then deletes every episode whose
    # first reward is a float, and its ParallelSotopiaEnv always reports 0 (a float), so none
    # would be left to count afterwards. The deleting is part of the timed run, as in its CLI.
    seen = {"episodes": 0, "turns": 0}
    save = EpisodeLog.save

    def counted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen["episodes"] += 1
        seen["turns"] += sum(1 for turn in self.messages for sender, _, text in turn
                             if sender != "Environment" and "did nothing" not in text)
        saved = save(self, *args, **kwargs)
        print("saved", flush=True)  # what a kill can count: the episodes written so far
        return saved

    EpisodeLog.save = counted
    tag = f"bench-{os.getpid()}"
    print("ready", flush=True)  # imports and set-up done: the timed run starts
    t0, c0 = time.perf_counter(), time.process_time()
    cli.run_async_benchmark_in_batch(env_agent_combo_list=combos, batch_size=BATCH, tag=tag,
                                     push_to_db=True)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({**seen, "seconds": seconds, "cpu_seconds": cpu}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
