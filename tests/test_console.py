"""The service's face in a real headless Chromium (Debian's chromium, driven by Playwright for
Python): the landing page, /docs with the network blocked, and the console: the token asked
for and a wrong one refused, an episode started and watched turn by turn, the slider back to
an earlier state, a fork at turn 2 with another model run, a chat and a thread read.
Screenshots go to the test's temporary directory (ACTORLOG_SCREENSHOTS keeps them)."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from urllib.parse import urlparse

import httpx
import pytest
import websockets.sync.client as ws

from tests.conftest import OPERATOR, kill_hosts, poll, start_inprocess_server

pytestmark = pytest.mark.heavy
#: the machine has 2 cores, shared here with a browser and the episodes of earlier tests
http = httpx.Client(timeout=60)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = OPERATOR["Authorization"].split(" ", 1)[1]


@pytest.fixture(scope="module")
def site(ray_session, tmp_path_factory):
    models = {"providers": {"slow": {"type": "builtin", "delay": 0.02}},
              "aliases": {"slow-model": "slow"}}
    url, _, client = start_inprocess_server(
        ray_session, str(tmp_path_factory.mktemp("console")), models=json.dumps(models))
    yield url, client
    kill_hosts(client)


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM, "Debian's chromium is needed (scripts/dev installs it)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture
def page(browser, site, tmp_path):
    """A page whose network is loopback only: anything else (a CDN) is refused."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    blocked: list[str] = []

    def only_loopback(route):
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
            return route.continue_()
        blocked.append(route.request.url)
        return route.abort()

    context.route("**/*", only_loopback)
    p = context.new_page()
    p.blocked = blocked
    p.errors = []  # what the page's own code threw or logged as an error (a refused request
    # is logged by the browser itself: the tests look at what the page shows of it)
    p.on("pageerror", lambda exc: p.errors.append(str(exc)))
    p.on("console", lambda m: p.errors.append(m.text) if m.type == "error" and not
         m.text.startswith("Failed to load resource") else None)
    p.shots = os.environ.get("ACTORLOG_SCREENSHOTS") or str(tmp_path)
    yield p
    context.close()
    assert p.errors == []


def _shot(page, name: str) -> None:
    os.makedirs(page.shots, exist_ok=True)
    page.screenshot(path=os.path.join(page.shots, f"{name}.png"))


def test_the_landing_page_and_the_docs_work_with_no_network(site, page):
    base, _ = site
    page.goto(base + "/")
    for family in ("OpenGPTs", "Agent chat", "Sotopia", "Avatar sessions"):
        assert page.get_by_text(family, exact=True).count() == 1
    assert "writes work now" in page.content()
    page.click("text=The console")
    assert page.url.endswith("/console")
    page.goto(base + "/docs")
    page.wait_for_selector(".opblock", timeout=30_000)  # Swagger UI rendered the operations
    assert page.locator(".opblock").count() > 50
    assert page.blocked == []  # nothing was asked of another host
    _shot(page, "docs")
    page.goto(base + "/redoc")
    page.wait_for_selector("text=actorlog", timeout=30_000)
    assert page.blocked == []


def test_a_missing_or_wrong_token_is_refused(site, page):
    base, _ = site
    assert http.get(base + "/v1/catalog").status_code == 401
    assert http.get(base + "/v1/catalog", headers={"Authorization": "Bearer nope"}
                     ).status_code == 401
    page.goto(base + "/console")
    page.fill("#token", "not-the-token")
    page.click("#login-form button")
    _until(page, "document.querySelector('#login-error').textContent.length > 0", 30)
    assert "not the operator token" in page.inner_text("#login-error")
    assert page.is_hidden("#app")


def _sign_in(page, base: str) -> None:
    page.goto(base + "/console")
    page.fill("#token", TOKEN)
    page.click("#login-form button")
    page.wait_for_selector("#kinds button[data-kind='sotopia_episode']")


def _until(page, expression: str, seconds: float) -> None:
    """Until ``expression`` holds in the page, looked at every 100 ms (bounded); if it never
    does, the failure says what the page showed as an error."""
    from playwright.sync_api import TimeoutError as PageTimeout

    try:
        page.wait_for_function(expression, polling=100, timeout=seconds * 1000)
    except PageTimeout:
        raise AssertionError(f"{expression!r} never held; the page's error: "
                             f"{page.inner_text('#error')!r}, {page.errors}") from None


def _events(page) -> list[str]:
    return page.eval_on_selector_all(
        "#events li", "items => items.map(i => i.firstChild.textContent.trim())")


