"""The stack's topology: the guide's ports, the variable names derived from the service names."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

from tests.support.paths import REPO_ROOT
from upcoach_llm.api import topology
from upcoach_llm.api.topology import GATEWAY, GRPC_SERVICES, MODEL_REGISTRY, SERVICES


def test_the_guides_ports_in_start_order() -> None:
    assert [(s.name, s.port) for s in SERVICES] == [
        ("generation", 50051), ("embedding", 50052), ("model-registry", 50053),
        ("router", 50054), ("gateway", 3100)]
    assert GATEWAY not in GRPC_SERVICES and len(GRPC_SERVICES) == 4


def test_variable_names_follow_the_service_name() -> None:
    assert (MODEL_REGISTRY.port_env, MODEL_REGISTRY.addr_env, MODEL_REGISTRY.metrics_port_env) == (
        "MODEL_REGISTRY_PORT", "MODEL_REGISTRY_ADDR", "MODEL_REGISTRY_METRICS_PORT")
    assert MODEL_REGISTRY.local_address == "127.0.0.1:50053"


def test_every_module_runs_with_python_dash_m_and_as_its_console_command() -> None:
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for service in SERVICES:
        assert importlib.util.find_spec(f"{service.module}.__main__") is not None, service.name
        assert scripts[service.script] == f"{service.module}.__main__:main", service.name


def test_the_module_needs_only_the_standard_library() -> None:
    imported = {line.split()[1] for line in Path(topology.__file__).read_text().splitlines()
                if line.startswith(("import ", "from "))}
    assert imported == {"__future__", "dataclasses"}
