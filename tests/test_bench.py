"""Every bench section runs (issue 20: `store` and `pg` had rotted unseen, folding events of a
type their kind no longer knew). Each runs as `scripts/dev bench` runs it, with --quick sizes,
in a process of its own; it must end by itself with status 0, print its own heading and at
least one figure, and print no traceback. The figures themselves are not judged here (no
timed assertions in tests): bench/ prints them with their baselines."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.__main__ import SECTIONS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURE = " ratio "  # bench.common.report writes it on every figure's line


@pytest.mark.slow
@pytest.mark.parametrize("section", SECTIONS)
def test_a_bench_section_runs_with_quick_sizes(section, tmp_path):
    env = {**os.environ, "ACTORLOG_BENCH_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "bench", section, "--quick"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "Traceback" not in out, out[-4000:]
    lines = done.stdout.splitlines()
    assert f"# {section}" in lines, done.stdout[-2000:]
    assert any(FIGURE in line for line in lines), done.stdout[-2000:]