def test_start_watch_rewind_and_fork_an_episode(site, page):
    base, client = site
    _sign_in(page, base)
    page.click("#start-episode")
    page.select_option("#dialog select >> nth=3", "slow-model")  # the model
    page.fill("#dialog input[type=number]", "6")
    page.click("#dialog button[value=ok]")
    page.wait_for_selector("#entity-title:has-text('sotopia_episode')")
    episode_id = page.inner_text("#entity-title").split(" ", 1)[1]
    # turns arrive live, through the log's tail
    _until(page, "document.querySelectorAll('#events li').length >= 4", 30)
    first = len(_events(page))
    _until(page, "[...document.querySelectorAll('#events li')]"
                 ".some(li => li.textContent.startsWith('evaluated'))", 90)
    assert len(_events(page)) > first
    assert page.locator("svg.scores rect").count() > 0  # the SOTOPIA-Eval chart
    _shot(page, "episode")
    # back in time: the state as it was after the second turn
    events = client.ref("sotopia_episode", episode_id).events()
    second = [e.seq for e in events if e.type == "turn"][1]
    last = events[-1].seq
    page.focus("#slider")
    page.keyboard.press("Escape")
    page.evaluate("document.activeElement.blur()")
    for _ in range(last - second):
        page.keyboard.press("ArrowLeft")
    _until(page, f"document.querySelector('#version-label').textContent"
                 f".startsWith('{second} of')", 30)
    state = page.inner_text("#state")
    assert '"status": "running"' in state and "as it was at version" in page.inner_text(
        "#state-note")
    assert page.locator("#events li.future").count() == last - second
    assert page.locator("#state .changed").count() >= 1  # what the step back changed
    # fork there with another model for agent 2, and see the fork run
    page.click("#fork")
    page.select_option("#dialog select >> nth=0", "2")
    page.select_option("#dialog select >> nth=1", "builtin")
    page.click("#dialog button[value=ok]")
    _until(page, f"!document.querySelector('#entity-title').textContent"
                 f".endsWith('{episode_id}')", 30)
    fork_id = page.inner_text("#entity-title").split(" ", 1)[1]
    _until(page, "[...document.querySelectorAll('#events li')]"
                 ".some(li => li.textContent.startsWith('evaluated'))", 90)
    types = [e.type for e in client.ref("sotopia_episode", fork_id).events()]
    assert types[second:second + 3] == ["forked", "models_changed", "resumed"]
    first_event = client.ref("sotopia_episode", fork_id).events(1, 1)[0]
    assert first_event.metadata["forked_from"] == {"stream": f"sotopia_episode/{episode_id}",
                                                    "version": second}
    _shot(page, "fork")


def test_a_chat_and_a_thread_read_as_conversations(site, page):
    base, _ = site
    user = {"opengpts_user_id": f"u-{uuid.uuid4().hex[:6]}"}
    aid = http.post(f"{base}/assistants", cookies=user, json={
        "name": "bot", "config": {"configurable": {"type": "chatbot"}}}).json()["assistant_id"]
    tid = http.post(f"{base}/threads", cookies=user, json={"assistant_id": aid,
                                                              "name": "t"}).json()["thread_id"]
    http.post(f"{base}/threads/{tid}/state", cookies=user, json={"values": [
        {"type": "human", "content": "hello from the console test", "id": "m1"}]})
    chat_id = f"chat-{uuid.uuid4().hex[:6]}"
    address = base.replace("http://", "ws://") + f"/chat/{chat_id}"
    with ws.connect(address) as sock:
        sock.send(json.dumps({"type": "client", "message": "what is 2 + 2?",
                              "message_id": "q1"}))
        while json.loads(sock.recv(timeout=60))["type"] != "message_end":
            pass
    _sign_in(page, base)
    page.click("#kinds button[data-kind='thread']")
    page.click(f"#rows tr[data-id='{tid}']")
    page.wait_for_selector("#family-view .turn:has-text('hello from the console test')")
    page.click("#kinds button[data-kind='chat']")
    page.click(f"#rows tr[data-id='{chat_id}']")
    page.wait_for_selector("#family-view .turn:has-text('what is 2 + 2?')")
    poll(lambda: page.locator("#family-view .turn").count(), lambda n: n >= 2, 10)
    assert page.locator("#family-view .turn").count() >= 2
    page.set_viewport_size({"width": 420, "height": 800})  # a narrow window still reads
    assert page.is_visible("#family-view")
    _shot(page, "chat-narrow")


