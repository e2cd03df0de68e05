"""The avatar session family (issue 14) over real HTTP and WebSocket on loopback, on real hosts
and a real SQLite store: the document's flow with its example bodies, every error row of the
document, Agora's own session_start.py and session_stop.py, Anam's aliases, token reuse,
foreign and unknown stops, the idle timeout, every malformed frame, a WAV made here (a tone
and silence) yielding a lip-sync track that follows its loudness, interrupt mid-segment, and
the session's log replaying to the same state."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import signal
import time
import wave

import httpx
import numpy as np
import pytest
import websockets.sync.client as ws
from websockets.exceptions import ConnectionClosed

from actors.avatar import AVATAR_SESSION
from tests.conftest import OPERATOR, fixtures_dir, kill_hosts, poll, start_inprocess_server

KEY, OTHER_KEY = "test-api-key-123", "another-customers-key"


@pytest.fixture(scope="module")
def server(ray_session, tmp_path_factory):
    data = str(tmp_path_factory.mktemp("avatar"))
    url, _, client = start_inprocess_server(
        ray_session, data, options={"AVATAR_API_KEYS": f"{KEY},{OTHER_KEY}"})
    yield url, client, data
    kill_hosts(client)


def _seed_json_blocks() -> list[dict]:
    with open(fixtures_dir("seeds", "003_82d971e3787cb95a.txt"), encoding="utf-8") as f:
        text = f.read()
    return [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, re.S)]


def _doc_examples() -> dict[str, dict]:
    """The document's example request bodies, by what they are."""
    blocks = _seed_json_blocks()
    token_body = next(b for b in blocks if "personaConfig" in b)
    stop_body = next(b for b in blocks if set(b) == {"sessionId", "sessionToken"})
    return {"token": token_body, "stop": stop_body,
            "errors": [b for b in blocks if "code" in b]}


def _auth(secret: str) -> dict[str, str]:
    return {"accept": "application/json", "content-type": "application/json",
            "Authorization": f"Bearer {secret}"}


def _token(base: str, key: str = KEY, **settings) -> str:
    body = _doc_examples()["token"]
    body["environment"]["agoraSettings"].update(settings)
    r = httpx.post(f"{base}/session-token", json=body, headers=_auth(key))
    assert r.status_code == 200, r.text
    return r.json()["sessionToken"]


def _session(base: str, key: str = KEY, **settings) -> tuple[str, str, str]:
    token = _token(base, key, **settings)
    r = httpx.post(f"{base}/session", json={}, headers=_auth(token))
    assert r.status_code == 200, r.text
    return r.json()["sessionId"], token, r.json()["websocketAddress"]


def _connect(address: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return ws.connect(address, additional_headers=headers, open_timeout=10,
                      max_size=2 ** 22)


def _recv(sock, timeout: float = 10.0) -> dict:
    return json.loads(sock.recv(timeout=timeout))


def _until(sock, done, timeout: float = 30.0) -> list[dict]:
    frames, deadline = [], time.monotonic() + timeout
    while True:
        frame = _recv(sock, max(0.05, deadline - time.monotonic()))
        frames.append(frame)
        if done(frame):
            return frames


def _init(sock, session_id: str) -> None:
    sock.send(json.dumps({"command": "init", "sessionId": session_id, "event_id": "init-1"}))
    assert _until(sock, lambda f: f["command"] == "state")[-1]["state"] == "ready"


def _pcm(seconds: float, rate: int = 16000, amplitude: float = 0.5, hz: float = 220.0
         ) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * 32767 * np.sin(2 * math.pi * hz * t)).astype("<i2").tobytes()


def _chunks(pcm: bytes, rate: int = 16000) -> list[bytes]:
    step = int(rate * 0.5) * 2
    return [pcm[i:i + step] for i in range(0, len(pcm), step)]


def _voice(sock, chunk: bytes, event_id: str, rate: int = 16000, key: str = "sample_rate"
           ) -> None:
    sock.send(json.dumps({"command": "voice", "audio": base64.b64encode(chunk).decode(),
                          key: rate, "encoding": "PCM16", "event_id": event_id}))


# ---------------------------------------------------------------------- the document


