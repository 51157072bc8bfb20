"""Caravans sit below tallies, and the shared plumbing below every domain: imports only go
downwards."""

from __future__ import annotations

import ast
import pathlib

import pytest

import fieldsvc

ROOT = pathlib.Path(fieldsvc.__file__).parent


def _imports(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


DOMAINS = tuple(f"fieldsvc.{name}" for name in (
    "accounts", "areas", "caravans", "catalog", "tallies", "insights", "exports", "volunteers",
    "web"))


@pytest.mark.parametrize(("modules", "forbidden"), [
    ("caravans", ("fieldsvc.tallies",)),
    # Shared plumbing knows no domain: domains register what it needs from them (accounts its
    # staff token and web session loaders, caravans its device loader).
    *((module, DOMAINS) for module in ("security.py", "errors.py", "http.py", "pagination.py",
                                       "config.py", "extensions.py", "db.py", "fields.py",
                                       "background.py")),
    ("cli.py", ("fieldsvc.web",)),
])
def test_lower_layers_never_import_higher_ones(modules, forbidden):
    target = ROOT / modules
    paths = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    found = {f"{path.relative_to(ROOT)}: {name}" for path in paths for name in _imports(path)
             if name.startswith(forbidden)}
    assert not found
