"""The OpenGPTs web tools against stand-ins on loopback that speak each service's real wire
format (tests/fake_services.py): what each gives back (content as OpenGPTs shapes it, titles
and links in the artifact), a slow answer (the tool's timeout) and an error status, both
coming back as a tool message the agent reads; the settings (ACTORLOG_TOOLS); hybrid
retrieval with an embeddings stand-in; the built-in model quoting results."""

from __future__ import annotations

import asyncio
import json

import pytest

from actors.gpts import tools
from actors.gpts.messages import for_model, tool_message
from actors.gpts.settings import ToolSettings
from tests.conftest import WEB_TOOLS
from runtime.settings import ConfigError

pytestmark = pytest.mark.heavy  # a stand-in server on loopback

KEYS = {"search_tavily": "tvly-test", "search_tavily_answer": "tvly-test",
        "you_search": "ydc-test", "sec_filings_kai_ai": "kay-test",
        "press_releases_kai_ai": "kay-test", "dall_e": "sk-test"}


@pytest.fixture(scope="module")
def fake():
    from tests.fake_services import FakeServices

    server = FakeServices(slow=3.0).start()
    yield server
    server.stop()


def settings_for(fake, timeout: float = 5.0, **more) -> ToolSettings:
    config = {t: {"base_url": fake.url + ("/v1" if t == "dall_e" else ""),
                  "api_key": KEYS.get(t), "timeout": timeout} for t in WEB_TOOLS}
    for t in config:
        if config[t]["api_key"] is None:
            del config[t]["api_key"]
    return ToolSettings.load({"ACTORLOG_TOOLS": json.dumps(config), **more})


def ask(tool_type: str, query: str, settings: ToolSettings):
    return asyncio.run(tools.answer(tools.TOOLS[tool_type], {"query": query}, settings))


def titles(artifact) -> list[str]:
    return [d["metadata"]["title"] for d in artifact]


def test_wikipedia_reads_the_mediawiki_action_api(fake):
    content, artifact, status = ask("wikipedia", "Alan Turing", settings_for(fake))
    assert status == "success"
    assert content.startswith("Alan Mathison Turing was an English mathematician")
    assert "\n\nThe Turing test, originally" in content  # retriever tool: texts, blank lines
    assert titles(artifact) == ["Alan Turing", "Turing test", "Turing machine"]  # by rank
    assert artifact[0]["metadata"]["source"] == "https://en.wikipedia.org/wiki/Alan_Turing"
    path, query = fake.requests[-1]
    assert path == "/w/api.php" and query["action"] == "query"
    assert query["gsrsearch"] == "Alan Turing" and query["gsrlimit"] == "3"


def test_arxiv_reads_the_atom_feed_through_the_arxiv_package(fake):
    content, artifact, status = ask("arxiv", "turing machines", settings_for(fake))
    assert status == "success"
    first = content.split("\n\n")[0]
    assert first.splitlines()[:3] == ["Published: 2024-01-01", "Title: Alan Turing",
                                      "Authors: Ada Lovelace, Charles Babbage"]
    assert first.splitlines()[3].startswith("Summary: Alan Mathison Turing was")
    assert artifact[0]["metadata"]["source"] == "http://arxiv.org/abs/2401.00000v1"
    assert fake.requests[-1][1]["search_query"] == "turing machines"


def test_pubmed_reads_e_utilities(fake):
    content, artifact, status = ask("pubmed", "turing", settings_for(fake))
    assert status == "success"
    assert content.startswith("BACKGROUND: Alan Mathison Turing")
    assert "CONCLUSIONS: Further study is needed." in content
    assert titles(artifact)[0] == "Alan Turing: a review."
    assert artifact[0]["metadata"]["source"] == "https://pubmed.ncbi.nlm.nih.gov/31000000/"
    assert artifact[0]["metadata"]["Published"] == "2021-Mar"
    assert [p for p, _ in fake.requests[-2:]] == ["esearch", "efetch"]
    assert fake.requests[-1][1]["id"] == "31000000,31000001,31000002"


