"""Settings: one name, one default and one README line per environment variable."""

from __future__ import annotations

import re
from dataclasses import Field, fields
from pathlib import Path

import pytest

from app.settings import ENV_NAMES, Settings, SettingsError

pytestmark = pytest.mark.unit

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_rows() -> dict[str, str]:
    rows = {}
    for line in README.read_text().splitlines():
        match = re.match(r"\| `([A-Z0-9_]+)` \| ([^|]+) \|", line)
        if match:
            rows[match.group(1)] = match.group(2).strip()
    return rows


def test_every_setting_has_an_environment_variable() -> None:
    assert {field.name for field in fields(Settings)} == set(ENV_NAMES)


@pytest.mark.parametrize("field", fields(Settings), ids=lambda f: ENV_NAMES[f.name])
def test_every_variable_is_in_the_readme_table_with_its_default(field: Field[object]) -> None:
    name = ENV_NAMES[field.name]
    rows = _readme_rows()
    assert name in rows, f"{name} is missing from the README configuration table"
    default = field.default
    documented = rows[name]
    if default in ("", None):
        assert documented == "(empty)"
    else:
        assert documented == f"`{default}`"


def test_values_are_parsed_by_the_type_of_their_default() -> None:
    settings = Settings.from_env(
        {"WEB_WORKERS": "4", "FEEDREC_DATA_DIR": "/srv/feed", "LIGHTFM_POLL_INTERVAL_S": "2.5"}
    )
    assert settings.web_workers == 4
    assert settings.data_dir == Path("/srv/feed")
    assert settings.lightfm_poll_interval_s == 2.5
    assert settings.resolved_database_url == "sqlite:////srv/feed/feedrec.db"


def test_a_malformed_value_names_its_variable() -> None:
    with pytest.raises(SettingsError, match="WEB_WORKERS"):
        Settings.from_env({"WEB_WORKERS": "many"})
