"""Reading configuration: environment variables over YAML files, validated once at start-up.

Every failure raises ConfigError with a message that names the variable, or the file and the key.
Environment variables are read through the registry (upcoach_llm.common.variables), which parses
them with the ``parse_*`` functions here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from upcoach_llm.common.errors import ConfigError

M = TypeVar("M", bound=BaseModel)
N = TypeVar("N", int, float)

# The catalogs and policies the package ships (upcoach_llm/config/*.yaml).
PACKAGED_CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
# The crisis check's file: read by the router, fingerprinted by the gateway's response cache.
SAFETY_FILE = "safety.yaml"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def config_dir() -> Path:
    """The folder holding models.yaml and the other config files: UPCOACH_CONFIG_DIR, else the
    package's own."""
    from upcoach_llm.common.variables import VARIABLES  # imported here: it builds on this module

    return Path(VARIABLES.str("UPCOACH_CONFIG_DIR") or PACKAGED_CONFIG_DIR)


def parse_int(name: str, raw: str, minimum: float | None = None,
              maximum: float | None = None) -> int:
    """raw as an integer within [minimum, maximum]; ConfigError names the variable otherwise."""
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not an integer") from None
    return _bounded(name, value, minimum, maximum)


def parse_float(name: str, raw: str, minimum: float | None = None,
                maximum: float | None = None) -> float:
    """raw as a number within [minimum, maximum]; ConfigError names the variable otherwise."""
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not a number") from None
    return _bounded(name, value, minimum, maximum)


def parse_bool(name: str, raw: str) -> bool:
    """raw as a boolean (1/true/yes/on, 0/false/no/off); ConfigError names the variable."""
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}: {raw!r} is not a boolean (use true or false)")


def parse_list(raw: str) -> list[str]:
    """raw as a comma-separated list, blanks dropped."""
    return [part.strip() for part in raw.split(",") if part.strip()]


def _bounded(name: str, value: N, minimum: float | None, maximum: float | None) -> N:
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}: {value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}: {value} is above the maximum {maximum}")
    return value


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


def config_fingerprint(name: str) -> str:
    """12 hex digits of the sha256 of config/<name>'s bytes (``none`` when there is no such
    file): what changes when an operator edits it."""
    try:
        data = (config_dir() / name).read_bytes()
    except FileNotFoundError:
        return "none"
    return hashlib.sha256(data).hexdigest()[:12]


def load_config_file(model: type[M], name: str) -> M:
    """Loads config/<name> (or UPCOACH_CONFIG_DIR/<name>) into model."""
    path = config_dir() / name
    return validate(model, load_yaml(path), str(path))
