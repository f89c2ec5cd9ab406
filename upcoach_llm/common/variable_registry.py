"""The machinery of the settings registry: a declared variable, and the registry that reads it.

A ``Variable`` says everything about one environment variable: type, default, unit, bounds,
choices, which processes read it, a one-line help, and the old names it replaced. ``Registry``
reads a declared variable typed and validated (ConfigError names the variable as it was set);
asking for an undeclared name is a programming error (KeyError). An old name still works and logs
one warning naming the new one; an ``Alias`` with a ``scale`` converts its unit (milliseconds).
The declarations themselves live in ``upcoach_llm.common.variables``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from upcoach_llm.common.config import parse_bool, parse_float, parse_int, parse_list
from upcoach_llm.common.errors import ConfigError

log = logging.getLogger(__name__)

KINDS = ("str", "int", "float", "bool", "list")


@dataclass(frozen=True)
class Alias:
    """A deprecated name; its value times ``scale`` is the new variable's (ms -> s: 0.001)."""

    name: str
    scale: float = 1.0


@dataclass(frozen=True)
class Variable:
    """One environment variable. ``default`` None: unset means "not configured", or a default
    computed where it is read (``default_doc`` says which)."""

    name: str
    kind: str
    default: Any
    help: str
    readers: tuple[str, ...]
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    aliases: tuple[Alias, ...] = ()
    default_doc: str = ""
    example: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind {self.kind!r} is not one of {KINDS}")

    @property
    def shown_default(self) -> str:
        """The default as it would be written in an env file ('' when there is none)."""
        if self.default_doc:
            return self.default_doc
        if self.default is None:
            return ""
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        if isinstance(self.default, (list, tuple)):
            return ",".join(self.default)
        if isinstance(self.default, float) and self.default.is_integer():
            return str(int(self.default))
        return str(self.default)


@dataclass
class Registry:
    """Every declared variable by name, and typed reads of the environment through them."""

    variables: dict[str, Variable] = field(default_factory=dict)
    _warned: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, declared: Iterable[Variable]) -> Registry:
        registry = cls()
        for variable in declared:
            names = [variable.name, *(a.name for a in variable.aliases)]
            for name in names:
                if name in registry.variables or registry.owner(name) is not None:
                    raise ValueError(f"{name}: declared twice")
            registry.variables[variable.name] = variable
        return registry

    def __getitem__(self, name: str) -> Variable:
        try:
            return self.variables[name]
        except KeyError:
            raise KeyError(f"{name}: not declared in upcoach_llm/common/variables.py") from None

    def __iter__(self):
        return iter(self.variables.values())

    def owner(self, alias: str) -> Variable | None:
        """The variable an old name stands for, or None."""
        for variable in self.variables.values():
            if any(a.name == alias for a in variable.aliases):
                return variable
        return None

    def value(self, name: str, default: Any = None,
              environ: Mapping[str, str] | None = None) -> Any:
        """The variable, typed and validated; unset: its declared default, else ``default``."""
        variable = self[name]
        environ = os.environ if environ is None else environ
        set_as, raw, scale = self._raw(variable, environ)
        if raw is None:
            return variable.default if variable.default is not None else default
        return self._parse(variable, set_as, raw, scale)

    def str(self, name: str, default: str = "", **kw: Any) -> str:
        return self._typed(name, "str", default, **kw)

    def int(self, name: str, default: int | None = None, **kw: Any) -> int:
        return self._typed(name, "int", default, **kw)

    def float(self, name: str, default: float | None = None, **kw: Any) -> float:
        return self._typed(name, "float", default, **kw)

    def bool(self, name: str, **kw: Any) -> bool:
        return self._typed(name, "bool", None, **kw)

    def list(self, name: str, **kw: Any) -> list[str]:
        return list(self._typed(name, "list", (), **kw) or ())

    def _typed(self, name: str, kind: str, default: Any, **kw: Any) -> Any:
        declared = self[name].kind
        if declared != kind:
            raise TypeError(f"{name} is declared {declared}, read as {kind}")
        return self.value(name, default, **kw)

    def _raw(self, variable: Variable, environ: Mapping[str, str],
             ) -> tuple[str, str | None, float]:
        """Which name is set, its stripped value (None: unset or empty), and the alias scale."""
        raw = environ.get(variable.name, "").strip()
        for alias in variable.aliases:
            old = environ.get(alias.name, "").strip()
            if not old:
                continue
            self._warn_once(alias.name, variable.name, used=not raw)
            if not raw:
                return alias.name, old, alias.scale
        return variable.name, raw or None, 1.0

    def _warn_once(self, old: str, new: str, *, used: bool) -> None:
        if old in self._warned:
            return
        self._warned.add(old)
        what = "used" if used else f"ignored: {new} is set too"
        log.warning(f"{old} is deprecated, set {new} instead ({what})",
                    extra={"fields": {"variable": old, "replacement": new}})

    @staticmethod
    def _parse(variable: Variable, set_as: str, raw: str, scale: float) -> Any:
        low, high = variable.minimum, variable.maximum
        if scale != 1.0:
            low, high = (None if b is None else b / scale for b in (low, high))
        if variable.kind == "int":
            return parse_int(set_as, raw, low, high)
        if variable.kind == "float":
            return parse_float(set_as, raw, low, high) * scale
        if variable.kind == "bool":
            return parse_bool(set_as, raw)
        if variable.kind == "list":
            return parse_list(raw)
        if variable.choices:
            value = raw.lower()
            if value not in variable.choices:
                raise ConfigError(f"{set_as}: {raw!r} is not one of {', '.join(variable.choices)}")
            return value
        return raw
