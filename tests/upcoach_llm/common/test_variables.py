"""Every environment variable the code and docker-compose.yml read is declared in the registry."""

from __future__ import annotations

import re

import pytest

from tests.support.paths import REPO_ROOT
from upcoach_llm.api.topology import SERVICES
from upcoach_llm.common.variables import VARIABLES
from upcoach_llm.gateway.settings import CacheMode

SOURCES = ("upcoach_llm", "clients/python/upcoach_client", "scripts")
# A literal variable name passed to a registry read, an env_* helper or os.environ.
READS = re.compile(r"""(?:\b(?:VARIABLES|V)\.(?:str|int|float|bool|list|value)
                       |\benv_(?:str|int|float|bool|list)
                       |os\.environ\.get|os\.getenv|os\.environ\[)
                       \(?\s*["']([A-Z][A-Z0-9_]*)["']""", re.VERBOSE)
COMPOSE_READS = re.compile(r"\$\{([A-Z][A-Z0-9_]*)")


def _names_read() -> dict[str, str]:
    found = {}
    for folder in SOURCES:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            for name in READS.findall(path.read_text()):
                found.setdefault(name, str(path.relative_to(REPO_ROOT)))
    return found


def test_the_scan_finds_the_reads() -> None:
    assert {"LLAMA_N_CTX", "GRPC_GRACE_S", "REDIS_URL", "OLLAMA_URL"} <= set(_names_read())


def test_every_variable_the_code_reads_is_declared() -> None:
    undeclared = {name: path for name, path in _names_read().items()
                  if name not in VARIABLES.variables}
    assert not undeclared, f"declare these in upcoach_llm/common/variables.py: {undeclared}"


def test_every_variable_compose_reads_is_declared() -> None:
    names = set(COMPOSE_READS.findall((REPO_ROOT / "docker-compose.yml").read_text()))
    assert not names - set(VARIABLES.variables)


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_each_processs_port_and_address_are_declared(service) -> None:
    assert VARIABLES[service.port_env].default == service.port
    if service.grpc:
        assert VARIABLES[service.addr_env].kind == "str"
        assert VARIABLES[service.metrics_port_env].default == 0


def test_durations_in_seconds_end_in_s() -> None:
    guide_names = {"CACHE_TTL"}
    for variable in VARIABLES:
        if variable.unit == "s" and variable.name not in guide_names:
            assert variable.name.endswith("_S"), variable.name
        for alias in variable.aliases:
            assert alias.name not in VARIABLES.variables


def test_readers_are_processes() -> None:
    known = {s.name for s in SERVICES} | {"all", "client", "compose"}
    for variable in VARIABLES:
        assert set(variable.readers) <= known, variable.name


def test_choices_match_the_code_that_uses_them() -> None:
    assert VARIABLES["CACHE_MODE"].choices == tuple(mode.value for mode in CacheMode)