def test_fork_over_http_and_from_python(site):
    base, client = site
    source = client.ref("counter", f"src-{uuid.uuid4().hex[:6]}")
    for amount in (1, 2, 3):
        source.ask({"type": "add", "amount": amount})
    url = f"{base}/v1/actors/counter/{source.id}/fork"
    assert http.post(url, json={"version": 2}).status_code == 401  # the operator's only
    made = http.post(url, json={"version": 2, "id": f"{source.id}-f"}, headers=OPERATOR)
    assert made.status_code == 201, made.text
    assert made.json() == {"kind": "counter", "id": f"{source.id}-f",
                           "forked_from": source.id, "version": 2}
    fork = client.ref("counter", f"{source.id}-f")
    assert fork.state() == (2, source.state(2)[1])
    again = http.post(url, json={"version": 1, "id": fork.id}, headers=OPERATOR)
    assert again.status_code == 409  # an id with events is never overwritten
    assert http.post(url, json={"version": 9}, headers=OPERATOR).status_code == 422
    assert http.post(f"{base}/v1/actors/counter/none/fork", json={"version": 1},
                      headers=OPERATOR).status_code == 404
    from_python = source.fork(3)
    assert from_python.state() == source.state()
    assert from_python.events(1, 1)[0].metadata["forked_from"] == {
        "stream": f"counter/{source.id}", "version": 3}


def test_a_small_batch_started_then_forked_shows_the_paired_difference(site, page):
    _sign_in(page, site[0])
    page.click("#start-batch")
    page.fill("#dialog input[type=number]", "1")
    page.click("#dialog button[value=ok]")
    page.wait_for_selector("#entity-title:has-text('sotopia_batch')")
    _until(page, "document.querySelector('#family-view h3') && document.querySelector("
                 "'#family-view h3').textContent.startsWith('batch finished')", 120)
    page.click("#fork")
    page.fill("#dialog input[type=number]", "2")
    page.click("#dialog button[value=ok]")
    page.wait_for_selector("#family-view p:has-text('forks of batch')", timeout=30_000)
    _until(page, "document.querySelector('#family-view h3').textContent"
                 ".startsWith('batch finished')", 120)
    page.wait_for_selector("#family-view h4:has-text('paired difference')", timeout=30_000)
    assert page.locator("#family-view table.paired tbody tr").count() >= 8  # overall + 7
    _shot(page, "batch-fork")


def test_a_thread_forked_at_a_checkpoint_with_an_edited_message(site):
    base, _ = site
    me, other = ({"opengpts_user_id": f"u-{uuid.uuid4().hex[:6]}"} for _ in range(2))
    aid = http.post(f"{base}/assistants", cookies=me, json={
        "name": "bot", "config": {"configurable": {"type": "chatbot"}}}).json()["assistant_id"]
    tid = http.post(f"{base}/threads", cookies=me, json={"assistant_id": aid,
                                                            "name": "t"}).json()["thread_id"]
    for mid, text in (("m1", "first question"), ("m2", "second question")):
        http.post(f"{base}/threads/{tid}/state", cookies=me, json={"values": [
            {"type": "human", "content": text, "id": mid}]})
    history = http.get(f"{base}/threads/{tid}/history", cookies=me).json()
    first = history[-1]["config"]["configurable"]["checkpoint_id"]  # oldest: m1 alone
    url = f"{base}/threads/{tid}/fork"
    edit = {"checkpoint_id": first, "messages": [
        {"type": "human", "content": "the first question, edited", "id": "m1"}]}
    assert http.post(url, cookies=other, json=edit).status_code == 404  # not theirs
    assert http.post(url, cookies=me, json={"checkpoint_id": "nope"}).status_code == 404
    made = http.post(url, cookies=me, json=edit)
    assert made.status_code == 200, made.text
    fork = made.json()["thread_id"]
    assert fork != tid and made.json()["assistant_id"] == aid
    values = http.get(f"{base}/threads/{fork}/state", cookies=me).json()["values"]
    assert [(m["id"], m["content"]) for m in values] == [("m1", "the first question, edited")]
    before = http.get(f"{base}/threads/{tid}/state", cookies=me).json()["values"]
    assert [m["content"] for m in before] == ["first question", "second question"]
    assert fork in [t["thread_id"] for t in http.get(f"{base}/threads/", cookies=me).json()]


def test_an_episode_stopped_from_the_console_api_stays_stopped(site):
    base, client = site
    agents = http.get(f"{base}/agents").json()
    env = http.get(f"{base}/scenarios").json()[0]["pk"]
    pk = http.post(f"{base}/simulate", json={
        "env_id": env, "agent_ids": [agents[0]["pk"], agents[1]["pk"]],
        "models": ["slow-model"] * 3, "max_turns": 20, "tag": "stop"})
    assert pk.status_code == 202, pk.text
    pk = pk.text
    poll(lambda: [e.type for e in client.ref("sotopia_episode", pk).events()],
         lambda types: "turn" in types, 30)
    stopped = http.post(f"{base}/v1/episodes/{pk}/stop")
    assert stopped.status_code == 200 and stopped.json() == "Error"
    types = [e.type for e in client.ref("sotopia_episode", pk).events()]
    assert types[-1] == "stopped"
    assert http.post(f"{base}/v1/episodes/nothing/stop").status_code == 404
