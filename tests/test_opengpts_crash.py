"""A run cut off by killing the whole serving process (driver, Ray, hosts, replica: kill -9 of
every process) mid-stream. After a restart on the same data the thread is consistent: the
question is there, no half answer, next says which step to run again, the log says the run was
interrupted, and continuing with input null finishes it. A Sotopia episode cut at the same
moment goes on by itself after the restart, from its last committed step, and an avatar
session keeps the segment it acknowledged."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import httpx
import psutil
import pytest
import websockets.sync.client as ws

from tests.conftest import OPERATOR, ROOT, free_port, poll, wait_http

pytestmark = pytest.mark.slow
AVATAR_KEY = "crash-avatar-key"


def _avatar_segment(base: str) -> tuple[str, object]:
    """An avatar session whose socket has had a segment acknowledged (its `segment` frame is
    sent once the log holds it), left open."""
    body = {"personaConfig": {"avatarId": "a"}, "environment": {"agoraSettings": {
        "appId": "a", "token": "t", "channel": "c", "uid": "1", "quality": "high",
        "videoEncoding": "H264", "enableStringUids": False}}}
    token = httpx.post(f"{base}/session-token", json=body,
                       headers={"Authorization": f"Bearer {AVATAR_KEY}"}).json()["sessionToken"]
    started = httpx.post(f"{base}/session", json={},
                         headers={"Authorization": f"Bearer {token}"}).json()
    sock = ws.connect(started["websocketAddress"], open_timeout=30)
    sock.send(json.dumps({"command": "init", "sessionId": started["sessionId"]}))
    audio = base64.b64encode(b"\x10\x20" * 16000).decode()  # 1 s at 16 kHz
    sock.send(json.dumps({"command": "voice", "audio": audio, "sample_rate": 16000}))
    sock.send(json.dumps({"command": "voice_end", "event_id": "end"}))
    while json.loads(sock.recv(timeout=30))["command"] != "segment":
        pass
    return started["sessionId"], sock


def _start(data: str, namespace: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "ACTORLOG_DATA_DIR": data, "ACTORLOG_NAMESPACE": namespace,
           "ACTORLOG_PORT": str(port), "PYTHONPATH": ROOT,
           "ACTORLOG_MODELS": json.dumps({"providers": {
               "slow": {"type": "builtin", "delay": 0.1},
               "quick": {"type": "builtin", "delay": 0.02}}, "default": "slow"}),
           "ACTORLOG_SOTOPIA_SWEEP_SECONDS": "1", "AVATAR_API_KEYS": AVATAR_KEY}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen([sys.executable, "embedded.py"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health", tries=900)
    return proc, base


def _kill_tree(proc: subprocess.Popen) -> None:
    parent = psutil.Process(proc.pid)
    victims = [parent, *parent.children(recursive=True)]
    for p in victims:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(victims, timeout=30)
    proc.wait(timeout=30)


def test_killing_the_service_mid_stream_leaves_a_consistent_resumable_thread(tmp_path):
    data, namespace = str(tmp_path / "data"), f"crash-{uuid.uuid4().hex[:8]}"
    proc, base = _start(data, namespace)
    cookies = {"opengpts_user_id": "crash"}
    try:
        aid = httpx.post(f"{base}/assistants", cookies=cookies, json={
            "name": "c", "config": {"configurable": {"type": "chatbot"}}}).json()["assistant_id"]
        tid = httpx.post(f"{base}/threads", cookies=cookies,
                         json={"name": "t", "assistant_id": aid}).json()["thread_id"]
        scenario, agents = httpx.get(f"{base}/scenarios").json()[0]["pk"], [
            a["pk"] for a in httpx.get(f"{base}/agents").json()[:2]]
        episode_id = httpx.post(f"{base}/simulate", json={
            "env_id": scenario, "agent_ids": agents, "models": ["quick"] * 3,
            "max_turns": 12, "tag": "crash"}).text
        tokens: list[str] = []
        ended = threading.Event()

        def listen() -> None:
            try:
                with httpx.stream("POST", f"{base}/runs/stream", cookies=cookies, timeout=60,
                                  json={"thread_id": tid, "input": [
                                      {"content": "tell me about boats", "type": "human",
                                       "id": "q1"}]}) as r:
                    for line in r.iter_lines():
                        if line.startswith("data: ["):
                            tokens.append(line)
            except httpx.HTTPError:
                pass
            ended.set()

        # a chat message that runs for tens of seconds (the slow model), cut by the kill
        chat_id = f"cut-{uuid.uuid4().hex[:6]}"
        chat = ws.connect(f"{base.replace('http://', 'ws://')}/chat/{chat_id}", open_timeout=30)
        chat.send(json.dumps({"type": "client", "message_id": "c1",
                              "message": "please repeat " + " ".join(["w"] * 400)}))
        threading.Thread(target=listen, daemon=True).start()
        deadline = time.time() + 60
        while len(tokens) < 4 and time.time() < deadline:
            time.sleep(0.05)
        assert len(tokens) >= 4, "the run never streamed"
        episode_events = f"{base}/v1/actors/sotopia_episode/{episode_id}/events"
        poll(lambda: [e["type"] for e in httpx.get(episode_events,
                                                   headers=OPERATOR).json()["events"]],
             lambda types: "turn" in types, 30)
        session_id, sock = _avatar_segment(base)
        chat_events = f"{base}/v1/actors/chat/{chat_id}/events"
        assert "user_message" in poll(  # stored, and running for tens of seconds yet
            lambda: [e["type"] for e in httpx.get(chat_events, headers=OPERATOR).json().get(
                "events", [])], lambda types: "user_message" in types, 30)
        _kill_tree(proc)
        chat.close()
        assert ended.wait(30)  # the client sees the connection end, not a hang
        sock.close()
        partial = json.loads(tokens[-1][6:])[0]["content"]
        assert partial and not partial.endswith("answers.")
    finally:
        if proc.poll() is None:
            _kill_tree(proc)

    proc, base = _start(data, namespace)
    try:
        # the chat message the kill cut shows as ended in its history, though nobody has
        # used the chat since: the recovery ran when the service started
        rows = poll(lambda: httpx.get(f"{base}/history/{chat_id}").json(),
                    lambda r: r[-1]["step_type"] == "message_interrupted", 60)
        assert rows[0]["role"] == "user" and rows[-1]["role"] == "agent"
        assert rows[-1]["step_type"] == "message_interrupted", rows
        assert "stopped before it finished" in rows[-1]["content"]
        state = httpx.get(f"{base}/threads/{tid}/state", cookies=cookies).json()
        assert state["values"] == [{"content": "tell me about boats", "additional_kwargs": {},
                                    "response_metadata": {}, "type": "human", "name": None,
                                    "id": "q1", "example": False}]
        assert state["next"] == ["chatbot"]  # the step to run again
        events = httpx.get(f"{base}/v1/actors/thread/{tid}/events",
                           headers=OPERATOR).json()["events"]
        assert [e["type"] for e in events] == [
            "created", "run_started", "messages_written", "run_interrupted"]
        assert "stopped before it finished" in events[-1]["data"]["reason"]
        with httpx.stream("POST", f"{base}/runs/stream", cookies=cookies, timeout=120,
                          json={"thread_id": tid, "input": None}) as r:
            datas = [json.loads(line[6:]) for line in r.iter_lines()
                     if line.startswith("data: [")]
        assert datas[0][0]["id"] == "q1"
        state = httpx.get(f"{base}/threads/{tid}/state", cookies=cookies).json()
        assert state["next"] == [] and state["values"][1]["content"].endswith("answers.")
        assert [h["next"] for h in httpx.get(f"{base}/threads/{tid}/history",
                                             cookies=cookies).json()][:2] == [[], ["chatbot"]]
        # the avatar session: its acknowledged segment is there, its dead socket closed as
        # lost when the session was activated again
        shown = httpx.get(f"{base}/session/{session_id}",
                          headers={"Authorization": f"Bearer {AVATAR_KEY}"}).json()
        assert shown["status"] == "started" and shown["connections"] == 0
        assert [(s["status"], s["frames"]) for s in shown["segments"]] == [("ended", 30)]
        assert os.path.exists(os.path.join(data, "avatar_audio", shown["segments"][0]["audio"]))
        # the episode resumed without anyone asking (the family's startup sweep)
        assert poll(lambda: httpx.get(f"{base}/simulation_status/{episode_id}").json(),
                    lambda s: s != "Started", 120) == "Completed"
        types = [e["type"] for e in httpx.get(
            f"{base}/v1/actors/sotopia_episode/{episode_id}/events",
            headers=OPERATOR).json()["events"]]
        assert types.index("cut") < types.index("resumed") < types.index("evaluated")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
