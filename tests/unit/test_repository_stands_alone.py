"""The repository stands alone: a clone holds every page its files point a reader to.

Nothing may cite the working notes that lived beside the repository while it was built (their
names are assembled below, so this file does not cite them itself), and every relative link in
the Markdown documentation must reach a file of the repository.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

OUTSIDE_REFERENCES = (
    "../" + "shared",
    "FACTS" + ".md",
    "STYLE" + ".md",
    "DESIGN" + ".md",
)

# `[text](target)` and `![alt](target)`; the target ends at the first space or `)`.
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def repository_files() -> list[Path]:
    """Every file git tracks, plus new ones not ignored (so an unstaged page is checked too)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are unknown")
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    names = sorted({name for name in listing.split("\0") if name})
    return [ROOT / name for name in names if (ROOT / name).is_file()]


def outside_references(text: str) -> list[str]:
    return [reference for reference in OUTSIDE_REFERENCES if reference in text]


def broken_links(page: Path, text: str) -> list[str]:
    """The relative link targets of `page` that are not files or folders of the repository."""
    broken: list[str] = []
    for target in MARKDOWN_LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a web address, mailto:, or an anchor in the same page
        path = target.split("#", 1)[0]
        resolved = (page.parent / path).resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
    return broken


def test_no_file_refers_to_notes_outside_the_repository() -> None:
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in repository_files()
        if (found := outside_references(path.read_bytes().decode("utf-8", errors="replace")))
    }

    assert offenders == {}


def test_every_relative_link_in_the_documentation_reaches_a_file_of_the_repository() -> None:
    pages = [path for path in repository_files() if path.suffix == ".md"]
    assert ROOT / "README.md" in pages
    assert any(path.parent == ROOT / "docs" for path in pages)

    broken = {
        str(page.relative_to(ROOT)): links
        for page in pages
        if (links := broken_links(page, page.read_text(encoding="utf-8")))
    }

    assert broken == {}


def test_the_checks_catch_what_they_are_for() -> None:
    page = ROOT / "docs" / "example.md"
    text = (
        "[ok](architecture.md) [ok](../README.md#quick-start) [web](https://example.com/x.md)"
        " [anchor](#top) [missing](nowhere.md) [escapes](../../elsewhere/README.md)"
    )

    assert broken_links(page, text) == ["nowhere.md", "../../elsewhere/README.md"]
    assert outside_references("see " + OUTSIDE_REFERENCES[3]) == [OUTSIDE_REFERENCES[3]]
    assert outside_references("see docs/design.md") == []
