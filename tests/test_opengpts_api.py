"""The OpenGPTs API family over real HTTP, real Ray hosts and a real SQLite file: ports of
OpenGPTs' own API tests, the golden SSE captures compared field by field, history, edits,
ownership, bad input, runs that outlive their request, and the OpenAI-compatible model path
against a stand-in server."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import (OPERATOR, WEB_TOOLS, kill_hosts, start_inprocess_server,
                            standin_provider)
from tests.opengpts_helpers import User, golden, golden_raw, parse_sse, same_shape


@pytest.fixture(scope="module")
def services():
    """Stand-ins for the web tools' services (tests/fake_services.py)."""
    from tests.fake_services import FakeServices

    server = FakeServices().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def base(ray_session, tmp_path_factory, standin, services):
    models = {"providers": {"standin": standin_provider(standin),
                            "slow": {"type": "builtin", "delay": 0.05}},
              "aliases": {"GPT 4o": "standin", "GPT 4 Turbo": "slow"}}
    # DuckDuckGo and Wikipedia reach their stand-ins; every other web tool stays off
    tools = {t: {"enabled": False} for t in WEB_TOOLS}
    tools.update({"ddg_search": {"base_url": services.url},
                  "wikipedia": {"base_url": services.url}})
    url, _, client = start_inprocess_server(ray_session, str(tmp_path_factory.mktemp("gpts")),
                                            models=json.dumps(models),
                                            options={"ACTORLOG_TOOLS": json.dumps(tools)})
    yield url
    kill_hosts(client)


def _user(base: str, name: str | None = None) -> User:
    return User(base, name or f"user-{uuid.uuid4().hex[:8]}")


# ------------------------------------------------------------------ OpenGPTs' own tests


def test_list_and_create_assistants(base):
    """backend/tests/unit_tests/app/test_app.py::test_list_and_create_assistants"""
    one, two = _user(base), _user(base)
    assert one.get("/assistants/").json() == []
    aid = str(uuid.uuid4())
    body = {"name": "bobby", "config": {}, "public": False}
    r = one.put(f"/assistants/{aid}", json=body)
    assert r.status_code == 200
    projection = {k: v for k, v in r.json().items() if k not in ("updated_at", "user_id")}
    assert projection == {"assistant_id": aid, "config": {}, "name": "bobby", "public": False}
    listed = one.get("/assistants/").json()
    assert [{k: v for k, v in a.items() if k not in ("updated_at", "user_id")}
            for a in listed] == [projection]
    r = one.put(f"/assistants/{aid}", json=body)
    assert {k: v for k, v in r.json().items() if k not in ("updated_at", "user_id")} \
        == projection
    assert len(one.get("/assistants/").json()) == 1
    assert two.get("/assistants/").json() == []


def test_threads(base):
    """test_app.py::test_threads"""
    one, two = _user(base), _user(base)
    aid, tid = str(uuid.uuid4()), str(uuid.uuid4())
    assert one.put(f"/assistants/{aid}", json={
        "name": "assistant", "config": {"configurable": {"type": "chatbot"}},
        "public": False}).status_code == 200
    r = one.put(f"/threads/{tid}", json={"name": "bobby", "assistant_id": aid})
    assert r.status_code == 200 and set(r.json()) == {
        "thread_id", "user_id", "assistant_id", "name", "updated_at", "metadata"}
    r = one.get(f"/threads/{tid}/state")
    assert r.status_code == 200 and r.json() == {"values": None, "next": []}
    assert [{k: v for k, v in t.items() if k not in ("updated_at", "user_id")}
            for t in one.get("/threads/").json()] == [
        {"assistant_id": aid, "name": "bobby", "thread_id": tid,
         "metadata": {"assistant_type": "chatbot"}}]
    assert two.put(f"/threads/{tid}").status_code == 422


def test_health_ok_and_slash_conventions(base):
    u = _user(base)
    assert u.get("/ok").json() == {"ok": True}
    assert u.get("/health").json()["status"] == "ok"
    assert u.get("/assistants").status_code == 405
    assert u.get("/threads").status_code == 405
    assert u.post("/assistants/", json={}).status_code == 405
    aid = u.assistant()
    r = u.get(f"/assistants/{aid}/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"].endswith(f"/assistants/{aid}")


def test_no_cookie_is_one_default_user(base):
    anon1, anon2 = User(base, None), User(base, None)
    aid = anon1.assistant()
    assert aid in [a["assistant_id"] for a in anon2.get("/assistants/").json()]


# ------------------------------------------------------------------ golden SSE captures