def test_the_documents_usage_flow_with_its_example_bodies(server):
    """Usage Flow steps 1-8, with the document's own bodies and headers."""
    base, client, data = server
    examples = _doc_examples()
    r = httpx.post(f"{base}/session-token", json=examples["token"], headers=_auth(KEY))
    assert r.status_code == 200 and set(r.json()) == {"sessionToken"}
    token = r.json()["sessionToken"]
    r = httpx.post(f"{base}/session", json={}, headers=_auth(token))
    assert r.status_code == 200 and set(r.json()) == {"sessionId", "websocketAddress"}
    session_id, address = r.json()["sessionId"], r.json()["websocketAddress"]
    assert address.startswith(base.replace("http://", "ws://") + "/session/ws")
    with _connect(address, token) as sock:
        init = {"command": "init", "sessionId": session_id, "event_id": "e0",
                **examples["token"]["personaConfig"],
                **examples["token"]["environment"]["agoraSettings"]}
        sock.send(json.dumps(init))
        assert _recv(sock)["state"] == "ready"
        sock.send(json.dumps({"command": "heartbeat", "event_id": "hb1", "timestamp": 1234}))
        assert _recv(sock) == {"command": "heartbeat_ack", "event_id": "hb1",
                               "timestamp": 1234}
        for i, chunk in enumerate(_chunks(_pcm(1.0))):
            _voice(sock, chunk, f"v{i}")
        sock.send(json.dumps({"command": "voice_end", "event_id": "end"}))
        frames = _until(sock, lambda f: f["command"] == "state" and f["state"] == "idle")
        kinds = [f["command"] for f in frames]
        assert kinds[0] == "state" and frames[0]["state"] == "speaking"
        assert kinds.count("lipsync") == 2 and "segment" in kinds
        r = httpx.request("DELETE", f"{base}/session/stop", headers=_auth(KEY),
                          json={"sessionId": session_id, "sessionToken": token})
        assert r.status_code == 200
        assert r.json() == {"status": "success", "message": "Session terminated successfully"}
        stopped = _until(sock, lambda f: f["command"] == "state" and f["state"] == "stopped")
        assert stopped[-1]["reason"] == "stopped"
        with pytest.raises(ConnectionClosed) as closed:
            sock.recv(timeout=5)
        assert closed.value.rcvd.code == 4410
    _, state = client.ref(AVATAR_SESSION, session_id).state()
    assert state["status"] == "stopped" and state["segments"][0]["status"] == "ended"
    blob = os.path.join(data, "avatar_audio", state["segments"][0]["blob"])
    with wave.open(blob) as w:
        assert (w.getframerate(), w.getnframes()) == (16000, 16000)


def test_every_error_row_of_the_document(server):
    base, _, _ = server
    examples = _doc_examples()
    rows = {(e["code"], e["message"]) for e in examples["errors"]}
    got = set()

    def call(method: str, path: str, headers: dict, body) -> dict:
        r = httpx.request(method, f"{base}{path}", headers=headers, json=body)
        out = r.json()
        assert set(out) == {"error", "message", "code"}, out
        expected = next(e for e in examples["errors"] if e["code"] == out["code"])
        assert out["error"] == expected["error"]
        got.add((out["code"], out["message"]))
        return {"status": r.status_code, **out}

    token_body = examples["token"]
    no_avatar = json.loads(json.dumps(token_body))
    del no_avatar["personaConfig"]["avatarId"]
    assert call("POST", "/session-token", _auth(KEY), no_avatar)["status"] == 400
    assert call("POST", "/session-token", _auth("wrong"), token_body)["status"] == 401
    assert call("POST", "/session-token", {}, token_body)["status"] == 403
    assert call("POST", "/session", _auth("not-a-token"), {})["status"] == 401
    assert call("POST", "/session", {}, {})["status"] == 403
    stop = examples["stop"]
    assert call("DELETE", "/session/stop", _auth(KEY), {"sessionToken": "x"})["status"] == 400
    assert call("DELETE", "/session/stop", _auth("wrong"), stop)["status"] == 401
    assert call("DELETE", "/session/stop", _auth(KEY), stop)["status"] == 404
    assert rows <= got, rows - got


@pytest.mark.parametrize("path", ["agoraSettings.appId", "agoraSettings.quality",
                                  "agoraSettings.videoEncoding", "agoraSettings.uid",
                                  "agoraSettings.enableStringUids", "agoraSettings",
                                  "personaConfig"])
def test_a_missing_field_is_named(server, path):
    base, _, _ = server
    body = _doc_examples()["token"]
    parent = body["environment"] if path.startswith("agoraSettings") else body
    *head, last = path.split(".")
    for part in head:
        parent = parent[part]
    del parent[last]
    r = httpx.post(f"{base}/session-token", json=body, headers=_auth(KEY))
    full = ("environment." + path) if path.startswith("agoraSettings") else path
    assert r.status_code == 400
    assert r.json() == {"error": "Invalid request", "message": f"Missing required field: {full}",
                        "code": "VALIDATION_ERROR"}


@pytest.mark.parametrize("field,value,message", [
    ("quality", "ultra", "Invalid quality value. Must be one of: low, medium, high"),
    ("videoEncoding", "H265", "Invalid videoEncoding value. Must be one of: H264, VP8, AV1"),
    ("enableStringUids", "false", "environment.agoraSettings.enableStringUids must be a "
                                  "boolean"),
    ("activityIdleTimeout", "-1", "environment.agoraSettings.activityIdleTimeout must be a "
                                  "number of seconds >= 0 (as a string or a number)"),
    ("activityIdleTimeout", "soon", "environment.agoraSettings.activityIdleTimeout must be a "
                                    "number of seconds >= 0 (as a string or a number)"),
])
def test_bad_values_are_validation_errors(server, field, value, message):
    base, _, _ = server
    body = _doc_examples()["token"]
    body["environment"]["agoraSettings"][field] = value
    r = httpx.post(f"{base}/session-token", json=body, headers=_auth(KEY))
    assert (r.status_code, r.json()) == (400, {"error": "Invalid request", "message": message,
                                               "code": "VALIDATION_ERROR"})


