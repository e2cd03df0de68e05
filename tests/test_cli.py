"""The actorlog command's own behaviour that needs no service: refusals said at once, and the
summary table as a terminal of 80 columns shows it."""

from __future__ import annotations

import io

from rich.console import Console

import cli
from api.sotopia.batches import summary


def _row(model: str, goal: float, secret: float) -> dict:
    return {"status": "completed", "model": model, "agent_1_overall": goal,
            "agent_2_overall": goal, "agent_1_goal": goal, "agent_2_goal": goal,
            "agent_1_secret": secret, "agent_2_secret": secret,
            "agent_1_financial_and_material_benefits": 1.0,
            "agent_2_financial_and_material_benefits": 2.0}


def test_resume_without_a_batch_id_is_refused_at_once(capsys):
    assert cli.main(["simulate", "--resume", "--url", "http://127.0.0.1:9"]) == 2
    assert "--resume needs --batch" in capsys.readouterr().err


def test_identical_samples_say_so_instead_of_a_zero_width_interval():
    same = summary([_row("builtin", 5.0, -1.0) for _ in range(4)])[0]
    assert same["goal"]["identical"] and same["goal"]["ci95"] == 0.0
    varied = summary([_row("m", g, -1.0) for g in (3.0, 5.0, 8.0)])[0]
    assert not varied["goal"]["identical"] and varied["goal"]["ci95"] > 0
    assert varied["secret"]["identical"]
    one = summary([_row("m", 3.0, 0.0)])[0]
    assert one["goal"]["identical"]  # one episode: both agents' scores, the same here
    lone = summary([{**_row("m", 3.0, 0.0), "agent_2_goal": None}])[0]
    assert lone["goal"] == {"mean": 3.0, "ci95": None, "n": 1, "identical": False}
    assert cli._ci(same["goal"]) == "all equal" and cli._ci(lone["goal"]) == "one sample"
    assert cli._ci(varied["goal"]).startswith("± ")


def test_the_summary_table_fits_80_columns_with_every_sotopia_dimension():
    rows = [_row(f"gpt-4o-mini-{k}", g, -float(k)) for k in range(3) for g in (2.0, 7.5)]
    out = io.StringIO()
    Console(file=out, width=80).print(cli._table(summary(rows), ("model",)))
    lines = out.getvalue().splitlines()
    assert lines and max(len(line) for line in lines) <= 80
    text = out.getvalue()
    assert "financial_and_material_benefits" in text.replace("\n", "").replace("│", "") \
        or "financial_and_mat" in text
    assert "gpt-4o-mini-2" in text and "± " in text and "all equal" in text