def _events(raw: bytes) -> list[tuple[str, object]]:
    events = parse_sse(raw)
    assert raw.endswith(b"event: end\r\n\r\n")
    assert events[0][0] == "metadata" and uuid.UUID(events[0][1]["run_id"])
    assert events[-1] == ("end", None)
    return events


def _snapshot_of(final: list[dict], last_token: list[dict]) -> None:
    """The node's snapshot re-sends the last token's message, now with usage (as real
    providers' final messages gain usage_metadata)."""
    assert len(final) == len(last_token) == 1
    assert {**final[0], "usage_metadata": None} == {**last_token[0], "usage_metadata": None}


def _tokens_grow(datas: list[list[dict]]) -> None:
    """Token events carry the accumulated message: same id, content only ever extended."""
    ids = {d[0]["id"] for d in datas}
    assert len(ids) == 1 and all(len(d) == 1 for d in datas)
    contents = [d[0]["content"] for d in datas]
    assert all(b.startswith(a) for a, b in zip(contents, contents[1:]))


def test_chatbot_stream_matches_the_golden_capture(base):
    theirs = golden("chatbot.sse.txt")
    u = _user(base)
    tid = u.thread(u.assistant("chatbot"))
    human = {"content": "hi! my name is bob", "additional_kwargs": {}, "type": "human",
             "example": False, "id": "human-0.123"}
    r, raw = u.stream({"thread_id": tid, "input": [human]})
    # the headers OpenGPTs sends
    for key in ("cache-control", "connection", "x-accel-buffering", "content-type"):
        assert r.headers[key] == {"cache-control": "no-cache", "connection": "keep-alive",
                                  "x-accel-buffering": "no",
                                  "content-type": "text/event-stream; charset=utf-8"}[key]
    ours = _events(raw)
    # byte framing: \r\n line ends, a blank line after each event
    assert raw.startswith(b"event: metadata\r\ndata: {\"run_id\":\"")
    assert golden_raw("chatbot.sse.txt").startswith(b"event: metadata\r\ndata: {\"run_id\":\"")
    assert [e for e, _ in ours] == ["metadata"] + ["data"] * (len(ours) - 2) + ["end"]
    datas = [d for e, d in ours if e == "data"]
    assert all(isinstance(d, list) for d in datas)
    # first: the whole thread, i.e. the human message with the client's id
    assert datas[0] == [theirs[1][1][0]]
    tokens, final = datas[1:-1], datas[-1]
    _tokens_grow(tokens)
    _snapshot_of(final, tokens[-1])
    for d in datas[1:]:
        same_shape(d[0], theirs[2][1][0])
    assert final[0]["id"].startswith("run-") and final[0]["content"] == \
        "Hi bob, nice to meet you!"
    state = u.get(f"/threads/{tid}/state").json()
    assert state == {"values": [theirs[1][1][0], final[0]], "next": []}


def test_agent_tool_stream_matches_the_golden_capture(base):
    theirs = golden("agent_tool.sse.txt")
    u = _user(base)
    aid = u.assistant("agent", **{"type==agent/tools": [{"type": "ddg_search", "config": {}}]})
    tid = u.thread(aid)
    _, raw = u.stream({"thread_id": tid, "input": [
        {"content": "search: weather in sf?", "type": "human", "id": "human-1"}]})
    ours = _events(raw)
    datas = [d for e, d in ours if e == "data"]
    assert datas[0][0]["id"] == "human-1"
    kinds = [(d[0]["type"], bool(d[0].get("tool_calls"))) for d in datas]
    first_tool = kinds.index(("tool", False))
    calls = datas[1:first_tool]
    assert all(k == ("ai", True) for k in kinds[1:first_tool])
    assert calls[0][0]["tool_calls"][0]["args"] == {"query": ""}  # arguments accumulate
    assert calls[-1][0]["tool_calls"][0]["args"] == {"query": "search: weather in sf?"}
    _snapshot_of(calls[-1], calls[-2])  # snapshot after the last token
    same_shape(calls[-1][0], theirs[3][1][0])
    tool = datas[first_tool][0]
    # the artifact holds the results with their titles and links (OpenGPTs' own is null)
    same_shape({**tool, "artifact": None}, theirs[5][1][0])
    assert tool["name"] == "duckduckgo_search" and tool["status"] == "success" and \
        tool["tool_call_id"] == calls[-1][0]["tool_calls"][0]["id"]
    assert tool["content"].startswith("Alan Mathison Turing was")  # the stand-in's snippets
    assert [d["metadata"]["source"] for d in tool["artifact"]][:1] == [
        "https://example.org/Alan_Turing"]
    answer = datas[first_tool + 1:]
    _tokens_grow(answer[:-1])
    _snapshot_of(answer[-1], answer[-2])
    state = u.get(f"/threads/{tid}/state").json()
    assert [m["type"] for m in state["values"]] == ["human", "ai", "tool", "ai"]
    assert state["next"] == []


