"""The README's Python example runs as written, in a fresh process with its own Ray."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.heavy  # the example runs in a process of its own, with its own Ray


def test_readme_example_runs(tmp_path):
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    block = re.search(r"<!-- example -->\s*```python\n(.*?)```", readme, re.S)
    assert block, "the README lost its example"
    env = {**os.environ, "ACTORLOG_DATA_DIR": str(tmp_path),
           "ACTORLOG_NAMESPACE": f"readme-{uuid.uuid4().hex[:8]}", "PYTHONPATH": ROOT}
    env.pop("RAY_ADDRESS", None)
    out = subprocess.run([sys.executable, "-c", block.group(1) + "\nimport ray\nray.shutdown()\n"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[0] == "1 ['added']"
    assert lines[1] == "(2, {'total': 7, 'adds': 2, 'notes': 0})"
    assert lines[2] == "(1, {'total': 2, 'adds': 1, 'notes': 0})"
    assert lines[3] == "[1, 2]"
    assert "invalid amount must be an integer" in out.stdout
    assert lines[-1] == "100"