def test_what_clients_send_is_accepted(server):
    """activityIdleTimeout as an integer (Anam's client), 0 (no timeout); extra keys Anam's
    client sends (environment.cluster, podName)."""
    base, _, _ = server
    for timeout in (120, 0, "0", 30.5):
        body = _doc_examples()["token"]
        body["environment"]["agoraSettings"]["activityIdleTimeout"] = timeout
        body["environment"].update(cluster="devspace", podName="pod-1")
        r = httpx.post(f"{base}/auth/session-token", json=body, headers=_auth(KEY))
        assert r.status_code == 200, r.text


def test_bad_json_wrong_content_type_and_big_bodies_keep_the_documents_shape(server):
    base, _, _ = server
    headers = _auth(KEY)
    r = httpx.post(f"{base}/session-token", content=b'{"personaConfig": ', headers=headers)
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_JSON")
    r = httpx.post(f"{base}/session-token", content=b'{"a": 1e999}', headers=headers)
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_JSON")
    r = httpx.post(f"{base}/session-token", content=b"[1, 2]", headers=headers)
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR"
    r = httpx.post(f"{base}/session-token", content=json.dumps(_doc_examples()["token"]),
                   headers={**headers, "content-type": "text/plain"})
    assert (r.status_code, r.json()["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")
    r = httpx.post(f"{base}/session-token", content=b"{" + b" " * (5 * 2 ** 20) + b"}",
                   headers=headers)
    assert r.status_code == 413 and set(r.json()) == {"error", "message", "code"}
    r = httpx.request("DELETE", f"{base}/session/stop", headers=headers, content=b"nope")
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_JSON")


# ---------------------------------------------------------------------- tokens and ownership


def test_a_session_token_is_single_use_and_signed(server):
    base, _, _ = server
    token = _token(base)
    # as `curl -d '{}'` sends it (a form content type): the body of step 2 is not read
    first = httpx.post(f"{base}/session", content=b"{}", headers={
        "Authorization": f"Bearer {token}",
        "content-type": "application/x-www-form-urlencoded"})
    assert first.status_code == 200
    again = httpx.post(f"{base}/engine/session", json={}, headers=_auth(token))
    assert (again.status_code, again.json()["code"]) == (401, "INVALID_SESSION_TOKEN")
    head, payload, signature = token.split(".")
    forged = ".".join((head, payload, signature[::-1]))
    r = httpx.post(f"{base}/session", json={}, headers=_auth(forged))
    assert (r.status_code, r.json()["code"]) == (401, "INVALID_SESSION_TOKEN")


def test_stop_of_an_unknown_or_another_keys_session_is_not_found(server):
    base, client, _ = server
    session_id, token, _ = _session(base)
    body = {"sessionId": session_id, "sessionToken": token}
    for key in (OTHER_KEY,):
        r = httpx.request("DELETE", f"{base}/session/stop", headers=_auth(key), json=body)
        assert (r.status_code, r.json()["code"]) == (404, "SESSION_NOT_FOUND")
        r = httpx.post(f"{base}/engine/session/{session_id}/kill", headers=_auth(key),
                       json={"sessionId": session_id})
        assert r.status_code == 404
        r = httpx.get(f"{base}/session/{session_id}", headers=_auth(key))
        assert r.status_code == 404
    assert client.ref(AVATAR_SESSION, session_id).state()[1]["status"] == "started"
    r = httpx.request("DELETE", f"{base}/session/stop", headers=_auth(KEY),
                      json={"sessionId": "no-such-session", "sessionToken": token})
    assert (r.status_code, r.json()["code"]) == (404, "SESSION_NOT_FOUND")
    # the right key with another session's token
    other_id, other_token, _ = _session(base)
    r = httpx.request("DELETE", f"{base}/session/stop", headers=_auth(KEY),
                      json={"sessionId": session_id, "sessionToken": other_token})
    assert (r.status_code, r.json()["code"]) == (401, "INVALID_SESSION_TOKEN")
    r = httpx.request("DELETE", f"{base}/session/stop", headers=_auth(KEY), json=body)
    assert r.status_code == 200
    r = httpx.request("DELETE", f"{base}/session/stop", headers=_auth(KEY), json=body)
    assert (r.status_code, r.json()["code"]) == (404, "SESSION_NOT_FOUND")
    r = httpx.post(f"{base}/engine/session/{other_id}/kill", headers=_auth(KEY),
                   json={"sessionId": other_id})
    assert r.json() == {"status": "success", "message": "Session terminated successfully"}
    summary = httpx.get(f"{base}/session/{other_id}", headers=_auth(KEY)).json()
    assert summary["status"] == "stopped" and "token" not in summary["config"]


def test_the_socket_refuses_bad_tokens_and_ended_sessions(server):
    base, _, _ = server
    session_id, token, address = _session(base)
    bare = address.split("?")[0]
    for url, header in ((bare, None), (bare, "garbage"), (bare + "?sessionToken=garbage", None)):
        with _connect(url, header) as sock:
            frame = _recv(sock)
            assert frame["command"] == "error" and frame["code"] in (
                "MISSING_SESSION_TOKEN", "INVALID_SESSION_TOKEN")
            with pytest.raises(ConnectionClosed) as closed:
                sock.recv(timeout=5)
            assert closed.value.rcvd.code == 1008
    other_id, _, _ = _session(base)
    with _connect(f"{bare}?sessionId={other_id}", token) as sock:  # another session's id
        assert _recv(sock)["code"] == "INVALID_SESSION_TOKEN"
    httpx.request("DELETE", f"{base}/session/stop", headers=_auth(KEY),
                  json={"sessionId": session_id, "sessionToken": token})
    with _connect(address) as sock:  # the address alone carries the token (Anam's clients)
        assert _recv(sock)["code"] == "SESSION_NOT_FOUND"


# ---------------------------------------------------------------------- the generic contract


@pytest.mark.parametrize("change,message", [
    (lambda b: b.pop("avatar_id") and b.pop("quality"),
     "Missing required field(s): avatar_id, quality"),
    (lambda b: b["agora_settings"].pop("uid"), "Missing required agora_settings field(s): uid"),
    (lambda b: b.update(quality="4k"), "Invalid quality value. Must be one of: low, medium, "
                                       "high"),
    (lambda b: b.update(video_encoding="MPEG"), "Invalid video_encoding value. Must be one of: "
                                                "H264, VP8, AV1"),
    (lambda b: b.update(activity_idle_timeout=-5), "activity_idle_timeout must be a "
                                                   "non-negative number"),
])
def test_the_generic_contracts_validation_messages(server, change, message):
    base, _, _ = server
    body = {"avatar_id": "16cb73e7de08", "quality": "high", "version": "v1",
            "video_encoding": "H264", "activity_idle_timeout": 120,
            "agora_settings": {"app_id": "a", "token": "t", "channel": "room1", "uid": "333",
                               "enable_string_uid": False}}
    change(body)
    r = httpx.post(f"{base}/session/start", json=body, headers={"x-api-key": KEY})
    assert (r.status_code, r.json()) == (400, {"error": "Invalid request", "message": message,
                                               "code": "VALIDATION_ERROR"})


def test_the_generic_flow_end_to_end_with_snake_case_frames(server):
    """/session/start, then the generic protocol's socket: header auth, full snake_case init
    with vendor passthrough, sampleRate (camelCase), and a stop with x-api-key."""
    base, client, _ = server
    body = {"avatar_id": "16cb73e7de08", "quality": "low", "version": "v1",
            "video_encoding": "VP8", "activity_idle_timeout": 120, "vendor_key": "kept",
            "agora_settings": {"app_id": "a", "token": "t", "channel": "room1", "uid": 333,
                               "enable_string_uid": False}}
    r = httpx.post(f"{base}/session/start", json=body, headers={"x-api-key": KEY})
    assert r.status_code == 200 and set(r.json()) == {"session_id", "websocket_address",
                                                      "session_token"}
    out = r.json()
    with _connect(out["websocket_address"], out["session_token"]) as sock:
        init = {"command": "init", "session_id": out["session_id"], **body,
                "event_id": "i1"}
        sock.send(json.dumps(init))
        assert _recv(sock)["state"] == "ready"
        _voice(sock, _pcm(0.5, 24000), "v1", rate=24000, key="sampleRate")
        first = _until(sock, lambda f: f["command"] == "lipsync")[-1]
        assert first["fps"] == 15 and len(first["mouth"]) == 7  # 0.5 s at 15 fps: 7 whole
        r = httpx.request("DELETE", f"{base}/session/stop", headers={"x-api-key": KEY},
                          json={"session_id": out["session_id"],
                                "session_token": out["session_token"]})
        assert r.status_code == 200
        frames = _until(sock, lambda f: f.get("state") == "stopped")
        assert any(f["command"] == "segment" and f["status"] == "interrupted" for f in frames)
    _, state = client.ref(AVATAR_SESSION, out["session_id"]).state()
    assert state["init"]["vendor_key"] == "kept" and state["sample_rate"] == 24000
    shown = httpx.get(f"{base}/session/{out['session_id']}", headers={"x-api-key": KEY})
    assert shown.status_code == 200 and '"token"' not in shown.text  # the Agora token


def test_the_generic_address_carries_the_token_for_a_client_that_sends_no_headers(server):
    """Agora's generic audio sender connects to websocket_address as it is, with no headers."""
    base, _, _ = server
    body = {"avatar_id": "16cb73e7de08", "quality": "high", "version": "v1",
            "video_encoding": "H264", "activity_idle_timeout": 60,
            "agora_settings": {"app_id": "a", "token": "t", "channel": "c", "uid": 1,
                               "enable_string_uid": False}}
    out = httpx.post(f"{base}/session/start", json=body, headers={"x-api-key": KEY}).json()
    assert out["session_id"] in out["websocket_address"]
    with _connect(out["websocket_address"]) as sock:  # no Authorization header
        sock.send(json.dumps({"command": "init", "session_id": out["session_id"], **body,
                              "event_id": "i1"}))
        assert _recv(sock)["state"] == "ready"
    bare = out["websocket_address"].split("?")[0]
    with _connect(bare, out["session_token"]) as sock:  # the Bearer header still works
        sock.send(json.dumps({"command": "heartbeat", "event_id": "h1"}))
        assert _recv(sock)["command"] == "heartbeat_ack"


def test_the_socket_refuses_a_token_whose_owner_is_not_the_sessions(server):
    """A token signed with the service's secret, naming this session and its jti, but owned by
    another key, is refused; the same token with the session's own owner is let in."""
    import jwt

    from api.avatar import keys

    base, client, _ = server
    session_id, _, address = _session(base)
    _, state = client.ref(AVATAR_SESSION, session_id).state()
    bare = address.split("?")[0]

    def signed(owner: str) -> str:
        return jwt.encode({"sub": session_id, "own": owner, "jti": state["jti"],
                           "aud": keys.AUDIENCE, "iat": int(time.time()),
                           "exp": int(time.time()) + 600}, keys._secret(), algorithm="HS256")

    with _connect(bare, signed(keys.key_id(OTHER_KEY))) as sock:
        assert _recv(sock)["code"] == "INVALID_SESSION_TOKEN"
        with pytest.raises(ConnectionClosed):
            sock.recv(timeout=5)
    assert state["owner"] == keys.key_id(KEY)
    with _connect(bare, signed(state["owner"])) as sock:
        sock.send(json.dumps({"command": "heartbeat", "event_id": "h1"}))
        assert _recv(sock)["command"] == "heartbeat_ack"


# ---------------------------------------------------------------------- the socket


def test_malformed_frames_get_error_frames_and_the_socket_stays_open(server):
    base, _, _ = server
    session_id, token, address = _session(base, audioSampleRate=16000)
    with _connect(address) as sock:
        _voice(sock, _pcm(0.1), "early")
        assert _recv(sock) == {"command": "error", "event_id": "early",
                               "code": "NOT_INITIALIZED", "message": "send init before voice"}
        _init(sock, session_id)
        cases = [
            ("{not json", None, "INVALID_JSON"),
            (json.dumps({"command": "dance", "event_id": "u"}), "u", "UNKNOWN_COMMAND"),
            (json.dumps({"command": "voice", "event_id": "b", "audio": "%%%",
                         "sample_rate": 16000}), "b", "INVALID_AUDIO"),
            (json.dumps({"command": "voice", "event_id": "o",
                         "audio": base64.b64encode(b"abc").decode(), "sample_rate": 16000}),
             "o", "INVALID_AUDIO"),
            (json.dumps({"command": "voice", "event_id": "r",
                         "audio": base64.b64encode(_pcm(0.1, 48000)).decode(),
                         "sample_rate": 48000}), "r", "SAMPLE_RATE_MISMATCH"),
            (json.dumps({"command": "voice", "event_id": "e",
                         "audio": base64.b64encode(_pcm(0.1)).decode(), "sample_rate": 16000,
                         "encoding": "OPUS"}), "e", "UNSUPPORTED_ENCODING"),
            (json.dumps({"command": "voice", "event_id": "m"}), "m", "VALIDATION_ERROR"),
            (json.dumps({"command": "voice_end", "event_id": "n"}), "n", "NO_SEGMENT"),
            (json.dumps({"command": "init", "sessionId": "someone-else", "event_id": "s"}),
             "s", "SESSION_MISMATCH"),
            (json.dumps([1, 2]), None, "VALIDATION_ERROR"),
            (json.dumps({"command": "special", "event_id": "x",
                         "content": "x" * (2 * 2 ** 20)}), None, "FRAME_TOO_LARGE"),
            (json.dumps({"command": "heartbeat", "event_id": "big", "timestamp": 2 ** 70}),
             None, "INVALID_JSON"),
        ]
        for text, event_id, code in cases:
            sock.send(text)
            frame = _recv(sock)
            assert (frame["command"], frame["event_id"], frame["code"]) == (
                "error", event_id, code), (text[:80], frame)
        sock.send(b"\x00\x01")  # binary
        assert _recv(sock)["code"] == "BINARY_FRAME"
        sock.send(json.dumps({"command": "heartbeat", "event_id": "still"}))
        ack = _recv(sock)
        assert ack["command"] == "heartbeat_ack" and ack["event_id"] == "still"
        assert isinstance(ack["timestamp"], int)


def _wav(tone: float, silence: float, rate: int = 16000) -> bytes:
    pcm = _pcm(tone, rate) + b"\x00\x00" * int(silence * rate)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return out.getvalue()


def test_a_wav_yields_a_lipsync_track_that_follows_its_loudness(server, tmp_path):
    """1.3 s of tone then 0.9 s of silence, sent as Anam's client sends a WAV (0.5 s chunks,
    every 0.1 s): a track of ceil(2.2 * 30) = 66 frames at 30 fps (quality high), open over
    the tone, closed over the silence."""
    base, client, data = server
    session_id, token, address = _session(base)
    path = tmp_path / "tone.wav"
    path.write_bytes(_wav(1.3, 0.9))
    with wave.open(str(path)) as w:
        rate, pcm = w.getframerate(), w.readframes(w.getnframes())
    with _connect(address) as sock:
        _init(sock, session_id)
        for i, chunk in enumerate(_chunks(pcm, rate)):
            _voice(sock, chunk, f"c{i}")
            time.sleep(0.1)
        sock.send(json.dumps({"command": "voice_end", "event_id": "done"}))
        frames = _until(sock, lambda f: f["command"] == "segment")
    mouth: list[float] = []
    for f in frames:
        if f["command"] == "lipsync":
            assert f["first_frame"] == len(mouth) and f["fps"] == 30
            mouth += f["mouth"]
    end = frames[-1]
    assert end["status"] == "ended" and end["event_id"] == "done"
    assert len(mouth) == end["frames"] == end["played_frames"] == math.ceil(2.2 * 30)
    assert end["seconds"] == pytest.approx(2.2)
    tone, silence = mouth[:38], mouth[40:]  # frame 39 straddles the edge (1.3 s = frame 39)
    assert min(tone) > 0.8 and max(silence) == 0.0
    _, state = client.ref(AVATAR_SESSION, session_id).state()
    segment = state["segments"][-1]
    assert segment["frames"] == 66 and segment["samples"] == int(2.2 * 16000)
    with wave.open(os.path.join(data, "avatar_audio", segment["blob"])) as w:
        assert w.readframes(w.getnframes()) == pcm
    # the console reads the same track back from the audio, with the operator token only
    url = f"{base}/v1/avatar/sessions/{session_id}/segments/{segment['segment']}/lipsync"
    assert httpx.get(url).status_code == 401
    track = httpx.get(url, headers=OPERATOR).json()
    assert track["fps"] == 30 and track["mouth"] == mouth
    assert httpx.get(url.replace("/segments/", "/segments/9"), headers=OPERATOR
                     ).status_code == 404


def test_voice_interrupt_takes_effect_at_once_mid_segment(server):
    """Four seconds of audio sent at once play in real time; an interrupt one second in ends
    the segment at once: cut short, nothing more of it played, and the avatar goes idle."""
    base, client, _ = server
    session_id, token, address = _session(base)
    with _connect(address, token) as sock:
        _init(sock, session_id)
        for i, chunk in enumerate(_chunks(_pcm(4.0))):
            _voice(sock, chunk, f"c{i}")
        _until(sock, lambda f: f.get("state") == "speaking")
        time.sleep(1.0)
        sock.send(json.dumps({"command": "voice_interrupt", "event_id": "stop!"}))
        frames = _until(sock, lambda f: f.get("state") == "idle")
        end = next(f for f in frames if f["command"] == "segment")
        assert end["status"] == "interrupted" and end["event_id"] == "stop!"
        # at once: cut short, with the audio still queued never played
        assert 0 < end["played_frames"] < end["frames"] == 120
        assert not [f for f in frames[frames.index(end):] if f["command"] == "lipsync"]
        # the socket goes on: a new segment after the interrupt
        _voice(sock, _pcm(0.5), "next")
        sock.send(json.dumps({"command": "voice_end", "event_id": "next-end"}))
        again = _until(sock, lambda f: f["command"] == "segment")[-1]
        assert again["status"] == "ended" and again["segment"] == end["segment"] + 1
    state = poll(lambda: client.ref(AVATAR_SESSION, session_id).state()[1],
                 lambda s: len(s["segments"]) == 2 and not s["connections"])
    assert [s["status"] for s in state["segments"]] == ["interrupted", "ended"]


def test_idle_timeout_ends_the_session(server):
    base, client, _ = server
    session_id, token, address = _session(base, activityIdleTimeout="1")
    with _connect(address) as sock:
        _init(sock, session_id)
        for _ in range(3):  # heartbeats keep it alive
            time.sleep(0.6)
            sock.send(json.dumps({"command": "heartbeat", "event_id": "hb"}))
            assert _recv(sock)["command"] == "heartbeat_ack"
        frames = _until(sock, lambda f: f.get("state") == "stopped", timeout=10)
        assert frames[-1]["reason"] == "idle_timeout"
        with pytest.raises(ConnectionClosed) as closed:
            sock.recv(timeout=5)
        assert closed.value.rcvd.code == 4408
    assert client.ref(AVATAR_SESSION, session_id).state()[1]["status"] == "timed_out"
    # a session nobody connects to times out too, when it is next touched
    idle_id, idle_token, idle_address = _session(base, activityIdleTimeout=1)
    time.sleep(1.5)
    with _connect(idle_address) as sock:
        assert _recv(sock)["code"] == "SESSION_TIMED_OUT"
    r = httpx.request("DELETE", f"{base}/session/stop", headers=_auth(KEY),
                      json={"sessionId": idle_id, "sessionToken": idle_token})
    assert r.status_code == 404


def test_the_sessions_log_replays_to_the_same_state(server):
    base, client, _ = server
    session_id, token, address = _session(base)
    with _connect(address) as sock:
        _init(sock, session_id)
        sock.send(json.dumps({"command": "special", "event_id": "w",
                              "content": '{"type":"action","action":"wave"}'}))
        for i, chunk in enumerate(_chunks(_pcm(1.0))):
            _voice(sock, chunk, f"c{i}")
        sock.send(json.dumps({"command": "voice_end", "event_id": "e"}))
        _until(sock, lambda f: f["command"] == "segment")
    ref = client.ref(AVATAR_SESSION, session_id)
    before = poll(lambda: ref.state(), lambda s: not s[1]["connections"])
    assert client.passivate_all() >= 1
    assert ref.state() == before
    types = [e.type for e in ref.events()]
    assert types == ["token_issued", "started", "connected", "initialized", "special",
                     "segment_started", "segment_ended", "disconnected"]
    summary = httpx.get(f"{base}/session/{session_id}", headers=_auth(KEY)).json()
    assert summary["segments"][0]["frames"] == 30 and summary["specials"] == 1


def test_a_stop_written_by_anyone_reaches_the_socket_through_the_log(server):
    """A stop another replica (or a Python program) writes reaches this socket through the
    session log's tail: no replica-local shortcut involved."""
    base, client, _ = server
    session_id, _, address = _session(base)
    with _connect(address) as sock:
        _init(sock, session_id)
        client.ref(AVATAR_SESSION, session_id).ask({"type": "stop", "by": "operator",
                                                    "at": time.time()})
        frames = _until(sock, lambda f: f.get("state") == "stopped")
        assert frames[-1]["reason"] == "stopped"
        with pytest.raises(ConnectionClosed) as closed:
            sock.recv(timeout=5)
        assert closed.value.rcvd.code == 4410


def test_wrong_methods_and_paths_keep_the_documents_shape(server):
    base, _, _ = server
    r = httpx.get(f"{base}/session-token")
    assert r.status_code == 405 and r.json()["code"] == "METHOD_NOT_ALLOWED"
    r = httpx.get(f"{base}/session/a/b/c", headers=_auth(KEY))
    assert r.status_code == 404 and set(r.json()) == {"error", "message", "code"}
    assert "detail" in httpx.get(f"{base}/threads/x/y/z").json()  # other families: theirs


def test_a_socket_outlives_its_sessions_host_killed_with_sigkill(server):
    """The session's host is killed mid-session: the revived host's activation closes the
    socket it finds recorded as open (lost), the socket, alive in its replica, sees that in
    the log's tail and connects again, and its segments are still logged."""
    base, client, _ = server
    session_id, _, address = _session(base)
    ref = client.ref(AVATAR_SESSION, session_id)
    with _connect(address) as sock:
        _init(sock, session_id)
        for pid in {s["pid"] for s in client.stats()}:
            os.kill(pid, signal.SIGKILL)
        events = poll(lambda: [e.type for e in ref.events()],
                      lambda t: t[-2:] == ["disconnected", "connected"], 120)
        assert events.count("connected") == 2
        sock.send(json.dumps({"command": "heartbeat", "event_id": "after"}))
        assert _until(sock, lambda f: f["command"] == "heartbeat_ack")[-1]["event_id"] == "after"
        _voice(sock, _pcm(0.5), "v")
        sock.send(json.dumps({"command": "voice_end", "event_id": "e"}))
        assert _until(sock, lambda f: f["command"] == "segment")[-1]["status"] == "ended"
    state = poll(lambda: ref.state()[1], lambda s: not s["connections"])
    assert state["segments"][-1]["status"] == "ended" and state["status"] == "started"


def test_a_segment_is_acknowledged_only_once_its_end_is_in_the_log(server):
    """The session's hosts are killed while segments are under way: every `segment` frame the
    client got names a segment whose end the log holds, with the same frames; a write that
    could not land is retried (same idempotency key) and never stored twice."""
    base, client, _ = server
    session_id, _, address = _session(base)
    ref = client.ref(AVATAR_SESSION, session_id)
    acknowledged: dict[int, dict] = {}

    def ended(f: dict) -> bool:
        return f["command"] == "segment" or (f["command"] == "error"
                                             and f["code"] == "NOT_STORED")

    with _connect(address) as sock:
        _init(sock, session_id)
        for k in range(3):
            pids = poll(lambda: {s["pid"] for s in client.stats()}, lambda p: len(p) >= 1, 60)
            _voice(sock, _pcm(0.3), f"v{k}")
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            sock.send(json.dumps({"command": "voice_end", "event_id": f"e{k}"}))
            last = _until(sock, ended, 120)[-1]
            if last["command"] == "segment":
                acknowledged[last["segment"]] = last
    assert acknowledged, "no segment was acknowledged at all"
    events = ref.events()
    ends = [e.data for e in events if e.type in ("segment_ended", "segment_interrupted")]
    logged = {d["segment"]: d for d in ends}
    assert len(ends) == len(logged)  # no segment's end is stored twice
    for number, frame in acknowledged.items():
        assert number in logged, (number, [e.type for e in events])
        assert logged[number]["frames"] == frame["frames"]
        assert logged[number]["played"] == frame["played_frames"]


def test_an_expired_token_cannot_start_its_session(server):
    """The token's expiry is checked twice: its signature's exp, and the session's own
    expires_at when the start is decided (a token whose exp a clock skew let through)."""
    from runtime.client import ActorError

    base, client, _ = server
    token = _token(base)
    from api.avatar import keys

    claims = keys.read_token(token)
    ref = client.ref(AVATAR_SESSION, claims.session_id)
    with pytest.raises(ActorError) as refused:
        ref.ask({"type": "start", "jti": claims.jti, "at": claims.expires_at + 1})
    assert refused.value.code == "token_expired"
    with pytest.raises(ActorError) as refused:
        ref.ask({"type": "start", "jti": "another", "at": time.time()})
    assert refused.value.code == "token_used"
    assert httpx.post(f"{base}/session", json={}, headers=_auth(token)).status_code == 200


def test_api_keys_from_a_file_and_an_unreadable_file(tmp_path, monkeypatch):
    from api.avatar import keys
    from api.avatar.settings import AvatarSettings

    path = tmp_path / "keys.txt"
    path.write_text("# ours\nfirst-key\n\n  second-key  \n")
    monkeypatch.setattr(keys, "settings", lambda: AvatarSettings.load(
        {"AVATAR_API_KEYS_FILE": str(path), "AVATAR_API_KEYS": ""}))
    assert keys.api_key_owner("second-key") == keys.key_id("second-key")
    assert keys.api_key_owner("# ours") is None and keys.api_key_owner("") is None
    path.unlink()
    assert keys.api_key_owner("first-key") is None  # no key is valid; nothing is invented


def test_ready_comes_before_anything_of_a_segment(server):
    """Audio sent right behind init (Anam's clients wait 0.5 s, others do not) plays only
    once init is stored and "ready" sent."""
    base, _, _ = server
    session_id, _, address = _session(base)
    with _connect(address) as sock:
        sock.send(json.dumps({"command": "init", "sessionId": session_id, "event_id": "i"}))
        _voice(sock, _pcm(0.5), "v")
        sock.send(json.dumps({"command": "voice_end", "event_id": "e"}))
        frames = _until(sock, lambda f: f["command"] == "segment")
    kinds = [(f["command"], f.get("state")) for f in frames]
    assert kinds[0] == ("state", "ready") and kinds[1] == ("state", "speaking"), kinds


def test_a_newer_socket_takes_the_session_over_and_segments_stay_distinct(server):
    """A client that connects again while its old socket is still open (a network change, a
    second tab): the newer socket has the session, the older is told "stopped" with reason
    "superseded" and closed with 4409; segment numbers go on from the older socket's, and
    each segment's audio is its own file (one socket's writes never land in another's)."""
    base, client, data = server
    session_id, _, address = _session(base)
    ref = client.ref(AVATAR_SESSION, session_id)
    with _connect(address) as old:
        _init(old, session_id)
        _voice(old, _pcm(0.3), "a1")
        old.send(json.dumps({"command": "voice_end", "event_id": "a2"}))
        first = _until(old, lambda f: f["command"] == "segment")[-1]
        with _connect(address) as new:
            told = _until(old, lambda f: f["command"] == "state" and f["state"] == "stopped")
            assert told[-1]["reason"] == "superseded"
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    old.recv(timeout=10)
            assert closed.value.rcvd.code == 4409
            _init(new, session_id)
            _voice(new, _pcm(0.3, hz=440.0), "b1")
            new.send(json.dumps({"command": "voice_end", "event_id": "b2"}))
            second = _until(new, lambda f: f["command"] == "segment")[-1]
            assert second["segment"] == first["segment"] + 1
            assert second["status"] == "ended"
    events = ref.events()
    connected = [e.data for e in events if e.type == "connected"]
    assert connected[-1]["replaces"] == [connected[0]["connection"]]
    ends = {e.data["segment"]: e.data for e in events if e.type == "segment_ended"}
    assert sorted(ends) == [first["segment"], second["segment"]]
    blobs = [ends[n]["blob"] for n in sorted(ends)]
    assert len(set(blobs)) == 2 and all(os.path.exists(os.path.join(
        data, "avatar_audio", b)) for b in blobs)
    state = poll(lambda: ref.state()[1], lambda s: not s["connections"], 30)  # both closed
    assert state["replaced"] == [connected[0]["connection"]]
