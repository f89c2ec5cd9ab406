"""Config readers: env values parse, bad ones name the variable; YAML errors name the file."""

from __future__ import annotations

import pytest

from services.common.config import env_bool, env_float, env_int, env_list, load_yaml
from services.common.errors import ConfigError


def test_env_int_reads_and_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_PORT", "8080")
    assert env_int("SOME_PORT", 1) == 8080
    monkeypatch.setenv("SOME_PORT", "eighty")
    with pytest.raises(ConfigError, match="SOME_PORT: 'eighty' is not an integer"):
        env_int("SOME_PORT", 1)
    monkeypatch.setenv("SOME_PORT", "70000")
    with pytest.raises(ConfigError, match="SOME_PORT: 70000 is above the maximum 65535"):
        env_int("SOME_PORT", 1, maximum=65535)
    monkeypatch.delenv("SOME_PORT")
    assert env_int("SOME_PORT", 7) == 7


def test_env_bool_float_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAG", "yes")
    assert env_bool("FLAG", False) is True
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ConfigError, match="FLAG: 'maybe' is not a boolean"):
        env_bool("FLAG", False)
    monkeypatch.setenv("RATIO", "-1")
    with pytest.raises(ConfigError, match="RATIO: -1.0 is below the minimum 0"):
        env_float("RATIO", 1.0, minimum=0)
    monkeypatch.setenv("KEYS", " a, ,b ,")
    assert env_list("KEYS") == ["a", "b"]


def test_yaml_errors_name_the_file(tmp_path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("models: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_yaml(broken)
    with pytest.raises(ConfigError, match="missing.yaml: file not found"):
        load_yaml(tmp_path / "missing.yaml")
