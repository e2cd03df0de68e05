"""schemathesis over the live /openapi.json: every documented operation, fuzzed with generated
valid and invalid input over real HTTP on loopback. No 5xx, and every answer matches what the
document says of it: a documented status, content type, headers and body schema.

Bounded: a fixed number of examples per operation and no shrinking past a few seconds, so the
whole pass takes about a minute here."""

from __future__ import annotations

import uuid

import httpx
import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (content_type_conformance, negative_data_rejection,
                                 not_a_server_error, positive_data_acceptance,
                                 response_schema_conformance, status_code_conformance,
                                 unsupported_method)

from tests.conftest import OPERATOR_TOKEN, kill_hosts, start_inprocess_server


@pytest.fixture(scope="module")
def base(ray_session, tmp_path_factory):
    url, _, client = start_inprocess_server(ray_session, str(tmp_path_factory.mktemp("fuzz")),
                                            options={"AVATAR_API_KEYS": AVATAR_KEY})
    yield url
    kill_hosts(client)


OWNER = "fuzz-owner"
AVATAR_KEY = "fuzz-avatar-key"
#: operations whose schema-valid requests may still be refused for what they would do with
#: the data stored, with the refusal's words: a batch's plan is counted against the stored
#: scenarios and agents (all of them when none are named), which no schema can bound
DATA_LIMITED = {"POST /v1/batches": "a batch has at most 100,000 episodes"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, positive_data_acceptance, negative_data_rejection,
          unsupported_method]


def _seed(base: str) -> tuple[str, str]:
    """An assistant and a thread of OWNER's, so that fuzzed requests also reach real ones."""
    with httpx.Client(base_url=base, cookies={"opengpts_user_id": OWNER}) as http:
        aid = http.post("/assistants", json={"name": "fuzzed", "public": True, "config": {
            "configurable": {"type": "chatbot"}}}).json()["assistant_id"]
        tid = http.post("/threads", json={"name": "fuzzed", "assistant_id": aid}
                        ).json()["thread_id"]
    return aid, tid


def test_no_5xx_and_answers_as_documented(base):
    """Every operation of the live document, in three bounded hypothesis runs: valid input
    with made-up ids, invalid input, and valid input aimed at a real assistant and thread of
    the caller's (ids in the path and the body replaced by theirs). The failures of all of
    them are reported together."""
    aid, tid = _seed(base)
    real = {"aid": aid, "tid": tid, "assistant_id": aid, "thread_id": tid}

    def aimed(case):
        case.cookies = {**(case.cookies or {}), "opengpts_user_id": OWNER}
        # the avatar family's routes past their credential check, the operator's past theirs
        operator = case.path.startswith(("/v1/actors", "/v1/runtime", "/metrics"))
        case.headers = {**(case.headers or {}), "Authorization": "Bearer " + (
            OPERATOR_TOKEN if operator else AVATAR_KEY), "x-api-key": AVATAR_KEY}
        if isinstance(case.body, dict):
            case.body = {k: real.get(k, v) if k in ("assistant_id", "thread_id") else v
                         for k, v in case.body.items()}
        return case

    schema = schemathesis.openapi.from_url(base + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    failures: dict[str, str] = {}
    for operation in operations:
        names = {p.name for p in operation.path_parameters}
        runs = {
            "valid": operation.as_strategy(GenerationMode.POSITIVE),
            "invalid": operation.as_strategy(GenerationMode.NEGATIVE),
            "aimed": operation.as_strategy(GenerationMode.POSITIVE, path_parameters={
                k: v for k, v in real.items() if k in names}).map(aimed),
        }
        for mode, strategy in runs.items():
            @given(case=strategy)
            @settings(max_examples=6, deadline=None, derandomize=True, database=None,
                      phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            def fuzz(case) -> None:
                if mode != "aimed":
                    case.cookies = {**(case.cookies or {}),
                                    "opengpts_user_id": f"fuzz-{uuid.uuid4().hex[:6]}"}
                if operation.label not in DATA_LIMITED:
                    case.call_and_validate(checks=CHECKS, timeout=60)
                    return
                # a valid-shaped request may be refused for what it would do with the data
                # stored: that refusal, and only it, is a 422 here
                response = case.call(timeout=60)
                case.validate_response(response, checks=[c for c in CHECKS
                                                         if c is not positive_data_acceptance])
                if mode != "invalid" and response.status_code == 422:
                    assert DATA_LIMITED[operation.label] in response.text, response.text

            try:
                fuzz()
            except Unsatisfiable:  # nothing of it can be made invalid (no body, free strings)
                pass
            except BaseException as exc:  # noqa: BLE001 - schemathesis' failures are a
                # BaseExceptionGroup: collected, then reported all at once
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                failures[f"{operation.label} ({mode})"] = f"{type(exc).__name__}: {exc}"[:2000]
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


def test_a_wrong_method_is_405_naming_every_method_of_the_path(base):
    """Allow names every method the path takes: Starlette named only the first route's, and
    paths served by one route per method (GET, PUT, DELETE) lost the others."""
    doc = httpx.get(base + "/openapi.json").json()
    checked, wrong = 0, []
    for path, item in doc["paths"].items():
        documented = {m.upper() for m in item if m in ("get", "post", "put", "delete", "patch")}
        if not documented or "{" in path and path.count("{") > 2:
            continue
        url = base + path.replace("{", "x").replace("}", "")
        method = next(m for m in ("PATCH", "PUT", "DELETE", "POST") if m not in documented)
        r = httpx.request(method, url, cookies={"opengpts_user_id": OWNER})
        if r.status_code != 405:  # another route takes the concrete path with this method
            continue
        checked += 1
        allow = {a.strip() for a in r.headers.get("allow", "").split(",") if a.strip()}
        if not documented <= allow:
            wrong.append((path, method, sorted(allow), sorted(documented)))
    assert checked >= 20 and wrong == []
