"""The agent chat family (issue 11) over real HTTP and WebSocket on loopback, on real hosts:
the document's example flow as written, history, memory across messages, two clients on one
chat, stop, hang-up, the stateless run, and malformed frames."""

from __future__ import annotations

import json
import re
import time
import uuid

import httpx
import pytest
import websockets.sync.client as ws

from actors.agent.tools import DEMO_CONTACTS
from tests.conftest import kill_hosts, poll, standin_provider, start_inprocess_server


@pytest.fixture(scope="module")
def server(ray_session, tmp_path_factory, standin):
    models = {"providers": {"slow": {"type": "builtin", "delay": 0.02},
                            "oa": standin_provider(standin)},
              "aliases": {"slow-agent": "slow", "oa-agent": "oa"}}
    url, _, client = start_inprocess_server(
        ray_session, str(tmp_path_factory.mktemp("chat")), models=json.dumps(models))
    yield url, client
    kill_hosts(client)


def _socket(base: str, chat_id: str):
    return ws.connect(base.replace("http://", "ws://") + f"/chat/{chat_id}", open_timeout=10)


def _until_end(sock, message_id: str, timeout: float = 60) -> list[dict]:
    frames = []
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(sock.recv(timeout=max(0.1, deadline - time.monotonic())))
        frames.append(frame)
        if frame.get("type") == "message_end" and frame.get("message_id") == message_id:
            return frames


def _contacts(base: str, chat_id: str, message_id: str) -> tuple[list[dict], list[dict]]:
    """The document's example message on a fresh socket: (every frame, the agent_steps),
    the steps checked to be plan, the tool's action, the final answer's, the final answer."""
    with _socket(base, chat_id) as sock:
        sock.send(json.dumps({"type": "client", "message": "get all contacts",
                              "message_id": message_id}))
        frames = _until_end(sock, message_id)
    steps = [f for f in frames if f["type"] == "agent_step"]
    assert [f["step_type"] for f in steps] == ["PlanningStep", "ActionStep", "ActionStep",
                                               "FinalAnswerStep"]
    assert json.loads(steps[1]["message"]) == DEMO_CONTACTS  # the tool's observation
    assert json.loads(steps[-1]["message"]) == DEMO_CONTACTS  # the final answer lists them
    return frames, steps


def test_the_documents_example_flow_as_written(server):
    base, _ = server
    chat_id = f"chat_{uuid.uuid4().hex[:8]}"
    frames, steps = _contacts(base, chat_id, "abc123")
    assert all(f["message_id"] == "abc123" and f["chat_id"] == chat_id
               and isinstance(f["message"], str) for f in steps)
    assert set(steps[0]) == {"type", "step_type", "message", "message_id", "chat_id"}
    assert frames[-1] == {"type": "message_end", "message_id": "abc123", "chat_id": chat_id}
    history = httpx.get(f"{base}/history/{chat_id}").json()
    assert history[0] == {"role": "user", "content": "get all contacts", "step_type": None,
                          "timestamp": history[0]["timestamp"]}
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", history[0]["timestamp"])
    assert [r["step_type"] for r in history[1:]] == [f["step_type"] for f in steps]
    assert all(r["role"] == "agent" for r in history[1:])
    assert httpx.get(f"{base}/history/never-used").json() == []


def test_memory_across_messages_and_two_clients_on_one_chat(server):
    base, _ = server
    chat_id = f"mem-{uuid.uuid4().hex[:8]}"
    with _socket(base, chat_id) as one, _socket(base, chat_id) as two:
        one.send(json.dumps({"type": "client", "message": "hello, my name is Bob",
                             "message_id": "m1"}))
        # rapid messages run in the order sent; a frame without "type" is a client message
        one.send(json.dumps({"message": "what is my name?", "message_id": "m2"}))
        mine = _until_end(one, "m2")
        theirs = _until_end(two, "m2")
    assert [f for f in mine if f["type"] != "chat_history"] == theirs
    ends = [f["message_id"] for f in mine if f["type"] == "message_end"]
    assert ends == ["m1", "m2"]
    finals = [f["message"] for f in mine if f.get("step_type") == "FinalAnswerStep"]
    assert finals[-1] == "Your name is Bob."


