"""What an outside check of the service found (issue 9), each as a test that failed before the
fix: acknowledged runs lost on hang-up, values the codec cannot hold, the log API readable by
anyone, retrieval across tenants, 500s, unbounded buffers, history, feedback, continue while a
run is going. Real HTTP and WebSocket over loopback, real Ray hosts, a real SQLite file."""

from __future__ import annotations

import json
import socket
import time
import uuid

import httpx
import pytest

from tests.conftest import (OPERATOR, OPERATOR_TOKEN, kill_hosts, poll,
                            start_inprocess_server)
from tests.opengpts_helpers import User, parse_sse

SLOW = {"type==chatbot/llm_type": "GPT 4 Turbo"}  # the built-in model, 25 ms a word


@pytest.fixture(scope="module")
def server(ray_session, tmp_path_factory):
    models = {"providers": {"slow": {"type": "builtin", "delay": 0.025}},
              "aliases": {"GPT 4 Turbo": "slow"}}
    url, settings, client = start_inprocess_server(
        ray_session, str(tmp_path_factory.mktemp("hard")), models=json.dumps(models))
    yield url, client
    kill_hosts(client)


@pytest.fixture
def base(server):
    return server[0]


@pytest.fixture
def client(server):
    return server[1]


def _user(base: str) -> User:
    return User(base, f"user-{uuid.uuid4().hex[:8]}")


def _types(client, tid: str) -> list[str]:
    return [e.type for e in client.ref("thread", tid).events()]


def _wait_types(client, tid: str, done, timeout: float = 60) -> list[str]:
    return poll(lambda: _types(client, tid), done, timeout)


def _human(text: str) -> dict:
    return {"type": "human", "content": text, "id": f"human-{uuid.uuid4().hex[:8]}"}


# ------------------------------------------------------------------ 1. hang-ups lose nothing


@pytest.mark.parametrize("after", ["headers", "metadata"])
def test_a_stream_client_that_hangs_up_leaves_a_durable_run_that_finishes(base, client, after):
    """on_disconnect "continue": the flaky-network client's choice."""
    me = _user(base)
    aid = me.assistant("chatbot")
    threads = []
    for i in range(12):
        tid = me.thread(aid)
        with me.http.stream("POST", "/runs/stream",
                            json={"thread_id": tid, "input": [_human(f"hello {i}")],
                                  "on_disconnect": "continue"}) as r:
            assert r.status_code == 200
            if after == "metadata":
                lines = r.iter_lines()
                assert next(lines) == "event: metadata"
                run_id = json.loads(next(lines)[6:])["run_id"]
            else:
                run_id = None
        # the client is gone; whatever it was promised is in the log already
        types = _types(client, tid)
        assert types[:3] == ["created", "run_started", "messages_written"], types
        if run_id is not None:
            started = client.ref("thread", tid).events()[1]
            assert started.data["run_id"] == run_id
        threads.append(tid)
    for tid in threads:
        types = _wait_types(client, tid, lambda t: "run_finished" in t)
        assert types[-1] == "run_finished", types
        state = me.get(f"/threads/{tid}/state").json()
        assert [m["type"] for m in state["values"]] == ["human", "ai"]


@pytest.mark.parametrize("body", [{}, {"on_disconnect": "cancel"}])
def test_a_stream_client_that_hangs_up_stops_its_run_and_continue_resumes_it(base, client,
                                                                              body):
    """The OpenGPTs frontend's Cancel closes the stream: the run stops (the default), keeps its
    input and committed steps, and its "Click to continue" (input null) resumes it."""
    me = _user(base)
    tid = me.thread(me.assistant("chatbot", **SLOW))
    question = _human("please repeat " + " ".join(f"w{i}" for i in range(80)))
    with me.http.stream("POST", "/runs/stream",
                        json={"thread_id": tid, "input": [question], **body}) as r:
        lines = r.iter_lines()
        assert next(lines) == "event: metadata"
        run_id = json.loads(next(lines)[6:])["run_id"]
        assert next(lines) == ""
        assert next(lines) == "event: data"  # the answer is streaming
    types = _wait_types(client, tid, lambda t: t[-1] in ("run_cancelled", "run_finished"))
    assert types == ["created", "run_started", "messages_written", "run_cancelled"], types
    cancelled = client.ref("thread", tid).events()[-1]
    assert cancelled.data["run_id"] == run_id and cancelled.data["reason"] == "cancelled"
    state = me.get(f"/threads/{tid}/state").json()
    assert state["values"][0]["content"] == question["content"] and state["next"]
    # the frontend's "Click to continue"
    events = [e for e, _ in parse_sse(
        me.post("/runs/stream", json={"thread_id": tid, "input": None}).content)]
    assert events[-1] == "end" and "error" not in events, events
    types = _types(client, tid)
    assert types[-2:] == ["messages_written", "run_finished"], types
    values = me.get(f"/threads/{tid}/state").json()["values"]
    assert [m["type"] for m in values] == ["human", "ai"]
    assert "w79" in values[-1]["content"]


