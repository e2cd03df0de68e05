"""Helpers for the OpenGPTs tests: a per-user HTTP client, an SSE reader that keeps the raw
bytes, and the golden captures of the real OpenGPTs (../shared/fixtures/opengpts)."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx

from tests.conftest import fixtures_dir, poll

FIXTURES = fixtures_dir("opengpts")


def golden_raw(name: str) -> bytes:
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def parse_sse(raw: bytes) -> list[tuple[str, Any]]:
    """[(event, data or None)] from raw SSE bytes (comments skipped)."""
    out = []
    for block in raw.decode().split("\r\n\r\n"):
        if not block.strip():
            continue
        event, data = None, None
        for line in block.split("\r\n"):
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        if event is not None:
            out.append((event, data))
    return out


def golden(name: str) -> list[tuple[str, Any]]:
    return parse_sse(golden_raw(name))


class User:
    def __init__(self, base: str, name: str | None = "foo", headers: dict | None = None):
        cookies = {"opengpts_user_id": name} if name else {}
        self.http = httpx.Client(base_url=base, cookies=cookies, headers=headers or {},
                                 timeout=60)

    def __getattr__(self, method: str):
        return getattr(self.http, method)

    def assistant(self, kind: str = "chatbot", public: bool = False, **conf: Any) -> str:
        r = self.http.post("/assistants", json={"name": f"{kind} bot", "public": public,
                                                "config": {"configurable": {"type": kind,
                                                                            **conf}}})
        assert r.status_code == 200, r.text
        return r.json()["assistant_id"]

    def thread(self, assistant_id: str, name: str = "t") -> str:
        r = self.http.post("/threads", json={"name": name, "assistant_id": assistant_id})
        assert r.status_code == 200, r.text
        return r.json()["thread_id"]

    def stream(self, body: dict[str, Any], **kw: Any) -> tuple[httpx.Response, bytes]:
        with self.http.stream("POST", "/runs/stream", json=body, **kw) as r:
            raw = r.read()
        return r, raw

    def wait_state(self, tid: str, done, timeout: float = 60) -> dict[str, Any]:
        return poll(lambda: self.http.get(f"/threads/{tid}/state").json(), done, timeout)


def same_shape(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    """A message compared field by field with a captured one: the same keys in the same order
    and the same value types; ids, contents and usage figures aside."""
    assert list(ours) == list(theirs), (list(ours), list(theirs))
    for key, value in theirs.items():
        if key in ("id", "content", "usage_metadata", "tool_call_id", "status"):
            continue
        if key == "tool_calls":
            assert len(ours[key]) == len(value)
            for a, b in zip(ours[key], value):
                assert list(a) == list(b) and a["type"] == "tool_call"
            continue
        assert type(ours[key]) is type(value) and (
            not isinstance(value, (bool, type(None))) or ours[key] == value), (key, ours[key])
