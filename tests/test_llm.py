"""The model port: the built-in model's rules and determinism, streaming accumulation, partial
tool-call arguments, schema checks, routing by name, and the OpenAI-compatible provider against
a stand-in server that streams real chat-completion chunks (text, tool-call deltas, usage)."""

from __future__ import annotations

import asyncio
import json

import pytest

from llm.port import Model, ModelError, ModelRequest, ToolSpec, parse_partial_json
from llm.router import ModelRouter, parse_models_config
from tests.fake_openai import FakeOpenAI


def run(coro):
    return asyncio.run(coro)


def builtin() -> Model:
    return ModelRouter().model(None)


def test_builtin_streams_word_by_word_and_is_deterministic():
    seen: list[str] = []
    req = ModelRequest([{"role": "user", "content": "hi! my name is Bob"}])
    result = run(builtin().complete(req, lambda p: seen.append(p.text)))
    assert result.text == "Hi Bob, nice to meet you!"
    assert seen[:3] == ["Hi", "Hi ", "Hi Bob,"] and seen[-1] == result.text
    assert run(builtin().complete(req)).text == result.text
    assert result.usage["total_tokens"] == result.usage["input_tokens"] + \
        result.usage["output_tokens"]


def test_builtin_remembers_a_name_and_greets():
    msgs = [{"role": "user", "content": "hi! my name is bob"},
            {"role": "assistant", "content": "Hi bob, nice to meet you!"},
            {"role": "user", "content": "whats my name? respond in spanish"}]
    assert run(builtin().complete(ModelRequest(msgs))).text == "Tu nombre es bob."
    assert "demonstration model" in run(builtin().complete(
        ModelRequest([{"role": "user", "content": "tell me about boats"}]))).text


def test_builtin_calls_a_tool_when_asked_and_answers_its_result():
    tools = [ToolSpec("wikipedia", "Look up a topic on Wikipedia.")]
    partials: list[dict] = []
    req = ModelRequest([{"role": "user", "content": "search wikipedia for otters"}], tools)
    result = run(builtin().complete(req, lambda p: partials.append(
        p.tool_calls[0].args if p.tool_calls else None)))
    assert [c.name for c in result.tool_calls] == ["wikipedia"]
    assert result.tool_calls[0].args == {"query": "search wikipedia for otters"}
    assert partials[0] == {"query": ""} and partials[-1] == result.tool_calls[0].args
    follow = req.messages + [
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": result.tool_calls[0].id, "name": "wikipedia", "args": {}}]},
        {"role": "tool", "tool_call_id": result.tool_calls[0].id, "content": "Otters swim."}]
    answer = run(builtin().complete(ModelRequest(follow, tools)))
    assert answer.tool_calls == [] and "Otters swim." in answer.text
    # no tool asked for: a plain answer even with tools
    plain = run(builtin().complete(ModelRequest([{"role": "user", "content": "hello"}], tools)))
    assert plain.tool_calls == [] and plain.text.startswith("Hello")


def test_builtin_fills_a_json_schema():
    schema = {"type": "object", "required": ["action", "n"], "properties": {
        "action": {"enum": ["speak", "leave"]}, "n": {"type": "integer", "minimum": 2},
        "say": {"type": "string"}}}
    result = run(builtin().complete(ModelRequest([{"role": "user", "content": "go"}],
                                                 json_schema=schema)))
    assert result.object == {"action": "speak", "n": 2, "say": "go"}


def test_partial_json_parses_as_far_as_it_goes():
    assert parse_partial_json('{"query": "wea') == {"query": "wea"}
    assert parse_partial_json('{"query": "') == {"query": ""}
    assert parse_partial_json('{"a": [1, 2') == {"a": [1, 2]}
    assert parse_partial_json("") == {} and parse_partial_json("{") == {}
    assert parse_partial_json('{"a": "b\\"c') == {"a": 'b"c'}
    assert parse_partial_json('{"a": {"b": "cut') == {"a": {"b": "cut"}}  # was {} before
    assert parse_partial_json('[1, 2') == {} and parse_partial_json("   ") == {}


def test_router_maps_names_and_refuses_bad_config(tmp_path):
    router = ModelRouter({"providers": {"slow": {"type": "builtin", "delay": 0.01}},
                          "aliases": {"GPT 4o": "slow"}})
    assert router.model("GPT 4o").provider.name == "slow"
    assert router.model("GPT 3.5 Turbo").provider.name == "builtin"
    with pytest.raises(ValueError, match="not configured"):
        ModelRouter({"aliases": {"x": "missing"}})
    with pytest.raises(ValueError, match="unknown type"):
        ModelRouter({"providers": {"p": {"type": "bogus"}}})
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"default": "builtin"}))
    assert parse_models_config(str(path)) == {"default": "builtin"}
    assert parse_models_config("") == {}


@pytest.fixture(scope="module")
def standin():
    server = FakeOpenAI().start()
    yield server
    server.stop()


def openai_model(standin, retries: int = 0) -> Model:
    return ModelRouter({"providers": {"oa": {"type": "openai", "base_url": standin.base_url,
                                             "api_key": "sk-test", "model": "gpt-standin",
                                             "max_retries": retries}},
                        "default": "oa"}).model("anything")


def _sent(standin, text: str) -> int:
    return sum(r["messages"][-1]["content"] == text for r in standin.requests)


