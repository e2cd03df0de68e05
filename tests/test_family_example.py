"""The README's worked example of a new API family (tests/example_family) composed with the
platform, served over real HTTP on real hosts: the README shows exactly these files."""

from __future__ import annotations

import os
import re
import time
import uuid

import httpx
import pytest

from tests.conftest import OPERATOR, ROOT, free_port, kill_hosts, poll, wait_http

FILES = ("tests/example_family/note.py", "tests/example_family/service.py",
         "tests/example_family/settings.py", "tests/example_family/__init__.py")


def test_the_readme_shows_the_example_as_it_is():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    for path in FILES:
        block = re.search(rf"<!-- family-example: {re.escape(path)} -->\s*```python\n(.*?)```",
                          readme, re.S)
        assert block, f"the README lost its {path}"
        assert block.group(1) == open(os.path.join(ROOT, path), encoding="utf-8").read()


@pytest.fixture(scope="module")
def notes(ray_session, tmp_path_factory):
    from api import http_server
    from api.families import build_app, settings_for
    from api.runtime import Runtime, install
    from runtime.config import Settings
    from tests.example_family import FAMILY

    settings = settings_for(Settings(data_dir=str(tmp_path_factory.mktemp("notes")),
                                     namespace=f"notes-{uuid.uuid4().hex[:8]}",
                                     rebalance_seconds=0,
                                     options={"NOTES_SWEEP_SECONDS": "0.5",
                                              "NOTES_SECONDS_PER_WORD": "0.05"}), [FAMILY])
    runtime = Runtime.start(settings)
    install(runtime)
    port = free_port()
    http_server.start_in_thread(build_app([FAMILY]), "127.0.0.1", port)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health")
    yield base, runtime.client
    kill_hosts(runtime.client)


def test_a_new_family_served_beside_the_platform(notes):
    notes, _ = notes
    put = httpx.put(f"{notes}/notes/n1", json={"text": "first"})
    assert put.status_code == 200 and put.json() == {"note_id": "n1", "text": "first",
                                                     "edits": 1, "proofread": None}
    assert httpx.put(f"{notes}/notes/n1", json={"text": "second"}).json()["edits"] == 2
    assert httpx.get(f"{notes}/notes/n1").json() == {"note_id": "n1", "text": "second",
                                                     "edits": 2, "proofread": None}
    refused = httpx.put(f"{notes}/notes/n1", json={"text": "  "})  # the kind's "invalid"
    assert refused.status_code == 422 and "non-empty" in refused.json()["detail"]
    assert httpx.get(f"{notes}/notes/none").status_code == 404
    assert httpx.put(f"{notes}/notes/n2", content=b'{"text": "\\ud800"}',
                     headers={"content-type": "application/json"}).status_code == 422
    # the platform's log API reads the new kind's stream as any other
    events = httpx.get(f"{notes}/v1/actors/note/n1/events", headers=OPERATOR).json()["events"]
    assert [e["type"] for e in events] == ["written", "written"]
    paths = httpx.get(f"{notes}/openapi.json").json()["paths"]
    assert "/notes/{note_id}" in paths and "/threads/" not in paths  # only what was composed


def _note(base: str, note_id: str) -> dict:
    return httpx.get(f"{base}/notes/{note_id}").json()


def test_long_work_is_resumed_by_the_familys_own_background_work_after_its_host_dies(notes):
    """The example's proofreading runs in its host; its host is killed halfway; the family's
    periodic work (run by the platform) carries it on from the last committed word: every word
    is checked exactly once, and the log says cut, then resumed."""
    import ray

    base, client = notes
    words = [f"word{i}" if i % 7 == 0 else "word" for i in range(60)]
    httpx.put(f"{base}/notes/long", json={"text": " ".join(words)})
    assert httpx.post(f"{base}/notes/long/proofread").status_code == 202
    halfway = poll(lambda: _note(base, "long"), lambda n: n["proofread"]["checked"] >= 10, 30)
    assert halfway["proofread"]["status"] == "running"
    ray.kill(client.ref("note", "long")._host, no_restart=False)  # Ray restarts it, empty
    done = poll(lambda: _note(base, "long"), lambda n: n["proofread"]["status"] == "done", 60)
    assert done["proofread"] == {"status": "done", "checked": 60,
                                 "flagged": [w for w in words if not w.isalpha()]}
    events = httpx.get(f"{base}/v1/actors/note/long/events", headers=OPERATOR).json()["events"]
    types = [e["type"] for e in events]
    assert types.count("word_checked") == 60
    assert types.index("proofread_cut") < types.index("proofread_resumed") < types.index(
        "proofread_done")
    # stop means stop: a stopped proofreading is never carried on
    httpx.put(f"{base}/notes/stopped", json={"text": " ".join(words)})
    httpx.post(f"{base}/notes/stopped/proofread")
    assert httpx.post(f"{base}/notes/stopped/stop").status_code == 202
    stopped = poll(lambda: _note(base, "stopped"),
                   lambda n: n["proofread"]["status"] == "stopped", 30)
    time.sleep(1.5)  # three sweeps' worth: none may resume it
    assert _note(base, "stopped")["proofread"] == stopped["proofread"]
    assert httpx.post(f"{base}/notes/none/proofread").status_code == 404
