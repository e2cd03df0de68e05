"""Agent chat (issue 11): N concurrent chats over WebSocket against the real service
(python embedded.py, SQLite, the built-in model), M messages each ("get all contacts", a sum,
a greeting...): steps/s, p50/p99 from sending a message to its first agent_step and to its
message_end, and the service's memory (PSS of every process) before and after.

Baseline, measured in the same run: the original's serving model, one process running the
same smolagents agent synchronously in its event loop (one message at a time for all chats),
writing what the original writes per step (a SQLite row, its agent's memory pickled).
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
from typing import Any

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


def _original_seconds_per_message(samples: int, models: dict | None = None
                                  ) -> tuple[float, float]:
    """The same agent and model, run synchronously one message after another in this
    process, as the original's server runs them in its event loop, with what it does per
    message besides (server_websocket.py, agent_manager.py, history.py at its HEAD): one
    agent per chat kept in memory (run with reset=False), the user's message and every step
    written to SQLite (a connection and a commit per row), and the agent's memory pickled to
    a file after every step. Its WebSocket sends are left out (the baseline is, if anything,
    faster than the original). Returns seconds per message and steps per message."""
    import pickle
    import sqlite3

    from actors.agent.model import agent_for
    from actors.agent.tools import load_tools
    from llm.router import ModelRouter

    home = scratch_dir()
    db = os.path.join(home, "chat_history.db")
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS chat_history (id INTEGER PRIMARY KEY "
                     "AUTOINCREMENT, chat_id TEXT NOT NULL, role TEXT NOT NULL, content TEXT "
                     "NOT NULL, message_id TEXT NOT NULL, step_type TEXT DEFAULT NULL, "
                     "timestamp DATETIME DEFAULT CURRENT_TIMESTAMP)")

    def save_message(chat: str, role: str, content: str, step_type: str) -> None:
        with sqlite3.connect(db) as conn:
            conn.execute("INSERT INTO chat_history (chat_id, role, content, message_id, "
                         "step_type) VALUES (?, ?, ?, ?, ?)", (chat, role, content, "m", step_type))
            conn.commit()

    async def main() -> tuple[float, float]:
        router, loop = ModelRouter(models), asyncio.get_running_loop()
        agents: dict[str, Any] = {}

        def work() -> tuple[float, float]:
            t0, steps = time.perf_counter(), 0
            for i in range(samples):
                chat = f"chat-{i % 5}"
                agent = agents.get(chat) or agents.setdefault(
                    chat, agent_for(router, load_tools(), None, loop))
                save_message(chat, "client", MESSAGES[i % 5], "user_message")
                for step in agent.run(MESSAGES[i % 5], stream=True, reset=False):
                    steps += 1
                    with open(os.path.join(home, f"{chat}.pkl"), "wb") as f:
                        pickle.dump(agent.memory, f)
                    content = getattr(step, "observations", None) or getattr(
                        step, "final_answer", None) or getattr(step, "plan", None)
                    if content:
                        save_message(chat, "agent_step", str(content), type(step).__name__)
                save_message(chat, "message_end", "", "FinalAnswerStep")
            return (time.perf_counter() - t0) / samples, steps / samples

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
    per_message, steps_per_message = _original_seconds_per_message(samples, models)
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
    original_steps = steps_per_message / per_message
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
