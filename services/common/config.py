"""Reading configuration: environment variables over YAML files, validated once at start-up.

Every failure raises ConfigError with a message that names the variable, or the file and the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from services.common.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

REPO_ROOT = Path(__file__).resolve().parents[2]
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def config_dir() -> Path:
    """The folder holding models.yaml and the other config files (UPCOACH_CONFIG_DIR)."""
    return Path(os.environ.get("UPCOACH_CONFIG_DIR", REPO_ROOT / "config"))


def env_str(name: str, default: str) -> str:
    """The variable's value, or default when unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or default


def env_int(name: str, default: int, *, minimum: int | None = None,
            maximum: int | None = None) -> int:
    """The variable as an integer within [minimum, maximum]; ConfigError names it otherwise."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}: {value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}: {value} is above the maximum {maximum}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    """The variable as a number, at least minimum; ConfigError names it otherwise."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not a number") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}: {value} is below the minimum {minimum}")
    return value


def env_bool(name: str, default: bool) -> bool:
    """The variable as a boolean (1/true/yes/on, 0/false/no/off)."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}: {raw!r} is not a boolean (use true or false)")


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    """The variable as a comma-separated list, blanks dropped."""
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [part.strip() for part in raw.split(",") if part.strip()]


def load_yaml(path: Path) -> Any:
    """Parses a YAML file; ConfigError names the file when it is missing or malformed."""
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def validate(model: type[M], data: Any, source: str) -> M:
    """Validates data into model; ConfigError names the source and the first bad key."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"]) or "(top level)"
            problems.append(f"{key}: {error['msg']}")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None


def load_config_file(model: type[M], name: str) -> M:
    """Loads config/<name> (or UPCOACH_CONFIG_DIR/<name>) into model."""
    path = config_dir() / name
    return validate(model, load_yaml(path), str(path))