def test_a_hang_up_after_the_run_ended_stops_nothing_else(base, client):
    """The hang-up's cancel names its run: a later run on the thread is left alone."""
    me = _user(base)
    tid = me.thread(me.assistant("chatbot", **SLOW))
    raw = me.post("/runs/stream", json={"thread_id": tid, "input": [_human("hi")]}).content
    first_run = parse_sse(raw)[0][1]["run_id"]
    ref = client.ref("thread", tid)
    assert me.post("/runs", json={"thread_id": tid, "input": [
        _human("please repeat " + " ".join(f"w{i}" for i in range(60)))]}).status_code == 200
    assert ref.cancel(where={"run_id": first_run})["cancelled"] is False
    types = _wait_types(client, tid, lambda t: t.count("run_finished") == 2, timeout=120)
    assert "run_cancelled" not in types


def test_post_runs_answers_after_the_run_is_in_the_log(base, client):
    me = _user(base)
    tid = me.thread(me.assistant("chatbot"))
    r = me.post("/runs", json={"thread_id": tid, "input": [_human("hi")]})
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert _types(client, tid)[:3] == ["created", "run_started", "messages_written"]
    assert _wait_types(client, tid, lambda t: "run_finished" in t)[-1] == "run_finished"


# ------------------------------------------------------------------ 2. values the codec cannot hold

