"""OpenGPTs' auth modes over real HTTP (ports of backend/tests/unit_tests/app/test_auth.py),
with jwt_oidc checked against a real JWKS served on loopback, and the statuses and bodies of
the spec: 403 with no header or a non-Bearer one, 401 for a bad token."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from api.opengpts import auth
from tests.conftest import kill_hosts, start_inprocess_server


@pytest.fixture(scope="module")
def base(ray_session, tmp_path_factory):
    url, _, client = start_inprocess_server(ray_session, str(tmp_path_factory.mktemp("auth")))
    yield url
    auth.configure(None)
    kill_hosts(client)


def whoami(base: str, **kw) -> httpx.Response:
    """Who the server thinks we are: the user_id on an assistant we create."""
    return httpx.post(f"{base}/assistants", json={"name": "me", "config": {}}, **kw)


def test_noop(base):
    auth.configure(auth.AuthSettings("noop"))
    r = whoami(base, cookies={"opengpts_user_id": "user_noop"})
    assert r.status_code == 200 and r.json()["user_id"] == auth.user_for("user_noop").user_id
    assert whoami(base).json()["user_id"] == auth.user_for("static-default-user-id").user_id


def _token(key, alg="HS256", headers=None, **claims) -> str:
    body = {"sub": "user_jwt", "iss": "issuer", "aud": "audience",
            "exp": int(time.time()) + 86400, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=alg,
                      headers=headers)


def test_jwt_local(base):
    auth.configure(auth.AuthSettings("jwt_local", ("issuer",), ("audience",), "HS256",
                                     base64.b64encode(b"key").decode()))
    bearer = {"Authorization": "Bearer " + _token("key", sub="user_jwt_local")}
    r = whoami(base, headers=bearer)
    assert r.status_code == 200
    assert r.json()["user_id"] == auth.user_for("user_jwt_local").user_id
    # the cookie means nothing now
    assert whoami(base, cookies={"opengpts_user_id": "x"}).status_code == 403
    cases = [
        ({}, 403, {"detail": "Not authenticated"}),
        ({"Authorization": "Basic abc"}, 403, {"detail": "Invalid authentication credentials"}),
        ({"Authorization": "Bearer xyz"}, 401, {"detail": "Not enough segments"}),
        ({"Authorization": "Bearer " + _token("other-key")}, 401,
         {"detail": "Signature verification failed"}),
        ({"Authorization": "Bearer " + _token("key", exp=None)}, 401,
         {"detail": 'Token is missing the "exp" claim'}),
        ({"Authorization": "Bearer " + _token("key", exp=int(time.time()) - 10)}, 401,
         {"detail": "Signature has expired"}),
        ({"Authorization": "Bearer " + _token("key", aud="elsewhere")}, 401,
         {"detail": "Audience doesn't match"}),
        ({"Authorization": "Bearer " + _token("key", iss="mallory")}, 401,
         {"detail": "Invalid issuer"}),
    ]
    for headers, status, body in cases:
        for r in (whoami(base, headers=headers), httpx.get(f"{base}/threads/", headers=headers)):
            assert (r.status_code, r.json()) == (status, body), headers
    # routes without auth stay open
    for path in ("/ok", "/health", "/assistants/public/", "/runs/config_schema"):
        assert httpx.get(base + path).status_code == 200, path


class _Issuer:
    """An OpenID provider on loopback: discovery document and JWKS."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwks = json.dumps({"keys": [{**jwk, "kid": "kid", "alg": "RS256", "use": "sig"}]})
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.hits.append(self.path)
                if self.path == "/.well-known/openid-configuration":
                    body = json.dumps({"issuer": outer.url, "jwks_uri": outer.url + "/jwks"})
                elif self.path == "/jwks":
                    body = jwks
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_jwt_oidc(base):
    issuer = _Issuer()
    try:
        auth.configure(auth.AuthSettings("jwt_oidc", (issuer.url,), ("audience",)))
        token = _token(issuer.key, "RS256", {"kid": "kid"}, iss=issuer.url,
                       sub="user_jwt_oidc")
        r = whoami(base, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        assert r.json()["user_id"] == auth.user_for("user_jwt_oidc").user_id
        assert issuer.hits == ["/.well-known/openid-configuration", "/jwks"]
        whoami(base, headers={"Authorization": f"Bearer {token}"})
        assert len(issuer.hits) == 2  # the key set is cached
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = _token(stranger, "RS256", {"kid": "kid"}, iss=issuer.url)
        r = whoami(base, headers={"Authorization": f"Bearer {forged}"})
        assert (r.status_code, r.json()) == (401, {"detail": "Signature verification failed"})
        # a token naming another issuer is refused before anything is fetched from it
        elsewhere = _token(issuer.key, "RS256", {"kid": "kid"}, iss="http://127.0.0.1:9")
        r = whoami(base, headers={"Authorization": f"Bearer {elsewhere}"})
        assert (r.status_code, r.json()) == (401, {"detail": "Invalid issuer"})
        assert len(issuer.hits) == 2
        assert whoami(base).status_code == 403
    finally:
        issuer.server.shutdown()
        auth.configure(None)
