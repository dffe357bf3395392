"""The web process writes nothing outside the data folder (gunicorn 27's control socket)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from gunicorn.config import Config  # type: ignore[import-untyped]

import app.gunicorn_conf

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    yield
    importlib.reload(app.gunicorn_conf)  # the environment is restored by then


def _load(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> ModuleType:
    monkeypatch.setenv("FEEDREC_DATA_DIR", str(data_dir))
    return importlib.reload(app.gunicorn_conf)


def test_the_control_socket_lives_under_the_data_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conf = _load(monkeypatch, tmp_path)
    config = Config()
    for name in ("control_socket", "control_socket_disable"):
        config.set(name, getattr(conf, name))  # gunicorn knows both settings
    assert Path(config.control_socket) == tmp_path.resolve() / "gunicorn.ctl"
    assert config.control_socket_disable is False


def test_a_data_folder_too_deep_for_a_unix_socket_gets_no_control_socket(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conf = _load(monkeypatch, tmp_path / ("d" * 120))
    assert conf.control_socket_disable is True