def test_interrupt_before_action_then_continue_with_null_input(base):
    first, second = golden("agent_interrupt_1.sse.txt"), golden(
        "agent_interrupt_2_continue.sse.txt")
    u = _user(base)
    aid = u.assistant("agent", **{"type==agent/tools": [{"type": "retrieval"}],
                                  "type==agent/interrupt_before_action": True})
    tid = u.thread(aid)
    _, raw = u.stream({"thread_id": tid, "input": [
        {"content": "search q", "type": "human", "id": "human-2"}]})
    ours = _events(raw)
    assert [e for e, _ in ours][:2] == [e for e, _ in first][:2]
    last = [d for e, d in ours if e == "data"][-1][0]
    same_shape(last, first[-2][1][0])
    assert last["tool_calls"][0]["name"] == "retrieval"
    assert u.get(f"/threads/{tid}/state").json()["next"] == ["action"]
    assert u.get(f"/threads/{tid}/messages").json()["resumeable"] is True
    _, raw = u.stream({"thread_id": tid, "input": None})
    ours = _events(raw)
    datas = [d for e, d in ours if e == "data"]
    # resuming sends the whole history first, as the capture does
    assert [m["type"] for m in datas[0]] == [m["type"] for m in second[1][1]] == ["human", "ai"]
    assert datas[1][0]["type"] == "tool"
    same_shape(datas[1][0], second[2][1][0])
    assert datas[-1][0]["type"] == "ai"
    _snapshot_of(datas[-1], datas[-2])
    state = u.get(f"/threads/{tid}/state").json()
    assert state["next"] == [] and [m["type"] for m in state["values"]] == [
        "human", "ai", "tool", "ai"]
    # nothing left to continue: an error event, then end; the thread is unchanged
    _, raw = u.stream({"thread_id": tid, "input": None})
    ours = _events(raw)
    assert ours[1][0] == "error" and set(ours[1][1]) == {"status_code", "message"}
    assert u.get(f"/threads/{tid}/state").json() == state


def _pdf(text: str) -> bytes:
    """A one-page PDF showing ``text``, with a correct cross-reference table."""
    stream = f"BT /F1 12 Tf 10 100 Td ({text}) Tj ET".encode()
    objects = [b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
               b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 144]/Contents 4 0 R"
               b"/Resources<</Font<</F1 5 0 R>>>>>>",
               b"<</Length %d>>stream\n" % len(stream) + stream + b"\nendstream",
               b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj" % i + body + b"endobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1,
                                                                          xref)
    return bytes(out)


PDF = _pdf("Zebras graze at dusk.")


def test_ingest_and_retrieval_stream_match_the_golden_capture(base):
    theirs, turn2 = golden("rag.sse.txt"), golden("rag_turn2.sse.txt")
    u = _user(base)
    aid = u.assistant("chat_retrieval")
    files = [("files", ("notes.txt", b"Otters hold hands while they sleep.", "text/plain")),
             ("files", ("guide.md", b"# Guide\n\nPenguins live in the south.", "text/markdown")),
             ("files", ("page.html", b"<html><script>x()</script><p>Koalas eat eucalyptus.</p>"
                                     b"</html>", "text/html")),
             ("files", ("doc.pdf", PDF, "application/pdf"))]
    r = u.post("/ingest", files=files,
               data={"config": json.dumps({"configurable": {"assistant_id": aid}})})
    assert r.status_code == 200, r.text
    assert [len(ids) for ids in r.json()] == [1, 1, 1, 1]
    tid = u.thread(aid)
    assert u.get(f"/threads/{tid}/state").json() == {"values": None, "next": []}
    r = u.post("/ingest", files=[("files", ("t.txt", b"Thread notes: lemurs sing.", "text/plain"))],
               data={"config": json.dumps({"configurable": {"thread_id": tid}})})
    assert r.status_code == 200
    _, raw = u.stream({"thread_id": tid, "input": {"messages": [
        {"content": "what do zebras do?", "type": "human", "id": "human-3"}]}})
    ours = _events(raw)
    datas = [d for e, d in ours if e == "data"]
    assert datas[0][0]["id"] == "human-3"
    call, tool = datas[1][0], datas[2][0]
    same_shape(call, theirs[2][1][0])
    assert call["tool_calls"][0]["args"] == {"query": "what do zebras do?"}
    same_shape(tool, theirs[3][1][0])
    assert tool["content"][0] == {"id": None, "metadata": {"source": "doc.pdf",
                                                           "namespace": aid},
                                  "page_content": "Zebras graze at dusk.", "type": "Document"}
    sources = {d["metadata"]["source"] for d in tool["content"]}
    assert sources <= {"notes.txt", "guide.md", "page.html", "doc.pdf", "t.txt"}
    _tokens_grow(datas[3:-1])
    assert "Zebras graze at dusk." in datas[-1][0]["content"]
    state = u.get(f"/threads/{tid}/state").json()
    assert set(state["values"]) == {"messages", "msg_count"} and state["values"]["msg_count"] == 2
    _, raw = u.stream({"thread_id": tid, "input": {"messages": [
        {"content": "and what do lemurs do?", "type": "human", "id": "human-4"}]}})
    datas = [d for e, d in _events(raw) if e == "data"]
    assert len(datas[0]) == 5 and datas[0][-1]["id"] == "human-4"  # the whole thread first
    assert [m["type"] for m in datas[0]] == [m["type"] for m in turn2[1][1]]
    found = {d["page_content"] for d in datas[2][0]["content"]}
    assert "Thread notes: lemurs sing." in found
    assert u.get(f"/threads/{tid}/state").json()["values"]["msg_count"] == 4


