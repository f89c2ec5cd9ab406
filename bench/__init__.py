"""Benchmarks: every ``bench/bench_*.py`` script, run together by ``make bench`` (bench.run_all)."""
