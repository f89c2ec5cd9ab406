"""The row every benchmark reports, its JSON file, and the table ``make bench`` prints.

The convention for ``bench/bench_*.py`` scripts:

- accept ``--json PATH`` (``add_json_argument(parser)``) and, when given, write the figures there
  as a JSON list of rows (``write_rows(path, rows)``);
- one row per figure: ``Row.measured(name, value, unit, baseline=..., baseline_name=...,
  target=...)``. ``baseline`` is the same figure for the reference path measured in the same run
  (e.g. the raw engine in-process), ``ratio`` is value / baseline, ``target`` is the goal as text
  (e.g. "<= 200 ms (guide: server CPU embeddings)") or None.

    rows = [Row.measured("embedding service, batch 32", 1045.0, "sentences/s",
                         baseline=1100.0, baseline_name="raw ONNX engine", target=">= 500")]
    write_rows(args.json, rows)

A row in JSON: {"name", "value", "unit", "baseline", "baseline_name", "ratio", "target"}.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

KEYS = ("name", "value", "unit", "baseline", "baseline_name", "ratio", "target")


class ReportError(ValueError):
    """A rows file that does not follow the convention; the message names the file and key."""


@dataclass(frozen=True)
class Row:
    """One measured figure, next to its baseline from the same run and its target."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str | None = None
    ratio: float | None = None
    target: str | None = None

    @classmethod
    def measured(cls, name: str, value: float, unit: str, *, baseline: float | None = None,
                 baseline_name: str | None = None, target: str | None = None) -> Row:
        """A row whose ratio is value / baseline (None without a non-zero baseline)."""
        ratio = value / baseline if baseline else None
        return cls(name, float(value), unit, None if baseline is None else float(baseline),
                   baseline_name, ratio, target)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, where: str) -> Row:
        if not isinstance(data, dict):
            raise ReportError(f"{where}: a row must be an object, not {type(data).__name__}")
        missing = [k for k in ("name", "value", "unit") if k not in data]
        unknown = sorted(set(data) - set(KEYS))
        if missing or unknown:
            raise ReportError(f"{where}: " + "; ".join(
                ([f"missing {', '.join(missing)}"] if missing else [])
                + ([f"unknown {', '.join(unknown)}"] if unknown else [])))
        for key in ("value", "baseline", "ratio"):
            value = data.get(key)
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, int | float)):
                raise ReportError(f"{where}.{key}: {value!r} is not a number")
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="PATH", type=Path,
                        help="also write the figures to PATH as rows (bench/report.py)")


def write_rows(path: Path | str | None, rows: list[Row]) -> None:
    """Writes the rows as a JSON list; does nothing when path is None (no --json)."""
    if path is not None:
        Path(path).write_text(json.dumps([r.to_json() for r in rows], indent=2) + "\n")


def read_rows(path: Path | str) -> list[Row]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ReportError(f"{path}: not written (did the script get --json?)") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, list):
        raise ReportError(f"{path}: expected a list of rows")
    return [Row.from_json(item, f"{path}[{i}]") for i, item in enumerate(data)]


def number(value: float | None) -> str:
    """A figure with three significant digits or so: 1,234 / 56.7 / 0.123."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if size >= 1 else f"{value:.3g}"


def format_table(groups: dict[str, list[Row]]) -> str:
    """One table: a section per source (script), each figure next to its baseline and target."""
    header = ("BENCHMARK", "VALUE", "UNIT", "BASELINE", "BASELINE IS", "RATIO", "TARGET")
    lines: list[tuple[str, ...]] = []
    for source, rows in groups.items():
        lines.append((f"[{source}]",))
        for r in rows:
            lines.append((f"  {r.name}", number(r.value), r.unit, number(r.baseline),
                          r.baseline_name or "-",
                          f"{r.ratio:.2f}x" if r.ratio is not None else "-", r.target or "-"))
    widths = [max([len(header[i])] + [len(line[i]) for line in lines if len(line) > i])
              for i in range(len(header))]
    right = {1, 3, 5}

    def render(cells: tuple[str, ...]) -> str:
        if len(cells) == 1:
            return cells[0]
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([render(header)] + [render(line) for line in lines])
