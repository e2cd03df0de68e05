"""The seed documents' own example requests (API.md, both eras), run as written against the
Serve deployment over HTTP: only the host and port are the test server's, and the example ids
the documents hard-code are replaced by the ones the server returned, as a reader would."""

from __future__ import annotations

import ast
import contextlib
import io
import os

import httpx
import pytest

from tests.conftest import fixtures_dir, poll

SEEDS = fixtures_dir("seeds")
DOC_ASSISTANT = "9c7d7e6e-654b-4eaa-b160-f19f922fc63b"
DOC_THREAD = "231dc7f3-33ee-4040-98fe-27f6e2aa8b2b"


def examples(name: str) -> list[str]:
    """Each example: from an "import requests" line to the next blank line or fence."""
    with open(os.path.join(SEEDS, name), encoding="utf-8") as f:
        lines = f.read().splitlines()
    out, current = [], None
    for line in lines:
        if line.strip() == "import requests":
            current = [line]
        elif current is not None:
            if not line.strip() or line.startswith("```"):
                out.append("\n".join(current))
                current = None
            else:
                current.append(line)
    return out


def run_example(code: str, base: str, ids: dict[str, str]) -> tuple[object, str]:
    code = code.replace("http://127.0.0.1:8100", base)
    for doc_id, real in ids.items():
        code = code.replace(doc_id, real)
    tree = ast.parse(code)
    if isinstance(tree.body[-1], ast.Expr):  # the examples end in `....content`: keep it
        tree.body[-1] = ast.Assign([ast.Name("_result", ast.Store())], tree.body[-1].value)
        ast.fix_missing_locations(tree)
    scope: dict[str, object] = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(tree, "<seed example>", "exec"), scope)  # noqa: S102
    return scope.get("_result"), printed.getvalue()


def wait_for_ai(base: str, tid: str) -> None:
    """"after a bit": until the thread's last message is the assistant's."""
    state = poll(lambda: httpx.get(f"{base}/threads/{tid}/state",
                                   cookies={"opengpts_user_id": "foo"}).json(),
                 lambda s: bool(s.get("values")) and s["values"][-1]["type"] == "ai", 30)
    assert state.get("values") and state["values"][-1]["type"] == "ai", f"no AI message on {tid}"


@pytest.mark.parametrize("seed", ["002_8553bd5846847d5a.txt", "004_f6c421f559898832.txt"])
@pytest.mark.parametrize("path", ["replica", "serve"])
def test_seed_examples_run_as_written(service, seed, path):
    import orjson

    urls, _, _ = service
    base = urls[path]
    blocks = examples(seed)
    assert len(blocks) == 10
    ids: dict[str, str] = {}
    outputs = []
    for code in blocks:
        result, printed = run_example(code, base, ids)
        outputs.append((code, result, printed))
        if isinstance(result, bytes) and result not in (b"null",):
            body = orjson.loads(result)
            assert not (isinstance(body, dict) and "detail" in body), (code, body)
            if isinstance(body, dict) and "assistant_id" in body and DOC_ASSISTANT not in ids:
                ids[DOC_ASSISTANT] = body["assistant_id"]
            if isinstance(body, dict) and "thread_id" in body and DOC_THREAD not in ids:
                ids[DOC_THREAD] = body["thread_id"]
        if "/runs'" in code:
            wait_for_ai(base, ids[DOC_THREAD])
    assert set(ids) == {DOC_ASSISTANT, DOC_THREAD}
    reads = [orjson.loads(r) for c, r, _ in outputs if isinstance(r, bytes) and "get(" in c]
    key = "messages" if seed.startswith("002") else "values"
    empty = reads[0][key]
    assert empty in ([], None)
    assert [m["content"] for m in reads[1][key]] == ["hi! my name is bob"]
    assert [m["type"] for m in reads[2][key]] == ["human", "ai"]
    assert [m["content"] for m in reads[3][key]][2] == "whats my name? respond in spanish"
    assert reads[3][key][3]["content"].lower() == "tu nombre es bob."
    # the streaming example prints the growing answer (the first era's object framing)
    printed = outputs[-1][2].splitlines()
    assert printed[0] == "have a good day!"
    assert printed[-1] == "You too! If you have any other questions, feel free to ask."
    assert len(printed) > 10 and printed[2].startswith("You")
