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
