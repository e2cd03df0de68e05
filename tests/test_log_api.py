"""The generic log API over real HTTP and WebSocket on loopback."""

from __future__ import annotations

import json
import threading

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from tests.conftest import OPERATOR


def _get(url: str, **kwargs) -> httpx.Response:
    """An operator API's GET, with the operator token every caller presents."""
    return httpx.get(url, headers=OPERATOR, **kwargs)


@pytest.fixture(scope="module")
def seeded_client(service):
    urls, settings, client = service
    ref = client.ref("counter", "api-1")
    client.ask_many([(ref, {"type": "add", "amount": i}, None) for i in range(1, 26)])
    return urls, client


@pytest.fixture(params=["replica", "serve"])
def seeded(request, seeded_client):
    """Every test runs against both HTTP paths: uvicorn in the replica, and Serve's own."""
    urls, client = seeded_client
    return urls[request.param], client


def test_health(seeded):
    base, _ = seeded
    assert _get(base + "/health").json()["status"] == "ok"
    info = _get(base + "/v1/runtime").json()
    assert info["store"] == "sqlite" and len(info["hosts"]) == 2


def test_events_pages_through_the_log(seeded):
    base, _ = seeded
    r = _get(base + "/v1/actors/counter/api-1/events", params={"limit": 10})
    assert r.status_code == 200
    page = r.json()
    assert page["last_version"] == 25 and page["next_from"] == 11
    assert [e["seq"] for e in page["events"]] == list(range(1, 11))
    assert page["events"][0]["type"] == "added" and page["events"][0]["data"] == {"amount": 1}
    seqs, nxt = [], 1
    while nxt is not None:
        page = _get(base + "/v1/actors/counter/api-1/events",
                         params={"from": nxt, "limit": 7}).json()
        seqs += [e["seq"] for e in page["events"]]
        nxt = page["next_from"]
    assert seqs == list(range(1, 26))
    bounded = _get(base + "/v1/actors/counter/api-1/events",
                        params={"from": 5, "to": 8}).json()
    assert [e["seq"] for e in bounded["events"]] == [5, 6, 7, 8] and bounded["next_from"] is None


def test_a_kinds_entities_listed_in_pages(seeded):
    base, client = seeded
    for i in range(5):
        client.ref("counter", f"list-{i}").ask({"type": "add", "amount": 1})
    ids, after = [], None
    while True:
        params = {"limit": 2, **({"after": after} if after else {})}
        page = _get(base + "/v1/actors/counter", params=params).json()
        assert page["kind"] == "counter" and len(page["entities"]) <= 2
        ids += [e["id"] for e in page["entities"]]
        after = page["next_after"]
        if after is None:
            break
    assert ids == sorted(ids) and {f"list-{i}" for i in range(5)} | {"api-1"} <= set(ids)
    one = _get(base + "/v1/actors/counter", params={"after": "list-3", "limit": 1}).json()
    versions = {"list-4": client.ref("counter", "list-4").state()[0]}  # both paths add one
    assert one["entities"] == [{"id": "list-4", "last_version": versions["list-4"]}]
    assert _get(base + "/v1/actors/nokind").status_code == 404
    assert _get(base + "/v1/actors/counter", params={"limit": 0}).status_code == 422


def test_state_and_time_travel(seeded):
    base, client = seeded
    now = _get(base + "/v1/actors/counter/api-1/state").json()
    assert now == {"kind": "counter", "id": "api-1", "version": 25, "last_version": 25,
                   "state": {"total": 325, "adds": 25, "notes": 0}}
    assert client.ref("counter", "api-1").state() == (25, now["state"])
    past = _get(base + "/v1/actors/counter/api-1/state", params={"version": 3}).json()
    assert past["version"] == 3 and past["state"]["total"] == 6
    zero = _get(base + "/v1/actors/counter/api-1/state", params={"version": 0}).json()
    assert zero["version"] == 0 and zero["state"]["total"] == 0


