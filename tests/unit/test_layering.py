"""The import direction app -> adapters -> ports -> domain, checked on the source itself.

import-linter (run by `make test`) enforces the layers at module level; this test pins the one
exception it is configured to allow: domain may name ports, but only for the type checker.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _imports(tree: ast.AST, *, skip_type_checking: bool) -> list[str]:
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if (
            skip_type_checking
            and isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        ):
            return
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


@pytest.mark.parametrize("package", ["domain", "ports"])
def test_runtime_imports_are_standard_library_or_inner_layers(package: str) -> None:
    allowed = {"domain"} if package == "domain" else {"domain", "ports"}
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in _imports(ast.parse(path.read_text()), skip_type_checking=True):
            top = name.split(".")[0]
            if top not in allowed and top not in sys.stdlib_module_names and top != "__future__":
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_domain_names_ports_only_for_the_type_checker() -> None:
    offenders = []
    for path in sorted((ROOT / "domain").rglob("*.py")):
        for name in _imports(ast.parse(path.read_text()), skip_type_checking=False):
            if (
                name.split(".")[0] not in {"domain", "ports", "__future__"}
                and name.split(".")[0] not in sys.stdlib_module_names
            ):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []
