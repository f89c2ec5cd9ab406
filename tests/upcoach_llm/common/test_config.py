"""Config readers: env values parse, bad ones name the variable; YAML errors name the file."""

from __future__ import annotations

import pytest

from upcoach_llm.common.config import (
    config_fingerprint,
    load_yaml,
    parse_bool,
    parse_float,
    parse_int,
    parse_list,
)
from upcoach_llm.common.errors import ConfigError


def test_parse_int_reads_and_bounds() -> None:
    assert parse_int("SOME_PORT", "8080") == 8080
    with pytest.raises(ConfigError, match="SOME_PORT: 'eighty' is not an integer"):
        parse_int("SOME_PORT", "eighty")
    with pytest.raises(ConfigError, match="SOME_PORT: 70000 is above the maximum 65535"):
        parse_int("SOME_PORT", "70000", maximum=65535)


def test_parse_bool_float_list() -> None:
    assert parse_bool("FLAG", "yes") is True
    with pytest.raises(ConfigError, match="FLAG: 'maybe' is not a boolean"):
        parse_bool("FLAG", "maybe")
    with pytest.raises(ConfigError, match="RATIO: -1.0 is below the minimum 0"):
        parse_float("RATIO", "-1", minimum=0)
    assert parse_list(" a, ,b ,") == ["a", "b"]


def test_yaml_errors_name_the_file(tmp_path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("models: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_yaml(broken)
    with pytest.raises(ConfigError, match="missing.yaml: file not found"):
        load_yaml(tmp_path / "missing.yaml")


def test_a_config_fingerprint_follows_the_file_bytes(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("UPCOACH_CONFIG_DIR", str(tmp_path))
    assert config_fingerprint("safety.yaml") == "none"
    (tmp_path / "safety.yaml").write_text("a: 1\n")
    first = config_fingerprint("safety.yaml")
    assert len(first) == 12 and first == config_fingerprint("safety.yaml")
    (tmp_path / "safety.yaml").write_text("a: 2\n")
    assert config_fingerprint("safety.yaml") != first