def test_one_retry_policy_tries_a_failed_call_again_up_to_the_providers_attempts(standin):
    """The port's policy (llm/port.py) retries; the openai SDK under it does not: a call that
    always fails reaches the server 1 + max_retries times, never (1 + 2) x 3."""
    with pytest.raises(ModelError) as failed:
        run(openai_model(standin, retries=2).complete(ModelRequest(
            [{"role": "user", "content": "fail please (policy)"}])))
    assert _sent(standin, "fail please (policy)") == 3
    assert len(failed.value.failures) == 3 and all("500" in f for f in failed.value.failures)
    with pytest.raises(ModelError):
        run(openai_model(standin).complete(ModelRequest(
            [{"role": "user", "content": "fail please (no retries)"}])))
    assert _sent(standin, "fail please (no retries)") == 1
    # a failure that passes: the answer, and what failed before it
    result = run(openai_model(standin, retries=2).complete(ModelRequest(
        [{"role": "user", "content": "fail once please"}])))
    assert result.text == "Hello from the stand-in model."
    assert _sent(standin, "fail once please") == 2 and len(result.failures) == 1


def test_an_answer_cut_after_it_began_streaming_is_not_tried_again(standin):
    """A client that saw half an answer must not see it start over: no retry once a delta
    reached on_delta (the failure is the caller's to report)."""
    seen: list[str] = []
    with pytest.raises(ModelError) as failed:
        run(openai_model(standin, retries=2).complete(
            ModelRequest([{"role": "user", "content": "cut please"}]),
            on_delta=lambda partial: seen.append(partial.text)))
    assert seen and seen[-1] == "Half an"
    assert _sent(standin, "cut please") == 1 and len(failed.value.failures) == 1
    # without a listener nothing was shown: tried again
    with pytest.raises(ModelError):
        run(openai_model(standin, retries=1).complete(
            ModelRequest([{"role": "user", "content": "cut please"}])))
    assert _sent(standin, "cut please") == 3


def test_openai_compatible_streams_text_with_usage(standin):
    seen: list[str] = []
    result = run(openai_model(standin).complete(
        ModelRequest([{"role": "system", "content": "be brief"},
                      {"role": "user", "content": "hi"}]), lambda p: seen.append(p.text)))
    assert result.text == "Hello from the stand-in model."
    assert seen[0] == "Hello" and seen[-1] == result.text and len(seen) == 5
    assert result.usage == {"input_tokens": 7, "output_tokens": 5, "total_tokens": 12}
    sent = standin.requests[-1]
    assert sent["model"] == "gpt-standin" and sent["stream"] is True
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}


def test_openai_compatible_accumulates_tool_call_deltas(standin):
    partials = []
    tools = [ToolSpec("get_weather", "Weather for a place.")]
    result = run(openai_model(standin).complete(
        ModelRequest([{"role": "user", "content": "weather in sf?"}], tools),
        lambda p: partials.append(dict(p.tool_calls[0].args) if p.tool_calls else None)))
    assert [(c.id, c.name, c.args) for c in result.tool_calls] == [
        ("call_standin1", "get_weather", {"query": "weather in sf?"})]
    assert partials[0] == {} and partials[-1] == {"query": "weather in sf?"}
    assert standin.requests[-1]["tools"][0]["function"]["name"] == "get_weather"
    # the tool result goes back in OpenAI's shape
    follow = [{"role": "user", "content": "weather in sf?"},
              {"role": "assistant", "content": "", "tool_calls": [
                  {"id": "call_standin1", "name": "get_weather", "args": {"query": "sf"}}]},
              {"role": "tool", "tool_call_id": "call_standin1", "content": "sunny"}]
    answer = run(openai_model(standin).complete(ModelRequest(follow, tools)))
    assert answer.text == "The tool said: sunny"
    wire = standin.requests[-1]["messages"]
    assert wire[1]["tool_calls"][0]["function"] == {"name": "get_weather",
                                                     "arguments": '{"query": "sf"}'}
    assert wire[2] == {"role": "tool", "content": "sunny", "tool_call_id": "call_standin1"}


def test_openai_compatible_json_schema_and_errors(standin):
    schema = {"type": "object", "required": ["query"],
              "properties": {"query": {"type": "string"}}}
    result = run(openai_model(standin).complete(
        ModelRequest([{"role": "user", "content": "find otters"}], json_schema=schema)))
    assert result.object == {"query": "find otters"}
    assert standin.requests[-1]["response_format"]["json_schema"]["schema"] == schema
    with pytest.raises(ModelError, match="does not fit the schema"):
        run(openai_model(standin).complete(ModelRequest(
            [{"role": "user", "content": "x"}],
            json_schema={"type": "object", "required": ["other"]})))
    with pytest.raises(ModelError, match="oa failed"):
        run(openai_model(standin).complete(ModelRequest(
            [{"role": "user", "content": "fail please"}])))


def test_unreachable_provider_is_a_model_error():
    model = ModelRouter({"providers": {"oa": {"type": "openai", "max_retries": 0,
                                              "base_url": "http://127.0.0.1:9/v1",
                                              "api_key": "k", "model": "m", "timeout": 2}},
                         "default": "oa"}).model(None)
    with pytest.raises(ModelError, match="oa failed"):
        run(model.complete(ModelRequest([{"role": "user", "content": "hi"}])))