@pytest.mark.parametrize("path,params,status,needle", [
    ("/v1/actors/nosuch/api-1/events", {}, 404, "unknown entity kind"),
    ("/v1/actors/nosuch/api-1/state", {}, 404, "unknown entity kind"),
    ("/v1/actors/counter/never/events", {}, 404, "no events"),
    ("/v1/actors/counter/never/state", {}, 404, "no events"),
    ("/v1/actors/counter/api-1/events", {"from": -1}, 422, "greater than or equal"),
    ("/v1/actors/counter/api-1/events", {"from": "abc"}, 422, "integer"),
    ("/v1/actors/counter/api-1/events", {"to": 0}, 422, "greater than or equal"),
    ("/v1/actors/counter/api-1/events", {"from": 9, "to": 3}, 422, "below"),
    ("/v1/actors/counter/api-1/events", {"limit": 10**9}, 422, "less than or equal"),
    ("/v1/actors/counter/api-1/events", {"limit": 0}, 422, "greater than or equal"),
    ("/v1/actors/counter/api-1/events", {"from": 10**30}, 422, "less than or equal"),
    ("/v1/actors/counter/api-1/events", {"limit": "1.5"}, 422, "integer"),
    ("/v1/actors/counter/api-1/state", {"version": 26}, 422, "beyond"),
    ("/v1/actors/counter/api-1/state", {"version": -3}, 422, "greater than or equal"),
    ("/v1/actors/counter/" + "x" * 600 + "/state", {}, 422, "at most 512"),
    ("/v1/actors/bad kind!/x/state", {}, 422, "pattern"),
])
def test_bad_input_is_a_clear_4xx(seeded, path, params, status, needle):
    base, _ = seeded
    r = _get(base + path, params=params)
    assert r.status_code == status, r.text
    assert needle in r.text
    assert "detail" in r.json()


def _frames(ws, n):
    return [json.loads(ws.recv(timeout=30)) for _ in range(n)]


def test_websocket_tail_stored_then_live(seeded, request):
    base, client = seeded
    name = "ws-" + request.node.callspec.id
    url = base.replace("http", "ws") + f"/v1/actors/counter/{name}/tail?from=1"
    ref = client.ref("counter", name)
    client.ask_many([(ref, {"type": "note", "text": str(i)}, None) for i in range(5)])
    with ws_connect(url, additional_headers=OPERATOR) as ws:
        stored = _frames(ws, 5)
        writer = threading.Thread(target=lambda: [ref.ask({"type": "note", "text": str(i)})
                                                  for i in range(5, 30)])
        writer.start()
        live = _frames(ws, 25)
        writer.join()
    frames = stored + live
    assert all(f["type"] == "event" for f in frames)
    assert [f["event"]["seq"] for f in frames] == list(range(1, 31))
    assert [f["event"]["data"]["text"] for f in frames] == [str(i) for i in range(30)]


@pytest.mark.parametrize("path,needle", [
    ("/v1/actors/nosuch/x/tail", "unknown entity kind"),
    ("/v1/actors/counter/x/tail?from=-2", "from must be"),
    ("/v1/actors/counter/x/tail?from=abc", "from must be"),
])
def test_websocket_tail_bad_input(seeded, path, needle):
    base, _ = seeded
    with ws_connect(base.replace("http", "ws") + path, additional_headers=OPERATOR) as ws:
        frame = json.loads(ws.recv(timeout=30))
        assert frame["type"] == "error" and needle in frame["detail"]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=30)
        assert ws.close_code == 1008


def test_closing_a_websocket_tail_ends_the_subscription(seeded_client):
    """Even on a quiet stream (no event to send), a closed client ends its subscription."""
    import time

    import ray

    urls, client = seeded_client
    ref = client.ref("counter", "ws-close")
    host = client.host_for("counter", "ws-close")
    ref.ask({"type": "add", "amount": 1})

    def subscribers() -> int:
        return ray.get(host.stats.remote())["subscribers"]

    def settle(expected: int) -> int:
        deadline = time.time() + 20
        while subscribers() != expected and time.time() < deadline:
            time.sleep(0.1)
        return subscribers()

    before = settle(0)
    url = urls["replica"].replace("http", "ws") + "/v1/actors/counter/ws-close/tail"
    with ws_connect(url, additional_headers=OPERATOR) as ws:
        assert json.loads(ws.recv(timeout=30))["event"]["seq"] == 1
        assert settle(before + 1) == before + 1
    assert settle(before) == before == 0