BAD_BODIES = {
    "int beyond 64 bits": '{"thread_id": "%s", "input": [{"type": "human", "content": "x", '
                          '"additional_kwargs": {"n": 18446744073709551616}}]}',
    "negative int beyond 64 bits": '{"thread_id": "%s", "input": [{"type": "human", '
                                   '"content": "x", "additional_kwargs": '
                                   '{"n": -9223372036854775809}}]}',
    "lone surrogate": '{"thread_id": "%s", "input": [{"type": "human", "content": "\\ud800"}]}',
    "deep nesting": '{"thread_id": "%s", "input": [{"type": "human", "content": "x", '
                    '"additional_kwargs": {"a": ' + "[" * 300 + "]" * 300 + "}}]}",
    "infinity": '{"thread_id": "%s", "input": [{"type": "human", "content": "x", '
                '"additional_kwargs": {"n": 1e400}}]}',
    "NaN": '{"thread_id": "%s", "input": [{"type": "human", "content": "x", '
           '"additional_kwargs": {"n": NaN}}]}',
}


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
@pytest.mark.parametrize("path", ["/runs/stream", "/runs"])
def test_run_input_the_codec_cannot_hold_is_422_before_anything_is_stored(base, client, name,
                                                                          path):
    me = _user(base)
    tid = me.thread(me.assistant("chatbot"))
    before = _types(client, tid)
    r = me.post(path, content=(BAD_BODIES[name] % tid).encode(),
                headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["detail"][0]["type"] == "json_invalid"
    assert _types(client, tid) == before == ["created"]
    state = me.get(f"/threads/{tid}/state").json()
    assert state == {"values": None, "next": []}  # not resumable: nothing was started


BIG = 18446744073709551616


@pytest.mark.parametrize("route", ["post assistant", "put assistant", "post thread",
                                   "put thread", "post state", "post messages"])
def test_every_write_refuses_values_the_codec_cannot_hold_with_422(base, client, route):
    me = _user(base)
    aid = me.assistant("chatbot")
    tid = me.thread(aid)
    bad_config = {"configurable": {"type": "chatbot", "x": BIG}}
    body, method, path = {
        "post assistant": ({"name": "a", "config": bad_config, "public": False}, "POST",
                           "/assistants"),
        "put assistant": ({"name": "a", "config": bad_config, "public": False}, "PUT",
                          f"/assistants/{aid}"),
        "post thread": ({"name": "t", "assistant_id": aid, "x": BIG}, "POST", "/threads"),
        "put thread": ({"name": "t", "assistant_id": aid, "x": BIG}, "PUT", f"/threads/{tid}"),
        "post state": ({"values": [{**_human("x"), "additional_kwargs": {"n": BIG}}]}, "POST",
                       f"/threads/{tid}/state"),
        "post messages": ({"messages": [{**_human("x"), "additional_kwargs": {"n": BIG}}]},
                          "POST", f"/threads/{tid}/messages"),
    }[route]
    before = (_types(client, tid), client.ref("assistant", aid).events()[-1].seq)
    r = me.request(method, path, content=json.dumps(body), headers={
        "content-type": "application/json"})
    assert r.status_code == 422, (r.status_code, r.text)
    assert (_types(client, tid), client.ref("assistant", aid).events()[-1].seq) == before
    assert me.get(f"/assistants/{aid}").json()["config"] == {"configurable": {"type": "chatbot"}}


def test_a_python_driver_gets_a_refusal_for_an_unstorable_event_and_nothing_is_stored(client):
    from runtime.client import ActorError

    ref = client.ref("counter", f"big-{uuid.uuid4().hex[:6]}")
    ref.ask({"type": "add", "amount": 1})
    with pytest.raises(ActorError) as caught:
        ref.ask({"type": "add", "amount": 2**70})
    assert caught.value.code == "invalid" and "cannot be stored" in caught.value.message
    assert [e.seq for e in ref.events()] == [1]
    assert ref.ask({"type": "add", "amount": 2}).version == 2  # the entity goes on


def test_ingest_with_a_config_that_is_not_an_object_is_422(base):
    me = _user(base)
    for config in ('{"configurable": "x"}', '"x"', "[1]", '{"configurable": {"thread_id": 1}}',
                   "not json", '{"configurable": {"assistant_id": "a", "n": 1e999}}'):
        r = me.post("/ingest", files={"files": ("a.txt", b"hello", "text/plain")},
                    data={"config": config})
        assert r.status_code == 422, (config, r.status_code, r.text)


# ------------------------------------------------------------------ 3. the operator's log API


def _operator_paths(base: str, ref) -> list[str]:
    path = f"{base}/v1/actors/counter/{ref.id}"
    return [path + "/events", path + "/state", path + "/state?version=1",
            base + "/v1/actors/counter", base + "/v1/runtime", base + "/metrics"]


def _tail_refused(url: str) -> bool:
    import websockets.sync.client as ws

    try:
        with ws.connect(url, open_timeout=10) as sock:
            sock.recv(timeout=10)
    except Exception as exc:  # noqa: BLE001 - the handshake's refusal
        return "403" in str(exc)
    return False


def test_without_a_configured_token_the_data_directorys_own_is_required_from_loopback(
        base, client, monkeypatch):
    """No ACTORLOG_ADMIN_TOKEN: the service's own token, made in its data directory, is
    required from every caller, loopback included (behind a proxy every caller is loopback).
    Any case of "Bearer" does; an empty token is a missing one."""
    import os

    from api.local_files import data_dir
    from api.operator import TOKEN_FILE

    monkeypatch.delenv("ACTORLOG_ADMIN_TOKEN", raising=False)
    ref = client.ref("counter", f"op-{uuid.uuid4().hex[:6]}")
    ref.ask({"type": "add", "amount": 1})
    paths = _operator_paths(base, ref)
    for url in paths:
        for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "bearer"},
                        {"Authorization": f"Basic {OPERATOR_TOKEN}"},
                        {"Authorization": f"Bearer {OPERATOR_TOKEN}"}):  # not this service's
            r = httpx.get(url, headers=headers)
            assert r.status_code == 401, (url, headers, r.status_code)
            assert r.headers["www-authenticate"] == "Bearer"
    with open(os.path.join(data_dir(), TOKEN_FILE), encoding="utf-8") as f:
        token = f.read().strip()
    assert token.startswith("op_") and len(token) > 20
    assert os.stat(os.path.join(data_dir(), TOKEN_FILE)).st_mode & 0o077 == 0
    for url in paths:
        assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert httpx.get(url, headers={"authorization": f"bearer {token}"}).status_code == 200
    tail = f"{base.replace('http://', 'ws://')}/v1/actors/counter/{ref.id}/tail"
    assert _tail_refused(tail) and _tail_refused(tail + "?token=")
    assert _tail_refused(tail + f"?token={OPERATOR_TOKEN}")


