"""scripts/setup_models.py against the Ollama contract double, run as the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.doubles.ollama_double import DEFAULT_LIBRARY, OllamaDouble
from tests.support.paths import REPO_ROOT
from upcoach_llm.common.config import load_config_file
from upcoach_llm.common.features import CoachingFile
from upcoach_llm.dev.ports import free_port


def setup_models(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "VLLM_"))}
    return subprocess.run([sys.executable, "scripts/setup_models.py", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**clean, **(env or {})})


@pytest.fixture
def ollama() -> Iterator[OllamaDouble]:
    with OllamaDouble() as double:
        yield double


def report_rows(stdout: str) -> dict[str, list[str]]:
    """MODEL -> the report's other columns."""
    rows = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[0] != "MODEL" and parts[2] in {
                "pulled", "present", "created", "failed", "skipped"}:
            rows[parts[0]] = parts[1:]
    return rows


def test_installs_required_models_and_the_coaching_assistant(ollama: OllamaDouble) -> None:
    result = setup_models("--ollama-url", ollama.url)
    assert result.returncode == 0, result.stderr
    rows = report_rows(result.stdout)
    assert rows["mistral"][:2] == ["chat", "pulled"]
    assert rows["nomic-embed-text"][:2] == ["embedding", "pulled"]
    assert rows["upcoach-assistant"][:2] == ["chat", "created"]
    assert all("yes" in row for row in rows.values())
    assert "3 ready, 0 failed." in result.stdout
    assert ollama.installed() == ["mistral:latest", "nomic-embed-text:latest",
                                  "upcoach-assistant:latest"]
    # progress bars on stderr, per layer, up to 100%
    assert "pulling manifest" in result.stderr
    assert "100%" in result.stderr and "[####" in result.stderr


def test_assistant_is_the_default_model_with_the_coaching_prompt(ollama: OllamaDouble) -> None:
    assert setup_models("--ollama-url", ollama.url).returncode == 0
    shown = httpx.post(f"{ollama.url}/api/show", json={"model": "upcoach-assistant"}).json()
    coaching = load_config_file(CoachingFile, "coaching.yaml")
    assert shown["system"] == coaching.system_prompt(coaching.default_context)
    assert shown["details"]["parent_model"] == "mistral:latest"
    assert "temperature 0.7" in shown["parameters"]
    assert [r.path for r in ollama.requests].count("/api/chat") == 2  # both chat models checked
    assert "/api/embed" in ollama.paths()


def test_a_second_run_keeps_installed_models(ollama: OllamaDouble) -> None:
    assert setup_models("--ollama-url", ollama.url).returncode == 0
    pulls = ollama.paths().count("/api/pull")
    again = setup_models("--ollama-url", ollama.url)
    assert again.returncode == 0
    assert ollama.paths().count("/api/pull") == pulls
    assert report_rows(again.stdout)["mistral"][1] == "present"


def test_include_optional_adds_the_light_model(ollama: OllamaDouble) -> None:
    result = setup_models("--ollama-url", ollama.url, "--include-optional", "--no-assistant")
    assert result.returncode == 0, result.stderr
    assert set(report_rows(result.stdout)) == {"mistral", "llama3.2:3b", "nomic-embed-text"}


def test_ollama_url_from_the_environment_as_in_the_model_manager_container(
        ollama: OllamaDouble) -> None:
    result = setup_models("--no-assistant", env={"OLLAMA_URL": ollama.url})
    assert result.returncode == 0, result.stderr
    assert f"at {ollama.url}" in result.stdout
    assert ollama.installed() == ["mistral:latest", "nomic-embed-text:latest"]


def test_unreachable_ollama_is_one_clear_line() -> None:
    result = setup_models("--ollama-url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "cannot reach Ollama at http://127.0.0.1:" in lines[0]
    assert "OLLAMA_URL" in lines[0]


def test_a_model_missing_from_the_registry_fails_and_skips_the_assistant() -> None:
    library = {k: v for k, v in DEFAULT_LIBRARY.items() if not k.startswith("mistral")}
    with OllamaDouble(library=library) as ollama:
        result = setup_models("--ollama-url", ollama.url)
    assert result.returncode == 1
    rows = report_rows(result.stdout)
    assert rows["mistral"][1] == "failed" and "file does not exist" in " ".join(rows["mistral"])
    assert rows["upcoach-assistant"][1] == "skipped"
    assert rows["nomic-embed-text"][1] == "pulled"
    assert "1 ready, 2 failed: mistral, upcoach-assistant" in result.stdout


def test_a_stream_cut_mid_pull_is_reported(ollama: OllamaDouble) -> None:
    ollama.cut_next_stream(after=3)
    result = setup_models("--ollama-url", ollama.url, "--model", "mistral", "--no-assistant")
    assert result.returncode == 1
    assert "closed the connection mid-stream" in result.stdout
    assert "mistral:latest" not in ollama.installed()


def test_a_malformed_progress_line_is_reported(ollama: OllamaDouble) -> None:
    ollama.malformed_next_stream(after=2)
    result = setup_models("--ollama-url", ollama.url, "--model", "mistral", "--no-assistant")
    assert result.returncode == 1
    assert "malformed reply from Ollama" in result.stdout


def test_a_model_that_does_not_answer_fails_verification(ollama: OllamaDouble) -> None:
    ollama.fail_next(500, "llama runner process has terminated", path="/api/chat")
    result = setup_models("--ollama-url", ollama.url, "--model", "mistral", "--no-assistant")
    assert result.returncode == 1
    row = report_rows(result.stdout)["mistral"]
    assert row[1] == "pulled" and "NO" in row
    assert "llama runner process has terminated" in result.stdout


def test_help_and_print_modelfile() -> None:
    usage = setup_models("--help")
    assert usage.returncode == 0
    for option in ("--ollama-url", "--include-optional", "--model", "--refresh", "--timeout"):
        assert option in usage.stdout
    printed = setup_models("--print-modelfile")
    assert printed.returncode == 0
    assert printed.stdout.startswith("FROM mistral\nSYSTEM \"\"\"You are UpCoach")
