"""Agent chat (issue 11): N concurrent chats over WebSocket against the real service
(python embedded.py, SQLite, the built-in model), M messages each ("get all contacts", a sum,
a greeting...): steps/s, p50/p99 from sending a message to its first agent_step and to its
message_end, and the service's memory (PSS of every process) before and after.

Baseline, measured in the same run: the original's serving model, one process running the
same smolagents agent synchronously in its event loop (one message at a time for all chats).
Its time per message t bounds how many chats it holds with p99 to first step under 1 s: with
n chats each waiting behind the others, the last waits ~n*t, so about 1/t chats.

Twice: with the built-in model answering at once (CPU-bound: what the runtime itself costs
per step), and with it answering at 10 ms a token, as a model server would (latency-bound:
what concurrency buys).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

from bench.common import percentiles, report, scratch_dir
from bench.serve_bench import ROOT, _stop, _wait
from bench.service_bench import _pss_mb, _tree

MESSAGES = ["get all contacts", "what is (2+3)*4?", "hello, my name is Kim",
            "what is my name?", "thanks, bye"]


async def _chat(base: str, n: int, messages: int, first: list[float], end: list[float],
                counts: list[int]) -> None:
    import websockets

    async with websockets.connect(f"{base.replace('http', 'ws')}/chat/bench-{n}",
                                  max_size=2**22, open_timeout=120) as sock:
        for i in range(messages):
            mid = f"m{i}"
            t0 = time.perf_counter()
            await sock.send(json.dumps({"type": "client", "message": MESSAGES[i % 5],
                                        "message_id": mid}))
            got_first = False
            while True:
                frame = json.loads(await sock.recv())
                if frame["type"] == "agent_step":
                    counts[0] += 1
                    if not got_first:
                        first.append((time.perf_counter() - t0) * 1000)
                        got_first = True
                elif frame["type"] == "agent_error":
                    raise RuntimeError(frame)
                elif frame["type"] == "message_end" and frame["message_id"] == mid:
                    end.append((time.perf_counter() - t0) * 1000)
                    break


def _original_seconds_per_message(samples: int, models: dict | None = None) -> float:
    """The same agent and model, run synchronously one message after another in this
    process, as the original's server does in its event loop."""
    from actors.agent.model import agent_for
    from actors.agent.tools import load_tools
    from llm.router import ModelRouter

    async def main() -> float:
        router, loop = ModelRouter(models), asyncio.get_running_loop()

        def work() -> float:
            t0 = time.perf_counter()
            for i in range(samples):
                agent = agent_for(router, load_tools(), None, loop)
                for _ in agent.run(MESSAGES[i % 5], stream=True, reset=False):
                    pass
            return (time.perf_counter() - t0) / samples

        return await asyncio.to_thread(work)

    return asyncio.run(main())


LATENCY = {"providers": {"slow": {"type": "builtin", "delay": 0.01}}, "default": "slow"}


def run(quick: bool = False) -> None:
    _measure("built-in model, no latency", None, *((20, 2) if quick else (200, 5)),
             10 if quick else 50)
    if not quick:
        _measure("model at 10 ms/token", LATENCY, 200, 2, 5)


def _measure(label: str, models: dict | None, chats: int, messages: int, samples: int
             ) -> None:
    per_message = _original_seconds_per_message(samples, models)
    port = 19710
    proc = subprocess.Popen([sys.executable, "embedded.py"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "ACTORLOG_DATA_DIR": scratch_dir(),
                                 "ACTORLOG_PORT": str(port),
                                 "ACTORLOG_MODELS": json.dumps(models) if models else "",
                                 "ACTORLOG_NAMESPACE": f"bench-chat-{port}"})
    base = f"http://127.0.0.1:{port}"
    first: list[float] = []
    end: list[float] = []
    counts = [0]
    try:
        _wait(base + "/health", proc, timeout=180)
        time.sleep(3)
        before, processes = _pss_mb(_tree(proc.pid))

        async def load() -> float:
            await _chat(base, -1, 1, [], [], [0])  # warm-up
            t0 = time.perf_counter()
            await asyncio.gather(*(_chat(base, n, messages, first, end, counts)
                                   for n in range(chats)))
            return time.perf_counter() - t0

        elapsed = asyncio.run(load())
        after, _ = _pss_mb(_tree(proc.pid))
    finally:
        _stop(proc)
    f50, f99 = percentiles(first)
    e50, e99 = percentiles(end)
    original_steps = 4 / per_message  # a message is four steps here (plan, two actions, final)
    print(f"# agent chat, {label}", flush=True)
    report(f"agent chat: {chats} chats x {messages} msgs, steps/s", counts[0] / elapsed,
           "steps/s", original_steps, "one blocking process")
    report("  message -> first agent_step p50", f50, "ms")
    report("  message -> first agent_step p99", f99, "ms", per_message * 1000 * chats,
           f"one blocking process, {chats} chats waiting")
    report("  message -> message_end p50", e50, "ms")
    report("  message -> message_end p99", e99, "ms")
    report("  chats held with p99 first step < 1 s, one blocking process", 1 / per_message,
           "chats")
    report(f"  PSS before ({processes} processes)", before, "MB")
    report(f"  PSS after {chats} chats", after, "MB", before, "before")
