"""Packages depend downward only: a service (gateway, router, generation, embedding, registry)
imports the shared layers (api, common, engines, config) and never another service, and the
shared layers import no service. A fact two services need lives in common."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import upcoach_llm

ROOT = Path(upcoach_llm.__file__).parent
SERVICES = ("gateway", "router", "generation", "embedding", "registry")
SHARED = ("api", "common", "engines")


def _imported(path: Path) -> set[str]:
    """The upcoach_llm packages a module imports (``upcoach_llm.router.x`` -> ``router``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
            if node.level:  # relative: from the module's own package up
                package = path.relative_to(ROOT.parent).parent.parts
                base = ".".join(package[:len(package) - node.level + 1])
                modules = [f"{base}.{node.module}" if node.module else base]
            if node.module == "upcoach_llm":  # from upcoach_llm import router
                modules = [f"upcoach_llm.{a.name}" for a in node.names]
        else:
            continue
        names |= {m.split(".")[1] for m in modules if m.startswith("upcoach_llm.")}
    return names


@pytest.mark.parametrize("package", SERVICES + SHARED)
def test_a_package_imports_no_other_service(package: str) -> None:
    allowed = {package} if package in SERVICES else set()
    crossings = {
        f"{path.relative_to(ROOT.parent)} imports upcoach_llm.{name}"
        for path in (ROOT / package).rglob("*.py")
        for name in _imported(path) & set(SERVICES) - allowed}
    assert not crossings, sorted(crossings)