def test_tavily_gives_its_results_and_its_short_answer(fake):
    content, artifact, status = ask("search_tavily", "turing", settings_for(fake))
    assert status == "success"
    assert content[0] == {"title": "Alan Turing", "url": "https://example.org/0",
                          "content": content[0]["content"], "score": 0.9}
    assert artifact["response_time"] == 0.42  # the raw answer
    assert fake.requests[-1][1]["authorization"] == "Bearer tvly-test"
    answer, _, status = ask("search_tavily_answer", "who was turing", settings_for(fake))
    assert (answer, status) == ("Alan Turing was an English mathematician.", "success")
    assert fake.requests[-1][1]["include_answer"] is True


def test_duckduckgo_reads_its_results_page_without_the_ads(fake):
    content, artifact, status = ask("ddg_search", "turing", settings_for(fake))
    assert status == "success"
    assert content.startswith("Alan Mathison Turing was")  # snippets joined by spaces
    assert "Buy now" not in content
    assert artifact[0]["metadata"]["source"] == "https://example.org/Alan_Turing"


def test_you_and_kay_ai(fake):
    content, artifact, status = ask("you_search", "turing", settings_for(fake))
    assert status == "success" and len(artifact) == 6  # 3 hits x 2 snippets
    assert artifact[0]["metadata"]["source"] == "https://example.org/you/0"
    _, artifact, status = ask("sec_filings_kai_ai", "turing revenue", settings_for(fake))
    sent = fake.requests[-1][1]
    assert status == "success" and sent["key"] == "kay-test"
    assert sent["dataset_config"] == {"dataset_id": "company", "data_types": ["10-K", "10-Q"]}
    assert sent["retrieval_config"] == {"num_context": 3}
    assert artifact[0]["page_content"].startswith("Alan Turing: ")
    assert artifact[0]["metadata"]["source"] == "https://www.sec.gov/standin/0"
    ask("press_releases_kai_ai", "turing news", settings_for(fake))
    assert fake.requests[-1][1]["dataset_config"]["data_types"] == ["PressRelease"]


def test_dall_e_through_the_openai_sdk(fake):
    content, artifact, status = ask("dall_e", "a robot painting", settings_for(fake))
    assert (content, status) == ("https://images.example/standin.png", "success")
    sent = fake.requests[-1][1]
    assert (sent["size"], sent["quality"], sent["model"]) == ("1024x1024", "hd", "dall-e-3")


@pytest.mark.parametrize("tool_type", WEB_TOOLS)
def test_a_slow_service_is_a_tool_message_not_a_hang(fake, tool_type):
    content, artifact, status = ask(tool_type, "slow question", settings_for(fake, 0.5))
    assert status == "error", content
    assert "did not answer within 0.5 s" in content
    assert content.startswith(f"The {tools.TOOLS[tool_type].title} tool failed")


@pytest.mark.parametrize("tool_type", WEB_TOOLS)
def test_an_error_status_is_a_tool_message(fake, tool_type):
    content, _, status = ask(tool_type, "broken question", settings_for(fake))
    assert status == "error" and "503" in content, content


def test_an_answer_past_its_bound_is_cut_off_not_buffered(fake):
    content, _, status = ask("wikipedia", "huge question", settings_for(fake))
    assert status == "error" and "answer passed 4 MiB" in content


def test_nothing_found_and_a_refused_key(fake):
    content, artifact, status = ask("wikipedia", "nothing at all", settings_for(fake))
    assert (content, artifact, status) == ("No good result was found.", [], "success")
    config = {"search_tavily": {"base_url": fake.url, "api_key": "wrong"}}
    content, _, status = ask("search_tavily", "turing",
                             ToolSettings.load({"ACTORLOG_TOOLS": json.dumps(config)}))
    assert status == "error" and "Tavily refused the search" in content


def test_a_tool_turned_off_or_without_its_key_says_so(fake, monkeypatch):
    monkeypatch.delenv("TAVILY_API_KEY", raising=False)
    off = ToolSettings.load({"ACTORLOG_TOOLS": json.dumps({"wikipedia": {"enabled": False}})})
    content, _, status = ask("wikipedia", "turing", off)
    assert status == "error" and "turned off on this server" in content
    content, _, status = ask("search_tavily", "turing", off)
    assert status == "error" and "needs TAVILY_API_KEY, which is not configured" in content
    monkeypatch.setenv("TAVILY_API_KEY", "tvly-test")  # the variable OpenGPTs reads
    config = {"search_tavily": {"base_url": fake.url}}
    _, _, status = ask("search_tavily", "turing",
                       ToolSettings.load({"ACTORLOG_TOOLS": json.dumps(config)}))
    assert status == "success"