def test_log_api_with_a_token_requires_it_from_everyone(base, client, monkeypatch):
    import websockets.sync.client as ws

    monkeypatch.setenv("ACTORLOG_ADMIN_TOKEN", "s3cret-operator")
    ref = client.ref("counter", f"tok-{uuid.uuid4().hex[:6]}")
    ref.ask({"type": "add", "amount": 1})
    for url in _operator_paths(base, ref):
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer s3cret-operator"}
                         ).status_code == 200
    tail = f"{base.replace('http://', 'ws://')}/v1/actors/counter/{ref.id}/tail"
    assert _tail_refused(tail)
    with ws.connect(tail + "?token=s3cret-operator", open_timeout=10) as sock:
        frame = json.loads(sock.recv(timeout=10))
        assert frame["type"] == "event" and frame["event"]["seq"] == 1


def test_tail_refuses_a_from_that_is_not_ascii_digits(base):
    import websockets.sync.client as ws

    url = (base.replace("http://", "ws://") + "/v1/actors/counter/x/tail?from=%C2%B2"
           f"&token={OPERATOR_TOKEN}")
    with ws.connect(url, open_timeout=10) as sock:
        frame = json.loads(sock.recv(timeout=10))
        assert frame == {"type": "error", "detail": "from must be an integer >= 1"}
        with pytest.raises(Exception):
            sock.recv(timeout=10)
        assert sock.close_code == 1008


# ------------------------------------------------------------------ 4. retrieval across tenants


def _retrieval_tool_text(raw: bytes) -> str:
    texts = []
    for event, data in parse_sse(raw):
        if event == "data" and isinstance(data, list):
            texts += [json.dumps(m.get("content")) for m in data if m.get("type") == "tool"]
    return " ".join(texts)


def test_a_run_cannot_read_documents_of_an_assistant_its_caller_may_not_see(base, client):
    alice, bob = _user(base), _user(base)
    secret = f"the vault code is {uuid.uuid4().hex}"
    shared = alice.assistant("chat_retrieval", public=True)
    bobs_thread = bob.thread(shared)
    assert alice.put(f"/assistants/{shared}", json={
        "name": "now private", "public": False,
        "config": {"configurable": {"type": "chat_retrieval"}}}).status_code == 200
    r = alice.post("/ingest", files={"files": ("vault.txt", secret.encode(), "text/plain")},
                   data={"config": json.dumps({"configurable": {"assistant_id": shared}})})
    assert r.status_code == 200, r.text
    bobs_own = bob.assistant("chat_retrieval")
    r, raw = bob.stream({"thread_id": bobs_thread, "assistant_id": bobs_own,
                         "input": {"messages": [_human("what is the vault code?")]}})
    assert r.status_code == 200
    assert secret not in raw.decode()
    # without an assistant of his own in the body, the thread's now-private one is refused
    r = bob.post("/runs/stream", json={"thread_id": bobs_thread,
                                       "input": {"messages": [_human("vault code?")]}})
    assert r.status_code == 404
    # and the thread actor itself checks, whatever an edge sent it
    bot = {"type": "chat_retrieval", "model": "GPT 3.5 Turbo",
           "system_message": "You are a helpful assistant."}
    bob_id = bob.get("/threads/" + bobs_thread).json()["user_id"]
    items = list(client.ref("thread", bobs_thread).ask_stream({
        "type": "run", "user_id": bob_id, "run_id": str(uuid.uuid4()),
        "input": [_human("vault code?")], "bot": bot, "assistant_id": shared,
        "dict_state": True, "at": "2026-01-01T00:00:00Z"}))
    assert items[-1][0] == "outcome"
    assert secret not in json.dumps([i for w, i in items if w == "progress"])
    # the owner still reads her own documents
    own_thread = alice.thread(shared)
    r, raw = alice.stream({"thread_id": own_thread,
                           "input": {"messages": [_human("what is the vault code?")]}})
    assert secret in raw.decode()


# ------------------------------------------------------------------ 6. errors: ids, logs, metrics


def test_every_answer_carries_a_request_id_and_a_sane_client_id_is_kept(base):
    r = httpx.get(base + "/ok")
    assert len(r.headers["x-request-id"]) == 32
    r = httpx.get(base + "/ok", headers={"X-Request-ID": "trace-42"})
    assert r.headers["x-request-id"] == "trace-42"
    for bad in ("bad id", "x" * 65, "a\tb"):
        r = httpx.get(base + "/ok", headers={"X-Request-ID": bad})
        assert len(r.headers["x-request-id"]) == 32 and r.headers["x-request-id"] != bad


