"""The Makefile lists the deployment targets and passes the environment's file and profile."""

from __future__ import annotations

import subprocess

from tests.support.paths import REPO_ROOT


def make(*args: str) -> str:
    result = subprocess.run(["make", "--no-print-directory", *args], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout


def test_help_lists_every_target() -> None:
    listed = {line.split()[1] for line in make("help").splitlines() if line.strip()}
    assert {"run", "test", "proto", "lint", "bench", "up", "down", "deploy", "verify"} <= listed


def test_up_uses_the_environments_file_and_profile() -> None:
    assert "--env-file .env.development up -d --build --wait" in make("-n", "up")
    assert "--env-file .env.production --profile production up -d" in make(
        "-n", "up", "ENV=production")


def test_deploy_verify_and_bench_call_the_scripts() -> None:
    assert "scripts/deploy-llm-stack.sh --env staging" in make("-n", "deploy", "ENV=staging")
    assert "scripts/verify-llm-stack.sh --url http://host:3100" in make(
        "-n", "verify", "URL=http://host:3100")
    assert make("-n", "-o", "proto", "bench").strip().endswith("-m bench.run_all")


def test_install_is_pip_installing_the_two_distributions_without_path_tricks() -> None:
    text = (REPO_ROOT / "Makefile").read_text()
    assert "install --progress-bar off -e '.[dev]' -e './clients/python[on-device]'" in text
    assert ".pth" not in text and "PYTHONPATH" not in text
    assert make("-n", "-o", "proto", "run").strip().endswith(".venv/bin/upcoach-stack")