def test_tools_settings_are_json_or_a_file_and_are_checked(tmp_path):
    path = tmp_path / "tools.json"
    path.write_text(json.dumps({"arxiv": {"enabled": False, "timeout": 3}}))
    loaded = ToolSettings.load({"ACTORLOG_TOOLS": str(path)})
    assert loaded.tool("arxiv").enabled is False and loaded.tool("arxiv").timeout == 3
    assert loaded.tool("wikipedia").enabled is None  # not named: defaults
    for bad, words in (('{"wikipedai": {}}', "unknown tool types"),
                       ('{"arxiv": {"timeout": -1}}', "greater than 0"),
                       ('{"arxiv": {"colour": 1}}', "Extra inputs"),
                       ("/no/such/file.json", "neither JSON nor a readable file"),
                       ("{not json", "not JSON")):
        with pytest.raises(ConfigError, match="ACTORLOG_TOOLS") as err:
            ToolSettings.load({"ACTORLOG_TOOLS": bad})
        assert words in str(err.value)


def test_hybrid_retrieval_finds_what_bm25_alone_misses(fake):
    from actors.gpts.tools import GptsTools

    chunks = [{"id": f"c{i}", "text": t} for i, t in enumerate([
        "The quarterly report covers revenue and costs.",
        "Our fleet has forty cars, serviced every spring.",
        "The office opens at nine in the morning.",
        "Revenue grew in the third quarter."])]
    bm25 = GptsTools(ToolSettings.load({"ACTORLOG_TOOLS": "{}"}))
    assert bm25.embedder is None
    assert "cars" not in asyncio.run(bm25.search(chunks, "automobile count", 1))[0]["text"]
    hybrid = GptsTools(ToolSettings.load({"ACTORLOG_EMBEDDINGS": json.dumps(
        {"base_url": fake.url + "/v1", "model": "standin-embed", "batch": 3})}))

    async def searches() -> None:  # one loop, as in a host (the client keeps its pool)
        found = await hybrid.search(chunks, "automobile count", 2)
        assert found[0]["id"] == "c1"  # only the vectors know an automobile is a car
        made = [b for p, b in fake.requests if p == "/v1/embeddings"]
        assert [len(b["input"]) for b in made[-2:]] == [3, 2]  # 4 chunks + the query, by 3
        before = hybrid.embedder.requests
        assert (await hybrid.search(chunks, "revenue", 1))[0]["id"] in ("c0", "c3")
        assert hybrid.embedder.requests == before + 1  # the chunks' vectors were kept
        # an embeddings endpoint that fails: BM25 for that search, not a failed run
        broken = await hybrid.search(chunks + [{"id": "x", "text": "broken"}], "revenue", 1)
        assert broken[0]["id"] in ("c0", "c3")

    asyncio.run(searches())


def test_the_builtin_model_quotes_the_top_results_with_titles_and_links(fake):
    from llm.builtin import BuiltinProvider
    from llm.port import ModelRequest

    content, artifact, _ = ask("wikipedia", "Alan Turing", settings_for(fake))
    message = tool_message("wikipedia", "call_1", content, "success", artifact)
    shown = for_model(message)
    assert shown.startswith("[1] Alan Turing\nhttps://en.wikipedia.org/wiki/Alan_Turing\n")

    async def reply(result: str) -> str:
        model = BuiltinProvider()
        text = ""
        async for delta in model.stream(ModelRequest([
                {"role": "user", "content": "search wikipedia for Alan Turing"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "call_1", "name": "wikipedia", "args": {"query": "Alan Turing"}}]},
                {"role": "tool", "tool_call_id": "call_1", "name": "wikipedia",
                 "content": result}])):
            text += delta.text or ""
        return text

    text = asyncio.run(reply(shown))
    lines = text.splitlines()
    assert lines[0] == "Here is what I found:"
    assert lines[1].startswith("1. Alan Turing (https://en.wikipedia.org/wiki/Alan_Turing): "
                               "Alan Mathison Turing was")
    assert lines[1].endswith("…")  # a cut excerpt
    assert lines[2].startswith("2. Turing test (https://en.wikipedia.org/wiki/Turing_test)")
    assert len(lines) == 4
    failed, _, _ = ask("wikipedia", "broken question", settings_for(fake))
    assert asyncio.run(reply(failed)) == ("I could not get an answer from the tool. The "
                                          "Wikipedia tool failed: the service answered 503 "
                                          "Service Unavailable.")


