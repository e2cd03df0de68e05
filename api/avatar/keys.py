"""Credentials of the avatar family: API keys from configuration, and signed single-use
session tokens.

- API keys: AVATAR_API_KEYS (comma-separated) or the file AVATAR_API_KEYS_FILE (one per line),
  compared in constant time. With neither, the embedded service makes a random key at its
  first start and keeps it in the data directory (``avatar_api_key``), so the document's
  scripts work after one copy and paste; there is no built-in default. A session belongs to
  the key that made it, recorded as the key's hash (``owner``), never the key.
- Session tokens: HS256 JWTs (PyJWT) naming the session (sub), its owner and a token id (jti),
  expiring after AVATAR_SESSION_TOKEN_SECONDS (600). The secret is AVATAR_JWT_SECRET, else a
  random one kept in the data directory (``avatar_jwt_secret``): a cluster whose replicas do
  not share a data directory must set AVATAR_JWT_SECRET. Single use is the session's log's
  job: its ``started`` event consumes the jti (actors/avatar.py).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

from api.local_files import data_dir, read_or_create
from api.runtime import section
from api.avatar.settings import AvatarSettings

__all__ = ["Claims", "api_key_owner", "data_dir", "ensure_embedded_key", "issue_token",
           "key_id", "read_token", "settings", "token_seconds"]

log = logging.getLogger("ray.serve")
KEY_FILE, SECRET_FILE = "avatar_api_key", "avatar_jwt_secret"
AUDIENCE = "actorlog-avatar"



def settings() -> AvatarSettings:
    """The family's settings in this process."""
    return section(AvatarSettings)


def _configured_keys() -> list[str] | None:
    raw = settings().api_keys
    if raw:
        return [k.strip() for k in raw.split(",") if k.strip()]
    path = settings().api_keys_file
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                return [line.strip() for line in f if line.strip() and not line.startswith("#")]
        except OSError as exc:  # configured but unreadable: no key is valid, none is invented
            log.error("avatar: AVATAR_API_KEYS_FILE %s cannot be read: %s", path, exc)
            return []
    return None


def ensure_embedded_key(directory: str) -> str | None:
    """The embedded service's key when none is configured (made at the first start); None when
    keys are configured."""
    if _configured_keys() is not None:
        return None
    return read_or_create(os.path.join(directory, KEY_FILE), "ak_" + secrets.token_hex(24))


def _keys() -> list[str]:
    keys = _configured_keys()
    if keys is not None:
        return keys
    path = os.path.join(data_dir(), KEY_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            key = f.read().strip()
    except FileNotFoundError:
        return []
    return [key] if key else []


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def api_key_owner(presented: str) -> str | None:
    """The owner id of a valid API key, or None. Every configured key is compared (in
    constant time), so the answer's timing says nothing about which one nearly matched."""
    given = presented.encode("utf-8", "surrogatepass")
    found = None
    for key in _keys():
        if hmac.compare_digest(given, key.encode("utf-8", "surrogatepass")):
            found = key
    return None if found is None else key_id(found)


def _secret() -> bytes:
    configured = settings().jwt_secret
    if configured:
        return configured.encode()
    return read_or_create(os.path.join(data_dir(), SECRET_FILE),
                          secrets.token_hex(32)).encode()


def token_seconds() -> float:
    return settings().session_token_seconds


@dataclass(frozen=True)
class Claims:
    session_id: str
    owner: str
    jti: str
    expires_at: float


def issue_token(session_id: str, owner: str) -> tuple[str, Claims]:
    now = time.time()
    claims = Claims(session_id, owner, uuid.uuid4().hex, now + token_seconds())
    token = jwt.encode({"sub": session_id, "own": owner, "jti": claims.jti, "aud": AUDIENCE,
                        "iat": int(now), "exp": int(claims.expires_at)}, _secret(),
                       algorithm="HS256")
    return token, claims


def read_token(token: str, *, check_expiry: bool = True) -> Claims | None:
    """The claims of a token this service signed, or None (forged, malformed, expired when
    ``check_expiry``). The socket reads a used token without its expiry: by then the session,
    not the token, decides how long it lives."""
    try:
        data = jwt.decode(token, _secret(), algorithms=["HS256"], audience=AUDIENCE,
                          options={"verify_exp": check_expiry,
                                   "require": ["sub", "jti", "exp", "aud"]})
    except (jwt.InvalidTokenError, ValueError):
        return None
    sub, owner, jti = data.get("sub"), data.get("own"), data.get("jti")
    if not all(isinstance(v, str) for v in (sub, owner, jti)):
        return None
    return Claims(sub, owner, jti, float(data["exp"]))
