"""The layers stay apart (issue 10, part 3): runtime/ imports nothing of the application
(llm/, actors/, api/, schemas/), and entity kinds never see HTTP. Checked on the source, so a
stray import fails here before it couples the layers."""

from __future__ import annotations

import ast
import os

import pytest

from tests.conftest import ROOT


def _imports(package: str) -> list[tuple[str, str]]:
    """(file, imported module) for every import in the package's files."""
    out = []
    for folder, _, files in os.walk(os.path.join(ROOT, package)):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            tree = ast.parse(open(path, encoding="utf-8").read())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    out += [(path, a.name) for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    out.append((path, node.module))
    return out


@pytest.mark.parametrize("package, forbidden", [
    ("runtime", ("llm", "actors", "api", "schemas", "fastapi", "starlette")),
    ("actors", ("api", "fastapi", "starlette", "sse_starlette", "uvicorn")),
    ("llm", ("api", "actors", "fastapi", "starlette")),
])
def test_a_layer_imports_nothing_above_it(package, forbidden):
    bad = [(os.path.relpath(f, ROOT), m) for f, m in _imports(package)
           if m.split(".")[0] in forbidden]
    assert bad == [], f"{package}/ must not import {forbidden}: {bad}"


SERVICES = ("api/commands.py", "api/opengpts/service.py", "api/agent_chat/service.py",
            "api/sotopia/service.py", "api/sotopia/batches.py", "api/avatar/service.py",
            "tests/example_family/service.py")
#: a service speaks no HTTP: no web framework, and none of the edge's modules
EDGE = ("fastapi", "starlette", "sse_starlette", "uvicorn", "api.kit", "api.edge")


def _direct_imports(path: str) -> list[str]:
    tree = ast.parse(open(os.path.join(ROOT, path), encoding="utf-8").read())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append(node.module)
    return found


@pytest.mark.parametrize("path", SERVICES)
def test_a_family_service_speaks_no_http(path):
    """What the SDK, the command line and the routes all call imports no web framework and
    no route or socket module: its refusals are api/commands.py's Refused."""
    bad = [m for m in _direct_imports(path)
           if m.split(".")[0] in EDGE or m in EDGE or m.endswith((".routes", ".socket"))]
    assert bad == [], f"{path} imports the edge: {bad}"


def test_the_sdk_and_the_command_line_call_services_not_routes():
    for path in ("api/sotopia/runner.py", "cli.py"):
        bad = [m for m in _direct_imports(path) if m.endswith((".routes", ".socket"))]
        assert bad == [], f"{path} imports a route module: {bad}"
