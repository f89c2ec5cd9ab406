"""The benchmark row convention (bench/report.py) and the combined run (bench/run_all.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.report import ReportError, Row, format_table, read_rows, write_rows
from tests.support.paths import REPO_ROOT


def test_measured_row_computes_the_ratio() -> None:
    row = Row.measured("service", 900.0, "sentences/s", baseline=1200.0,
                       baseline_name="raw engine", target=">= 500")
    assert row.ratio == pytest.approx(0.75)
    assert Row.measured("alone", 3.0, "ms").ratio is None
    assert Row.measured("zero baseline", 3.0, "ms", baseline=0.0).ratio is None


def test_rows_round_trip_through_json(tmp_path: Path) -> None:
    rows = [Row.measured("a", 1.5, "ms", baseline=1.0, baseline_name="raw", target="<= 2 ms"),
            Row.measured("b", 42, "tokens/s")]
    path = tmp_path / "rows.json"
    write_rows(path, rows)
    assert set(json.loads(path.read_text())[0]) == {
        "name", "value", "unit", "baseline", "baseline_name", "ratio", "target"}
    assert read_rows(path) == rows
    write_rows(None, rows)  # no --json: nothing written, no error


@pytest.mark.parametrize("content,message", [
    ('[{"name": "a", "unit": "ms"}]', "[0]: missing value"),
    ('[{"name": "a", "value": 1, "unit": "ms", "extra": 1}]', "[0]: unknown extra"),
    ('[{"name": "a", "value": "fast", "unit": "ms"}]', "[0].value: 'fast' is not a number"),
    ('{"name": "a"}', "expected a list of rows"),
    ("not json", "not JSON"),
])
def test_a_bad_rows_file_names_the_key(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "rows.json"
    path.write_text(content)
    with pytest.raises(ReportError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_rows(path)


def test_table_puts_each_figure_next_to_its_baseline_and_target() -> None:
    table = format_table({"bench_x.py": [
        Row.measured("service p50", 123.456, "ms", baseline=100.0, baseline_name="raw engine",
                     target="<= 200 ms"),
        Row.measured("throughput", 1234.5, "sentences/s")]})
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["BENCHMARK", "VALUE", "UNIT"]
    assert lines[1] == "[bench_x.py]"
    assert lines[2].split() == ["service", "p50", "123", "ms", "100", "raw", "engine", "1.23x",
                                "<=", "200", "ms"]
    assert lines[3].split() == ["throughput", "1,234", "sentences/s", "-", "-", "-", "-"]


def write_script(folder: Path, name: str, body: str) -> None:
    (folder / name).write_text(textwrap.dedent(body))


def test_run_all_combines_conforming_scripts_and_names_the_others(tmp_path: Path) -> None:
    write_script(tmp_path, "bench_good.py", """
        import argparse
        from bench.report import Row, add_json_argument, write_rows
        parser = argparse.ArgumentParser()
        add_json_argument(parser)
        args = parser.parse_args()
        print("measuring...")
        write_rows(args.json, [Row.measured("good path", 2.0, "ms", baseline=1.0,
                                            baseline_name="raw", target="<= 5 ms")])
    """)
    write_script(tmp_path, "bench_old.py", """
        import argparse
        argparse.ArgumentParser().parse_args()
    """)
    write_script(tmp_path, "bench_crash.py", """
        raise RuntimeError("model file missing")
    """)
    result = subprocess.run([sys.executable, "-m", "bench.run_all", "--dir", str(tmp_path)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 1
    out = result.stdout
    assert "[bench_good.py]" in out and "2.00x" in out and "<= 5 ms" in out
    assert "[bench_old.py] FAILED: does not accept --json yet" in out
    assert "[bench_crash.py] FAILED: exit 1: RuntimeError: model file missing" in out
    assert "measuring..." in result.stderr and "measuring..." not in out


def test_run_all_only_and_list(tmp_path: Path) -> None:
    write_script(tmp_path, "bench_a.py", "")
    write_script(tmp_path, "bench_b.py", "")
    listed = subprocess.run([sys.executable, "-m", "bench.run_all", "--dir", str(tmp_path),
                             "--only", "b", "--list"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60, check=False)
    assert listed.stdout.split() == ["bench_b.py"]
    unknown = subprocess.run([sys.executable, "-m", "bench.run_all", "--dir", str(tmp_path),
                              "--only", "zzz"], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=60, check=False)
    assert unknown.returncode == 1 and "no bench_zzz.py" in unknown.stderr