def test_an_unexpected_error_is_a_json_500_with_its_request_id_and_a_logged_traceback(caplog):
    """The edge middleware around an app whose route fails the way a bug would."""
    import asyncio

    from fastapi import FastAPI

    from api.middleware import EdgeMiddleware

    app = FastAPI()
    app.add_middleware(EdgeMiddleware)

    @app.get("/boom")
    async def boom() -> None:
        raise KeyError("a bug")

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.get("/boom", headers={"X-Request-ID": "req-1"})

    with caplog.at_level("ERROR", logger="ray.serve"):
        r = asyncio.run(call())
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert r.json() == {"detail": "internal error; request id req-1", "request_id": "req-1"}
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "req-1" in logged and "KeyError: 'a bug'" in logged and "Traceback" in logged


def test_metrics_in_prometheus_format(base, client):
    me = _user(base)
    tid = me.thread(me.assistant("chatbot"))
    me.stream({"thread_id": tid, "input": [_human("hi")]})
    me.get(f"/threads/{tid}/state")
    text = httpx.get(base + "/metrics", headers=OPERATOR).text
    assert 'actorlog_http_requests_total{method="GET",route="/threads/{tid}/state",' \
           'status="200"}' in text
    assert 'actorlog_commands_total{host="' in text and 'kind="thread"}' in text
    assert "actorlog_events_appended_total" in text
    assert 'actorlog_append_seconds_bucket{host="' in text
    assert 'actorlog_command_seconds_count{host="' in text
    assert 'actorlog_resident_entities{host="' in text
    assert "actorlog_subscriptions" in text


# ------------------------------------------------------------------ 8. a tail that never reads


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        assert chunk, "the server closed the connection without a close frame"
        out += chunk
    return out


def _frame(sock: socket.socket) -> tuple[int, bytes]:
    """One unmasked server frame from a raw socket: (opcode, payload)."""
    head = _recv_exactly(sock, 2)
    length = head[1] & 0x7F
    if length == 126:
        length = int.from_bytes(_recv_exactly(sock, 2), "big")
    elif length == 127:
        length = int.from_bytes(_recv_exactly(sock, 8), "big")
    return head[0] & 0x0F, _recv_exactly(sock, length)