# ------------------------------------------------------------------ state, history, runs


def test_history_is_one_entry_per_version_newest_first(base):
    u = _user(base)
    tid = u.thread(u.assistant("chatbot"))
    u.stream({"thread_id": tid, "input": [{"content": "hi! my name is bob", "type": "human",
                                           "id": "human-0.123"}]})
    history = u.get(f"/threads/{tid}/history").json()
    assert [(len(h["values"]), h["next"]) for h in history] == [
        (2, []), (1, ["chatbot"]), (0, ["__start__"])]
    assert all(set(h) == {"values", "next", "config", "parent"} for h in history)
    assert history[-1]["parent"] is None
    for newer, older in zip(history, history[1:]):
        assert newer["parent"] == older["config"]
        assert newer["config"]["configurable"]["thread_id"] == tid
        assert newer["config"]["configurable"]["checkpoint_ns"] == ""
    assert u.get(f"/threads/{tid}/history").json() == history  # a replay: stable


def test_state_edit_by_id_and_append(base):
    u = _user(base)
    tid = u.thread(u.assistant("chatbot"))
    u.stream({"thread_id": tid, "input": [{"content": "hi! my name is bob", "type": "human",
                                           "id": "human-0.123"}]})
    before = u.get(f"/threads/{tid}/state").json()["values"]
    r = u.post(f"/threads/{tid}/state", json={"values": [
        {"content": "hi! my name is BOB (edited)", "type": "human", "id": "human-0.123"}]})
    assert r.status_code == 200 and r.json() is None
    after = u.get(f"/threads/{tid}/state").json()
    assert after["values"][0]["content"] == "hi! my name is BOB (edited)"
    assert after["values"][1] == before[1] and after["next"] == []
    u.post(f"/threads/{tid}/state", json={"values": [{"content": "appended msg",
                                                       "type": "human"}]})
    values = u.get(f"/threads/{tid}/state").json()["values"]
    assert len(values) == 3 and values[2]["content"] == "appended msg"
    assert uuid.UUID(values[2]["id"])  # an id was assigned
    assert len(u.get(f"/threads/{tid}/history").json()) == 5


def test_state_on_an_empty_thread_then_run_with_null_input(base):
    """API.md's flow (issue #331): POST state on an empty thread, then a run."""
    u = _user(base)
    tid = u.thread(u.assistant("chatbot"))
    u.post(f"/threads/{tid}/state", json={"values": [{"content": "hi! my name is ann",
                                                       "type": "human"}]})
    assert u.get(f"/threads/{tid}/state").json()["next"] == ["chatbot"]
    _, raw = u.stream({"thread_id": tid, "input": None})
    assert [d for e, d in parse_sse(raw) if e == "data"][-1][0]["content"] == \
        "Hi ann, nice to meet you!"


def test_post_runs_answers_at_once_and_the_run_goes_on(base):
    u = _user(base)
    aid = u.assistant("chatbot", **{"type==chatbot/llm_type": "GPT 4 Turbo"})  # the slow one
    tid = u.thread(aid)
    r = u.post("/runs", json={"thread_id": tid, "input": [
        {"content": "hi! my name is cleo", "type": "human"}]})
    assert r.json() == {"status": "ok"}
    running = u.wait_state(tid, lambda s: s["values"] is not None)
    assert running["values"][0]["content"] == "hi! my name is cleo"
    done = u.wait_state(tid, lambda s: s["values"] and len(s["values"]) == 2)
    assert done["values"][1]["content"] == "Hi cleo, nice to meet you!"
    assert done["next"] == []


