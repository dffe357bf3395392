"""`make run` / `make test` say what to install before pip fails deep inside a build."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import pytest

from app import prereqs

pytestmark = pytest.mark.unit


def test_a_machine_without_compiler_or_headers_is_told_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.setattr(sysconfig, "get_paths", lambda: {"include": str(tmp_path)})
    assert prereqs.main() == 1
    said = capsys.readouterr().err
    assert "a C compiler" in said
    assert "Python's C headers" in said
    assert "apt-get install -y build-essential python3-dev" in said


def test_this_machine_has_what_the_build_needs() -> None:
    assert prereqs.missing() == []