def test_a_tail_that_never_reads_is_closed_and_its_subscription_released(base, client,
                                                                        monkeypatch):
    import api.log_api

    monkeypatch.setattr(api.log_api, "TAIL_SEND_SECONDS", 1.0)
    ref = client.ref("counter", f"slow-{uuid.uuid4().hex[:6]}")
    ref.ask({"type": "add", "amount": 1})
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall((f"GET /v1/actors/counter/{ref.id}/tail?token={OPERATOR_TOKEN} HTTP/1.1\r\n"
                  f"Host: {host}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    handshake = b""
    while not handshake.endswith(b"\r\n\r\n"):
        handshake += _recv_exactly(sock, 1)
    assert handshake.startswith(b"HTTP/1.1 101")

    def subscribers() -> int:
        return sum(s["subscribers"] for s in client.stats())

    deadline = time.time() + 30
    while subscribers() == 0 and time.time() < deadline:
        time.sleep(0.05)
    assert subscribers() == 1
    note = "x" * 60_000
    for i in range(400):  # ~24 MB the socket will not take
        ref.ask({"type": "note", "text": note})
        if i % 20 == 0 and subscribers() == 0:
            break
    deadline = time.time() + 60
    while subscribers() and time.time() < deadline:
        time.sleep(0.1)
    assert subscribers() == 0  # the host no longer holds a buffer for it
    # what the kernel held, then the close frame: 1013 and where to resume
    sock.settimeout(30)
    frames, close = 0, None
    while close is None:
        opcode, payload = _frame(sock)
        if opcode == 0x8:
            close = (int.from_bytes(payload[:2], "big"), payload[2:].decode())
        else:
            frames += 1
    sock.close()
    # the frame being sent when the server gave up may have reached the client whole: a
    # resuming client skips sequence numbers it has (README, the log API)
    assert close[0] == 1013 and close[1] in (f"resume from={frames}",
                                             f"resume from={frames + 1}")
    assert frames < 400


# ------------------------------------------------------------------ 9. bounded requests


def test_oversized_bodies_and_headers_are_refused(base):
    me = _user(base)
    r = me.post("/assistants", content=b'{"name": "' + b"x" * (5 * 1024 * 1024) + b'"}',
                headers={"content-type": "application/json"})
    assert r.status_code == 413 and "detail" in r.json()
    r = me.get("/assistants/", headers={"Authorization": "Bearer " + "x" * 100_000})
    assert r.status_code == 431 and "detail" in r.json()
    aid = me.assistant("chat_retrieval")
    config = json.dumps({"configurable": {"assistant_id": aid}})
    r = me.post("/ingest", files={"files": ("big.txt", b"y" * (21 * 1024 * 1024),
                                            "text/plain")}, data={"config": config})
    assert r.status_code == 413
    words = " ".join(f"w{i}" for i in range(900_000))  # ~6 MB of text: over 5,000 chunks
    r = me.post("/ingest", files={"files": ("long.txt", words.encode(), "text/plain")},
                data={"config": config})
    assert r.status_code == 413 and "at most 5000" in r.json()["detail"]
    assert me.get(f"/assistants/{aid}").status_code == 200


# ------------------------------------------------------------------ 10. history pages


def test_history_pages_newest_first_with_limit_and_before(base):
    me = _user(base)
    tid = me.thread(me.assistant("chatbot"))
    for i in range(25):
        assert me.post(f"/threads/{tid}/state",
                       json={"values": [_human(f"m{i}")]}).status_code == 200
    first = me.get(f"/threads/{tid}/history").json()
    assert len(first) == 10
    assert [m["content"] for m in first[0]["values"]][-1] == "m24"
    assert first[0]["parent"] == first[1]["config"]
    seen = list(first)
    while True:
        before = seen[-1]["config"]["configurable"]["checkpoint_id"]
        page = me.get(f"/threads/{tid}/history?limit=10&before={before}").json()
        if not page:
            break
        assert page[0]["config"] == seen[-1]["parent"]
        seen += page
    assert len(seen) == 25 and seen[-1]["parent"] is None
    posted = me.post(f"/threads/{tid}/history", json={"limit": 3, "before": {
        "configurable": {"checkpoint_id": first[0]["config"]["configurable"]["checkpoint_id"]}}})
    assert posted.json() == first[1:4]
    assert me.get(f"/threads/{tid}/history?before=nope").status_code == 404
    assert me.get(f"/threads/{tid}/history?limit=0").status_code == 422
    assert me.get(f"/threads/{tid}/history?limit=1001").status_code == 422


# ------------------------------------------------------------------ 16-18. seen in the browser


def test_a_thread_of_a_deleted_assistant_names_no_assistant(base):
    me = _user(base)
    aid = me.assistant("chatbot")
    tid = me.thread(aid)
    assert me.delete(f"/assistants/{aid}").status_code == 200
    assert me.get(f"/threads/{tid}").json()["assistant_id"] is None
    assert [t["assistant_id"] for t in me.get("/threads/").json()
            if t["thread_id"] == tid] == [None]
    other = me.assistant("chatbot")
    assert me.put(f"/threads/{tid}", json={"name": "t", "assistant_id": other}).json()[
        "assistant_id"] == other
    assert me.get(f"/threads/{tid}").json()["assistant_id"] == other


def test_feedback_is_an_event_of_the_runs_thread(base, client):
    me, other = _user(base), _user(base)
    tid = me.thread(me.assistant("chatbot"))
    _, raw = me.stream({"thread_id": tid, "input": [_human("hi")]})
    run_id = parse_sse(raw)[0][1]["run_id"]
    body = {"run_id": run_id, "key": "user_score", "score": 1}
    r = me.post("/runs/feedback", json=body)
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    last = client.ref("thread", tid).events()[-1]
    assert last.type == "feedback_given" and last.data["run_id"] == run_id
    assert last.data["score"] == 1 and last.data["key"] == "user_score"
    assert other.post("/runs/feedback", json=body).status_code == 404
    assert me.post("/runs/feedback", json={**body, "run_id": str(uuid.uuid4())}
                   ).status_code == 404
    assert me.post("/runs/feedback", json={"run_id": "nope", "key": "k"}).status_code == 422
    assert _types(client, tid).count("feedback_given") == 1


def test_continue_while_a_run_is_going_is_a_409_at_once(base, client):
    me = _user(base)
    tid = me.thread(me.assistant("chatbot", **SLOW))
    long_question = _human("please repeat " + " ".join(f"w{i}" for i in range(80)))
    assert me.post("/runs", json={"thread_id": tid, "input": [long_question]}).status_code \
        == 200
    r = me.post("/runs/stream", json={"thread_id": tid, "input": None})
    assert r.status_code == 409 and "in progress" in r.json()["detail"]
    types = _wait_types(client, tid, lambda t: "run_finished" in t, timeout=120)
    assert types.count("run_started") == 1 and types[-1] == "run_finished"