def test_a_stream_whose_client_leaves_runs_to_its_end_with_on_disconnect_continue(base):
    """(Without it the run stops, as OpenGPTs': tests/test_hardening.py.)"""
    u = _user(base)
    aid = u.assistant("chatbot", **{"type==chatbot/llm_type": "GPT 4 Turbo"})
    tid = u.thread(aid)
    seen = 0
    with u.http.stream("POST", "/runs/stream", json={"thread_id": tid, "input": [
            {"content": "tell me about boats", "type": "human"}],
            "on_disconnect": "continue"}) as r:
        for line in r.iter_lines():
            seen += line.startswith("data: [")
            if seen == 3:
                break  # hang up after the first tokens
    done = u.wait_state(tid, lambda s: s["values"] and len(s["values"]) == 2
                        and s["values"][1]["content"].endswith("answers."))
    assert done["values"][1]["content"].startswith('You said: "tell me about boats"')
    events = u.get(f"/v1/actors/thread/{tid}/events", headers=OPERATOR).json()["events"]
    assert events[-1]["type"] == "run_finished" and events[-1]["data"]["outcome"] == "done"


def test_the_older_eras_payloads(base):
    """Runs with assistant_id and {"messages": [...]} input; GET/POST /messages; and the
    first era's object framing, chosen automatically or by ?stream_format."""
    u = _user(base)
    aid = u.assistant("chatbot")
    tid = u.thread(aid)
    assert u.get(f"/threads/{tid}/messages").json() == {"messages": [], "resumeable": False}
    assert u.post(f"/threads/{tid}/messages", json={"messages": [
        {"content": "hi! my name is bob", "type": "human"}]}).json() is None
    _, raw = u.stream({"assistant_id": aid, "thread_id": tid, "input": {"messages": [
        {"content": "have a good day!", "type": "human"}]}})
    datas = [d for e, d in parse_sse(raw) if e == "data"]
    assert all(isinstance(d, dict) and set(d) == {"messages"} for d in datas)
    assert datas[-1]["messages"][-1]["content"] == \
        "You too! If you have any other questions, feel free to ask."
    assert len(datas[-1]["messages"]) == 3
    _, raw = u.stream({"thread_id": tid, "input": [{"content": "hello", "type": "human"}]},
                      params={"stream_format": "object"})
    assert isinstance([d for e, d in parse_sse(raw) if e == "data"][-1], dict)
    _, raw = u.stream({"assistant_id": aid, "thread_id": tid, "input": {"messages": []}},
                      headers={"X-Stream-Format": "list"})
    assert isinstance([d for e, d in parse_sse(raw) if e == "data"][-1], list)
    r = u.post("/runs/stream", json={"thread_id": tid, "input": []},
               params={"stream_format": "xml"})
    assert r.status_code == 422


def test_openai_compatible_model_through_the_api(base, standin):
    u = _user(base)
    aid = u.assistant("agent", **{"type==agent/agent_type": "GPT 4o",
                                  "type==agent/tools": ["Wikipedia"]})
    tid = u.thread(aid)
    _, raw = u.stream({"thread_id": tid, "input": [
        {"content": "weather in sf?", "type": "human"}]})
    datas = [d for e, d in _events(raw) if e == "data"]
    calls = [d[0] for d in datas if d[0]["type"] == "ai" and d[0]["tool_calls"]]
    assert calls[0]["tool_calls"][0]["args"] == {}  # the deltas, accumulated
    assert calls[-1]["tool_calls"] == [{"name": "wikipedia", "args": {"query": "weather in sf?"},
                                        "id": "call_standin1", "type": "tool_call"}]
    assert calls[-1]["usage_metadata"] == {"input_tokens": 7, "output_tokens": 5,
                                           "total_tokens": 12}
    tool = next(d[0] for d in datas if d[0]["type"] == "tool")
    assert tool["name"] == "wikipedia" and tool["content"].startswith("Alan Mathison Turing")
    # the model is shown each result with its title and link
    assert datas[-1][0]["content"].startswith(
        "The tool said: [1] Alan Turing\nhttps://en.wikipedia.org/wiki/Alan_Turing\n")
    sent = standin.requests[-1]
    assert sent["model"] == "gpt-standin" and sent["messages"][0]["role"] == "system"
    # a failing model: an error event, then end; the thread stays consistent and says so
    _, raw = u.stream({"thread_id": tid, "input": [{"content": "fail please",
                                                    "type": "human"}]})
    ours = _events(raw)
    error = next(d for e, d in ours if e == "error")
    assert error["status_code"] == 500 and "standin failed" in error["message"]
    state = u.get(f"/threads/{tid}/state").json()
    assert state["values"][-1]["content"] == "fail please" and state["next"] == ["agent"]
    events = u.get(f"/v1/actors/thread/{tid}/events", headers=OPERATOR).json()["events"]
    assert events[-1]["data"]["outcome"] == "failed"