def test_malformed_frames_get_agent_errors_and_the_socket_stays_open(server):
    base, _ = server
    chat_id = f"bad-{uuid.uuid4().hex[:8]}"
    with _socket(base, chat_id) as sock:
        def answer(frame) -> dict:
            sock.send(frame)
            return json.loads(sock.recv(timeout=10))

        assert answer("{nope")["type"] == "agent_error"
        assert answer(b'{"type": "client"}')["type"] == "agent_error"  # a binary frame
        assert answer(json.dumps([1, 2]))["type"] == "agent_error"
        assert answer(json.dumps({"type": "dance"}))["type"] == "agent_error"
        missing = answer(json.dumps({"type": "client", "message_id": "x1"}))
        assert missing["type"] == "agent_error" and missing["message_id"] == "x1"
        assert json.loads(sock.recv(timeout=10)) == {"type": "message_end",
                                                     "message_id": "x1", "chat_id": chat_id}
        assert answer(json.dumps({"type": "client", "message": "x" * 2_000_000,
                                  "message_id": "big"}))["type"] == "agent_error"
        history = answer(json.dumps({"type": "get_history"}))
        assert history == {"type": "chat_history", "chat_id": chat_id, "history": []}
        sock.send(json.dumps({"type": "client", "message": "hi", "message_id": "ok"}))
        assert _until_end(sock, "ok")[-1]["type"] == "message_end"  # still open and working
    with pytest.raises(Exception):  # a control character: no valid request, or refused
        with _socket(base, "a\x01b"):
            pass
    with pytest.raises(ws.InvalidStatus):  # refused at the handshake
        with _socket(base, "a/b"):
            pass
    with pytest.raises(ws.InvalidStatus):
        with ws.connect(base.replace("http://", "ws://") + "/chats/x", open_timeout=10):
            pass


def test_stop_mid_run_and_a_hang_up_that_leaves_the_run_going(server, monkeypatch):
    base, client = server
    monkeypatch.setenv("ACTORLOG_AGENT_MODEL", "slow-agent")
    chat_id = f"stop-{uuid.uuid4().hex[:8]}"
    with _socket(base, chat_id) as sock:
        sock.send(json.dumps({"type": "client", "message_id": "s1",
                              "message": "please repeat " + " ".join(["w"] * 60)}))
        first = json.loads(sock.recv(timeout=30))
        assert first["type"] == "agent_step"
        sock.send(json.dumps({"type": "stop", "message_id": "s1"}))
        frames = _until_end(sock, "s1")
    assert frames[-2]["type"] == "agent_error" and frames[-2]["error"] == "cancelled"
    types = [e.type for e in client.ref("chat", chat_id).events()]
    assert types[-1] == "message_stopped"
    # a hang-up mid-run: the message goes on, its steps land in the history
    with _socket(base, chat_id) as sock:
        sock.send(json.dumps({"type": "client", "message": "get all contacts",
                              "message_id": "h1"}))
        assert json.loads(sock.recv(timeout=30))["type"] == "agent_step"
    events = poll(lambda: [e.type for e in client.ref("chat", chat_id).events()],
                  lambda t: t[-1] == "message_ended", 120)
    assert events[-1] == "message_ended"
    rows = httpx.get(f"{base}/history/{chat_id}").json()
    assert rows[-1]["step_type"] == "FinalAnswerStep"


def test_the_stateless_run_leaves_no_trace(server):
    base, client = server
    chat_id = f"stateless-{uuid.uuid4().hex[:8]}"
    r = httpx.post(f"{base}/agent/run", json={"chat_id": chat_id, "task": "get all contacts"},
                   timeout=60)
    assert r.status_code == 200
    steps = r.json()
    assert [s["step_type"] for s in steps][-1] == "FinalAnswerStep"
    assert json.loads(steps[-1]["content"]) == DEMO_CONTACTS
    assert httpx.get(f"{base}/history/{chat_id}").json() == []
    assert client.ref("chat", chat_id).events() == []
    assert httpx.post(f"{base}/agent/run", json={"chat_id": chat_id}).status_code == 422