def test_connery_s_actions_are_tools_of_their_own(fake, monkeypatch):
    """The runner's actions listed (x-api-key) as tools named by id with their inputs as
    arguments; one run with the model's arguments ({"input": ...}); a refused input and an
    unreachable runner come back as tool messages."""
    from actors.gpts.tools import GptsTools

    monkeypatch.setenv("CONNERY_RUNNER_API_KEY", "connery-test")
    kit = GptsTools(ToolSettings.load({"ACTORLOG_TOOLS": json.dumps(
        {"ai_action_runner_by_connery": {"base_url": fake.url, "timeout": 2}})}))

    async def scenario() -> None:
        actions = await kit.actions(["ai_action_runner_by_connery"], {})
        send = actions["CAF979E6D2FF4C8B946EEBAFCB3BA475"]
        assert send.description == "Send email: Send an email to the recipient."
        assert send.parameters["required"] == ["recipient", "subject"]
        content, _, status = await kit.act(send, {"recipient": "a@b.c", "subject": "hi"})
        assert (json.loads(content), status) == ({"messageId": "msg-1"}, "success")
        assert fake.requests[-1] == (
            "/v1/actions/CAF979E6D2FF4C8B946EEBAFCB3BA475/run",
            {"input": {"recipient": "a@b.c", "subject": "hi"}})
        content, _, status = await kit.act(send, {"subject": "hi"})
        assert status == "error" and "400" in content
        content, _, status = await kit.act(send, {"recipient": "slow", "subject": "x"})
        assert status == "error" and "did not answer within 2 s" in content

    asyncio.run(scenario())
    monkeypatch.delenv("CONNERY_RUNNER_URL", raising=False)
    none = GptsTools(ToolSettings.load({"ACTORLOG_TOOLS": "{}"}))
    placeholder = tools.TOOLS["ai_action_runner_by_connery"]
    content, _, status = asyncio.run(none.answer(placeholder, {}))
    assert status == "error" and "needs CONNERY_RUNNER_URL, which is not configured" in content
    assert asyncio.run(none.actions(["ai_action_runner_by_connery"], {})) == {}


def test_the_action_server_s_actions_come_from_its_openapi_document(fake):
    """Url and key from the assistant's own tool entry (OpenGPTs' ActionServerConfig); the
    POST operations under /api/actions/ are the tools, called with a bearer token."""
    from actors.gpts.tools import GptsTools

    kit = GptsTools(ToolSettings.load({"ACTORLOG_TOOLS": "{}"}))
    entries = {"action_server_by_sema4ai": {"url": fake.url, "api_key": "as-test"}}

    async def scenario() -> None:
        actions = await kit.actions(["action_server_by_sema4ai"], entries)
        assert list(actions) == ["get_forecast"]
        forecast = actions["get_forecast"]
        assert forecast.parameters == {"type": "object", "required": ["city"], "properties": {
            "city": {"type": "string", "title": "City"}}}
        content, _, status = await kit.act(forecast, {"city": "Oslo"})
        assert (content, status) == ("Sunny in Oslo, 21 degrees.", "success")
        assert fake.requests[-1][1]["authorization"] == "Bearer as-test"

    asyncio.run(scenario())
    placeholder = tools.TOOLS["action_server_by_sema4ai"]
    content, _, status = asyncio.run(kit.answer(placeholder, {}, None))
    assert status == "error" and "url and api_key in the assistant's settings" in content