def test_schemas(base):
    from tests.opengpts_helpers import FIXTURES

    u = _user(base)
    for name in ("input_schema", "output_schema"):
        with open(f"{FIXTURES}/{name}.json") as f:
            assert u.get(f"/runs/{name}").json() == json.load(f)
    schema = u.get("/runs/config_schema").json()
    assert set(schema) == {"$defs", "properties", "title", "type"}

    # The frontend's simplifySchema: json-refs replaces a {"$ref"} object with its target,
    # dropping sibling keys; then getDefaults reads each property's default.
    def resolve(node):
        if isinstance(node, dict):
            if "$ref" in node:
                target = schema
                for part in node["$ref"].lstrip("#/").split("/"):
                    target = target[part]
                return resolve(target)
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    conf = resolve(schema)["properties"]["configurable"]["properties"]
    defaults = {k: v.get("default") for k, v in conf.items()}
    assert defaults["type"] == "agent"
    assert defaults["type==agent/agent_type"] == "GPT 3.5 Turbo"
    assert defaults["type==chatbot/llm_type"] == "GPT 3.5 Turbo"
    assert conf["type==agent/agent_type"]["title"] == "Agent Type"
    tools = conf["type==agent/tools"]["items"]["anyOf"]
    assert len(tools) == 13 and tools[2]["properties"]["name"]["const"] == "DuckDuckGo Search"


# ------------------------------------------------------------------ ownership


def test_another_users_resources_are_404_everywhere(base):
    alice, bob = _user(base), _user(base)
    aid = alice.assistant("chatbot")
    tid = alice.thread(aid)
    alice.stream({"thread_id": tid, "input": [{"content": "hi", "type": "human"}]})
    before = alice.get(f"/threads/{tid}/state").json()
    logged = alice.get(f"/v1/actors/thread/{tid}/events", headers=OPERATOR).json()["events"]
    nf_a, nf_t = {"detail": "Assistant not found"}, {"detail": "Thread not found"}
    assert (bob.get(f"/assistants/{aid}").status_code, bob.get(f"/assistants/{aid}").json()) \
        == (404, nf_a)
    r = bob.put(f"/assistants/{aid}", json={"name": "mine now", "config": {}})
    assert (r.status_code, r.json()) == (404, nf_a)  # no takeover
    assert bob.delete(f"/assistants/{aid}").json() == {"status": "ok"}  # a no-op
    assert alice.get(f"/assistants/{aid}").json()["name"] == "chatbot bot"
    assert bob.post("/threads", json={"name": "x", "assistant_id": aid}).status_code == 404
    for method, path, body in [
            ("GET", f"/threads/{tid}", None), ("GET", f"/threads/{tid}/state", None),
            ("POST", f"/threads/{tid}/state", {"values": [{"content": "x", "type": "human"}]}),
            ("GET", f"/threads/{tid}/history", None), ("GET", f"/threads/{tid}/messages", None),
            ("POST", f"/threads/{tid}/messages", {"messages": [{"content": "x",
                                                                "type": "human"}]}),
            ("PUT", f"/threads/{tid}", {"name": "mine", "assistant_id": aid}),
            ("POST", "/runs", {"thread_id": tid, "input": []}),
            ("POST", "/runs/stream", {"thread_id": tid, "input": []})]:
        r = bob.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        if method == "GET":
            assert r.json() == nf_t
    assert bob.delete(f"/threads/{tid}").json() == {"status": "ok"}
    r = bob.post("/ingest", files=[("files", ("x.txt", b"spam", "text/plain"))],
                 data={"config": json.dumps({"configurable": {"thread_id": tid}})})
    assert (r.status_code, r.json()) == (404, {"detail": "Thread not found."})
    r = bob.post("/ingest", files=[("files", ("x.txt", b"spam", "text/plain"))],
                 data={"config": json.dumps({"configurable": {"assistant_id": aid}})})
    assert (r.status_code, r.json()) == (404, {"detail": "Assistant not found."})
    assert bob.get("/threads/").json() == [] and bob.get("/assistants/").json() == []
    assert alice.get(f"/threads/{tid}/state").json() == before
    # Not "nothing changed after a while": anything bob's requests had set going would be in
    # the thread's mailbox ahead of this run, so its events would come between the log as it
    # was and this run's run_started. They follow each other directly, and the run is whole.
    r, _ = alice.stream({"thread_id": tid, "input": [{"content": "again", "type": "human"}]})
    assert r.status_code == 200
    after = alice.get(f"/v1/actors/thread/{tid}/events", headers=OPERATOR).json()["events"]
    assert after[:len(logged)] == logged
    added = [e["type"] for e in after[len(logged):]]
    assert added[0] == "run_started" and added[-1] == "run_finished", added
    assert added.count("run_started") == 1 and added.count("run_finished") == 1, added
    before = alice.get(f"/threads/{tid}/state").json()
    # a config naming another thread cannot redirect a state write
    tid2 = alice.thread(aid)
    alice.post(f"/threads/{tid2}/state", json={
        "values": [{"content": "for tid2", "type": "human"}],
        "config": {"configurable": {"thread_id": tid}}})
    assert alice.get(f"/threads/{tid}/state").json() == before
    assert alice.get(f"/threads/{tid2}/state").json()["values"][0]["content"] == "for tid2"