def test_the_openai_compatible_path_with_streamed_tool_call_deltas(server, standin,
                                                                   monkeypatch):
    base, _ = server
    monkeypatch.setenv("ACTORLOG_AGENT_MODEL", "oa-agent")
    chat_id = f"oa-{uuid.uuid4().hex[:8]}"
    before = len(standin.requests)
    _contacts(base, chat_id, "o1")
    sent = standin.requests[before:]
    assert sent and all(r["model"] == "gpt-standin" and r["stream"] for r in sent)
    assert any("final_answer" in [t["function"]["name"] for t in r.get("tools") or []]
               for r in sent)


def test_memory_survives_a_host_killed_with_sigkill(server):
    import os
    import signal

    base, client = server
    chat_id = f"restart-{uuid.uuid4().hex[:8]}"
    with _socket(base, chat_id) as sock:
        sock.send(json.dumps({"type": "client", "message": "hi, my name is Ann",
                              "message_id": "r1"}))
        _until_end(sock, "r1")
    before = {s["index"]: s["pid"] for s in client.stats()}
    for pid in before.values():
        os.kill(pid, signal.SIGKILL)
    poll(lambda: {s["index"]: s["pid"] for s in client.stats()},
         lambda now: set(now) == set(before) and not set(now.values()) & set(before.values()),
         60)
    with _socket(base, chat_id) as sock:
        sock.send(json.dumps({"type": "client", "message": "what is my name?",
                              "message_id": "r2"}))
        frames = _until_end(sock, "r2")
    assert [f["message"] for f in frames if f.get("step_type") == "FinalAnswerStep"] == [
        "Your name is Ann."]


def test_a_resent_message_is_stored_and_run_once_and_gets_the_first_outcome(server):
    """The same frame sent twice on one socket, and resent on a new socket after the first
    dropped between storing and the first frame: one user_message, one run; the resend on a
    new socket gets the first message's frames again, and its end. The same id with another
    message is a new message (clients copy the seed's "abc123")."""
    base, client = server
    chat_id = f"resend-{uuid.uuid4().hex[:8]}"
    frame = json.dumps({"type": "client", "message": "get all contacts",
                        "message_id": "abc123"})
    with _socket(base, chat_id) as sock:
        sock.send(frame)
        sock.send(frame)
        first = _until_end(sock, "abc123")
        # nothing more of a second run arrives: a get_history answers next
        sock.send(json.dumps({"type": "get_history"}))
        after = json.loads(sock.recv(timeout=30))
    assert after["type"] == "chat_history", after
    events = client.ref("chat", chat_id).events()
    assert [e.type for e in events].count("user_message") == 1
    assert [e.type for e in events].count("message_ended") == 1
    with _socket(base, chat_id) as sock:  # a new socket, as after a dropped one
        sock.send(frame)
        again = _until_end(sock, "abc123")
    assert again == first  # the first's frames again, and its end
    assert [e.type for e in client.ref("chat", chat_id).events()] == [e.type for e in events]
    with _socket(base, chat_id) as sock:
        sock.send(json.dumps({"type": "client", "message": "hi, my name is Bo",
                              "message_id": "abc123"}))
        new = _until_end(sock, "abc123")
    assert [f["step_type"] for f in new if f["type"] == "agent_step"][-1] == "FinalAnswerStep"
    types = [e.type for e in client.ref("chat", chat_id).events()]
    assert types.count("user_message") == 2 and types.count("message_ended") == 2


def test_smolagents_prompts_are_rendered_as_its_own_function_renders_them():
    """actors/agent/model.py compiles each of smolagents' prompt templates once instead of
    on every render: the prompts must come out exactly as a fresh compile renders them, and
    a template that misses a variable fails with smolagents' own message."""
    import asyncio

    import jinja2
    from smolagents import agents

    from actors.agent.model import _prompt_templates, agent_for
    from actors.agent.tools import load_tools
    from llm.router import ModelRouter

    agent = agent_for(ModelRouter(), load_tools(), None, asyncio.new_event_loop())
    template = _prompt_templates()["system_prompt"]
    variables = {"tools": agent.tools, "managed_agents": agent.managed_agents,
                 "custom_instructions": None}
    fresh = jinja2.Template(template, undefined=jinja2.StrictUndefined).render(**variables)
    assert agents.populate_template(template, variables) == fresh == agent.system_prompt
    assert agents.populate_template(template, variables) == fresh  # from the compiled one
    with pytest.raises(Exception, match="Error during jinja template rendering"):
        agents.populate_template("{{ missing }}", {})
