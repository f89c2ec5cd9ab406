"""The settings registry: typed, bounded reads; undeclared names refused; old names still work."""

from __future__ import annotations

import logging

import pytest

from upcoach_llm.api.topology import GENERATION
from upcoach_llm.common.errors import ConfigError
from upcoach_llm.common.server import ServerSettings
from upcoach_llm.common.variable_registry import Alias, Registry, Variable
from upcoach_llm.gateway.settings import GatewaySettings

TOKEN = "internal-0123456789abcdef"


def _registry() -> Registry:
    return Registry.of([
        Variable("PORT_X", "int", 80, "a port", ("all",), minimum=1, maximum=65535),
        Variable("WAIT_S", "float", 2.0, "a wait", ("all",), unit="s", minimum=0.1,
                 aliases=(Alias("WAIT"), Alias("WAIT_MS", 0.001))),
        Variable("FLAG", "bool", False, "a flag", ("all",)),
        Variable("NAMES", "list", ("a", "b"), "names", ("all",)),
        Variable("MODE", "str", "on", "a mode", ("all",), choices=("on", "off")),
        Variable("THREADS", "int", None, "computed", ("all",), default_doc="CPUs"),
    ])


def test_typed_values_and_defaults() -> None:
    registry = _registry()
    env = {"PORT_X": " 8080 ", "FLAG": "yes", "NAMES": "x, ,y", "MODE": "OFF"}
    assert registry.int("PORT_X", environ=env) == 8080
    assert registry.bool("FLAG", environ=env) is True
    assert registry.list("NAMES", environ=env) == ["x", "y"]
    assert registry.str("MODE", environ=env) == "off"
    assert registry.float("WAIT_S", environ={}) == 2.0
    assert registry.list("NAMES", environ={}) == ["a", "b"]
    assert registry.int("THREADS", 6, environ={}) == 6
    assert registry.int("THREADS", 6, environ={"THREADS": "3"}) == 3


@pytest.mark.parametrize(("env", "message"), [
    ({"PORT_X": "eighty"}, "PORT_X: 'eighty' is not an integer"),
    ({"PORT_X": "70000"}, "PORT_X: 70000 is above the maximum 65535"),
    ({"WAIT_S": "0"}, "WAIT_S: 0.0 is below the minimum 0.1"),
    ({"WAIT_MS": "50"}, "WAIT_MS: 50.0 is below the minimum 100"),
    ({"FLAG": "maybe"}, "FLAG: 'maybe' is not a boolean"),
    ({"MODE": "sideways"}, "MODE: 'sideways' is not one of on, off"),
])
def test_bad_values_name_the_variable_as_set(env: dict[str, str], message: str) -> None:
    registry = _registry()
    name = next(iter(env)).removesuffix("_MS")
    name = "WAIT_S" if name == "WAIT" else name
    with pytest.raises(ConfigError, match=f"^{message}"):
        registry.value(name, environ=env)


def test_undeclared_names_and_wrong_types_are_refused() -> None:
    registry = _registry()
    with pytest.raises(KeyError, match="NOT_DECLARED: not declared"):
        registry.str("NOT_DECLARED")
    with pytest.raises(TypeError, match="PORT_X is declared int, read as float"):
        registry.float("PORT_X")
    with pytest.raises(ValueError, match="WAIT: declared twice"):
        Registry.of([*_registry(), Variable("WAIT", "int", 1, "again", ("all",))])


def test_an_old_name_still_works_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    registry = _registry()
    with caplog.at_level(logging.WARNING):
        assert registry.float("WAIT_S", environ={"WAIT": "5"}) == 5.0
        assert registry.float("WAIT_S", environ={"WAIT": "5"}) == 5.0
        assert registry.float("WAIT_S", environ={"WAIT_MS": "250"}) == 0.25
        assert registry.float("WAIT_S", environ={"WAIT_S": "1", "WAIT": "5"}) == 1.0
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["WAIT is deprecated, set WAIT_S instead (used)",
                        "WAIT_MS is deprecated, set WAIT_S instead (used)"]


def test_the_services_accept_the_old_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERNAL_TOKEN", TOKEN)
    monkeypatch.delenv("GRPC_GRACE_S", raising=False)
    monkeypatch.setenv("GRPC_GRACE_SECONDS", "7")
    assert ServerSettings.from_env(GENERATION).grace_seconds == 7.0
    for name in ("ENVIRONMENT", "APP_ENV", "REDIS_TIMEOUT_S", "LLM_API_KEY", "TLS_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_TIMEOUT_MS", "500")
    assert GatewaySettings.from_env().redis_timeout_s == 0.5