def test_public_assistants_are_readable_not_writable(base):
    alice, bob = _user(base), _user(base)
    aid = alice.assistant("chatbot", public=True)
    assert bob.get(f"/assistants/{aid}").status_code == 200
    assert aid in [a["assistant_id"] for a in bob.get("/assistants/public/").json()]
    assert aid in [a["assistant_id"] for a in
                   User(base, None).get("/assistants/public/?shared_id=x").json()]
    assert bob.put(f"/assistants/{aid}", json={"name": "x", "config": {}}).status_code == 404
    tid = bob.thread(aid)  # anyone may chat with a public assistant
    _, raw = bob.stream({"thread_id": tid, "input": [{"content": "hi", "type": "human"}]})
    assert parse_sse(raw)[-2][1][0]["type"] == "ai"


def test_deleted_assistant_leaves_orphan_threads(base):
    u = _user(base)
    aid = u.assistant("chatbot")
    tid = u.thread(aid)
    assert u.delete(f"/assistants/{aid}").json() == {"status": "ok"}
    assert u.get(f"/assistants/{aid}").status_code == 404
    assert aid not in [a["assistant_id"] for a in u.get("/assistants/").json()]
    assert u.get(f"/threads/{tid}").status_code == 200
    r = u.get(f"/threads/{tid}/state")
    assert (r.status_code, r.json()) == (400, {"detail": "Thread has no assistant"})
    assert u.post("/runs/stream", json={"thread_id": tid, "input": []}).status_code == 404
    # re-attach to another assistant (the UI's OrphanChat), then it works
    aid2 = u.assistant("chatbot")
    assert u.put(f"/threads/{tid}", json={"name": "t", "assistant_id": aid2}).status_code == 200
    assert u.get(f"/threads/{tid}/state").status_code == 200
    assert u.delete(f"/threads/{tid}").json() == {"status": "ok"}
    assert u.get(f"/threads/{tid}").status_code == 404
    assert u.delete(f"/threads/{uuid.uuid4()}").json() == {"status": "ok"}


# ------------------------------------------------------------------ bad input


