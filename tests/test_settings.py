"""One typed settings model per part (runtime/settings.py): the README's table is theirs, a bad
value names its variable and stops the start, options carried from the driver win over the
environment, and no other module reads the environment."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

from api.families import sections
from api.settings import ServiceSettings
from api.sotopia.settings import SotopiaSettings
from runtime.config import Settings
from runtime.settings import ConfigError, RuntimeSettings, check, table

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: the modules that may read the environment: the settings models and their base
SETTINGS_MODULES = {"runtime/settings.py"}


def test_the_readme_table_is_the_models_table():
    readme = (ROOT / "README.md").read_text()
    marker = "<!-- configuration-table: actorlog config -->\n"
    assert marker in readme
    after = readme.split(marker, 1)[1]
    rows = []
    for line in after.splitlines():
        if not line.startswith("|"):
            break
        rows.append(line)
    assert "\n".join(rows) + "\n" == table(sections())
    # every part is there, every family's included
    for title in ("Runtime", "Service", "Models", "OpenGPTs", "Agent chat", "Sotopia",
                  "Avatar sessions"):
        assert f"| **{title}** | | |" in rows


@pytest.mark.parametrize("variable,value,words", [
    ("ACTORLOG_HOSTS", "two", "valid integer"),
    ("ACTORLOG_DEADLINES", '{"thread": -1}', "seconds > 0"),
    ("ACTORLOG_HTTP_MODE", "proxy", "'driver', 'replica' or 'serve'"),
    ("ACTORLOG_CORS_ORIGINS", "app.example.test", "not an origin"),
    ("ACTORLOG_MODEL_CALLS", "0", "greater than or equal to 1"),
    ("AUTH_TYPE", "basic", "'noop', 'jwt_local' or 'jwt_oidc'"),
    ("ACTORLOG_SOTOPIA_SWEEP_SECONDS", "-1", "greater than or equal to 0"),
    ("AVATAR_SESSION_TOKEN_SECONDS", "soon", "valid number"),
    ("ACTORLOG_AGENT_RUN_SECONDS", "0", "greater than 0"),
])
def test_a_bad_value_is_refused_naming_its_variable(variable, value, words):
    with pytest.raises(ConfigError) as refused:
        check(sections(), {variable: value})
    message = str(refused.value)
    assert message.startswith(f"{variable}: ") and words in message and repr(value) in message


def test_every_bad_variable_is_named_at_once():
    with pytest.raises(ConfigError) as refused:
        check(sections(), {"ACTORLOG_HOSTS": "x", "ACTORLOG_PORT": "99999"})
    assert "ACTORLOG_HOSTS" in str(refused.value) and "ACTORLOG_PORT" in str(refused.value)


def test_options_carried_from_the_driver_win_over_this_process_environment(monkeypatch):
    monkeypatch.setenv("ACTORLOG_SOTOPIA_SWEEP_SECONDS", "3")
    monkeypatch.setenv("SOTOPIA_WS_TOKENS", "a, b,,c")
    assert SotopiaSettings.load().sweep_seconds == 3.0
    assert SotopiaSettings.load().ws_tokens == ("a", "b", "c")
    carried = {"ACTORLOG_SOTOPIA_SWEEP_SECONDS": "0"}
    assert SotopiaSettings.load(carried).sweep_seconds == 0.0
    assert SotopiaSettings.load(carried).ws_tokens == ("a", "b", "c")  # the rest: environment
    # an empty variable is unset: the default
    monkeypatch.setenv("ACTORLOG_SOTOPIA_SWEEP_SECONDS", "")
    assert SotopiaSettings.load().sweep_seconds == 10.0


def test_settings_carry_every_other_actorlog_variable_to_the_hosts(monkeypatch):
    monkeypatch.setenv("ACTORLOG_HOSTS", "3")
    monkeypatch.setenv("ACTORLOG_MODEL_CALLS", "5")
    monkeypatch.setenv("ACTORLOG_KIND_MODULES", "a.b, c.d")
    settings = Settings.from_env()
    assert settings.hosts == 3 and settings.kind_modules == ("a.b", "c.d")
    assert settings.options["ACTORLOG_MODEL_CALLS"] == "5"
    assert "ACTORLOG_HOSTS" not in settings.options  # the runtime's own are typed fields
    again = Settings.from_dict(settings.to_dict())
    assert again == settings
    monkeypatch.setenv("ACTORLOG_HOSTS", "none")
    with pytest.raises(ConfigError, match="ACTORLOG_HOSTS"):
        Settings.from_env()


def test_the_service_does_not_start_with_a_bad_value(tmp_path):
    """Refused before Ray starts: the process exits at once, naming the variable."""
    env = {**os.environ, "ACTORLOG_PORT": "eighty", "ACTORLOG_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, str(ROOT / "embedded.py")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "ACTORLOG_PORT" in done.stderr and "eighty" in done.stderr
    assert not (tmp_path / "events.db").exists()


def test_actorlog_config_check_names_a_family_variable():
    env = {**os.environ, "AVATAR_MAX_BACKLOG_SECONDS": "-5"}
    done = subprocess.run([sys.executable, str(ROOT / "cli.py"), "config", "--check"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "AVATAR_MAX_BACKLOG_SECONDS" in done.stderr


def test_nothing_but_the_settings_reads_the_environment():
    reads = re.compile(r"os\.environ|os\.getenv|getenv\(")
    found = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.split("/")[0] in ("tests", "bench", ".venv", "build") or ".egg" in rel:
            continue
        if rel not in SETTINGS_MODULES and reads.search(path.read_text()):
            found.append(rel)
    assert found == []


def test_runtime_defaults_are_the_dataclass_defaults():
    """Settings() (tests, programs) and Settings.from_env() with nothing set agree."""
    model, plain = RuntimeSettings.load({}), Settings()
    assert (model.hosts, model.idle_seconds, model.max_resident, model.max_activations,
            model.rebalance_seconds, model.namespace) == (
        plain.hosts, plain.idle_seconds, plain.max_resident, plain.max_concurrent_activations,
        plain.rebalance_seconds, plain.namespace)
    assert ServiceSettings.load({}).max_json_depth == 64
