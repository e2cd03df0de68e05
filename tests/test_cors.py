"""ACTORLOG_CORS_ORIGINS (issue 19, item 3): browser clients of every family's routes get CORS
headers from the configured origins only, preflights included, error answers included. The
app is served by uvicorn over real HTTP on loopback; no Ray is needed for what is asked here
(preflights, a refused credential, /health)."""

from __future__ import annotations

import httpx
import pytest

from api import families, http_server
from tests.conftest import free_port, wait_http

pytestmark = pytest.mark.heavy  # uvicorn serves the app on loopback

ALLOWED = "http://app.example.test:3000"


def _serve(monkeypatch, origins: str) -> str:
    """The app on loopback; /health answers whatever runtime this process holds (perhaps
    another module's, its hosts gone): only its headers are read here."""
    monkeypatch.setenv("ACTORLOG_CORS_ORIGINS", origins)
    app = families.build_app(families.configured())
    app.state.background = []  # no family's background work: this app has no runtime
    port = free_port()
    http_server.start_in_thread(app, "127.0.0.1", port)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/openapi.json")
    return base


def _preflight(base: str, path: str, origin: str, method: str = "POST") -> httpx.Response:
    return httpx.options(base + path, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type"})


def test_listed_origins_get_cors_headers_on_every_familys_routes(monkeypatch):
    base = _serve(monkeypatch, f"{ALLOWED}, https://other.example.test")
    for path, method in (("/session-token", "POST"), ("/session/stop", "DELETE"),
                         ("/assistants", "POST"), ("/agents", "GET"), ("/agent/run", "POST")):
        ok = _preflight(base, path, ALLOWED, method)
        assert ok.status_code == 200, (path, ok.text)
        assert ok.headers["access-control-allow-origin"] == ALLOWED
        assert method in ok.headers["access-control-allow-methods"]
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        refused = _preflight(base, path, "http://evil.example.test", method)
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
    # a refusal in the avatar family's own shape still carries the headers a browser needs
    r = httpx.post(base + "/session-token", json={}, headers={
        "Origin": ALLOWED, "Authorization": "Bearer not-a-key"})
    assert r.status_code == 401 and r.json()["code"]
    assert r.headers["access-control-allow-origin"] == ALLOWED
    assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
    other = httpx.get(base + "/health", headers={"Origin": "http://evil.example.test"})
    assert "access-control-allow-origin" not in other.headers


def test_a_star_allows_any_origin_and_none_is_the_default(monkeypatch):
    star = _serve(monkeypatch, "*")
    r = httpx.get(star + "/health", headers={"Origin": "http://anywhere.example.test"})
    assert r.headers["access-control-allow-origin"] == "*"
    plain = _serve(monkeypatch, "")
    assert _preflight(plain, "/session-token", ALLOWED).status_code in (400, 405)
    r = httpx.get(plain + "/health", headers={"Origin": ALLOWED})
    assert "access-control-allow-origin" not in r.headers


def test_a_value_that_is_not_an_origin_stops_the_start():
    with pytest.raises(ValueError, match="ACTORLOG_CORS_ORIGINS"):
        families.cors_origins("app.example.test")