def test_malformed_ids_are_404_or_422_never_500(base):
    u = _user(base)
    for path in ("/assistants/nope", "/assistants/%20x", "/assistants/" + "a" * 600,
                 "/threads/nope", "/threads/..%2F..", "/threads/" + "t" * 600 + "/state",
                 "/threads/$$$/history", "/threads/%00/messages"):
        assert u.get(path).status_code == 404, path
    r = u.put("/assistants/bad%20id", json={"name": "x", "config": {}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "aid"]
    assert u.put("/threads/" + "x" * 300, json={"name": "x", "assistant_id": "y"}
                 ).status_code == 422


def test_bad_input_is_a_clear_error_and_changes_nothing(base):
    u = _user(base)
    aid = u.assistant("chatbot")
    tid = u.thread(aid)
    u.stream({"thread_id": tid, "input": [{"content": "hi", "type": "human"}]})
    before = u.get(f"/threads/{tid}/history").json()
    r = u.post("/assistants", json={"config": {}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"]
    assert r.json()["detail"][0]["msg"] == "Field required"
    r = u.post("/assistants", json={"name": "x", "config": {"configurable": {
        "type==agent/tools": [{"type": "ddg_search", "description": "wrong"}, "Nonsense"]}}})
    assert r.status_code == 422 and [e["loc"][-1] for e in r.json()["detail"]] == \
        ["description", 1]
    cases = [
        ("/runs/stream", {"thread_id": tid, "input": [{"content": "x", "type": "bogus"}]}),
        ("/runs/stream", {"input": []}),
        ("/runs/stream", {"thread_id": tid, "input": {"foo": 1}}),
        ("/runs/stream", {"thread_id": tid, "input": {"messages": [{"content": "x"}]}}),
        ("/runs", {"thread_id": tid, "input": "just text"}),
        (f"/threads/{tid}/state", {"values": {"foo": []}}),
        (f"/threads/{tid}/state", {"values": [{"type": "human", "content": 5}]}),
        (f"/threads/{tid}/messages", {"messages": "x"}),
        ("/threads", {"name": "x"}),
    ]
    for path, body in cases:
        r = u.post(path, json=body)
        assert r.status_code == 422, (path, body, r.status_code, r.text)
        assert "detail" in r.json()
    r = u.post("/runs/stream", content=b"{not json", headers={"content-type":
                                                              "application/json"})
    assert r.status_code == 422
    r = u.post("/threads", json={"name": "x", "assistant_id": str(uuid.uuid4())})
    assert (r.status_code, r.json()) == (404, {"detail": "Assistant not found"})
    for config in ("not json", json.dumps({"configurable": {}}),
                   json.dumps({"configurable": {"assistant_id": aid, "thread_id": tid}})):
        r = u.post("/ingest", files=[("files", ("x.txt", b"x", "text/plain"))],
                   data={"config": config})
        assert r.status_code == 422, config
    r = u.post("/ingest", files=[("files", ("x.bin", bytes(range(256)) * 4,
                                            "application/octet-stream"))],
               data={"config": json.dumps({"configurable": {"assistant_id": aid}})})
    assert r.status_code == 415 and "unsupported file type" in r.json()["detail"]
    r = u.post("/ingest", files=[("files", ("x.pdf", b"%PDF-1.4 broken", "application/pdf"))],
               data={"config": json.dumps({"configurable": {"assistant_id": aid}})})
    assert r.status_code == 415
    assert u.post("/ingest", data={"config": "{}"}).status_code == 422  # no files
    # a fresh thread run with null input: an error event (OpenGPTs: "Received no input")
    tid2 = u.thread(aid)
    _, raw = u.stream({"thread_id": tid2, "input": None})
    events = parse_sse(raw)
    assert events[1] == ("error", {"status_code": 400, "message": "Received no input"})
    assert u.get(f"/threads/{tid2}/state").json() == {"values": None, "next": []}
    assert u.get(f"/threads/{tid}/history").json() == before


def test_the_builtin_model_answers_with_a_web_tool_s_results(base, services):
    """The agent with the built-in model (no key) and Wikipedia reaching its stand-in: the
    tool message carries the pages' text, the answer quotes the top results with their titles
    and links, a cut excerpt ending with an ellipsis."""
    u = _user(base)
    aid = u.assistant("agent", **{"type==agent/tools": [{"type": "wikipedia"}]})
    tid = u.thread(aid)
    _, raw = u.stream({"thread_id": tid, "input": [
        {"content": "search wikipedia for Alan Turing", "type": "human"}]})
    state = u.get(f"/threads/{tid}/state").json()["values"]
    assert [m["type"] for m in state] == ["human", "ai", "tool", "ai"]
    assert state[1]["tool_calls"][0]["name"] == "wikipedia"
    assert state[2]["status"] == "success" and state[2]["content"].startswith("Alan Mathison")
    answer = state[3]["content"].splitlines()
    assert answer[0] == "Here is what I found:"
    assert answer[1].startswith("1. Alan Turing (https://en.wikipedia.org/wiki/Alan_Turing): ")
    assert answer[1].endswith("…")
    assert answer[3].startswith("3. Turing machine (https://en.wikipedia.org/wiki/Turing_machine)")
    sent = [q for p, q in services.requests if p == "/w/api.php"][-1]
    assert sent["gsrsearch"] == "search wikipedia for Alan Turing"


def test_an_action_server_s_action_is_a_tool_the_agent_calls(base, services):
    """The assistant's Action Server entry (url, api_key): the agent is offered the server's
    actions, the built-in model calls get_forecast, the action answers through the run."""
    u = _user(base)
    aid = u.assistant("agent", **{"type==agent/tools": [{
        "type": "action_server_by_sema4ai",
        "config": {"url": services.url, "api_key": "as-test"}}]})
    tid = u.thread(aid)
    u.stream({"thread_id": tid, "input": [{"content": "what is the forecast for Oslo?",
                                           "type": "human"}]})
    state = u.get(f"/threads/{tid}/state").json()["values"]
    assert [m["type"] for m in state] == ["human", "ai", "tool", "ai"]
    assert state[1]["tool_calls"][0]["name"] == "get_forecast"
    assert state[2]["status"] == "success" and state[2]["content"].startswith("Sunny in ")
    assert state[3]["content"].startswith("Here is what I found: Sunny in ")
