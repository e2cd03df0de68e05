"""Who is asking: OpenGPTs' three AUTH_TYPEs, with its statuses and bodies.

- noop (default): the opengpts_user_id cookie names the user; no cookie means one shared
  default user, "static-default-user-id".
- jwt_local: a Bearer JWT checked with a key from JWT_DECODE_KEY_B64 (JWT_ALG, JWT_ISS,
  JWT_AUD; comma-separated audiences are a list).
- jwt_oidc: a Bearer JWT checked against its issuer's JWKS, found through
  {iss}/.well-known/openid-configuration. Unlike OpenGPTs, the issuer is checked against
  JWT_ISS *before* anything is fetched: a token must not make the server call a URL of its
  choosing.
No Authorization header -> 403 {"detail": "Not authenticated"}; not Bearer -> 403 "Invalid
authentication credentials"; a bad token -> 401 with PyJWT's message.

A user's id in responses is opaque: a UUID derived from the subject (OpenGPTs used a database
row's UUID; derived, it needs no table and is the same on every replica).
"""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from fastapi import HTTPException, Request

from api.opengpts.settings import OpenGptsSettings
from api.runtime import section

__all__ = ["AuthSettings", "User", "authed_user", "configure", "user_for"]

COOKIE = "opengpts_user_id"
DEFAULT_SUB = "static-default-user-id"
_USER_NS = uuid.UUID("5f0c6a64-3b9e-4c84-9d8e-0d3c1f1f6a21")


@dataclass(frozen=True)
class User:
    user_id: str
    sub: str


def user_for(sub: str) -> User:
    return User(str(uuid.uuid5(_USER_NS, sub)), sub)


@dataclass(frozen=True)
class AuthSettings:
    auth_type: str = "noop"
    iss: tuple[str, ...] = ()
    aud: tuple[str, ...] = ()
    alg: str = "HS256"
    decode_key_b64: str = ""
    oidc_timeout: float = 5.0
    _jwks: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_env(cls) -> "AuthSettings":
        """From the family's settings (api/opengpts/settings.py)."""
        s = section(OpenGptsSettings)
        return cls(s.auth_type, s.jwt_iss, s.jwt_aud, s.jwt_alg, s.jwt_decode_key_b64)


_settings: AuthSettings | None = None


def configure(settings: AuthSettings | None) -> None:
    """Set this process's auth (tests; otherwise it is read from the environment once)."""
    global _settings
    _settings = settings


def settings() -> AuthSettings:
    global _settings
    if _settings is None:
        _settings = AuthSettings.from_env()
    return _settings


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise HTTPException(403, "Not authenticated")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(403, "Invalid authentication credentials")
    return token.strip()


def _decode(token: str, key: Any, algorithms: list[str], s: AuthSettings) -> dict[str, Any]:
    return jwt.decode(token, key, algorithms=algorithms, audience=list(s.aud) or None,
                      issuer=list(s.iss) or None,
                      options={"require": ["exp", "iss", "aud", "sub"]})


def _oidc_key(s: AuthSettings, token: str) -> tuple[Any, str]:
    """Blocking (urllib): run in a thread. The JWKS client is cached per issuer."""
    issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    if not isinstance(issuer, str) or (s.iss and issuer not in s.iss):
        raise jwt.InvalidIssuerError("Invalid issuer")
    client = s._jwks.get(issuer)
    if client is None:
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        with urllib.request.urlopen(url, timeout=s.oidc_timeout) as resp:  # noqa: S310
            jwks_uri = json.load(resp)["jwks_uri"]
        client = jwt.PyJWKClient(jwks_uri, cache_jwk_set=True, timeout=int(s.oidc_timeout))
        s._jwks[issuer] = client
    alg = jwt.get_unverified_header(token).get("alg", "RS256")
    return client.get_signing_key_from_jwt(token).key, alg


async def authed_user(request: Request) -> User:
    s = settings()
    if s.auth_type == "noop":
        return user_for(request.cookies.get(COOKIE) or DEFAULT_SUB)
    token = _bearer(request)
    try:
        if s.auth_type == "jwt_local":
            # A shared secret (HS*) or a PEM public key, base64-encoded as OpenGPTs takes it.
            key = base64.b64decode(s.decode_key_b64)
            claims = _decode(token, key, [s.alg], s)
        else:
            key, alg = await asyncio.to_thread(_oidc_key, s, token)
            claims = _decode(token, key, [alg], s)
    except jwt.PyJWTError as exc:
        raise HTTPException(401, str(exc)) from None
    except (OSError, ValueError, KeyError) as exc:  # the issuer's discovery or JWKS failed
        raise HTTPException(401, f"could not verify the token: {exc}") from None
    return user_for(str(claims["sub"]))
