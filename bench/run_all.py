"""``make bench``: runs every ``bench/bench_*.py`` with ``--json`` and prints one combined table.

    .venv/bin/python -m bench.run_all [--only generation,embedding] [--list]

Each script runs as its own process, one after the other (they measure, so never two at once);
its own output goes to stderr as it runs, and its rows (bench/report.py) are collected. The table
on stdout puts each figure next to its baseline from the same run and its target. Exit status 1
when a script failed or wrote no rows; the table still shows the others.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import ReportError, Row, format_table, read_rows

BENCH_DIR = Path(__file__).resolve().parent


def discover(folder: Path, only: list[str] | None = None) -> list[Path]:
    """The benchmark scripts, by name (``bench_embedding.py`` is ``embedding``)."""
    scripts = sorted(folder.glob("bench_*.py"))
    if only:
        wanted = {name.removeprefix("bench_").removesuffix(".py") for name in only}
        unknown = wanted - {s.stem.removeprefix("bench_") for s in scripts}
        if unknown:
            raise SystemExit(f"bench: no bench_{sorted(unknown)[0]}.py in {folder} "
                             f"(have: {', '.join(s.stem for s in scripts)})")
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
    return scripts


def _with_checkout_on_path() -> dict[str, str]:
    """The environment with the checkout first on PYTHONPATH: a script run by its path imports
    ``bench`` (and ``tests``) from there, as ``python -m bench.<name>`` from the root does."""
    paths = [str(BENCH_DIR.parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def run_script(script: Path, out_dir: Path, timeout: float) -> tuple[list[Row], str | None]:
    """Runs one script; returns its rows, or an error saying why there are none."""
    rows_file = out_dir / f"{script.stem}.json"
    print(f"\n==> {script.name}", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        result = subprocess.run([sys.executable, str(script), "--json", str(rows_file)],
                                env=_with_checkout_on_path(), stdout=sys.stderr,
                                stderr=subprocess.PIPE, text=True,
                                timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return [], f"timed out after {timeout:.0f}s"
    sys.stderr.write(result.stderr)
    print(f"==> {script.name}: exit {result.returncode} in {time.monotonic() - started:.0f}s",
          file=sys.stderr, flush=True)
    if "unrecognized arguments: --json" in result.stderr:
        return [], "does not accept --json yet (see bench/report.py for the convention)"
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return [], f"exit {result.returncode}: {last[:160]}"
    try:
        rows = read_rows(rows_file)
    except ReportError as exc:
        return [], str(exc)
    return (rows, None) if rows else ([], "wrote no rows")


def main() -> None:
    parser = argparse.ArgumentParser(description="Run every bench/bench_*.py and print one table.")
    parser.add_argument("--only", help="comma-separated benchmarks, e.g. embedding,generation")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--dir", type=Path, default=BENCH_DIR,
                        help="folder holding the bench_*.py scripts (default: bench/)")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds one script may run (default 1800)")
    args = parser.parse_args()
    scripts = discover(args.dir, args.only.split(",") if args.only else None)
    if args.list:
        print("\n".join(s.name for s in scripts))
        return
    groups: dict[str, list[Row]] = {}
    failures: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="upcoach-bench-") as out_dir:
        for script in scripts:
            rows, error = run_script(script, Path(out_dir), args.timeout)
            if error:
                failures[script.name] = error
            else:
                groups[script.name] = rows
    print()
    if groups:
        print(format_table(groups))
    for name, error in failures.items():
        print(f"[{name}] FAILED: {error}")
    if not scripts:
        print("no bench/bench_*.py scripts found")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
